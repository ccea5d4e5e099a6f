//! The confirmation asked before anything destructive. It carries the job to submit, so the
//! action runs only when the operator confirms. The Cancel button has the focus at first, so
//! Enter alone never confirms; `y` does.

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Paragraph, Wrap};

use super::{Outcome, frame_dialog};
use crate::tui::app::Effects;
use crate::tui::jobs::Job;
use crate::tui::keys::Action;
use crate::tui::strings;
use crate::tui::text;
use crate::tui::theme::Theme;

/// Widest a confirmation gets.
const WIDTH: u16 = 64;

#[derive(Debug)]
pub struct ConfirmDialog {
    pub title: &'static str,
    /// The question, unsanitized (it may quote store values).
    pub question: String,
    /// A consequence the operator should know, shown under the question.
    pub warning: Option<&'static str>,
    pub confirm_label: &'static str,
    pub job: Job,
    confirm_focused: bool,
}

impl ConfirmDialog {
    pub fn new(
        title: &'static str,
        question: String,
        warning: Option<&'static str>,
        confirm_label: &'static str,
        job: Job,
    ) -> Self {
        Self {
            title,
            question,
            warning,
            confirm_label,
            job,
            confirm_focused: false,
        }
    }

    pub fn handle(&mut self, action: Action, effects: &mut Effects) -> Outcome {
        match action {
            Action::Confirm => self.accept(effects),
            Action::Activate if self.confirm_focused => self.accept(effects),
            Action::Deny | Action::Activate => Outcome::Close,
            Action::SwitchButton => {
                self.confirm_focused = !self.confirm_focused;
                Outcome::Keep
            }
            _ => Outcome::Keep,
        }
    }

    fn accept(&self, effects: &mut Effects) -> Outcome {
        effects.jobs.push(self.job.clone());
        Outcome::Close
    }

    pub fn render(&self, frame: &mut Frame, area: Rect, theme: &Theme) {
        let width = WIDTH.min(area.width);
        let text_width = width.saturating_sub(4);
        let question = text::sanitize(&self.question).into_owned();
        let warning_height = self
            .warning
            .map_or(0, |w| text::wrapped_height(w, text_width) + 1);
        let height = text::wrapped_height(&question, text_width) + warning_height + 6;
        let inner = frame_dialog(frame, area, (width, height), self.title, theme);

        let mut lines = vec![Line::raw(question), Line::raw("")];
        if let Some(warning) = self.warning {
            lines.push(Line::styled(warning, theme.warning));
            lines.push(Line::raw(""));
        }
        lines.push(self.buttons(theme));
        lines.push(Line::styled(strings::CONFIRM_HINT, theme.muted));
        let body = Paragraph::new(lines).wrap(Wrap { trim: false });
        frame.render_widget(body, inner.inner(ratatui::layout::Margin::new(1, 0)));
    }

    fn buttons(&self, theme: &Theme) -> Line<'static> {
        let style = |focused: bool| {
            if focused {
                theme.button_focused
            } else {
                theme.button
            }
        };
        Line::from(vec![
            Span::styled(
                format!("[ {} ]", self.confirm_label),
                style(self.confirm_focused),
            ),
            Span::raw("  "),
            Span::styled(
                format!("[ {} ]", strings::CANCEL),
                style(!self.confirm_focused),
            ),
        ])
    }
}
