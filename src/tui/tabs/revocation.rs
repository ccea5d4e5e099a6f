//! The Token Revocation tab: the "Revoke Single Token" form (JTI, Reason, Revoked By) and the
//! "Revoke by Subject" form (IdP Provider, Subject, Reason, Revoked By).
//!
//! Enter starts filling in the selected form. Tab and Shift-Tab move through the fields of
//! both forms, and Enter submits the form holding the focus after a confirmation.
//! The JTI format is checked as it is typed. "Revoked By" starts as the operator's `user@host`.

use crossterm::event::Event;
use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Margin, Rect};
use ratatui::text::Line;
use ratatui::widgets::{Block, Paragraph, Wrap};

use super::TabContext;
use crate::core::admin::check_jti_format;
use crate::tui::app::Effects;
use crate::tui::dialogs::{ConfirmDialog, Dialog};
use crate::tui::form::{Choice, Field, Form};
use crate::tui::jobs::{Job, ProviderState};
use crate::tui::keys::{Action, Scope};
use crate::tui::strings;

/// Field indexes of the "Revoke Single Token" form.
const JTI: usize = 0;
const TOKEN_REASON: usize = 1;
const TOKEN_REVOKED_BY: usize = 2;
/// Field indexes of the "Revoke by Subject" form.
const PROVIDER: usize = 0;
const SUBJECT: usize = 1;
const SUBJECT_REASON: usize = 2;
const SUBJECT_REVOKED_BY: usize = 3;

/// Screen width from which the two forms sit side by side.
const SIDE_BY_SIDE_FROM: u16 = 120;

/// One of the two forms.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Card {
    Token,
    Subject,
}

#[derive(Debug)]
pub struct RevocationTab {
    pub token_form: Form,
    pub subject_form: Form,
    /// The selected form, and the one with the focus while editing.
    pub card: Card,
    pub editing: bool,
}

impl RevocationTab {
    pub fn new(actor: &str) -> Self {
        let token_form = Form::new(
            vec![
                Field::text(strings::FIELD_JTI, ""),
                Field::text(strings::FIELD_REASON, ""),
                Field::text(strings::FIELD_REVOKED_BY, actor),
            ],
            strings::REVOKE_TOKEN_BUTTON,
        );
        let subject_form = Form::new(
            vec![
                Field::choice(strings::COL_IDP_PROVIDER, strings::NO_PROVIDERS),
                Field::text(strings::FIELD_SUBJECT, ""),
                Field::text(strings::FIELD_REASON, ""),
                Field::text(strings::FIELD_REVOKED_BY, actor),
            ],
            strings::REVOKE_TOKENS_BUTTON,
        );
        Self {
            token_form,
            subject_form,
            card: Card::Token,
            editing: false,
        }
    }

    fn form_mut(&mut self) -> &mut Form {
        match self.card {
            Card::Token => &mut self.token_form,
            Card::Subject => &mut self.subject_form,
        }
    }

    fn form(&self) -> &Form {
        match self.card {
            Card::Token => &self.token_form,
            Card::Subject => &self.subject_form,
        }
    }

    /// Returns the key scopes while a field has the focus.
    pub fn form_scopes(&self) -> Vec<Scope> {
        if self.form().choice_focused() {
            vec![Scope::Choice, Scope::Form, Scope::Always]
        } else {
            vec![Scope::Form, Scope::Always]
        }
    }

    pub fn handle(&mut self, action: Action, context: &TabContext, effects: &mut Effects) {
        if context.read_only {
            return;
        }
        match action {
            Action::Up | Action::Down if !self.editing => self.switch_card(),
            Action::Edit => {
                self.editing = true;
                self.form_mut().focus = 0;
            }
            Action::NextField => self.next_field(),
            Action::PrevField => self.prev_field(),
            Action::ChooseNext => self.form_mut().choose(1),
            Action::ChoosePrev => self.form_mut().choose(-1),
            Action::Cancel => self.editing = false,
            Action::Submit => {
                let dialog = match self.card {
                    Card::Token => self.confirm_token(),
                    Card::Subject => self.confirm_subject(),
                };
                if let Some(dialog) = dialog {
                    effects.dialogs.push(Dialog::Confirm(dialog));
                }
            }
            _ => {}
        }
    }

    /// Moves to the next field; after a form's button comes the other form's first field.
    fn next_field(&mut self) {
        if !self.form_mut().focus_next() {
            self.switch_card();
            self.form_mut().focus = 0;
        }
    }

    /// Moves to the previous field; before a form's first field comes the other's button.
    fn prev_field(&mut self) {
        if !self.form_mut().focus_prev() {
            self.switch_card();
            self.form_mut().focus_last();
        }
    }

    fn switch_card(&mut self) {
        self.card = match self.card {
            Card::Token => Card::Subject,
            Card::Subject => Card::Token,
        };
    }

    /// Types into the focused field; the JTI is checked as it changes.
    pub fn handle_input(&mut self, event: &Event) -> bool {
        if !self.editing {
            return false;
        }
        let changed = self.form_mut().handle_input(event);
        if changed && self.card == Card::Token && self.token_form.focus == JTI {
            self.check_jti();
        }
        changed
    }

    /// Marks the JTI field when its value is not a UUID or base64url text.
    fn check_jti(&mut self) {
        let jti = self.token_form.text(JTI).to_owned();
        self.token_form.fields[JTI].error = if jti.is_empty() {
            None
        } else {
            check_jti_format(&jti).err().map(|error| error.to_string())
        };
    }

    fn confirm_token(&mut self) -> Option<ConfirmDialog> {
        self.token_form.clear_errors();
        self.check_jti();
        let jti = self.token_form.text(JTI).to_owned();
        if jti.is_empty() {
            self.token_form.set_error(JTI, strings::REQUIRED);
        }
        if self.token_form.has_errors() {
            return None;
        }
        let job = Job::RevokeToken {
            reason: optional(self.token_form.text(TOKEN_REASON)),
            revoked_by: optional(self.token_form.text(TOKEN_REVOKED_BY)),
            jti: jti.clone(),
        };
        Some(ConfirmDialog::new(
            strings::REVOKE_TOKEN_TITLE,
            strings::confirm_revoke_token(&jti),
            Some(strings::REVOKE_WARNING),
            strings::REVOKE_TOKEN_BUTTON,
            job,
        ))
    }

    fn confirm_subject(&mut self) -> Option<ConfirmDialog> {
        self.subject_form.clear_errors();
        let provider = self.subject_form.choice(PROVIDER).cloned();
        if provider.is_none() {
            self.subject_form.set_error(PROVIDER, strings::NO_PROVIDERS);
        }
        let subject = self.subject_form.text(SUBJECT).to_owned();
        if subject.is_empty() {
            self.subject_form.set_error(SUBJECT, strings::REQUIRED);
        }
        let provider = provider?;
        if self.subject_form.has_errors() {
            return None;
        }
        let job = Job::RevokeSubject {
            provider_id: provider.id,
            reason: optional(self.subject_form.text(SUBJECT_REASON)),
            revoked_by: optional(self.subject_form.text(SUBJECT_REVOKED_BY)),
            subject: subject.clone(),
        };
        Some(ConfirmDialog::new(
            strings::REVOKE_SUBJECT_TITLE,
            strings::confirm_revoke_subject(&subject, &provider.label),
            Some(strings::REVOKE_WARNING),
            strings::REVOKE_TOKENS_BUTTON,
            job,
        ))
    }

    /// Offers every provider (disabled ones too: their tokens may still need revoking).
    pub fn update_providers(&mut self, providers: &[ProviderState]) {
        let choices = providers
            .iter()
            .map(|state| {
                let provider = &state.provider;
                let mut label = format!("{} ({})", provider.name, provider.kind);
                if !provider.enabled {
                    label = format!("{label}, {}", strings::DISABLED);
                }
                Choice {
                    id: provider.id,
                    label,
                }
            })
            .collect();
        self.subject_form.set_choices(PROVIDER, choices);
    }

    /// Empties the JTI and Subject after a revocation, keeping Reason and Revoked By.
    pub fn clear_targets(&mut self) {
        self.token_form.set_text(JTI, "");
        self.subject_form.set_text(SUBJECT, "");
        self.token_form.clear_errors();
        self.subject_form.clear_errors();
    }

    pub fn render(&self, frame: &mut Frame, area: Rect, context: &TabContext) {
        let theme = context.theme;
        if context.read_only {
            let note = Paragraph::new(Line::styled(strings::REVOCATION_READ_ONLY, theme.warning))
                .wrap(Wrap { trim: true });
            frame.render_widget(note, area.inner(Margin::new(1, 1)));
            return;
        }
        let side_by_side = area.width >= SIDE_BY_SIDE_FROM;
        let card_width = if side_by_side {
            area.width / 2
        } else {
            area.width
        };
        let form_width = card_width.saturating_sub(4);
        let token_height = self.token_form.height(form_width) + 2;
        let subject_height = self.subject_form.height(form_width) + 2;
        let (token_area, subject_area, hint_area) = if side_by_side {
            let height = token_height.max(subject_height);
            let [cards, hint] = area.layout(&Layout::vertical([
                Constraint::Length(height),
                Constraint::Min(0),
            ]));
            let [left, right] = cards.layout(&Layout::horizontal([Constraint::Fill(1); 2]));
            (left, right, hint)
        } else {
            let layout = Layout::vertical([
                Constraint::Length(token_height),
                Constraint::Length(subject_height),
                Constraint::Min(0),
            ]);
            let [top, bottom, hint] = area.layout(&layout);
            (top, bottom, hint)
        };
        self.render_card(frame, token_area, Card::Token, context);
        self.render_card(frame, subject_area, Card::Subject, context);
        if !self.editing {
            let hint = Paragraph::new(Line::styled(strings::REVOCATION_HINT, theme.muted));
            frame.render_widget(hint, hint_area.inner(Margin::new(1, 0)));
        }
    }

    fn render_card(&self, frame: &mut Frame, area: Rect, card: Card, context: &TabContext) {
        let theme = context.theme;
        let (title, form) = match card {
            Card::Token => (strings::CARD_REVOKE_TOKEN, &self.token_form),
            Card::Subject => (strings::CARD_REVOKE_SUBJECT, &self.subject_form),
        };
        let selected = self.card == card;
        let border = if selected {
            theme.border_focused
        } else {
            theme.border
        };
        let block = Block::bordered()
            .border_style(border)
            .title(Line::styled(format!(" {title} "), theme.title));
        let inner = block.inner(area);
        frame.render_widget(block, area);
        form.render(
            frame,
            inner.inner(Margin::new(1, 0)),
            theme,
            self.editing && selected,
        );
    }
}

/// `None` for an empty optional field.
fn optional(value: &str) -> Option<String> {
    (!value.is_empty()).then(|| value.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};

    #[test]
    fn jti_is_checked_while_typing() {
        let mut tab = RevocationTab::new("me@host");
        tab.editing = true;
        for c in "no a jti!".chars() {
            let event = Event::Key(KeyEvent::new(KeyCode::Char(c), KeyModifiers::NONE));
            tab.handle_input(&event);
        }
        assert_eq!(tab.token_form.text(JTI), "no a jti!");
        assert!(tab.token_form.fields[JTI].error.is_some());
    }
}
