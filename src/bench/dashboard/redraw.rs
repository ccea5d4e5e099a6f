//! Redraw times of the dashboard's real [`App`] over a real [`Core`]. Each redraw is
//! `Terminal::draw` with `App::draw`, the call the terminal loop makes, on ratatui's
//! `TestBackend`: the app renders its whole state into a buffer, ratatui compares it with the
//! previous frame and hands the changed cells to the in-memory backend. No terminal output
//! is written, so the figures leave out the terminal's own work.

use std::time::{Duration, Instant};

use crossterm::event::KeyCode;
use ratatui::Terminal;
use ratatui::backend::TestBackend;
use ratatui::buffer::Buffer;

use crate::bench::{BenchError, machine};
use crate::core::Core;
use crate::tui::theme::ColorMode;
use crate::tui::{App, AppEvent, AppOptions, Screen, Tab, jobs};

/// Terminal sizes every screen is drawn at, in columns and rows.
pub const SIZES: [(u16, u16); 2] = [(200, 50), (80, 24)];
/// Timed redraws per screen, size and change.
pub const REDRAWS: usize = 200;
/// Rounds of "run the requested jobs, apply their results" before loading counts as stuck.
const SETTLE_ROUNDS: usize = 20;

/// The change made to the app before each timed redraw.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    /// Nothing, so the frame equals the previous one and no cell reaches the backend.
    None,
    /// One press of Down before each redraw (untimed): the highlight moves and the table
    /// scrolls once the selection passes the last visible row.
    SelectionMoved,
}

/// The dashboard screens that are timed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DrawnScreen {
    Proxies,
    Statistics,
    Mappings,
}

impl DrawnScreen {
    /// Returns the screen's name in the report.
    pub fn name(self) -> &'static str {
        match self {
            Self::Proxies => "Proxies",
            Self::Statistics => "XAA view, Statistics tab",
            Self::Mappings => "XAA view, Client Mappings tab",
        }
    }
}

/// Draw times of one screen at one size.
#[derive(Debug, Clone)]
pub struct RedrawTiming {
    pub screen: DrawnScreen,
    pub change: Change,
    pub width: u16,
    pub height: u16,
    /// The first draw into a new terminal, which sends every cell to the backend.
    pub first: Duration,
    pub redraws: usize,
    pub median: Duration,
    pub p99: Duration,
    pub max: Duration,
    /// On-CPU time of the timed loop divided by the redraw count. It includes the untimed
    /// key presses of [`Change::SelectionMoved`], and is `None` without
    /// `/proc/thread-self/schedstat`.
    pub cpu_per_redraw: Option<Duration>,
    /// Time the drawing thread waited for a CPU during the timed loop, which inflates the
    /// wall-clock figures on a busy machine.
    pub waited: Option<Duration>,
}

/// Opens the Proxies screen, then the XAA view of the first proxy (the large one) on its
/// Statistics and Client Mappings tabs, and times redraws of each at every size in [`SIZES`].
/// `expected_mappings` is the mapping count the Client Mappings tab must show.
pub async fn measure(core: &Core, expected_mappings: u64) -> Result<Vec<RedrawTiming>, BenchError> {
    let mut app = App::new(app_options(core));
    settle(&mut app, core).await?;
    if app.screen() != Screen::Proxies {
        return Err(BenchError::Dashboard(
            "the dashboard did not start on the Proxies screen".into(),
        ));
    }
    let mut timings = Vec::new();
    time_every_size(&mut app, DrawnScreen::Proxies, Change::None, &mut timings);

    press(&mut app, core, KeyCode::Enter).await?;
    expect_tab(&app, Tab::Statistics)?;
    time_every_size(
        &mut app,
        DrawnScreen::Statistics,
        Change::None,
        &mut timings,
    );

    press(&mut app, core, KeyCode::Char('2')).await?;
    expect_tab(&app, Tab::Mappings)?;
    // The tab title counts the loaded rows, e.g. "Client Mappings · 10000 rows".
    let (width, height) = SIZES[0];
    let marker = format!("{expected_mappings} rows");
    let text = draw_text(&mut app, width, height);
    if !text.contains(&marker) {
        return Err(BenchError::Dashboard(format!(
            "the Client Mappings tab does not show '{marker}'; it shows:\n{text}"
        )));
    }
    time_every_size(&mut app, DrawnScreen::Mappings, Change::None, &mut timings);
    time_every_size(
        &mut app,
        DrawnScreen::Mappings,
        Change::SelectionMoved,
        &mut timings,
    );
    Ok(timings)
}

/// Builds the options `xaa` gives the dashboard, with a header note like the one it shows.
fn app_options(core: &Core) -> AppOptions {
    AppOptions {
        read_only: false,
        server_note: Some("exchange server on 127.0.0.1:8080, admin API on 127.0.0.1:8081".into()),
        refresh_secs: core.config().tui.refresh_secs,
        actor: crate::cli::default_actor(),
        color: ColorMode::from_env(),
    }
}

/// Runs the jobs the app requested against the core and hands it their results, until it
/// requests no more.
async fn settle(app: &mut App, core: &Core) -> Result<(), BenchError> {
    for _ in 0..SETTLE_ROUNDS {
        let requested = app.take_jobs();
        if requested.is_empty() {
            return Ok(());
        }
        for job in requested {
            let output = jobs::execute(core, job).await;
            app.handle(AppEvent::Job(output));
        }
    }
    Err(BenchError::Dashboard(format!(
        "the dashboard kept requesting jobs for {SETTLE_ROUNDS} rounds"
    )))
}

async fn press(app: &mut App, core: &Core, key: KeyCode) -> Result<(), BenchError> {
    app.handle(AppEvent::key(key));
    settle(app, core).await
}

fn expect_tab(app: &App, expected: Tab) -> Result<(), BenchError> {
    match app.tab() {
        Some(tab) if tab == expected => Ok(()),
        other => Err(BenchError::Dashboard(format!(
            "expected the {expected:?} tab of the XAA view, the dashboard shows {other:?} on \
             the {:?} screen",
            app.screen()
        ))),
    }
}

fn time_every_size(
    app: &mut App,
    screen: DrawnScreen,
    change: Change,
    timings: &mut Vec<RedrawTiming>,
) {
    for (width, height) in SIZES {
        timings.push(time_redraws(app, screen, change, width, height));
    }
}

fn time_redraws(
    app: &mut App,
    screen: DrawnScreen,
    change: Change,
    width: u16,
    height: u16,
) -> RedrawTiming {
    let Ok(mut terminal) = Terminal::new(TestBackend::new(width, height));
    let started = Instant::now();
    let Ok(_) = terminal.draw(|frame| app.draw(frame));
    let first = started.elapsed();

    // The loop never awaits, so it runs on this one thread from start to end.
    let before = machine::thread_times();
    let mut samples = Vec::with_capacity(REDRAWS);
    for _ in 0..REDRAWS {
        if change == Change::SelectionMoved {
            app.handle(AppEvent::key(KeyCode::Down));
        }
        let started = Instant::now();
        let Ok(_) = terminal.draw(|frame| app.draw(frame));
        samples.push(started.elapsed());
    }
    let spent = machine::thread_times()
        .zip(before)
        .map(|(after, before)| after.since(before));
    let redraws = u32::try_from(REDRAWS).unwrap_or(u32::MAX);
    samples.sort_unstable();
    RedrawTiming {
        screen,
        change,
        width,
        height,
        first,
        redraws: samples.len(),
        median: nearest_rank(&samples, 500),
        p99: nearest_rank(&samples, 990),
        max: nearest_rank(&samples, 1000),
        cpu_per_redraw: spent.map(|spent| spent.on_cpu / redraws),
        waited: spent.map(|spent| spent.waiting),
    }
}

/// Returns the smallest of the sorted `samples` with at least `per_mille` thousandths of
/// them at or below it, or zero when there are none.
fn nearest_rank(samples: &[Duration], per_mille: usize) -> Duration {
    if samples.is_empty() {
        return Duration::ZERO;
    }
    let rank = (per_mille * samples.len())
        .div_ceil(1000)
        .clamp(1, samples.len());
    samples[rank - 1]
}

/// Draws the app into a new terminal and returns the screen as text, one line per row.
fn draw_text(app: &mut App, width: u16, height: u16) -> String {
    let Ok(mut terminal) = Terminal::new(TestBackend::new(width, height));
    let Ok(_) = terminal.draw(|frame| app.draw(frame));
    buffer_text(terminal.backend().buffer())
}

fn buffer_text(buffer: &Buffer) -> String {
    let area = buffer.area;
    let mut text = String::new();
    for y in area.top()..area.bottom() {
        for x in area.left()..area.right() {
            text.push_str(buffer[(x, y)].symbol());
        }
        text.push('\n');
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_picks_percentiles() {
        let samples: Vec<Duration> = (1..=200).map(Duration::from_micros).collect();
        assert_eq!(nearest_rank(&samples, 500), Duration::from_micros(100));
        assert_eq!(nearest_rank(&samples, 990), Duration::from_micros(198));
        assert_eq!(nearest_rank(&samples, 1000), Duration::from_micros(200));
    }

    #[test]
    fn nearest_rank_handles_empty_and_single() {
        assert_eq!(nearest_rank(&[], 990), Duration::ZERO);
        let one = [Duration::from_micros(7)];
        assert_eq!(nearest_rank(&one, 500), Duration::from_micros(7));
        assert_eq!(nearest_rank(&one, 990), Duration::from_micros(7));
    }
}
