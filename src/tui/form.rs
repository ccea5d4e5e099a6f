//! Forms: labelled text fields (state from `tui-input`) and dropdowns, a submit button, inline
//! errors under each field, and a status line for the running or failed submission.
//!
//! Operator input never contains control characters: they are dropped as typed or pasted, so
//! what the form shows is what gets submitted.

use crossterm::event::Event;
use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Paragraph, Wrap};
use tui_input::backend::crossterm::to_input_request;
use tui_input::{Input, InputRequest};
use unicode_width::UnicodeWidthChar;

use crate::tui::text;
use crate::tui::theme::Theme;

/// One option of a dropdown.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Choice {
    pub id: i64,
    pub label: String,
}

/// Content of a field: a text input or a dropdown.
#[derive(Debug, Clone)]
pub enum FieldKind {
    Text(Input),
    Choice {
        options: Vec<Choice>,
        selected: usize,
        /// Shown when there is nothing to choose from.
        empty: &'static str,
    },
}

/// A labelled field with its inline error.
#[derive(Debug, Clone)]
pub struct Field {
    pub label: &'static str,
    pub kind: FieldKind,
    /// Placeholder shown while the field is empty and not focused.
    pub hint: Option<&'static str>,
    pub error: Option<String>,
}

impl Field {
    /// Creates a text field. Control characters in the initial value are dropped like typed
    /// ones.
    pub fn text(label: &'static str, value: &str) -> Self {
        let value: String = value.chars().filter(|c| !c.is_control()).collect();
        Self {
            label,
            kind: FieldKind::Text(Input::new(value)),
            hint: None,
            error: None,
        }
    }

    pub fn choice(label: &'static str, empty: &'static str) -> Self {
        Self {
            label,
            kind: FieldKind::Choice {
                options: Vec::new(),
                selected: 0,
                empty,
            },
            hint: None,
            error: None,
        }
    }

    #[must_use]
    pub fn with_hint(mut self, hint: &'static str) -> Self {
        self.hint = Some(hint);
        self
    }
}

/// The state of a submission, shown under the button.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FormStatus {
    Working(&'static str),
    Failed(String),
}

/// Fields plus one submit button; `focus == fields.len()` is the button.
#[derive(Debug, Clone)]
pub struct Form {
    pub fields: Vec<Field>,
    pub submit_label: &'static str,
    pub focus: usize,
    pub status: Option<FormStatus>,
}

impl Form {
    pub fn new(fields: Vec<Field>, submit_label: &'static str) -> Self {
        Self {
            fields,
            submit_label,
            focus: 0,
            status: None,
        }
    }

    /// Moves the focus forward; returns false (and stays) when it is already on the button.
    pub fn focus_next(&mut self) -> bool {
        if self.focus >= self.fields.len() {
            return false;
        }
        self.focus += 1;
        true
    }

    /// Moves the focus back; returns false (and stays) when it is already on the first field.
    pub fn focus_prev(&mut self) -> bool {
        if self.focus == 0 {
            return false;
        }
        self.focus -= 1;
        true
    }

    /// Moves the focus forward, from the button round to the first field.
    pub fn focus_next_wrapping(&mut self) {
        if !self.focus_next() {
            self.focus = 0;
        }
    }

    /// Moves the focus back, from the first field round to the button.
    pub fn focus_prev_wrapping(&mut self) {
        if !self.focus_prev() {
            self.focus_last();
        }
    }

    pub fn focus_last(&mut self) {
        self.focus = self.fields.len();
    }

    /// Returns whether the focused field is a dropdown.
    pub fn choice_focused(&self) -> bool {
        matches!(
            self.fields.get(self.focus).map(|field| &field.kind),
            Some(FieldKind::Choice { .. })
        )
    }

    /// Passes a key press or paste to the focused text field. Returns whether it changed.
    pub fn handle_input(&mut self, event: &Event) -> bool {
        let Some(Field {
            kind: FieldKind::Text(input),
            error,
            ..
        }) = self.fields.get_mut(self.focus)
        else {
            return false;
        };
        let changed = match event {
            Event::Paste(pasted) => {
                let mut changed = false;
                for c in pasted.trim().chars().filter(|c| !c.is_control()) {
                    changed |= input.handle(InputRequest::InsertChar(c)).is_some();
                }
                changed
            }
            other => match to_input_request(other) {
                Some(InputRequest::InsertChar(c)) if c.is_control() => false,
                Some(request) => input.handle(request).is_some(),
                None => false,
            },
        };
        if changed {
            *error = None;
        }
        changed
    }

    /// Moves the focused dropdown's selection by `step`, wrapping around.
    pub fn choose(&mut self, step: isize) {
        if let Some(Field {
            kind: FieldKind::Choice {
                options, selected, ..
            },
            error,
            ..
        }) = self.fields.get_mut(self.focus)
        {
            if options.is_empty() {
                return;
            }
            let len = isize::try_from(options.len()).unwrap_or(isize::MAX);
            let current = isize::try_from(*selected).unwrap_or(0);
            *selected = usize::try_from((current + step).rem_euclid(len)).unwrap_or(0);
            *error = None;
        }
    }

    /// Returns the value of a text field, without surrounding whitespace.
    pub fn text(&self, index: usize) -> &str {
        match self.fields.get(index).map(|field| &field.kind) {
            Some(FieldKind::Text(input)) => input.value().trim(),
            _ => "",
        }
    }

    pub fn set_text(&mut self, index: usize, value: &str) {
        if let Some(Field {
            kind: FieldKind::Text(input),
            ..
        }) = self.fields.get_mut(index)
        {
            *input = Input::new(value.to_owned());
        }
    }

    /// Returns the chosen option of a dropdown.
    pub fn choice(&self, index: usize) -> Option<&Choice> {
        match self.fields.get(index).map(|field| &field.kind) {
            Some(FieldKind::Choice {
                options, selected, ..
            }) => options.get(*selected),
            _ => None,
        }
    }

    /// Replaces a dropdown's options, keeping the chosen one when it is still offered.
    pub fn set_choices(&mut self, index: usize, new_options: Vec<Choice>) {
        if let Some(Field {
            kind: FieldKind::Choice {
                options, selected, ..
            },
            ..
        }) = self.fields.get_mut(index)
        {
            let chosen = options.get(*selected).map(|choice| choice.id);
            *selected = chosen
                .and_then(|id| new_options.iter().position(|choice| choice.id == id))
                .unwrap_or(0);
            *options = new_options;
        }
    }

    pub fn set_error(&mut self, index: usize, message: impl Into<String>) {
        if let Some(field) = self.fields.get_mut(index) {
            field.error = Some(message.into());
        }
    }

    pub fn clear_errors(&mut self) {
        for field in &mut self.fields {
            field.error = None;
        }
        self.status = None;
    }

    pub fn has_errors(&self) -> bool {
        self.fields.iter().any(|field| field.error.is_some())
    }

    pub fn is_working(&self) -> bool {
        matches!(self.status, Some(FormStatus::Working(_)))
    }

    /// Lines the form needs at `width` columns: one per field, the wrapped errors, a gap, the
    /// button and the wrapped status line.
    pub fn height(&self, width: u16) -> u16 {
        let error_width = width.saturating_sub(self.label_width().min(width / 2));
        let errors: u16 = self
            .fields
            .iter()
            .filter_map(|field| field.error.as_deref())
            .map(|error| text::wrapped_height(&text::sanitize(error), error_width))
            .sum();
        let status = self.status.as_ref().map_or(0, |status| match status {
            FormStatus::Working(label) => text::wrapped_height(label, width),
            FormStatus::Failed(error) => text::wrapped_height(&text::sanitize(error), width),
        });
        let fields = u16::try_from(self.fields.len()).unwrap_or(u16::MAX);
        fields
            .saturating_add(errors)
            .saturating_add(2)
            .saturating_add(status)
    }

    /// Width of the label column.
    fn label_width(&self) -> u16 {
        let widest = self.fields.iter().map(|f| text::width(f.label)).max();
        u16::try_from(widest.unwrap_or(0) + 2).unwrap_or(u16::MAX)
    }

    /// Draws the form; with `active`, the focus is shown and the cursor placed.
    pub fn render(&self, frame: &mut Frame, area: Rect, theme: &Theme, active: bool) {
        let label_width = self.label_width().min(area.width / 2);
        let mut y = area.y;
        for (index, field) in self.fields.iter().enumerate() {
            if y >= area.bottom() {
                return;
            }
            let focused = active && index == self.focus;
            let row = Rect::new(area.x, y, area.width, 1);
            render_field(frame, row, label_width, field, focused, theme);
            y += 1;
            if let Some(error) = &field.error {
                let error = text::sanitize(error).into_owned();
                let width = area.width.saturating_sub(label_width);
                let height = text::wrapped_height(&error, width).min(area.bottom() - y);
                let rows = Rect::new(area.x + label_width, y, width, height);
                let message =
                    Paragraph::new(Line::styled(error, theme.error)).wrap(Wrap { trim: true });
                frame.render_widget(message, rows);
                y += height;
            }
        }
        y += 1;
        if y < area.bottom() {
            let row = Rect::new(area.x + label_width, y, area.width - label_width, 1);
            self.render_button(frame, row, theme, active);
            y += 1;
        }
        if let (Some(status), true) = (&self.status, y < area.bottom()) {
            let rows = Rect::new(area.x, y, area.width, area.bottom() - y);
            let line = match status {
                FormStatus::Working(label) => Line::styled(*label, theme.muted),
                FormStatus::Failed(error) => {
                    Line::styled(text::sanitize(error).into_owned(), theme.error)
                }
            };
            frame.render_widget(Paragraph::new(line).wrap(Wrap { trim: true }), rows);
        }
    }

    fn render_button(&self, frame: &mut Frame, row: Rect, theme: &Theme, active: bool) {
        let focused = active && self.focus == self.fields.len();
        let style = if focused {
            theme.button_focused
        } else {
            theme.button
        };
        let label = format!("[ {} ]", self.submit_label);
        let label = text::truncate(&label, usize::from(row.width));
        frame.render_widget(Paragraph::new(Line::styled(label, style)), row);
    }
}

fn render_field(
    frame: &mut Frame,
    row: Rect,
    label_width: u16,
    field: &Field,
    focused: bool,
    theme: &Theme,
) {
    let label_style = if focused { theme.title } else { theme.text };
    let label = text::truncate(field.label, usize::from(label_width.saturating_sub(1)));
    let label_area = Rect::new(row.x, row.y, label_width, 1);
    frame.render_widget(Paragraph::new(Span::styled(label, label_style)), label_area);

    let value_area = Rect::new(row.x + label_width, row.y, row.width - label_width, 1);
    let style = if focused {
        theme.input_focused
    } else {
        theme.input
    };
    match &field.kind {
        FieldKind::Text(input) => {
            render_text_input(frame, value_area, input, field.hint, focused, style, theme);
        }
        FieldKind::Choice {
            options,
            selected,
            empty,
        } => {
            let width = usize::from(value_area.width);
            let line = match options.get(*selected) {
                Some(choice) => {
                    let label = format!("‹ {} ›", text::sanitize(&choice.label));
                    Line::styled(text::truncate(&label, width), style)
                }
                None => Line::styled(text::truncate(empty, width), theme.error),
            };
            frame.render_widget(Paragraph::new(line), value_area);
        }
    }
}

fn render_text_input(
    frame: &mut Frame,
    area: Rect,
    input: &Input,
    hint: Option<&str>,
    focused: bool,
    style: ratatui::style::Style,
    theme: &Theme,
) {
    let width = usize::from(area.width.saturating_sub(1));
    if input.value().is_empty() && !focused {
        let shown = hint
            .map(|hint| text::truncate(hint, width))
            .unwrap_or_default();
        let padding = " ".repeat(width.saturating_sub(text::width(&shown)));
        let line = Line::from(vec![
            Span::styled(shown, theme.muted.patch(style)),
            Span::styled(padding, style),
        ]);
        frame.render_widget(Paragraph::new(line), area);
        return;
    }
    let scroll = input.visual_scroll(width);
    let visible = visible_slice(input.value(), scroll, width);
    let padding = " ".repeat(width.saturating_sub(text::width(&visible)));
    let line = Line::styled(format!("{visible}{padding}"), style);
    frame.render_widget(Paragraph::new(line), area);
    if focused {
        let offset = input.visual_cursor().saturating_sub(scroll);
        let x = area.x
            + u16::try_from(offset)
                .unwrap_or(0)
                .min(area.width.saturating_sub(1));
        frame.set_cursor_position((x, area.y));
    }
}

/// Returns the part of `value` that starts `scroll` columns in and fits `width` columns.
pub fn visible_slice(value: &str, scroll: usize, width: usize) -> String {
    let mut skipped = 0;
    let mut used = 0;
    let mut out = String::new();
    for c in value.chars() {
        let w = c.width().unwrap_or(0);
        if skipped < scroll {
            skipped += w;
            continue;
        }
        if used + w > width {
            break;
        }
        out.push(c);
        used += w;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};

    fn key(c: char) -> Event {
        Event::Key(KeyEvent::new(KeyCode::Char(c), KeyModifiers::NONE))
    }

    #[test]
    fn typing_and_paste_drop_control_characters() {
        let mut form = Form::new(vec![Field::text("JTI", "")], "Go");
        assert!(form.handle_input(&key('a')));
        assert!(form.handle_input(&Event::Paste("b\x1b[2J\nc\n".into())));
        assert_eq!(form.text(0), "ab[2Jc");
    }

    #[test]
    fn choices_keep_the_selected_id() {
        let mut form = Form::new(vec![Field::choice("IdP Provider", "none")], "Go");
        let choice = |id| Choice {
            id,
            label: format!("p{id}"),
        };
        form.set_choices(0, vec![choice(1), choice(2)]);
        form.choose(1);
        assert_eq!(form.choice(0).map(|c| c.id), Some(2));
        form.set_choices(0, vec![choice(0), choice(2), choice(3)]);
        assert_eq!(form.choice(0).map(|c| c.id), Some(2));
        form.choose(-2);
        assert_eq!(form.choice(0).map(|c| c.id), Some(3));
    }

    #[test]
    fn visible_slice_skips_scrolled_columns() {
        assert_eq!(visible_slice("abcdef", 2, 3), "cde");
        assert_eq!(visible_slice("漢字ab", 2, 3), "字a");
    }
}
