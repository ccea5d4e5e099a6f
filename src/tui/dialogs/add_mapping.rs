//! The "Add XAA Client Mapping" dialog: IdP Provider dropdown (enabled providers), Client ID
//! at IdP, Client ID at Resource AS and Allowed Scopes, checked inline before Create Mapping.
//!
//! The checks here repeat the core's (empty fields, scope syntax, duplicates among the loaded
//! mappings) so the operator sees the problem next to the field. The core still decides, and
//! its error lands in the dialog when it disagrees.

use ratatui::Frame;
use ratatui::layout::{Margin, Rect};

use super::{Outcome, frame_dialog};
use crate::core::CoreError;
use crate::core::exchange::claims::is_scope_token;
use crate::core::model::{ClientMapping, NewMapping};
use crate::tui::app::Effects;
use crate::tui::form::{Choice, Field, Form, FormStatus};
use crate::tui::jobs::{Job, ProviderState};
use crate::tui::keys::{Action, Scope};
use crate::tui::strings;
use crate::tui::theme::Theme;

const PROVIDER: usize = 0;
const CLIENT_AT_IDP: usize = 1;
const CLIENT_AT_AS: usize = 2;
const SCOPES: usize = 3;

/// Widest the dialog gets.
const WIDTH: u16 = 78;

#[derive(Debug)]
pub struct AddMappingDialog {
    pub proxy_id: i64,
    pub form: Form,
    /// Provider id and client id at IdP of the proxy's mappings, for the duplicate check.
    existing: Vec<(i64, String)>,
    actor: String,
}

impl AddMappingDialog {
    pub fn new(
        proxy_id: i64,
        providers: &[ProviderState],
        mappings: &[ClientMapping],
        actor: &str,
    ) -> Self {
        let fields = vec![
            Field::choice(strings::COL_IDP_PROVIDER, strings::NO_ENABLED_PROVIDER),
            Field::text(strings::COL_CLIENT_AT_IDP, ""),
            Field::text(strings::COL_CLIENT_AT_AS, ""),
            Field::text(strings::COL_ALLOWED_SCOPES, "").with_hint(strings::SCOPES_HINT),
        ];
        let mut form = Form::new(fields, strings::CREATE_MAPPING);
        form.set_choices(PROVIDER, enabled_choices(providers));
        Self {
            proxy_id,
            form,
            existing: mappings
                .iter()
                .map(|m| (m.idp_provider_id, m.client_id_at_idp.clone()))
                .collect(),
            actor: actor.to_owned(),
        }
    }

    pub fn scopes(&self) -> Vec<Scope> {
        if self.form.choice_focused() {
            vec![Scope::Choice, Scope::Form, Scope::Always]
        } else {
            vec![Scope::Form, Scope::Always]
        }
    }

    pub fn handle(&mut self, action: Action, effects: &mut Effects) -> Outcome {
        match action {
            Action::Cancel => return Outcome::Close,
            Action::NextField => self.form.focus_next_wrapping(),
            Action::PrevField => self.form.focus_prev_wrapping(),
            Action::ChooseNext => self.form.choose(1),
            Action::ChoosePrev => self.form.choose(-1),
            Action::Submit => self.submit(effects),
            _ => {}
        }
        Outcome::Keep
    }

    fn submit(&mut self, effects: &mut Effects) {
        if self.form.is_working() {
            return;
        }
        if let Some(mapping) = self.validate() {
            effects.jobs.push(Job::CreateMapping {
                proxy_id: self.proxy_id,
                mapping,
                actor: self.actor.clone(),
            });
            self.form.status = Some(FormStatus::Working(strings::CREATING));
        }
    }

    /// Checks every field, marks the bad ones and returns the mapping when all pass.
    pub fn validate(&mut self) -> Option<NewMapping> {
        self.form.clear_errors();
        let provider = self.form.choice(PROVIDER).map(|choice| choice.id);
        if provider.is_none() {
            self.form.set_error(PROVIDER, strings::NO_ENABLED_PROVIDER);
        }
        for index in [CLIENT_AT_IDP, CLIENT_AT_AS] {
            let value = self.form.text(index);
            if value.is_empty() {
                self.form.set_error(index, strings::REQUIRED);
            } else if value.chars().any(char::is_whitespace) {
                let label = self.form.fields[index].label;
                self.form
                    .set_error(index, strings::client_id_whitespace(label));
            }
        }
        let scopes: Vec<String> = self
            .form
            .text(SCOPES)
            .split_whitespace()
            .map(str::to_owned)
            .collect();
        if scopes.is_empty() {
            self.form.set_error(SCOPES, strings::REQUIRED);
        } else if let Some(bad) = scopes.iter().find(|scope| !is_scope_token(scope)) {
            self.form.set_error(SCOPES, strings::invalid_scope(bad));
        }
        let client_at_idp = self.form.text(CLIENT_AT_IDP).to_owned();
        if let Some(provider_id) = provider
            && self.is_duplicate(provider_id, &client_at_idp)
        {
            let provider = self.form.choice(PROVIDER).map(|c| c.label.clone());
            let message = strings::duplicate_mapping(&client_at_idp, &provider.unwrap_or_default());
            self.form.set_error(CLIENT_AT_IDP, message);
        }
        if self.form.has_errors() {
            return None;
        }
        Some(NewMapping {
            idp_provider_id: provider?,
            client_id_at_idp: client_at_idp,
            client_id_at_resource_as: self.form.text(CLIENT_AT_AS).to_owned(),
            allowed_scopes: scopes,
        })
    }

    fn is_duplicate(&self, provider_id: i64, client_at_idp: &str) -> bool {
        self.existing
            .iter()
            .any(|(id, client)| *id == provider_id && client == client_at_idp)
    }

    /// Shows the core's rejection next to the field it concerns, or under the button.
    pub fn failed(&mut self, error: &CoreError) {
        self.form.status = None;
        match error {
            CoreError::Conflict(message) => self.form.set_error(CLIENT_AT_IDP, message.clone()),
            CoreError::ProviderDisabled(message) | CoreError::NotFound(message) => {
                self.form.set_error(PROVIDER, message.clone());
            }
            other => self.form.status = Some(FormStatus::Failed(other.to_string())),
        }
    }

    /// Refreshes the provider dropdown from a newer provider list.
    pub fn update_providers(&mut self, providers: &[ProviderState]) {
        self.form.set_choices(PROVIDER, enabled_choices(providers));
    }

    pub fn render(&self, frame: &mut Frame, area: Rect, theme: &Theme) {
        let width = WIDTH.max(area.width * 3 / 5).min(area.width);
        let height = self.form.height(width.saturating_sub(4)) + 4;
        let inner = frame_dialog(
            frame,
            area,
            (width, height),
            strings::ADD_MAPPING_TITLE,
            theme,
        );
        self.form
            .render(frame, inner.inner(Margin::new(1, 1)), theme, true);
    }
}

/// Dropdown options: the enabled providers, labelled like "Okta Production (okta)".
fn enabled_choices(providers: &[ProviderState]) -> Vec<Choice> {
    providers
        .iter()
        .filter(|state| state.provider.enabled)
        .map(|state| Choice {
            id: state.provider.id,
            label: format!("{} ({})", state.provider.name, state.provider.kind),
        })
        .collect()
}
