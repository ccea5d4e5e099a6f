//! The `/` filter line of a table: typed at the bottom of the table, kept with Enter, cleared
//! with Esc.

use crossterm::event::Event;
use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;
use tui_input::backend::crossterm::to_input_request;
use tui_input::{Input, InputRequest};

use crate::tui::form;
use crate::tui::keys::Action;
use crate::tui::strings;
use crate::tui::text;
use crate::tui::theme::Theme;

/// Effect of a filter action.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FilterChange {
    None,
    /// The filter text was kept (Enter) or cleared (Esc).
    Applied,
}

#[derive(Debug, Clone, Default)]
pub struct FilterLine {
    input: Input,
    pub editing: bool,
}

impl FilterLine {
    pub fn start(&mut self) {
        self.editing = true;
    }

    /// Returns the filter text, without surrounding whitespace.
    pub fn text(&self) -> &str {
        self.input.value().trim()
    }

    /// Returns whether the line takes a row of the table area.
    pub fn is_shown(&self) -> bool {
        self.editing || !self.text().is_empty()
    }

    pub fn handle(&mut self, action: Action) -> FilterChange {
        match action {
            Action::ApplyFilter => {
                self.editing = false;
                FilterChange::Applied
            }
            Action::ClearFilter => {
                self.editing = false;
                self.input.reset();
                FilterChange::Applied
            }
            _ => FilterChange::None,
        }
    }

    /// Edits the filter text while the line has the focus.
    pub fn handle_input(&mut self, event: &Event) -> bool {
        if !self.editing {
            return false;
        }
        match event {
            Event::Paste(pasted) => {
                for c in pasted.chars().filter(|c| !c.is_control()) {
                    self.input.handle(InputRequest::InsertChar(c));
                }
                true
            }
            other => match to_input_request(other) {
                Some(InputRequest::InsertChar(c)) if c.is_control() => false,
                Some(request) => self.input.handle(request).is_some(),
                None => false,
            },
        }
    }

    pub fn render(&self, frame: &mut Frame, area: Rect, theme: &Theme) {
        let prompt_width = text::width(strings::FILTER_PROMPT);
        let width = usize::from(area.width).saturating_sub(prompt_width + 1);
        let scroll = self.input.visual_scroll(width);
        let value = form::visible_slice(self.input.value(), scroll, width);
        let style = if self.editing {
            theme.input_focused
        } else {
            theme.input
        };
        let line = Line::from(vec![
            Span::styled(strings::FILTER_PROMPT, theme.key),
            Span::styled(value, style),
        ]);
        frame.render_widget(Paragraph::new(line), area);
        if self.editing {
            let offset = self.input.visual_cursor().saturating_sub(scroll) + prompt_width;
            let x = area.x
                + u16::try_from(offset)
                    .unwrap_or(0)
                    .min(area.width.saturating_sub(1));
            frame.set_cursor_position((x, area.y));
        }
    }
}
