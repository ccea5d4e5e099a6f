//! The screens outside the XAA view: the Proxies home list and the Providers list.

mod providers;
mod proxies;

pub use self::providers::ProvidersScreen;
pub use self::proxies::ProxiesScreen;

use crate::tui::keys::Action;
use crate::tui::table::Selection;

/// Applies a list movement to a selection; returns false for other actions.
pub fn move_selection(selection: &mut Selection, len: usize, action: Action) -> bool {
    match action {
        Action::Up => selection.move_by(len, -1),
        Action::Down => selection.move_by(len, 1),
        Action::PageUp => selection.page_by(len, -1),
        Action::PageDown => selection.page_by(len, 1),
        Action::First => selection.first(),
        Action::Last => selection.last(len),
        _ => return false,
    }
    true
}
