//! Job results. A load replaces the snapshot of its panel when that panel is still on screen.
//! An action reports success or failure in a dialog or the footer, then reloads what it
//! changed.

use super::{App, Flash, Screen};
use crate::core::CoreError;
use crate::core::admin::{CreatedMapping, RevokeSubjectResult, RevokeTokenResult};
use crate::core::model::Provider;
use crate::tui::dialogs::{Dialog, MessageDialog, SecretDialog, Tone};
use crate::tui::jobs::{Job, JobKey, JobOutput};
use crate::tui::strings;
use crate::tui::tabs::XaaView;

impl App {
    pub(super) fn apply(&mut self, output: JobOutput) {
        if output.key() == JobKey::Action {
            self.finish_action();
        }
        match output {
            JobOutput::Proxies(result) => {
                self.note_load(result.as_ref().err());
                self.proxies.panel.finish(result);
            }
            JobOutput::Providers(result) => {
                self.providers.panel.finish(result);
                self.providers_changed();
            }
            JobOutput::Stats { proxy_id, result } => {
                self.note_load(result.as_ref().err());
                if let Some(view) = self.view_of(proxy_id) {
                    view.statistics.panel.finish(result);
                }
            }
            JobOutput::Mappings { proxy_id, result } => {
                self.note_load(result.as_ref().err());
                if let Some(view) = self.view_of(proxy_id) {
                    view.mappings.finish(result);
                }
            }
            JobOutput::Tokens {
                proxy_id,
                filter,
                result,
            } => {
                if let Some(view) = self.view_of(proxy_id) {
                    view.tokens.finish(&filter, result);
                }
            }
            JobOutput::Audit {
                event_type,
                after_id,
                result,
            } => {
                if let Some(view) = self.xaa.as_mut() {
                    view.audit.finish(event_type, after_id, result);
                }
            }
            action => self.apply_action(action),
        }
    }

    fn apply_action(&mut self, output: JobOutput) {
        match output {
            JobOutput::MappingCreated { proxy_id, result } => match result {
                Ok(created) => self.mapping_created(proxy_id, created),
                Err(error) => self.mapping_not_created(&error),
            },
            JobOutput::MappingDeleted { proxy_id, result } => match result {
                Ok(()) => {
                    self.flash = Some(Flash::new(strings::MAPPING_DELETED, Tone::Success));
                    self.reload_mappings(proxy_id);
                }
                Err(error) => self.show_error(&error),
            },
            JobOutput::TokenRevoked(result) => match result {
                Ok(revoked) => self.token_revoked(&revoked),
                Err(error) => self.show_error(&error),
            },
            JobOutput::SubjectRevoked(result) => match result {
                Ok(revoked) => self.subject_revoked(&revoked),
                Err(error) => self.show_error(&error),
            },
            JobOutput::ProviderUpdated(result) => {
                match result {
                    Ok(provider) => {
                        let text = strings::provider_toggled(&provider.name, provider.enabled);
                        self.flash = Some(Flash::new(text, Tone::Success));
                    }
                    Err(error) => self.show_error(&error),
                }
                let job = self.providers.refresh();
                self.submit(job);
            }
            JobOutput::ProviderKeysRefreshed {
                provider_id,
                result,
            } => {
                match result {
                    Ok(count) => {
                        let name = self.providers.name_of(provider_id);
                        let text = strings::keys_refreshed(&name, count);
                        self.flash = Some(Flash::new(text, Tone::Success));
                    }
                    Err(error) => self.show_error(&error),
                }
                let job = self.providers.refresh();
                self.submit(job);
            }
            JobOutput::ProviderCreated(result) => self.provider_created(result),
            JobOutput::IssuanceSet(result) => {
                match result {
                    Ok(proxy) => {
                        let text = strings::issuance_set(&proxy.name, proxy.issuance_enabled);
                        self.flash = Some(Flash::new(text, Tone::Success));
                    }
                    Err(error) => self.show_error(&error),
                }
                let job = self.proxies.refresh();
                self.submit(job);
            }
            load => tracing::warn!(?load, "a load result reached the action handler"),
        }
    }

    /// Returns the XAA view when it shows this proxy.
    fn view_of(&mut self, proxy_id: i64) -> Option<&mut XaaView> {
        self.xaa.as_mut().filter(|view| view.proxy.id == proxy_id)
    }

    /// Retries a failed refresh sooner than the refresh period.
    fn note_load(&mut self, error: Option<&CoreError>) {
        if let Some(error) = error {
            tracing::warn!(%error, "dashboard refresh failed");
            self.countdown.retry_soon();
        }
    }

    fn providers_changed(&mut self) {
        let states = self.providers.states();
        for dialog in &mut self.dialogs {
            if let Dialog::AddMapping(dialog) = dialog {
                dialog.update_providers(states);
            }
        }
        if let Some(view) = self.xaa.as_mut() {
            view.revocation.update_providers(states);
        }
    }

    fn provider_created(&mut self, result: Result<Provider, CoreError>) {
        match result {
            Ok(provider) => {
                self.dialogs
                    .retain(|dialog| !matches!(dialog, Dialog::AddProvider(_)));
                let text = strings::provider_added(&provider.name);
                self.flash = Some(Flash::new(text, Tone::Success));
                let job = self.providers.refresh();
                self.submit(job);
            }
            Err(error) => {
                let open = self
                    .dialogs
                    .iter_mut()
                    .rev()
                    .find_map(|dialog| match dialog {
                        Dialog::AddProvider(dialog) => Some(dialog),
                        _ => None,
                    });
                match open {
                    Some(dialog) => dialog.failed(&error),
                    None => self.show_error(&error),
                }
            }
        }
    }

    fn show_error(&mut self, error: &CoreError) {
        tracing::warn!(%error, "dashboard action failed");
        self.dialogs
            .push(Dialog::Message(MessageDialog::error(error.to_string())));
    }

    fn mapping_created(&mut self, proxy_id: i64, created: CreatedMapping) {
        self.dialogs
            .retain(|dialog| !matches!(dialog, Dialog::AddMapping(_)));
        self.flash = Some(Flash::new(strings::MAPPING_CREATED, Tone::Success));
        let client_id = created.mapping.client_id_at_resource_as;
        let dialog = match created.client_secret {
            Some(secret) => Dialog::Secret(SecretDialog { client_id, secret }),
            None => Dialog::Message(
                MessageDialog::simple(strings::DONE_TITLE, strings::MAPPING_CREATED, Tone::Success)
                    .line(strings::SECRET_EXISTING_CLIENT, Tone::Muted),
            ),
        };
        self.dialogs.push(dialog);
        self.reload_mappings(proxy_id);
    }

    fn mapping_not_created(&mut self, error: &CoreError) {
        let open = self
            .dialogs
            .iter_mut()
            .rev()
            .find_map(|dialog| match dialog {
                Dialog::AddMapping(dialog) => Some(dialog),
                _ => None,
            });
        match open {
            Some(dialog) => dialog.failed(error),
            None => self.show_error(error),
        }
    }

    fn reload_mappings(&mut self, proxy_id: i64) {
        if let Some(view) = self.view_of(proxy_id) {
            let job = view.mappings.refresh(proxy_id);
            self.submit(job);
        }
        if self.screen == Screen::Proxies {
            let job = self.proxies.refresh();
            self.submit(job);
        }
    }

    fn token_revoked(&mut self, revoked: &RevokeTokenResult) {
        let tone = if revoked.already_revoked {
            Tone::Muted
        } else {
            Tone::Success
        };
        let dialog = MessageDialog::simple(strings::TOKEN_REVOKED_TITLE, &revoked.message, tone);
        self.dialogs.push(Dialog::Message(dialog));
        self.after_revocation();
    }

    fn subject_revoked(&mut self, revoked: &RevokeSubjectResult) {
        let text = strings::subject_revoked(revoked.revoked_count, &revoked.subject);
        let dialog = MessageDialog::simple(strings::TOKENS_REVOKED_TITLE, text, Tone::Success);
        self.dialogs.push(Dialog::Message(dialog));
        self.after_revocation();
    }

    /// Clears the revocation forms' targets and reloads the figures a revocation changes.
    fn after_revocation(&mut self) {
        let Some(view) = self.xaa.as_mut() else {
            return;
        };
        view.revocation.clear_targets();
        let proxy_id = view.proxy.id;
        let jobs: Vec<Job> = vec![
            view.tokens.refresh(proxy_id),
            view.statistics.refresh(proxy_id),
        ];
        for job in jobs {
            self.submit(job);
        }
    }
}
