//! The XAA view of one proxy and its five tabs: Statistics, Client Mappings, Token
//! Revocation, Tokens and Audit.

mod audit;
mod filter;
mod mappings;
mod revocation;
mod statistics;
mod tokens;

use crossterm::event::{Event, KeyEvent};
use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::Line;
use ratatui::widgets::Tabs;

pub use self::audit::AuditTab;
pub use self::mappings::MappingsTab;
pub use self::revocation::RevocationTab;
pub use self::statistics::StatisticsTab;
pub use self::tokens::TokensTab;
use crate::core::model::Proxy;
use crate::tui::app::Effects;
use crate::tui::jobs::{Job, ProviderState};
use crate::tui::keys::{self, Action, Scope};
use crate::tui::strings;
use crate::tui::theme::Theme;

/// The tabs of the XAA view, in key order (1 to 5).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tab {
    Statistics,
    Mappings,
    Revocation,
    Tokens,
    Audit,
}

impl Tab {
    pub const ALL: [Self; 5] = [
        Self::Statistics,
        Self::Mappings,
        Self::Revocation,
        Self::Tokens,
        Self::Audit,
    ];

    pub fn title(self) -> &'static str {
        match self {
            Self::Statistics => strings::TAB_STATISTICS,
            Self::Mappings => strings::TAB_MAPPINGS,
            Self::Revocation => strings::TAB_REVOCATION,
            Self::Tokens => strings::TAB_TOKENS,
            Self::Audit => strings::TAB_AUDIT,
        }
    }

    pub fn index(self) -> usize {
        Self::ALL.iter().position(|tab| *tab == self).unwrap_or(0)
    }

    fn offset(self, step: isize) -> Self {
        let len = isize::try_from(Self::ALL.len()).unwrap_or(1);
        let index = isize::try_from(self.index()).unwrap_or(0);
        let target = usize::try_from((index + step).rem_euclid(len)).unwrap_or(0);
        Self::ALL[target]
    }
}

/// App state the tabs read while handling keys and drawing.
pub struct TabContext<'a> {
    pub theme: &'a Theme,
    pub read_only: bool,
    pub actor: &'a str,
    pub providers: &'a [ProviderState],
}

/// The XAA view of a proxy.
#[derive(Debug)]
pub struct XaaView {
    pub proxy: Proxy,
    pub tab: Tab,
    pub statistics: StatisticsTab,
    pub mappings: MappingsTab,
    pub revocation: RevocationTab,
    pub tokens: TokensTab,
    pub audit: AuditTab,
}

impl XaaView {
    pub fn new(proxy: Proxy, actor: &str) -> Self {
        Self {
            proxy,
            tab: Tab::Statistics,
            statistics: StatisticsTab::default(),
            mappings: MappingsTab::default(),
            revocation: RevocationTab::new(actor),
            tokens: TokensTab::default(),
            audit: AuditTab::default(),
        }
    }

    /// Returns the key scopes of the current tab, most specific first.
    pub fn scopes(&self) -> Vec<Scope> {
        let tail = [Scope::Xaa, Scope::Global, Scope::Always];
        let mut scopes = match self.tab {
            Tab::Statistics => Vec::new(),
            Tab::Mappings if self.mappings.filter.editing => return filter_scopes(),
            Tab::Mappings => vec![Scope::Mappings, Scope::List],
            Tab::Revocation if self.revocation.editing => return self.revocation.form_scopes(),
            Tab::Revocation => vec![Scope::Revocation, Scope::List],
            Tab::Tokens if self.tokens.filter.editing => return filter_scopes(),
            Tab::Tokens => vec![Scope::Tokens, Scope::List],
            Tab::Audit => vec![Scope::Audit, Scope::List],
        };
        scopes.extend(tail);
        scopes
    }

    /// Handles an action; returns true when it switched tabs (and queued the new tab's load).
    pub fn handle(
        &mut self,
        action: Action,
        key: &KeyEvent,
        context: &TabContext,
        effects: &mut Effects,
    ) -> bool {
        let target = match action {
            Action::NextTab => Some(self.tab.offset(1)),
            Action::PrevTab => Some(self.tab.offset(-1)),
            Action::SelectTab => keys::digit_index(key).and_then(|i| Tab::ALL.get(i).copied()),
            _ => None,
        };
        if let Some(tab) = target {
            self.tab = tab;
            effects.jobs.extend(self.refresh());
            return true;
        }
        let proxy_id = self.proxy.id;
        match self.tab {
            Tab::Statistics => {}
            Tab::Mappings => self.mappings.handle(action, proxy_id, context, effects),
            Tab::Revocation => self.revocation.handle(action, context, effects),
            Tab::Tokens => self.tokens.handle(action, proxy_id, context, effects),
            Tab::Audit => self.audit.handle(action, effects),
        }
        false
    }

    /// Passes a key no binding took (or a paste) to the focused text field.
    pub fn handle_input(&mut self, event: &Event) -> bool {
        match self.tab {
            Tab::Mappings => self.mappings.filter.handle_input(event),
            Tab::Revocation => self.revocation.handle_input(event),
            Tab::Tokens => self.tokens.filter.handle_input(event),
            _ => false,
        }
    }

    /// Returns the loads that refresh the current tab.
    pub fn refresh(&mut self) -> Vec<Job> {
        let proxy_id = self.proxy.id;
        match self.tab {
            Tab::Statistics => vec![self.statistics.refresh(proxy_id)],
            Tab::Mappings => vec![self.mappings.refresh(proxy_id)],
            // The provider dropdown is refreshed with every automatic refresh.
            Tab::Revocation => Vec::new(),
            Tab::Tokens => vec![self.tokens.refresh(proxy_id)],
            Tab::Audit => vec![self.audit.reload()],
        }
    }

    /// Returns the next poll of the live audit log.
    pub fn poll_audit(&mut self) -> Option<Job> {
        (self.tab == Tab::Audit).then(|| self.audit.poll())
    }

    pub fn render(&mut self, frame: &mut Frame, area: Rect, context: &TabContext) {
        let layout = Layout::vertical([Constraint::Length(1), Constraint::Min(0)]);
        let [tabs_area, body] = area.layout(&layout);
        let titles = Tab::ALL.iter().map(|tab| Line::raw(tab.title()));
        let tabs = Tabs::new(titles)
            .select(self.tab.index())
            .style(context.theme.tab)
            .highlight_style(context.theme.tab_active)
            .divider("│");
        frame.render_widget(tabs, tabs_area);
        match self.tab {
            Tab::Statistics => self.statistics.render(frame, body, context),
            Tab::Mappings => self.mappings.render(frame, body, context),
            Tab::Revocation => self.revocation.render(frame, body, context),
            Tab::Tokens => self.tokens.render(frame, body, context),
            Tab::Audit => self.audit.render(frame, body, context),
        }
    }
}

fn filter_scopes() -> Vec<Scope> {
    vec![Scope::Filter, Scope::Always]
}
