//! The REST admin API over real HTTP: every endpoint, the JSON it returns, each error status it
//! documents, and that a rejected request leaves everything already stored unchanged.

mod common;

use std::collections::BTreeSet;

use common::idp::{Mode, TestIdp, unix_now};
use common::server::{ADMIN_TOKEN, TestServer};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

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

/// The member names of a JSON object.
fn keys(value: &Value) -> BTreeSet<&str> {
    value
        .as_object()
        .unwrap_or_else(|| panic!("not a JSON object: {value}"))
        .keys()
        .map(String::as_str)
        .collect()
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
        let refreshed = post(
            &server,
            &format!("/api/v1/providers/{provider}/refresh-keys"),
            json!({}),
        )
        .await;
        assert_eq!(refreshed.status, 200, "{}", refreshed.body);
        let proxy = server.add_proxy("proxy-a", json!({})).await;
        Self {
            idp,
            server,
            provider,
            proxy,
        }
    }

    /// Creates a mapping on `proxy` for this provider; returns its id and the secret, when the
    /// client is new.
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

    /// Mints an ID-JAG for `subject` at `proxy` and redeems it; returns the ID-JAG's `jti` and
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

    /// Introspects `token` at `proxy` as the gateway (admin bearer token), which sees every
    /// token of the proxy whichever client holds it.
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

    async fn stats(&self, proxy: Option<i64>) -> Value {
        let path = match proxy {
            Some(id) => format!("/api/v1/proxies/{id}/xaa/stats"),
            None => "/api/v1/xaa/stats".to_owned(),
        };
        let reply = get(&self.server, &path).await;
        assert_eq!(reply.status, 200, "{path}: {}", reply.body);
        reply.body
    }
}

/// What the admin API lists: providers, proxies, the mappings of each proxy, ID-JAG records and
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
        let url = format!("{}{path}", server.admin_url);
        let attempts = [
            ("no token", server.http.request(method.clone(), &url)),
            (
                "wrong token",
                server
                    .http
                    .request(method.clone(), &url)
                    .bearer_auth("test-admin-token-0123456788"),
            ),
            (
                "token as Basic credentials",
                server
                    .http
                    .request(method.clone(), &url)
                    .basic_auth(ADMIN_TOKEN, None::<&str>),
            ),
            (
                "token with a prefix",
                server
                    .http
                    .request(method.clone(), &url)
                    .bearer_auth(format!("x{ADMIN_TOKEN}")),
            ),
        ];
        for (case, request) in attempts {
            let reply = Reply::read(request.send().await.expect("request")).await;
            assert_error(
                &reply,
                StatusCode::UNAUTHORIZED,
                "unauthorized",
                &format!("{method} {path} with {case}"),
            );
        }
    }

    assert_eq!(
        stored_state(server).await,
        before,
        "unauthenticated requests changed stored data"
    );
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
    assert_error(&unknown, StatusCode::NOT_FOUND, "not_found", "unknown path");

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

// ---- Client mappings ----------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mapping_list_has_exact_fields() {
    let setup = Setup::start().await;
    let server = &setup.server;
    let created = server
        .add_mapping(
            setup.proxy,
            setup.provider,
            "0oa5x7y8z9abc123def",
            "gateway-mcp-proxy-001",
            &["openid", "profile", "email", "mcp:tools"],
        )
        .await;

    let listed = get(server, &mappings_path(setup.proxy)).await;
    assert_eq!(listed.status, 200);
    let list = listed.body.as_array().expect("mapping list");
    assert_eq!(list.len(), 1, "{}", listed.body);
    let mapping = &list[0];
    assert_eq!(
        keys(mapping),
        BTreeSet::from([
            "id",
            "idp_provider_id",
            "idp_provider_name",
            "client_id_at_idp",
            "client_id_at_resource_as",
            "allowed_scopes",
            "created_at",
        ]),
        "{mapping}"
    );
    assert_eq!(mapping["id"], created["id"]);
    assert_eq!(mapping["idp_provider_id"], setup.provider);
    assert_eq!(
        mapping["idp_provider_name"],
        format!("IdP {}", setup.idp.issuer())
    );
    assert_eq!(mapping["client_id_at_idp"], "0oa5x7y8z9abc123def");
    assert_eq!(mapping["client_id_at_resource_as"], "gateway-mcp-proxy-001");
    assert_eq!(
        mapping["allowed_scopes"],
        json!(["openid", "profile", "email", "mcp:tools"])
    );
    let created_at = mapping["created_at"].as_str().expect("created_at text");
    assert!(
        chrono::DateTime::parse_from_rfc3339(created_at).is_ok(),
        "created_at {created_at:?} is not RFC 3339"
    );

    // Another proxy's listing is empty, and an unknown proxy has none.
    let other = setup.server.add_proxy("proxy-b", json!({})).await;
    let empty = get(server, &mappings_path(other)).await;
    assert_eq!(empty.status, 200);
    assert_eq!(empty.body, json!([]));
    let unknown = get(server, &mappings_path(9999)).await;
    assert_error(
        &unknown,
        StatusCode::NOT_FOUND,
        "not_found",
        "unknown proxy",
    );
    let bad_id = get(server, "/api/v1/proxies/abc/xaa/client-mappings").await;
    assert_error(
        &bad_id,
        StatusCode::BAD_REQUEST,
        "invalid_request",
        "non-numeric proxy id",
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mapping_secret_only_for_new_client() {
    let setup = Setup::start().await;
    let server = &setup.server;
    let path = mappings_path(setup.proxy);

    let first = post(
        server,
        &path,
        mapping_body(
            setup.provider,
            "idp-client-1",
            "gateway-client",
            &["openid"],
        ),
    )
    .await;
    assert_eq!(first.status, 201, "{}", first.body);
    let secret = first.body["client_secret"]
        .as_str()
        .expect("a new client gets a secret");
    assert!(secret.len() >= 32, "secret {secret:?} is short");
    assert_eq!(first.body["client_id_at_idp"], "idp-client-1");
    assert_eq!(first.body["allowed_scopes"], json!(["openid"]));

    // The same client at the resource AS behind a second IdP-side client id: no new secret.
    let second = post(
        server,
        &path,
        mapping_body(
            setup.provider,
            "idp-client-2",
            "gateway-client",
            &["openid"],
        ),
    )
    .await;
    assert_eq!(second.status, 201, "{}", second.body);
    assert!(
        second.body.get("client_secret").is_none(),
        "existing client got a new secret: {}",
        second.body
    );

    // The first secret still authenticates for both mappings.
    for client_at_idp in ["idp-client-1", "idp-client-2"] {
        setup
            .redeem(
                setup.proxy,
                client_at_idp,
                "gateway-client",
                secret,
                "alice@example.com",
            )
            .await;
    }

    // A client of the same name on another proxy is a different client with its own secret.
    let other = server.add_proxy("proxy-b", json!({})).await;
    let elsewhere = post(
        server,
        &mappings_path(other),
        mapping_body(
            setup.provider,
            "idp-client-1",
            "gateway-client",
            &["openid"],
        ),
    )
    .await;
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mapping_create_rejects_bad_input() {
    let setup = Setup::start().await;
    let server = &setup.server;
    setup
        .map_client(setup.proxy, "idp-client", "gateway-client")
        .await;
    let path = mappings_path(setup.proxy);
    let provider = setup.provider;
    let before = stored_state(server).await;

    let cases = [
        (
            "empty client_id_at_idp",
            mapping_body(provider, "", "as-1", &["openid"]),
        ),
        (
            "blank client_id_at_idp",
            mapping_body(provider, "   ", "as-1", &["openid"]),
        ),
        (
            "empty client_id_at_resource_as",
            mapping_body(provider, "idp-1", "", &["openid"]),
        ),
        (
            "client id with a space",
            mapping_body(provider, "idp 1", "as-1", &["openid"]),
        ),
        (
            "client id with a control character",
            mapping_body(provider, "idp-1\u{7}", "as-1", &["openid"]),
        ),
        (
            "client id longer than 256 bytes",
            mapping_body(provider, &"x".repeat(257), "as-1", &["openid"]),
        ),
        (
            "scope with a double quote",
            mapping_body(provider, "idp-1", "as-1", &["a\"b"]),
        ),
        (
            "scope with a backslash",
            mapping_body(provider, "idp-1", "as-1", &["a\\b"]),
        ),
        (
            "two scopes in one element",
            mapping_body(provider, "idp-1", "as-1", &["openid", "a b"]),
        ),
        (
            "empty scope element",
            mapping_body(provider, "idp-1", "as-1", &["openid", ""]),
        ),
        (
            "non-ASCII scope",
            mapping_body(provider, "idp-1", "as-1", &["sc\u{f6}pe"]),
        ),
        (
            "empty scope list",
            mapping_body(provider, "idp-1", "as-1", &[]),
        ),
        (
            "scopes as one string",
            json!({"idp_provider_id": provider, "client_id_at_idp": "idp-1",
                   "client_id_at_resource_as": "as-1", "allowed_scopes": "openid profile"}),
        ),
        (
            "missing allowed_scopes",
            json!({"idp_provider_id": provider, "client_id_at_idp": "idp-1",
                   "client_id_at_resource_as": "as-1"}),
        ),
        (
            "missing idp_provider_id",
            json!({"client_id_at_idp": "idp-1", "client_id_at_resource_as": "as-1",
                   "allowed_scopes": ["openid"]}),
        ),
        (
            "provider id as a string",
            json!({"idp_provider_id": provider.to_string(), "client_id_at_idp": "idp-1",
                   "client_id_at_resource_as": "as-1", "allowed_scopes": ["openid"]}),
        ),
        (
            "unknown field",
            json!({"idp_provider_id": provider, "client_id_at_idp": "idp-1",
                   "client_id_at_resource_as": "as-1", "allowed_scopes": ["openid"],
                   "client_secret": "chosen-by-caller"}),
        ),
        ("JSON array body", json!([])),
    ];
    for (case, body) in cases {
        let reply = post(server, &path, body).await;
        assert_error(&reply, StatusCode::BAD_REQUEST, "invalid_request", case);
        assert_eq!(
            stored_state(server).await,
            before,
            "{case} changed stored data"
        );
    }

    let raw_cases = [
        ("text/plain body", Some("text/plain"), "openid"),
        ("no content type", None, r#"{"idp_provider_id": 1}"#),
        (
            "truncated JSON",
            Some("application/json"),
            r#"{"idp_provider_id": "#,
        ),
        ("empty JSON body", Some("application/json"), ""),
        (
            "form body",
            Some("application/x-www-form-urlencoded"),
            "idp_provider_id=1",
        ),
    ];
    for (case, content_type, body) in raw_cases {
        let reply = send_raw(server, Method::POST, &path, content_type, body).await;
        assert_error(&reply, StatusCode::BAD_REQUEST, "invalid_request", case);
        assert_eq!(
            stored_state(server).await,
            before,
            "{case} changed stored data"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mapping_create_not_found_conflict_disabled() {
    let setup = Setup::start().await;
    let server = &setup.server;
    let provider = setup.provider;
    let path = mappings_path(setup.proxy);
    setup
        .map_client(setup.proxy, "idp-client", "gateway-client")
        .await;
    let before = stored_state(server).await;

    let unknown_proxy = post(
        server,
        &mappings_path(9999),
        mapping_body(provider, "idp-2", "as-2", &["openid"]),
    )
    .await;
    assert_error(
        &unknown_proxy,
        StatusCode::NOT_FOUND,
        "not_found",
        "unknown proxy",
    );
    let unknown_provider = post(
        server,
        &path,
        mapping_body(9999, "idp-2", "as-2", &["openid"]),
    )
    .await;
    assert_error(
        &unknown_provider,
        StatusCode::NOT_FOUND,
        "not_found",
        "unknown provider",
    );
    for (case, proxy_segment) in [("non-numeric", "abc"), ("zero", "0"), ("negative", "-1")] {
        let reply = post(
            server,
            &format!("/api/v1/proxies/{proxy_segment}/xaa/client-mappings"),
            mapping_body(provider, "idp-2", "as-2", &["openid"]),
        )
        .await;
        assert_error(
            &reply,
            StatusCode::BAD_REQUEST,
            "invalid_request",
            &format!("{case} proxy id"),
        );
    }

    // Same proxy, provider and client id at IdP: a duplicate, whatever the other fields say.
    let duplicate = post(
        server,
        &path,
        mapping_body(provider, "idp-client", "another-client", &["profile"]),
    )
    .await;
    assert_error(
        &duplicate,
        StatusCode::CONFLICT,
        "conflict",
        "duplicate mapping",
    );
    assert!(
        duplicate.body["message"]
            .as_str()
            .unwrap_or_default()
            .contains("idp-client"),
        "the message names the duplicate: {}",
        duplicate.body
    );
    assert_eq!(
        stored_state(server).await,
        before,
        "rejections changed data"
    );

    // A disabled provider: 422, and nothing is created.
    let disabled = patch(
        server,
        &format!("/api/v1/providers/{provider}"),
        json!({"enabled": false}),
    )
    .await;
    assert_eq!(disabled.status, 200, "{}", disabled.body);
    assert_eq!(disabled.body["enabled"], false);
    let before = stored_state(server).await;
    let refused = post(
        server,
        &path,
        mapping_body(provider, "idp-3", "as-3", &["openid"]),
    )
    .await;
    assert_error(
        &refused,
        StatusCode::UNPROCESSABLE_ENTITY,
        "provider_disabled",
        "disabled provider",
    );
    assert_eq!(
        stored_state(server).await,
        before,
        "422 changed stored data"
    );

    // Enabled again, the same request succeeds.
    let enabled = patch(
        server,
        &format!("/api/v1/providers/{provider}"),
        json!({"enabled": true}),
    )
    .await;
    assert_eq!(enabled.status, 200);
    let accepted = post(
        server,
        &path,
        mapping_body(provider, "idp-3", "as-3", &["openid"]),
    )
    .await;
    assert_eq!(accepted.status, 201, "{}", accepted.body);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mapping_same_idp_client_other_provider() {
    let setup = Setup::start().await;
    let server = &setup.server;
    let second_idp = TestIdp::start().await;
    let second = server.add_provider(second_idp.issuer(), json!({})).await;
    setup
        .map_client(setup.proxy, "idp-client", "gateway-client")
        .await;

    // The uniqueness key is (proxy, provider, client id at IdP), so another provider may map
    // the same IdP-side client id.
    let reply = post(
        server,
        &mappings_path(setup.proxy),
        mapping_body(second, "idp-client", "gateway-client", &["openid"]),
    )
    .await;
    assert_eq!(reply.status, 201, "{}", reply.body);
    assert_eq!(reply.body["idp_provider_id"], second);
    let listed = get(server, &mappings_path(setup.proxy)).await;
    assert_eq!(listed.body.as_array().map(Vec::len), Some(2));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_mappings_share_new_client() {
    let setup = Setup::start().await;
    let server = &setup.server;
    let path = mappings_path(setup.proxy);

    // Several IdP-side client ids for one client at the resource AS, created at once: each
    // mapping is distinct, so all succeed, and exactly one response carries the new secret.
    let url = format!("{}{path}", server.admin_url);
    let tasks: Vec<_> = (0..4)
        .map(|index| {
            let request = server
                .http
                .post(&url)
                .bearer_auth(ADMIN_TOKEN)
                .json(&mapping_body(
                    setup.provider,
                    &format!("idp-client-{index}"),
                    "shared-client",
                    &["openid"],
                ));
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
        .redeem(
            setup.proxy,
            "idp-client-3",
            "shared-client",
            &secrets[0],
            "alice@example.com",
        )
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mapping_delete_statuses() {
    let setup = Setup::start().await;
    let server = &setup.server;
    let (mapping, secret) = setup
        .map_client(setup.proxy, "idp-client", "gateway-client")
        .await;
    let secret = secret.expect("new client secret");
    let (_, token) = setup
        .redeem(
            setup.proxy,
            "idp-client",
            "gateway-client",
            &secret,
            "alice@example.com",
        )
        .await;
    let other = server.add_proxy("proxy-b", json!({})).await;
    let before = stored_state(server).await;

    let path = format!("{}/{mapping}", mappings_path(setup.proxy));
    let rejected = [
        (
            "mapping of another proxy",
            format!("{}/{mapping}", mappings_path(other)),
            StatusCode::NOT_FOUND,
            "not_found",
        ),
        (
            "unknown proxy",
            format!("{}/{mapping}", mappings_path(9999)),
            StatusCode::NOT_FOUND,
            "not_found",
        ),
        (
            "unknown mapping",
            format!("{}/9999", mappings_path(setup.proxy)),
            StatusCode::NOT_FOUND,
            "not_found",
        ),
        (
            "non-numeric mapping id",
            format!("{}/abc", mappings_path(setup.proxy)),
            StatusCode::BAD_REQUEST,
            "invalid_request",
        ),
        (
            "non-numeric proxy id",
            format!("/api/v1/proxies/abc/xaa/client-mappings/{mapping}"),
            StatusCode::BAD_REQUEST,
            "invalid_request",
        ),
        (
            "mapping id with a fraction",
            format!("{}/1.5", mappings_path(setup.proxy)),
            StatusCode::BAD_REQUEST,
            "invalid_request",
        ),
    ];
    for (case, target, status, code) in rejected {
        let reply = delete(server, &target).await;
        assert_error(&reply, status, code, case);
        assert_eq!(
            stored_state(server).await,
            before,
            "{case} changed stored data"
        );
    }

    let deleted = delete(server, &path).await;
    assert_eq!(deleted.status, StatusCode::NO_CONTENT, "{}", deleted.body);
    assert_eq!(deleted.body, Value::Null, "204 has no body");
    let listed = get(server, &mappings_path(setup.proxy)).await;
    assert_eq!(listed.body, json!([]));

    let again = delete(server, &path).await;
    assert_error(&again, StatusCode::NOT_FOUND, "not_found", "second delete");

    // New exchanges for the client fail at once; the token issued before stays active.
    let claims = setup.idp.claims(
        &server.issuer(setup.proxy),
        "idp-client",
        "alice@example.com",
    );
    let refused = server
        .redeem(
            setup.proxy,
            "gateway-client",
            &secret,
            &setup.idp.mint(&claims),
            &[],
        )
        .await;
    assert!(
        refused.status().is_client_error(),
        "exchange after delete: {}",
        refused.status()
    );
    let introspected = setup.introspect(setup.proxy, &token).await;
    assert_eq!(introspected["active"], true, "{introspected}");

    // Both operator actions are in the audit log.
    let created = get(
        server,
        "/api/v1/xaa/audit?event_type=xaa_client_mapping_created",
    )
    .await;
    let created_event = &created.body[0];
    assert_eq!(created_event["fields"]["proxy_id"], setup.proxy);
    assert_eq!(created_event["fields"]["idp_provider_id"], setup.provider);
    assert_eq!(created_event["fields"]["client_id_at_idp"], "idp-client");
    assert_eq!(
        created_event["fields"]["allowed_scopes"],
        json!(["openid", "mcp:tools"])
    );
    let deleted_events = get(
        server,
        "/api/v1/xaa/audit?event_type=xaa_client_mapping_deleted",
    )
    .await;
    let deleted_list = deleted_events.body.as_array().expect("audit list");
    assert_eq!(deleted_list.len(), 1, "{}", deleted_events.body);
    assert_eq!(deleted_list[0]["fields"]["proxy_id"], setup.proxy);
    assert_eq!(deleted_list[0]["fields"]["mapping_id"], mapping);
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
    assert_error(
        &unknown,
        StatusCode::NOT_FOUND,
        "not_found",
        "unknown proxy",
    );
    let bad = get(&server, "/api/v1/proxies/abc/xaa/stats").await;
    assert_error(
        &bad,
        StatusCode::BAD_REQUEST,
        "invalid_request",
        "non-numeric proxy",
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stats_follow_changes() {
    let setup = Setup::start().await;
    let server = &setup.server;
    let proxy_a = setup.proxy;
    let proxy_b = server.add_proxy("proxy-b", json!({})).await;

    // Key sets: the IdP publishes an RSA and a P-256 key.
    let stats = setup.stats(None).await;
    assert_stats_shape(&stats);
    assert_eq!(stats["jwks_cache"]["total_providers"], 1, "{stats}");
    assert_eq!(stats["jwks_cache"]["total_keys"], 2, "{stats}");
    timestamp(&stats["jwks_cache"]["last_updated"]);

    // A second provider with its own keys.
    let second_idp = TestIdp::start().await;
    let second = server.add_provider(second_idp.issuer(), json!({})).await;
    let refreshed = post(
        server,
        &format!("/api/v1/providers/{second}/refresh-keys"),
        json!({}),
    )
    .await;
    assert_eq!(refreshed.body["key_count"], 2, "{}", refreshed.body);
    let stats = setup.stats(None).await;
    assert_eq!(stats["jwks_cache"]["total_providers"], 2, "{stats}");
    assert_eq!(stats["jwks_cache"]["total_keys"], 4, "{stats}");

    // Mappings: two on proxy A (one provider), one on proxy B (the second provider).
    let (mapping_a1, secret) = setup.map_client(proxy_a, "idp-1", "client-a").await;
    let secret = secret.expect("secret");
    setup.map_client(proxy_a, "idp-2", "client-a").await;
    let created_b = server
        .add_mapping(proxy_b, second, "idp-1", "client-b", &["openid"])
        .await;
    let stats = setup.stats(None).await;
    assert_eq!(mapping_counts(&stats), (3, 2), "{stats}");
    let mapping_updated = timestamp(&stats["client_mappings"]["last_updated"]);
    assert_eq!(mapping_counts(&setup.stats(Some(proxy_a)).await), (2, 1));
    assert_eq!(mapping_counts(&setup.stats(Some(proxy_b)).await), (1, 1));
    assert_eq!(token_counts(&stats), (0, 0, 0));

    // Exchanges: three ID-JAGs on proxy A, none on B.
    let first_claims = setup.idp.claims(&server.issuer(proxy_a), "idp-1", "alice");
    let (jti_1, _) = setup
        .redeem_claims(proxy_a, "client-a", &secret, &first_claims)
        .await;
    setup
        .redeem(proxy_a, "idp-2", "client-a", &secret, "alice")
        .await;
    setup
        .redeem(proxy_a, "idp-1", "client-a", &secret, "bob")
        .await;
    let stats = setup.stats(None).await;
    assert_eq!(token_counts(&stats), (3, 3, 0), "{stats}");
    let last_token = timestamp(&stats["id_jag_tokens"]["last_token_at"]);
    assert_eq!(token_counts(&setup.stats(Some(proxy_a)).await), (3, 3, 0));
    let stats_b = setup.stats(Some(proxy_b)).await;
    assert_eq!(token_counts(&stats_b), (0, 0, 0), "{stats_b}");
    assert_eq!(stats_b["id_jag_tokens"]["last_token_at"], Value::Null);

    // A rejected replay changes no figure.
    let replay = server
        .redeem(
            proxy_a,
            "client-a",
            &secret,
            &setup.idp.mint(&first_claims),
            &[],
        )
        .await;
    assert_eq!(replay.status(), 400);
    let stats = setup.stats(None).await;
    assert_eq!(token_counts(&stats), (3, 3, 0), "{stats}");

    // An ID-JAG already past `exp` but inside the leeway is redeemed, counted in the total
    // and never active.
    let mut expired = setup.idp.claims(&server.issuer(proxy_a), "idp-1", "dave");
    expired["iat"] = json!(unix_now() - 30);
    expired["exp"] = json!(unix_now() - 10);
    setup
        .redeem_claims(proxy_a, "client-a", &secret, &expired)
        .await;
    let stats = setup.stats(None).await;
    assert_eq!(token_counts(&stats), (4, 3, 0), "{stats}");

    // Revocation by JTI moves one token from active to revoked; revoking again moves nothing.
    let generation = stats["revocation_generation"].as_i64();
    for _ in 0..2 {
        let revoked = post(server, "/api/v1/xaa/revoke-token", json!({"jti": jti_1})).await;
        assert_eq!(revoked.status, 200, "{}", revoked.body);
        let stats = setup.stats(None).await;
        assert_eq!(token_counts(&stats), (4, 2, 1), "{stats}");
    }
    let stats = setup.stats(None).await;
    if let (Some(before), Some(after)) = (generation, stats["revocation_generation"].as_i64()) {
        assert!(after > before, "revocation generation stayed at {before}");
    }

    // Revocation by subject: alice's remaining token (bob and dave keep theirs).
    let by_subject = post(
        server,
        "/api/v1/xaa/revoke-tokens-by-subject",
        json!({"idp_provider_id": setup.provider, "subject": "alice"}),
    )
    .await;
    assert_eq!(by_subject.body["revoked_count"], 1, "{}", by_subject.body);
    let stats = setup.stats(Some(proxy_a)).await;
    assert_eq!(token_counts(&stats), (4, 1, 2), "{stats}");
    assert!(timestamp(&stats["id_jag_tokens"]["last_token_at"]) >= last_token);

    // Deleting a mapping lowers the count and moves "last updated".
    let deleted = delete(server, &format!("{}/{mapping_a1}", mappings_path(proxy_a))).await;
    assert_eq!(deleted.status, 204);
    let stats = setup.stats(None).await;
    assert_eq!(mapping_counts(&stats), (2, 2), "{stats}");
    assert!(timestamp(&stats["client_mappings"]["last_updated"]) >= mapping_updated);
    let mapping_b = created_b["id"].as_i64().expect("id");
    let deleted = delete(server, &format!("{}/{mapping_b}", mappings_path(proxy_b))).await;
    assert_eq!(deleted.status, 204);
    let stats = setup.stats(None).await;
    assert_eq!(mapping_counts(&stats), (1, 1), "{stats}");
    let stats_b = setup.stats(Some(proxy_b)).await;
    assert_eq!(mapping_counts(&stats_b), (0, 0), "{stats_b}");
    assert!(
        stats_b["client_mappings"]["last_updated"].is_string(),
        "a deletion is a mapping change: {stats_b}"
    );

    // Deleting the second provider removes its cached keys from the figures.
    let removed = delete(server, &format!("/api/v1/providers/{second}")).await;
    assert_eq!(removed.status, 204, "{}", removed.body);
    let stats = setup.stats(None).await;
    assert_eq!(stats["jwks_cache"]["total_providers"], 1, "{stats}");
    assert_eq!(stats["jwks_cache"]["total_keys"], 2, "{stats}");
}

// ---- Revocation ---------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revoke_token_statuses() {
    let setup = Setup::start().await;
    let server = &setup.server;
    let (_, secret) = setup
        .map_client(setup.proxy, "idp-client", "gateway-client")
        .await;
    let secret = secret.expect("secret");
    let (jti, token) = setup
        .redeem(
            setup.proxy,
            "idp-client",
            "gateway-client",
            &secret,
            "alice",
        )
        .await;

    let revoked = post(
        server,
        "/api/v1/xaa/revoke-token",
        json!({"jti": jti, "reason": "Security incident #12345", "revoked_by": "secops"}),
    )
    .await;
    assert_eq!(revoked.status, 200, "{}", revoked.body);
    assert_eq!(revoked.body["jti"], jti.as_str());
    assert_eq!(revoked.body["revoked"], true);
    assert_eq!(revoked.body["already_revoked"], false);
    assert_eq!(
        setup.introspect(setup.proxy, &token).await,
        json!({"active": false})
    );

    // Revoking again succeeds and says so; the first reason stays.
    let again = post(
        server,
        "/api/v1/xaa/revoke-token",
        json!({"jti": jti, "reason": "second try", "revoked_by": "someone-else"}),
    )
    .await;
    assert_eq!(again.status, 200, "{}", again.body);
    assert_eq!(again.body["already_revoked"], true);
    let lineage = get(server, &format!("/api/v1/xaa/tokens/{jti}")).await;
    let revocation = &lineage.body[0]["id_jag"]["revocation"];
    assert_eq!(revocation["reason"], "Security incident #12345");
    assert_eq!(revocation["revoked_by"], "secops");

    // Reason and revoked_by are optional.
    let (bare_jti, _) = setup
        .redeem(setup.proxy, "idp-client", "gateway-client", &secret, "bob")
        .await;
    let bare = post(server, "/api/v1/xaa/revoke-token", json!({"jti": bare_jti})).await;
    assert_eq!(bare.status, 200, "{}", bare.body);
    assert_eq!(bare.body["already_revoked"], false);

    // The JTI of an access token is revoked too.
    let (_, access_token) = setup
        .redeem(
            setup.proxy,
            "idp-client",
            "gateway-client",
            &secret,
            "carol",
        )
        .await;
    let access_jti = setup.introspect(setup.proxy, &access_token).await["jti"]
        .as_str()
        .expect("introspected jti")
        .to_owned();
    let by_access_jti = post(
        server,
        "/api/v1/xaa/revoke-token",
        json!({"jti": access_jti}),
    )
    .await;
    assert_eq!(by_access_jti.status, 200, "{}", by_access_jti.body);
    assert_eq!(
        setup.introspect(setup.proxy, &access_token).await,
        json!({"active": false})
    );

    // The audit log records the first revocation with its fields.
    let audit = get(server, "/api/v1/xaa/audit?event_type=xaa_token_revoked").await;
    let first = audit
        .body
        .as_array()
        .expect("audit list")
        .iter()
        .find(|event| event["fields"]["reason"] == "Security incident #12345")
        .unwrap_or_else(|| panic!("no audit event for the first revocation: {}", audit.body));
    assert_eq!(first["fields"]["jti"], jti.as_str());
    assert_eq!(first["fields"]["revoked_by"], "secops");

    // Rejected requests.
    let before = stored_state(server).await;
    let bad_requests = [
        ("JTI with a space and '!'", json!({"jti": "not a jti!"})),
        ("empty JTI", json!({"jti": ""})),
        ("JTI with a quote", json!({"jti": "abc\"def"})),
        ("JTI longer than 256", json!({"jti": "a".repeat(257)})),
        ("missing JTI", json!({"reason": "x"})),
        ("JTI as a number", json!({"jti": 12345})),
        (
            "unknown field",
            json!({"jti": jti, "reason": "x", "comment": "x"}),
        ),
        (
            "reason with a control character",
            json!({"jti": jti, "reason": "a\u{1b}[2Jb"}),
        ),
    ];
    for (case, body) in bad_requests {
        let reply = post(server, "/api/v1/xaa/revoke-token", body).await;
        assert_error(&reply, StatusCode::BAD_REQUEST, "invalid_request", case);
        assert_eq!(
            stored_state(server).await,
            before,
            "{case} changed stored data"
        );
    }
    let non_json = send_raw(
        server,
        Method::POST,
        "/api/v1/xaa/revoke-token",
        Some("text/plain"),
        "550e8400-e29b-41d4-a716-446655440000",
    )
    .await;
    assert_error(
        &non_json,
        StatusCode::BAD_REQUEST,
        "invalid_request",
        "text body",
    );
    for unknown in ["550e8400-e29b-41d4-a716-446655440000", "dGVzdC1qdGk"] {
        let reply = post(server, "/api/v1/xaa/revoke-token", json!({"jti": unknown})).await;
        assert_error(&reply, StatusCode::NOT_FOUND, "not_found", unknown);
    }
    assert_eq!(
        stored_state(server).await,
        before,
        "rejections changed data"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revoke_by_subject_statuses() {
    let setup = Setup::start().await;
    let server = &setup.server;
    let (_, secret) = setup
        .map_client(setup.proxy, "idp-client", "gateway-client")
        .await;
    let secret = secret.expect("secret");
    let mut alice_tokens = Vec::new();
    for _ in 0..2 {
        let (_, token) = setup
            .redeem(
                setup.proxy,
                "idp-client",
                "gateway-client",
                &secret,
                "alice@example.com",
            )
            .await;
        alice_tokens.push(token);
    }
    let (_, bob_token) = setup
        .redeem(
            setup.proxy,
            "idp-client",
            "gateway-client",
            &secret,
            "bob@example.com",
        )
        .await;

    let revoked = post(
        server,
        "/api/v1/xaa/revoke-tokens-by-subject",
        json!({"idp_provider_id": setup.provider, "subject": "alice@example.com",
               "reason": "User offboarding", "revoked_by": "admin@example.com"}),
    )
    .await;
    assert_eq!(revoked.status, 200, "{}", revoked.body);
    assert_eq!(revoked.body["revoked_count"], 2, "{}", revoked.body);
    assert_eq!(revoked.body["subject"], "alice@example.com");
    assert_eq!(revoked.body["idp_provider_id"], setup.provider);
    for token in &alice_tokens {
        assert_eq!(
            setup.introspect(setup.proxy, token).await,
            json!({"active": false})
        );
    }
    assert_eq!(
        setup.introspect(setup.proxy, &bob_token).await["active"],
        true
    );

    // Nothing left to revoke: a count of zero. Optional fields may be left out.
    let again = post(
        server,
        "/api/v1/xaa/revoke-tokens-by-subject",
        json!({"idp_provider_id": setup.provider, "subject": "alice@example.com"}),
    )
    .await;
    assert_eq!(again.status, 200, "{}", again.body);
    assert_eq!(again.body["revoked_count"], 0);
    let nobody = post(
        server,
        "/api/v1/xaa/revoke-tokens-by-subject",
        json!({"idp_provider_id": setup.provider, "subject": "nobody@example.com"}),
    )
    .await;
    assert_eq!(nobody.status, 200, "{}", nobody.body);
    assert_eq!(nobody.body["revoked_count"], 0);

    let audit = get(
        server,
        "/api/v1/xaa/audit?event_type=xaa_tokens_revoked_by_subject",
    )
    .await;
    let first = audit
        .body
        .as_array()
        .expect("audit list")
        .iter()
        .find(|event| event["fields"]["count"] == 2)
        .unwrap_or_else(|| panic!("no audit event with count 2: {}", audit.body));
    assert_eq!(first["fields"]["subject"], "alice@example.com");
    assert_eq!(first["fields"]["idp_provider_id"], setup.provider);
    assert_eq!(first["fields"]["revoked_by"], "admin@example.com");

    let before = stored_state(server).await;
    let bad_requests = [
        (
            "empty subject",
            json!({"idp_provider_id": setup.provider, "subject": ""}),
        ),
        (
            "blank subject",
            json!({"idp_provider_id": setup.provider, "subject": "  "}),
        ),
        ("missing provider", json!({"subject": "bob@example.com"})),
        (
            "missing subject",
            json!({"idp_provider_id": setup.provider}),
        ),
        (
            "unknown field",
            json!({"idp_provider_id": setup.provider, "subject": "bob@example.com",
                   "all": true}),
        ),
    ];
    for (case, body) in bad_requests {
        let reply = post(server, "/api/v1/xaa/revoke-tokens-by-subject", body).await;
        assert_error(&reply, StatusCode::BAD_REQUEST, "invalid_request", case);
        assert_eq!(
            stored_state(server).await,
            before,
            "{case} changed stored data"
        );
    }
    let unknown = post(
        server,
        "/api/v1/xaa/revoke-tokens-by-subject",
        json!({"idp_provider_id": 9999, "subject": "bob@example.com"}),
    )
    .await;
    assert_error(
        &unknown,
        StatusCode::NOT_FOUND,
        "not_found",
        "unknown provider",
    );
    assert_eq!(
        stored_state(server).await,
        before,
        "404 changed stored data"
    );
    assert_eq!(
        setup.introspect(setup.proxy, &bob_token).await["active"],
        true
    );
}

// ---- Providers ----------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn provider_lifecycle() {
    let idp = TestIdp::start().await;
    let server = TestServer::start().await;
    let empty = get(&server, "/api/v1/providers").await;
    assert_eq!(empty.status, 200);
    assert_eq!(empty.body, json!([]));

    let created = post(
        &server,
        "/api/v1/providers",
        json!({"name": "Okta Production", "kind": "okta", "issuer": idp.issuer(),
               "jwks_uri": idp.jwks_uri()}),
    )
    .await;
    assert_eq!(created.status, 201, "{}", created.body);
    let id = created.body["id"].as_i64().expect("provider id");
    assert_eq!(created.body["name"], "Okta Production");
    assert_eq!(created.body["kind"], "okta");
    assert_eq!(created.body["issuer"], idp.issuer());
    assert_eq!(created.body["jwks_uri"], idp.jwks_uri());
    assert_eq!(created.body["enabled"], true);

    let listed = get(&server, "/api/v1/providers").await;
    assert_eq!(listed.body, json!([created.body.clone()]));
    let one = get(&server, &format!("/api/v1/providers/{id}")).await;
    assert_eq!(one.status, 200);
    assert_eq!(one.body, created.body);

    let refreshed = post(
        &server,
        &format!("/api/v1/providers/{id}/refresh-keys"),
        json!({}),
    )
    .await;
    assert_eq!(refreshed.status, 200, "{}", refreshed.body);
    assert_eq!(refreshed.body["idp_provider_id"], id);
    assert_eq!(refreshed.body["key_count"], 2);

    let disabled = patch(
        &server,
        &format!("/api/v1/providers/{id}"),
        json!({"enabled": false}),
    )
    .await;
    assert_eq!(disabled.status, 200, "{}", disabled.body);
    assert_eq!(disabled.body["enabled"], false);
    assert_eq!(disabled.body["issuer"], idp.issuer());
    let reread = get(&server, &format!("/api/v1/providers/{id}")).await;
    assert_eq!(reread.body["enabled"], false);
    let renamed = patch(
        &server,
        &format!("/api/v1/providers/{id}"),
        json!({"name": "Okta Staging", "enabled": true}),
    )
    .await;
    assert_eq!(renamed.status, 200, "{}", renamed.body);
    assert_eq!(renamed.body["name"], "Okta Staging");
    assert_eq!(renamed.body["enabled"], true);

    // A provider with mappings cannot be deleted.
    let proxy = server.add_proxy("proxy-a", json!({})).await;
    let mapping = server
        .add_mapping(proxy, id, "idp-client", "gateway-client", &["openid"])
        .await;
    let before = stored_state(&server).await;
    let in_use = delete(&server, &format!("/api/v1/providers/{id}")).await;
    assert_error(&in_use, StatusCode::CONFLICT, "conflict", "provider in use");
    assert_eq!(
        stored_state(&server).await,
        before,
        "409 changed stored data"
    );

    let mapping_id = mapping["id"].as_i64().expect("mapping id");
    let unmapped = delete(&server, &format!("{}/{mapping_id}", mappings_path(proxy))).await;
    assert_eq!(unmapped.status, 204);
    let deleted = delete(&server, &format!("/api/v1/providers/{id}")).await;
    assert_eq!(deleted.status, 204, "{}", deleted.body);
    assert_eq!(deleted.body, Value::Null);
    let gone = get(&server, &format!("/api/v1/providers/{id}")).await;
    assert_error(
        &gone,
        StatusCode::NOT_FOUND,
        "not_found",
        "deleted provider",
    );
    let again = delete(&server, &format!("/api/v1/providers/{id}")).await;
    assert_error(&again, StatusCode::NOT_FOUND, "not_found", "second delete");
    assert_eq!(
        get(&server, "/api/v1/providers").await.body,
        json!([]),
        "the deleted provider is still listed"
    );
    server.stop().await;
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
        let reply = call(&server, method, path, body).await;
        assert_error(&reply, StatusCode::NOT_FOUND, "not_found", &case);
    }
    for path in ["/api/v1/providers/abc", "/api/v1/providers/0"] {
        let reply = get(&server, path).await;
        assert_error(&reply, StatusCode::BAD_REQUEST, "invalid_request", path);
    }
    server.stop().await;
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
        assert_eq!(
            stored_state(&server).await,
            before,
            "{case} changed stored data"
        );
    }

    let invalid = [
        (
            "issuer that is not a URL",
            json!({"name": "p", "kind": "oidc", "issuer": "not a url"}),
        ),
        (
            "relative issuer",
            json!({"name": "p", "kind": "oidc", "issuer": "/oauth2/default"}),
        ),
        (
            "http issuer off loopback",
            json!({"name": "p", "kind": "oidc", "issuer": "http://idp.example.com"}),
        ),
        (
            "ftp issuer",
            json!({"name": "p", "kind": "oidc", "issuer": "ftp://idp.example.com"}),
        ),
        (
            "http jwks_uri off loopback",
            json!({"name": "p", "kind": "oidc", "issuer": "https://idp.example.com",
                   "jwks_uri": "http://idp.example.com/keys"}),
        ),
        (
            "HMAC algorithm",
            json!({"name": "p", "kind": "oidc", "issuer": "https://idp.example.com",
                   "allowed_algs": ["HS256"]}),
        ),
        (
            "alg none",
            json!({"name": "p", "kind": "oidc", "issuer": "https://idp.example.com",
                   "allowed_algs": ["none"]}),
        ),
        (
            "unknown algorithm",
            json!({"name": "p", "kind": "oidc", "issuer": "https://idp.example.com",
                   "allowed_algs": ["RS256", "XYZ999"]}),
        ),
        (
            "empty algorithm list",
            json!({"name": "p", "kind": "oidc", "issuer": "https://idp.example.com",
                   "allowed_algs": []}),
        ),
        (
            "unknown kind",
            json!({"name": "p", "kind": "saml", "issuer": "https://idp.example.com"}),
        ),
        (
            "unknown replay policy",
            json!({"name": "p", "kind": "oidc", "issuer": "https://idp.example.com",
                   "replay_policy": "sometimes"}),
        ),
        (
            "leeway over 300 s",
            json!({"name": "p", "kind": "oidc", "issuer": "https://idp.example.com",
                   "leeway_secs": 301}),
        ),
        (
            "empty name",
            json!({"name": "", "kind": "oidc", "issuer": "https://idp.example.com"}),
        ),
        ("missing issuer", json!({"name": "p", "kind": "oidc"})),
        (
            "unknown field",
            json!({"name": "p", "kind": "oidc", "issuer": "https://idp.example.com",
                   "client_secret": "x"}),
        ),
    ];
    for (case, body) in invalid {
        let reply = post(&server, "/api/v1/providers", body).await;
        assert_error(&reply, StatusCode::BAD_REQUEST, "invalid_request", case);
        assert_eq!(
            stored_state(&server).await,
            before,
            "{case} changed stored data"
        );
    }

    let bad_patches = [
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
    for (case, body) in bad_patches {
        let reply = patch(&server, &format!("/api/v1/providers/{existing}"), body).await;
        assert_error(&reply, StatusCode::BAD_REQUEST, "invalid_request", case);
        assert_eq!(
            stored_state(&server).await,
            before,
            "{case} changed stored data"
        );
    }
    let non_json = send_raw(
        &server,
        Method::POST,
        "/api/v1/providers",
        Some("text/plain"),
        "name=p",
    )
    .await;
    assert_error(
        &non_json,
        StatusCode::BAD_REQUEST,
        "invalid_request",
        "text body",
    );
    assert_eq!(stored_state(&server).await, before);
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

    let reply = post(
        &server,
        &format!("/api/v1/providers/{provider}/refresh-keys"),
        json!({}),
    )
    .await;
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
async fn proxy_lifecycle() {
    let setup = Setup::start().await;
    let server = &setup.server;

    let created = post(
        server,
        "/api/v1/proxies",
        json!({"name": "mcp-tools", "kind": "mcp", "resource": "https://mcp.example.com/tools"}),
    )
    .await;
    assert_eq!(created.status, 201, "{}", created.body);
    let id = created.body["id"].as_i64().expect("proxy id");
    assert_eq!(created.body["name"], "mcp-tools");
    assert_eq!(created.body["kind"], "mcp");
    assert_eq!(created.body["resource"], "https://mcp.example.com/tools");
    assert_proxy_endpoints(server, &created.body);

    let listed = get(server, "/api/v1/proxies").await;
    assert_eq!(listed.status, 200);
    let list = listed.body.as_array().expect("proxy list");
    assert_eq!(list.len(), 2, "{}", listed.body);
    for proxy in list {
        assert_proxy_endpoints(server, proxy);
    }

    let one = get(server, &format!("/api/v1/proxies/{id}")).await;
    assert_eq!(one.status, 200);
    assert_eq!(one.body, created.body);

    let renamed = patch(
        server,
        &format!("/api/v1/proxies/{id}"),
        json!({"name": "mcp-tools-eu"}),
    )
    .await;
    assert_eq!(renamed.status, 200, "{}", renamed.body);
    assert_eq!(renamed.body["name"], "mcp-tools-eu");
    assert_eq!(renamed.body["kind"], "mcp");
    assert_proxy_endpoints(server, &renamed.body);

    // The issuance kill switch stops exchanges at this proxy.
    let (_, secret) = setup.map_client(id, "idp-client", "gateway-client").await;
    let secret = secret.expect("secret");
    let switched = patch(
        server,
        &format!("/api/v1/proxies/{id}"),
        json!({"issuance_enabled": false}),
    )
    .await;
    assert_eq!(switched.status, 200, "{}", switched.body);
    assert_eq!(switched.body["issuance_enabled"], false);
    let mut claims = setup.idp.claims(&server.issuer(id), "idp-client", "alice");
    claims["resource"] = json!("https://mcp.example.com/tools");
    let refused = server
        .redeem(id, "gateway-client", &secret, &setup.idp.mint(&claims), &[])
        .await;
    assert!(
        refused.status().is_client_error(),
        "exchange with issuance off: {}",
        refused.status()
    );

    // Deleting the proxy removes it and its mappings.
    let deleted = delete(server, &format!("/api/v1/proxies/{id}")).await;
    assert_eq!(deleted.status, 204, "{}", deleted.body);
    let gone = get(server, &format!("/api/v1/proxies/{id}")).await;
    assert_error(&gone, StatusCode::NOT_FOUND, "not_found", "deleted proxy");
    let mappings = get(server, &mappings_path(id)).await;
    assert_error(
        &mappings,
        StatusCode::NOT_FOUND,
        "not_found",
        "mappings of a deleted proxy",
    );
    let again = delete(server, &format!("/api/v1/proxies/{id}")).await;
    assert_error(&again, StatusCode::NOT_FOUND, "not_found", "second delete");
    let stats = get(server, "/api/v1/xaa/stats").await;
    assert_eq!(mapping_counts(&stats.body), (0, 0), "{}", stats.body);
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
    assert_eq!(stored_state(&server).await, before);

    let invalid = [
        ("unknown kind", json!({"name": "p", "kind": "grpc"})),
        ("missing kind", json!({"name": "p"})),
        ("empty name", json!({"name": "", "kind": "mcp"})),
        (
            "relative resource",
            json!({"name": "p", "kind": "mcp", "resource": "/tools"}),
        ),
        (
            "resource with a fragment",
            json!({"name": "p", "kind": "mcp", "resource": "https://mcp.example.com/#x"}),
        ),
        (
            "resource required but absent",
            json!({"name": "p", "kind": "mcp", "require_resource": true}),
        ),
        (
            "unknown field",
            json!({"name": "p", "kind": "mcp", "issuer": "https://x.example.com"}),
        ),
    ];
    for (case, body) in invalid {
        let reply = post(&server, "/api/v1/proxies", body).await;
        assert_error(&reply, StatusCode::BAD_REQUEST, "invalid_request", case);
        assert_eq!(
            stored_state(&server).await,
            before,
            "{case} changed stored data"
        );
    }

    let bad_patches = [
        ("empty name", json!({"name": ""})),
        ("unknown field", json!({"kind": "llm"})),
        ("switch as text", json!({"issuance_enabled": "off"})),
    ];
    for (case, body) in bad_patches {
        let reply = patch(&server, &format!("/api/v1/proxies/{existing}"), body).await;
        assert_error(&reply, StatusCode::BAD_REQUEST, "invalid_request", case);
        assert_eq!(
            stored_state(&server).await,
            before,
            "{case} changed stored data"
        );
    }
    let missing = [
        (Method::GET, "/api/v1/proxies/9999", None),
        (
            Method::PATCH,
            "/api/v1/proxies/9999",
            Some(json!({"name": "x"})),
        ),
        (Method::DELETE, "/api/v1/proxies/9999", None),
    ];
    for (method, path, body) in missing {
        let case = format!("{method} {path}");
        let reply = call(&server, method, path, body).await;
        assert_error(&reply, StatusCode::NOT_FOUND, "not_found", &case);
    }
    let bad_id = get(&server, "/api/v1/proxies/abc").await;
    assert_error(
        &bad_id,
        StatusCode::BAD_REQUEST,
        "invalid_request",
        "non-numeric id",
    );
    assert_eq!(stored_state(&server).await, before);
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
    let (_, secret) = setup
        .map_client(setup.proxy, "idp-client", "gateway-client")
        .await;
    let secret = secret.expect("secret");
    let redeem = |subject: &'static str| {
        setup.redeem(
            setup.proxy,
            "idp-client",
            "gateway-client",
            &secret,
            subject,
        )
    };
    let (alice_1, _) = redeem("alice").await;
    let (alice_2, _) = redeem("alice").await;
    let (bob, _) = redeem("bob").await;
    let mut expired_claims = setup
        .idp
        .claims(&server.issuer(setup.proxy), "idp-client", "carol");
    expired_claims["iat"] = json!(unix_now() - 30);
    expired_claims["exp"] = json!(unix_now() - 10);
    let (carol, _) = setup
        .redeem_claims(setup.proxy, "gateway-client", &secret, &expired_claims)
        .await;
    let revoked = post(server, "/api/v1/xaa/revoke-token", json!({"jti": alice_2})).await;
    assert_eq!(revoked.status, 200);

    let all = get(server, "/api/v1/xaa/tokens").await;
    assert_eq!(all.status, 200);
    assert_eq!(
        jtis(&all),
        BTreeSet::from([alice_1.clone(), alice_2.clone(), bob.clone(), carol.clone()])
    );
    let record = all
        .body
        .as_array()
        .expect("token list")
        .iter()
        .find(|record| record["jti"] == bob.as_str())
        .expect("bob's record");
    assert_eq!(record["subject"], "bob");
    assert_eq!(record["client_id"], "idp-client");
    assert_eq!(record["client_id_at_resource_as"], "gateway-client");
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
        assert_error(&reply, StatusCode::BAD_REQUEST, "invalid_request", query);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn token_lineage_lists_access_tokens() {
    // Reuse until expiry lets one ID-JAG mint two access tokens.
    let setup = Setup::start_with(json!({"replay_policy": "reuse-until-expiry"})).await;
    let server = &setup.server;
    let (_, secret) = setup
        .map_client(setup.proxy, "idp-client", "gateway-client")
        .await;
    let secret = secret.expect("secret");
    let claims = setup
        .idp
        .claims(&server.issuer(setup.proxy), "idp-client", "alice");
    let (jti, first) = setup
        .redeem_claims(setup.proxy, "gateway-client", &secret, &claims)
        .await;
    let (_, second) = setup
        .redeem_claims(setup.proxy, "gateway-client", &secret, &claims)
        .await;

    let lineage = get(server, &format!("/api/v1/xaa/tokens/{jti}")).await;
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
    assert_eq!(access_tokens.len(), 2, "{}", lineage.body);
    let mut minted = BTreeSet::new();
    for token in [&first, &second] {
        let introspected = setup.introspect(setup.proxy, token).await;
        minted.insert(introspected["jti"].as_str().expect("jti").to_owned());
    }
    let listed: BTreeSet<String> = access_tokens
        .iter()
        .map(|token| {
            assert_eq!(token["id_jag_id"], id_jag["id"]);
            assert_eq!(token["client_id"], "gateway-client");
            token["jti"].as_str().expect("jti").to_owned()
        })
        .collect();
    assert_eq!(listed, minted);

    // Revoking the ID-JAG reaches every access token minted from it.
    let revoked = post(
        server,
        "/api/v1/xaa/revoke-token",
        json!({"jti": jti, "reason": "lineage"}),
    )
    .await;
    assert_eq!(revoked.status, 200);
    let lineage = get(server, &format!("/api/v1/xaa/tokens/{jti}")).await;
    for token in lineage.body[0]["access_tokens"]
        .as_array()
        .expect("access tokens")
    {
        assert_eq!(token["revocation"]["reason"], "lineage", "{token}");
    }
    for token in [&first, &second] {
        assert_eq!(
            setup.introspect(setup.proxy, token).await,
            json!({"active": false})
        );
    }

    let bad = get(server, "/api/v1/xaa/tokens/not%20a%20jti!").await;
    assert_error(
        &bad,
        StatusCode::BAD_REQUEST,
        "invalid_request",
        "bad JTI format",
    );
    let unknown = get(
        server,
        "/api/v1/xaa/tokens/550e8400-e29b-41d4-a716-446655440000",
    )
    .await;
    assert_error(&unknown, StatusCode::NOT_FOUND, "not_found", "unknown JTI");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn audit_query_filters() {
    let setup = Setup::start().await;
    let server = &setup.server;
    let (_, secret) = setup
        .map_client(setup.proxy, "idp-client", "gateway-client")
        .await;
    let secret = secret.expect("secret");
    let other = server.add_proxy("proxy-b", json!({})).await;
    setup.map_client(other, "idp-client", "other-client").await;
    let (jti, _) = setup
        .redeem(
            setup.proxy,
            "idp-client",
            "gateway-client",
            &secret,
            "alice",
        )
        .await;

    let all = get(server, "/api/v1/xaa/audit").await;
    assert_eq!(all.status, 200);
    let events = all.body.as_array().expect("audit list");
    let ids: Vec<i64> = events
        .iter()
        .map(|event| event["id"].as_i64().expect("id"))
        .collect();
    assert!(
        ids.windows(2).all(|pair| pair[0] > pair[1]),
        "not newest first: {ids:?}"
    );

    let created = get(
        server,
        "/api/v1/xaa/audit?event_type=xaa_client_mapping_created",
    )
    .await;
    assert_eq!(created.status, 200);
    let created = created.body.as_array().expect("audit list");
    assert_eq!(created.len(), 2);
    assert!(
        created
            .iter()
            .all(|event| event["event_type"] == "xaa_client_mapping_created")
    );

    let exchange = get(server, "/api/v1/xaa/audit?event_type=xaa_token_exchange").await;
    let exchange = exchange.body.as_array().expect("audit list");
    assert_eq!(exchange.len(), 1);
    let fields = &exchange[0]["fields"];
    assert_eq!(fields["jti"], jti.as_str());
    assert_eq!(fields["subject"], "alice");
    assert_eq!(fields["client_id"], "idp-client");
    assert_eq!(fields["scopes"], json!(["openid", "mcp:tools"]));

    let on_other = get(
        server,
        &format!("/api/v1/xaa/audit?proxy_id={other}&event_type=xaa_client_mapping_created"),
    )
    .await;
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
        assert_error(&reply, StatusCode::BAD_REQUEST, "invalid_request", query);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_count_exchanges() {
    let setup = Setup::start().await;
    let server = &setup.server;
    let (_, secret) = setup
        .map_client(setup.proxy, "idp-client", "gateway-client")
        .await;
    let secret = secret.expect("secret");
    let claims = setup
        .idp
        .claims(&server.issuer(setup.proxy), "idp-client", "alice");
    setup
        .redeem_claims(setup.proxy, "gateway-client", &secret, &claims)
        .await;
    let replay = server
        .redeem(
            setup.proxy,
            "gateway-client",
            &secret,
            &setup.idp.mint(&claims),
            &[],
        )
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
        "xaa_exchanges_total{outcome=\"success\"} 1",
        "xaa_exchanges_total{outcome=\"failure\"} 1",
        "xaa_exchange_failures_total{reason=\"replayed\"} 1",
        "# TYPE xaa_exchanges_total counter",
    ] {
        assert!(
            text.lines().any(|candidate| candidate == line),
            "{line:?} missing from:\n{text}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn openapi_lists_every_route() {
    let server = TestServer::start().await;
    let reply = get(&server, "/api/v1/openapi.json").await;
    assert_eq!(reply.status, 200);
    let paths = reply.body["paths"]
        .as_object()
        .unwrap_or_else(|| panic!("the OpenAPI document has no paths: {}", reply.body));
    let documented = [
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
        "/api/v1/xaa/audit",
    ];
    // Parameter names may differ, so paths are compared with every `{...}` blanked.
    let blank = |path: &str| -> String {
        let mut out = String::new();
        let mut in_parameter = false;
        for c in path.chars() {
            match c {
                '{' => {
                    in_parameter = true;
                    out.push_str("{}");
                }
                '}' => in_parameter = false,
                _ if !in_parameter => out.push(c),
                _ => {}
            }
        }
        out
    };
    let listed: BTreeSet<String> = paths.keys().map(|path| blank(path)).collect();
    for path in documented {
        assert!(
            listed.contains(&blank(path)),
            "{path} is not in the OpenAPI document"
        );
    }
    server.stop().await;
}
