//! The Client Mappings tab: the proxy's mappings with the columns of the web console (IdP
//! Provider, Client ID at IdP, Client ID at Resource AS, Allowed Scopes, Created At). `a` adds
//! one, `d` deletes the selected one after a confirmation, `/` filters the rows as you type.

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};

use super::TabContext;
use super::filter::{FilterChange, FilterLine};
use crate::core::CoreError;
use crate::core::model::ClientMapping;
use crate::tui::app::Effects;
use crate::tui::dialogs::{AddMappingDialog, ConfirmDialog, Dialog, MessageDialog};
use crate::tui::jobs::Job;
use crate::tui::keys::Action;
use crate::tui::panel::Panel;
use crate::tui::screens::move_selection;
use crate::tui::strings;
use crate::tui::table::{CellText, Column, Selection, TableView};
use crate::tui::text;
use crate::tui::ui::panel_block;

const COLUMNS: [Column; 5] = [
    Column::left(strings::COL_IDP_PROVIDER, 40),
    Column::left(strings::COL_CLIENT_AT_IDP, 64),
    Column::left(strings::COL_CLIENT_AT_AS, 64),
    Column::left(strings::COL_ALLOWED_SCOPES, 200),
    Column::left(strings::COL_CREATED_AT, text::TIME_WIDTH).keep(text::TIME_WIDTH),
];

#[derive(Debug, Default)]
pub struct MappingsTab {
    pub panel: Panel<Vec<ClientMapping>>,
    pub selection: Selection,
    pub filter: FilterLine,
    /// Per loaded mapping, the lowercase text the filter searches, built once per load so
    /// filtering ten thousand rows on every draw allocates nothing.
    search_text: Vec<String>,
}

impl MappingsTab {
    pub fn refresh(&mut self, proxy_id: i64) -> Job {
        self.panel.start();
        Job::LoadMappings { proxy_id }
    }

    pub fn finish(&mut self, result: Result<Vec<ClientMapping>, CoreError>) {
        self.panel.finish(result);
        let all = self.panel.data().map_or(&[][..], Vec::as_slice);
        self.search_text = all.iter().map(search_text).collect();
        let len = self.shown().len();
        self.selection.clamp(len);
    }

    /// Returns the mappings that match the filter, in store order.
    fn shown(&self) -> Vec<&ClientMapping> {
        shown(&self.panel, &self.search_text, &self.filter)
    }

    pub fn handle(
        &mut self,
        action: Action,
        proxy_id: i64,
        context: &TabContext,
        effects: &mut Effects,
    ) {
        let shown = shown(&self.panel, &self.search_text, &self.filter);
        let selected = shown.get(self.selection.selected).map(|m| (*m).clone());
        let len = shown.len();
        if move_selection(&mut self.selection, len, action) {
            return;
        }
        match action {
            Action::Filter => self.filter.start(),
            Action::ApplyFilter | Action::ClearFilter => self.end_filter(action),
            Action::AddMapping => {
                let all = self.panel.data().map_or(&[][..], Vec::as_slice);
                let dialog = AddMappingDialog::new(proxy_id, context.providers, all, context.actor);
                effects.dialogs.push(Dialog::AddMapping(dialog));
            }
            Action::DeleteMapping => {
                if let Some(mapping) = selected {
                    effects
                        .dialogs
                        .push(Dialog::Confirm(delete_dialog(&mapping, context.actor)));
                }
            }
            Action::ShowDetails => {
                if let Some(mapping) = selected {
                    effects
                        .dialogs
                        .push(Dialog::Message(details_dialog(&mapping)));
                }
            }
            _ => {}
        }
    }

    /// Keeps (Enter) or clears (Esc) the filter and selects the first row.
    fn end_filter(&mut self, action: Action) {
        if self.filter.handle(action) == FilterChange::Applied {
            self.selection.first();
        }
    }

    pub fn render(&mut self, frame: &mut Frame, area: Rect, context: &TabContext) {
        let theme = context.theme;
        let filter_height = u16::from(self.filter.is_shown());
        let layout = Layout::vertical([Constraint::Min(3), Constraint::Length(filter_height)]);
        let [table_area, filter_area] = area.layout(&layout);

        let shown = shown(&self.panel, &self.search_text, &self.filter);
        let total = self.panel.data().map_or(0, Vec::len);
        let title = format!(
            "{} · {}",
            strings::CARD_MAPPINGS,
            strings::rows_shown(shown.len(), total)
        );
        let block = panel_block(&title, &self.panel, theme);
        let time_width = text::table_time_width(area.width);
        let cells = |mapping: &&ClientMapping| mapping_cells(mapping, time_width);

        let empty = if self.panel.data().is_none() {
            strings::LOADING
        } else if total > 0 {
            strings::NO_MATCHES
        } else if context.read_only {
            strings::NO_MAPPINGS_READ_ONLY
        } else {
            strings::NO_MAPPINGS
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

/// Joins the lowercase provider name, client ids and scopes of a mapping. Newlines separate
/// them, so a filter cannot match across two of them.
fn search_text(mapping: &ClientMapping) -> String {
    [
        mapping.idp_provider_name.as_str(),
        &mapping.client_id_at_idp,
        &mapping.client_id_at_resource_as,
        &mapping.allowed_scopes.join(" "),
    ]
    .join("\n")
    .to_lowercase()
}

fn mapping_cells(mapping: &ClientMapping, time_width: usize) -> Vec<CellText> {
    vec![
        CellText::plain(mapping.idp_provider_name.as_str()),
        CellText::plain(mapping.client_id_at_idp.as_str()),
        CellText::plain(mapping.client_id_at_resource_as.as_str()),
        CellText::plain(mapping.allowed_scopes.join(", ")),
        CellText::plain(text::time(mapping.created_at, time_width)),
    ]
}

fn delete_dialog(mapping: &ClientMapping, actor: &str) -> ConfirmDialog {
    let question = strings::confirm_delete_mapping(
        &mapping.client_id_at_idp,
        &mapping.idp_provider_name,
        &mapping.client_id_at_resource_as,
    );
    let job = Job::DeleteMapping {
        proxy_id: mapping.proxy_id,
        mapping_id: mapping.id,
        actor: actor.to_owned(),
    };
    ConfirmDialog::new(
        strings::DELETE_MAPPING_TITLE,
        question,
        Some(strings::DELETE_WARNING),
        strings::DELETE_BUTTON,
        job,
    )
}

fn details_dialog(mapping: &ClientMapping) -> MessageDialog {
    MessageDialog::new(strings::MAPPING_DETAILS_TITLE)
        .field(
            strings::COL_IDP_PROVIDER,
            format!(
                "{} (id {})",
                mapping.idp_provider_name, mapping.idp_provider_id
            ),
        )
        .field(
            strings::COL_CLIENT_AT_IDP,
            mapping.client_id_at_idp.as_str(),
        )
        .field(
            strings::COL_CLIENT_AT_AS,
            mapping.client_id_at_resource_as.as_str(),
        )
        .field(
            strings::COL_ALLOWED_SCOPES,
            mapping.allowed_scopes.join(", "),
        )
        .field(
            strings::COL_CREATED_AT,
            text::time(mapping.created_at, text::TIME_WIDTH),
        )
}

/// Returns the loaded rows that contain the filter text (case-insensitive).
fn shown<'a>(
    panel: &'a Panel<Vec<ClientMapping>>,
    search_text: &[String],
    filter: &FilterLine,
) -> Vec<&'a ClientMapping> {
    let all = panel.data().map_or(&[][..], Vec::as_slice);
    let needle = filter.text().to_lowercase();
    if needle.is_empty() {
        return all.iter().collect();
    }
    all.iter()
        .zip(search_text)
        .filter(|(_, text)| text.contains(&needle))
        .map(|(mapping, _)| mapping)
        .collect()
}
