//! Taking over the terminal and giving it back: raw mode, the alternate screen and bracketed
//! paste on the way in; the reverse on every way out. A `Drop` guard covers early returns and
//! unwinding, and a panic hook restores the screen before the panic message is printed.
//! Mouse capture is never enabled, so the terminal's own selection keeps working.

use std::io::stdout;

use color_eyre::eyre::WrapErr;
use crossterm::event::{DisableBracketedPaste, EnableBracketedPaste};
use crossterm::execute;
use ratatui::DefaultTerminal;

/// The terminal while the dashboard owns it.
pub struct TerminalGuard {
    terminal: DefaultTerminal,
    active: bool,
}

impl TerminalGuard {
    /// Enters raw mode and the alternate screen (with `ratatui::try_init`, which also installs
    /// its restoring panic hook), then enables bracketed paste so a pasted JTI arrives as one
    /// piece instead of as keys (a pasted newline would otherwise press Enter).
    pub fn enter() -> color_eyre::Result<Self> {
        let terminal = match ratatui::try_init() {
            Ok(terminal) => terminal,
            Err(error) => {
                // Raw mode may already be on when entering the alternate screen failed.
                let _ = ratatui::try_restore();
                return Err(error).wrap_err("cannot take over the terminal");
            }
        };
        install_paste_hook();
        if let Err(error) = execute!(stdout(), EnableBracketedPaste) {
            tracing::warn!(%error, "cannot enable bracketed paste; pasted text arrives as keys");
        }
        Ok(Self {
            terminal,
            active: true,
        })
    }

    pub fn terminal(&mut self) -> &mut DefaultTerminal {
        &mut self.terminal
    }

    /// Gives the terminal back; later calls do nothing.
    pub fn leave(&mut self) {
        if !self.active {
            return;
        }
        self.active = false;
        if let Err(error) = self.terminal.show_cursor() {
            tracing::warn!(%error, "cannot show the cursor again");
        }
        restore();
    }
}

impl Drop for TerminalGuard {
    fn drop(&mut self) {
        self.leave();
    }
}

/// Turns bracketed paste off, then leaves raw mode and the alternate screen. Failures are
/// logged: there is nothing else to do about them on the way out.
fn restore() {
    if let Err(error) = execute!(stdout(), DisableBracketedPaste) {
        tracing::warn!(%error, "cannot disable bracketed paste");
    }
    if let Err(error) = ratatui::try_restore() {
        tracing::error!(%error, "cannot restore the terminal");
    }
}

/// Chains a hook that turns bracketed paste off in front of the current panic hook (ratatui's,
/// which restores raw mode and the screen and then calls the one before it).
fn install_paste_hook() {
    let previous = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let _ = execute!(stdout(), DisableBracketedPaste);
        previous(info);
    }));
}
