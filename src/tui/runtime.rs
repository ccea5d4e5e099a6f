//! The event loop: waits on the one channel, lets the app handle every queued event, starts
//! the jobs it requested, and redraws only when something changed. It never awaits store work,
//! because jobs run on their own tasks and come back as events.

use ratatui::DefaultTerminal;
use tokio::sync::mpsc;

use crate::core::Core;
use crate::tui::app::App;
use crate::tui::event::{self, AppEvent};
use crate::tui::jobs::{self, Job, JobSlots};

/// Events that may wait in the channel; input tasks pause when it is full.
const EVENT_CAPACITY: usize = 256;

/// Runs the dashboard until the app quits.
pub async fn run_loop(
    terminal: &mut DefaultTerminal,
    core: Core,
    mut app: App,
) -> color_eyre::Result<()> {
    let (sender, mut receiver) = mpsc::channel(EVENT_CAPACITY);
    let sources = event::spawn_sources(&sender);
    let mut runner = Runner {
        core,
        sender,
        slots: JobSlots::default(),
    };
    tracing::info!(read_only = app.options.read_only, "dashboard started");

    runner.start(&mut app);
    terminal.draw(|frame| app.draw(frame))?;
    while let Some(event) = receiver.recv().await {
        let mut changed = runner.handle(&mut app, event);
        while !app.should_quit() {
            let Ok(event) = receiver.try_recv() else {
                break;
            };
            changed |= runner.handle(&mut app, event);
        }
        runner.start(&mut app);
        if app.should_quit() {
            break;
        }
        if changed {
            terminal.draw(|frame| app.draw(frame))?;
        }
    }

    for source in sources {
        source.abort();
    }
    tracing::info!("dashboard stopped");
    Ok(())
}

/// Starts jobs on tokio tasks and tracks which loads run.
struct Runner {
    core: Core,
    sender: mpsc::Sender<AppEvent>,
    slots: JobSlots,
}

impl Runner {
    fn handle(&mut self, app: &mut App, event: AppEvent) -> bool {
        if let AppEvent::Job(output) = &event
            && let Some(next) = self.slots.finish(output.key())
        {
            self.spawn(next);
        }
        app.handle(event)
    }

    /// Starts the jobs the app requested (or queues them behind a running load).
    fn start(&mut self, app: &mut App) {
        for job in app.take_jobs() {
            if let Some(job) = self.slots.submit(job) {
                self.spawn(job);
            }
        }
    }

    fn spawn(&self, job: Job) {
        let core = self.core.clone();
        let sender = self.sender.clone();
        tokio::spawn(async move {
            tracing::debug!(?job, "dashboard job started");
            let output = jobs::execute(&core, job).await;
            // The loop has stopped when the send fails; the result is no longer needed.
            let _ = sender.send(AppEvent::Job(output)).await;
        });
    }
}
