//! Dialogs, kept as a stack by the app. The top one takes every key before the screen gets
//! it, and all of them are drawn last, over a cleared area, in stack order.

mod add_mapping;
mod add_provider;
mod confirm;
mod help;
mod message;
mod secret;

use crossterm::event::Event;
use ratatui::Frame;
use ratatui::layout::{Constraint, Rect};
use ratatui::text::Line;
use ratatui::widgets::{Block, Borders, Clear};

pub use self::add_mapping::AddMappingDialog;
pub use self::add_provider::AddProviderDialog;
pub use self::confirm::ConfirmDialog;
pub use self::help::HelpDialog;
pub use self::message::{MessageDialog, Tone};
pub use self::secret::SecretDialog;
use crate::tui::app::Effects;
use crate::tui::keys::{Action, Scope};
use crate::tui::theme::Theme;

/// A dialog on the stack.
#[derive(Debug)]
pub enum Dialog {
    Help(HelpDialog),
    Confirm(ConfirmDialog),
    Message(MessageDialog),
    Secret(SecretDialog),
    AddMapping(AddMappingDialog),
    AddProvider(AddProviderDialog),
}

/// Whether a dialog stays open after handling an action.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Keep,
    Close,
}

impl Dialog {
    /// Returns the key scopes while this dialog is on top.
    pub fn scopes(&self) -> Vec<Scope> {
        match self {
            Self::Help(_) => vec![Scope::Help, Scope::Always],
            Self::Confirm(_) => vec![Scope::Confirm, Scope::Always],
            Self::Message(_) | Self::Secret(_) => vec![Scope::Message, Scope::Always],
            Self::AddMapping(dialog) => dialog.scopes(),
            Self::AddProvider(dialog) => dialog.scopes(),
        }
    }

    /// Handles an action resolved from the key table.
    pub fn handle(&mut self, action: Action, effects: &mut Effects) -> Outcome {
        match self {
            Self::Help(dialog) => dialog.handle(action),
            Self::Confirm(dialog) => dialog.handle(action, effects),
            Self::Message(_) | Self::Secret(_) => match action {
                Action::Close => Outcome::Close,
                _ => Outcome::Keep,
            },
            Self::AddMapping(dialog) => dialog.handle(action, effects),
            Self::AddProvider(dialog) => dialog.handle(action, effects),
        }
    }

    /// Passes a key that no binding took (or a paste) to a focused text field.
    pub fn handle_input(&mut self, event: &Event) -> bool {
        match self {
            Self::AddMapping(dialog) => dialog.form.handle_input(event),
            Self::AddProvider(dialog) => dialog.form.handle_input(event),
            _ => false,
        }
    }

    pub fn render(&mut self, frame: &mut Frame, area: Rect, theme: &Theme) {
        match self {
            Self::Help(dialog) => dialog.render(frame, area, theme),
            Self::Confirm(dialog) => dialog.render(frame, area, theme),
            Self::Message(dialog) => dialog.render(frame, area, theme),
            Self::Secret(dialog) => dialog.render(frame, area, theme),
            Self::AddMapping(dialog) => dialog.render(frame, area, theme),
            Self::AddProvider(dialog) => dialog.render(frame, area, theme),
        }
    }
}

/// Clears a centred area of at most `width` × `height` inside `area`, draws a titled border
/// around it and returns the area inside the border.
pub fn frame_dialog(
    frame: &mut Frame,
    area: Rect,
    size: (u16, u16),
    title: &str,
    theme: &Theme,
) -> Rect {
    let block = Block::bordered()
        .border_style(theme.border_focused)
        .title(Line::styled(format!(" {title} "), theme.title));
    frame_with_block(frame, area, size, block)
}

/// Like [`frame_dialog`] with only the top and bottom borders, so a line inside can be
/// selected with the mouse without picking up border characters.
pub fn frame_open_dialog(
    frame: &mut Frame,
    area: Rect,
    size: (u16, u16),
    title: &str,
    theme: &Theme,
) -> Rect {
    let block = Block::new()
        .borders(Borders::TOP | Borders::BOTTOM)
        .border_style(theme.border_focused)
        .title(Line::styled(format!(" {title} "), theme.title));
    frame_with_block(frame, area, size, block)
}

fn frame_with_block(frame: &mut Frame, area: Rect, size: (u16, u16), block: Block) -> Rect {
    let (width, height) = size;
    let outer = area.centered(
        Constraint::Length(width.min(area.width)),
        Constraint::Length(height.min(area.height)),
    );
    frame.render_widget(Clear, outer);
    let inner = block.inner(outer);
    frame.render_widget(block, outer);
    inner
}
