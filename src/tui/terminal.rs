//! Taking over the terminal and giving it back. On the way in: raw mode, the alternate screen
//! and bracketed paste. On every way out: the reverse. A `Drop` guard covers early returns and
//! unwinding, and a panic hook restores the screen before the panic message is printed.
//! Mouse capture is never enabled, so the terminal's own selection keeps working.

use std::io::stdout;

use color_eyre::eyre::WrapErr;
use crossterm::event::{DisableBracketedPaste, EnableBracketedPaste};
use crossterm::execute;
use ratatui::DefaultTerminal;

/// The terminal while the dashboard owns it; `None` once given back.
pub struct TerminalGuard {
    terminal: Option<DefaultTerminal>,
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
            terminal: Some(terminal),
        })
    }

    /// Returns the terminal to draw on, until [`Self::leave`] gives it back.
    pub fn terminal(&mut self) -> Option<&mut DefaultTerminal> {
        self.terminal.as_mut()
    }

    /// Gives the terminal back; later calls do nothing.
    pub fn leave(&mut self) {
        let Some(mut terminal) = self.terminal.take() else {
            return;
        };
        if let Err(error) = terminal.show_cursor() {
            // The terminal is gone (an ssh session that hung up): ratatui's `Drop` for
            // `Terminal` would retry and report the failure with `eprintln!`, which panics on
            // a closed stderr. Skipping that drop leaks one small struct at exit.
            tracing::warn!(%error, "the terminal is gone; skipping its restore");
            std::mem::forget(terminal);
        } else {
            drop(terminal);
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
