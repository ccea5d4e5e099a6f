//! Table-driven token endpoint cases: a request builder, the expected outcome, and a runner
//! that checks the status, the OAuth error, the response headers and what the store recorded.
//!
//! ```ignore
//! let cases = vec![Case::new("typ missing", Expect::grant("typ_invalid"), || {
//!     TokenRequest::new(&server, proxy, "c1", &secret, &assertion)
//! })];
//! check_cases(&server, cases).await;
//! ```

use std::time::Duration;

use reqwest::Method;
use reqwest::header::{self, HeaderMap};
use serde_json::{Value, json};

use super::idp;
use super::server::{TestServer, form_encode};

/// `grant_type` of the RFC 7523 JWT-bearer grant.
pub const JWT_BEARER: &str = "urn:ietf:params:oauth:grant-type:jwt-bearer";

/// `client_assertion_type` of `private_key_jwt` client authentication (RFC 7523 §2.2).
pub const CLIENT_ASSERTION_TYPE: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

/// Polls of [`wait_for_key_fetch`] before it gives up, and the pause between two polls.
const KEY_FETCH_POLLS: u32 = 400;
const KEY_FETCH_POLL_INTERVAL: Duration = Duration::from_millis(25);

/// A token endpoint request, built step by step from a valid JWT-bearer request.
#[derive(Clone, Debug)]
pub struct TokenRequest {
    method: Method,
    url: String,
    content_type: Option<String>,
    params: Vec<(String, String)>,
    raw_body: Option<String>,
    basic: Option<(String, String)>,
    headers: Vec<(String, String)>,
    /// Issuer identifier of the proxy, which the access token's `iss` must equal.
    proxy_issuer: String,
    /// Client that the access token's `client_id` must name.
    client_id: String,
}

impl TokenRequest {
    /// Builds a valid request: POST to the proxy's token endpoint, form-encoded `grant_type`
    /// and `assertion`, and the client's credentials in `Authorization: Basic`.
    pub fn new(
        server: &TestServer,
        proxy_id: i64,
        client_id: &str,
        secret: &str,
        assertion: &str,
    ) -> Self {
        Self {
            method: Method::POST,
            url: server.token_endpoint(proxy_id),
            content_type: Some("application/x-www-form-urlencoded".to_owned()),
            params: vec![
                ("grant_type".to_owned(), JWT_BEARER.to_owned()),
                ("assertion".to_owned(), assertion.to_owned()),
            ],
            raw_body: None,
            basic: Some((client_id.to_owned(), secret.to_owned())),
            headers: Vec::new(),
            proxy_issuer: server.issuer(proxy_id),
            client_id: client_id.to_owned(),
        }
    }

    /// Appends a form parameter, keeping any earlier one of the same name.
    pub fn param(mut self, name: &str, value: &str) -> Self {
        self.params.push((name.to_owned(), value.to_owned()));
        self
    }

    /// Replaces every form parameter called `name` with one of value `value`.
    pub fn set(self, name: &str, value: &str) -> Self {
        self.without(name).param(name, value)
    }

    /// Removes every form parameter called `name`.
    pub fn without(mut self, name: &str) -> Self {
        self.params.retain(|(existing, _)| existing != name);
        self
    }

    /// Sends no `Authorization` header.
    pub fn without_basic(mut self) -> Self {
        self.basic = None;
        self
    }

    /// Replaces the Basic credentials.
    pub fn basic(mut self, client_id: &str, secret: &str) -> Self {
        self.basic = Some((client_id.to_owned(), secret.to_owned()));
        self
    }

    /// Moves the client credentials from Basic into the form (`client_secret_post`).
    pub fn credentials_in_body(mut self) -> Self {
        if let Some((client_id, secret)) = self.basic.take() {
            self = self
                .param("client_id", &client_id)
                .param("client_secret", &secret);
        }
        self
    }

    /// Sends `body` verbatim under `content_type` (`None`: no `Content-Type` header) instead of
    /// the form parameters.
    pub fn raw_body(mut self, content_type: Option<&str>, body: &str) -> Self {
        self.content_type = content_type.map(str::to_owned);
        self.raw_body = Some(body.to_owned());
        self
    }

    /// Adds a request header.
    pub fn header(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.to_owned(), value.to_owned()));
        self
    }

    /// Changes the HTTP method.
    pub fn method(mut self, method: Method) -> Self {
        self.method = method;
        self
    }

    /// Changes the URL, for example to a proxy that does not exist.
    pub fn url(mut self, url: &str) -> Self {
        url.clone_into(&mut self.url);
        self
    }

    /// Returns the last `assertion` parameter, if any.
    pub fn assertion(&self) -> Option<&str> {
        self.params
            .iter()
            .rev()
            .find(|(name, _)| name == "assertion")
            .map(|(_, value)| value.as_str())
    }

    /// Sends the request.
    pub async fn send(&self, http: &reqwest::Client) -> reqwest::Response {
        let mut request = http.request(self.method.clone(), &self.url);
        if let Some((client_id, secret)) = &self.basic {
            request = request.basic_auth(form_encode(client_id), Some(form_encode(secret)));
        }
        for (name, value) in &self.headers {
            request = request.header(name, value);
        }
        if let Some(content_type) = &self.content_type {
            request = request.header(header::CONTENT_TYPE, content_type);
        }
        let body = match &self.raw_body {
            Some(body) => body.clone(),
            None => serde_urlencoded::to_string(&self.params).expect("form parameters encode"),
        };
        if self.method != Method::GET {
            request = request.body(body);
        }
        request
            .send()
            .await
            .unwrap_or_else(|error| panic!("{} {} failed: {error}", self.method, self.url))
    }
}

/// The outcome a case expects.
#[derive(Clone, Debug)]
pub enum Expect {
    /// 200 with an access token granting exactly `scope`.
    Issued {
        scope: String,
        /// The protected resource the token is restricted to. With `None`, the proxy's issuer
        /// is the token's audience and the response has no `resource` member.
        resource: Option<String>,
        /// Whether the exchange stores a new ID-JAG record (false for a re-presentation).
        new_record: bool,
    },
    /// An OAuth error response.
    Rejected {
        status: u16,
        error: &'static str,
        /// Reason code of the `xaa_token_validation_failed` audit event the rejection writes.
        /// `None` for rejections of the HTTP layer, which happen before the exchange starts.
        reason: Option<&'static str>,
    },
    /// 404 for a proxy that does not exist.
    NotFound,
    /// 405 with `Allow: POST`; the response has no OAuth body.
    MethodNotAllowed,
    /// A body over the size limit: `413` or `400 invalid_request`, as a JSON error with the
    /// same headers as every other token endpoint error.
    BodyTooLarge,
}

impl Expect {
    /// Expects a new access token for `scope`, audience-restricted to the proxy's issuer.
    pub fn issued(scope: &str) -> Self {
        Self::Issued {
            scope: scope.to_owned(),
            resource: None,
            new_record: true,
        }
    }

    /// Expects a new access token for `scope`, restricted to `resource`.
    pub fn issued_for(scope: &str, resource: &str) -> Self {
        Self::Issued {
            scope: scope.to_owned(),
            resource: Some(resource.to_owned()),
            new_record: true,
        }
    }

    /// Expects another access token from an ID-JAG that is already recorded.
    pub fn reissued(scope: &str) -> Self {
        Self::Issued {
            scope: scope.to_owned(),
            resource: None,
            new_record: false,
        }
    }

    /// Expects `400 invalid_grant`, audited with `reason`.
    pub fn grant(reason: &'static str) -> Self {
        Self::Rejected {
            status: 400,
            error: "invalid_grant",
            reason: Some(reason),
        }
    }

    /// Expects `400 invalid_request` from the HTTP layer.
    pub fn invalid_request() -> Self {
        Self::Rejected {
            status: 400,
            error: "invalid_request",
            reason: None,
        }
    }

    /// Expects `401 invalid_client`, audited with `reason` when the exchange ran.
    pub fn invalid_client(reason: Option<&'static str>) -> Self {
        Self::Rejected {
            status: 401,
            error: "invalid_client",
            reason,
        }
    }

    /// Expects a `400` error with this code, audited with `reason`.
    pub fn error(error: &'static str, reason: &'static str) -> Self {
        Self::Rejected {
            status: 400,
            error,
            reason: Some(reason),
        }
    }
}

/// One named case: the expected outcome and a closure that builds the request just before it
/// is sent, so time-based claims are fresh.
pub struct Case<'a> {
    pub name: String,
    pub expect: Expect,
    build: Box<dyn Fn() -> TokenRequest + 'a>,
}

impl<'a> Case<'a> {
    pub fn new(
        name: impl Into<String>,
        expect: Expect,
        build: impl Fn() -> TokenRequest + 'a,
    ) -> Self {
        Self {
            name: name.into(),
            expect,
            build: Box::new(build),
        }
    }
}

/// Store and counter figures read before and after each case.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Counters {
    /// `id_jag_tokens.total` of the statistics.
    id_jag_records: i64,
    /// Access tokens issued by this server process.
    issued: u64,
    /// Id of the newest `xaa_token_validation_failed` audit event, 0 when there is none.
    last_failure_id: i64,
}

async fn counters(server: &TestServer) -> Counters {
    let stats = admin_json(server, Method::GET, "/api/v1/xaa/stats", None).await;
    let id_jag_records = stats["id_jag_tokens"]["total"]
        .as_i64()
        .unwrap_or_else(|| panic!("stats have no id_jag_tokens.total: {stats}"));
    Counters {
        id_jag_records,
        issued: server.core.metrics().exchange_totals().0,
        last_failure_id: latest_failure(server)
            .await
            .map_or(0, |event| event_id(&event)),
    }
}

fn event_id(event: &Value) -> i64 {
    event["id"].as_i64().expect("audit events have an id")
}

/// Fetches the newest `xaa_token_validation_failed` audit event.
pub async fn latest_failure(server: &TestServer) -> Option<Value> {
    let path = "/api/v1/xaa/audit?event_type=xaa_token_validation_failed&limit=1";
    let events = admin_json(server, Method::GET, path, None).await;
    events
        .as_array()
        .expect("the audit query returns an array")
        .first()
        .cloned()
}

/// Sends an admin request, checks for a 2xx status and returns the JSON body (`null` when
/// empty).
pub async fn admin_json(
    server: &TestServer,
    method: Method,
    path: &str,
    body: Option<Value>,
) -> Value {
    let response = server.admin(method.clone(), path, body).await;
    let status = response.status();
    let text = response.text().await.expect("admin response body");
    assert!(
        status.is_success(),
        "admin {method} {path} returned {status}: {text}"
    );
    if text.is_empty() {
        Value::Null
    } else {
        serde_json::from_str(&text)
            .unwrap_or_else(|error| panic!("admin {method} {path} returned non-JSON: {error}"))
    }
}

/// Runs every case in order and panics with the list of failed cases and their problems.
pub async fn check_cases(server: &TestServer, cases: Vec<Case<'_>>) {
    let mut failures = Vec::new();
    for case in &cases {
        let problems = run_case(server, case).await;
        if !problems.is_empty() {
            failures.push(format!(
                "case {:?}:\n    {}",
                case.name,
                problems.join("\n    ")
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} cases failed:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
}

/// Runs one case and returns what differed from the expectation.
async fn run_case(server: &TestServer, case: &Case<'_>) -> Vec<String> {
    let request = (case.build)();
    let before = counters(server).await;
    let response = request.send(&server.http).await;
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let text = response.text().await.unwrap_or_default();
    let after = counters(server).await;

    let mut problems = Vec::new();
    match &case.expect {
        Expect::Issued {
            scope,
            resource,
            new_record,
        } => {
            check_status(&mut problems, status, 200, &text);
            check_no_store(&mut problems, &headers);
            if status == 200 {
                check_token_response(
                    &mut problems,
                    server,
                    &request,
                    &text,
                    scope,
                    resource.as_deref(),
                );
            }
            let new_records = i64::from(*new_record);
            if after.id_jag_records != before.id_jag_records + new_records {
                problems.push(format!(
                    "expected {new_records} new ID-JAG record(s), the count went from {} to {}",
                    before.id_jag_records, after.id_jag_records
                ));
            }
            if after.issued != before.issued + 1 {
                problems.push(format!(
                    "expected 1 issued access token, the count went from {} to {}",
                    before.issued, after.issued
                ));
            }
        }
        Expect::Rejected {
            status: expected_status,
            error,
            reason,
        } => {
            check_status(&mut problems, status, *expected_status, &text);
            check_no_store(&mut problems, &headers);
            check_error_body(&mut problems, &request, &text, error);
            check_error_headers(&mut problems, &headers, status);
            check_nothing_recorded(&mut problems, before, after);
            if let Some(reason) = reason {
                check_failure_reason(&mut problems, server, before, reason).await;
            }
        }
        Expect::NotFound => {
            check_status(&mut problems, status, 404, &text);
            check_no_store(&mut problems, &headers);
            check_nothing_recorded(&mut problems, before, after);
        }
        Expect::BodyTooLarge => {
            if status == 400 {
                check_error_body(&mut problems, &request, &text, "invalid_request");
            } else {
                check_status(&mut problems, status, 413, &text);
                check_any_error_body(&mut problems, &text);
            }
            check_no_store(&mut problems, &headers);
            check_nothing_recorded(&mut problems, before, after);
        }
        Expect::MethodNotAllowed => {
            check_status(&mut problems, status, 405, &text);
            let allow = header_text(&headers, &header::ALLOW);
            if !allow.split(',').any(|method| method.trim() == "POST") {
                problems.push(format!("Allow is {allow:?}, expected it to list POST"));
            }
            check_nothing_recorded(&mut problems, before, after);
        }
    }
    problems
}

fn header_text(headers: &HeaderMap, name: &header::HeaderName) -> String {
    headers
        .get(name)
        .map(|value| String::from_utf8_lossy(value.as_bytes()).into_owned())
        .unwrap_or_default()
}

/// Shortens a response body to its first 200 characters, for failure messages.
fn excerpt(body: &str) -> String {
    const MAX_CHARS: usize = 200;
    if body.chars().count() <= MAX_CHARS {
        return body.to_owned();
    }
    let start: String = body.chars().take(MAX_CHARS).collect();
    format!("{start}...")
}

fn check_status(problems: &mut Vec<String>, status: u16, expected: u16, body: &str) {
    if status != expected {
        problems.push(format!(
            "status {status}, expected {expected}; body: {}",
            excerpt(body)
        ));
    }
}

/// Checks for a JSON object with a string `error` and a valid `error_description`, whatever
/// the code.
fn check_any_error_body(problems: &mut Vec<String>, text: &str) {
    let Ok(body) = serde_json::from_str::<Value>(text) else {
        problems.push(format!("error body is not JSON: {}", excerpt(text)));
        return;
    };
    if !body["error"].is_string() {
        problems.push(format!("error body has no error code: {}", excerpt(text)));
    }
    if let Some(description) = body["error_description"].as_str()
        && !is_valid_error_description(description)
    {
        problems.push(format!(
            "error_description {description:?} has invalid characters"
        ));
    }
}

/// Checks for `Cache-Control: no-store` and `Pragma: no-cache` (RFC 6749 §5.1) on a JSON
/// response.
fn check_no_store(problems: &mut Vec<String>, headers: &HeaderMap) {
    let cache_control = header_text(headers, &header::CACHE_CONTROL);
    if cache_control != "no-store" {
        problems.push(format!(
            "Cache-Control is {cache_control:?}, expected no-store"
        ));
    }
    let pragma = header_text(headers, &header::PRAGMA);
    if pragma != "no-cache" {
        problems.push(format!("Pragma is {pragma:?}, expected no-cache"));
    }
    let content_type = header_text(headers, &header::CONTENT_TYPE);
    if !content_type.starts_with("application/json") {
        problems.push(format!("Content-Type is {content_type:?}, expected JSON"));
    }
}

/// Checks for `WWW-Authenticate: Basic …` on 401 and `Retry-After` on 503.
fn check_error_headers(problems: &mut Vec<String>, headers: &HeaderMap, status: u16) {
    if status == 401 {
        let challenge = header_text(headers, &header::WWW_AUTHENTICATE);
        if !challenge.to_ascii_lowercase().starts_with("basic") {
            problems.push(format!(
                "WWW-Authenticate is {challenge:?} on a 401, expected a Basic challenge"
            ));
        }
    }
    if status == 503 {
        let retry_after = header_text(headers, &header::RETRY_AFTER);
        if retry_after.parse::<u64>().is_err() {
            problems.push(format!(
                "Retry-After is {retry_after:?} on a 503, expected a number of seconds"
            ));
        }
    }
}

/// Returns whether every character is allowed in `error_description`: `%x20-21 / %x23-5B / %x5D-7E`
/// (RFC 6749 §5.2), so no `"`, no `\` and nothing outside printable ASCII.
pub fn is_valid_error_description(text: &str) -> bool {
    text.bytes()
        .all(|b| matches!(b, 0x20..=0x21 | 0x23..=0x5B | 0x5D..=0x7E))
}

/// Checks the error body: a JSON object with the expected `error`, a valid
/// `error_description`, no members beyond those of RFC 6749 §5.2, and no part of the assertion
/// or the IdP address.
fn check_error_body(problems: &mut Vec<String>, request: &TokenRequest, text: &str, error: &str) {
    let Ok(Value::Object(body)) = serde_json::from_str::<Value>(text) else {
        problems.push(format!(
            "error body is not a JSON object: {}",
            excerpt(text)
        ));
        return;
    };
    if body.get("error") != Some(&json!(error)) {
        problems.push(format!(
            "error is {:?}, expected {error:?}",
            body.get("error")
        ));
    }
    match body.get("error_description") {
        None => {}
        Some(Value::String(description)) if is_valid_error_description(description) => {}
        Some(other) => problems.push(format!("error_description {other} has invalid characters")),
    }
    if let Some(extra) = body
        .keys()
        .find(|name| !matches!(name.as_str(), "error" | "error_description" | "error_uri"))
    {
        problems.push(format!(
            "error body has the extra member {extra:?}: {}",
            excerpt(text)
        ));
    }
    let echoes_assertion = request
        .assertion()
        .and_then(|assertion| assertion.split('.').find(|segment| segment.len() >= 8))
        .is_some_and(|segment| text.contains(segment));
    if echoes_assertion {
        problems.push("error body echoes part of the assertion".to_owned());
    }
    if text.contains("127.0.0.1") {
        problems.push(format!("error body names an address: {}", excerpt(text)));
    }
}

fn check_nothing_recorded(problems: &mut Vec<String>, before: Counters, after: Counters) {
    if after.id_jag_records != before.id_jag_records {
        problems.push(format!(
            "a rejected request changed the ID-JAG record count from {} to {}",
            before.id_jag_records, after.id_jag_records
        ));
    }
    if after.issued != before.issued {
        problems.push(format!(
            "a rejected request changed the issued access token count from {} to {}",
            before.issued, after.issued
        ));
    }
}

async fn check_failure_reason(
    problems: &mut Vec<String>,
    server: &TestServer,
    before: Counters,
    reason: &str,
) {
    let event = latest_failure(server)
        .await
        .filter(|event| event_id(event) > before.last_failure_id);
    match event {
        None => problems.push(format!(
            "no xaa_token_validation_failed audit event was written (expected reason {reason})"
        )),
        Some(event) if event["reason_code"] == reason => {}
        Some(event) => problems.push(format!(
            "audited reason is {}, expected {reason}; detail: {}",
            event["reason_code"], event["fields"]["detail"]
        )),
    }
}

/// Checks the success body (RFC 6749 §5.1 with `scope` always present and no refresh token)
/// and the access token's claims (RFC 9068).
fn check_token_response(
    problems: &mut Vec<String>,
    server: &TestServer,
    request: &TokenRequest,
    text: &str,
    scope: &str,
    resource: Option<&str>,
) {
    let Ok(body) = serde_json::from_str::<Value>(text) else {
        problems.push(format!("token response is not JSON: {}", excerpt(text)));
        return;
    };
    if body["token_type"] != "Bearer" {
        problems.push(format!(
            "token_type is {}, expected Bearer",
            body["token_type"]
        ));
    }
    if body["scope"] != scope {
        problems.push(format!("scope is {}, expected {scope:?}", body["scope"]));
    }
    let lifetime = server.core.config().exchange.access_token_lifetime_secs;
    match body["expires_in"].as_i64() {
        Some(seconds) if seconds > 0 && seconds <= lifetime => {}
        _ => problems.push(format!(
            "expires_in is {}, expected 1 to {lifetime} seconds",
            body["expires_in"]
        )),
    }
    for absent in ["refresh_token", "authorization_details"] {
        if body.get(absent).is_some() {
            problems.push(format!("the response contains {absent}"));
        }
    }
    let expected_resource = resource.map_or(Value::Null, |value| json!(value));
    if body["resource"] != expected_resource {
        problems.push(format!(
            "resource is {}, expected {expected_resource}",
            body["resource"]
        ));
    }

    let Some(access_token) = body["access_token"].as_str() else {
        problems.push(format!("no access_token string in {}", excerpt(text)));
        return;
    };
    if access_token.split('.').count() != 3 {
        problems.push("access_token is not a compact JWS".to_owned());
        return;
    }
    let token_header = idp::decode_header(access_token);
    if token_header["typ"] != "at+jwt" {
        problems.push(format!("access token typ is {}", token_header["typ"]));
    }
    let claims = idp::decode_payload(access_token);
    let audience = resource.unwrap_or(&request.proxy_issuer);
    let subject = request
        .assertion()
        .map(|assertion| idp::decode_payload(assertion)["sub"].clone())
        .unwrap_or_default();
    let expected = [
        ("iss", json!(request.proxy_issuer)),
        ("aud", json!(audience)),
        ("client_id", json!(request.client_id)),
        ("sub", subject),
        ("scope", json!(scope)),
    ];
    for (name, value) in expected {
        if claims[name] != value {
            problems.push(format!(
                "access token {name} is {}, expected {value}",
                claims[name]
            ));
        }
    }
}

/// Waits until the server has tried to fetch the provider's key set at least once (the
/// background fetch that provider creation starts), so later JWKS fetch counts are exact.
pub async fn wait_for_key_fetch(server: &TestServer, provider_id: i64) {
    for _ in 0..KEY_FETCH_POLLS {
        let health = admin_json(server, Method::GET, "/api/v1/xaa/jwks-health", None).await;
        let tried = health
            .as_array()
            .expect("jwks-health returns an array")
            .iter()
            .filter(|entry| entry["provider_id"] == provider_id)
            .any(|entry| !entry["fetched_at"].is_null() || !entry["last_error_at"].is_null());
        if tried {
            return;
        }
        tokio::time::sleep(KEY_FETCH_POLL_INTERVAL).await;
    }
    panic!("the server did not fetch the keys of provider {provider_id} after it was created");
}

/// Counts the access tokens recorded for the ID-JAG with this `jti`.
pub async fn access_tokens_for(server: &TestServer, jti: &str) -> usize {
    let lineage = admin_json(
        server,
        Method::GET,
        &format!("/api/v1/xaa/tokens/{jti}"),
        None,
    )
    .await;
    lineage
        .as_array()
        .expect("the lineage is an array")
        .iter()
        .map(|entry| {
            entry["access_tokens"]
                .as_array()
                .expect("each lineage entry lists access tokens")
                .len()
        })
        .sum()
}

/// Creates a mapping and returns its id with the client secret, which must be new.
pub async fn add_client(
    server: &TestServer,
    proxy_id: i64,
    provider_id: i64,
    client_at_idp: &str,
    client_at_as: &str,
    scopes: &[&str],
) -> (i64, String) {
    let mapping = server
        .add_mapping(proxy_id, provider_id, client_at_idp, client_at_as, scopes)
        .await;
    let id = mapping["id"].as_i64().expect("mapping id");
    let secret = mapping["client_secret"]
        .as_str()
        .unwrap_or_else(|| panic!("client {client_at_as} already existed: {mapping}"))
        .to_owned();
    (id, secret)
}
