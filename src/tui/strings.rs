//! Every fixed text the dashboard shows: titles, labels, column names, messages and the labels
//! of the key bindings. Card, column, dialog and field names follow the XAA Configuration modal
//! of the gateway's web console, so operators find the same words in both.

use crate::tui::keys::Action;

pub const APP_NAME: &str = "xaa";
pub const READ_ONLY_BADGE: &str = " read-only ";
pub const TOO_SMALL: &str = "terminal too small";

// Screens and tabs.
pub const PROXIES_TITLE: &str = "Proxies";
pub const PROVIDERS_TITLE: &str = "Providers";
pub const XAA_TITLE: &str = "XAA";
pub const TAB_STATISTICS: &str = "1 Statistics";
pub const TAB_MAPPINGS: &str = "2 Client Mappings";
pub const TAB_REVOCATION: &str = "3 Token Revocation";
pub const TAB_TOKENS: &str = "4 Tokens";
pub const TAB_AUDIT: &str = "5 Audit";

// Proxies screen.
pub const COL_NAME: &str = "Name";
pub const COL_KIND: &str = "Kind";
pub const COL_MAPPINGS: &str = "Mappings";
pub const COL_ACTIVE_TOKENS: &str = "Active Tokens";
pub const COL_ISSUANCE: &str = "Issuance";
pub const ISSUANCE_ON: &str = "on";
pub const ISSUANCE_OFF: &str = "stopped";
pub const NO_PROXIES: &str =
    "No proxies yet. Add one with `xaa proxies add --name NAME`, then press r.";

// Providers screen.
pub const COL_ENABLED: &str = "Enabled";
pub const COL_KEYS: &str = "Keys";
pub const COL_LAST_FETCH: &str = "Last Fetch";
pub const COL_LAST_ERROR: &str = "Last Error";
pub const NO_PROVIDERS: &str =
    "No providers yet. Add one with `xaa providers add --name NAME --issuer URL`.";
pub const LABEL_ISSUER: &str = "Issuer";
pub const LABEL_JWKS_URI: &str = "JWKS URI";
pub const LABEL_EXPIRES: &str = "Keys expire";
pub const LABEL_REPLAY: &str = "Replay policy";
pub const JWKS_DISCOVERED: &str = "discovered from the issuer";
pub const NOT_FETCHED: &str = "not fetched yet";
pub const YES: &str = "yes";
pub const NO: &str = "no";
pub const NEVER: &str = "never";
pub const NONE: &str = "none";
pub const DISABLED: &str = "disabled";

// Statistics tab.
pub const CARD_TOKENS: &str = "ID-JAG Tokens";
pub const CARD_JWKS: &str = "JWKS Cache";
pub const CARD_MAPPINGS: &str = "Client Mappings";
pub const STAT_TOTAL: &str = "Total";
pub const STAT_ACTIVE: &str = "Active";
pub const STAT_REVOKED: &str = "Revoked";
pub const STAT_LAST_TOKEN: &str = "Last Token";
pub const STAT_TOTAL_PROVIDERS: &str = "Total Providers";
pub const STAT_TOTAL_KEYS: &str = "Total Keys";
pub const STAT_LAST_UPDATED: &str = "Last Updated";
pub const STAT_TOTAL_MAPPINGS: &str = "Total Mappings";
pub const STAT_PROVIDERS: &str = "Providers";
pub const STAT_GENERATION: &str = "Revocation generation";
pub const STAT_REFRESHED: &str = "refreshed";
pub const ACTIVITY_TITLE: &str = "Exchanges per minute";
pub const ACTIVITY_SUCCEEDED: &str = "exchanges";
pub const ACTIVITY_FAILED: &str = "failures";
pub const REASONS_TITLE: &str = "Failure reasons (last hour)";
pub const NO_FAILURES: &str = "no failures in the last hour";
pub const HEALTH_TITLE: &str = "JWKS health";
pub const COL_PROVIDER: &str = "Provider";

// Client Mappings tab.
pub const COL_IDP_PROVIDER: &str = "IdP Provider";
pub const COL_CLIENT_AT_IDP: &str = "Client ID at IdP";
pub const COL_CLIENT_AT_AS: &str = "Client ID at Resource AS";
pub const COL_ALLOWED_SCOPES: &str = "Allowed Scopes";
pub const COL_CREATED_AT: &str = "Created At";
pub const NO_MAPPINGS: &str =
    "No client mappings: this proxy rejects every ID-JAG exchange. Press a to add one.";
pub const NO_MAPPINGS_READ_ONLY: &str =
    "No client mappings: this proxy rejects every ID-JAG exchange.";
pub const NO_MATCHES: &str = "Nothing matches the filter.";
pub const FILTER_PROMPT: &str = "Filter: ";

// Add XAA Client Mapping dialog.
pub const ADD_MAPPING_TITLE: &str = "Add XAA Client Mapping";
pub const CREATE_MAPPING: &str = "Create Mapping";
pub const SCOPES_HINT: &str = "space-separated, e.g. openid profile email mcp:tools";
pub const NO_ENABLED_PROVIDER: &str = "no enabled provider: enable one on the Providers screen";
pub const CREATING: &str = "Creating the mapping…";
pub const MAPPING_CREATED: &str = "Mapping created.";
pub const SECRET_TITLE: &str = "Client Secret";
pub const SECRET_ONCE: &str = "This secret is shown once. Copy it now: only its SHA-256 \
     digest is stored, and a lost secret can only be replaced by rotating it.";
pub const SECRET_EXISTING_CLIENT: &str = "The client already existed on this proxy, so its \
     secret is unchanged.";

// Delete mapping.
pub const DELETE_MAPPING_TITLE: &str = "Delete Client Mapping";
pub const DELETE_BUTTON: &str = "Delete";
pub const DELETE_WARNING: &str = "New ID-JAG exchanges for this client fail at once. Tokens \
     already issued stay valid until they expire or are revoked.";
pub const MAPPING_DELETED: &str = "Mapping deleted.";

// Token Revocation tab.
pub const CARD_REVOKE_TOKEN: &str = "Revoke Single Token";
pub const CARD_REVOKE_SUBJECT: &str = "Revoke by Subject";
pub const FIELD_JTI: &str = "JTI";
pub const FIELD_REASON: &str = "Reason";
pub const FIELD_REVOKED_BY: &str = "Revoked By";
pub const FIELD_SUBJECT: &str = "Subject";
pub const REVOKE_TOKEN_BUTTON: &str = "Revoke Token";
pub const REVOKE_TOKENS_BUTTON: &str = "Revoke Tokens";
pub const REVOKE_TOKEN_TITLE: &str = "Revoke Token";
pub const REVOKE_SUBJECT_TITLE: &str = "Revoke Tokens by Subject";
pub const TOKEN_REVOKED_TITLE: &str = "Token Revoked";
pub const TOKENS_REVOKED_TITLE: &str = "Tokens Revoked";
pub const REVOKE_WARNING: &str = "Revoked tokens cannot be un-revoked; users must obtain new \
     tokens through the OAuth flow.";
pub const REVOCATION_READ_ONLY: &str =
    "Revocation is disabled: the dashboard runs in read-only mode.";
pub const REVOCATION_HINT: &str = "Press Enter to fill in the selected form.";
pub const REVOKING: &str = "Revoking…";

// Tokens tab.
pub const COL_JTI: &str = "JTI";
pub const COL_SUBJECT: &str = "Subject";
pub const COL_CLIENT: &str = "Client";
pub const COL_SCOPES: &str = "Scopes";
pub const COL_ISSUED: &str = "Issued";
pub const COL_EXPIRES: &str = "Expires";
pub const COL_STATUS: &str = "Status";
pub const COL_USES: &str = "Uses";
pub const REVOKED_AT: &str = "Revoked At";
pub const COL_PROXY: &str = "Proxy";
pub const COL_REASON_CODE: &str = "Reason code";
pub const STATUS_ALL: &str = "all";
pub const NO_TOKENS: &str = "No ID-JAG has been redeemed at this proxy yet.";
pub const TOKEN_DETAILS_TITLE: &str = "Token Details";
pub const MAPPING_DETAILS_TITLE: &str = "Mapping Details";

// Audit tab.
pub const COL_TIME: &str = "Time";
pub const COL_EVENT: &str = "Event";
pub const COL_ACTOR: &str = "Actor";
pub const COL_DETAILS: &str = "Details";
pub const AUDIT_DETAILS_TITLE: &str = "Audit Event";
pub const NO_EVENTS: &str = "No audit events yet.";
pub const AUDIT_LIVE: &str = "live";

// Dialogs and messages.
pub const CANCEL: &str = "Cancel";
pub const CONFIRM_HINT: &str = "y confirms, n or Esc cancels.";
pub const CLOSE_HINT: &str = "Enter or Esc closes.";
pub const ERROR_TITLE: &str = "Error";
pub const HELP_TITLE: &str = "Help";
pub const READ_ONLY_REJECTED: &str = "read-only mode: this action is disabled";
pub const READ_ONLY_HELP: &str =
    "Read-only mode: every action that changes the store is hidden and rejected.";
pub const DONE_TITLE: &str = "Done";
pub const LOADING: &str = "loading…";
pub const WORKING: &str = "working…";
pub const REQUIRED: &str = "required";
pub const PROVIDER_DISABLE_TITLE: &str = "Disable Provider";
pub const PROVIDER_ENABLE_TITLE: &str = "Enable Provider";
pub const PROVIDER_DISABLE_WARNING: &str =
    "ID-JAGs signed by this provider are rejected until it is enabled again.";
pub const PROVIDER_ENABLE_NOTE: &str = "ID-JAGs signed by this provider are accepted again.";
pub const ENABLE_BUTTON: &str = "Enable";
pub const ADD_PROVIDER_TITLE: &str = "Add Provider";
pub const ADD_PROVIDER_BUTTON: &str = "Add Provider";
pub const FIELD_NAME: &str = "Name";
pub const FIELD_KIND: &str = "Kind";
pub const ISSUER_HINT: &str = "https://example.okta.com";
pub const JWKS_URI_HINT: &str = "empty: discovered from the issuer's metadata";
pub const ADDING_PROVIDER: &str = "Adding the provider…";
pub const STOP_ISSUANCE_TITLE: &str = "Stop Issuance";
pub const RESUME_ISSUANCE_TITLE: &str = "Resume Issuance";
pub const STOP_BUTTON: &str = "Stop";
pub const RESUME_BUTTON: &str = "Resume";
pub const STOP_ISSUANCE_WARNING: &str = "Every ID-JAG exchange at this proxy is rejected until \
     issuance resumes. Access tokens already issued stay valid.";
pub const DISABLE_BUTTON: &str = "Disable";

/// Returns the short label of an action in the status bar.
pub fn action_label(action: Action) -> &'static str {
    match action {
        Action::Quit => "quit",
        Action::ToggleHelp => "help",
        Action::Back => "back",
        Action::Refresh => "refresh",
        Action::Up => "up",
        Action::Down => "move",
        Action::PageUp => "page up",
        Action::PageDown => "page down",
        Action::First => "first",
        Action::Last => "last",
        Action::NextTab => "next tab",
        Action::PrevTab => "previous tab",
        Action::SelectTab => "tabs",
        Action::OpenXaa => "open XAA",
        Action::OpenProviders => "providers",
        Action::ToggleProvider => "enable/disable",
        Action::RefreshKeys => "refresh keys",
        Action::AddProvider => "add provider",
        Action::ToggleIssuance => "stop/resume issuance",
        Action::AddMapping => "add mapping",
        Action::DeleteMapping => "delete",
        Action::Filter => "filter",
        Action::Edit => "fill in",
        Action::RevokeSelected => "revoke",
        Action::CycleStatus => "status",
        Action::CycleEventType => "event type",
        Action::ShowDetails => "details",
        Action::NextField => "next field",
        Action::PrevField => "previous field",
        Action::Submit => "submit",
        Action::Cancel | Action::Deny => "cancel",
        Action::ChooseNext => "choose",
        Action::ChoosePrev => "choose previous",
        Action::Confirm => "confirm",
        Action::SwitchButton => "switch button",
        Action::Activate => "press button",
        Action::Close => "close",
        Action::ApplyFilter => "apply",
        Action::ClearFilter => "clear",
    }
}

/// Returns the sentence describing an action on the help screen.
pub fn action_help(action: Action) -> &'static str {
    match action {
        Action::Quit => "Quit the dashboard",
        Action::ToggleHelp => "Show or hide this help",
        Action::Back => "Go back to the previous screen",
        Action::Refresh => "Refresh the data on screen now",
        Action::Up => "Select the previous row",
        Action::Down => "Move the selection down or up",
        Action::PageUp => "Move one page up",
        Action::PageDown => "Move one page down",
        Action::First => "Select the first row",
        Action::Last => "Select the last row",
        Action::NextTab => "Show the next tab",
        Action::PrevTab => "Show the previous tab",
        Action::SelectTab => "Show tab 1 to 5",
        Action::OpenXaa => "Open the XAA view of the selected proxy",
        Action::OpenProviders => "Show the identity providers and their key sets",
        Action::ToggleProvider => "Enable or disable the selected provider",
        Action::RefreshKeys => "Fetch the selected provider's key set now",
        Action::AddProvider => "Open the Add Provider dialog",
        Action::ToggleIssuance => "Stop or resume token issuance at the selected proxy",
        Action::AddMapping => "Open the Add XAA Client Mapping dialog",
        Action::DeleteMapping => "Delete the selected mapping, after a confirmation",
        Action::Filter => "Filter the rows",
        Action::Edit => "Fill in the selected revocation form",
        Action::RevokeSelected => "Revoke the selected token, after a confirmation",
        Action::CycleStatus => "Show all, active, revoked or expired tokens",
        Action::CycleEventType => "Show all events or one event type",
        Action::ShowDetails => "Show every field of the selected row",
        Action::NextField => "Move to the next field",
        Action::PrevField => "Move to the previous field",
        Action::Submit => "Submit the form",
        Action::Cancel => "Leave the form",
        Action::ChooseNext => "Choose the next option",
        Action::ChoosePrev => "Choose the previous option",
        Action::Confirm => "Confirm",
        Action::Deny => "Cancel",
        Action::SwitchButton => "Move between the buttons",
        Action::Activate => "Press the focused button",
        Action::Close => "Close the dialog",
        Action::ApplyFilter => "Keep the filter and return to the rows",
        Action::ClearFilter => "Clear the filter",
    }
}

/// Formats the footer note on a key that read-only mode rejects.
pub fn rejected_read_only(label: &str) -> String {
    format!("read-only mode: '{label}' is disabled")
}

/// Formats the countdown to the next automatic refresh.
pub fn refresh_in(seconds: u64) -> String {
    format!("refresh in {seconds}s")
}

/// Formats the countdown shown while the last refresh failed.
pub fn retry_in(seconds: u64) -> String {
    format!("retrying in {seconds}s")
}

/// Formats a failed refresh, shown where its data would be.
pub fn refresh_failed(error: &str) -> String {
    format!("refresh failed: {error}")
}

/// Formats the error of a job that the store did not complete in time.
pub fn no_answer(seconds: u64) -> String {
    format!("no answer within {seconds} s; an action may still complete, so check the audit log")
}

/// Formats the label over a sparkline of the activity chart.
pub fn activity_label(series: &str, last: u64, peak: u64, minutes: usize) -> String {
    format!("{series}: {last}/min now, peak {peak}, last {minutes} min")
}

/// Formats the confirmation question of a revocation by JTI.
pub fn confirm_revoke_token(jti: &str) -> String {
    format!("Revoke the token with JTI '{jti}' and every access token minted from it?")
}

/// Formats the confirmation question of a revocation by subject.
pub fn confirm_revoke_subject(subject: &str, provider: &str) -> String {
    format!(
        "Revoke every token of subject '{subject}' at {provider}, and every access token \
         minted from them?"
    )
}

/// Formats the count of a revocation by subject.
pub fn subject_revoked(count: i64, subject: &str) -> String {
    if count == 1 {
        format!("1 token revoked for subject '{subject}'.")
    } else {
        format!("{count} tokens revoked for subject '{subject}'.")
    }
}

/// Formats the confirmation question of a mapping deletion.
pub fn confirm_delete_mapping(client_at_idp: &str, provider: &str, client_at_as: &str) -> String {
    format!("Delete the mapping of '{client_at_idp}' at {provider} to '{client_at_as}'?")
}

/// Formats the confirmation question of enabling or disabling a provider.
pub fn confirm_toggle_provider(name: &str, enable: bool) -> String {
    if enable {
        format!("Enable provider '{name}'?")
    } else {
        format!("Disable provider '{name}'?")
    }
}

/// Formats the result of enabling or disabling a provider.
pub fn provider_toggled(name: &str, enabled: bool) -> String {
    if enabled {
        format!("Provider '{name}' enabled.")
    } else {
        format!("Provider '{name}' disabled.")
    }
}

/// Formats the confirmation question of the issuance kill switch.
pub fn confirm_issuance(proxy: &str, enable: bool) -> String {
    if enable {
        format!("Resume issuing access tokens at proxy '{proxy}'?")
    } else {
        format!("Stop issuing access tokens at proxy '{proxy}'?")
    }
}

/// Formats the result of the issuance kill switch.
pub fn issuance_set(proxy: &str, enabled: bool) -> String {
    if enabled {
        format!("Issuance resumed at proxy '{proxy}'.")
    } else {
        format!("Issuance stopped at proxy '{proxy}'.")
    }
}

/// Formats the result of adding a provider.
pub fn provider_added(name: &str) -> String {
    format!("Provider '{name}' added; its keys are being fetched.")
}

/// Formats the result of a key set refresh.
pub fn keys_refreshed(name: &str, count: usize) -> String {
    format!("Fetched {count} key(s) for provider '{name}'.")
}

/// Formats the line naming the client a secret belongs to.
pub fn secret_for(client: &str) -> String {
    format!("Client secret of '{client}':")
}

/// Formats the duplicate mapping error of the add dialog.
pub fn duplicate_mapping(client: &str, provider: &str) -> String {
    format!("a mapping for '{client}' at {provider} already exists; delete it first")
}

/// Formats the error for a scope that fails the RFC 6749 `scope-token` syntax.
pub fn invalid_scope(scope: &str) -> String {
    format!("'{scope}' is not a valid scope (printable ASCII without spaces, '\"' or '\\')")
}

/// Formats the error for whitespace inside a client id.
pub fn client_id_whitespace(field: &str) -> String {
    format!("{field} must not contain spaces")
}

/// Formats the rows shown out of the rows loaded.
pub fn rows_shown(shown: usize, total: usize) -> String {
    let noun = if total == 1 { "row" } else { "rows" };
    if shown == total {
        format!("{total} {noun}")
    } else {
        format!("{shown} of {total} {noun}")
    }
}

/// Formats the token status filter.
pub fn status_filter(status: &str) -> String {
    format!("status: {status}")
}

/// Formats the audit event type filter.
pub fn event_filter(event: &str) -> String {
    format!("event type: {event}")
}

/// Formats the proxy in the XAA view header.
pub fn proxy_heading(name: &str, kind: &str, id: i64) -> String {
    format!("{name} ({kind}, id {id})")
}

/// Formats the footer note while actions run.
pub fn busy(label: &str, count: usize) -> String {
    if count > 1 {
        format!("{label} ({count} actions running)")
    } else {
        label.to_owned()
    }
}
