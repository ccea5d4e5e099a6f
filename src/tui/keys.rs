//! The key bindings: one table maps keys to [`Action`]s per [`Scope`]. Key handling, the
//! status bar and the help screen all read this table, so they cannot disagree.
//!
//! A screen's context is an ordered list of scopes, most specific first. The first binding of
//! those scopes that matches a key wins, so a binding shadows the same key further down the
//! list. Bindings marked `mutating` are hidden and rejected in read-only mode.

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};

use crate::tui::strings;

/// An operation a key triggers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Action {
    Quit,
    ToggleHelp,
    Back,
    Refresh,
    Up,
    Down,
    PageUp,
    PageDown,
    First,
    Last,
    NextTab,
    PrevTab,
    /// Tab 1 to 5, taken from the digit pressed.
    SelectTab,
    OpenXaa,
    OpenProviders,
    ToggleProvider,
    RefreshKeys,
    AddProvider,
    /// Stop or resume token issuance at the selected proxy.
    ToggleIssuance,
    AddMapping,
    DeleteMapping,
    Filter,
    /// Start filling in the selected revocation form.
    Edit,
    RevokeSelected,
    CycleStatus,
    CycleEventType,
    ShowDetails,
    NextField,
    PrevField,
    Submit,
    Cancel,
    ChooseNext,
    ChoosePrev,
    Confirm,
    Deny,
    SwitchButton,
    Activate,
    Close,
    ApplyFilter,
    ClearFilter,
}

/// The context a binding applies in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Scope {
    /// Everywhere, even while typing.
    Always,
    /// Every screen without a dialog or a text field in focus.
    Global,
    /// Screens and tabs with a row selection.
    List,
    Proxies,
    Providers,
    /// The XAA view of a proxy, whatever the tab.
    Xaa,
    Mappings,
    Revocation,
    Tokens,
    Audit,
    /// A form with a text field or a dropdown in focus.
    Form,
    /// A dropdown in focus.
    Choice,
    /// Typing a filter.
    Filter,
    Confirm,
    /// Message, result, secret and details dialogs.
    Message,
    Help,
}

impl Scope {
    /// Section title on the help screen.
    pub fn title(self) -> &'static str {
        match self {
            Self::Always | Self::Global => "Everywhere",
            Self::List => "Lists",
            Self::Proxies => "Proxies",
            Self::Providers => "Providers",
            Self::Xaa => "XAA view",
            Self::Mappings => "Client Mappings",
            Self::Revocation => "Token Revocation",
            Self::Tokens => "Tokens",
            Self::Audit => "Audit",
            Self::Form => "Forms",
            Self::Choice => "Dropdowns",
            Self::Filter => "Filter",
            Self::Confirm => "Confirmation dialogs",
            Self::Message => "Message dialogs",
            Self::Help => "Help",
        }
    }
}

/// One key, with the modifiers that must be held.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Key {
    pub code: KeyCode,
    pub modifiers: KeyModifiers,
}

impl Key {
    const fn plain(code: KeyCode) -> Self {
        Self {
            code,
            modifiers: KeyModifiers::NONE,
        }
    }

    const fn char(c: char) -> Self {
        Self::plain(KeyCode::Char(c))
    }

    const fn ctrl(c: char) -> Self {
        Self {
            code: KeyCode::Char(c),
            modifiers: KeyModifiers::CONTROL,
        }
    }

    /// Returns whether a key press is this key. Shift is ignored for characters (it is already in the
    /// character's case) and for Shift-Tab, which terminals report with or without it.
    pub fn matches(self, event: &KeyEvent) -> bool {
        let ignored = match event.code {
            KeyCode::Char(_) | KeyCode::BackTab => KeyModifiers::SHIFT,
            _ => KeyModifiers::NONE,
        };
        event.code == self.code && event.modifiers.difference(ignored) == self.modifiers
    }
}

/// A row of the key table.
#[derive(Debug, PartialEq, Eq)]
pub struct Binding {
    pub scope: Scope,
    pub keys: &'static [Key],
    /// Text of the keys in the status bar and on the help screen.
    pub keys_label: &'static str,
    pub action: Action,
    /// Changes the store; hidden and rejected in read-only mode.
    pub mutating: bool,
    /// Listed in the status bar (every binding is listed on the help screen).
    pub in_status_bar: bool,
}

const fn bind(scope: Scope, keys: &'static [Key], label: &'static str, action: Action) -> Binding {
    Binding {
        scope,
        keys,
        keys_label: label,
        action,
        mutating: false,
        in_status_bar: true,
    }
}

const fn hidden(
    scope: Scope,
    keys: &'static [Key],
    label: &'static str,
    action: Action,
) -> Binding {
    Binding {
        in_status_bar: false,
        ..bind(scope, keys, label, action)
    }
}

const fn mutating(
    scope: Scope,
    keys: &'static [Key],
    label: &'static str,
    action: Action,
) -> Binding {
    Binding {
        mutating: true,
        ..bind(scope, keys, label, action)
    }
}

const UP: Key = Key::plain(KeyCode::Up);
const DOWN: Key = Key::plain(KeyCode::Down);
const LEFT: Key = Key::plain(KeyCode::Left);
const RIGHT: Key = Key::plain(KeyCode::Right);
const ENTER: Key = Key::plain(KeyCode::Enter);
const ESC: Key = Key::plain(KeyCode::Esc);
const TAB: Key = Key::plain(KeyCode::Tab);
const BACK_TAB: Key = Key::plain(KeyCode::BackTab);

use Action as A;
use Scope as S;

/// Every key binding of the dashboard.
pub const BINDINGS: &[Binding] = &[
    bind(S::Always, &[Key::ctrl('c')], "Ctrl-C", A::Quit),
    // Dialogs.
    bind(S::Confirm, &[Key::char('y')], "y", A::Confirm),
    bind(S::Confirm, &[Key::char('n'), ESC], "n/Esc", A::Deny),
    hidden(
        S::Confirm,
        &[TAB, BACK_TAB, LEFT, RIGHT],
        "Tab/←/→",
        A::SwitchButton,
    ),
    bind(S::Confirm, &[ENTER], "Enter", A::Activate),
    bind(S::Message, &[ENTER, ESC], "Enter/Esc", A::Close),
    bind(S::Help, &[ESC, Key::char('?')], "Esc/?", A::Close),
    bind(S::Help, &[DOWN, Key::char('j')], "↑↓/jk", A::Down),
    hidden(S::Help, &[UP, Key::char('k')], "↑/k", A::Up),
    bind(S::Help, &[Key::char('q')], "q", A::Quit),
    // Typing.
    bind(S::Choice, &[RIGHT], "←/→", A::ChooseNext),
    hidden(S::Choice, &[LEFT], "←", A::ChoosePrev),
    bind(S::Form, &[TAB, DOWN], "Tab", A::NextField),
    bind(S::Form, &[BACK_TAB, UP], "S-Tab", A::PrevField),
    bind(S::Form, &[ENTER], "Enter", A::Submit),
    bind(S::Form, &[ESC], "Esc", A::Cancel),
    bind(S::Filter, &[ENTER], "Enter", A::ApplyFilter),
    bind(S::Filter, &[ESC], "Esc", A::ClearFilter),
    // Tabs of the XAA view.
    mutating(S::Mappings, &[Key::char('a')], "a", A::AddMapping),
    mutating(
        S::Mappings,
        &[Key::char('d'), Key::plain(KeyCode::Delete)],
        "d",
        A::DeleteMapping,
    ),
    bind(S::Mappings, &[Key::char('/')], "/", A::Filter),
    bind(S::Mappings, &[ENTER], "Enter", A::ShowDetails),
    mutating(S::Revocation, &[ENTER], "Enter", A::Edit),
    bind(S::Tokens, &[Key::char('/')], "/", A::Filter),
    bind(S::Tokens, &[Key::char('s')], "s", A::CycleStatus),
    mutating(
        S::Tokens,
        &[Key::char('d'), Key::plain(KeyCode::Delete)],
        "d",
        A::RevokeSelected,
    ),
    bind(S::Tokens, &[ENTER], "Enter", A::ShowDetails),
    bind(S::Audit, &[Key::char('f')], "f", A::CycleEventType),
    bind(S::Audit, &[ENTER], "Enter", A::ShowDetails),
    // Screens.
    bind(S::Proxies, &[ENTER, Key::char('x')], "Enter/x", A::OpenXaa),
    bind(S::Proxies, &[Key::char('p')], "p", A::OpenProviders),
    // `i` for issuance: `k` already moves the selection up in every list.
    mutating(S::Proxies, &[Key::char('i')], "i", A::ToggleIssuance),
    mutating(S::Providers, &[Key::char('e')], "e", A::ToggleProvider),
    mutating(S::Providers, &[Key::char('r')], "r", A::RefreshKeys),
    mutating(S::Providers, &[Key::char('a')], "a", A::AddProvider),
    bind(S::Providers, &[ESC], "Esc", A::Back),
    bind(S::Xaa, &[TAB], "Tab", A::NextTab),
    hidden(S::Xaa, &[BACK_TAB], "S-Tab", A::PrevTab),
    bind(
        S::Xaa,
        &[
            Key::char('1'),
            Key::char('2'),
            Key::char('3'),
            Key::char('4'),
            Key::char('5'),
        ],
        "1-5",
        A::SelectTab,
    ),
    bind(S::Xaa, &[ESC], "Esc", A::Back),
    // Lists.
    bind(S::List, &[DOWN, Key::char('j')], "↑↓/jk", A::Down),
    hidden(S::List, &[UP, Key::char('k')], "↑/k", A::Up),
    hidden(
        S::List,
        &[Key::plain(KeyCode::PageDown)],
        "PgDn",
        A::PageDown,
    ),
    hidden(S::List, &[Key::plain(KeyCode::PageUp)], "PgUp", A::PageUp),
    hidden(
        S::List,
        &[Key::plain(KeyCode::Home), Key::char('g')],
        "Home/g",
        A::First,
    ),
    hidden(
        S::List,
        &[Key::plain(KeyCode::End), Key::char('G')],
        "End/G",
        A::Last,
    ),
    // Everywhere else.
    bind(S::Global, &[Key::char('r')], "r", A::Refresh),
    bind(S::Global, &[Key::char('?')], "?", A::ToggleHelp),
    bind(S::Global, &[Key::char('q')], "q", A::Quit),
];

/// Outcome of resolving a key press in a context.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Resolution {
    Action(Action),
    /// A mutating binding matched, and read-only mode rejects it.
    Rejected(&'static Binding),
    /// No binding matched; a focused text field may take the key.
    Unbound,
}

/// Resolves a key press in a context (scopes most specific first).
pub fn resolve(scopes: &[Scope], event: &KeyEvent, read_only: bool) -> Resolution {
    for scope in scopes {
        let found = BINDINGS
            .iter()
            .filter(|binding| binding.scope == *scope)
            .find(|binding| binding.keys.iter().any(|key| key.matches(event)));
        match found {
            Some(binding) if binding.mutating && read_only => {
                // A non-mutating binding further down may still own the key (Providers' `r`
                // falls back to the global refresh).
                if let Some(action) = resolve_below(scopes, *scope, event) {
                    return Resolution::Action(action);
                }
                return Resolution::Rejected(binding);
            }
            Some(binding) => return Resolution::Action(binding.action),
            None => {}
        }
    }
    Resolution::Unbound
}

fn resolve_below(scopes: &[Scope], scope: Scope, event: &KeyEvent) -> Option<Action> {
    let below = scopes.iter().skip_while(|s| **s != scope).skip(1);
    below
        .flat_map(|s| BINDINGS.iter().filter(move |binding| binding.scope == *s))
        .find(|binding| !binding.mutating && binding.keys.iter().any(|key| key.matches(event)))
        .map(|binding| binding.action)
}

/// Returns the bindings that work in a context, in table order, without those whose keys are all
/// shadowed by a more specific scope or rejected by read-only mode.
pub fn active_bindings(scopes: &[Scope], read_only: bool) -> Vec<&'static Binding> {
    let mut taken: Vec<Key> = Vec::new();
    let mut active = Vec::new();
    for scope in scopes {
        for binding in BINDINGS.iter().filter(|binding| binding.scope == *scope) {
            if binding.mutating && read_only {
                continue;
            }
            if binding.keys.iter().all(|key| taken.contains(key)) {
                continue;
            }
            taken.extend(binding.keys.iter().copied());
            active.push(binding);
        }
    }
    active
}

/// Returns the status bar entries of a context, as `(keys, label, action)`: one entry per action,
/// with the help key moved to the end so the bar can keep it when it cuts the rest.
pub fn status_entries(
    scopes: &[Scope],
    read_only: bool,
) -> Vec<(&'static str, &'static str, Action)> {
    let mut listed: Vec<Action> = Vec::new();
    let mut entries = Vec::new();
    for binding in active_bindings(scopes, read_only) {
        if !binding.in_status_bar || listed.contains(&binding.action) {
            continue;
        }
        listed.push(binding.action);
        let label = strings::action_label(binding.action);
        entries.push((binding.keys_label, label, binding.action));
    }
    entries.sort_by_key(|entry| entry.2 == Action::ToggleHelp);
    entries
}

/// Order of the sections on the help screen: where the operator is first, dialogs last.
const HELP_ORDER: [Scope; 16] = [
    Scope::Global,
    Scope::Always,
    Scope::List,
    Scope::Proxies,
    Scope::Providers,
    Scope::Xaa,
    Scope::Mappings,
    Scope::Revocation,
    Scope::Tokens,
    Scope::Audit,
    Scope::Filter,
    Scope::Form,
    Scope::Choice,
    Scope::Confirm,
    Scope::Message,
    Scope::Help,
];

/// Returns the help screen: per section, the `(keys, description)` pairs available in this mode.
pub fn help_sections(read_only: bool) -> Vec<(&'static str, Vec<(&'static str, &'static str)>)> {
    let mut sections: Vec<(&'static str, Vec<(&'static str, &'static str)>)> = Vec::new();
    for scope in HELP_ORDER {
        for binding in BINDINGS.iter().filter(|binding| binding.scope == scope) {
            if binding.mutating && read_only {
                continue;
            }
            let title = binding.scope.title();
            let entry = (binding.keys_label, strings::action_help(binding.action));
            match sections.iter_mut().find(|(section, _)| *section == title) {
                Some((_, entries)) => entries.push(entry),
                None => sections.push((title, vec![entry])),
            }
        }
    }
    sections
}

/// Returns the tab index of a digit key, 0-based.
pub fn digit_index(event: &KeyEvent) -> Option<usize> {
    match event.code {
        KeyCode::Char(c @ '1'..='9') => Some(c as usize - '1' as usize),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn press(code: KeyCode) -> KeyEvent {
        KeyEvent::new(code, KeyModifiers::NONE)
    }

    #[test]
    fn specific_scope_shadows_global() {
        let scopes = [Scope::Providers, Scope::List, Scope::Global, Scope::Always];
        let r = press(KeyCode::Char('r'));
        assert_eq!(
            resolve(&scopes, &r, false),
            Resolution::Action(Action::RefreshKeys)
        );
        assert_eq!(
            resolve(&scopes, &r, true),
            Resolution::Action(Action::Refresh)
        );
    }

    #[test]
    fn read_only_rejects_mutating_keys() {
        let scopes = [
            Scope::Mappings,
            Scope::List,
            Scope::Xaa,
            Scope::Global,
            Scope::Always,
        ];
        let a = press(KeyCode::Char('a'));
        assert!(matches!(
            resolve(&scopes, &a, true),
            Resolution::Rejected(_)
        ));
        let labels: Vec<_> = status_entries(&scopes, true).iter().map(|e| e.1).collect();
        assert!(!labels.contains(&"add mapping"));
        assert!(labels.contains(&"filter"));
    }

    #[test]
    fn ctrl_c_quits_while_typing() {
        let ctrl_c = KeyEvent::new(KeyCode::Char('c'), KeyModifiers::CONTROL);
        let scopes = [Scope::Form, Scope::Always];
        assert_eq!(
            resolve(&scopes, &ctrl_c, false),
            Resolution::Action(Action::Quit)
        );
        let q = press(KeyCode::Char('q'));
        assert_eq!(resolve(&scopes, &q, false), Resolution::Unbound);
    }

    #[test]
    fn status_bar_skips_shadowed_keys() {
        let scopes = [Scope::Providers, Scope::List, Scope::Global, Scope::Always];
        let entries = status_entries(&scopes, false);
        assert_eq!(entries.iter().filter(|entry| entry.0 == "r").count(), 1);
    }

    #[test]
    fn status_bar_lists_actions_once() {
        let scopes = [Scope::Proxies, Scope::List, Scope::Global, Scope::Always];
        let entries = status_entries(&scopes, false);
        assert_eq!(entries.iter().filter(|e| e.2 == Action::Quit).count(), 1);
        assert_eq!(entries.last().map(|e| e.2), Some(Action::ToggleHelp));
        let form = status_entries(&[Scope::Form, Scope::Always], false);
        assert!(form.iter().any(|e| e.0 == "Ctrl-C"));
    }

    #[test]
    fn help_covers_every_binding() {
        let listed: usize = help_sections(false)
            .iter()
            .map(|(_, entries)| entries.len())
            .sum();
        assert_eq!(listed, BINDINGS.len());
    }

    #[test]
    fn every_action_has_labels() {
        for binding in BINDINGS {
            assert!(!strings::action_label(binding.action).is_empty());
            assert!(!strings::action_help(binding.action).is_empty());
        }
    }
}
