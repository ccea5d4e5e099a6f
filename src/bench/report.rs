//! The Markdown report: every figure next to its target, and the ratios between figures of
//! the same run (rejections to successes, server CPU to the crypto floor).

mod dashboard;

use std::fmt::Write as _;
use std::time::Duration;

use super::Mode;
use super::crypto::{CryptoFloor, Rate};
use super::dashboard::DashboardReport;
use super::load::PhaseResult;
use super::machine::Machine;
use super::scale::{ProbeResult, ScaleReport};

/// Successful exchanges per second to reach.
const TARGET_EXCHANGES_PER_SECOND: f64 = 10_000.0;
const TARGET_P99: Duration = Duration::from_millis(10);
/// Connections the p99 target is stated for.
const TARGET_CONNECTIONS: usize = 64;
const TARGET_CPU_PER_EXCHANGE: Duration = Duration::from_micros(100);
const TARGET_STATS: Duration = Duration::from_millis(5);
const TARGET_REVOKE: Duration = Duration::from_secs(1);
/// Time within which every instance applies a change made on another one.
const TARGET_PROPAGATION: Duration = Duration::from_secs(1);
const TARGET_STARTUP: Duration = Duration::from_millis(500);
/// Record count the statistics and start-up targets are stated for.
const TARGET_RECORDS: u64 = 10_000_000;

/// Everything one run measured.
#[derive(Debug)]
pub struct Report {
    command: String,
    machine: Machine,
    pub crypto: Option<CryptoFloor>,
    pub load: Option<LoadSuite>,
    pub scale: Option<ScaleReport>,
    pub dashboard: Option<DashboardReport>,
}

/// The load phases of one run, against one server.
#[derive(Debug)]
pub struct LoadSuite {
    pub connections: usize,
    pub client_threads: usize,
    pub seconds: u64,
    /// The server's unknown-`kid` cooldown: at most one key set fetch per this many seconds.
    pub jwks_cooldown_secs: u64,
    pub phases: Vec<PhaseReport>,
    /// Peak resident memory of the server after every phase, in bytes.
    pub server_peak_resident_bytes: Option<u64>,
}

/// One load phase with the CPU time both sides spent on it.
#[derive(Debug)]
pub struct PhaseReport {
    pub mode: Mode,
    pub expected_status: u16,
    pub server_cpu: Duration,
    /// CPU time of the bench process: load generator and demo IdP.
    pub client_cpu: Duration,
    /// Bytes the server caused to be written to storage during the phase.
    pub server_written_bytes: Option<u64>,
    /// Key set requests the IdP served during the phase.
    pub jwks_fetches: u64,
    pub result: PhaseResult,
}

impl PhaseReport {
    fn expected_count(&self) -> u64 {
        self.result.count(self.expected_status)
    }

    fn expected_rate(&self) -> f64 {
        self.result.rate(self.expected_status)
    }

    fn per_expected(&self, total: Duration) -> Option<Duration> {
        let count = u32::try_from(self.expected_count())
            .ok()
            .filter(|count| *count > 0)?;
        Some(total / count)
    }

    /// Storage bytes written per expected response, e.g. `7.9 KiB`.
    fn written_per_expected(&self) -> String {
        match (self.server_written_bytes, self.expected_count()) {
            (Some(bytes), count) if count > 0 => {
                format!("{:.1} KiB", as_f64(bytes) / as_f64(count) / 1024.0)
            }
            _ => "-".into(),
        }
    }

    fn unexpected(&self) -> String {
        let mut parts: Vec<String> = self
            .result
            .statuses
            .iter()
            .filter(|(status, _)| **status != self.expected_status)
            .map(|(status, count)| format!("{count} × {status}"))
            .collect();
        if self.result.transport_errors > 0 {
            parts.push(format!("{} transport", self.result.transport_errors));
        }
        if parts.is_empty() {
            "none".into()
        } else {
            parts.join(", ")
        }
    }
}

impl LoadSuite {
    fn success(&self) -> Option<&PhaseReport> {
        self.phases.iter().find(|phase| phase.mode == Mode::Success)
    }

    /// Key set fetches a phase may cause: one per started cooldown period.
    fn allowed_fetches(&self) -> u64 {
        self.seconds.div_ceil(self.jwks_cooldown_secs.max(1))
    }
}

/// Rate of `count` events over `elapsed`.
#[expect(
    clippy::cast_precision_loss,
    reason = "counts of a benchmark stay far below 2^52, where f64 is exact"
)]
pub fn per_second(count: u64, elapsed: Duration) -> f64 {
    if elapsed.is_zero() {
        0.0
    } else {
        count as f64 / elapsed.as_secs_f64()
    }
}

fn verdict(met: bool) -> &'static str {
    if met { "met" } else { "**missed**" }
}

fn format_duration(duration: Duration) -> String {
    let micros = duration.as_secs_f64() * 1e6;
    if micros < 1000.0 {
        format!("{micros:.0} µs")
    } else if micros < 1e6 {
        format!("{:.2} ms", micros / 1e3)
    } else {
        format!("{:.2} s", micros / 1e6)
    }
}

/// Formats with thousands separators, e.g. `12,345`.
fn format_count(value: f64) -> String {
    let rounded = format!("{value:.0}");
    let digits = rounded.trim_start_matches('-');
    let mut grouped = String::new();
    for (index, digit) in digits.chars().enumerate() {
        if index > 0 && (digits.len() - index) % 3 == 0 {
            grouped.push(',');
        }
        grouped.push(digit);
    }
    if rounded.starts_with('-') {
        format!("-{grouped}")
    } else {
        grouped
    }
}

#[expect(
    clippy::cast_precision_loss,
    reason = "record counts and sizes stay far below 2^52, where f64 is exact"
)]
fn as_f64(value: u64) -> f64 {
    value as f64
}

fn format_bytes(bytes: Option<u64>) -> String {
    bytes.map_or_else(
        || "unknown".into(),
        |bytes| format!("{:.0} MiB", as_f64(bytes) / f64::from(1u32 << 20)),
    )
}

fn ratio(numerator: Duration, denominator: Duration) -> f64 {
    if denominator.is_zero() {
        0.0
    } else {
        numerator.as_secs_f64() / denominator.as_secs_f64()
    }
}

impl Report {
    pub fn new(command: String, machine: Machine) -> Self {
        Self {
            command,
            machine,
            crypto: None,
            load: None,
            scale: None,
            dashboard: None,
        }
    }

    /// Renders the whole report as Markdown.
    pub fn render(&self) -> String {
        let mut out = String::new();
        self.render_header(&mut out);
        self.render_targets(&mut out);
        if let Some(crypto) = &self.crypto {
            render_crypto(&mut out, crypto);
        }
        if let Some(load) = &self.load {
            render_load(&mut out, load, self.crypto.as_ref());
        }
        if let Some(scale) = &self.scale {
            render_scale(&mut out, scale);
        }
        if let Some(dashboard) = &self.dashboard {
            dashboard::render(&mut out, dashboard);
        }
        out
    }

    fn render_header(&self, out: &mut String) {
        let machine = &self.machine;
        let build = if cfg!(debug_assertions) {
            "debug"
        } else {
            "release"
        };
        let _ = writeln!(out, "# xaa benchmark report\n");
        let _ = writeln!(out, "- Command: `{}`", self.command);
        let _ = writeln!(
            out,
            "- Machine: {} CPUs (`nproc`), {}, {} memory, Linux {}; load average {} at the start",
            machine.cpus, machine.cpu_model, machine.memory, machine.kernel, machine.load_average
        );
        let _ = writeln!(
            out,
            "- xaa {} ({build} build), run at {}\n",
            env!("CARGO_PKG_VERSION"),
            chrono::Utc::now().format("%Y-%m-%d %H:%M UTC")
        );
    }

    fn render_targets(&self, out: &mut String) {
        let _ = writeln!(out, "## Targets\n");
        let _ = writeln!(out, "| Figure | Target | Measured | Verdict |");
        let _ = writeln!(out, "|---|---|---|---|");
        if let Some(load) = &self.load {
            render_load_targets(out, load);
        }
        if let Some(scale) = &self.scale {
            render_scale_targets(out, scale);
        }
        if let Some(dashboard) = &self.dashboard {
            dashboard::render_targets(out, dashboard);
        }
        let _ = writeln!(out);
    }
}

fn render_load_targets(out: &mut String, load: &LoadSuite) {
    let success = load.success();
    if let Some(success) = success {
        let rate = success.expected_rate();
        let p99 = success.result.latency.p99;
        let _ = writeln!(
            out,
            "| Successful exchanges per second, {} connections | ≥ 10,000 | {} | {} |",
            load.connections,
            format_count(rate),
            verdict(rate >= TARGET_EXCHANGES_PER_SECOND)
        );
        let note = if load.connections == TARGET_CONNECTIONS {
            String::new()
        } else {
            format!(" (target stated for {TARGET_CONNECTIONS})")
        };
        let _ = writeln!(
            out,
            "| p99 latency at {} connections{note} | ≤ 10 ms | {} | {} |",
            load.connections,
            format_duration(p99),
            verdict(p99 <= TARGET_P99)
        );
        if let Some(cpu) = success.per_expected(success.server_cpu) {
            let _ = writeln!(
                out,
                "| Server CPU per successful exchange | ≤ 100 µs | {} | {} |",
                format_duration(cpu),
                verdict(cpu <= TARGET_CPU_PER_EXCHANGE)
            );
        }
    }
    for phase in load
        .phases
        .iter()
        .filter(|phase| phase.mode != Mode::Success)
    {
        let rate = phase.expected_rate();
        let (target, met) = match success {
            Some(success) => {
                let floor = success.expected_rate();
                (
                    format!("≥ success rate ({})", format_count(floor)),
                    rate >= floor,
                )
            }
            None => ("≥ success rate (not run)".to_owned(), false),
        };
        let _ = writeln!(
            out,
            "| {} rejections per second | {target} | {} | {} |",
            phase.mode.name(),
            format_count(rate),
            verdict(met)
        );
        let allowed = load.allowed_fetches();
        let _ = writeln!(
            out,
            "| JWKS fetches during the {} flood ({} s) | ≤ 1 per {} s cooldown (≤ {allowed}) | {} | {} |",
            phase.mode.name(),
            load.seconds,
            load.jwks_cooldown_secs,
            phase.jwks_fetches,
            verdict(phase.jwks_fetches <= allowed)
        );
    }
}

fn render_scale_targets(out: &mut String, scale: &ScaleReport) {
    let records = format_count(as_f64(scale.records));
    let at_target = if scale.records == TARGET_RECORDS {
        ""
    } else {
        " (target stated for 10,000,000)"
    };
    let _ = writeln!(
        out,
        "| Statistics query, {records} records{at_target}, median of {} warm runs | ≤ 5 ms | {} | {} |",
        scale.stats_warm_runs,
        format_duration(scale.stats_median),
        verdict(scale.stats_median <= TARGET_STATS)
    );
    render_revocation_targets(out, scale);
    let mut startups = scale.startups.clone();
    startups.sort_unstable();
    let median = startups
        .get(startups.len() / 2)
        .copied()
        .unwrap_or_default();
    let _ = writeln!(
        out,
        "| Start to serving, {records} records{at_target}, median of {} | ≤ 0.5 s | {} | {} |",
        startups.len(),
        format_duration(median),
        verdict(median <= TARGET_STARTUP)
    );
}

fn render_revocation_targets(out: &mut String, scale: &ScaleReport) {
    let subject_records = format_count(as_f64(scale.subject_records));
    let timing = match &scale.revocation {
        Ok(timing) => timing,
        Err(error) => {
            let _ = writeln!(
                out,
                "| Revoke by subject, {subject_records} records of the subject | ≤ 1 s | \
                 failed: {error} | **missed** |"
            );
            return;
        }
    };
    let answered = match (timing.status, timing.revoked_count) {
        (200, Some(count)) => format!(
            "{} (HTTP 200, {} records)",
            format_duration(timing.request),
            format_count(as_f64(u64::try_from(count).unwrap_or(0)))
        ),
        (status, _) => format!("HTTP {status} after {}", format_duration(timing.request)),
    };
    let _ = writeln!(
        out,
        "| Revoke by subject, {subject_records} records of the subject: admin API answer | \
         ≤ 1 s | {answered} | {} |",
        verdict(timing.status == 200 && timing.request <= TARGET_REVOKE)
    );
    let effective = |at: Option<Duration>| {
        at.map_or_else(|| "not rejected within 120 s".to_owned(), format_duration)
    };
    let _ = writeln!(
        out,
        "| Next exchange of the subject rejected, same instance (from the request) | ≤ 1 s | \
         {} | {} |",
        effective(timing.same_instance.rejected_after),
        verdict(
            timing
                .same_instance
                .rejected_after
                .is_some_and(|at| at <= TARGET_REVOKE)
        )
    );
    let _ = writeln!(
        out,
        "| Next exchange of the subject rejected, second instance (from the request) | \
         ≤ 2 s (1 s to revoke, then the 1 s change poll) | {} | {} |",
        effective(timing.other_instance.rejected_after),
        verdict(
            timing
                .other_instance
                .rejected_after
                .is_some_and(|at| at <= TARGET_REVOKE + TARGET_PROPAGATION)
        )
    );
    let _ = writeln!(
        out,
        "| Records marked revoked and counted in the statistics (from the request) | \
         none; done after the answer | {} | — |",
        timing
            .marked_after
            .map_or_else(|| "not within 120 s".to_owned(), format_duration),
    );
}

fn render_crypto(out: &mut String, crypto: &CryptoFloor) {
    let _ = writeln!(out, "## Crypto floor (one thread, in process)\n");
    let _ = writeln!(out, "| Operation | Per second | Each |");
    let _ = writeln!(out, "|---|---|---|");
    let rows: [(&str, &Rate); 4] = [
        (
            "RS256 verification (jsonwebtoken, aws-lc-rs)",
            &crypto.rs256_verify,
        ),
        (
            "ES256 verification (jsonwebtoken, aws-lc-rs)",
            &crypto.es256_verify,
        ),
        (
            "ES256 signature (jsonwebtoken, key parsed per call)",
            &crypto.es256_sign,
        ),
        (
            "ES256 signature (aws-lc-rs, key parsed once)",
            &crypto.es256_sign_parsed_key,
        ),
    ];
    for (name, rate) in rows {
        let _ = writeln!(
            out,
            "| {name} | {} | {} |",
            format_count(rate.per_second),
            format_duration(rate.each)
        );
    }
    let _ = writeln!(
        out,
        "\nSignature work of one exchange (the floor): {} with the ES256 demo IdP (ES256 \
         verification, then an ES256 signature with a parsed key, as the server signs), {} with \
         an RS256 IdP.\n",
        format_duration(crypto.es256_exchange()),
        format_duration(crypto.rs256_exchange())
    );
    if let Some(openssl) = &crypto.openssl {
        let _ = writeln!(
            out,
            "`openssl speed -seconds 1 rsa2048 ecdsap256`, for context:\n"
        );
        let _ = writeln!(out, "```text\n{openssl}\n```\n");
    }
}

fn render_load(out: &mut String, load: &LoadSuite, crypto: Option<&CryptoFloor>) {
    let _ = writeln!(out, "## Load phases\n");
    let _ = writeln!(
        out,
        "{} keep-alive connections from {} generator thread(s), {} s per phase after a warm-up. \
         Latency covers every response of the phase. Peak resident memory of the server: {}.\n",
        load.connections,
        load.client_threads,
        load.seconds,
        format_bytes(load.server_peak_resident_bytes)
    );
    let _ = writeln!(
        out,
        "| Phase | Expected | Per second | vs success | p50 | p90 | p99 | max | Server CPU each | \
         vs floor | Storage writes each | Generator CPU each | Other outcomes | JWKS fetches |"
    );
    let _ = writeln!(
        out,
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"
    );
    let success_rate = load.success().map(PhaseReport::expected_rate);
    let floor = crypto.map(CryptoFloor::es256_exchange);
    for phase in &load.phases {
        let latency = phase.result.latency;
        let versus = success_rate.filter(|rate| *rate > 0.0).map_or_else(
            || "-".into(),
            |rate| format!("{:.2}×", phase.expected_rate() / rate),
        );
        let server = phase.per_expected(phase.server_cpu);
        let versus_floor = match (server, floor) {
            (Some(cpu), Some(floor)) => format!("{:.1}×", ratio(cpu, floor)),
            _ => "-".into(),
        };
        let ran_out = if phase.result.tokens_ran_out {
            " (ID-JAGs ran out)"
        } else {
            ""
        };
        let _ = writeln!(
            out,
            "| {}{ran_out} | {} | {} | {versus} | {} | {} | {} | {} | {} | {versus_floor} | {} | {} | \
             {} | {} |",
            phase.mode.name(),
            phase.expected_status,
            format_count(phase.expected_rate()),
            format_duration(latency.p50),
            format_duration(latency.p90),
            format_duration(latency.p99),
            format_duration(latency.max),
            server.map_or_else(|| "-".into(), format_duration),
            phase.written_per_expected(),
            phase
                .per_expected(phase.client_cpu)
                .map_or_else(|| "-".into(), format_duration),
            phase.unexpected(),
            phase.jwks_fetches,
        );
    }
    let _ = writeln!(
        out,
        "\n\"vs floor\" divides the server CPU per request by the signature work of one ES256 \
         exchange; rejected requests verify at most one signature, so their ratio is an upper \
         bound.\n"
    );
}

fn render_scale(out: &mut String, scale: &ScaleReport) {
    let _ = writeln!(out, "## Scale\n");
    let _ = writeln!(
        out,
        "- Seeded {} ID-JAG records, each with one access token, in {}; database file {:.2} GiB.",
        format_count(as_f64(scale.records)),
        format_duration(scale.seed_time),
        as_f64(scale.database_bytes) / f64::from(1u32 << 30)
    );
    let _ = writeln!(
        out,
        "- Statistics query (`Store::stats`, all proxies): cold {}, median {}, max {} over {} \
         warm runs; totals {} the seeded rows.",
        format_duration(scale.stats_cold),
        format_duration(scale.stats_median),
        format_duration(scale.stats_max),
        scale.stats_warm_runs,
        if scale.stats_consistent {
            "match"
        } else {
            "**do not match**"
        }
    );
    let startups: Vec<String> = scale
        .startups
        .iter()
        .map(|at| format_duration(*at))
        .collect();
    let _ = writeln!(
        out,
        "- Start to serving (spawn of `xaa serve` to the first `/healthz` 200): {}.",
        startups.join(", ")
    );
    if let Ok(timing) = &scale.revocation {
        let _ = writeln!(
            out,
            "- Revoke by subject through the admin API of one of two instances on the seeded \
             file: HTTP {} after {}; that instance wrote {} to storage until the last probe, \
             with a peak resident memory of {}. Exchanges of the subject sent meanwhile, one at \
             a time:",
            timing.status,
            format_duration(timing.request),
            format_bytes(timing.written_bytes),
            format_bytes(timing.peak_resident_bytes),
        );
        let _ = writeln!(
            out,
            "  - another subject at the same instance, from the request until the marking was \
             done: answers {}; slowest answer {}.",
            format_statuses(&timing.bystander),
            format_duration(timing.bystander.slowest),
        );
        for (name, probes) in [
            ("same instance", &timing.same_instance),
            ("second instance", &timing.other_instance),
        ] {
            let _ = writeln!(
                out,
                "  - {name}: first rejection {} after the request started; answers {}; slowest \
                 answer {}.",
                probes
                    .rejected_after
                    .map_or_else(|| "never".into(), format_duration),
                format_statuses(probes),
                format_duration(probes.slowest),
            );
        }
    }
    let _ = writeln!(out);
}

/// Lists the responses of a probe run by HTTP status, as `12 × 200, 1 × 400`.
fn format_statuses(probes: &ProbeResult) -> String {
    let statuses: Vec<String> = probes
        .statuses
        .iter()
        .map(|(status, count)| format!("{count} × {status}"))
        .collect();
    statuses.join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn format_count_groups_thousands() {
        assert_eq!(format_count(0.0), "0");
        assert_eq!(format_count(999.4), "999");
        assert_eq!(format_count(12_345.0), "12,345");
        assert_eq!(format_count(10_000_000.0), "10,000,000");
    }

    #[test]
    fn format_duration_picks_unit() {
        assert_eq!(format_duration(Duration::from_micros(85)), "85 µs");
        assert_eq!(format_duration(Duration::from_micros(2_500)), "2.50 ms");
        assert_eq!(format_duration(Duration::from_millis(1_250)), "1.25 s");
    }

    #[test]
    fn per_second_handles_zero_elapsed() {
        assert!(per_second(10, Duration::ZERO).abs() < f64::EPSILON);
        assert!((per_second(10, Duration::from_secs(2)) - 5.0).abs() < f64::EPSILON);
    }
}
