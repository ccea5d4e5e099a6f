//! The home screen: every proxy with its kind, mapping count and active tokens. Enter or `x`
//! opens the XAA view of the selected proxy.

use ratatui::Frame;
use ratatui::layout::Rect;

use super::move_selection;
use crate::core::model::Proxy;
use crate::tui::app::{Effects, Navigate};
use crate::tui::dialogs::{ConfirmDialog, Dialog};
use crate::tui::jobs::{Job, ProxySummary};
use crate::tui::keys::Action;
use crate::tui::panel::Panel;
use crate::tui::strings;
use crate::tui::table::{CellText, Column, Selection, TableView};
use crate::tui::text;
use crate::tui::theme::Theme;
use crate::tui::ui::panel_block;

const COLUMNS: [Column; 5] = [
    Column::left(strings::COL_NAME, 40),
    Column::left(strings::COL_KIND, 4),
    Column::right(strings::COL_MAPPINGS, 10),
    Column::right(strings::COL_ACTIVE_TOKENS, 14),
    Column::left(strings::COL_ISSUANCE, 8),
];

#[derive(Debug, Default)]
pub struct ProxiesScreen {
    pub panel: Panel<Vec<ProxySummary>>,
    pub selection: Selection,
}

impl ProxiesScreen {
    pub fn refresh(&mut self) -> Job {
        self.panel.start();
        Job::LoadProxies
    }

    fn rows(&self) -> &[ProxySummary] {
        self.panel.data().map_or(&[], Vec::as_slice)
    }

    pub fn handle(&mut self, action: Action, effects: &mut Effects) {
        let len = self.rows().len();
        if move_selection(&mut self.selection, len, action) {
            return;
        }
        let Some(summary) = self.rows().get(self.selection.selected) else {
            return;
        };
        match action {
            Action::OpenXaa => effects.navigate = Some(Navigate::Xaa(summary.proxy.clone())),
            Action::ToggleIssuance => {
                let dialog = issuance_dialog(&summary.proxy);
                effects.dialogs.push(Dialog::Confirm(dialog));
            }
            _ => {}
        }
    }

    pub fn render(&mut self, frame: &mut Frame, area: Rect, theme: &Theme) {
        let block = panel_block(strings::PROXIES_TITLE, &self.panel, theme);
        let items = self.panel.data().map_or(&[][..], Vec::as_slice);
        let cells = |summary: &ProxySummary| proxy_cells(summary, theme);
        TableView {
            columns: &COLUMNS,
            items,
            cells: &cells,
            block,
            empty: if self.panel.data().is_some() {
                strings::NO_PROXIES
            } else {
                strings::LOADING
            },
            highlight: true,
        }
        .render(frame, area, &mut self.selection, theme);
    }
}

/// Builds the kill switch confirmation: stop issuance when it is on, resume it when stopped.
fn issuance_dialog(proxy: &Proxy) -> ConfirmDialog {
    let enable = !proxy.issuance_enabled;
    let job = Job::SetIssuance {
        proxy_id: proxy.id,
        enabled: enable,
    };
    let question = strings::confirm_issuance(&proxy.name, enable);
    if enable {
        ConfirmDialog::new(
            strings::RESUME_ISSUANCE_TITLE,
            question,
            None,
            strings::RESUME_BUTTON,
            job,
        )
    } else {
        ConfirmDialog::new(
            strings::STOP_ISSUANCE_TITLE,
            question,
            Some(strings::STOP_ISSUANCE_WARNING),
            strings::STOP_BUTTON,
            job,
        )
    }
}

fn proxy_cells(summary: &ProxySummary, theme: &Theme) -> Vec<CellText> {
    let issuance = if summary.proxy.issuance_enabled {
        CellText::plain(strings::ISSUANCE_ON)
    } else {
        CellText::styled(strings::ISSUANCE_OFF, theme.warning)
    };
    vec![
        CellText::plain(summary.proxy.name.as_str()),
        CellText::plain(summary.proxy.kind.as_str()),
        CellText::plain(summary.mapping_count.to_string()),
        CellText::plain(text::count(summary.active_tokens)),
        issuance,
    ]
}
