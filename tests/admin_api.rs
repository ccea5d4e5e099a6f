//! The REST admin API over real HTTP: every endpoint, the JSON it returns, each error status it
//! documents, and that a rejected request leaves everything already stored unchanged.

mod common;

use std::collections::BTreeSet;

use common::idp::{Mode, TestIdp, unix_now};
use common::server::{ADMIN_TOKEN, TestServer};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

/// Client id at the IdP of the mapping that [`Setup::map_default_client`] creates.
const IDP_CLIENT: &str = "idp-client";
/// Client id at the resource AS of that mapping.
const AS_CLIENT: &str = "gateway-client";
/// A well-formed JTI that no test records.
const UNKNOWN_JTI: &str = "550e8400-e29b-41d4-a716-446655440000";

// ---- Requests and replies -----------------------------------------------------------------

/// Status and JSON body of one response. The body is `Null` when the response has none.
struct Reply {
    status: StatusCode,
    body: Value,
}

impl Reply {
    async fn read(response: reqwest::Response) -> Self {
        let status = response.status();
        let bytes = response.bytes().await.expect("response body");
        let body = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes).unwrap_or_else(|error| {
                panic!(
                    "body of a {status} response is not JSON ({error}): {}",
                    String::from_utf8_lossy(&bytes)
                )
            })
        };
        Self { status, body }
    }
}

async fn call(server: &TestServer, method: Method, path: &str, body: Option<Value>) -> Reply {
    Reply::read(server.admin(method, path, body).await).await
}

async fn get(server: &TestServer, path: &str) -> Reply {
    call(server, Method::GET, path, None).await
}

async fn post(server: &TestServer, path: &str, body: Value) -> Reply {
    call(server, Method::POST, path, Some(body)).await
}

async fn patch(server: &TestServer, path: &str, body: Value) -> Reply {
    call(server, Method::PATCH, path, Some(body)).await
}

async fn delete(server: &TestServer, path: &str) -> Reply {
    call(server, Method::DELETE, path, None).await
}

/// Sends an authenticated request whose body is `body` verbatim under `content_type`.
async fn send_raw(
    server: &TestServer,
    method: Method,
    path: &str,
    content_type: Option<&str>,
    body: &'static str,
) -> Reply {
    let mut request = server
        .http
        .request(method, format!("{}{path}", server.admin_url))
        .bearer_auth(ADMIN_TOKEN)
        .body(body);
    if let Some(content_type) = content_type {
        request = request.header("content-type", content_type);
    }
    Reply::read(request.send().await.expect("admin request")).await
}

/// Asserts an admin error: the status, and exactly `{"error": code, "message": "..."}` with a
/// non-empty message.
fn assert_error(reply: &Reply, status: StatusCode, code: &str, case: &str) {
    assert_eq!(reply.status, status, "{case}: {}", reply.body);
    let members: BTreeSet<&str> = reply
        .body
        .as_object()
        .unwrap_or_else(|| panic!("{case}: error body is not an object: {}", reply.body))
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(
        members,
        BTreeSet::from(["error", "message"]),
        "{case}: {}",
        reply.body
    );
    assert_eq!(reply.body["error"], code, "{case}: {}", reply.body);
    let message = reply.body["message"].as_str().unwrap_or_default();
    assert!(!message.is_empty(), "{case}: empty message");
}

/// Asserts a 400 `invalid_request` error.
fn assert_bad_request(reply: &Reply, case: &str) {
    assert_error(reply, StatusCode::BAD_REQUEST, "invalid_request", case);
}

/// Asserts a 404 `not_found` error.
fn assert_not_found(reply: &Reply, case: &str) {
    assert_error(reply, StatusCode::NOT_FOUND, "not_found", case);
}

/// Returns the member names of a JSON object.
fn keys(value: &Value) -> BTreeSet<&str> {
    value
        .as_object()
        .unwrap_or_else(|| panic!("not a JSON object: {value}"))
        .keys()
        .map(String::as_str)
        .collect()
}

/// `base` with member `name` set to `value`, or removed when `value` is `Null`.
fn with_member(base: &Value, name: &str, value: Value) -> Value {
    let mut changed = base.clone();
    let members = changed.as_object_mut().expect("base is a JSON object");
    if value.is_null() {
        members.remove(name);
    } else {
        members.insert(name.to_owned(), value);
    }
    changed
}

fn mappings_path(proxy: i64) -> String {
    format!("/api/v1/proxies/{proxy}/xaa/client-mappings")
}

fn mapping_body(provider: i64, client_at_idp: &str, client_at_as: &str, scopes: &[&str]) -> Value {
    json!({
        "idp_provider_id": provider,
        "client_id_at_idp": client_at_idp,
        "client_id_at_resource_as": client_at_as,
        "allowed_scopes": scopes,
    })
}

// ---- Stored data --------------------------------------------------------------------------

/// Collects what the admin API lists: providers, proxies, the mappings of each proxy, ID-JAG records and
/// operator audit events. Key set events are left out because the background key refresh may
/// add one at any time.
async fn stored_state(server: &TestServer) -> Value {
    let proxies = get(server, "/api/v1/proxies").await.body;
    let mut mappings = Vec::new();
    for proxy in proxies.as_array().expect("proxy list") {
        let id = proxy["id"].as_i64().expect("proxy id");
        mappings.push(get(server, &mappings_path(id)).await.body);
    }
    let audit = get(server, "/api/v1/xaa/audit?limit=1000").await.body;
    let operator_events: Vec<&Value> = audit
        .as_array()
        .expect("audit list")
        .iter()
        .filter(|event| event["event_type"] != "xaa_jwks_cache_updated")
        .collect();
    json!({
        "providers": get(server, "/api/v1/providers").await.body,
        "proxies": proxies,
        "mappings": mappings,
        "tokens": get(server, "/api/v1/xaa/tokens?limit=1000").await.body,
        "audit": operator_events,
    })
}

/// Asserts that the stored data still equals `before`.
async fn assert_unchanged(server: &TestServer, before: &Value, case: &str) {
    assert_eq!(
        &stored_state(server).await,
        before,
        "{case} changed stored data"
    );
}

/// Sends each `(case, body)` to `path` with `method`, and asserts a 400 that stores nothing.
async fn assert_bodies_rejected(
    server: &TestServer,
    method: Method,
    path: &str,
    cases: Vec<(&str, Value)>,
) {
    let before = stored_state(server).await;
    for (case, body) in cases {
        let reply = call(server, method.clone(), path, Some(body)).await;
        assert_bad_request(&reply, case);
        assert_unchanged(server, &before, case).await;
    }
}

// ---- Fixture ------------------------------------------------------------------------------

/// A server with one test IdP registered as a provider (keys fetched) and one proxy.
struct Setup {
    idp: TestIdp,
    server: TestServer,
    provider: i64,
    proxy: i64,
}

impl Setup {
    async fn start() -> Self {
        Self::start_with(json!({})).await
    }

    /// Starts with `provider_extra` merged into the provider's creation body.
    async fn start_with(provider_extra: Value) -> Self {
        let idp = TestIdp::start().await;
        let server = TestServer::start().await;
        let provider = server.add_provider(idp.issuer(), provider_extra).await;
        refresh_keys(&server, provider).await;
        let proxy = server.add_proxy("proxy-a", json!({})).await;
        Self {
            idp,
            server,
            provider,
            proxy,
        }
    }

    /// Creates a mapping on `proxy` for this provider and returns its id and, when the client
    /// is new, its secret.
    async fn map_client(
        &self,
        proxy: i64,
        client_at_idp: &str,
        client_at_as: &str,
    ) -> (i64, Option<String>) {
        let created = self
            .server
            .add_mapping(
                proxy,
                self.provider,
                client_at_idp,
                client_at_as,
                &["openid", "mcp:tools"],
            )
            .await;
        let id = created["id"].as_i64().expect("mapping id");
        let secret = created["client_secret"].as_str().map(str::to_owned);
        (id, secret)
    }

    /// Maps [`IDP_CLIENT`] to [`AS_CLIENT`] on the setup's proxy and returns the mapping id and
    /// the client secret.
    async fn map_default_client(&self) -> (i64, String) {
        let (id, secret) = self.map_client(self.proxy, IDP_CLIENT, AS_CLIENT).await;
        (id, secret.expect("a new client gets a secret"))
    }

    /// Redeems a fresh ID-JAG for `subject` as the default client at the setup's proxy and
    /// returns the ID-JAG's `jti` and the access token.
    async fn redeem_default(&self, secret: &str, subject: &str) -> (String, String) {
        self.redeem(self.proxy, IDP_CLIENT, AS_CLIENT, secret, subject)
            .await
    }

    /// Mints an ID-JAG for `subject` at `proxy`, redeems it, and returns the ID-JAG's `jti` and
    /// the access token.
    async fn redeem(
        &self,
        proxy: i64,
        client_at_idp: &str,
        client_at_as: &str,
        secret: &str,
        subject: &str,
    ) -> (String, String) {
        let claims = self
            .idp
            .claims(&self.server.issuer(proxy), client_at_idp, subject);
        self.redeem_claims(proxy, client_at_as, secret, &claims)
            .await
    }

    async fn redeem_claims(
        &self,
        proxy: i64,
        client_at_as: &str,
        secret: &str,
        claims: &Value,
    ) -> (String, String) {
        let assertion = self.idp.mint(claims);
        let response = self
            .server
            .redeem(proxy, client_at_as, secret, &assertion, &[])
            .await;
        let reply = Reply::read(response).await;
        assert_eq!(reply.status, 200, "exchange failed: {}", reply.body);
        let jti = claims["jti"].as_str().expect("jti claim").to_owned();
        let token = reply.body["access_token"]
            .as_str()
            .expect("access token")
            .to_owned();
        (jti, token)
    }

    /// Claims for the default client whose `exp` has passed but is inside the 60 s leeway, so
    /// the exchange succeeds and the record is expired at once.
    fn expired_claims(&self, proxy: i64, subject: &str) -> Value {
        let mut claims = self
            .idp
            .claims(&self.server.issuer(proxy), IDP_CLIENT, subject);
        claims["iat"] = json!(unix_now() - 30);
        claims["exp"] = json!(unix_now() - 10);
        claims
    }

    /// Introspects `token` at `proxy` as the gateway (admin bearer token), which may introspect every
    /// token of the proxy, whichever client holds it.
    async fn introspect(&self, proxy: i64, token: &str) -> Value {
        let url = format!("{}/oauth2/introspect", self.server.issuer(proxy));
        let response = self
            .server
            .http
            .post(url)
            .bearer_auth(ADMIN_TOKEN)
            .form(&[("token", token)])
            .send()
            .await
            .expect("introspection request");
        assert_eq!(response.status(), 200);
        response.json().await.expect("introspection JSON")
    }

    async fn is_active(&self, token: &str) -> bool {
        let introspected = self.introspect(self.proxy, token).await;
        introspected["active"]
            .as_bool()
            .unwrap_or_else(|| panic!("no 'active' member: {introspected}"))
    }

    async fn stats(&self, proxy: Option<i64>) -> Value {
        let path = match proxy {
            Some(id) => format!("/api/v1/proxies/{id}/xaa/stats"),
            None => "/api/v1/xaa/stats".to_owned(),
        };
        let reply = get(&self.server, &path).await;
        assert_eq!(reply.status, 200, "{path}: {}", reply.body);
        reply.body
    }

    async fn audit(&self, event_type: &str) -> Vec<Value> {
        let path = format!("/api/v1/xaa/audit?event_type={event_type}&limit=1000");
        let reply = get(&self.server, &path).await;
        assert_eq!(reply.status, 200, "{path}: {}", reply.body);
        reply.body.as_array().expect("audit list").clone()
    }
}

/// Fetches a provider's keys now and checks that both keys of the test IdP (RSA and P-256)
/// arrived.
async fn refresh_keys(server: &TestServer, provider: i64) {
    let path = format!("/api/v1/providers/{provider}/refresh-keys");
    let refreshed = post(server, &path, json!({})).await;
    assert_eq!(refreshed.status, 200, "{}", refreshed.body);
    assert_eq!(refreshed.body["idp_provider_id"], provider);
    assert_eq!(refreshed.body["key_count"], 2, "{}", refreshed.body);
}

// ---- Authentication -----------------------------------------------------------------------

/// Every admin route, with a numeric id or JTI where the path needs one.
const ADMIN_ROUTES: [(&str, &str); 25] = [
    ("GET", "/api/v1/providers"),
    ("POST", "/api/v1/providers"),
    ("GET", "/api/v1/providers/1"),
    ("PATCH", "/api/v1/providers/1"),
    ("DELETE", "/api/v1/providers/1"),
    ("POST", "/api/v1/providers/1/refresh-keys"),
    ("GET", "/api/v1/proxies"),
    ("POST", "/api/v1/proxies"),
    ("GET", "/api/v1/proxies/1"),
    ("PATCH", "/api/v1/proxies/1"),
    ("DELETE", "/api/v1/proxies/1"),
    ("GET", "/api/v1/proxies/1/xaa/client-mappings"),
    ("POST", "/api/v1/proxies/1/xaa/client-mappings"),
    ("DELETE", "/api/v1/proxies/1/xaa/client-mappings/1"),
    ("POST", "/api/v1/proxies/1/xaa/clients/c1/rotate-secret"),
    ("GET", "/api/v1/proxies/1/xaa/stats"),
    ("GET", "/api/v1/xaa/stats"),
    ("POST", "/api/v1/xaa/revoke-token"),
    ("POST", "/api/v1/xaa/revoke-tokens-by-subject"),
    ("GET", "/api/v1/xaa/tokens"),
    (
        "GET",
        "/api/v1/xaa/tokens/550e8400-e29b-41d4-a716-446655440000",
    ),
    ("GET", "/api/v1/xaa/audit"),
    ("GET", "/api/v1/xaa/jwks-health"),
    ("GET", "/api/v1/openapi.json"),
    ("GET", "/metrics"),
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_route_requires_admin_token() {
    let setup = Setup::start().await;
    let server = &setup.server;
    let before = stored_state(server).await;

    for (method, path) in ADMIN_ROUTES {
        let method = Method::from_bytes(method.as_bytes()).expect("method name");
        let request = || {
            server
                .http
                .request(method.clone(), format!("{}{path}", server.admin_url))
        };
        let attempts = [
            ("no token", request()),
            (
                "a wrong token",
                request().bearer_auth("test-admin-token-0123456788"),
            ),
            (
                "the token as Basic credentials",
                request().basic_auth(ADMIN_TOKEN, None::<&str>),
            ),
            (
                "the token with a prefix",
                request().bearer_auth(format!("x{ADMIN_TOKEN}")),
            ),
        ];
        for (case, attempt) in attempts {
            let reply = Reply::read(attempt.send().await.expect("request")).await;
            let case = format!("{method} {path} with {case}");
            assert_error(&reply, StatusCode::UNAUTHORIZED, "unauthorized", &case);
        }
    }
    assert_unchanged(server, &before, "unauthenticated requests").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn healthz_needs_no_token() {
    let server = TestServer::start().await;
    let response = server
        .http
        .get(format!("{}/healthz", server.admin_url))
        .send()
        .await
        .expect("healthz request");
    let reply = Reply::read(response).await;
    assert_eq!(reply.status, 200);
    assert_eq!(reply.body, json!({"status": "ok"}));
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_path_and_method_errors() {
    let server = TestServer::start().await;
    let unknown = get(&server, "/api/v1/nothing-here").await;
    assert_not_found(&unknown, "unknown path");

    // A known path with a method it does not serve.
    let response = server
        .http
        .put(format!("{}/api/v1/xaa/stats", server.admin_url))
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await
        .expect("request");
    assert_eq!(response.status(), StatusCode::METHOD_NOT_ALLOWED);
    let text = response.text().await.expect("body");
    let body: Value = serde_json::from_str(&text)
        .unwrap_or_else(|_| panic!("405 body is not a JSON error: {text:?}"));
    assert!(body["error"].is_string(), "405 body: {body}");
    assert!(body["message"].is_string(), "405 body: {body}");
    server.stop().await;
}

// ---- Client mappings: listing and creation --------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mapping_list_values() {
    let setup = Setup::start().await;
    let server = &setup.server;
    let scopes = ["openid", "profile", "email", "mcp:tools"];
    let created = server
        .add_mapping(
            setup.proxy,
            setup.provider,
            "0oa5x7y8z9abc123def",
            "gateway-mcp-proxy-001",
            &scopes,
        )
        .await;

    let listed = get(server, &mappings_path(setup.proxy)).await;
    assert_eq!(listed.status, 200);
    let list = listed.body.as_array().expect("mapping list");
    assert_eq!(list.len(), 1, "{}", listed.body);
    let mapping = &list[0];
    assert_eq!(mapping["id"], created["id"]);
    assert_eq!(mapping["idp_provider_id"], setup.provider);
    let provider_name = format!("IdP {}", setup.idp.issuer());
    assert_eq!(mapping["idp_provider_name"], provider_name);
    assert_eq!(mapping["client_id_at_idp"], "0oa5x7y8z9abc123def");
    assert_eq!(mapping["client_id_at_resource_as"], "gateway-mcp-proxy-001");
    assert_eq!(mapping["allowed_scopes"], json!(scopes));
    let created_at = mapping["created_at"].as_str().expect("created_at text");
    assert!(
        chrono::DateTime::parse_from_rfc3339(created_at).is_ok(),
        "created_at {created_at:?} is not RFC 3339"
    );

    // Another proxy's listing is empty. An unknown or malformed proxy id is an error.
    let other = setup.server.add_proxy("proxy-b", json!({})).await;
    let empty = get(server, &mappings_path(other)).await;
    assert_eq!(empty.status, 200);
    assert_eq!(empty.body, json!([]));
    assert_not_found(&get(server, &mappings_path(9999)).await, "unknown proxy");
    let malformed = get(server, "/api/v1/proxies/abc/xaa/client-mappings").await;
    assert_bad_request(&malformed, "non-numeric proxy id");
}

/// The listing carries exactly the documented members, so clients written against the
/// documented shape see nothing else.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mapping_list_has_exact_fields() {
    let setup = Setup::start().await;
    setup.map_default_client().await;
    let listed = get(&setup.server, &mappings_path(setup.proxy)).await;
    assert_eq!(listed.status, 200);
    assert_eq!(
        keys(&listed.body[0]),
        BTreeSet::from([
            "id",
            "idp_provider_id",
            "idp_provider_name",
            "client_id_at_idp",
            "client_id_at_resource_as",
            "allowed_scopes",
            "created_at",
        ]),
        "{}",
        listed.body
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mapping_secret_only_for_new_client() {
    let setup = Setup::start().await;
    let server = &setup.server;
    let path = mappings_path(setup.proxy);

    let body = mapping_body(setup.provider, "idp-client-1", AS_CLIENT, &["openid"]);
    let first = post(server, &path, body).await;
    assert_eq!(first.status, 201, "{}", first.body);
    let secret = first.body["client_secret"]
        .as_str()
        .expect("a new client gets a secret");
    assert!(secret.len() >= 32, "secret {secret:?} is short");
    assert_eq!(first.body["client_id_at_idp"], "idp-client-1");
    assert_eq!(first.body["allowed_scopes"], json!(["openid"]));

    // The same client at the resource AS behind a second IdP-side client id: no new secret.
    let body = mapping_body(setup.provider, "idp-client-2", AS_CLIENT, &["openid"]);
    let second = post(server, &path, body).await;
    assert_eq!(second.status, 201, "{}", second.body);
    assert!(
        second.body.get("client_secret").is_none(),
        "existing client got a new secret: {}",
        second.body
    );

    // The first secret still authenticates for both mappings.
    for client_at_idp in ["idp-client-1", "idp-client-2"] {
        setup
            .redeem(setup.proxy, client_at_idp, AS_CLIENT, secret, "alice")
            .await;
    }

    // A client of the same name on another proxy is a different client with its own secret.
    let other = server.add_proxy("proxy-b", json!({})).await;
    let body = mapping_body(setup.provider, "idp-client-1", AS_CLIENT, &["openid"]);
    let elsewhere = post(server, &mappings_path(other), body).await;
    assert_eq!(elsewhere.status, 201, "{}", elsewhere.body);
    let other_secret = elsewhere.body["client_secret"]
        .as_str()
        .expect("a client new on this proxy gets a secret");
    assert_ne!(other_secret, secret);

    // The secret is never listed.
    let listed = get(server, &path).await;
    assert!(
        !listed.body.to_string().contains(secret),
        "the listing shows the secret"
    );
}

/// Mapping bodies that break one input rule each, built from a valid body.
fn invalid_mapping_bodies(provider: i64) -> Vec<(&'static str, Value)> {
    let valid = mapping_body(provider, "idp-1", "as-1", &["openid"]);
    let scopes = |scopes: &[&str]| json!(scopes);
    vec![
        (
            "empty client_id_at_idp",
            with_member(&valid, "client_id_at_idp", json!("")),
        ),
        (
            "blank client_id_at_idp",
            with_member(&valid, "client_id_at_idp", json!("   ")),
        ),
        (
            "empty client_id_at_resource_as",
            with_member(&valid, "client_id_at_resource_as", json!("")),
        ),
        (
            "client id with a space",
            with_member(&valid, "client_id_at_idp", json!("idp 1")),
        ),
        (
            "client id with a control character",
            with_member(&valid, "client_id_at_idp", json!("idp-1\u{7}")),
        ),
        (
            "client id longer than 256 bytes",
            with_member(&valid, "client_id_at_idp", json!("x".repeat(257))),
        ),
        (
            "scope with a double quote",
            with_member(&valid, "allowed_scopes", scopes(&["a\"b"])),
        ),
        (
            "scope with a backslash",
            with_member(&valid, "allowed_scopes", scopes(&["a\\b"])),
        ),
        (
            "two scopes in one element",
            with_member(&valid, "allowed_scopes", scopes(&["openid", "a b"])),
        ),
        (
            "empty scope element",
            with_member(&valid, "allowed_scopes", scopes(&["openid", ""])),
        ),
        (
            "non-ASCII scope",
            with_member(&valid, "allowed_scopes", scopes(&["sc\u{f6}pe"])),
        ),
        (
            "empty scope list",
            with_member(&valid, "allowed_scopes", scopes(&[])),
        ),
        (
            "scopes as one string",
            with_member(&valid, "allowed_scopes", json!("openid profile")),
        ),
        (
            "missing allowed_scopes",
            with_member(&valid, "allowed_scopes", Value::Null),
        ),
        (
            "missing idp_provider_id",
            with_member(&valid, "idp_provider_id", Value::Null),
        ),
        (
            "provider id as a string",
            with_member(&valid, "idp_provider_id", json!(provider.to_string())),
        ),
        (
            "unknown field",
            with_member(&valid, "client_secret", json!("chosen-by-caller")),
        ),
        ("JSON array body", json!([])),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mapping_create_rejects_bad_input() {
    let setup = Setup::start().await;
    let server = &setup.server;
    setup.map_default_client().await;
    let path = mappings_path(setup.proxy);
    let cases = invalid_mapping_bodies(setup.provider);
    assert_bodies_rejected(server, Method::POST, &path, cases).await;

    let before = stored_state(server).await;
    let form = "application/x-www-form-urlencoded";
    let raw_cases = [
        ("text/plain body", Some("text/plain"), "openid"),
        ("no content type", None, r#"{"idp_provider_id": 1}"#),
        ("truncated JSON", Some("application/json"), r#"{"a": "#),
        ("empty JSON body", Some("application/json"), ""),
        ("form body", Some(form), "idp_provider_id=1"),
    ];
    for (case, content_type, body) in raw_cases {
        let reply = send_raw(server, Method::POST, &path, content_type, body).await;
        assert_bad_request(&reply, case);
        assert_unchanged(server, &before, case).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mapping_create_unknown_ids() {
    let setup = Setup::start().await;
    let server = &setup.server;
    let provider = setup.provider;
    setup.map_default_client().await;
    let before = stored_state(server).await;
    let body = mapping_body(provider, "idp-2", "as-2", &["openid"]);

    let unknown_proxy = post(server, &mappings_path(9999), body.clone()).await;
    assert_not_found(&unknown_proxy, "unknown proxy");
    let unknown_provider = with_member(&body, "idp_provider_id", json!(9999));
    let reply = post(server, &mappings_path(setup.proxy), unknown_provider).await;
    assert_not_found(&reply, "unknown provider");
    for segment in ["abc", "0", "-1", "1.5"] {
        let path = format!("/api/v1/proxies/{segment}/xaa/client-mappings");
        let reply = post(server, &path, body.clone()).await;
        assert_bad_request(&reply, &format!("proxy id {segment:?}"));
    }
    assert_unchanged(server, &before, "requests with unknown ids").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mapping_create_duplicate_conflicts() {
    let setup = Setup::start().await;
    let server = &setup.server;
    setup.map_default_client().await;
    let before = stored_state(server).await;

    // Same proxy, provider and client id at IdP: a duplicate, whatever the other fields contain.
    let body = mapping_body(setup.provider, IDP_CLIENT, "another-client", &["profile"]);
    let duplicate = post(server, &mappings_path(setup.proxy), body).await;
    assert_error(
        &duplicate,
        StatusCode::CONFLICT,
        "conflict",
        "duplicate mapping",
    );
    let message = duplicate.body["message"].as_str().unwrap_or_default();
    assert!(
        message.contains(IDP_CLIENT),
        "the message names the duplicate: {message:?}"
    );
    assert_unchanged(server, &before, "the duplicate").await;

    // The uniqueness key includes the provider, so another provider may map the same
    // IdP-side client id.
    let second_idp = TestIdp::start().await;
    let second = server.add_provider(second_idp.issuer(), json!({})).await;
    let body = mapping_body(second, IDP_CLIENT, AS_CLIENT, &["openid"]);
    let reply = post(server, &mappings_path(setup.proxy), body).await;
    assert_eq!(reply.status, 201, "{}", reply.body);
    assert_eq!(reply.body["idp_provider_id"], second);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mapping_create_disabled_provider() {
    let setup = Setup::start().await;
    let server = &setup.server;
    let provider_path = format!("/api/v1/providers/{}", setup.provider);
    let path = mappings_path(setup.proxy);
    let body = mapping_body(setup.provider, "idp-3", "as-3", &["openid"]);

    let disabled = patch(server, &provider_path, json!({"enabled": false})).await;
    assert_eq!(disabled.status, 200, "{}", disabled.body);
    assert_eq!(disabled.body["enabled"], false);
    let before = stored_state(server).await;
    let refused = post(server, &path, body.clone()).await;
    assert_error(
        &refused,
        StatusCode::UNPROCESSABLE_ENTITY,
        "provider_disabled",
        "disabled provider",
    );
    assert_unchanged(server, &before, "the 422").await;

    // Enabled again, the same request succeeds.
    let enabled = patch(server, &provider_path, json!({"enabled": true})).await;
    assert_eq!(enabled.status, 200, "{}", enabled.body);
    let accepted = post(server, &path, body).await;
    assert_eq!(accepted.status, 201, "{}", accepted.body);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_mappings_share_new_client() {
    let setup = Setup::start().await;
    let server = &setup.server;

    // Several IdP-side client ids for one client at the resource AS, created at once: each
    // mapping is distinct, so all succeed, and exactly one response carries the new secret.
    let url = format!("{}{}", server.admin_url, mappings_path(setup.proxy));
    let tasks: Vec<_> = (0..4)
        .map(|index| {
            let client_at_idp = format!("idp-client-{index}");
            let body = mapping_body(setup.provider, &client_at_idp, "shared", &["openid"]);
            let request = server.http.post(&url).bearer_auth(ADMIN_TOKEN).json(&body);
            tokio::spawn(async move { Reply::read(request.send().await.expect("request")).await })
        })
        .collect();
    let mut secrets = Vec::new();
    for task in tasks {
        let reply = task.await.expect("request task");
        assert_eq!(reply.status, 201, "{}", reply.body);
        if let Some(secret) = reply.body["client_secret"].as_str() {
            secrets.push(secret.to_owned());
        }
    }
    assert_eq!(secrets.len(), 1, "secrets returned: {secrets:?}");
    setup
        .redeem(setup.proxy, "idp-client-3", "shared", &secrets[0], "alice")
        .await;
}

// ---- Client mappings: deletion ------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mapping_delete_statuses() {
    let setup = Setup::start().await;
    let server = &setup.server;
    let (mapping, _) = setup.map_default_client().await;
    let other = server.add_proxy("proxy-b", json!({})).await;
    let before = stored_state(server).await;

    let own = mappings_path(setup.proxy);
    let missing = [
        (
            "mapping of another proxy",
            format!("{}/{mapping}", mappings_path(other)),
        ),
        (
            "unknown proxy",
            format!("{}/{mapping}", mappings_path(9999)),
        ),
        ("unknown mapping", format!("{own}/9999")),
    ];
    for (case, target) in missing {
        assert_not_found(&delete(server, &target).await, case);
        assert_unchanged(server, &before, case).await;
    }
    let malformed = [
        ("non-numeric mapping id", format!("{own}/abc")),
        ("fractional mapping id", format!("{own}/1.5")),
        (
            "non-numeric proxy id",
            format!("/api/v1/proxies/abc/xaa/client-mappings/{mapping}"),
        ),
    ];
    for (case, target) in malformed {
        assert_bad_request(&delete(server, &target).await, case);
        assert_unchanged(server, &before, case).await;
    }

    let path = format!("{own}/{mapping}");
    let deleted = delete(server, &path).await;
    assert_eq!(deleted.status, StatusCode::NO_CONTENT, "{}", deleted.body);
    assert_eq!(deleted.body, Value::Null, "204 has no body");
    assert_eq!(get(server, &own).await.body, json!([]));
    assert_not_found(&delete(server, &path).await, "second delete");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mapping_delete_keeps_issued_tokens() {
    let setup = Setup::start().await;
    let server = &setup.server;
    let (mapping, secret) = setup.map_default_client().await;
    let (_, token) = setup.redeem_default(&secret, "alice").await;
    let deleted = delete(server, &format!("{}/{mapping}", mappings_path(setup.proxy))).await;
    assert_eq!(deleted.status, 204, "{}", deleted.body);

    // New exchanges for the client fail at once, but the token issued before stays active.
    let claims = setup
        .idp
        .claims(&server.issuer(setup.proxy), IDP_CLIENT, "alice");
    let assertion = setup.idp.mint(&claims);
    let refused = server
        .redeem(setup.proxy, AS_CLIENT, &secret, &assertion, &[])
        .await;
    assert!(
        refused.status().is_client_error(),
        "exchange after delete: {}",
        refused.status()
    );
    assert!(
        setup.is_active(&token).await,
        "issued token turned inactive"
    );

    // Both operator actions are in the audit log with their fields.
    let created = setup.audit("xaa_client_mapping_created").await;
    let fields = &created[0]["fields"];
    assert_eq!(fields["proxy_id"], setup.proxy);
    assert_eq!(fields["idp_provider_id"], setup.provider);
    assert_eq!(fields["client_id_at_idp"], IDP_CLIENT);
    assert_eq!(fields["allowed_scopes"], json!(["openid", "mcp:tools"]));
    let deleted = setup.audit("xaa_client_mapping_deleted").await;
    assert_eq!(deleted.len(), 1, "{deleted:?}");
    assert_eq!(deleted[0]["fields"]["proxy_id"], setup.proxy);
    assert_eq!(deleted[0]["fields"]["mapping_id"], mapping);
}

// ---- Statistics ---------------------------------------------------------------------------

fn assert_stats_shape(stats: &Value) {
    for card in ["id_jag_tokens", "jwks_cache", "client_mappings"] {
        assert!(stats.get(card).is_some(), "{card} missing: {stats}");
    }
    assert_eq!(
        keys(&stats["id_jag_tokens"]),
        BTreeSet::from(["total", "active", "revoked", "last_token_at"]),
    );
    assert_eq!(
        keys(&stats["jwks_cache"]),
        BTreeSet::from(["total_providers", "total_keys", "last_updated"]),
    );
    assert_eq!(
        keys(&stats["client_mappings"]),
        BTreeSet::from(["total_mappings", "providers", "last_updated"]),
    );
}

/// `(total, active, revoked)` of the ID-JAG card.
fn token_counts(stats: &Value) -> (i64, i64, i64) {
    let card = &stats["id_jag_tokens"];
    let count = |name: &str| {
        card[name]
            .as_i64()
            .unwrap_or_else(|| panic!("{name}: {card}"))
    };
    (count("total"), count("active"), count("revoked"))
}

/// `(total_mappings, providers)` of the client mappings card.
fn mapping_counts(stats: &Value) -> (i64, i64) {
    let card = &stats["client_mappings"];
    (
        card["total_mappings"].as_i64().expect("total_mappings"),
        card["providers"].as_i64().expect("providers"),
    )
}

/// `(total_providers, total_keys)` of the JWKS cache card.
fn key_counts(stats: &Value) -> (i64, i64) {
    let card = &stats["jwks_cache"];
    (
        card["total_providers"].as_i64().expect("total_providers"),
        card["total_keys"].as_i64().expect("total_keys"),
    )
}

fn revocation_generation(stats: &Value) -> i64 {
    stats["revocation_generation"]
        .as_i64()
        .unwrap_or_else(|| panic!("no revocation_generation: {stats}"))
}

fn timestamp(value: &Value) -> chrono::DateTime<chrono::FixedOffset> {
    let text = value
        .as_str()
        .unwrap_or_else(|| panic!("not a timestamp: {value}"));
    chrono::DateTime::parse_from_rfc3339(text)
        .unwrap_or_else(|error| panic!("{text:?} is not RFC 3339: {error}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stats_start_empty() {
    let server = TestServer::start().await;
    let proxy = server.add_proxy("proxy-a", json!({})).await;
    for path in [
        "/api/v1/xaa/stats".to_owned(),
        format!("/api/v1/proxies/{proxy}/xaa/stats"),
    ] {
        let reply = get(&server, &path).await;
        assert_eq!(reply.status, 200, "{path}");
        assert_stats_shape(&reply.body);
        assert_eq!(
            reply.body["id_jag_tokens"],
            json!({"total": 0, "active": 0, "revoked": 0, "last_token_at": null}),
            "{path}"
        );
        assert_eq!(
            reply.body["jwks_cache"],
            json!({"total_providers": 0, "total_keys": 0, "last_updated": null}),
            "{path}"
        );
        assert_eq!(
            reply.body["client_mappings"],
            json!({"total_mappings": 0, "providers": 0, "last_updated": null}),
            "{path}"
        );
    }
    let unknown = get(&server, "/api/v1/proxies/9999/xaa/stats").await;
    assert_not_found(&unknown, "unknown proxy");
    let malformed = get(&server, "/api/v1/proxies/abc/xaa/stats").await;
    assert_bad_request(&malformed, "non-numeric proxy");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stats_count_keys_and_mappings() {
    let setup = Setup::start().await;
    let server = &setup.server;
    let proxy_a = setup.proxy;
    let proxy_b = server.add_proxy("proxy-b", json!({})).await;
    let stats = setup.stats(None).await;
    assert_stats_shape(&stats);
    assert_eq!(key_counts(&stats), (1, 2), "{stats}");
    timestamp(&stats["jwks_cache"]["last_updated"]);

    // A second provider with its own two keys.
    let second_idp = TestIdp::start().await;
    let second = server.add_provider(second_idp.issuer(), json!({})).await;
    refresh_keys(server, second).await;
    assert_eq!(key_counts(&setup.stats(None).await), (2, 4));

    // Two mappings on proxy A (one provider), one on proxy B (the second provider).
    let (mapping_a, _) = setup.map_client(proxy_a, "idp-1", "client-a").await;
    setup.map_client(proxy_a, "idp-2", "client-a").await;
    let created_b = server
        .add_mapping(proxy_b, second, "idp-1", "client-b", &["openid"])
        .await;
    let mapping_b = created_b["id"].as_i64().expect("mapping id");
    let stats = setup.stats(None).await;
    assert_eq!(mapping_counts(&stats), (3, 2), "{stats}");
    let first_change = timestamp(&stats["client_mappings"]["last_updated"]);
    assert_eq!(mapping_counts(&setup.stats(Some(proxy_a)).await), (2, 1));
    assert_eq!(mapping_counts(&setup.stats(Some(proxy_b)).await), (1, 1));

    // Deletions lower the counts and move "last updated", per proxy too.
    let deleted = delete(server, &format!("{}/{mapping_a}", mappings_path(proxy_a))).await;
    assert_eq!(deleted.status, 204);
    let stats = setup.stats(None).await;
    assert_eq!(mapping_counts(&stats), (2, 2), "{stats}");
    assert!(timestamp(&stats["client_mappings"]["last_updated"]) >= first_change);
    let deleted = delete(server, &format!("{}/{mapping_b}", mappings_path(proxy_b))).await;
    assert_eq!(deleted.status, 204);
    assert_eq!(mapping_counts(&setup.stats(None).await), (1, 1));
    let stats_b = setup.stats(Some(proxy_b)).await;
    assert_eq!(mapping_counts(&stats_b), (0, 0), "{stats_b}");
    assert!(
        stats_b["client_mappings"]["last_updated"].is_string(),
        "a deletion is a mapping change: {stats_b}"
    );

    // Deleting the second provider removes its cached keys from the figures.
    let removed = delete(server, &format!("/api/v1/providers/{second}")).await;
    assert_eq!(removed.status, 204, "{}", removed.body);
    assert_eq!(key_counts(&setup.stats(None).await), (1, 2));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stats_count_tokens() {
    let setup = Setup::start().await;
    let server = &setup.server;
    let proxy_b = server.add_proxy("proxy-b", json!({})).await;
    let (_, secret) = setup.map_default_client().await;

    // Three ID-JAGs on the first proxy, none on the second.
    let first_claims = setup
        .idp
        .claims(&server.issuer(setup.proxy), IDP_CLIENT, "alice");
    let (first_jti, _) = setup
        .redeem_claims(setup.proxy, AS_CLIENT, &secret, &first_claims)
        .await;
    setup.redeem_default(&secret, "alice").await;
    setup.redeem_default(&secret, "bob").await;
    let stats = setup.stats(None).await;
    assert_eq!(token_counts(&stats), (3, 3, 0), "{stats}");
    let last_token = timestamp(&stats["id_jag_tokens"]["last_token_at"]);
    assert_eq!(
        token_counts(&setup.stats(Some(setup.proxy)).await),
        (3, 3, 0)
    );
    let stats_b = setup.stats(Some(proxy_b)).await;
    assert_eq!(token_counts(&stats_b), (0, 0, 0), "{stats_b}");
    assert_eq!(stats_b["id_jag_tokens"]["last_token_at"], Value::Null);

    // A rejected replay changes no figure.
    let assertion = setup.idp.mint(&first_claims);
    let replay = server
        .redeem(setup.proxy, AS_CLIENT, &secret, &assertion, &[])
        .await;
    assert_eq!(replay.status(), 400);
    assert_eq!(token_counts(&setup.stats(None).await), (3, 3, 0));

    // An ID-JAG redeemed inside the leeway after its `exp` counts in the total, never as active.
    let expired = setup.expired_claims(setup.proxy, "dave");
    setup
        .redeem_claims(setup.proxy, AS_CLIENT, &secret, &expired)
        .await;
    let stats = setup.stats(None).await;
    assert_eq!(token_counts(&stats), (4, 3, 0), "{stats}");

    // Revocation by JTI moves one token from active to revoked and moves the revocation
    // generation. Revoking it again moves neither.
    let generation = revocation_generation(&stats);
    for attempt in 0..2 {
        let revoked = post(
            server,
            "/api/v1/xaa/revoke-token",
            json!({"jti": first_jti}),
        )
        .await;
        assert_eq!(revoked.status, 200, "{}", revoked.body);
        let stats = setup.stats(None).await;
        assert_eq!(
            token_counts(&stats),
            (4, 2, 1),
            "attempt {attempt}: {stats}"
        );
        assert_eq!(
            revocation_generation(&stats),
            generation + 1,
            "attempt {attempt}"
        );
    }

    // Revocation by subject: alice's remaining token (bob and dave keep theirs).
    let by_subject = post(
        server,
        "/api/v1/xaa/revoke-tokens-by-subject",
        json!({"idp_provider_id": setup.provider, "subject": "alice"}),
    )
    .await;
    assert_eq!(by_subject.body["revoked_count"], 1, "{}", by_subject.body);
    let stats = setup.stats(Some(setup.proxy)).await;
    assert_eq!(token_counts(&stats), (4, 1, 2), "{stats}");
    assert!(timestamp(&stats["id_jag_tokens"]["last_token_at"]) >= last_token);
}

// ---- Revocation by JTI --------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revoke_token_and_again() {
    let setup = Setup::start().await;
    let server = &setup.server;
    let (_, secret) = setup.map_default_client().await;
    let (jti, token) = setup.redeem_default(&secret, "alice").await;

    let first = json!({"jti": jti, "reason": "Security incident #12345", "revoked_by": "secops"});
    let revoked = post(server, "/api/v1/xaa/revoke-token", first).await;
    assert_eq!(revoked.status, 200, "{}", revoked.body);
    assert_eq!(revoked.body["jti"], jti.as_str());
    assert_eq!(revoked.body["revoked"], true);
    assert_eq!(revoked.body["already_revoked"], false);
    assert!(!setup.is_active(&token).await, "revoked token still active");

    // Revoking again succeeds and reports `already_revoked`. The first reason stays.
    let second = json!({"jti": jti, "reason": "second try", "revoked_by": "someone-else"});
    let again = post(server, "/api/v1/xaa/revoke-token", second).await;
    assert_eq!(again.status, 200, "{}", again.body);
    assert_eq!(again.body["already_revoked"], true);
    let lineage = get(server, &format!("/api/v1/xaa/tokens/{jti}")).await;
    let revocation = &lineage.body[0]["id_jag"]["revocation"];
    assert_eq!(revocation["reason"], "Security incident #12345");
    assert_eq!(revocation["revoked_by"], "secops");

    // The audit log records the first revocation with its fields.
    let events = setup.audit("xaa_token_revoked").await;
    let recorded = events
        .iter()
        .find(|event| event["fields"]["reason"] == "Security incident #12345")
        .unwrap_or_else(|| panic!("no audit event for the first revocation: {events:?}"));
    assert_eq!(recorded["fields"]["jti"], jti.as_str());
    assert_eq!(recorded["fields"]["revoked_by"], "secops");

    // Reason and revoked_by are optional.
    let (bare_jti, _) = setup.redeem_default(&secret, "bob").await;
    let bare = post(server, "/api/v1/xaa/revoke-token", json!({"jti": bare_jti})).await;
    assert_eq!(bare.status, 200, "{}", bare.body);
    assert_eq!(bare.body["already_revoked"], false);

    // The JTI of an access token is revoked too.
    let (_, access_token) = setup.redeem_default(&secret, "carol").await;
    let introspected = setup.introspect(setup.proxy, &access_token).await;
    let access_jti = introspected["jti"].as_str().expect("introspected jti");
    let by_access_jti = post(
        server,
        "/api/v1/xaa/revoke-token",
        json!({"jti": access_jti}),
    )
    .await;
    assert_eq!(by_access_jti.status, 200, "{}", by_access_jti.body);
    assert!(
        !setup.is_active(&access_token).await,
        "revoked token still active"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revoke_token_rejects_bad_input() {
    let setup = Setup::start().await;
    let server = &setup.server;
    let (_, secret) = setup.map_default_client().await;
    let (jti, token) = setup.redeem_default(&secret, "alice").await;
    let path = "/api/v1/xaa/revoke-token";

    let cases = vec![
        ("JTI with a space and '!'", json!({"jti": "not a jti!"})),
        ("empty JTI", json!({"jti": ""})),
        ("JTI with a quote", json!({"jti": "abc\"def"})),
        ("JTI longer than 256", json!({"jti": "a".repeat(257)})),
        ("missing JTI", json!({"reason": "x"})),
        ("JTI as a number", json!({"jti": 12345})),
        ("unknown field", json!({"jti": jti, "comment": "x"})),
        (
            "reason with an escape",
            json!({"jti": jti, "reason": "a\u{1b}[2Jb"}),
        ),
    ];
    assert_bodies_rejected(server, Method::POST, path, cases).await;

    let before = stored_state(server).await;
    let text = send_raw(server, Method::POST, path, Some("text/plain"), UNKNOWN_JTI).await;
    assert_bad_request(&text, "text body");
    for unknown in [UNKNOWN_JTI, "dGVzdC1qdGk"] {
        let reply = post(server, path, json!({"jti": unknown})).await;
        assert_not_found(&reply, unknown);
    }
    assert_unchanged(server, &before, "rejected revocations").await;
    assert!(
        setup.is_active(&token).await,
        "a rejected request revoked the token"
    );
}

// ---- Revocation by subject ----------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revoke_subject_counts_tokens() {
    let setup = Setup::start().await;
    let server = &setup.server;
    let (_, secret) = setup.map_default_client().await;
    let (_, alice_1) = setup.redeem_default(&secret, "alice@example.com").await;
    let (_, alice_2) = setup.redeem_default(&secret, "alice@example.com").await;
    let (_, bob) = setup.redeem_default(&secret, "bob@example.com").await;
    let path = "/api/v1/xaa/revoke-tokens-by-subject";

    let body = json!({"idp_provider_id": setup.provider, "subject": "alice@example.com",
                      "reason": "User offboarding", "revoked_by": "admin@example.com"});
    let revoked = post(server, path, body).await;
    assert_eq!(revoked.status, 200, "{}", revoked.body);
    assert_eq!(revoked.body["revoked_count"], 2, "{}", revoked.body);
    assert_eq!(revoked.body["subject"], "alice@example.com");
    assert_eq!(revoked.body["idp_provider_id"], setup.provider);
    assert!(
        !setup.is_active(&alice_1).await,
        "alice's first token is active"
    );
    assert!(
        !setup.is_active(&alice_2).await,
        "alice's second token is active"
    );
    assert!(setup.is_active(&bob).await, "bob's token was revoked");

    // Nothing left to revoke gives a count of zero. Reason and revoked_by are optional.
    for subject in ["alice@example.com", "nobody@example.com"] {
        let body = json!({"idp_provider_id": setup.provider, "subject": subject});
        let reply = post(server, path, body).await;
        assert_eq!(reply.status, 200, "{subject}: {}", reply.body);
        assert_eq!(reply.body["revoked_count"], 0, "{subject}");
    }

    let events = setup.audit("xaa_tokens_revoked_by_subject").await;
    let recorded = events
        .iter()
        .find(|event| event["fields"]["count"] == 2)
        .unwrap_or_else(|| panic!("no audit event with count 2: {events:?}"));
    assert_eq!(recorded["fields"]["subject"], "alice@example.com");
    assert_eq!(recorded["fields"]["idp_provider_id"], setup.provider);
    assert_eq!(recorded["fields"]["revoked_by"], "admin@example.com");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revoke_subject_rejects_bad_input() {
    let setup = Setup::start().await;
    let server = &setup.server;
    let (_, secret) = setup.map_default_client().await;
    let (_, bob) = setup.redeem_default(&secret, "bob@example.com").await;
    let path = "/api/v1/xaa/revoke-tokens-by-subject";
    let valid = json!({"idp_provider_id": setup.provider, "subject": "bob@example.com"});

    let cases = vec![
        ("empty subject", with_member(&valid, "subject", json!(""))),
        ("blank subject", with_member(&valid, "subject", json!("  "))),
        (
            "missing subject",
            with_member(&valid, "subject", Value::Null),
        ),
        (
            "missing provider",
            with_member(&valid, "idp_provider_id", Value::Null),
        ),
        ("unknown field", with_member(&valid, "all", json!(true))),
    ];
    assert_bodies_rejected(server, Method::POST, path, cases).await;

    let before = stored_state(server).await;
    let unknown = with_member(&valid, "idp_provider_id", json!(9999));
    assert_not_found(&post(server, path, unknown).await, "unknown provider");
    assert_unchanged(server, &before, "the 404").await;
    assert!(
        setup.is_active(&bob).await,
        "a rejected request revoked bob"
    );
}

// ---- Providers ----------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn provider_create_read_update() {
    let idp = TestIdp::start().await;
    let server = TestServer::start().await;
    let empty = get(&server, "/api/v1/providers").await;
    assert_eq!(empty.status, 200);
    assert_eq!(empty.body, json!([]));

    let body = json!({"name": "Okta Production", "kind": "okta", "issuer": idp.issuer(),
                      "jwks_uri": idp.jwks_uri()});
    let created = post(&server, "/api/v1/providers", body).await;
    assert_eq!(created.status, 201, "{}", created.body);
    let id = created.body["id"].as_i64().expect("provider id");
    assert_eq!(created.body["name"], "Okta Production");
    assert_eq!(created.body["kind"], "okta");
    assert_eq!(created.body["issuer"], idp.issuer());
    assert_eq!(created.body["jwks_uri"], idp.jwks_uri());
    assert_eq!(created.body["enabled"], true);

    let path = format!("/api/v1/providers/{id}");
    let listed = get(&server, "/api/v1/providers").await;
    assert_eq!(listed.body, json!([created.body.clone()]));
    let one = get(&server, &path).await;
    assert_eq!(one.status, 200);
    assert_eq!(one.body, created.body);
    refresh_keys(&server, id).await;

    let disabled = patch(&server, &path, json!({"enabled": false})).await;
    assert_eq!(disabled.status, 200, "{}", disabled.body);
    assert_eq!(disabled.body["enabled"], false);
    assert_eq!(disabled.body["issuer"], idp.issuer());
    assert_eq!(get(&server, &path).await.body["enabled"], false);
    let renamed = patch(
        &server,
        &path,
        json!({"name": "Okta Staging", "enabled": true}),
    )
    .await;
    assert_eq!(renamed.status, 200, "{}", renamed.body);
    assert_eq!(renamed.body["name"], "Okta Staging");
    assert_eq!(renamed.body["enabled"], true);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn provider_delete_needs_no_mappings() {
    let setup = Setup::start().await;
    let server = &setup.server;
    let (mapping, _) = setup.map_default_client().await;
    let path = format!("/api/v1/providers/{}", setup.provider);

    let before = stored_state(server).await;
    let in_use = delete(server, &path).await;
    assert_error(&in_use, StatusCode::CONFLICT, "conflict", "provider in use");
    assert_unchanged(server, &before, "the 409").await;

    let unmapped = delete(server, &format!("{}/{mapping}", mappings_path(setup.proxy))).await;
    assert_eq!(unmapped.status, 204);
    let deleted = delete(server, &path).await;
    assert_eq!(deleted.status, 204, "{}", deleted.body);
    assert_eq!(deleted.body, Value::Null);
    assert_not_found(&get(server, &path).await, "deleted provider");
    assert_not_found(&delete(server, &path).await, "second delete");
    let listed = get(server, "/api/v1/providers").await;
    assert_eq!(
        listed.body,
        json!([]),
        "the deleted provider is still listed"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn provider_unknown_and_bad_ids() {
    let server = TestServer::start().await;
    let missing = [
        (Method::GET, "/api/v1/providers/9999", None),
        (
            Method::PATCH,
            "/api/v1/providers/9999",
            Some(json!({"enabled": false})),
        ),
        (Method::DELETE, "/api/v1/providers/9999", None),
        (
            Method::POST,
            "/api/v1/providers/9999/refresh-keys",
            Some(json!({})),
        ),
    ];
    for (method, path, body) in missing {
        let case = format!("{method} {path}");
        assert_not_found(&call(&server, method, path, body).await, &case);
    }
    for path in ["/api/v1/providers/abc", "/api/v1/providers/0"] {
        assert_bad_request(&get(&server, path).await, path);
    }
    server.stop().await;
}

/// Provider bodies that break one input rule each, built from a valid body.
fn invalid_provider_bodies() -> Vec<(&'static str, Value)> {
    let valid = json!({"name": "p", "kind": "oidc", "issuer": "https://idp.example.com"});
    let issuer = |text: &str| with_member(&valid, "issuer", json!(text));
    let algs = |algs: &[&str]| with_member(&valid, "allowed_algs", json!(algs));
    vec![
        ("issuer that is not a URL", issuer("not a url")),
        ("relative issuer", issuer("/oauth2/default")),
        ("http issuer off loopback", issuer("http://idp.example.com")),
        ("ftp issuer", issuer("ftp://idp.example.com")),
        (
            "http jwks_uri off loopback",
            with_member(&valid, "jwks_uri", json!("http://idp.example.com/keys")),
        ),
        ("HMAC algorithm", algs(&["HS256"])),
        ("alg none", algs(&["none"])),
        ("unknown algorithm", algs(&["RS256", "XYZ999"])),
        ("empty algorithm list", algs(&[])),
        ("unknown kind", with_member(&valid, "kind", json!("saml"))),
        (
            "unknown replay policy",
            with_member(&valid, "replay_policy", json!("sometimes")),
        ),
        (
            "leeway over 300 s",
            with_member(&valid, "leeway_secs", json!(301)),
        ),
        ("empty name", with_member(&valid, "name", json!(""))),
        ("missing issuer", with_member(&valid, "issuer", Value::Null)),
        (
            "unknown field",
            with_member(&valid, "client_secret", json!("x")),
        ),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn provider_create_rejects_bad_input() {
    let idp = TestIdp::start().await;
    let server = TestServer::start().await;
    let existing = server
        .add_provider(idp.issuer(), json!({"name": "Okta Production"}))
        .await;
    let before = stored_state(&server).await;

    let conflicts = [
        (
            "duplicate issuer",
            json!({"name": "Another name", "kind": "oidc", "issuer": idp.issuer()}),
        ),
        (
            "duplicate name",
            json!({"name": "Okta Production", "kind": "oidc",
                   "issuer": "https://other.example.com"}),
        ),
    ];
    for (case, body) in conflicts {
        let reply = post(&server, "/api/v1/providers", body).await;
        assert_error(&reply, StatusCode::CONFLICT, "conflict", case);
        assert_unchanged(&server, &before, case).await;
    }

    let cases = invalid_provider_bodies();
    assert_bodies_rejected(&server, Method::POST, "/api/v1/providers", cases).await;
    let text = send_raw(
        &server,
        Method::POST,
        "/api/v1/providers",
        Some("text/plain"),
        "name=p",
    )
    .await;
    assert_bad_request(&text, "text body");

    let patches = vec![
        ("unknown algorithm", json!({"allowed_algs": ["HS256"]})),
        (
            "unknown field",
            json!({"issuer": "https://elsewhere.example.com"}),
        ),
        ("enabled as text", json!({"enabled": "no"})),
        (
            "http jwks_uri off loopback",
            json!({"jwks_uri": "http://idp.example.com/keys"}),
        ),
    ];
    let path = format!("/api/v1/providers/{existing}");
    assert_bodies_rejected(&server, Method::PATCH, &path, patches).await;
    assert_unchanged(&server, &before, "rejected provider requests").await;
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refresh_keys_reports_idp_failure() {
    let idp = TestIdp::start().await;
    let server = TestServer::start().await;
    let provider = server
        .add_provider(idp.issuer(), json!({"jwks_uri": idp.jwks_uri()}))
        .await;
    idp.set_mode(Mode::Error500);

    let path = format!("/api/v1/providers/{provider}/refresh-keys");
    let reply = post(&server, &path, json!({})).await;
    assert!(
        reply.status == StatusCode::BAD_GATEWAY || reply.status == StatusCode::SERVICE_UNAVAILABLE,
        "status {}: {}",
        reply.status,
        reply.body
    );
    let message = reply.body["message"].as_str().unwrap_or_default();
    assert!(
        !message.contains("store"),
        "the IdP failed, but the message blames the store: {message:?}"
    );
    assert!(
        message.contains(&provider.to_string()) || message.contains("key set"),
        "the message names neither the provider nor the key set: {message:?}"
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jwks_health_reports_fetch_errors() {
    let setup = Setup::start().await;
    let server = &setup.server;
    let health = get(server, "/api/v1/xaa/jwks-health").await;
    assert_eq!(health.status, 200, "{}", health.body);
    let entry = health
        .body
        .as_array()
        .expect("health list")
        .iter()
        .find(|entry| entry["provider_id"] == setup.provider)
        .unwrap_or_else(|| panic!("no entry for the provider: {}", health.body))
        .clone();
    assert_eq!(entry["key_count"], 2, "{entry}");
    timestamp(&entry["fetched_at"]);
    assert_eq!(entry["last_error"], Value::Null, "{entry}");

    // A failed refresh is recorded, and the cached keys keep serving.
    setup.idp.set_mode(Mode::Error500);
    let path = format!("/api/v1/providers/{}/refresh-keys", setup.provider);
    let failed = post(server, &path, json!({})).await;
    assert!(failed.status.is_server_error(), "{}", failed.body);
    let health = get(server, "/api/v1/xaa/jwks-health").await;
    let entry = &health.body[0];
    assert_eq!(entry["key_count"], 2, "{entry}");
    assert!(entry["last_error"].is_string(), "{entry}");
    timestamp(&entry["last_error_at"]);
    let (_, secret) = setup.map_default_client().await;
    setup.redeem_default(&secret, "alice").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rotate_secret_replaces_old() {
    let setup = Setup::start().await;
    let server = &setup.server;
    let (_, old_secret) = setup.map_default_client().await;
    let path = |proxy: &str, client: &str| {
        format!("/api/v1/proxies/{proxy}/xaa/clients/{client}/rotate-secret")
    };
    let proxy = setup.proxy.to_string();

    let rotated = call(server, Method::POST, &path(&proxy, AS_CLIENT), None).await;
    assert_eq!(rotated.status, 200, "{}", rotated.body);
    assert_eq!(rotated.body["client_id"], AS_CLIENT);
    let new_secret = rotated.body["client_secret"].as_str().expect("new secret");
    assert_ne!(new_secret, old_secret);

    // Only the new secret authenticates.
    let claims = setup
        .idp
        .claims(&server.issuer(setup.proxy), IDP_CLIENT, "alice");
    let assertion = setup.idp.mint(&claims);
    let stale = server
        .redeem(setup.proxy, AS_CLIENT, &old_secret, &assertion, &[])
        .await;
    assert_eq!(stale.status(), 401);
    setup.redeem_default(new_secret, "alice").await;

    let before = stored_state(server).await;
    let unknown_client = call(server, Method::POST, &path(&proxy, "nobody"), None).await;
    assert_not_found(&unknown_client, "unknown client");
    let unknown_proxy = call(server, Method::POST, &path("9999", AS_CLIENT), None).await;
    assert_not_found(&unknown_proxy, "unknown proxy");
    let malformed = call(server, Method::POST, &path("abc", AS_CLIENT), None).await;
    assert_bad_request(&malformed, "non-numeric proxy id");
    let spaced = call(server, Method::POST, &path(&proxy, "a%20b"), None).await;
    assert_bad_request(&spaced, "client id with a space");
    assert_unchanged(server, &before, "rejected rotations").await;
}

// ---- Proxies ------------------------------------------------------------------------------

fn assert_proxy_endpoints(server: &TestServer, proxy: &Value) {
    let id = proxy["id"].as_i64().expect("proxy id");
    assert_eq!(proxy["issuer"], server.issuer(id), "{proxy}");
    assert_eq!(
        proxy["token_endpoint"],
        server.token_endpoint(id),
        "{proxy}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn proxy_create_read_update() {
    let server = TestServer::start().await;
    server.add_proxy("proxy-a", json!({})).await;

    let resource = "https://mcp.example.com/tools";
    let body = json!({"name": "mcp-tools", "kind": "mcp", "resource": resource});
    let created = post(&server, "/api/v1/proxies", body).await;
    assert_eq!(created.status, 201, "{}", created.body);
    let id = created.body["id"].as_i64().expect("proxy id");
    assert_eq!(created.body["name"], "mcp-tools");
    assert_eq!(created.body["kind"], "mcp");
    assert_eq!(created.body["resource"], resource);
    assert_proxy_endpoints(&server, &created.body);

    let listed = get(&server, "/api/v1/proxies").await;
    assert_eq!(listed.status, 200);
    let list = listed.body.as_array().expect("proxy list");
    assert_eq!(list.len(), 2, "{}", listed.body);
    for proxy in list {
        assert_proxy_endpoints(&server, proxy);
    }
    let path = format!("/api/v1/proxies/{id}");
    let one = get(&server, &path).await;
    assert_eq!(one.status, 200);
    assert_eq!(one.body, created.body);

    let renamed = patch(&server, &path, json!({"name": "mcp-tools-eu"})).await;
    assert_eq!(renamed.status, 200, "{}", renamed.body);
    assert_eq!(renamed.body["name"], "mcp-tools-eu");
    assert_eq!(renamed.body["kind"], "mcp");
    assert_eq!(get(&server, &path).await.body["name"], "mcp-tools-eu");
    server.stop().await;
}

/// PATCH returns the same representation as GET, issuer and token endpoint included.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn proxy_patch_returns_endpoints() {
    let server = TestServer::start().await;
    let id = server.add_proxy("proxy-a", json!({})).await;
    let path = format!("/api/v1/proxies/{id}");
    let renamed = patch(&server, &path, json!({"name": "proxy-b"})).await;
    assert_eq!(renamed.status, 200, "{}", renamed.body);
    let fetched = get(&server, &path).await;
    assert_eq!(renamed.body, fetched.body);
    assert_proxy_endpoints(&server, &renamed.body);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn proxy_kill_switch_and_delete() {
    let setup = Setup::start().await;
    let server = &setup.server;
    let (_, secret) = setup.map_default_client().await;
    let path = format!("/api/v1/proxies/{}", setup.proxy);

    // The issuance kill switch stops exchanges at this proxy.
    let switched = patch(server, &path, json!({"issuance_enabled": false})).await;
    assert_eq!(switched.status, 200, "{}", switched.body);
    assert_eq!(switched.body["issuance_enabled"], false);
    let claims = setup
        .idp
        .claims(&server.issuer(setup.proxy), IDP_CLIENT, "alice");
    let assertion = setup.idp.mint(&claims);
    let refused = server
        .redeem(setup.proxy, AS_CLIENT, &secret, &assertion, &[])
        .await;
    assert!(
        refused.status().is_client_error(),
        "exchange with issuance off: {}",
        refused.status()
    );

    // Deleting the proxy removes it and its mappings.
    let deleted = delete(server, &path).await;
    assert_eq!(deleted.status, 204, "{}", deleted.body);
    assert_not_found(&get(server, &path).await, "deleted proxy");
    let mappings = get(server, &mappings_path(setup.proxy)).await;
    assert_not_found(&mappings, "mappings of a deleted proxy");
    assert_not_found(&delete(server, &path).await, "second delete");
    let stats = setup.stats(None).await;
    assert_eq!(mapping_counts(&stats), (0, 0), "{stats}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn proxy_create_rejects_bad_input() {
    let server = TestServer::start().await;
    let existing = server.add_proxy("proxy-a", json!({})).await;
    let before = stored_state(&server).await;

    let duplicate = post(
        &server,
        "/api/v1/proxies",
        json!({"name": "proxy-a", "kind": "mcp"}),
    )
    .await;
    assert_error(
        &duplicate,
        StatusCode::CONFLICT,
        "conflict",
        "duplicate name",
    );
    assert_unchanged(&server, &before, "the duplicate").await;

    let valid = json!({"name": "p", "kind": "mcp"});
    let resource = |uri: &str| with_member(&valid, "resource", json!(uri));
    let cases = vec![
        ("unknown kind", with_member(&valid, "kind", json!("grpc"))),
        ("missing kind", with_member(&valid, "kind", Value::Null)),
        ("empty name", with_member(&valid, "name", json!(""))),
        ("relative resource", resource("/tools")),
        (
            "resource with a fragment",
            resource("https://mcp.example.com/#x"),
        ),
        (
            "resource required but absent",
            with_member(&valid, "require_resource", json!(true)),
        ),
        (
            "unknown field",
            with_member(&valid, "issuer", json!("https://x.example.com")),
        ),
    ];
    assert_bodies_rejected(&server, Method::POST, "/api/v1/proxies", cases).await;

    let patches = vec![
        ("empty name", json!({"name": ""})),
        ("unknown field", json!({"kind": "llm"})),
        ("switch as text", json!({"issuance_enabled": "off"})),
    ];
    let path = format!("/api/v1/proxies/{existing}");
    assert_bodies_rejected(&server, Method::PATCH, &path, patches).await;

    let missing = [
        (Method::GET, None),
        (Method::PATCH, Some(json!({"name": "x"}))),
        (Method::DELETE, None),
    ];
    for (method, body) in missing {
        let case = format!("{method} of an unknown proxy");
        let reply = call(&server, method, "/api/v1/proxies/9999", body).await;
        assert_not_found(&reply, &case);
    }
    assert_bad_request(&get(&server, "/api/v1/proxies/abc").await, "non-numeric id");
    assert_unchanged(&server, &before, "rejected proxy requests").await;
    server.stop().await;
}

// ---- Tokens, lineage, audit, metrics ------------------------------------------------------

fn jtis(reply: &Reply) -> BTreeSet<String> {
    reply
        .body
        .as_array()
        .unwrap_or_else(|| panic!("not a token list: {}", reply.body))
        .iter()
        .map(|record| record["jti"].as_str().expect("jti").to_owned())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn token_listing_filters() {
    let setup = Setup::start().await;
    let server = &setup.server;
    let (_, secret) = setup.map_default_client().await;
    let (alice_1, _) = setup.redeem_default(&secret, "alice").await;
    let (alice_2, _) = setup.redeem_default(&secret, "alice").await;
    let (bob, _) = setup.redeem_default(&secret, "bob").await;
    let expired = setup.expired_claims(setup.proxy, "carol");
    let (carol, _) = setup
        .redeem_claims(setup.proxy, AS_CLIENT, &secret, &expired)
        .await;
    let revoked = post(server, "/api/v1/xaa/revoke-token", json!({"jti": alice_2})).await;
    assert_eq!(revoked.status, 200);

    let all = get(server, "/api/v1/xaa/tokens").await;
    assert_eq!(all.status, 200);
    let every = [&alice_1, &alice_2, &bob, &carol];
    assert_eq!(jtis(&all), every.into_iter().cloned().collect());
    let record = all
        .body
        .as_array()
        .expect("token list")
        .iter()
        .find(|record| record["jti"] == bob.as_str())
        .expect("bob's record");
    assert_eq!(record["subject"], "bob");
    assert_eq!(record["client_id"], IDP_CLIENT);
    assert_eq!(record["client_id_at_resource_as"], AS_CLIENT);
    assert_eq!(record["proxy_id"], setup.proxy);
    assert_eq!(record["idp_provider_id"], setup.provider);
    assert_eq!(record["presentation_count"], 1);
    assert_eq!(record["revocation"], Value::Null);

    let filters = [
        ("?subject=alice", vec![&alice_1, &alice_2]),
        ("?subject=nobody", vec![]),
        ("?status=active", vec![&alice_1, &bob]),
        ("?status=revoked", vec![&alice_2]),
        ("?status=expired", vec![&carol]),
        ("?subject=alice&status=active", vec![&alice_1]),
        ("?client_id=gateway-client&status=revoked", vec![&alice_2]),
        ("?proxy_id=9999", vec![]),
    ];
    for (query, expected) in filters {
        let reply = get(server, &format!("/api/v1/xaa/tokens{query}")).await;
        assert_eq!(reply.status, 200, "{query}: {}", reply.body);
        let expected: BTreeSet<String> = expected.into_iter().cloned().collect();
        assert_eq!(jtis(&reply), expected, "{query}");
    }
    let limited = get(server, "/api/v1/xaa/tokens?limit=2").await;
    assert_eq!(limited.body.as_array().map(Vec::len), Some(2));

    for query in [
        "?status=bogus",
        "?status=ACTIVE",
        "?limit=abc",
        "?proxy_id=x",
    ] {
        let reply = get(server, &format!("/api/v1/xaa/tokens{query}")).await;
        assert_bad_request(&reply, query);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn token_lineage_lists_access_tokens() {
    // Reuse until expiry lets one ID-JAG mint two access tokens.
    let setup = Setup::start_with(json!({"replay_policy": "reuse-until-expiry"})).await;
    let server = &setup.server;
    let (_, secret) = setup.map_default_client().await;
    let claims = setup
        .idp
        .claims(&server.issuer(setup.proxy), IDP_CLIENT, "alice");
    let (jti, first) = setup
        .redeem_claims(setup.proxy, AS_CLIENT, &secret, &claims)
        .await;
    let (_, second) = setup
        .redeem_claims(setup.proxy, AS_CLIENT, &secret, &claims)
        .await;

    let path = format!("/api/v1/xaa/tokens/{jti}");
    let lineage = get(server, &path).await;
    assert_eq!(lineage.status, 200, "{}", lineage.body);
    let entries = lineage.body.as_array().expect("lineage list");
    assert_eq!(entries.len(), 1, "{}", lineage.body);
    let id_jag = &entries[0]["id_jag"];
    assert_eq!(id_jag["jti"], jti.as_str());
    assert_eq!(id_jag["subject"], "alice");
    assert_eq!(id_jag["presentation_count"], 2);
    let access_tokens = entries[0]["access_tokens"]
        .as_array()
        .expect("access tokens");
    let mut listed = BTreeSet::new();
    for token in access_tokens {
        assert_eq!(token["id_jag_id"], id_jag["id"], "{token}");
        assert_eq!(token["client_id"], AS_CLIENT, "{token}");
        listed.insert(token["jti"].as_str().expect("jti").to_owned());
    }
    let mut minted = BTreeSet::new();
    for token in [&first, &second] {
        let introspected = setup.introspect(setup.proxy, token).await;
        minted.insert(introspected["jti"].as_str().expect("jti").to_owned());
    }
    assert_eq!(listed, minted);

    // Revoking the ID-JAG reaches every access token minted from it.
    let body = json!({"jti": jti, "reason": "lineage"});
    let revoked = post(server, "/api/v1/xaa/revoke-token", body).await;
    assert_eq!(revoked.status, 200);
    let lineage = get(server, &path).await;
    let access_tokens = lineage.body[0]["access_tokens"]
        .as_array()
        .expect("access tokens");
    for token in access_tokens {
        assert_eq!(token["revocation"]["reason"], "lineage", "{token}");
    }
    assert!(!setup.is_active(&first).await, "first access token active");
    assert!(
        !setup.is_active(&second).await,
        "second access token active"
    );

    let malformed = get(server, "/api/v1/xaa/tokens/not%20a%20jti!").await;
    assert_bad_request(&malformed, "bad JTI format");
    let unknown = get(server, &format!("/api/v1/xaa/tokens/{UNKNOWN_JTI}")).await;
    assert_not_found(&unknown, "unknown JTI");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn audit_query_filters() {
    let setup = Setup::start().await;
    let server = &setup.server;
    let (_, secret) = setup.map_default_client().await;
    let other = server.add_proxy("proxy-b", json!({})).await;
    setup.map_client(other, IDP_CLIENT, "other-client").await;
    let (jti, _) = setup.redeem_default(&secret, "alice").await;

    let all = get(server, "/api/v1/xaa/audit").await;
    assert_eq!(all.status, 200);
    let ids: Vec<i64> = all
        .body
        .as_array()
        .expect("audit list")
        .iter()
        .map(|event| event["id"].as_i64().expect("id"))
        .collect();
    assert!(
        ids.windows(2).all(|pair| pair[0] > pair[1]),
        "not newest first: {ids:?}"
    );

    let created = setup.audit("xaa_client_mapping_created").await;
    assert_eq!(created.len(), 2);
    assert!(
        created
            .iter()
            .all(|event| event["event_type"] == "xaa_client_mapping_created")
    );
    let exchanges = setup.audit("xaa_token_exchange").await;
    assert_eq!(exchanges.len(), 1);
    let fields = &exchanges[0]["fields"];
    assert_eq!(fields["jti"], jti.as_str());
    assert_eq!(fields["subject"], "alice");
    assert_eq!(fields["client_id"], IDP_CLIENT);
    assert_eq!(fields["scopes"], json!(["openid", "mcp:tools"]));

    let query = format!("?proxy_id={other}&event_type=xaa_client_mapping_created");
    let on_other = get(server, &format!("/api/v1/xaa/audit{query}")).await;
    let on_other = on_other.body.as_array().expect("audit list");
    assert_eq!(on_other.len(), 1);
    assert_eq!(on_other[0]["proxy_id"], other);

    let limited = get(server, "/api/v1/xaa/audit?limit=1").await;
    assert_eq!(limited.body.as_array().map(Vec::len), Some(1));
    assert_eq!(limited.body[0]["id"], ids[0]);
    let after = get(server, &format!("/api/v1/xaa/audit?after_id={}", ids[1])).await;
    assert_eq!(after.body.as_array().map(Vec::len), Some(1));

    for query in [
        "?event_type=bogus",
        "?event_type=XAA_TOKEN_EXCHANGE",
        "?limit=abc",
        "?proxy_id=x",
    ] {
        let reply = get(server, &format!("/api/v1/xaa/audit{query}")).await;
        assert_bad_request(&reply, query);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_count_exchanges() {
    let setup = Setup::start().await;
    let server = &setup.server;
    let (_, secret) = setup.map_default_client().await;
    let claims = setup
        .idp
        .claims(&server.issuer(setup.proxy), IDP_CLIENT, "alice");
    setup
        .redeem_claims(setup.proxy, AS_CLIENT, &secret, &claims)
        .await;
    let assertion = setup.idp.mint(&claims);
    let replay = server
        .redeem(setup.proxy, AS_CLIENT, &secret, &assertion, &[])
        .await;
    assert_eq!(replay.status(), 400);

    let response = server
        .http
        .get(format!("{}/metrics", server.admin_url))
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await
        .expect("metrics request");
    assert_eq!(response.status(), 200);
    let content_type = response.headers()["content-type"]
        .to_str()
        .expect("content type")
        .to_owned();
    assert!(
        content_type.starts_with("text/plain"),
        "content type {content_type:?}"
    );
    let text = response.text().await.expect("metrics text");
    for line in [
        "# TYPE xaa_exchanges_total counter",
        "xaa_exchanges_total{outcome=\"success\"} 1",
        "xaa_exchanges_total{outcome=\"failure\"} 1",
        "xaa_exchange_failures_total{reason=\"replayed\"} 1",
    ] {
        assert!(
            text.lines().any(|candidate| candidate == line),
            "{line:?} missing from:\n{text}"
        );
    }
}

/// Replaces every `{...}` path parameter with `{}`, so documents may name parameters freely.
fn blank_parameters(path: &str) -> String {
    let mut blanked = String::new();
    let mut in_parameter = false;
    for c in path.chars() {
        match c {
            '{' => {
                in_parameter = true;
                blanked.push_str("{}");
            }
            '}' => in_parameter = false,
            _ if !in_parameter => blanked.push(c),
            _ => {}
        }
    }
    blanked
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn openapi_lists_every_route() {
    let server = TestServer::start().await;
    let reply = get(&server, "/api/v1/openapi.json").await;
    assert_eq!(reply.status, 200);
    let paths = reply.body["paths"]
        .as_object()
        .unwrap_or_else(|| panic!("the OpenAPI document has no paths: {}", reply.body));
    let listed: BTreeSet<String> = paths.keys().map(|path| blank_parameters(path)).collect();
    for path in [
        "/api/v1/providers",
        "/api/v1/providers/{id}",
        "/api/v1/providers/{id}/refresh-keys",
        "/api/v1/proxies",
        "/api/v1/proxies/{id}",
        "/api/v1/proxies/{proxyId}/xaa/client-mappings",
        "/api/v1/proxies/{proxyId}/xaa/client-mappings/{mappingId}",
        "/api/v1/proxies/{proxyId}/xaa/stats",
        "/api/v1/xaa/stats",
        "/api/v1/xaa/revoke-token",
        "/api/v1/xaa/revoke-tokens-by-subject",
        "/api/v1/xaa/tokens",
        "/api/v1/xaa/tokens/{jti}",
        "/api/v1/xaa/audit",
    ] {
        assert!(
            listed.contains(&blank_parameters(path)),
            "{path} is not in the OpenAPI document"
        );
    }
    server.stop().await;
}
