//! The dashboard's state and its reaction to events. `App` is synchronous and owns everything
//! the screen shows. It never touches the store. Instead it requests [`Job`]s and takes their
//! results back as events (see [`results`]).

mod results;

use crossterm::event::{Event, KeyEvent, KeyEventKind};
use ratatui::Frame;

use crate::core::model::Proxy;
use crate::tui::dialogs::{Dialog, HelpDialog, Outcome, Tone};
use crate::tui::event::AppEvent;
use crate::tui::jobs::Job;
use crate::tui::keys::{self, Action, Resolution, Scope};
use crate::tui::screens::{ProvidersScreen, ProxiesScreen};
use crate::tui::strings;
use crate::tui::tabs::{Tab, TabContext, XaaView};
use crate::tui::theme::{ColorMode, Theme};
use crate::tui::ui;

/// Narrowest terminal the dashboard draws in; below it shows "terminal too small".
pub const MIN_WIDTH: u16 = 60;
/// Lowest terminal the dashboard draws in.
pub const MIN_HEIGHT: u16 = 15;
/// Ticks a flash message stays in the footer.
const FLASH_TICKS: u8 = 8;
/// Ticks between two polls of the audit log on the Audit tab.
const AUDIT_POLL_TICKS: u64 = 2;
/// Seconds until the next try after a failed refresh, when shorter than the refresh period.
const RETRY_SECS: u64 = 5;

/// Settings of one dashboard session.
#[derive(Debug, Clone)]
pub struct AppOptions {
    pub read_only: bool,
    /// Shown in the header, e.g. where the exchange server listens.
    pub server_note: Option<String>,
    /// Seconds between automatic refreshes.
    pub refresh_secs: u64,
    /// Recorded as the actor of mapping changes and the default "Revoked By".
    pub actor: String,
    pub color: ColorMode,
}

/// A short note in the footer, e.g. the result of an action.
#[derive(Debug, Clone)]
pub struct Flash {
    pub text: String,
    pub tone: Tone,
    ticks_left: u8,
}

impl Flash {
    pub fn new(text: impl Into<String>, tone: Tone) -> Self {
        Self {
            text: text.into(),
            tone,
            ticks_left: FLASH_TICKS,
        }
    }
}

/// A screen change requested by a screen or tab.
#[derive(Debug, Clone)]
pub enum Navigate {
    Xaa(Proxy),
}

/// Follow-up work that handling an action requests: jobs, dialogs, a flash message, a screen
/// change.
#[derive(Debug, Default)]
pub struct Effects {
    pub jobs: Vec<Job>,
    pub dialogs: Vec<Dialog>,
    pub flash: Option<Flash>,
    pub navigate: Option<Navigate>,
}

/// The top-level screens.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Screen {
    Proxies,
    Providers,
    Xaa,
}

/// Seconds to the next automatic refresh.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Countdown {
    period: u64,
    pub(crate) remaining: u64,
    pub(crate) retrying: bool,
}

impl Countdown {
    fn new(period: u64) -> Self {
        let period = period.max(1);
        Self {
            period,
            remaining: period,
            retrying: false,
        }
    }

    /// Counts one second; returns true when a refresh is due.
    fn tick(&mut self) -> bool {
        self.remaining = self.remaining.saturating_sub(1);
        self.remaining == 0
    }

    fn restart(&mut self) {
        self.remaining = self.period;
        self.retrying = false;
    }

    fn retry_soon(&mut self) {
        self.remaining = self.remaining.min(RETRY_SECS);
        self.retrying = true;
    }
}

/// The dashboard state machine.
#[derive(Debug)]
pub struct App {
    pub(crate) options: AppOptions,
    pub(crate) theme: Theme,
    pub(crate) screen: Screen,
    pub(crate) proxies: ProxiesScreen,
    pub(crate) providers: ProvidersScreen,
    pub(crate) xaa: Option<XaaView>,
    pub(crate) dialogs: Vec<Dialog>,
    pub(crate) countdown: Countdown,
    pub(crate) flash: Option<Flash>,
    /// Actions submitted and not finished yet, with the label of the latest.
    pub(crate) busy: (usize, &'static str),
    jobs: Vec<Job>,
    quit: bool,
    ticks: u64,
}

impl App {
    /// Creates a dashboard on the Proxies screen with the first loads queued.
    pub fn new(options: AppOptions) -> Self {
        let mut app = Self {
            theme: Theme::new(options.color),
            countdown: Countdown::new(options.refresh_secs),
            options,
            screen: Screen::Proxies,
            proxies: ProxiesScreen::default(),
            providers: ProvidersScreen::default(),
            xaa: None,
            dialogs: Vec::new(),
            flash: None,
            busy: (0, ""),
            jobs: Vec::new(),
            quit: false,
            ticks: 0,
        };
        app.refresh_current();
        app
    }

    /// Reacts to one event; returns whether the screen must be redrawn.
    pub fn handle(&mut self, event: AppEvent) -> bool {
        match event {
            AppEvent::Terminal(Event::Key(key)) if key.kind == KeyEventKind::Press => {
                self.handle_key(&key)
            }
            AppEvent::Terminal(paste @ Event::Paste(_)) => self.pass_input(&paste),
            AppEvent::Terminal(Event::Resize(..)) => true,
            AppEvent::Terminal(_) => false,
            AppEvent::Tick => self.on_tick(),
            AppEvent::Job(output) => {
                self.apply(output);
                true
            }
            AppEvent::Stop(reason) => {
                tracing::info!(reason, "dashboard stopping");
                self.quit = true;
                true
            }
        }
    }

    /// Takes the jobs requested since the last call.
    pub fn take_jobs(&mut self) -> Vec<Job> {
        std::mem::take(&mut self.jobs)
    }

    pub fn should_quit(&self) -> bool {
        self.quit
    }

    /// Draws the whole screen from the state in memory, without store I/O. It only updates
    /// the tables' scroll offsets.
    pub fn draw(&mut self, frame: &mut Frame) {
        ui::draw(self, frame);
    }

    /// Returns the screen on display.
    pub fn screen(&self) -> Screen {
        self.screen
    }

    /// Returns the tab of the XAA view when that view is on display.
    pub fn tab(&self) -> Option<Tab> {
        match (self.screen, &self.xaa) {
            (Screen::Xaa, Some(view)) => Some(view.tab),
            _ => None,
        }
    }

    /// Returns the number of open dialogs.
    pub fn dialog_count(&self) -> usize {
        self.dialogs.len()
    }

    /// Returns the key scopes of the focused element, most specific first.
    pub(crate) fn scopes(&self) -> Vec<Scope> {
        if let Some(dialog) = self.dialogs.last() {
            return dialog.scopes();
        }
        match (self.screen, &self.xaa) {
            (Screen::Xaa, Some(view)) => view.scopes(),
            (Screen::Providers, _) => {
                vec![Scope::Providers, Scope::List, Scope::Global, Scope::Always]
            }
            _ => vec![Scope::Proxies, Scope::List, Scope::Global, Scope::Always],
        }
    }

    fn handle_key(&mut self, key: &KeyEvent) -> bool {
        match keys::resolve(&self.scopes(), key, self.options.read_only) {
            Resolution::Action(action) => self.perform(action, key),
            Resolution::Rejected(binding) => {
                let label = strings::action_label(binding.action);
                self.flash = Some(Flash::new(strings::rejected_read_only(label), Tone::Error));
                true
            }
            Resolution::Unbound => self.pass_input(&Event::Key(*key)),
        }
    }

    /// Gives a key no binding took, or a paste, to the focused text field.
    fn pass_input(&mut self, event: &Event) -> bool {
        if let Some(dialog) = self.dialogs.last_mut() {
            return dialog.handle_input(event);
        }
        match (self.screen, &mut self.xaa) {
            (Screen::Xaa, Some(view)) => view.handle_input(event),
            _ => false,
        }
    }

    fn perform(&mut self, action: Action, key: &KeyEvent) -> bool {
        match action {
            Action::Quit => {
                self.quit = true;
                return true;
            }
            Action::ToggleHelp => {
                let help = HelpDialog::new(self.options.read_only);
                self.dialogs.push(Dialog::Help(help));
                return true;
            }
            _ => {}
        }
        let mut effects = Effects::default();
        if let Some(dialog) = self.dialogs.last_mut() {
            if dialog.handle(action, &mut effects) == Outcome::Close {
                self.dialogs.pop();
            }
        } else {
            self.perform_on_screen(action, key, &mut effects);
        }
        self.apply_effects(effects);
        true
    }

    fn perform_on_screen(&mut self, action: Action, key: &KeyEvent, effects: &mut Effects) {
        match action {
            Action::Refresh => self.refresh_current(),
            Action::Back => self.go_home(),
            Action::OpenProviders => {
                self.screen = Screen::Providers;
                self.refresh_current();
            }
            _ => match self.screen {
                Screen::Proxies => self.proxies.handle(action, effects),
                Screen::Providers => self.providers.handle(action, effects),
                Screen::Xaa => {
                    let Some(view) = self.xaa.as_mut() else {
                        return;
                    };
                    let context = TabContext {
                        theme: &self.theme,
                        read_only: self.options.read_only,
                        actor: &self.options.actor,
                        providers: self.providers.states(),
                    };
                    if view.handle(action, key, &context, effects) {
                        self.countdown.restart();
                    }
                }
            },
        }
    }

    fn apply_effects(&mut self, effects: Effects) {
        for job in effects.jobs {
            self.submit(job);
        }
        self.dialogs.extend(effects.dialogs);
        if let Some(flash) = effects.flash {
            self.flash = Some(flash);
        }
        if let Some(Navigate::Xaa(proxy)) = effects.navigate {
            self.open_xaa(proxy);
        }
    }

    /// Queues a job. Read-only mode never lets a mutating job through, whatever asked for it.
    pub(crate) fn submit(&mut self, job: Job) {
        if job.is_mutating() {
            if self.options.read_only {
                tracing::warn!(?job, "read-only mode rejected an action");
                self.flash = Some(Flash::new(strings::READ_ONLY_REJECTED, Tone::Error));
                return;
            }
            self.busy = (self.busy.0 + 1, busy_label(&job));
        }
        self.jobs.push(job);
    }

    pub(crate) fn finish_action(&mut self) {
        self.busy.0 = self.busy.0.saturating_sub(1);
    }

    fn open_xaa(&mut self, proxy: Proxy) {
        self.xaa = Some(XaaView::new(proxy, &self.options.actor));
        self.screen = Screen::Xaa;
        self.refresh_current();
    }

    fn go_home(&mut self) {
        self.screen = Screen::Proxies;
        self.xaa = None;
        self.refresh_current();
    }

    /// Requests fresh data for what is on screen and restarts the countdown.
    pub(crate) fn refresh_current(&mut self) {
        self.countdown.restart();
        let mut jobs = vec![self.providers.refresh()];
        match (self.screen, self.xaa.as_mut()) {
            (Screen::Xaa, Some(view)) => jobs.extend(view.refresh()),
            (Screen::Providers, _) => {}
            _ => jobs.push(self.proxies.refresh()),
        }
        for job in jobs {
            self.submit(job);
        }
    }

    fn on_tick(&mut self) -> bool {
        self.ticks += 1;
        if self.countdown.tick() {
            self.refresh_current();
        }
        if self.tab() == Some(Tab::Audit)
            && self.ticks.is_multiple_of(AUDIT_POLL_TICKS)
            && let Some(job) = self.xaa.as_mut().and_then(XaaView::poll_audit)
        {
            self.submit(job);
        }
        if let Some(flash) = &mut self.flash {
            flash.ticks_left = flash.ticks_left.saturating_sub(1);
            if flash.ticks_left == 0 {
                self.flash = None;
            }
        }
        // The footer's countdown changes every second.
        true
    }
}

fn busy_label(job: &Job) -> &'static str {
    match job {
        Job::CreateMapping { .. } => strings::CREATING,
        Job::RevokeToken { .. } | Job::RevokeSubject { .. } => strings::REVOKING,
        Job::CreateProvider { .. } => strings::ADDING_PROVIDER,
        _ => strings::WORKING,
    }
}
