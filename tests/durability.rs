//! What the SQLite store keeps under pressure and across processes: one winner among concurrent
//! presentations of a single-use ID-JAG, everything acknowledged surviving a restart, and two
//! servers on one database directory seeing each other's changes.

mod common;

use std::future::Future;
use std::path::PathBuf;
use std::time::Duration;

use common::idp::{Mode, TestIdp};
use common::server::TestServer;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

/// Presentations of the same ID-JAG sent at once.
const PRESENTATIONS: usize = 50;

/// Pause between two attempts of [`poll_until`].
const POLL_INTERVAL: Duration = Duration::from_millis(100);

/// Attempts of [`poll_until`]: 50 × 100 ms, so about 5 s plus the time of the attempts.
const POLL_ATTEMPTS: u32 = 50;

const SCOPES: [&str; 2] = ["openid", "mcp:tools"];

/// Runs `attempt` until it returns `Some`, at most [`POLL_ATTEMPTS`] times, and panics naming
/// `what` when it never does.
async fn poll_until<T, F, Fut>(what: &str, mut attempt: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    for _ in 0..POLL_ATTEMPTS {
        if let Some(value) = attempt().await {
            return value;
        }
        tokio::time::sleep(POLL_INTERVAL).await;
    }
    panic!("{what} did not happen within {POLL_ATTEMPTS} attempts {POLL_INTERVAL:?} apart");
}

async fn admin_json(server: &TestServer, method: Method, path: &str, body: Option<Value>) -> Value {
    let response = server.admin(method, path, body).await;
    let status = response.status();
    let text = response.text().await.expect("admin response body");
    assert!(status.is_success(), "{path}: {status} {text}");
    serde_json::from_str(&text).unwrap_or_else(|error| panic!("{path}: {error}: {text}"))
}

async fn admin_get(server: &TestServer, path: &str) -> Value {
    admin_json(server, Method::GET, path, None).await
}

async fn refresh_keys(server: &TestServer, provider: i64) {
    let path = format!("/api/v1/providers/{provider}/refresh-keys");
    let refreshed = admin_json(server, Method::POST, &path, Some(json!({}))).await;
    assert_eq!(refreshed["key_count"], 2, "{refreshed}");
}

/// Sends a token request and returns the status and the JSON body.
async fn redeem(
    server: &TestServer,
    proxy: i64,
    client: &str,
    secret: &str,
    assertion: &str,
) -> (StatusCode, Value) {
    let response = server.redeem(proxy, client, secret, assertion, &[]).await;
    let status = response.status();
    let body = response.json().await.expect("token response JSON");
    (status, body)
}

/// Introspects `token` at `server` as the client that owns it (Basic credentials).
async fn introspect(
    server: &TestServer,
    proxy: i64,
    client: &str,
    secret: &str,
    token: &str,
) -> Value {
    let url = format!("{}/proxies/{proxy}/oauth2/introspect", server.public_url);
    let response = server
        .http
        .post(url)
        .basic_auth(client, Some(secret))
        .form(&[("token", token)])
        .send()
        .await
        .expect("introspection request");
    assert_eq!(response.status(), 200);
    response.json().await.expect("introspection JSON")
}

fn temp_dir() -> PathBuf {
    tempfile::tempdir().expect("temp dir").keep()
}

// ---- Concurrent presentations -------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn single_use_jti_wins_once() {
    let idp = TestIdp::start().await;
    let server = TestServer::start().await;
    let provider = server.add_provider(idp.issuer(), json!({})).await;
    refresh_keys(&server, provider).await;
    let proxy = server.add_proxy("proxy-a", json!({})).await;
    let mapping = server
        .add_mapping(proxy, provider, "idp-client", "gateway-client", &SCOPES)
        .await;
    let secret = mapping["client_secret"]
        .as_str()
        .expect("secret")
        .to_owned();

    let claims = idp.claims(&server.issuer(proxy), "idp-client", "alice");
    let jti = claims["jti"].as_str().expect("jti").to_owned();
    let assertion = idp.mint(&claims);
    let form = serde_urlencoded::to_string([
        ("grant_type", "urn:ietf:params:oauth:grant-type:jwt-bearer"),
        ("assertion", assertion.as_str()),
    ])
    .expect("form");

    let client = reqwest::Client::new();
    let tasks: Vec<_> = (0..PRESENTATIONS)
        .map(|_| {
            let request = client
                .post(server.token_endpoint(proxy))
                .basic_auth("gateway-client", Some(&secret))
                .header("content-type", "application/x-www-form-urlencoded")
                .body(form.clone());
            tokio::spawn(async move {
                let response = request.send().await.expect("token request");
                let status = response.status();
                let body: Value = response.json().await.expect("token response JSON");
                (status, body)
            })
        })
        .collect();
    let mut accepted = 0;
    let mut rejected = 0;
    for task in tasks {
        let (status, body) = task.await.expect("request task");
        if status == StatusCode::OK {
            assert!(body["access_token"].is_string(), "{body}");
            accepted += 1;
        } else {
            assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
            assert_eq!(body["error"], "invalid_grant", "{body}");
            rejected += 1;
        }
    }
    assert_eq!(accepted, 1, "accepted presentations");
    assert_eq!(rejected, PRESENTATIONS - 1, "rejected presentations");

    // One record for the JTI, which counted every presentation, and one access token.
    let tokens = admin_get(&server, "/api/v1/xaa/tokens").await;
    let records: Vec<&Value> = tokens
        .as_array()
        .expect("token list")
        .iter()
        .filter(|record| record["jti"] == jti.as_str())
        .collect();
    assert_eq!(records.len(), 1, "{tokens}");
    assert_eq!(records[0]["presentation_count"], PRESENTATIONS, "{tokens}");
    let lineage = admin_get(&server, &format!("/api/v1/xaa/tokens/{jti}")).await;
    let access_tokens = lineage[0]["access_tokens"].as_array().expect("lineage");
    assert_eq!(access_tokens.len(), 1, "{lineage}");

    let stats = admin_get(&server, "/api/v1/xaa/stats").await;
    assert_eq!(stats["id_jag_tokens"]["total"], 1, "{stats}");
    assert_eq!(stats["id_jag_tokens"]["active"], 1, "{stats}");

    // The audit log has one exchange and one replay failure for each other presentation.
    let exchanges = admin_get(&server, "/api/v1/xaa/audit?event_type=xaa_token_exchange").await;
    assert_eq!(exchanges.as_array().map(Vec::len), Some(1), "{exchanges}");
    let failures = admin_get(
        &server,
        "/api/v1/xaa/audit?event_type=xaa_token_validation_failed&limit=1000",
    )
    .await;
    let failures = failures.as_array().expect("audit list");
    assert_eq!(failures.len(), PRESENTATIONS - 1);
    assert!(
        failures
            .iter()
            .all(|event| event["reason_code"] == "replayed"),
        "every failure is a replay"
    );
    server.stop().await;
}

// ---- Restart ------------------------------------------------------------------------------

/// What an operator sees through the admin API, compared before and after a restart.
async fn listed_state(server: &TestServer, proxy: i64) -> Value {
    json!({
        "providers": admin_get(server, "/api/v1/providers").await,
        "proxies": admin_get(server, "/api/v1/proxies").await,
        "mappings": admin_get(server, &format!("/api/v1/proxies/{proxy}/xaa/client-mappings")).await,
        "tokens": admin_get(server, "/api/v1/xaa/tokens?limit=1000").await,
        "stats": admin_get(server, "/api/v1/xaa/stats").await,
        "subject_events":
            admin_get(server, "/api/v1/xaa/audit?event_type=xaa_tokens_revoked_by_subject").await,
        "revoke_events": admin_get(server, "/api/v1/xaa/audit?event_type=xaa_token_revoked").await,
        "mapping_events":
            admin_get(server, "/api/v1/xaa/audit?event_type=xaa_client_mapping_created").await,
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restart_keeps_everything_acknowledged() {
    let idp = TestIdp::start().await;
    let dir = temp_dir();
    let server = TestServer::start_in(&dir, |_| {}).await;
    // The restarted server keeps the public URL, so proxy issuers and token `iss` stay the same.
    let public_url = server.public_url.clone();
    let provider = server.add_provider(idp.issuer(), json!({})).await;
    refresh_keys(&server, provider).await;
    let proxy = server.add_proxy("proxy-a", json!({})).await;
    let issuer = server.issuer(proxy);
    let mapping = server
        .add_mapping(proxy, provider, "idp-client", "gateway-client", &SCOPES)
        .await;
    let secret = mapping["client_secret"]
        .as_str()
        .expect("secret")
        .to_owned();
    server
        .add_mapping(
            proxy,
            provider,
            "idp-client-2",
            "gateway-client",
            &["openid"],
        )
        .await;

    let mut tokens = Vec::new();
    for subject in ["alice", "bob", "carol"] {
        let claims = idp.claims(&issuer, "idp-client", subject);
        let (status, body) = redeem(
            &server,
            proxy,
            "gateway-client",
            &secret,
            &idp.mint(&claims),
        )
        .await;
        assert_eq!(status, 200, "{body}");
        let token = body["access_token"].as_str().expect("token").to_owned();
        tokens.push((claims["jti"].as_str().expect("jti").to_owned(), token));
    }
    let [(_, alice_token), (bob_jti, bob_token), (_, carol_token)] =
        <[(String, String); 3]>::try_from(tokens).expect("three tokens");

    // Minted before carol's revocation and never presented.
    let carol_unused = idp.mint(&idp.claims(&issuer, "idp-client", "carol"));
    let revoked = admin_json(
        &server,
        Method::POST,
        "/api/v1/xaa/revoke-token",
        Some(json!({"jti": bob_jti, "reason": "incident", "revoked_by": "secops"})),
    )
    .await;
    assert_eq!(revoked["already_revoked"], false);
    let by_subject = admin_json(
        &server,
        Method::POST,
        "/api/v1/xaa/revoke-tokens-by-subject",
        Some(json!({"idp_provider_id": provider, "subject": "carol", "revoked_by": "secops"})),
    )
    .await;
    assert_eq!(by_subject["revoked_count"], 1);

    let before = listed_state(&server, proxy).await;

    // From here on the IdP answers 500, so keys can only come from the stored cache.
    idp.set_mode(Mode::Error500);
    let idp_requests = idp.jwks_fetches() + idp.discovery_fetches();
    server.stop().await;
    let server = TestServer::start_in(&dir, |config| {
        config.server.public_url.clone_from(&public_url);
    })
    .await;

    assert_eq!(
        listed_state(&server, proxy).await,
        before,
        "state after restart"
    );

    // Revocations hold; the untouched token is still active for its client.
    let check = |token: String| {
        let (server, secret) = (&server, &secret);
        async move { introspect(server, proxy, "gateway-client", secret, &token).await }
    };
    let alice = check(alice_token).await;
    assert_eq!(alice["active"], true, "{alice}");
    assert_eq!(alice["sub"], "alice");
    assert_eq!(check(bob_token).await, json!({"active": false}));
    assert_eq!(check(carol_token).await, json!({"active": false}));
    let again = admin_json(
        &server,
        Method::POST,
        "/api/v1/xaa/revoke-token",
        Some(json!({"jti": bob_jti})),
    )
    .await;
    assert_eq!(again["already_revoked"], true, "{again}");

    let (status, body) = redeem(&server, proxy, "gateway-client", &secret, &carol_unused).await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["error"], "invalid_grant");
    let failures = admin_get(
        &server,
        "/api/v1/xaa/audit?event_type=xaa_token_validation_failed&limit=1",
    )
    .await;
    assert_eq!(failures[0]["reason_code"], "subject_revoked", "{failures}");

    // A new ID-JAG signed with the cached key is redeemed without asking the IdP.
    let fresh = idp.mint(&idp.claims(&issuer, "idp-client", "dave"));
    let (status, body) = redeem(&server, proxy, "gateway-client", &secret, &fresh).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        idp.jwks_fetches() + idp.discovery_fetches(),
        idp_requests,
        "the restarted server fetched keys although its stored set was fresh"
    );
    server.stop().await;
}

// ---- Two servers on one store -------------------------------------------------------------

/// Mints an ID-JAG for `subject` at `issuer` and redeems it at `server`; returns the access
/// token when the exchange succeeds.
async fn try_redeem(
    idp: &TestIdp,
    server: &TestServer,
    issuer: &str,
    proxy: i64,
    secret: &str,
    subject: &str,
) -> Option<String> {
    let assertion = idp.mint(&idp.claims(issuer, "idp-client", subject));
    let (status, body) = redeem(server, proxy, "gateway-client", secret, &assertion).await;
    (status == StatusCode::OK).then(|| body["access_token"].as_str().expect("token").to_owned())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_servers_share_changes() {
    let idp = TestIdp::start().await;
    let dir = temp_dir();
    let first = TestServer::start_in(&dir, |_| {}).await;
    // Both processes run from one configuration, so they share the public URL.
    let second = TestServer::start_in(&dir, |config| {
        config.server.public_url.clone_from(&first.public_url);
    })
    .await;

    let provider = first.add_provider(idp.issuer(), json!({})).await;
    refresh_keys(&first, provider).await;
    let proxy = first.add_proxy("proxy-a", json!({})).await;
    let issuer = first.issuer(proxy);
    let mapping = first
        .add_mapping(proxy, provider, "idp-client", "gateway-client", &SCOPES)
        .await;
    let secret = mapping["client_secret"]
        .as_str()
        .expect("secret")
        .to_owned();
    let mapping_id = mapping["id"].as_i64().expect("mapping id");

    // The second server reads the mapping from the store and soon redeems with it.
    let listed = admin_get(
        &second,
        &format!("/api/v1/proxies/{proxy}/xaa/client-mappings"),
    )
    .await;
    assert_eq!(listed[0]["id"], mapping_id, "{listed}");
    let token = poll_until("an exchange at the second server", || {
        try_redeem(&idp, &second, &issuer, proxy, &secret, "alice")
    })
    .await;

    // A token issued by one server is active at the other.
    let seen = introspect(&first, proxy, "gateway-client", &secret, &token).await;
    assert_eq!(seen["active"], true, "{seen}");

    // A subject revocation on the first server reaches the second. Each poll attempt
    // presents another ID-JAG issued before the revocation, because an attempt that the
    // second server accepts before it learns of the revocation spends that JTI.
    let older: Vec<String> = (0..POLL_ATTEMPTS)
        .map(|_| idp.mint(&idp.claims(&issuer, "idp-client", "alice")))
        .collect();
    admin_json(
        &first,
        Method::POST,
        "/api/v1/xaa/revoke-tokens-by-subject",
        Some(json!({"idp_provider_id": provider, "subject": "alice"})),
    )
    .await;
    poll_until(
        "the revoked token turning inactive at the second server",
        || {
            let token = token.clone();
            let (second, secret) = (&second, &secret);
            async move {
                let seen = introspect(second, proxy, "gateway-client", secret, &token).await;
                (seen == json!({"active": false})).then_some(())
            }
        },
    )
    .await;
    let mut older = older.into_iter();
    poll_until(
        "an older ID-JAG being rejected at the second server",
        || {
            let assertion = older.next().expect("one ID-JAG per attempt");
            let (second, secret) = (&second, &secret);
            async move {
                let (status, _) = redeem(second, proxy, "gateway-client", secret, &assertion).await;
                (status == StatusCode::BAD_REQUEST).then_some(())
            }
        },
    )
    .await;
    let failures = admin_get(
        &second,
        "/api/v1/xaa/audit?event_type=xaa_token_validation_failed&limit=1",
    )
    .await;
    assert_eq!(failures[0]["reason_code"], "subject_revoked", "{failures}");

    // Deleting the mapping on the first server stops exchanges at the second.
    let deleted = first
        .admin(
            Method::DELETE,
            &format!("/api/v1/proxies/{proxy}/xaa/client-mappings/{mapping_id}"),
            None,
        )
        .await;
    assert_eq!(deleted.status(), 204);
    poll_until("exchanges stopping at the second server", || async {
        try_redeem(&idp, &second, &issuer, proxy, &secret, "bob")
            .await
            .is_none()
            .then_some(())
    })
    .await;

    second.stop().await;
    first.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn second_server_reuses_new_client() {
    let idp = TestIdp::start().await;
    let dir = temp_dir();
    let first = TestServer::start_in(&dir, |_| {}).await;
    let second = TestServer::start_in(&dir, |config| {
        config.server.public_url.clone_from(&first.public_url);
    })
    .await;
    let provider = first.add_provider(idp.issuer(), json!({})).await;
    refresh_keys(&first, provider).await;
    let proxy = first.add_proxy("proxy-a", json!({})).await;

    // The first server creates the client with its mapping. Right after, the second server
    // adds another IdP-side client id for the same client: the client exists in the store,
    // so this is a new mapping (201) and no new secret.
    let created = first
        .add_mapping(proxy, provider, "idp-client", "gateway-client", &SCOPES)
        .await;
    let secret = created["client_secret"]
        .as_str()
        .expect("secret")
        .to_owned();
    let body = json!({
        "idp_provider_id": provider,
        "client_id_at_idp": "idp-client-2",
        "client_id_at_resource_as": "gateway-client",
        "allowed_scopes": SCOPES,
    });
    let path = format!("/api/v1/proxies/{proxy}/xaa/client-mappings");
    let response = second.admin(Method::POST, &path, Some(body)).await;
    let status = response.status();
    let reply: Value = response.json().await.expect("JSON");
    assert_eq!(status, 201, "{reply}");
    assert!(reply.get("client_secret").is_none(), "{reply}");

    // The one secret works at both servers.
    let issuer = first.issuer(proxy);
    for server in [&first, &second] {
        poll_until("an exchange with the first secret", || {
            try_redeem(&idp, server, &issuer, proxy, &secret, "alice")
        })
        .await;
    }
    second.stop().await;
    first.stop().await;
}
