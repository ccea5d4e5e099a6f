//! The Audit tab: the live audit log, newest first. While the tab is open the app polls for
//! events newer than the newest shown (`after_id`) every two seconds. `f` cycles the event
//! type filter, and Enter shows every field of an event.

use ratatui::Frame;
use ratatui::layout::Rect;
use serde_json::Value;

use super::TabContext;
use crate::core::CoreError;
use crate::core::model::{AuditEvent, AuditEventType};
use crate::tui::app::Effects;
use crate::tui::dialogs::{Dialog, MessageDialog};
use crate::tui::jobs::Job;
use crate::tui::keys::Action;
use crate::tui::panel::Panel;
use crate::tui::screens::move_selection;
use crate::tui::strings;
use crate::tui::table::{CellText, Column, Selection, TableView};
use crate::tui::text;
use crate::tui::theme::Theme;
use crate::tui::ui::panel_block;

/// Events kept on screen; older ones drop off the end as new ones arrive.
const MAX_EVENTS: usize = 2000;

const COLUMNS: [Column; 5] = [
    Column::left(strings::COL_TIME, text::TIME_WIDTH).keep(text::TIME_WIDTH),
    Column::left(strings::COL_EVENT, 29).keep(29),
    Column::left(strings::COL_ACTOR, 32),
    Column::right(strings::COL_PROXY, 6),
    Column::left(strings::COL_DETAILS, 400),
];

#[derive(Debug, Default)]
pub struct AuditTab {
    pub panel: Panel<Vec<AuditEvent>>,
    pub selection: Selection,
    pub event_type: Option<AuditEventType>,
}

impl AuditTab {
    /// Loads the newest events of the current filter, replacing what is shown.
    pub fn reload(&mut self) -> Job {
        self.panel.start();
        Job::LoadAudit {
            event_type: self.event_type,
            after_id: None,
        }
    }

    /// Asks for the events newer than the newest shown.
    pub fn poll(&mut self) -> Job {
        match self.panel.data().and_then(|events| events.first()) {
            Some(newest) => Job::LoadAudit {
                event_type: self.event_type,
                after_id: Some(newest.id),
            },
            None => self.reload(),
        }
    }

    /// Takes a load or poll result, unless the filter changed since it was requested.
    pub fn finish(
        &mut self,
        event_type: Option<AuditEventType>,
        after_id: Option<i64>,
        result: Result<Vec<AuditEvent>, CoreError>,
    ) {
        if event_type != self.event_type {
            return;
        }
        match (after_id, result) {
            (Some(_), Ok(new_events)) if self.panel.data().is_some() => {
                let selection = &mut self.selection;
                self.panel
                    .update(|events| prepend(events, new_events, selection));
            }
            (_, result) => {
                self.panel.finish(result);
                self.selection.clamp(self.events().len());
            }
        }
    }

    fn events(&self) -> &[AuditEvent] {
        self.panel.data().map_or(&[], Vec::as_slice)
    }

    pub fn handle(&mut self, action: Action, effects: &mut Effects) {
        let len = self.events().len();
        if move_selection(&mut self.selection, len, action) {
            return;
        }
        match action {
            Action::CycleEventType => {
                self.event_type = next_event_type(self.event_type);
                self.selection.first();
                effects.jobs.push(self.reload());
            }
            Action::ShowDetails => {
                if let Some(event) = self.events().get(self.selection.selected) {
                    effects.dialogs.push(Dialog::Message(details_dialog(event)));
                }
            }
            _ => {}
        }
    }

    pub fn render(&mut self, frame: &mut Frame, area: Rect, context: &TabContext) {
        let theme = context.theme;
        let filter = self
            .event_type
            .map_or(strings::STATUS_ALL, AuditEventType::as_str);
        let title = format!(
            "{} · {} · {}",
            strings::TAB_AUDIT,
            strings::AUDIT_LIVE,
            strings::event_filter(filter)
        );
        let block = panel_block(&title, &self.panel, theme);
        let time_width = text::table_time_width(area.width);
        let cells = |event: &AuditEvent| event_cells(event, time_width, theme);
        let empty = if self.panel.data().is_some() {
            strings::NO_EVENTS
        } else {
            strings::LOADING
        };
        TableView {
            columns: &COLUMNS,
            items: self.panel.data().map_or(&[][..], Vec::as_slice),
            cells: &cells,
            block,
            empty,
            highlight: true,
        }
        .render(frame, area, &mut self.selection, theme);
    }
}

/// Puts newly polled events (newest first) in front, skipping any already shown, and keeps the
/// selected event selected unless the operator follows the newest one.
fn prepend(events: &mut Vec<AuditEvent>, new_events: Vec<AuditEvent>, selection: &mut Selection) {
    let newest = events.first().map_or(i64::MIN, |event| event.id);
    let fresh: Vec<AuditEvent> = new_events.into_iter().filter(|e| e.id > newest).collect();
    if fresh.is_empty() {
        return;
    }
    if selection.selected > 0 {
        selection.selected += fresh.len();
        selection.offset += fresh.len();
    }
    events.splice(0..0, fresh);
    events.truncate(MAX_EVENTS);
    selection.clamp(events.len());
}

fn next_event_type(current: Option<AuditEventType>) -> Option<AuditEventType> {
    match current {
        None => AuditEventType::ALL.first().copied(),
        Some(event_type) => {
            let index = AuditEventType::ALL.iter().position(|t| *t == event_type);
            index.and_then(|i| AuditEventType::ALL.get(i + 1).copied())
        }
    }
}

/// Formats an audit field value as text: strings as they are, arrays joined by spaces.
fn value_text(value: &Value) -> String {
    match value {
        Value::String(text) => text.clone(),
        Value::Null => strings::NONE.to_owned(),
        Value::Array(items) => items.iter().map(value_text).collect::<Vec<_>>().join(" "),
        other => other.to_string(),
    }
}

/// Formats the reason code and fields of an event on one line: `reason_code key=value ...`.
fn summary(event: &AuditEvent) -> String {
    let fields = event
        .fields
        .iter()
        .filter(|(_, value)| !value.is_null())
        .map(|(key, value)| format!("{key}={}", value_text(value)));
    event
        .reason_code
        .iter()
        .cloned()
        .chain(fields)
        .collect::<Vec<_>>()
        .join(" ")
}

fn event_cells(event: &AuditEvent, time_width: usize, theme: &Theme) -> Vec<CellText> {
    let event_style = if event.event_type == AuditEventType::XaaTokenValidationFailed {
        theme.error
    } else {
        theme.text
    };
    vec![
        CellText::plain(text::time(event.at, time_width)),
        CellText::styled(event.event_type.as_str(), event_style),
        CellText::plain(event.actor.as_str()),
        CellText::plain(event.proxy_id.map(|id| id.to_string()).unwrap_or_default()),
        CellText::plain(summary(event)),
    ]
}

fn details_dialog(event: &AuditEvent) -> MessageDialog {
    let mut dialog = MessageDialog::new(strings::AUDIT_DETAILS_TITLE)
        .field(strings::COL_TIME, text::time(event.at, text::TIME_WIDTH))
        .field(strings::COL_EVENT, event.event_type.as_str())
        .field(strings::COL_ACTOR, event.actor.as_str());
    if let Some(proxy_id) = event.proxy_id {
        dialog = dialog.field(strings::COL_PROXY, proxy_id.to_string());
    }
    if let Some(provider_id) = event.idp_provider_id {
        dialog = dialog.field(strings::COL_PROVIDER, provider_id.to_string());
    }
    if let Some(code) = &event.reason_code {
        dialog = dialog.field(strings::COL_REASON_CODE, code.as_str());
    }
    for (key, value) in &event.fields {
        dialog = dialog.field(key.as_str(), value_text(value));
    }
    dialog
}
