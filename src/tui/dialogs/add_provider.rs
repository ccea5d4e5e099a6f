//! The "Add Provider" dialog: Name, Kind, Issuer and an optional JWKS URI. The dialog checks
//! for empty fields, and the core checks the URLs (https, or http on loopback when
//! configured). A rejection from the core lands next to the field it names.

use ratatui::Frame;
use ratatui::layout::{Margin, Rect};

use super::{Outcome, frame_dialog};
use crate::core::CoreError;
use crate::core::model::{NewProvider, ProviderKind};
use crate::tui::app::Effects;
use crate::tui::form::{Choice, Field, Form, FormStatus};
use crate::tui::jobs::Job;
use crate::tui::keys::{Action, Scope};
use crate::tui::strings;
use crate::tui::theme::Theme;

const NAME: usize = 0;
const KIND: usize = 1;
const ISSUER: usize = 2;
const JWKS_URI: usize = 3;

/// The kinds offered, in dropdown order; the choice id indexes this list.
const KINDS: [ProviderKind; 2] = [ProviderKind::Oidc, ProviderKind::Okta];

/// Widest the dialog gets.
const WIDTH: u16 = 78;

#[derive(Debug)]
pub struct AddProviderDialog {
    pub form: Form,
}

impl Default for AddProviderDialog {
    fn default() -> Self {
        let fields = vec![
            Field::text(strings::FIELD_NAME, ""),
            Field::choice(strings::FIELD_KIND, strings::NONE),
            Field::text(strings::LABEL_ISSUER, "").with_hint(strings::ISSUER_HINT),
            Field::text(strings::LABEL_JWKS_URI, "").with_hint(strings::JWKS_URI_HINT),
        ];
        let mut form = Form::new(fields, strings::ADD_PROVIDER_BUTTON);
        let kinds = KINDS.iter().zip(0..).map(|(kind, id)| Choice {
            id,
            label: kind.as_str().to_owned(),
        });
        form.set_choices(KIND, kinds.collect());
        Self { form }
    }
}

impl AddProviderDialog {
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
        if let Some(provider) = self.validate() {
            effects.jobs.push(Job::CreateProvider { provider });
            self.form.status = Some(FormStatus::Working(strings::ADDING_PROVIDER));
        }
    }

    /// Checks the required fields and returns the provider when they are filled in.
    fn validate(&mut self) -> Option<NewProvider> {
        self.form.clear_errors();
        for index in [NAME, ISSUER] {
            if self.form.text(index).is_empty() {
                self.form.set_error(index, strings::REQUIRED);
            }
        }
        if self.form.has_errors() {
            return None;
        }
        let kind = self
            .form
            .choice(KIND)
            .and_then(|choice| usize::try_from(choice.id).ok())
            .and_then(|index| KINDS.get(index).copied());
        let jwks_uri = self.form.text(JWKS_URI);
        Some(NewProvider {
            name: self.form.text(NAME).to_owned(),
            kind,
            issuer: self.form.text(ISSUER).to_owned(),
            jwks_uri: (!jwks_uri.is_empty()).then(|| jwks_uri.to_owned()),
            ..NewProvider::default()
        })
    }

    /// Shows the core's rejection next to the field it names, or under the button.
    pub fn failed(&mut self, error: &CoreError) {
        self.form.status = None;
        let message = error.to_string();
        let field = if message.starts_with("jwks_uri") {
            Some(JWKS_URI)
        } else if message.starts_with("issuer") {
            Some(ISSUER)
        } else if message.starts_with("name") {
            Some(NAME)
        } else {
            None
        };
        match field {
            Some(index) => self.form.set_error(index, message),
            None => self.form.status = Some(FormStatus::Failed(message)),
        }
    }

    pub fn render(&self, frame: &mut Frame, area: Rect, theme: &Theme) {
        let width = WIDTH.min(area.width);
        let height = self.form.height(width.saturating_sub(4)) + 4;
        let inner = frame_dialog(
            frame,
            area,
            (width, height),
            strings::ADD_PROVIDER_TITLE,
            theme,
        );
        self.form
            .render(frame, inner.inner(Margin::new(1, 1)), theme, true);
    }
}
