//! The Tokens tab: the proxy's most recent ID-JAG records with their status. `/` filters by
//! subject or client (the loaded rows narrow as you type; Enter also searches the store for
//! an exact match), `s` cycles the status filter, `d` revokes the selected token after a
//! confirmation.

use chrono::Utc;
use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};

use super::TabContext;
use super::filter::{FilterChange, FilterLine};
use crate::core::CoreError;
use crate::core::model::IdJagRecord;
use crate::tui::app::Effects;
use crate::tui::dialogs::{ConfirmDialog, Dialog, MessageDialog};
use crate::tui::jobs::{self, Job, TokenFilter, TokenStatus};
use crate::tui::keys::Action;
use crate::tui::panel::Panel;
use crate::tui::screens::move_selection;
use crate::tui::strings;
use crate::tui::table::{CellText, Column, Selection, TableView};
use crate::tui::text;
use crate::tui::theme::Theme;
use crate::tui::ui::panel_block;

const COLUMNS: [Column; 7] = [
    Column::left(strings::COL_STATUS, 7).keep(7),
    Column::left(strings::COL_SUBJECT, 48),
    Column::left(strings::COL_CLIENT, 48),
    Column::left(strings::COL_SCOPES, 80),
    Column::left(strings::COL_EXPIRES, text::TIME_WIDTH).keep(text::TIME_WIDTH),
    Column::right(strings::COL_USES, 6),
    Column::left(strings::COL_JTI, 64),
];

#[derive(Debug, Default)]
pub struct TokensTab {
    pub panel: Panel<Vec<IdJagRecord>>,
    pub selection: Selection,
    pub filter: FilterLine,
    /// The filter of the last load request.
    applied: TokenFilter,
}

impl TokensTab {
    pub fn refresh(&mut self, proxy_id: i64) -> Job {
        self.panel.start();
        Job::LoadTokens {
            proxy_id,
            filter: self.applied.clone(),
        }
    }

    /// Takes a load result unless the filter changed since it was requested.
    pub fn finish(&mut self, filter: &TokenFilter, result: Result<Vec<IdJagRecord>, CoreError>) {
        if *filter != self.applied {
            return;
        }
        self.panel.finish(result);
        let len = self.shown().len();
        self.selection.clamp(len);
    }

    /// Returns the loaded records, narrowed by the filter text while it is typed.
    fn shown(&self) -> Vec<&IdJagRecord> {
        shown(&self.panel, &self.filter)
    }

    pub fn handle(
        &mut self,
        action: Action,
        proxy_id: i64,
        context: &TabContext,
        effects: &mut Effects,
    ) {
        let shown = shown(&self.panel, &self.filter);
        let selected = shown.get(self.selection.selected).map(|r| (*r).clone());
        if move_selection(&mut self.selection, shown.len(), action) {
            return;
        }
        match action {
            Action::Filter => self.filter.start(),
            Action::ApplyFilter | Action::ClearFilter => {
                effects.jobs.extend(self.end_filter(action, proxy_id));
            }
            Action::CycleStatus => {
                self.applied.status = next_status(self.applied.status);
                self.selection.first();
                effects.jobs.push(self.refresh(proxy_id));
            }
            Action::RevokeSelected => {
                if let Some(record) = selected {
                    let dialog = revoke_dialog(&record, context.actor);
                    effects.dialogs.push(Dialog::Confirm(dialog));
                }
            }
            Action::ShowDetails => {
                if let Some(record) = selected {
                    effects
                        .dialogs
                        .push(Dialog::Message(details_dialog(&record)));
                }
            }
            _ => {}
        }
    }

    /// Keeps (Enter) or clears (Esc) the filter and reloads with it.
    fn end_filter(&mut self, action: Action, proxy_id: i64) -> Option<Job> {
        if self.filter.handle(action) != FilterChange::Applied {
            return None;
        }
        self.applied.text = self.filter.text().to_owned();
        self.selection.first();
        Some(self.refresh(proxy_id))
    }

    pub fn render(&mut self, frame: &mut Frame, area: Rect, context: &TabContext) {
        let theme = context.theme;
        let filter_height = u16::from(self.filter.is_shown());
        let layout = Layout::vertical([Constraint::Min(3), Constraint::Length(filter_height)]);
        let [table_area, filter_area] = area.layout(&layout);

        let shown = shown(&self.panel, &self.filter);
        let total = self.panel.data().map_or(0, Vec::len);
        let status = self
            .applied
            .status
            .map_or(strings::STATUS_ALL, TokenStatus::as_str);
        let title = format!(
            "{} · {} · {}",
            strings::TAB_TOKENS,
            strings::rows_shown(shown.len(), total),
            strings::status_filter(status)
        );
        let block = panel_block(&title, &self.panel, theme);
        let time_width = text::table_time_width(area.width);
        let cells = |record: &&IdJagRecord| token_cells(record, time_width, theme);

        let empty = match (self.panel.data(), total) {
            (None, _) => strings::LOADING,
            (Some(_), 0) if self.applied == TokenFilter::default() => strings::NO_TOKENS,
            _ => strings::NO_MATCHES,
        };
        TableView {
            columns: &COLUMNS,
            items: &shown,
            cells: &cells,
            block,
            empty,
            highlight: true,
        }
        .render(frame, table_area, &mut self.selection, theme);

        if self.filter.is_shown() {
            self.filter.render(frame, filter_area, theme);
        }
    }
}

fn next_status(status: Option<TokenStatus>) -> Option<TokenStatus> {
    match status {
        None => Some(TokenStatus::Active),
        Some(TokenStatus::Active) => Some(TokenStatus::Revoked),
        Some(TokenStatus::Revoked) => Some(TokenStatus::Expired),
        Some(TokenStatus::Expired) => None,
    }
}

/// Returns the status of a record now.
fn status_of(record: &IdJagRecord) -> TokenStatus {
    if record.revocation.is_some() {
        TokenStatus::Revoked
    } else if record.expires_at <= Utc::now() {
        TokenStatus::Expired
    } else {
        TokenStatus::Active
    }
}

fn token_cells(record: &IdJagRecord, time_width: usize, theme: &Theme) -> Vec<CellText> {
    let status = status_of(record);
    let status_style = match status {
        TokenStatus::Active => theme.success,
        TokenStatus::Revoked => theme.error,
        TokenStatus::Expired => theme.muted,
    };
    vec![
        CellText::styled(status.as_str(), status_style),
        CellText::plain(record.subject.as_str()),
        CellText::plain(record.client_id.as_str()),
        CellText::plain(record.scopes.join(" ")),
        CellText::plain(text::time(record.expires_at, time_width)),
        CellText::plain(record.presentation_count.to_string()),
        CellText::plain(record.jti.as_str()),
    ]
}

fn revoke_dialog(record: &IdJagRecord, actor: &str) -> ConfirmDialog {
    let job = Job::RevokeToken {
        jti: record.jti.clone(),
        reason: None,
        revoked_by: Some(actor.to_owned()),
    };
    ConfirmDialog::new(
        strings::REVOKE_TOKEN_TITLE,
        strings::confirm_revoke_token(&record.jti),
        Some(strings::REVOKE_WARNING),
        strings::REVOKE_TOKEN_BUTTON,
        job,
    )
}

fn details_dialog(record: &IdJagRecord) -> MessageDialog {
    let time = |at| text::time(at, text::TIME_WIDTH);
    let mut dialog = MessageDialog::new(strings::TOKEN_DETAILS_TITLE)
        .field(strings::COL_JTI, record.jti.as_str())
        .field(strings::COL_STATUS, status_of(record).as_str())
        .field(strings::COL_SUBJECT, record.subject.as_str())
        .field(strings::COL_CLIENT_AT_IDP, record.client_id.as_str())
        .field(
            strings::COL_CLIENT_AT_AS,
            record.client_id_at_resource_as.as_str(),
        )
        .field(strings::COL_SCOPES, record.scopes.join(" "))
        .field(strings::COL_ISSUED, time(record.issued_at))
        .field(strings::COL_EXPIRES, time(record.expires_at))
        .field(strings::COL_USES, record.presentation_count.to_string());
    if let Some(revocation) = &record.revocation {
        dialog = dialog
            .field(strings::REVOKED_AT, time(revocation.revoked_at))
            .field(
                strings::FIELD_REASON,
                revocation.reason.as_deref().unwrap_or(strings::NONE),
            )
            .field(
                strings::FIELD_REVOKED_BY,
                revocation.revoked_by.as_deref().unwrap_or(strings::NONE),
            );
    }
    dialog
}

/// Returns the loaded rows that contain the filter text (case-insensitive).
fn shown<'a>(panel: &'a Panel<Vec<IdJagRecord>>, filter: &FilterLine) -> Vec<&'a IdJagRecord> {
    let all = panel.data().map_or(&[][..], Vec::as_slice);
    let needle = filter.text().to_lowercase();
    all.iter()
        .filter(|row| needle.is_empty() || jobs::token_matches(row, &needle))
        .collect()
}
