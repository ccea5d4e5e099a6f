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

/// Client id at the IdP of the mapping every test creates.
const IDP_CLIENT: &str = "idp-client";
/// Client id at the resource AS of that mapping.
const AS_CLIENT: &str = "gateway-client";

/// Runs `attempt` until it returns `Some`, at most [`POLL_ATTEMPTS`] times, and panics naming
/// the awaited `event` when it never does.
async fn poll_until<T, F, Fut>(event: &str, mut attempt: F) -> T
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
    panic!("{event} did not happen within {POLL_ATTEMPTS} attempts {POLL_INTERVAL:?} apart");
}

/// Sends an admin request, asserts a 2xx status and returns the JSON body.
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

async fn admin_post(server: &TestServer, path: &str, body: Value) -> Value {
    admin_json(server, Method::POST, path, Some(body)).await
}

/// Returns the newest rejected exchange in the audit log.
async fn last_failure(server: &TestServer) -> Value {
    let path = "/api/v1/xaa/audit?event_type=xaa_token_validation_failed&limit=1";
    admin_get(server, path).await[0].clone()
}

/// Sends a token request and returns the status and the JSON body.
async fn redeem(
    server: &TestServer,
    proxy: i64,
    secret: &str,
    assertion: &str,
) -> (StatusCode, Value) {
    let response = server
        .redeem(proxy, AS_CLIENT, secret, assertion, &[])
        .await;
    let status = response.status();
    let body = response.json().await.expect("token response JSON");
    (status, body)
}

/// Introspects `token` at `server` as the client that owns it (Basic credentials).
async fn introspect(server: &TestServer, proxy: i64, secret: &str, token: &str) -> Value {
    let url = format!("{}/proxies/{proxy}/oauth2/introspect", server.public_url);
    let response = server
        .http
        .post(url)
        .basic_auth(AS_CLIENT, Some(secret))
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

/// A provider for a test IdP (keys fetched), a proxy and the default client mapped on it.
struct Configured {
    provider: i64,
    proxy: i64,
    /// The proxy's issuer identifier, the `aud` of every ID-JAG for it.
    issuer: String,
    secret: String,
    mapping: i64,
}

impl Configured {
    async fn create(idp: &TestIdp, server: &TestServer) -> Self {
        let provider = server.add_provider(idp.issuer(), json!({})).await;
        let path = format!("/api/v1/providers/{provider}/refresh-keys");
        let refreshed = admin_post(server, &path, json!({})).await;
        assert_eq!(refreshed["key_count"], 2, "{refreshed}");
        let proxy = server.add_proxy("proxy-a", json!({})).await;
        let scopes = ["openid", "mcp:tools"];
        let created = server
            .add_mapping(proxy, provider, IDP_CLIENT, AS_CLIENT, &scopes)
            .await;
        Self {
            provider,
            proxy,
            issuer: server.issuer(proxy),
            secret: created["client_secret"]
                .as_str()
                .expect("secret")
                .to_owned(),
            mapping: created["id"].as_i64().expect("mapping id"),
        }
    }

    /// Mints an ID-JAG for `subject` at this proxy.
    fn mint(&self, idp: &TestIdp, subject: &str) -> (String, String) {
        let claims = idp.claims(&self.issuer, IDP_CLIENT, subject);
        let jti = claims["jti"].as_str().expect("jti").to_owned();
        (jti, idp.mint(&claims))
    }

    /// Redeems a fresh ID-JAG for `subject` at `server` and returns its `jti` and the access
    /// token.
    async fn redeem_new(
        &self,
        idp: &TestIdp,
        server: &TestServer,
        subject: &str,
    ) -> (String, String) {
        let (jti, assertion) = self.mint(idp, subject);
        let (status, body) = redeem(server, self.proxy, &self.secret, &assertion).await;
        assert_eq!(status, 200, "{body}");
        let token = body["access_token"].as_str().expect("token").to_owned();
        (jti, token)
    }

    /// Like [`Configured::redeem_new`], but returns the access token only when the exchange
    /// succeeds.
    async fn try_redeem(
        &self,
        idp: &TestIdp,
        server: &TestServer,
        subject: &str,
    ) -> Option<String> {
        let (_, assertion) = self.mint(idp, subject);
        let (status, body) = redeem(server, self.proxy, &self.secret, &assertion).await;
        (status == StatusCode::OK).then(|| body["access_token"].as_str().expect("token").to_owned())
    }

    async fn introspect(&self, server: &TestServer, token: &str) -> Value {
        introspect(server, self.proxy, &self.secret, token).await
    }
}

// ---- Concurrent presentations -------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn single_use_jti_wins_once() {
    let idp = TestIdp::start().await;
    let server = TestServer::start().await;
    let configured = Configured::create(&idp, &server).await;
    let (jti, assertion) = configured.mint(&idp, "alice");
    let form = serde_urlencoded::to_string([
        ("grant_type", "urn:ietf:params:oauth:grant-type:jwt-bearer"),
        ("assertion", assertion.as_str()),
    ])
    .expect("form");

    let client = reqwest::Client::new();
    let tasks: Vec<_> = (0..PRESENTATIONS)
        .map(|_| {
            let request = client
                .post(server.token_endpoint(configured.proxy))
                .basic_auth(AS_CLIENT, Some(&configured.secret))
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
    let path = "/api/v1/xaa/audit?event_type=xaa_token_validation_failed&limit=1000";
    let failures = admin_get(&server, path).await;
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

/// Collects what an operator sees through the admin API, to compare before and after a restart.
async fn listed_state(server: &TestServer, proxy: i64) -> Value {
    let audit = |event_type: &str| format!("/api/v1/xaa/audit?event_type={event_type}");
    json!({
        "providers": admin_get(server, "/api/v1/providers").await,
        "proxies": admin_get(server, "/api/v1/proxies").await,
        "mappings":
            admin_get(server, &format!("/api/v1/proxies/{proxy}/xaa/client-mappings")).await,
        "tokens": admin_get(server, "/api/v1/xaa/tokens?limit=1000").await,
        "stats": admin_get(server, "/api/v1/xaa/stats").await,
        "subject_events": admin_get(server, &audit("xaa_tokens_revoked_by_subject")).await,
        "revoke_events": admin_get(server, &audit("xaa_token_revoked")).await,
        "mapping_events": admin_get(server, &audit("xaa_client_mapping_created")).await,
    })
}

/// Tokens the restart test creates before the restart.
struct BeforeRestart {
    alice_token: String,
    bob_jti: String,
    bob_token: String,
    carol_token: String,
    /// An ID-JAG for carol minted before her revocation and never presented.
    carol_unused: String,
}

/// Redeems tokens for alice, bob and carol, then revokes bob's JTI and carol as a subject.
async fn redeem_and_revoke(
    idp: &TestIdp,
    server: &TestServer,
    configured: &Configured,
) -> BeforeRestart {
    let (_, alice_token) = configured.redeem_new(idp, server, "alice").await;
    let (bob_jti, bob_token) = configured.redeem_new(idp, server, "bob").await;
    let (_, carol_token) = configured.redeem_new(idp, server, "carol").await;
    let (_, carol_unused) = configured.mint(idp, "carol");

    let body = json!({"jti": bob_jti, "reason": "incident", "revoked_by": "secops"});
    let revoked = admin_post(server, "/api/v1/xaa/revoke-token", body).await;
    assert_eq!(revoked["already_revoked"], false, "{revoked}");
    let body = json!({"idp_provider_id": configured.provider, "subject": "carol"});
    let by_subject = admin_post(server, "/api/v1/xaa/revoke-tokens-by-subject", body).await;
    assert_eq!(by_subject["revoked_count"], 1, "{by_subject}");
    BeforeRestart {
        alice_token,
        bob_jti,
        bob_token,
        carol_token,
        carol_unused,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restart_keeps_everything_acknowledged() {
    let idp = TestIdp::start().await;
    let dir = temp_dir();
    let server = TestServer::start_in(&dir, |_| {}).await;
    // The restarted server keeps the public URL, so proxy issuers and token `iss` stay the same.
    let public_url = server.public_url.clone();
    let configured = Configured::create(&idp, &server).await;
    server
        .add_mapping(
            configured.proxy,
            configured.provider,
            "idp-client-2",
            AS_CLIENT,
            &["openid"],
        )
        .await;
    let tokens = redeem_and_revoke(&idp, &server, &configured).await;
    let before = listed_state(&server, configured.proxy).await;

    // From here on the IdP returns 500, so keys can only come from the stored cache.
    idp.set_mode(Mode::Error500);
    let idp_requests = idp.jwks_fetches() + idp.discovery_fetches();
    server.stop().await;
    let server = TestServer::start_in(&dir, |config| {
        config.server.public_url.clone_from(&public_url);
    })
    .await;
    let after = listed_state(&server, configured.proxy).await;
    assert_eq!(after, before, "state after restart");

    // Revocations hold, and the untouched token is still active for its client.
    let alice = configured.introspect(&server, &tokens.alice_token).await;
    assert_eq!(alice["active"], true, "{alice}");
    assert_eq!(alice["sub"], "alice");
    let inactive = json!({"active": false});
    assert_eq!(
        configured.introspect(&server, &tokens.bob_token).await,
        inactive
    );
    assert_eq!(
        configured.introspect(&server, &tokens.carol_token).await,
        inactive
    );
    let body = json!({"jti": tokens.bob_jti});
    let again = admin_post(&server, "/api/v1/xaa/revoke-token", body).await;
    assert_eq!(again["already_revoked"], true, "{again}");

    let (status, body) = redeem(
        &server,
        configured.proxy,
        &configured.secret,
        &tokens.carol_unused,
    )
    .await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["error"], "invalid_grant");
    let failure = last_failure(&server).await;
    assert_eq!(failure["reason_code"], "subject_revoked", "{failure}");

    // A new ID-JAG signed with the cached key is redeemed without asking the IdP.
    configured.redeem_new(&idp, &server, "dave").await;
    assert_eq!(
        idp.jwks_fetches() + idp.discovery_fetches(),
        idp_requests,
        "the restarted server fetched keys although its stored set was fresh"
    );
    server.stop().await;
}

// ---- Two servers on one store -------------------------------------------------------------

/// Starts a second server on `first`'s directory. Both run from one configuration, as the
/// dashboard and `xaa serve` do, so they share the public URL and with it the proxy issuers.
async fn start_second(first: &TestServer) -> TestServer {
    TestServer::start_in(&first.dir, |config| {
        config.server.public_url.clone_from(&first.public_url);
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_servers_share_mappings() {
    let idp = TestIdp::start().await;
    let first = TestServer::start_in(&temp_dir(), |_| {}).await;
    let second = start_second(&first).await;
    let configured = Configured::create(&idp, &first).await;

    // The second server lists the mapping at once and soon redeems with it.
    let path = format!("/api/v1/proxies/{}/xaa/client-mappings", configured.proxy);
    let listed = admin_get(&second, &path).await;
    assert_eq!(listed[0]["id"], configured.mapping, "{listed}");
    let token = poll_until("an exchange at the second server", || {
        configured.try_redeem(&idp, &second, "alice")
    })
    .await;

    // A token issued by one server is active at the other.
    let seen = configured.introspect(&first, &token).await;
    assert_eq!(seen["active"], true, "{seen}");

    // Deleting the mapping on the first server stops exchanges at the second.
    let deleted = first
        .admin(
            Method::DELETE,
            &format!("{path}/{}", configured.mapping),
            None,
        )
        .await;
    assert_eq!(deleted.status(), 204);
    poll_until("exchanges stopping at the second server", || async {
        configured
            .try_redeem(&idp, &second, "bob")
            .await
            .is_none()
            .then_some(())
    })
    .await;
    second.stop().await;
    first.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_servers_share_revocations() {
    let idp = TestIdp::start().await;
    let first = TestServer::start_in(&temp_dir(), |_| {}).await;
    let second = start_second(&first).await;
    let configured = Configured::create(&idp, &first).await;
    let token = poll_until("an exchange at the second server", || {
        configured.try_redeem(&idp, &second, "alice")
    })
    .await;

    // Each poll attempt below presents another ID-JAG issued before the revocation, because
    // one that the second server accepts before it learns of the revocation spends its JTI.
    let older: Vec<String> = (0..POLL_ATTEMPTS)
        .map(|_| configured.mint(&idp, "alice").1)
        .collect();
    let body = json!({"idp_provider_id": configured.provider, "subject": "alice"});
    admin_post(&first, "/api/v1/xaa/revoke-tokens-by-subject", body).await;

    poll_until(
        "the revoked token turning inactive at the second server",
        || {
            let token = token.clone();
            let (configured, second) = (&configured, &second);
            async move {
                let seen = configured.introspect(second, &token).await;
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
            let (configured, second) = (&configured, &second);
            async move {
                let (status, _) =
                    redeem(second, configured.proxy, &configured.secret, &assertion).await;
                (status == StatusCode::BAD_REQUEST).then_some(())
            }
        },
    )
    .await;
    let failure = last_failure(&second).await;
    assert_eq!(failure["reason_code"], "subject_revoked", "{failure}");
    second.stop().await;
    first.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn second_server_reuses_new_client() {
    let idp = TestIdp::start().await;
    let first = TestServer::start_in(&temp_dir(), |_| {}).await;
    let second = start_second(&first).await;

    // The first server creates the client with its mapping. Right after, the second server
    // adds another IdP-side client id for the same client: the client exists in the store,
    // so this is a new mapping (201) and no new secret.
    let configured = Configured::create(&idp, &first).await;
    let body = json!({
        "idp_provider_id": configured.provider,
        "client_id_at_idp": "idp-client-2",
        "client_id_at_resource_as": AS_CLIENT,
        "allowed_scopes": ["openid"],
    });
    let path = format!("/api/v1/proxies/{}/xaa/client-mappings", configured.proxy);
    let response = second.admin(Method::POST, &path, Some(body)).await;
    let status = response.status();
    let reply: Value = response.json().await.expect("JSON");
    assert_eq!(status, 201, "{reply}");
    assert!(reply.get("client_secret").is_none(), "{reply}");

    // The one secret works at both servers.
    for server in [&first, &second] {
        poll_until("an exchange with the first secret", || {
            configured.try_redeem(&idp, server, "alice")
        })
        .await;
    }
    second.stop().await;
    first.stop().await;
}
