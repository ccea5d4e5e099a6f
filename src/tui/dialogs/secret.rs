//! The new client's secret, shown once after a mapping created the client.
//!
//! The secret sits alone on its line, in a dialog without side borders, so the terminal's own
//! selection (the dashboard never captures the mouse) copies exactly the secret.

use ratatui::Frame;
use ratatui::layout::{Margin, Rect};
use ratatui::text::Line;
use ratatui::widgets::{Paragraph, Wrap};

use super::frame_open_dialog;
use crate::tui::strings;
use crate::tui::text;
use crate::tui::theme::Theme;

#[derive(Debug, Clone)]
pub struct SecretDialog {
    pub client_id: String,
    pub secret: String,
}

impl SecretDialog {
    pub fn render(&self, frame: &mut Frame, area: Rect, theme: &Theme) {
        // The secret is base64url, but it is drawn in full, never cut: widen to fit it.
        let width = u16::try_from(text::width(&self.secret) + 4)
            .unwrap_or(u16::MAX)
            .max(72)
            .min(area.width);
        let text_width = width.saturating_sub(2);
        let owner = strings::secret_for(&text::sanitize(&self.client_id));
        let height = text::wrapped_height(&owner, text_width)
            + text::wrapped_height(strings::SECRET_ONCE, text_width)
            + 7;
        let inner = frame_open_dialog(frame, area, (width, height), strings::SECRET_TITLE, theme);
        let lines = vec![
            Line::raw(owner),
            Line::raw(""),
            Line::styled(text::sanitize(&self.secret).into_owned(), theme.secret),
            Line::raw(""),
            Line::styled(strings::SECRET_ONCE, theme.warning),
            Line::raw(""),
            Line::styled(strings::CLOSE_HINT, theme.muted),
        ];
        let body = Paragraph::new(lines).wrap(Wrap { trim: false });
        frame.render_widget(body, inner.inner(Margin::new(1, 0)));
    }
}
