//! The Providers screen: each IdP with its key set state (keys, last fetch, last error), and
//! the details of the selected one. `e` enables or disables it after a confirmation, `r`
//! fetches its keys now.

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Paragraph, Wrap};

use super::move_selection;
use crate::tui::app::Effects;
use crate::tui::dialogs::{AddProviderDialog, ConfirmDialog, Dialog};
use crate::tui::jobs::{Job, ProviderState};
use crate::tui::keys::Action;
use crate::tui::panel::Panel;
use crate::tui::strings;
use crate::tui::table::{CellText, Column, Selection, TableView};
use crate::tui::text;
use crate::tui::theme::Theme;
use crate::tui::ui::panel_block;

const COLUMNS: [Column; 6] = [
    Column::left(strings::COL_NAME, 32),
    Column::left(strings::COL_KIND, 4),
    Column::left(strings::COL_ENABLED, 7),
    Column::right(strings::COL_KEYS, 4),
    Column::left(strings::COL_LAST_FETCH, text::TIME_WIDTH).keep(text::TIME_WIDTH),
    Column::left(strings::COL_LAST_ERROR, 200),
];

/// Lines of the details pane under the table.
const DETAILS_HEIGHT: u16 = 8;

#[derive(Debug, Default)]
pub struct ProvidersScreen {
    pub panel: Panel<Vec<ProviderState>>,
    pub selection: Selection,
}

impl ProvidersScreen {
    pub fn refresh(&mut self) -> Job {
        self.panel.start();
        Job::LoadProviders
    }

    /// Returns the loaded providers (empty before the first load).
    pub fn states(&self) -> &[ProviderState] {
        self.panel.data().map_or(&[], Vec::as_slice)
    }

    /// Returns a provider's name for messages, or its id when it is not loaded.
    pub fn name_of(&self, provider_id: i64) -> String {
        self.states()
            .iter()
            .find(|state| state.provider.id == provider_id)
            .map_or_else(
                || provider_id.to_string(),
                |state| state.provider.name.clone(),
            )
    }

    fn selected(&self) -> Option<&ProviderState> {
        self.states().get(self.selection.selected)
    }

    pub fn handle(&mut self, action: Action, effects: &mut Effects) {
        let len = self.states().len();
        if move_selection(&mut self.selection, len, action) {
            return;
        }
        if action == Action::AddProvider {
            let dialog = AddProviderDialog::default();
            effects.dialogs.push(Dialog::AddProvider(dialog));
            return;
        }
        let Some(state) = self.selected() else {
            return;
        };
        let provider = &state.provider;
        match action {
            Action::ToggleProvider => {
                let enable = !provider.enabled;
                let job = Job::SetProviderEnabled {
                    provider_id: provider.id,
                    enabled: enable,
                };
                let dialog = if enable {
                    ConfirmDialog::new(
                        strings::PROVIDER_ENABLE_TITLE,
                        strings::confirm_toggle_provider(&provider.name, true),
                        Some(strings::PROVIDER_ENABLE_NOTE),
                        strings::ENABLE_BUTTON,
                        job,
                    )
                } else {
                    ConfirmDialog::new(
                        strings::PROVIDER_DISABLE_TITLE,
                        strings::confirm_toggle_provider(&provider.name, false),
                        Some(strings::PROVIDER_DISABLE_WARNING),
                        strings::DISABLE_BUTTON,
                        job,
                    )
                };
                effects.dialogs.push(Dialog::Confirm(dialog));
            }
            Action::RefreshKeys => effects.jobs.push(Job::RefreshProviderKeys {
                provider_id: provider.id,
            }),
            _ => {}
        }
    }

    pub fn render(&mut self, frame: &mut Frame, area: Rect, theme: &Theme) {
        let layout = Layout::vertical([Constraint::Min(4), Constraint::Length(DETAILS_HEIGHT)]);
        let [table_area, details_area] = area.layout(&layout);
        let block = panel_block(strings::PROVIDERS_TITLE, &self.panel, theme);
        let cells = |state: &ProviderState| provider_cells(state, theme);
        TableView {
            columns: &COLUMNS,
            items: self.panel.data().map_or(&[][..], Vec::as_slice),
            cells: &cells,
            block,
            empty: if self.panel.data().is_some() {
                strings::NO_PROVIDERS
            } else {
                strings::LOADING
            },
            highlight: true,
        }
        .render(frame, table_area, &mut self.selection, theme);
        self.render_details(frame, details_area, theme);
    }

    fn render_details(&self, frame: &mut Frame, area: Rect, theme: &Theme) {
        let Some(state) = self.selected() else {
            return;
        };
        let provider = &state.provider;
        let block = Block::bordered()
            .border_style(theme.border)
            .title(Line::styled(
                format!(" {} ", text::fit(&provider.name, 40)),
                theme.title,
            ));
        let health = state.health.as_ref();
        let jwks_uri = health
            .and_then(|h| h.jwks_uri.clone())
            .or_else(|| provider.jwks_uri.clone())
            .unwrap_or_else(|| strings::JWKS_DISCOVERED.to_owned());
        let expires = health.and_then(|h| h.expires_at);
        let error = health.and_then(|h| h.last_error.clone());
        let width = usize::from(area.width.saturating_sub(2));
        let lines = vec![
            detail(strings::LABEL_ISSUER, &provider.issuer, theme.text, theme),
            detail(strings::LABEL_JWKS_URI, &jwks_uri, theme.text, theme),
            detail(
                strings::LABEL_EXPIRES,
                &text::optional_time(expires, width, strings::NOT_FETCHED),
                theme.text,
                theme,
            ),
            detail(
                strings::LABEL_REPLAY,
                provider.replay_policy.as_str(),
                theme.text,
                theme,
            ),
            detail(
                strings::COL_LAST_ERROR,
                error.as_deref().unwrap_or(strings::NONE),
                if error.is_some() {
                    theme.error
                } else {
                    theme.text
                },
                theme,
            ),
        ];
        let body = Paragraph::new(lines)
            .block(block)
            .wrap(Wrap { trim: false });
        frame.render_widget(body, area);
    }
}

/// Builds a `label  value` line of the details pane, sanitizing the value.
fn detail(
    label: &'static str,
    value: &str,
    style: ratatui::style::Style,
    theme: &Theme,
) -> Line<'static> {
    Line::from(vec![
        Span::styled(format!("{label:<14}"), theme.title),
        Span::styled(text::sanitize(value).into_owned(), style),
    ])
}

fn provider_cells(state: &ProviderState, theme: &Theme) -> Vec<CellText> {
    let provider = &state.provider;
    let health = state.health.as_ref();
    let enabled = if provider.enabled {
        CellText::plain(strings::YES)
    } else {
        CellText::styled(strings::NO, theme.warning)
    };
    let keys = health.map_or(0, |h| h.key_count);
    let fetched = health.and_then(|h| h.fetched_at);
    let error = health.and_then(|h| h.last_error.clone());
    vec![
        CellText::plain(provider.name.as_str()),
        CellText::plain(provider.kind.as_str()),
        enabled,
        CellText::styled(
            keys.to_string(),
            if keys == 0 { theme.warning } else { theme.text },
        ),
        CellText::plain(fetched.map_or_else(
            || strings::NEVER.to_owned(),
            |at| text::time(at, text::TIME_WIDTH),
        )),
        match error {
            Some(error) => CellText::styled(error, theme.error),
            None => CellText::styled(strings::NONE, theme.muted),
        },
    ]
}
