//! The whole flow over real HTTP: an independent IdP signs an ID-JAG, xaa redeems it,
//! introspection reports it, revocation by subject ends it, and the audit log records each step.

mod common;

use chrono::Utc;
use common::idp::TestIdp;
use common::server::{ADMIN_TOKEN, TestServer};
use reqwest::Method;
use serde_json::{Value, json};
use xaa::core::model::{AuditEventType, NewAuditEvent, SubjectRevocation};
use xaa::core::open_store;
use xaa::core::store::{ExchangeWrite, NewAccessToken};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[expect(clippy::too_many_lines, reason = "one story, read top to bottom")]
async fn redeem_introspect_revoke_subject() {
    let idp = TestIdp::start().await;
    let server = TestServer::start().await;
    let provider = server.add_provider(idp.issuer(), json!({})).await;
    let proxy = server.add_proxy("mcp-tools", json!({})).await;
    let mapping = server
        .add_mapping(
            proxy,
            provider,
            "0oa-idp-client",
            "gateway-client",
            &["openid", "mcp:tools"],
        )
        .await;
    let secret = mapping["client_secret"]
        .as_str()
        .expect("secret shown once")
        .to_owned();

    // Redeem: the ID-JAG names the IdP-side client id; the mapping translates it.
    let claims = idp.claims(&server.issuer(proxy), "0oa-idp-client", "alice@example.com");
    let older = idp.mint(&claims);
    let assertion =
        idp.mint(&idp.claims(&server.issuer(proxy), "0oa-idp-client", "alice@example.com"));
    let response = server
        .redeem(proxy, "gateway-client", &secret, &assertion, &[])
        .await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["cache-control"], "no-store");
    assert_eq!(response.headers()["pragma"], "no-cache");
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["scope"], "openid mcp:tools");
    assert!(body.get("refresh_token").is_none());
    let access_token = body["access_token"].as_str().unwrap().to_owned();

    // Introspection by the client that owns the token: active.
    let introspect = |token: String| {
        let url = format!("{}/oauth2/introspect", server.issuer(proxy));
        let secret = secret.clone();
        let http = server.http.clone();
        async move {
            http.post(url)
                .basic_auth("gateway-client", Some(secret))
                .form(&[("token", token)])
                .send()
                .await
                .unwrap()
                .json::<Value>()
                .await
                .unwrap()
        }
    };
    let active = introspect(access_token.clone()).await;
    assert_eq!(active["active"], true, "{active}");
    assert_eq!(active["sub"], "alice@example.com");
    assert_eq!(active["client_id"], "gateway-client");

    // Revoke by subject: the token turns inactive and the older, unused ID-JAG is rejected.
    let revoke = server
        .admin(
            Method::POST,
            "/api/v1/xaa/revoke-tokens-by-subject",
            Some(
                json!({"idp_provider_id": provider, "subject": "alice@example.com",
                        "reason": "offboarding", "revoked_by": "secops"}),
            ),
        )
        .await;
    assert_eq!(revoke.status(), 200);
    let revoked: Value = revoke.json().await.unwrap();
    assert_eq!(revoked["revoked_count"], 1);

    let inactive = introspect(access_token).await;
    assert_eq!(inactive, json!({"active": false}));
    let rejected = server
        .redeem(proxy, "gateway-client", &secret, &older, &[])
        .await;
    assert_eq!(rejected.status(), 400);
    let error: Value = rejected.json().await.unwrap();
    assert_eq!(error["error"], "invalid_grant");

    // The audit log holds each step, newest first.
    let audit: Vec<Value> = server
        .http
        .get(format!("{}/api/v1/xaa/audit?limit=50", server.admin_url))
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let types: Vec<&str> = audit
        .iter()
        .rev()
        .map(|event| event["event_type"].as_str().unwrap())
        .collect();
    for expected in [
        "xaa_client_mapping_created",
        "xaa_token_validation_success",
        "xaa_token_exchange",
        "xaa_tokens_revoked_by_subject",
        "xaa_token_validation_failed",
    ] {
        assert!(
            types.contains(&expected),
            "{expected} missing from {types:?}"
        );
    }
    let failure = audit
        .iter()
        .find(|e| e["event_type"] == "xaa_token_validation_failed")
        .unwrap();
    assert_eq!(failure["reason_code"], "subject_revoked");

    // No raw token is written to the audit file.
    let file = std::fs::read_to_string(server.dir.join("logs/audit.jsonl")).unwrap_or_default();
    assert!(!file.contains(&assertion[..40]));
    server.stop().await;
}

/// Builds the store record of an exchange by `subject` that happened a second ago, as the
/// exchange would write it, for tests that need many records quickly.
fn seeded_exchange(provider: i64, proxy: i64, subject: &str, number: usize) -> ExchangeWrite {
    let now = Utc::now() - chrono::Duration::seconds(1);
    let jti = format!("{subject}-seeded-{number}");
    ExchangeWrite {
        idp_provider_id: provider,
        proxy_id: proxy,
        jti: jti.clone(),
        subject: subject.into(),
        client_id: "0oa-idp-client".into(),
        client_id_at_resource_as: "gateway-client".into(),
        scopes: vec!["mcp:tools".into()],
        issued_at: now,
        expires_at: now + chrono::Duration::minutes(5),
        seen_at: now,
        allow_reuse: false,
        access_token: NewAccessToken {
            jti: format!("at-{jti}"),
            audience: "mcp-tools".into(),
            issued_at: now,
            expires_at: now + chrono::Duration::minutes(5),
        },
        success_audit: Vec::new(),
    }
}

/// Waits up to 30 seconds for every pending subject revocation to be marked, then returns
/// the proxy's revoked count.
async fn revoked_after_marking(server: &TestServer, proxy: i64) -> i64 {
    for _ in 0..300 {
        let pending = server
            .core
            .store()
            .pending_subject_revocations()
            .await
            .expect("pending revocations are listed");
        if pending.is_empty() {
            let stats = server.core.stats(Some(proxy)).await.expect("statistics");
            return stats.id_jag_tokens.revoked;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    panic!("the revocation was still pending after 30 seconds");
}

/// A revocation by subject returns its count at once and takes effect wherever the subject's
/// tokens are read, while the records are marked in chunks afterwards. The next instance to
/// start finishes a revocation that a stopped instance left pending.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[expect(clippy::too_many_lines, reason = "one story, read top to bottom")]
async fn revocation_by_subject_marks_records_behind_the_answer() {
    let idp = TestIdp::start().await;
    let dir = tempfile::tempdir().unwrap().keep();
    let server = TestServer::start_in(&dir, |_| {}).await;
    let provider = server.add_provider(idp.issuer(), json!({})).await;
    let proxy = server.add_proxy("mcp-tools", json!({})).await;
    let mapping = server
        .add_mapping(
            proxy,
            provider,
            "0oa-idp-client",
            "gateway-client",
            &["mcp:tools"],
        )
        .await;
    let secret = mapping["client_secret"].as_str().unwrap().to_owned();

    let assertion = idp.mint(&idp.claims(&server.issuer(proxy), "0oa-idp-client", "bob"));
    let response = server
        .redeem(proxy, "gateway-client", &secret, &assertion, &[])
        .await;
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    let access_token = body["access_token"].as_str().unwrap().to_owned();
    // Three chunks' worth of records, and one record of another subject.
    for number in 1..1_500 {
        server
            .core
            .store()
            .record_exchange(seeded_exchange(provider, proxy, "bob", number))
            .await
            .unwrap();
    }
    server
        .core
        .store()
        .record_exchange(seeded_exchange(provider, proxy, "carol", 0))
        .await
        .unwrap();

    let revoke = server
        .admin(
            Method::POST,
            "/api/v1/xaa/revoke-tokens-by-subject",
            Some(json!({"idp_provider_id": provider, "subject": "bob", "reason": "phished"})),
        )
        .await;
    assert_eq!(revoke.status(), 200);
    let revoked: Value = revoke.json().await.unwrap();
    assert_eq!(revoked["revoked_count"], 1_500);

    // Whether or not the marking has reached them, bob's tokens read as revoked.
    let introspection: Value = server
        .http
        .post(format!("{}/oauth2/introspect", server.issuer(proxy)))
        .basic_auth("gateway-client", Some(&secret))
        .form(&[("token", access_token.as_str())])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(introspection, json!({"active": false}));
    let active: Vec<Value> = server
        .admin(
            Method::GET,
            &format!("/api/v1/xaa/tokens?subject=bob&status=active&proxy_id={proxy}"),
            None,
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(active, Vec::<Value>::new());
    let lineage: Value = server
        .admin(Method::GET, "/api/v1/xaa/tokens/bob-seeded-7", None)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(lineage[0]["id_jag"]["revocation"]["reason"], "phished");
    assert_eq!(
        lineage[0]["access_tokens"][0]["revocation"]["reason"],
        "phished"
    );

    assert_eq!(revoked_after_marking(&server, proxy).await, 1_500);
    let carol = server
        .core
        .store()
        .find_id_jags_by_jti("carol-seeded-0")
        .await
        .unwrap();
    assert_eq!(carol[0].revocation, None);
    let marked = server
        .core
        .store()
        .get_access_token("at-bob-seeded-1499")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        marked.revocation.unwrap().reason.as_deref(),
        Some("phished")
    );
    server.stop().await;

    // A revocation recorded while no instance runs is marked by the next one to start.
    let store = open_store(&format!("sqlite://{}", dir.join("xaa.db").display()))
        .await
        .unwrap();
    for number in 0..700 {
        store
            .record_exchange(seeded_exchange(provider, proxy, "dave", number))
            .await
            .unwrap();
    }
    let revocation = SubjectRevocation {
        idp_provider_id: provider,
        subject: "dave".into(),
        revoked_at: Utc::now(),
        reason: Some("left the company".into()),
        revoked_by: None,
    };
    let audit = NewAuditEvent {
        event_type: AuditEventType::XaaTokensRevokedBySubject,
        actor: "test".into(),
        proxy_id: None,
        idp_provider_id: Some(provider),
        reason_code: None,
        fields: serde_json::Map::new(),
    };
    assert_eq!(
        store.revoke_subject(&revocation, &audit).await.unwrap(),
        700
    );
    store.close().await;

    let server = TestServer::start_in(&dir, |_| {}).await;
    assert_eq!(revoked_after_marking(&server, proxy).await, 2_200);
    server.stop().await;
}
