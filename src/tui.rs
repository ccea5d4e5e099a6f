//! The terminal dashboard: proxies, the XAA view of a proxy (statistics, client mappings, token
//! revocation, tokens, audit), providers and help.
//!
//! [`App`] is a synchronous state machine and the only owner of the dashboard's state. Key
//! presses, ticks and the results of background jobs reach it as [`AppEvent`]s. It responds
//! with [`Job`]s that the runtime runs on tokio tasks against the [`Core`](crate::core::Core),
//! each sending one whole snapshot back on the same channel. Rendering reads the state and
//! never awaits. Tests drive `App` without a terminal: they feed events, run the jobs with
//! [`jobs::execute`] and draw into a `TestBackend`.
//!
//! Every string that comes from the store passes through [`text::sanitize`] before it reaches a
//! widget, so control characters in token claims never reach the terminal.

mod app;
mod dialogs;
mod event;
mod form;
pub mod jobs;
pub mod keys;
mod panel;
mod runtime;
mod screens;
mod strings;
mod table;
mod tabs;
mod terminal;
pub mod text;
pub mod theme;
mod ui;

pub use self::app::{App, AppOptions, MIN_HEIGHT, MIN_WIDTH, Screen};
pub use self::event::AppEvent;
pub use self::jobs::{Job, JobOutput};
pub use self::tabs::Tab;

use crate::core::Core;

/// Options of a dashboard session.
#[derive(Debug, Clone, Default)]
pub struct TuiOptions {
    /// Hide and reject every action that changes the store (for wall screens).
    pub read_only: bool,
    /// A line about the exchange server shown in the header, e.g.
    /// "exchange server running on 127.0.0.1:8080".
    pub server_note: Option<String>,
}

/// Runs the dashboard until the operator quits or a SIGHUP, SIGTERM or SIGINT arrives.
///
/// Takes over the terminal (raw mode, alternate screen, bracketed paste; no mouse capture) and
/// restores it on every exit path, including errors and panics. The caller must send logs to a
/// file: nothing may write to stdout or stderr while the dashboard owns the screen.
pub async fn run(core: Core, options: TuiOptions) -> color_eyre::Result<()> {
    let app_options = AppOptions {
        read_only: options.read_only,
        server_note: options.server_note,
        refresh_secs: core.config().tui.refresh_secs,
        actor: crate::cli::default_actor(),
        color: theme::ColorMode::from_env(),
    };
    let app = App::new(app_options);
    let mut guard = terminal::TerminalGuard::enter()?;
    let result = match guard.terminal() {
        Some(terminal) => runtime::run_loop(terminal, core, app).await,
        None => Ok(()),
    };
    guard.leave();
    result
}
