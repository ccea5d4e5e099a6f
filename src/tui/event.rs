//! The one event channel of the dashboard and the tasks that feed it: terminal input from
//! crossterm's `EventStream`, a one-second tick, stop signals, and (from the runtime) job
//! results.

use std::time::Duration;

use crossterm::event::{Event, EventStream, KeyCode, KeyEvent, KeyModifiers};
use futures_util::StreamExt;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use crate::tui::jobs::JobOutput;

/// Period of [`AppEvent::Tick`]: the refresh countdown counts whole seconds.
pub const TICK: Duration = Duration::from_secs(1);

/// Something the app reacts to.
#[derive(Debug)]
pub enum AppEvent {
    /// A key press, a paste or a resize.
    Terminal(Event),
    /// One second passed.
    Tick,
    /// A background job finished.
    Job(JobOutput),
    /// The dashboard must stop: a signal arrived or the input closed.
    Stop(&'static str),
}

impl AppEvent {
    /// Builds a key press without modifiers.
    pub fn key(code: KeyCode) -> Self {
        Self::key_with(code, KeyModifiers::NONE)
    }

    /// Builds a key press with modifiers.
    pub fn key_with(code: KeyCode, modifiers: KeyModifiers) -> Self {
        Self::Terminal(Event::Key(KeyEvent::new(code, modifiers)))
    }
}

/// Starts the input, tick and signal tasks. They end when the receiver is dropped.
pub fn spawn_sources(events: &mpsc::Sender<AppEvent>) -> Vec<JoinHandle<()>> {
    vec![
        tokio::spawn(forward_input(events.clone())),
        tokio::spawn(tick(events.clone())),
        tokio::spawn(wait_for_signal(events.clone())),
    ]
}

async fn forward_input(events: mpsc::Sender<AppEvent>) {
    let mut stream = EventStream::new();
    loop {
        let next = tokio::select! {
            next = stream.next() => next,
            () = events.closed() => return,
        };
        let event = match next {
            Some(Ok(event)) => AppEvent::Terminal(event),
            Some(Err(error)) => {
                tracing::error!(%error, "reading terminal input failed; stopping the dashboard");
                AppEvent::Stop("terminal input error")
            }
            None => AppEvent::Stop("terminal input closed"),
        };
        let stop = matches!(event, AppEvent::Stop(_));
        if events.send(event).await.is_err() || stop {
            return;
        }
    }
}

async fn tick(events: mpsc::Sender<AppEvent>) {
    let mut interval = tokio::time::interval(TICK);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    // The first tick of an interval completes at once; the app counts from the second.
    interval.tick().await;
    loop {
        interval.tick().await;
        if events.send(AppEvent::Tick).await.is_err() {
            return;
        }
    }
}

#[cfg(unix)]
async fn wait_for_signal(events: mpsc::Sender<AppEvent>) {
    use tokio::signal::unix::{SignalKind, signal};

    let kinds = [
        (SignalKind::hangup(), "SIGHUP"),
        (SignalKind::terminate(), "SIGTERM"),
        (SignalKind::interrupt(), "SIGINT"),
    ];
    let mut streams = Vec::new();
    for (kind, name) in kinds {
        match signal(kind) {
            Ok(stream) => streams.push((stream, name)),
            Err(error) => tracing::warn!(%error, signal = name, "cannot listen for the signal"),
        }
    }
    let waits: Vec<_> = streams
        .iter_mut()
        .map(|(stream, name)| {
            let name = *name;
            Box::pin(async move {
                stream.recv().await;
                name
            })
        })
        .collect();
    if waits.is_empty() {
        return;
    }
    let (name, _, _) = futures_util::future::select_all(waits).await;
    let _ = events.send(AppEvent::Stop(name)).await;
}

#[cfg(not(unix))]
async fn wait_for_signal(events: mpsc::Sender<AppEvent>) {
    if tokio::signal::ctrl_c().await.is_ok() {
        let _ = events.send(AppEvent::Stop("Ctrl-C")).await;
    }
}
