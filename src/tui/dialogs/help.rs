//! The help screen, generated from the key table: every binding of this mode, by section.

use ratatui::Frame;
use ratatui::layout::{Margin, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;

use super::{Outcome, frame_dialog};
use crate::tui::keys::{self, Action};
use crate::tui::strings;
use crate::tui::text;
use crate::tui::theme::Theme;

/// Width of the keys column.
const KEYS_WIDTH: usize = 10;

#[derive(Debug, Clone, Default)]
pub struct HelpDialog {
    pub read_only: bool,
    scroll: u16,
    /// Lines that did not fit at the last draw; the scroll stops there.
    max_scroll: u16,
}

impl HelpDialog {
    pub fn new(read_only: bool) -> Self {
        Self {
            read_only,
            ..Self::default()
        }
    }

    pub fn handle(&mut self, action: Action) -> Outcome {
        match action {
            Action::Close => return Outcome::Close,
            Action::Down => self.scroll = (self.scroll + 1).min(self.max_scroll),
            Action::Up => self.scroll = self.scroll.saturating_sub(1),
            _ => {}
        }
        Outcome::Keep
    }

    /// Builds every line of the help text.
    pub fn lines(&self, theme: &Theme) -> Vec<Line<'static>> {
        let mut lines = Vec::new();
        if self.read_only {
            lines.push(Line::styled(strings::READ_ONLY_HELP, theme.warning));
            lines.push(Line::raw(""));
        }
        for (title, entries) in keys::help_sections(self.read_only) {
            lines.push(Line::styled(title, theme.title));
            for (keys, description) in entries {
                let padding = " ".repeat(KEYS_WIDTH.saturating_sub(text::width(keys)));
                lines.push(Line::from(vec![
                    Span::raw("  "),
                    Span::styled(format!("{keys}{padding}"), theme.key),
                    Span::raw(description),
                ]));
            }
            lines.push(Line::raw(""));
        }
        lines
    }

    pub fn render(&mut self, frame: &mut Frame, area: Rect, theme: &Theme) {
        let lines = self.lines(theme);
        let wanted = u16::try_from(lines.len() + 2).unwrap_or(u16::MAX);
        let size = (70, wanted.min(area.height.saturating_sub(2)));
        let inner = frame_dialog(frame, area, size, strings::HELP_TITLE, theme);
        let inner = inner.inner(Margin::new(1, 0));
        let total = u16::try_from(lines.len()).unwrap_or(u16::MAX);
        self.max_scroll = total.saturating_sub(inner.height);
        self.scroll = self.scroll.min(self.max_scroll);
        let body = Paragraph::new(lines).scroll((self.scroll, 0));
        frame.render_widget(body, inner);
    }
}
