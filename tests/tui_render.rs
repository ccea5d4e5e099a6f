//! Buffer tests of every dashboard screen and dialog at 80×24 and 200×50. They check that the
//! names operators look for are on screen and that table cells line up under their headers,
//! wide characters included. Tiny sizes must not panic, and control characters from the store
//! must show as harmless text.

#![allow(clippy::unwrap_used)]

mod tui_common;

use crossterm::event::KeyCode;
use tui_common::{ACTOR, Harness, Screen};
use xaa::tui::{AppEvent, Tab};

/// The sizes every screen is drawn at.
const SIZES: [(u16, u16); 2] = [(80, 24), (200, 50)];

/// Builds a store with two proxies, two providers (one with a wide-character name), mappings,
/// tokens and audit events, and a dashboard that has loaded it.
async fn populated() -> Harness {
    let mut harness = Harness::new(false).await;
    let proxy = harness.proxy("mcp-prod").await;
    harness.proxy("llm-staging").await;
    let okta = harness.provider("Okta Production").await;
    let tokyo = harness.provider("東京 IdP").await;
    harness.mapping(&proxy, &okta, "0oa5x7y8z9abc123def").await;
    harness.mapping(&proxy, &tokyo, "wide-client").await;
    harness
        .token(
            &proxy,
            &okta,
            "550e8400-e29b-41d4-a716-446655440000",
            "alice@example.com",
        )
        .await;
    harness
        .token(&proxy, &okta, "jti-bob-1", "bob@example.com")
        .await;
    harness.audit("client_id", "0oa5x7y8z9abc123def").await;
    harness.settle().await;
    harness
}

/// Opens the XAA view of the first proxy and selects a tab.
async fn open_tab(harness: &mut Harness, tab: char) {
    harness.press(KeyCode::Enter).await;
    harness.press_char(tab).await;
}

fn each_size(harness: &mut Harness, check: impl Fn(&Screen)) {
    for (width, height) in SIZES {
        let screen = harness.render(width, height);
        check(&screen);
    }
}

#[tokio::test]
async fn proxies_screen_lists_proxies() {
    let mut harness = populated().await;
    each_size(&mut harness, |screen| {
        for text in [
            "xaa · Proxies",
            "Name",
            "Kind",
            "Mappings",
            "Active Tokens",
            "mcp-prod",
        ] {
            screen.assert_contains(text);
        }
        screen.assert_contains("llm-staging");
        screen.assert_contains("exchange server running on 127.0.0.1:8080");
        screen.assert_contains("Enter/x open XAA");
        screen.assert_contains("p providers");
        screen.assert_contains("refresh in 30s");
        assert_eq!(screen.column_of("mcp-prod"), screen.column_of("Name"));
        let (_, row) = screen.find("mcp-prod").unwrap();
        let text = &screen.rows[row].text;
        assert!(text.contains(" 2 "), "mapping count missing in '{text}'");
    });
}

#[tokio::test]
async fn statistics_tab_shows_every_card_figure() {
    let mut harness = populated().await;
    open_tab(&mut harness, '1').await;
    assert_eq!(harness.app.tab(), Some(Tab::Statistics));
    each_size(&mut harness, |screen| {
        let labels = [
            "1 Statistics",
            "5 Audit",
            "ID-JAG Tokens",
            "JWKS Cache",
            "Client Mappings",
            "Total",
            "Active",
            "Revoked",
            "Last Token",
            "Total Providers",
            "Total Keys",
            "Last Updated",
            "Total Mappings",
            "Providers",
            "Revocation generation",
            "Exchanges per minute",
            "exchanges:",
            "failures:",
            "Failure reasons",
            "JWKS health",
            "Okta Production",
        ];
        for label in labels {
            screen.assert_contains(label);
        }
    });
}

#[tokio::test]
async fn mappings_tab_aligns_columns() {
    let mut harness = populated().await;
    open_tab(&mut harness, '2').await;
    let screen = harness.render(200, 50);
    for header in [
        "IdP Provider",
        "Client ID at IdP",
        "Client ID at Resource AS",
        "Allowed Scopes",
        "Created At",
    ] {
        screen.assert_contains(header);
    }
    screen.assert_contains("openid, mcp:tools");
    let client_column = screen.column_of("Client ID at IdP");
    assert_eq!(screen.column_of("0oa5x7y8z9abc123def"), client_column);
    assert_eq!(screen.column_of("wide-client"), client_column);
    assert_eq!(
        screen.column_of("東京 IdP"),
        screen.column_of("IdP Provider")
    );

    let narrow = harness.render(80, 24);
    narrow.assert_contains("IdP Provider");
    narrow.assert_contains("a add mapping");
    narrow.assert_contains("d delete");
    narrow.assert_contains("/ filter");
    assert_eq!(
        narrow.column_of("東京 IdP"),
        narrow.column_of("IdP Provider")
    );
    let (wide_x, _) = narrow.find("wide-cl").unwrap();
    let (okta_x, _) = narrow.find("0oa5x7").unwrap();
    assert_eq!(
        wide_x, okta_x,
        "the row after a wide character must stay aligned"
    );
}

#[tokio::test]
async fn revocation_tab_shows_both_forms() {
    let mut harness = populated().await;
    open_tab(&mut harness, '3').await;
    each_size(&mut harness, |screen| {
        for text in [
            "Revoke Single Token",
            "Revoke by Subject",
            "JTI",
            "Reason",
            "Revoked By",
            "IdP Provider",
            "Subject",
            "[ Revoke Token ]",
            "[ Revoke Tokens ]",
            ACTOR,
            "Okta Production (oidc)",
        ] {
            screen.assert_contains(text);
        }
    });
}

#[tokio::test]
async fn tokens_tab_lists_records_with_status() {
    let mut harness = populated().await;
    open_tab(&mut harness, '4').await;
    each_size(&mut harness, |screen| {
        for text in [
            "Status",
            "Subject",
            "Client",
            "alice@example",
            "bob@example.com",
        ] {
            screen.assert_contains(text);
        }
        screen.assert_contains("active");
        screen.assert_contains("status: all");
        assert_eq!(
            screen.column_of("alice@example"),
            screen.column_of("Subject")
        );
    });
}

#[tokio::test]
async fn audit_tab_lists_events() {
    let mut harness = populated().await;
    open_tab(&mut harness, '5').await;
    each_size(&mut harness, |screen| {
        screen.assert_contains("xaa_client_mapping_created");
        screen.assert_contains("xaa_token_validation_failed");
        screen.assert_contains("event type: all");
        screen.assert_contains("live");
        screen.assert_contains("f event type");
    });
}

#[tokio::test]
async fn providers_screen_shows_key_state() {
    let mut harness = populated().await;
    harness.press_char('p').await;
    each_size(&mut harness, |screen| {
        for text in [
            "Providers",
            "Enabled",
            "Keys",
            "Last Fetch",
            "Last Error",
            "Issuer",
        ] {
            screen.assert_contains(text);
        }
        screen.assert_contains("Okta Production");
        screen.assert_contains("東京 IdP");
        screen.assert_contains("e enable/disable");
        screen.assert_contains("r refresh keys");
        assert_eq!(
            screen.column_of("東京 IdP"),
            screen.column_of("Okta Production")
        );
    });
}

#[tokio::test]
async fn help_lists_bindings() {
    let mut harness = populated().await;
    harness.press_char('?').await;
    each_size(&mut harness, |screen| {
        screen.assert_contains("Help");
        screen.assert_contains("Quit the dashboard");
        screen.assert_contains("Esc/? close");
    });
}

#[tokio::test]
async fn dialogs_render_at_both_sizes() {
    let mut harness = populated().await;
    open_tab(&mut harness, '2').await;

    harness.press_char('a').await;
    each_size(&mut harness, |screen| {
        screen.assert_contains("Add XAA Client Mapping");
        screen.assert_contains("Client ID at Resource AS");
        screen.assert_contains("Allowed Scopes");
        screen.assert_contains("[ Create Mapping ]");
        screen.assert_contains("‹ Okta Production (oidc) ›");
        screen.assert_contains("Tab next field");
    });
    harness.press(KeyCode::Esc).await;

    harness.press_char('d').await;
    each_size(&mut harness, |screen| {
        screen.assert_contains("Delete Client Mapping");
        screen.assert_contains("[ Delete ]");
        screen.assert_contains("[ Cancel ]");
        screen.assert_contains("y confirm");
        screen.assert_contains("y confirms, n or Esc cancels.");
    });
    harness.press_char('n').await;

    harness.press(KeyCode::Enter).await;
    each_size(&mut harness, |screen| {
        screen.assert_contains("Mapping Details");
        screen.assert_contains("Enter or Esc closes.");
    });
    harness.press(KeyCode::Esc).await;
    assert_eq!(harness.app.dialog_count(), 0);
}

#[tokio::test]
async fn secret_dialog_says_shown_once() {
    let mut harness = populated().await;
    open_tab(&mut harness, '2').await;
    harness.press_char('a').await;
    harness.press(KeyCode::Tab).await;
    harness.type_text("new-idp-client").await;
    harness.press(KeyCode::Tab).await;
    harness.type_text("new-as-client").await;
    harness.press(KeyCode::Tab).await;
    harness.type_text("openid").await;
    harness.press(KeyCode::Enter).await;
    each_size(&mut harness, |screen| {
        screen.assert_contains("Client Secret");
        screen.assert_contains("shown once");
        screen.assert_contains("Enter or Esc closes.");
        screen.assert_contains("'new-as-client'");
        screen.assert_contains("Mapping created.");
    });
}

#[tokio::test]
async fn tiny_terminals_do_not_panic() {
    let mut harness = populated().await;
    for (width, height) in [(0, 0), (1, 1), (10, 3), (59, 24), (80, 14), (30, 10)] {
        let screen = harness.render(width, height);
        if width >= 20 && height >= 2 {
            screen.assert_contains("terminal too small");
        }
    }
    open_tab(&mut harness, '1').await;
    for (width, height) in [(60, 15), (61, 16), (79, 23)] {
        harness
            .render(width, height)
            .assert_lacks("terminal too small");
    }
    harness.press_char('?').await;
    for (width, height) in [(60, 15), (5, 5)] {
        harness.render(width, height);
    }
}

#[tokio::test]
async fn control_characters_render_as_text() {
    let mut harness = Harness::new(false).await;
    let proxy = harness.proxy("mcp-prod").await;
    let provider = harness.provider("Okta").await;
    harness
        .token(&proxy, &provider, "jti-evil", "\x1b[2J\nmallory\u{9b}")
        .await;
    harness.audit("reason", "bad\x1b]52;c;Zm9v\x07").await;
    harness.settle().await;

    open_tab(&mut harness, '4').await;
    for (width, height) in SIZES {
        let screen = harness.render(width, height);
        screen.assert_contains("\\x1b[2J\\nmallory\\u{009b}");
        assert!(
            !screen.dump().contains('\x1b'),
            "a raw ESC reached the buffer"
        );
    }
    harness.press(KeyCode::Enter).await;
    let details = harness.render(200, 50);
    details.assert_contains("Token Details");
    details.assert_contains("\\x1b[2J\\nmallory");

    harness.press(KeyCode::Esc).await;
    harness.press_char('5').await;
    let audit = harness.render(200, 50);
    audit.assert_contains("reason=bad\\x1b]52;c;Zm9v\\x07");
    assert!(
        !audit.dump().contains('\x07'),
        "a raw BEL reached the buffer"
    );
}

#[tokio::test]
async fn read_only_hides_mutating_keys() {
    let mut harness = Harness::new(true).await;
    let proxy = harness.proxy("mcp-prod").await;
    let provider = harness.provider("Okta").await;
    harness.mapping(&proxy, &provider, "client-a").await;
    harness.settle().await;
    open_tab(&mut harness, '2').await;
    each_size(&mut harness, |screen| {
        screen.assert_contains("read-only");
        screen.assert_lacks("a add mapping");
        screen.assert_lacks("d delete");
        screen.assert_contains("/ filter");
    });

    harness.press_char('a').await;
    assert_eq!(harness.app.dialog_count(), 0);
    harness
        .render(80, 24)
        .assert_contains("read-only mode: 'add mapping' is disabled");

    harness.press_char('3').await;
    each_size(&mut harness, |screen| {
        screen.assert_contains("Revocation is disabled");
        screen.assert_lacks("[ Revoke Token ]");
    });
}

#[tokio::test]
async fn countdown_ticks_and_refreshes() {
    let mut harness = populated().await;
    harness.app.handle(AppEvent::Tick);
    harness.render(80, 24).assert_contains("refresh in 29s");
    for _ in 0..29 {
        harness.app.handle(AppEvent::Tick);
    }
    assert!(!harness.app.take_jobs().is_empty(), "a refresh was due");
    harness.render(80, 24).assert_contains("refresh in 30s");
}

#[tokio::test]
async fn action_dialogs_render_at_both_sizes() {
    let mut harness = populated().await;
    harness.press_char('i').await;
    each_size(&mut harness, |screen| {
        screen.assert_contains("Stop Issuance");
        screen.assert_contains("[ Stop ]");
    });
    harness.press(KeyCode::Esc).await;

    harness.press_char('p').await;
    harness.press_char('a').await;
    each_size(&mut harness, |screen| {
        screen.assert_contains("Add Provider");
        screen.assert_contains("Issuer");
        screen.assert_contains("JWKS URI");
        screen.assert_contains("‹ oidc ›");
    });
    harness.press(KeyCode::Esc).await;
    harness.press(KeyCode::Esc).await;

    open_tab(&mut harness, '4').await;
    harness.press_char('d').await;
    each_size(&mut harness, |screen| {
        screen.assert_contains("Revoke Token");
        screen.assert_contains("un-revoked");
        screen.assert_contains("y confirms, n or Esc cancels.");
    });
    harness.press_char('y').await;
    each_size(&mut harness, |screen| {
        screen.assert_contains("Token Revoked");
    });
    harness.press(KeyCode::Esc).await;

    harness.press_char('3').await;
    harness.press(KeyCode::Enter).await;
    harness.type_text("no-such-jti").await;
    harness.press(KeyCode::Enter).await;
    harness.press_char('y').await;
    each_size(&mut harness, |screen| {
        screen.assert_contains("Error");
        screen.assert_contains("no-such-jti");
    });
}
