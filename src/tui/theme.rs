//! Colours and text styles of the dashboard, in one place.
//!
//! Only the 16 named ANSI colours are used, so the palette follows the terminal's own theme
//! over ssh and inside tmux. Emphasis that carries meaning (selection, focus, errors) also has
//! a modifier, so it stays visible with `NO_COLOR`, which drops every colour.

use ratatui::style::{Color, Modifier, Style};

/// Whether the dashboard may use colours.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ColorMode {
    /// Named ANSI colours plus modifiers.
    Color,
    /// Modifiers only (bold, reversed, underlined, dim).
    NoColor,
}

impl ColorMode {
    /// Reads the `NO_COLOR` convention: any non-empty value turns colours off.
    pub fn from_env() -> Self {
        match std::env::var_os("NO_COLOR") {
            Some(value) if !value.is_empty() => Self::NoColor,
            _ => Self::Color,
        }
    }
}

/// The styles every widget takes its look from.
#[derive(Debug, Clone)]
pub struct Theme {
    pub header: Style,
    pub title: Style,
    pub text: Style,
    pub muted: Style,
    pub border: Style,
    pub border_focused: Style,
    pub selected: Style,
    pub tab: Style,
    pub tab_active: Style,
    pub key: Style,
    pub success: Style,
    pub warning: Style,
    pub error: Style,
    pub input: Style,
    pub input_focused: Style,
    pub button: Style,
    pub button_focused: Style,
    pub exchanges: Style,
    pub failures: Style,
    pub read_only: Style,
    pub secret: Style,
}

impl Theme {
    /// Builds the theme for a colour mode.
    pub fn new(mode: ColorMode) -> Self {
        let theme = Self::monochrome();
        match mode {
            ColorMode::NoColor => theme,
            ColorMode::Color => theme.with_colors(),
        }
    }

    /// Styles built from modifiers alone; the `NO_COLOR` theme.
    fn monochrome() -> Self {
        let plain = Style::new();
        let bold = plain.add_modifier(Modifier::BOLD);
        let reversed = plain.add_modifier(Modifier::REVERSED);
        Self {
            header: reversed,
            title: bold,
            text: plain,
            muted: plain.add_modifier(Modifier::DIM),
            border: plain,
            border_focused: bold,
            selected: reversed,
            tab: plain,
            tab_active: bold.add_modifier(Modifier::UNDERLINED),
            key: bold,
            success: bold,
            warning: bold,
            error: bold.add_modifier(Modifier::UNDERLINED),
            input: plain.add_modifier(Modifier::UNDERLINED),
            input_focused: reversed,
            button: bold,
            button_focused: reversed.add_modifier(Modifier::BOLD),
            exchanges: plain,
            failures: bold,
            read_only: reversed.add_modifier(Modifier::BOLD),
            secret: bold,
        }
    }

    /// Adds named ANSI foreground colours on top of the modifiers.
    fn with_colors(self) -> Self {
        Self {
            header: self.header.fg(Color::Cyan),
            title: self.title.fg(Color::Cyan),
            muted: self.muted.fg(Color::DarkGray),
            border: self.border.fg(Color::DarkGray),
            border_focused: self.border_focused.fg(Color::Cyan),
            selected: self.selected.fg(Color::Blue),
            tab_active: self.tab_active.fg(Color::Cyan),
            key: self.key.fg(Color::Yellow),
            success: self.success.fg(Color::Green),
            warning: self.warning.fg(Color::Yellow),
            error: self.error.fg(Color::Red),
            button_focused: self.button_focused.fg(Color::Cyan),
            exchanges: self.exchanges.fg(Color::Green),
            failures: self.failures.fg(Color::Red),
            read_only: self.read_only.fg(Color::Yellow),
            secret: self.secret.fg(Color::Yellow),
            ..self
        }
    }
}
