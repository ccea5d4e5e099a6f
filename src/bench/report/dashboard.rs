//! The dashboard rows of the targets table and the Dashboard section of the report.

use std::fmt::Write as _;
use std::time::Duration;

use super::{as_f64, format_count, format_duration, verdict};
use crate::bench::dashboard::{
    Change, DashboardReport, DrawnScreen, IdleFigures, IdleOutcome, REDRAWS, RedrawTiming,
};

const TARGET_REDRAW: Duration = Duration::from_millis(5);
/// Mapping count the redraw target is stated for.
const TARGET_MAPPINGS: u64 = 10_000;
/// Share of one core the idle dashboard may use, in percent.
const TARGET_IDLE_PERCENT: f64 = 1.0;
/// The memory target of 64 MB, read as 64 × 10^6 bytes, the stricter of the two readings.
const TARGET_RESIDENT_BYTES: u64 = 64_000_000;

fn change_label(change: Change) -> &'static str {
    match change {
        Change::None => "no change",
        Change::SelectionMoved => "selection moved one row",
    }
}

/// Formats bytes in decimal megabytes, the unit of the memory target, e.g. `41.3 MB`.
fn format_megabytes(bytes: Option<u64>) -> String {
    bytes.map_or_else(
        || "unknown".into(),
        |bytes| format!("{:.1} MB", as_f64(bytes) / 1e6),
    )
}

/// Returns the first line of a failure message, for a table cell.
fn first_line(text: &str) -> &str {
    text.lines().next().unwrap_or_default()
}

pub(super) fn render_targets(out: &mut String, dashboard: &DashboardReport) {
    let mappings = format_count(as_f64(dashboard.mappings));
    let at_target = if dashboard.mappings == TARGET_MAPPINGS {
        ""
    } else {
        " (target stated for 10,000)"
    };
    let mapping_redraws = dashboard
        .redraws
        .iter()
        .filter(|timing| timing.screen == DrawnScreen::Mappings);
    for timing in mapping_redraws {
        let _ = writeln!(
            out,
            "| Dashboard redraw, {mappings} mappings{at_target}, {}×{}, {}: p99 of {} | \
             ≤ 5 ms | {} | {} |",
            timing.width,
            timing.height,
            change_label(timing.change),
            timing.redraws,
            format_duration(timing.p99),
            verdict(timing.p99 <= TARGET_REDRAW)
        );
    }
    let rows = [
        "Dashboard idle CPU on the Client Mappings tab",
        "Dashboard resident memory (VmRSS) after the idle window",
        "Dashboard peak resident memory (VmHWM) since start",
    ];
    let targets = ["≤ 1 % of a core", "≤ 64 MB", "≤ 64 MB"];
    match &dashboard.idle {
        IdleOutcome::Measured(idle) => render_idle_targets(out, idle),
        IdleOutcome::Skipped(reason) => {
            for (row, target) in rows.iter().zip(targets) {
                let _ = writeln!(
                    out,
                    "| {row} | {target} | skipped: {} | not measured |",
                    first_line(reason)
                );
            }
        }
        IdleOutcome::Failed(reason) => {
            for (row, target) in rows.iter().zip(targets) {
                let _ = writeln!(
                    out,
                    "| {row} | {target} | failed: {} | **missed** |",
                    first_line(reason)
                );
            }
        }
    }
}

fn render_idle_targets(out: &mut String, idle: &IdleFigures) {
    let percent = idle.core_percent();
    let _ = writeln!(
        out,
        "| Dashboard idle CPU on the Client Mappings tab, {} s window | ≤ 1 % of a core | \
         {percent:.2} % | {} |",
        idle.window.as_secs(),
        verdict(percent <= TARGET_IDLE_PERCENT)
    );
    let within = |bytes: Option<u64>| bytes.is_some_and(|bytes| bytes <= TARGET_RESIDENT_BYTES);
    let _ = writeln!(
        out,
        "| Dashboard resident memory (VmRSS) after the idle window | ≤ 64 MB | {} | {} |",
        format_megabytes(idle.resident_bytes),
        verdict(within(idle.resident_bytes))
    );
    let _ = writeln!(
        out,
        "| Dashboard peak resident memory (VmHWM) since start | ≤ 64 MB | {} | {} |",
        format_megabytes(idle.peak_resident_bytes),
        verdict(within(idle.peak_resident_bytes))
    );
}

pub(super) fn render(out: &mut String, dashboard: &DashboardReport) {
    let _ = writeln!(out, "## Dashboard\n");
    let bulk = dashboard
        .mappings
        .saturating_sub(dashboard.mappings_through_core);
    let _ = writeln!(
        out,
        "The store is a fresh SQLite file: one proxy with {} client mappings ({} created \
         through `Core::create_mapping`, {} inserted in one SQL transaction into the same \
         tables), {} other proxies with one mapping each, one provider (the bench's demo IdP) \
         and {} recorded exchanges, seeded in {}.\n",
        format_count(as_f64(dashboard.mappings)),
        format_count(as_f64(dashboard.mappings_through_core)),
        format_count(as_f64(bulk)),
        dashboard.small_proxies,
        dashboard.recorded_exchanges,
        format_duration(dashboard.seed_time)
    );
    render_redraws(out, &dashboard.redraws);
    render_idle(out, dashboard);
}

fn render_redraws(out: &mut String, redraws: &[RedrawTiming]) {
    let _ = writeln!(
        out,
        "Redraws of the dashboard's `App` over a `Core` on that store, in this process: each \
         is `Terminal::draw` with `App::draw` on ratatui's `TestBackend`, which renders the \
         whole screen into a buffer and passes the cells that differ from the previous frame \
         to the in-memory backend. The first draw into a new terminal passes every cell; then \
         {REDRAWS} redraws are timed. \"selection moved one row\" presses Down before each \
         redraw, outside the timing. \"On-CPU each\" is the drawing thread's CPU time over \
         the timed loop divided by {REDRAWS}, which includes those key presses. \"Waited\" is \
         the time the thread was runnable but had no CPU during the loop (both from \
         `/proc/thread-self/schedstat`), so the wall-clock columns include it.\n"
    );
    let _ = writeln!(
        out,
        "| Screen | Terminal | Before each redraw | First draw | Median | p99 | Max | \
         On-CPU each | Waited |"
    );
    let _ = writeln!(out, "|---|---|---|---|---|---|---|---|---|");
    for timing in redraws {
        let _ = writeln!(
            out,
            "| {} | {}×{} | {} | {} | {} | {} | {} | {} | {} |",
            timing.screen.name(),
            timing.width,
            timing.height,
            change_label(timing.change),
            format_duration(timing.first),
            format_duration(timing.median),
            format_duration(timing.p99),
            format_duration(timing.max),
            timing
                .cpu_per_redraw
                .map_or_else(|| "-".into(), format_duration),
            timing.waited.map_or_else(|| "-".into(), format_duration)
        );
    }
    let _ = writeln!(out);
}

fn render_idle(out: &mut String, dashboard: &DashboardReport) {
    let (width, height) = dashboard.idle_size;
    match &dashboard.idle {
        IdleOutcome::Measured(idle) => {
            let server = if idle.server_in_process {
                "with its exchange server running in process on free loopback ports"
            } else {
                "without its exchange server, because the ports were taken"
            };
            let _ = writeln!(
                out,
                "Idle: `xaa` (the dashboard, from this executable) ran in a detached {} \
                 session of {width}×{height} on the Client Mappings tab of the large proxy, \
                 {server}. From {} after the tab appeared, it used {} of CPU time in {} \
                 ({:.2} % of one core), reloading the tab every {} s. VmRSS went from {} at \
                 the start of the window to {} at the end ({} anonymous, {} file-backed), and \
                 VmHWM was {} (MB = 10^6 bytes).\n",
                idle.tmux_version,
                format_duration(dashboard.idle_settle),
                format_duration(idle.cpu),
                format_duration(idle.window),
                idle.core_percent(),
                idle.refresh_secs,
                format_megabytes(idle.resident_bytes_at_start),
                format_megabytes(idle.resident_bytes),
                format_megabytes(idle.anonymous_bytes),
                format_megabytes(idle.file_bytes),
                format_megabytes(idle.peak_resident_bytes)
            );
        }
        IdleOutcome::Skipped(reason) => {
            let _ = writeln!(out, "Idle CPU and memory: skipped, because {reason}.\n");
        }
        IdleOutcome::Failed(reason) => {
            let _ = writeln!(
                out,
                "Idle CPU and memory: the measurement failed:\n\n```text\n{reason}\n```\n"
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report_with(idle: IdleOutcome) -> DashboardReport {
        DashboardReport {
            mappings: 10_000,
            mappings_through_core: 1,
            small_proxies: 2,
            recorded_exchanges: 200,
            seed_time: Duration::from_millis(400),
            redraws: Vec::new(),
            idle,
            idle_size: (200, 50),
            idle_settle: Duration::from_secs(3),
        }
    }

    fn measured(cpu: Duration, resident: u64, peak: u64) -> IdleOutcome {
        IdleOutcome::Measured(IdleFigures {
            tmux_version: "tmux 3.3a".into(),
            server_in_process: true,
            refresh_secs: 30,
            window: Duration::from_secs(30),
            cpu,
            resident_bytes_at_start: Some(resident),
            resident_bytes: Some(resident),
            peak_resident_bytes: Some(peak),
            anonymous_bytes: None,
            file_bytes: None,
        })
    }

    #[test]
    fn idle_targets_compare_with_limits() {
        let report = report_with(measured(Duration::from_millis(150), 70_000_000, 60_000_000));
        let mut out = String::new();
        render_targets(&mut out, &report);
        let rows: Vec<&str> = out.lines().collect();
        assert_eq!(rows.len(), 3, "{out}");
        assert!(rows[0].contains("| 0.50 % | met |"), "{}", rows[0]);
        assert!(rows[1].contains("| 70.0 MB | **missed** |"), "{}", rows[1]);
        assert!(rows[2].contains("| 60.0 MB | met |"), "{}", rows[2]);
    }

    #[test]
    fn failed_idle_keeps_one_line_rows() {
        let failure = IdleOutcome::Failed("timed out\nscreen line".into());
        let mut out = String::new();
        render_targets(&mut out, &report_with(failure));
        assert_eq!(out.lines().count(), 3, "{out}");
        assert!(out.contains("failed: timed out | **missed** |"), "{out}");
        assert!(!out.contains("screen line"), "{out}");
    }

    #[test]
    fn skipped_idle_is_not_a_verdict() {
        let skipped = IdleOutcome::Skipped("tmux is not installed".into());
        let mut out = String::new();
        render_targets(&mut out, &report_with(skipped));
        assert!(out.contains("skipped: tmux is not installed | not measured |"));
        assert!(!out.contains("missed"), "{out}");
    }

    #[test]
    fn format_megabytes_uses_decimal_unit() {
        assert_eq!(format_megabytes(Some(41_300_000)), "41.3 MB");
        assert_eq!(format_megabytes(None), "unknown");
    }

    #[test]
    fn first_line_drops_screen_dump() {
        assert_eq!(first_line("timed out\nscreen line"), "timed out");
        assert_eq!(first_line(""), "");
    }
}
