//! The whole flow over real HTTP: an independent IdP signs an ID-JAG, xaa redeems it,
//! introspection reports it, revocation by subject ends it, and the audit log records each step.

mod common;

use common::idp::TestIdp;
use common::server::{ADMIN_TOKEN, TestServer};
use reqwest::Method;
use serde_json::{Value, json};

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
