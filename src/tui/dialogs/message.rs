//! Result, error and details dialogs: a title and lines of text, closed with Enter or Esc.

use ratatui::Frame;
use ratatui::layout::{Margin, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Paragraph, Wrap};

use super::frame_dialog;
use crate::tui::strings;
use crate::tui::text;
use crate::tui::theme::Theme;

/// Widest a message gets.
const WIDTH: u16 = 72;

/// Emphasis of a line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tone {
    Normal,
    Success,
    Error,
    Muted,
}

/// One line of a message: an optional label and the text, both unsanitized.
#[derive(Debug, Clone)]
struct MessageLine {
    label: Option<String>,
    text: String,
    tone: Tone,
}

#[derive(Debug, Clone)]
pub struct MessageDialog {
    pub title: String,
    lines: Vec<MessageLine>,
}

impl MessageDialog {
    pub fn new(title: impl Into<String>) -> Self {
        Self {
            title: title.into(),
            lines: Vec::new(),
        }
    }

    /// Builds a dialog with one line of text in the given tone.
    pub fn simple(title: impl Into<String>, text: impl Into<String>, tone: Tone) -> Self {
        Self::new(title).line(text, tone)
    }

    /// Builds an error dialog.
    pub fn error(text: impl Into<String>) -> Self {
        Self::simple(strings::ERROR_TITLE, text, Tone::Error)
    }

    #[must_use]
    pub fn line(mut self, text: impl Into<String>, tone: Tone) -> Self {
        self.lines.push(MessageLine {
            label: None,
            text: text.into(),
            tone,
        });
        self
    }

    /// Adds a `label: value` line, as in the details dialogs.
    #[must_use]
    pub fn field(mut self, label: impl Into<String>, value: impl Into<String>) -> Self {
        self.lines.push(MessageLine {
            label: Some(label.into()),
            text: value.into(),
            tone: Tone::Normal,
        });
        self
    }

    pub fn render(&self, frame: &mut Frame, area: Rect, theme: &Theme) {
        let width = WIDTH.min(area.width);
        let text_width = width.saturating_sub(4);
        let label_width = self
            .lines
            .iter()
            .filter_map(|line| line.label.as_deref().map(text::width))
            .max()
            .unwrap_or(0);
        let lines: Vec<Line> = self
            .lines
            .iter()
            .map(|line| render_line(line, label_width, theme))
            .collect();
        let height: u16 = lines
            .iter()
            .map(|line| text::wrapped_height(&line.to_string(), text_width))
            .sum::<u16>()
            + 4;
        let inner = frame_dialog(frame, area, (width, height), &self.title, theme);
        let mut body = lines;
        body.push(Line::raw(""));
        body.push(Line::styled(strings::CLOSE_HINT, theme.muted));
        let paragraph = Paragraph::new(body).wrap(Wrap { trim: false });
        frame.render_widget(paragraph, inner.inner(Margin::new(1, 0)));
    }
}

fn render_line(line: &MessageLine, label_width: usize, theme: &Theme) -> Line<'static> {
    let style = match line.tone {
        Tone::Normal => theme.text,
        Tone::Success => theme.success,
        Tone::Error => theme.error,
        Tone::Muted => theme.muted,
    };
    let value = Span::styled(text::sanitize(&line.text).into_owned(), style);
    match &line.label {
        Some(label) => {
            let label = text::sanitize(label);
            let padding = " ".repeat(label_width.saturating_sub(text::width(&label)) + 2);
            Line::from(vec![
                Span::styled(format!("{label}{padding}"), theme.title),
                value,
            ])
        }
        None => Line::from(value),
    }
}
