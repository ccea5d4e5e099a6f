//! The frame around every screen: the header (where you are, the server note, read-only),
//! the footer (flash messages, running actions, the refresh countdown) and the status bar
//! generated from the key table. Dialogs are drawn last, over the body.

use ratatui::Frame;
use ratatui::layout::{Alignment, Constraint, Layout, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Paragraph, Wrap};

use crate::tui::app::{App, MIN_HEIGHT, MIN_WIDTH, Screen};
use crate::tui::dialogs::Tone;
use crate::tui::keys::{self, Action};
use crate::tui::panel::Panel;
use crate::tui::strings;
use crate::tui::tabs::TabContext;
use crate::tui::text;
use crate::tui::theme::Theme;

/// Draws the whole dashboard.
pub fn draw(app: &mut App, frame: &mut Frame) {
    let area = frame.area();
    if area.width < MIN_WIDTH || area.height < MIN_HEIGHT {
        render_too_small(frame, area, &app.theme);
        return;
    }
    let layout = Layout::vertical([
        Constraint::Length(1),
        Constraint::Min(0),
        Constraint::Length(1),
        Constraint::Length(1),
    ]);
    let [header, body, info, status] = area.layout(&layout);
    render_header(app, frame, header);
    render_body(app, frame, body);
    render_info(app, frame, info);
    render_status_bar(app, frame, status);
    let theme = app.theme.clone();
    for dialog in &mut app.dialogs {
        dialog.render(frame, body, &theme);
    }
}

fn render_body(app: &mut App, frame: &mut Frame, area: Rect) {
    match app.screen {
        Screen::Proxies => app.proxies.render(frame, area, &app.theme),
        Screen::Providers => app.providers.render(frame, area, &app.theme),
        Screen::Xaa => {
            if let Some(view) = app.xaa.as_mut() {
                let context = TabContext {
                    theme: &app.theme,
                    read_only: app.options.read_only,
                    actor: &app.options.actor,
                    providers: app.providers.states(),
                };
                view.render(frame, area, &context);
            }
        }
    }
}

fn render_too_small(frame: &mut Frame, area: Rect, theme: &Theme) {
    let lines = vec![
        Line::styled(strings::TOO_SMALL, theme.error),
        Line::styled(format!("{MIN_WIDTH}×{MIN_HEIGHT}"), theme.muted),
    ];
    let message = Paragraph::new(lines)
        .alignment(Alignment::Center)
        .wrap(Wrap { trim: true });
    let middle = area.centered_vertically(Constraint::Length(2));
    frame.render_widget(message, middle);
}

/// Draws the location, the server note, and the read-only badge.
fn render_header(app: &App, frame: &mut Frame, area: Rect) {
    let location = match (app.screen, &app.xaa) {
        (Screen::Xaa, Some(view)) => format!(
            "{} › {} › {}",
            strings::PROXIES_TITLE,
            strings::proxy_heading(&view.proxy.name, view.proxy.kind.as_str(), view.proxy.id),
            strings::XAA_TITLE
        ),
        (Screen::Providers, _) => strings::PROVIDERS_TITLE.to_owned(),
        _ => strings::PROXIES_TITLE.to_owned(),
    };
    let badge = if app.options.read_only {
        strings::READ_ONLY_BADGE
    } else {
        ""
    };
    let note = app.options.server_note.as_deref().unwrap_or_default();
    let width = usize::from(area.width);
    let left = format!(" {} · {}", strings::APP_NAME, text::sanitize(&location));
    // At least three columns between the location and the note, so they never read as one.
    let right_room = width.saturating_sub(text::width(&left) + text::width(badge) + 4);
    let note = text::fit(note, right_room);
    let gap =
        width.saturating_sub(text::width(&left) + text::width(&note) + text::width(badge) + 1);
    let line = Line::from(vec![
        Span::styled(text::truncate(&left, width), app.theme.header),
        Span::styled(" ".repeat(gap), app.theme.header),
        Span::styled(note, app.theme.header),
        Span::styled(" ", app.theme.header),
        Span::styled(badge, app.theme.read_only),
    ]);
    frame.render_widget(Paragraph::new(line).style(app.theme.header), area);
}

/// Draws the flash message or running action on the left, the refresh countdown on the right.
fn render_info(app: &App, frame: &mut Frame, area: Rect) {
    let width = usize::from(area.width);
    let countdown = if app.tab() == Some(crate::tui::tabs::Tab::Audit) {
        strings::AUDIT_LIVE.to_owned()
    } else if app.countdown.retrying {
        strings::retry_in(app.countdown.remaining)
    } else {
        strings::refresh_in(app.countdown.remaining)
    };
    let (message, style) = if app.busy.0 > 0 {
        (strings::busy(app.busy.1, app.busy.0), app.theme.warning)
    } else if let Some(flash) = &app.flash {
        (
            text::sanitize(&flash.text).into_owned(),
            tone_style(flash.tone, &app.theme),
        )
    } else {
        (String::new(), app.theme.text)
    };
    let room = width.saturating_sub(text::width(&countdown) + 2);
    let message = text::truncate(&message, room);
    let gap = width.saturating_sub(text::width(&message) + text::width(&countdown) + 1);
    let line = Line::from(vec![
        Span::styled(format!(" {message}"), style),
        Span::raw(" ".repeat(gap.saturating_sub(1))),
        Span::styled(countdown, app.theme.muted),
    ]);
    frame.render_widget(Paragraph::new(line), area);
}

/// Draws the keys that work right now, from the key table, and "read-only" when it applies. When
/// the bar is too narrow it cuts entries from the end but keeps `? help`, which lists them all.
fn render_status_bar(app: &App, frame: &mut Frame, area: Rect) {
    let read_only = app.options.read_only;
    let badge = if read_only {
        strings::READ_ONLY_BADGE
    } else {
        ""
    };
    let room = usize::from(area.width).saturating_sub(text::width(badge));
    let (help, others): (Vec<_>, Vec<_>) = keys::status_entries(&app.scopes(), read_only)
        .into_iter()
        .partition(|entry| entry.2 == Action::ToggleHelp);
    let entry_width = |keys: &str, label: &str| text::width(keys) + text::width(label) + 3;
    let help_width: usize = help.iter().map(|entry| entry_width(entry.0, entry.1)).sum();
    let budget = room.saturating_sub(help_width);

    let mut spans = vec![Span::raw(" ")];
    let mut used = 1;
    for (keys, label, _) in &others {
        let width = entry_width(keys, label);
        if used + width > budget {
            // The ellipsis takes three columns; leave it out when even that does not fit.
            if used + 3 <= budget {
                spans.push(Span::styled(
                    format!("{}  ", text::ELLIPSIS),
                    app.theme.muted,
                ));
                used += 3;
            }
            break;
        }
        spans.push(Span::styled(*keys, app.theme.key));
        spans.push(Span::raw(format!(" {label}  ")));
        used += width;
    }
    for (keys, label, _) in &help {
        spans.push(Span::styled(*keys, app.theme.key));
        spans.push(Span::raw(format!(" {label}  ")));
        used += entry_width(keys, label);
    }
    spans.push(Span::raw(" ".repeat(room.saturating_sub(used))));
    spans.push(Span::styled(badge, app.theme.read_only));
    frame.render_widget(Paragraph::new(Line::from(spans)), area);
}

/// Returns the style of a message tone.
pub fn tone_style(tone: Tone, theme: &Theme) -> ratatui::style::Style {
    match tone {
        Tone::Normal => theme.text,
        Tone::Success => theme.success,
        Tone::Error => theme.error,
        Tone::Muted => theme.muted,
    }
}

/// Builds a bordered block titled `title`, whose bottom border shows the panel's state: the last
/// refresh error (sanitized) or "loading…".
pub fn panel_block<'a, T>(title: &'a str, panel: &Panel<T>, theme: &Theme) -> Block<'a> {
    let block = Block::bordered()
        .border_style(theme.border)
        .title(Line::styled(format!(" {title} "), theme.title));
    if let Some(error) = panel.error() {
        let message = strings::refresh_failed(&text::sanitize(error));
        block.title_bottom(Line::styled(format!(" {message} "), theme.error))
    } else if panel.is_loading() && panel.data().is_none() {
        block.title_bottom(Line::styled(format!(" {} ", strings::LOADING), theme.muted))
    } else {
        block
    }
}
