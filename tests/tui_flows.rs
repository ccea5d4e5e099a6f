//! Key-driven flows of the dashboard against a real SQLite store: adding and deleting client
//! mappings, revoking by JTI and by subject, revoking from the Tokens tab, toggling a
//! provider, following the audit log, read-only mode and quitting. Each flow checks what the
//! store recorded and the audit events, not only the screen.

#![allow(clippy::unwrap_used)]

mod tui_common;

use crossterm::event::KeyCode;
use sha2::{Digest, Sha256};
use tui_common::{ACTOR, Harness};
use xaa::core::admin::check_jti_format;
use xaa::core::model::{AuditEvent, AuditEventType, AuditQuery, IdJagRecord, TokenQuery};
use xaa::tui::{AppEvent, Tab};

async fn audit_events(harness: &Harness, event_type: AuditEventType) -> Vec<AuditEvent> {
    let query = AuditQuery {
        event_type: Some(event_type),
        ..AuditQuery::default()
    };
    harness.core.query_audit(&query).await.unwrap()
}

async fn token(harness: &Harness, jti: &str) -> IdJagRecord {
    let all = harness
        .core
        .list_tokens(&TokenQuery::default())
        .await
        .unwrap();
    all.into_iter().find(|record| record.jti == jti).unwrap()
}

/// Opens the XAA view of the first proxy on a tab.
async fn open_tab(harness: &mut Harness, tab: char) {
    harness.press(KeyCode::Enter).await;
    harness.press_char(tab).await;
}

#[tokio::test]
async fn add_mapping_validates_inline_then_creates() {
    let mut harness = Harness::new(false).await;
    let proxy = harness.proxy("mcp-prod").await;
    let okta = harness.provider("Okta Production").await;
    harness.mapping(&proxy, &okta, "existing-client").await;
    harness.settle().await;
    open_tab(&mut harness, '2').await;
    harness.press_char('a').await;

    harness.press(KeyCode::Enter).await;
    let screen = harness.render(80, 24);
    screen.assert_contains("required");
    assert_eq!(harness.core.list_mappings(proxy.id).await.unwrap().len(), 1);

    harness.press(KeyCode::Tab).await;
    harness.type_text("existing-client").await;
    harness.press(KeyCode::Tab).await;
    harness.type_text("gateway-mcp-proxy-001").await;
    harness.press(KeyCode::Tab).await;
    harness.type_text("openid bad\"scope").await;
    harness.press(KeyCode::Enter).await;
    let screen = harness.render(200, 50);
    screen.assert_contains("already exists");
    screen.assert_contains("'bad\"scope' is not a valid scope");
    assert_eq!(harness.core.list_mappings(proxy.id).await.unwrap().len(), 1);

    harness.press_ctrl('u').await;
    harness.type_text("openid profile mcp:tools").await;
    harness.press(KeyCode::BackTab).await;
    harness.press(KeyCode::BackTab).await;
    harness.press_ctrl('u').await;
    harness.type_text("0oa5x7y8z9abc123def").await;
    harness.press(KeyCode::Enter).await;

    let screen = harness.render(200, 50);
    screen.assert_contains("Client Secret");
    screen.assert_contains("shown once");
    screen.assert_contains("Mapping created.");
    let clients = harness.core.store().list_clients().await.unwrap();
    let client = clients
        .iter()
        .find(|client| client.client_id == "gateway-mcp-proxy-001")
        .unwrap();
    let shown_secret = screen
        .rows
        .iter()
        .flat_map(|row| row.text.split_whitespace())
        .find(|word| Sha256::digest(word.as_bytes()).as_slice() == client.secret_hash.as_slice());
    assert!(
        shown_secret.is_some(),
        "the secret on screen must match the stored digest"
    );

    let mappings = harness.core.list_mappings(proxy.id).await.unwrap();
    let created = mappings
        .iter()
        .find(|m| m.client_id_at_idp == "0oa5x7y8z9abc123def")
        .unwrap();
    assert_eq!(created.idp_provider_id, okta.id);
    assert_eq!(created.client_id_at_resource_as, "gateway-mcp-proxy-001");
    assert_eq!(created.allowed_scopes, ["openid", "profile", "mcp:tools"]);
    let events = audit_events(&harness, AuditEventType::XaaClientMappingCreated).await;
    let event = events
        .iter()
        .find(|e| e.fields["client_id_at_idp"] == "0oa5x7y8z9abc123def")
        .unwrap();
    assert_eq!(event.actor, ACTOR);
    assert_eq!(event.proxy_id, Some(proxy.id));

    harness.press(KeyCode::Esc).await;
    assert_eq!(harness.app.dialog_count(), 0);
    harness
        .render(200, 50)
        .assert_contains("0oa5x7y8z9abc123def");
}

#[tokio::test]
async fn delete_mapping_needs_confirmation() {
    let mut harness = Harness::new(false).await;
    let proxy = harness.proxy("mcp-prod").await;
    let okta = harness.provider("Okta").await;
    harness.mapping(&proxy, &okta, "client-a").await;
    harness.mapping(&proxy, &okta, "client-b").await;
    harness.settle().await;
    open_tab(&mut harness, '2').await;
    harness.press(KeyCode::Down).await;
    let selected = harness.core.list_mappings(proxy.id).await.unwrap()[1].clone();

    harness.press_char('d').await;
    harness
        .render(80, 24)
        .assert_contains("Delete Client Mapping");
    harness.press(KeyCode::Enter).await;
    assert_eq!(
        harness.app.dialog_count(),
        0,
        "Enter presses the focused Cancel button"
    );
    harness.press_char('d').await;
    harness.press_char('n').await;
    assert_eq!(harness.core.list_mappings(proxy.id).await.unwrap().len(), 2);

    harness.press_char('d').await;
    harness.press_char('y').await;
    let left = harness.core.list_mappings(proxy.id).await.unwrap();
    assert_eq!(left.len(), 1);
    assert!(left.iter().all(|m| m.id != selected.id));
    let events = audit_events(&harness, AuditEventType::XaaClientMappingDeleted).await;
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].actor, ACTOR);
    assert_eq!(events[0].fields["mapping_id"], selected.id);

    let screen = harness.render(80, 24);
    screen.assert_contains("Mapping deleted.");
    screen.assert_lacks(&selected.client_id_at_idp);
}

#[tokio::test]
async fn revoke_single_token_checks_jti_and_confirms() {
    let jti = "550e8400-e29b-41d4-a716-446655440000";
    let mut harness = Harness::new(false).await;
    let proxy = harness.proxy("mcp-prod").await;
    let okta = harness.provider("Okta").await;
    harness.token(&proxy, &okta, jti, "alice@example.com").await;
    harness.settle().await;
    open_tab(&mut harness, '3').await;
    harness.press(KeyCode::Enter).await;

    harness.type_text("not a jti!").await;
    let expected = check_jti_format("not a jti!").unwrap_err().to_string();
    harness.render(200, 50).assert_contains(&expected[..40]);
    harness.press(KeyCode::Enter).await;
    assert_eq!(
        harness.app.dialog_count(),
        0,
        "an invalid JTI is not submitted"
    );

    harness.press_ctrl('u').await;
    harness.type_text(jti).await;
    harness.render(200, 50).assert_lacks(&expected[..20]);
    harness.press(KeyCode::Tab).await;
    harness.type_text("Security incident #12345").await;
    harness.press(KeyCode::Enter).await;
    harness.render(80, 24).assert_contains("Revoke Token");
    assert!(
        token(&harness, jti).await.revocation.is_none(),
        "nothing happens before y"
    );

    harness.press_char('y').await;
    let screen = harness.render(80, 24);
    screen.assert_contains("Token Revoked");
    screen.assert_contains("revoked");
    let revocation = token(&harness, jti).await.revocation.unwrap();
    assert_eq!(
        revocation.reason.as_deref(),
        Some("Security incident #12345")
    );
    assert_eq!(revocation.revoked_by.as_deref(), Some(ACTOR));
    let events = audit_events(&harness, AuditEventType::XaaTokenRevoked).await;
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].fields["jti"], jti);
    assert_eq!(events[0].fields["reason"], "Security incident #12345");
    assert_eq!(events[0].fields["revoked_by"], ACTOR);

    harness.press(KeyCode::Enter).await;
    harness.render(200, 50).assert_lacks(jti);
}

#[tokio::test]
async fn revoke_by_subject_reports_the_count() {
    let mut harness = Harness::new(false).await;
    let proxy = harness.proxy("mcp-prod").await;
    let okta = harness.provider("Okta").await;
    let other = harness.provider("Other IdP").await;
    harness
        .token(&proxy, &okta, "alice-1", "alice@example.com")
        .await;
    harness
        .token(&proxy, &okta, "alice-2", "alice@example.com")
        .await;
    harness
        .token(&proxy, &other, "alice-other", "alice@example.com")
        .await;
    harness
        .token(&proxy, &okta, "bob-1", "bob@example.com")
        .await;
    harness.settle().await;
    open_tab(&mut harness, '3').await;

    harness.press(KeyCode::Enter).await;
    for _ in 0..4 {
        harness.press(KeyCode::Tab).await;
    }
    harness.render(80, 24).assert_contains("←/→ choose");
    harness.press(KeyCode::Right).await;
    harness.press(KeyCode::Left).await;
    harness.press(KeyCode::Tab).await;
    harness.type_text("alice@example.com").await;
    harness.press(KeyCode::Tab).await;
    harness.type_text("offboarding").await;
    harness.press(KeyCode::Enter).await;
    let screen = harness.render(80, 24);
    screen.assert_contains("Revoke Tokens by Subject");
    screen.assert_contains("alice@example.com");

    harness.press_char('y').await;
    let screen = harness.render(80, 24);
    screen.assert_contains("Tokens Revoked");
    screen.assert_contains("2 tokens revoked for subject 'alice@example.com'.");
    assert!(token(&harness, "alice-1").await.revocation.is_some());
    assert!(token(&harness, "alice-2").await.revocation.is_some());
    assert!(token(&harness, "alice-other").await.revocation.is_none());
    assert!(token(&harness, "bob-1").await.revocation.is_none());
    let events = audit_events(&harness, AuditEventType::XaaTokensRevokedBySubject).await;
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].idp_provider_id, Some(okta.id));
    assert_eq!(events[0].fields["subject"], "alice@example.com");
    assert_eq!(events[0].fields["count"], 2);
    assert_eq!(events[0].fields["revoked_by"], ACTOR);
}

#[tokio::test]
async fn tokens_tab_filters_and_revokes_selected() {
    let mut harness = Harness::new(false).await;
    let proxy = harness.proxy("mcp-prod").await;
    let okta = harness.provider("Okta").await;
    harness
        .token(&proxy, &okta, "alice-1", "alice@example.com")
        .await;
    harness
        .token(&proxy, &okta, "bob-1", "bob@example.com")
        .await;
    harness.settle().await;
    open_tab(&mut harness, '4').await;

    harness.press_char('/').await;
    harness.type_text("alice").await;
    let screen = harness.render(200, 50);
    screen.assert_contains("alice@example.com");
    screen.assert_lacks("bob@example.com");
    harness.press(KeyCode::Enter).await;
    harness.render(200, 50).assert_contains("1 row");

    harness.press_char('d').await;
    harness.render(80, 24).assert_contains("Revoke Token");
    harness.press_char('y').await;
    harness.render(80, 24).assert_contains("Token Revoked");
    let revocation = token(&harness, "alice-1").await.revocation.unwrap();
    assert_eq!(revocation.revoked_by.as_deref(), Some(ACTOR));
    assert!(token(&harness, "bob-1").await.revocation.is_none());

    harness.press(KeyCode::Esc).await;
    harness.press_char('/').await;
    harness.press(KeyCode::Esc).await;
    harness.press_char('s').await;
    let screen = harness.render(200, 50);
    screen.assert_contains("status: active");
    screen.assert_contains("bob@example.com");
    screen.assert_lacks("alice@example.com");
}

#[tokio::test]
async fn provider_toggle_confirms_and_updates_dropdown() {
    let mut harness = Harness::new(false).await;
    let proxy = harness.proxy("mcp-prod").await;
    let okta = harness.provider("Okta").await;
    harness.settle().await;
    harness.press_char('p').await;
    harness.press_char('e').await;
    harness.render(80, 24).assert_contains("Disable Provider");
    harness.press_char('y').await;
    let providers = harness.core.list_providers().await.unwrap();
    assert!(!providers.iter().any(|p| p.id == okta.id && p.enabled));
    harness
        .render(80, 24)
        .assert_contains("Provider 'Okta' disabled.");

    harness.press(KeyCode::Esc).await;
    open_tab(&mut harness, '2').await;
    harness.press_char('a').await;
    harness
        .render(80, 24)
        .assert_contains("no enabled provider");
    assert_eq!(harness.core.list_mappings(proxy.id).await.unwrap().len(), 0);
}

#[tokio::test]
async fn audit_tab_follows_new_events() {
    let mut harness = Harness::new(false).await;
    harness.proxy("mcp-prod").await;
    harness.settle().await;
    open_tab(&mut harness, '5').await;
    harness.render(200, 50).assert_lacks("late-client");

    harness.audit("client_id", "late-client").await;
    harness.app.handle(AppEvent::Tick);
    harness.app.handle(AppEvent::Tick);
    harness.settle().await;
    harness
        .render(200, 50)
        .assert_contains("client_id=late-client");
}

#[tokio::test]
async fn read_only_rejects_every_action() {
    let mut harness = Harness::new(true).await;
    let proxy = harness.proxy("mcp-prod").await;
    let okta = harness.provider("Okta").await;
    harness.mapping(&proxy, &okta, "client-a").await;
    harness
        .token(&proxy, &okta, "alice-1", "alice@example.com")
        .await;
    harness.settle().await;
    open_tab(&mut harness, '2').await;
    harness.press_char('a').await;
    harness.press_char('d').await;
    harness.press_char('y').await;
    assert_eq!(harness.app.dialog_count(), 0);
    assert_eq!(harness.core.list_mappings(proxy.id).await.unwrap().len(), 1);

    harness.press_char('3').await;
    harness.press(KeyCode::Enter).await;
    harness.type_text("alice-1").await;
    harness.press(KeyCode::Enter).await;
    assert_eq!(harness.app.dialog_count(), 0);

    harness.press_char('4').await;
    harness.press_char('d').await;
    harness.press_char('y').await;
    assert!(token(&harness, "alice-1").await.revocation.is_none());

    harness.press(KeyCode::Esc).await;
    harness.press_char('i').await;
    harness.press_char('y').await;
    assert!(
        harness
            .core
            .get_proxy(proxy.id)
            .await
            .unwrap()
            .issuance_enabled
    );

    harness.press_char('p').await;
    harness.press_char('e').await;
    harness.press_char('y').await;
    harness.press_char('a').await;
    assert_eq!(harness.app.dialog_count(), 0);
    let providers = harness.core.list_providers().await.unwrap();
    assert!(providers.iter().all(|p| p.enabled));
    assert!(
        audit_events(&harness, AuditEventType::XaaTokenRevoked)
            .await
            .is_empty()
    );
}

#[tokio::test]
async fn quit_keys_and_signals() {
    let mut harness = Harness::new(false).await;
    harness.proxy("mcp-prod").await;
    harness.settle().await;
    open_tab(&mut harness, '3').await;
    harness.press(KeyCode::Enter).await;
    harness.type_text("q").await;
    assert!(
        !harness.app.should_quit(),
        "q is text while a field has the focus"
    );
    harness.press(KeyCode::Esc).await;
    harness.press(KeyCode::Esc).await;
    assert_eq!(harness.app.tab(), None);
    harness.press_ctrl('c').await;
    assert!(harness.app.should_quit());

    let mut harness = Harness::new(false).await;
    harness.app.handle(AppEvent::Stop("SIGHUP"));
    assert!(harness.app.should_quit());
    harness.press_char('q').await;
}

#[tokio::test]
async fn tab_keys_switch_tabs() {
    let mut harness = Harness::new(false).await;
    harness.proxy("mcp-prod").await;
    harness.settle().await;
    harness.press_char('x').await;
    assert_eq!(harness.app.tab(), Some(Tab::Statistics));
    harness.press(KeyCode::Tab).await;
    assert_eq!(harness.app.tab(), Some(Tab::Mappings));
    harness.press(KeyCode::BackTab).await;
    harness.press(KeyCode::BackTab).await;
    assert_eq!(harness.app.tab(), Some(Tab::Audit));
    harness.press_char('3').await;
    assert_eq!(harness.app.tab(), Some(Tab::Revocation));
    harness.press_char('?').await;
    assert_eq!(harness.app.dialog_count(), 1);
    harness.press_char('?').await;
    assert_eq!(harness.app.dialog_count(), 0);
}

#[tokio::test]
async fn add_provider_reports_core_checks_inline() {
    let mut harness = Harness::new(false).await;
    harness.settle().await;
    harness.press_char('p').await;
    harness.press_char('a').await;
    harness.render(80, 24).assert_contains("Add Provider");
    harness.press(KeyCode::Enter).await;
    harness.render(80, 24).assert_contains("required");

    harness.type_text("Okta Production").await;
    harness.press(KeyCode::Tab).await;
    harness.press(KeyCode::Right).await;
    harness.press(KeyCode::Tab).await;
    harness.type_text("http://okta.example").await;
    harness.press(KeyCode::Tab).await;
    harness.type_text("https://127.0.0.1:9/keys").await;
    harness.press(KeyCode::Enter).await;
    harness.render(200, 50).assert_contains("must use https");
    assert!(harness.core.list_providers().await.unwrap().is_empty());

    harness.press(KeyCode::BackTab).await;
    harness.press_ctrl('u').await;
    harness.type_text("https://okta.example").await;
    harness.press(KeyCode::Enter).await;
    assert_eq!(harness.app.dialog_count(), 0);
    let providers = harness.core.list_providers().await.unwrap();
    assert_eq!(providers.len(), 1);
    assert_eq!(providers[0].name, "Okta Production");
    assert_eq!(providers[0].kind.as_str(), "okta");
    assert_eq!(providers[0].issuer, "https://okta.example");
    assert_eq!(
        providers[0].jwks_uri.as_deref(),
        Some("https://127.0.0.1:9/keys")
    );
    harness
        .render(80, 24)
        .assert_contains("Provider 'Okta Production' added");
}

#[tokio::test]
async fn kill_switch_stops_and_resumes_issuance() {
    let mut harness = Harness::new(false).await;
    let proxy = harness.proxy("mcp-prod").await;
    harness.settle().await;
    harness.press_char('i').await;
    harness.render(80, 24).assert_contains("Stop Issuance");
    harness.press_char('y').await;
    assert!(
        !harness
            .core
            .get_proxy(proxy.id)
            .await
            .unwrap()
            .issuance_enabled
    );
    let screen = harness.render(80, 24);
    screen.assert_contains("stopped");
    screen.assert_contains("Issuance stopped at proxy 'mcp-prod'.");

    harness.press_char('i').await;
    harness.render(80, 24).assert_contains("Resume Issuance");
    harness.press_char('y').await;
    assert!(
        harness
            .core
            .get_proxy(proxy.id)
            .await
            .unwrap()
            .issuance_enabled
    );
}
