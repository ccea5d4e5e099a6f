//! Checks `assets/openapi.json` against a running server: the document is well formed, every
//! documented operation is routed and returns a documented status and body, every route is
//! documented, and real responses match their documented schemas.

mod common;

use std::collections::BTreeSet;

use common::idp::{Mode, TestIdp};
use common::server::{ADMIN_TOKEN, TestServer};
use reqwest::header::CONTENT_TYPE;
use reqwest::{Method, StatusCode};
use serde_json::{Map, Value, json};

/// The document as compiled into the server.
const DOCUMENT: &str = include_str!("../assets/openapi.json");

/// Every route of the admin router (`router` in `src/server/admin.rs`) and of the public router
/// (`router` in `src/server/oauth.rs`), as (method, path in the document's spelling).
///
/// This list must match those routers. Add a line here and a path or method to the document
/// whenever a route is added there. `route_list_matches_router_source` compares the paths with
/// the source files and `route_list_matches_router_methods` compares the methods with the
/// running server, so a stale list fails too.
const ROUTES: &[(&str, &str)] = &[
    ("GET", "/api/v1/providers"),
    ("POST", "/api/v1/providers"),
    ("GET", "/api/v1/providers/{id}"),
    ("PATCH", "/api/v1/providers/{id}"),
    ("DELETE", "/api/v1/providers/{id}"),
    ("POST", "/api/v1/providers/{id}/refresh-keys"),
    ("GET", "/api/v1/proxies"),
    ("POST", "/api/v1/proxies"),
    ("GET", "/api/v1/proxies/{id}"),
    ("PATCH", "/api/v1/proxies/{id}"),
    ("DELETE", "/api/v1/proxies/{id}"),
    ("GET", "/api/v1/proxies/{proxyId}/xaa/client-mappings"),
    ("POST", "/api/v1/proxies/{proxyId}/xaa/client-mappings"),
    (
        "DELETE",
        "/api/v1/proxies/{proxyId}/xaa/client-mappings/{mappingId}",
    ),
    (
        "POST",
        "/api/v1/proxies/{proxyId}/xaa/clients/{clientId}/rotate-secret",
    ),
    ("GET", "/api/v1/proxies/{proxyId}/xaa/stats"),
    ("GET", "/api/v1/xaa/stats"),
    ("POST", "/api/v1/xaa/revoke-token"),
    ("POST", "/api/v1/xaa/revoke-tokens-by-subject"),
    ("GET", "/api/v1/xaa/tokens"),
    ("GET", "/api/v1/xaa/tokens/{jti}"),
    ("GET", "/api/v1/xaa/audit"),
    ("GET", "/api/v1/xaa/jwks-health"),
    ("GET", "/api/v1/openapi.json"),
    ("GET", "/metrics"),
    ("GET", "/healthz"),
    ("POST", "/proxies/{proxyId}/oauth2/token"),
    ("POST", "/proxies/{proxyId}/oauth2/introspect"),
    ("POST", "/proxies/{proxyId}/oauth2/revoke"),
    ("GET", "/proxies/{proxyId}/jwks.json"),
    (
        "GET",
        "/.well-known/oauth-authorization-server/proxies/{proxyId}",
    ),
];

/// Methods that a path item of the document can hold, in lower case as the document spells them.
const OPENAPI_METHODS: [&str; 8] = [
    "get", "put", "post", "delete", "options", "head", "patch", "trace",
];

/// Methods sent to every route path to find which ones the router serves.
const PROBE_METHODS: [&str; 5] = ["GET", "POST", "PUT", "PATCH", "DELETE"];

/// An id that no test creates, so requests with it change nothing.
const MISSING_ID: i64 = 999_999;

/// Start of the message that the admin router's fallback returns for paths no route matches.
const FALLBACK_MESSAGE: &str = "no such endpoint";

fn document() -> Value {
    serde_json::from_str(DOCUMENT).expect("assets/openapi.json is not valid JSON")
}

/// Replaces every `{name}` of a path template with the empty `{}`, so templates compare
/// independently of their parameter names.
fn blank_parameters(path: &str) -> String {
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
}

/// Every (upper-case method, path) operation of the document.
fn documented_operations(doc: &Value) -> Vec<(String, String)> {
    let paths = doc["paths"].as_object().expect("the document has no paths");
    let mut operations = Vec::new();
    for (path, item) in paths {
        for method in OPENAPI_METHODS {
            if item.get(method).is_some() {
                operations.push((method.to_ascii_uppercase(), path.clone()));
            }
        }
    }
    operations
}

/// Follows `$ref` pointers within the document until a value without one.
fn resolve<'a>(doc: &'a Value, value: &'a Value) -> &'a Value {
    let mut current = value;
    for _ in 0..16 {
        let Some(reference) = current.get("$ref").and_then(Value::as_str) else {
            return current;
        };
        let pointer = reference
            .strip_prefix('#')
            .unwrap_or_else(|| panic!("$ref {reference} points outside the document"));
        current = doc
            .pointer(pointer)
            .unwrap_or_else(|| panic!("$ref {reference} does not resolve"));
    }
    panic!("$ref chain longer than 16 links at {value}");
}

fn collect_refs(value: &Value, found: &mut Vec<String>) {
    match value {
        Value::Object(map) => {
            for (key, item) in map {
                match (key.as_str(), item) {
                    ("$ref", Value::String(reference)) => found.push(reference.clone()),
                    _ => collect_refs(item, found),
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|item| collect_refs(item, found)),
        _ => {}
    }
}

// ---- Schema checks --------------------------------------------------------------------------

/// Property names an object schema lists, through `$ref` and `allOf`, and whether it allows
/// more (an `additionalProperties` other than `false`).
fn object_properties(doc: &Value, schema: &Value) -> (BTreeSet<String>, bool) {
    let schema = resolve(doc, schema);
    let mut names: BTreeSet<String> = schema["properties"]
        .as_object()
        .map(|properties| properties.keys().cloned().collect())
        .unwrap_or_default();
    let mut open = matches!(
        schema.get("additionalProperties"),
        Some(Value::Bool(true) | Value::Object(_))
    );
    for part in schema["allOf"].as_array().into_iter().flatten() {
        let (part_names, part_open) = object_properties(doc, part);
        names.extend(part_names);
        open |= part_open;
    }
    (names, open)
}

fn json_type_matches(name: &str, value: &Value) -> bool {
    match name {
        "null" => value.is_null(),
        "boolean" => value.is_boolean(),
        "integer" => value.is_i64() || value.is_u64(),
        "number" => value.is_number(),
        "string" => value.is_string(),
        "array" => value.is_array(),
        "object" => value.is_object(),
        other => panic!("unknown JSON Schema type {other}"),
    }
}

/// Collects into `errors` every way `value` breaks `schema`. Beyond JSON Schema, an object
/// schema that lists `properties` without `additionalProperties` must name every field the
/// server sends, so undocumented response fields fail the test.
fn check_schema(doc: &Value, schema: &Value, value: &Value, at: &str, errors: &mut Vec<String>) {
    let schema = resolve(doc, schema);

    if let Some(branches) = schema["oneOf"].as_array().or(schema["anyOf"].as_array()) {
        let matching = branches
            .iter()
            .filter(|branch| {
                let mut branch_errors = Vec::new();
                check_schema(doc, branch, value, at, &mut branch_errors);
                branch_errors.is_empty()
            })
            .count();
        let exact = schema.get("oneOf").is_some();
        if matching == 0 || (exact && matching > 1) {
            errors.push(format!("{at}: {value} matches {matching} of the branches"));
        }
    }
    if let Some(parts) = schema["allOf"].as_array() {
        for part in parts {
            let mut part_errors = Vec::new();
            check_schema(doc, part, value, at, &mut part_errors);
            // Each part lists only some of this object's fields, so the merged list is checked
            // below. Undocumented fields deeper down still count.
            let own_field = format!("{at}: undocumented field ");
            part_errors.retain(|error| !error.starts_with(&own_field));
            errors.extend(part_errors);
        }
    }

    match &schema["type"] {
        Value::String(name) if !json_type_matches(name, value) => {
            errors.push(format!("{at}: {value} is not of type {name}"));
            return;
        }
        Value::Array(names)
            if !names
                .iter()
                .any(|name| json_type_matches(name.as_str().unwrap_or(""), value)) =>
        {
            errors.push(format!(
                "{at}: {value} is not of any type in {}",
                schema["type"]
            ));
            return;
        }
        _ => {}
    }
    if let Some(expected) = schema.get("const")
        && expected != value
    {
        errors.push(format!("{at}: {value} is not the constant {expected}"));
    }
    if let Some(allowed) = schema["enum"].as_array()
        && !allowed.contains(value)
    {
        errors.push(format!("{at}: {value} is not one of {}", schema["enum"]));
    }
    if let (Some("date-time"), Some(text)) = (schema["format"].as_str(), value.as_str())
        && chrono::DateTime::parse_from_rfc3339(text).is_err()
    {
        errors.push(format!("{at}: {text:?} is not an RFC 3339 timestamp"));
    }
    if let (Some(minimum), Some(number)) = (schema["minimum"].as_i64(), value.as_i64())
        && number < minimum
    {
        errors.push(format!("{at}: {number} is below the minimum {minimum}"));
    }

    if let Value::Object(fields) = value {
        check_object(doc, schema, fields, at, errors);
    }
    if let Value::Array(items) = value {
        if let Some(item_schema) = schema.get("items") {
            for (index, item) in items.iter().enumerate() {
                check_schema(doc, item_schema, item, &format!("{at}[{index}]"), errors);
            }
        }
        let count = items.len() as u64;
        if schema["minItems"].as_u64().is_some_and(|min| count < min) {
            errors.push(format!("{at}: {count} items, fewer than minItems"));
        }
        if schema["maxItems"].as_u64().is_some_and(|max| count > max) {
            errors.push(format!("{at}: {count} items, more than maxItems"));
        }
    }
}

fn check_object(
    doc: &Value,
    schema: &Value,
    fields: &Map<String, Value>,
    at: &str,
    errors: &mut Vec<String>,
) {
    for name in schema["required"].as_array().into_iter().flatten() {
        let name = name.as_str().expect("required names are strings");
        if !fields.contains_key(name) {
            errors.push(format!("{at}: required field {name} is missing"));
        }
    }
    if let Some(properties) = schema["properties"].as_object() {
        for (name, property) in properties {
            if let Some(field) = fields.get(name) {
                check_schema(doc, property, field, &format!("{at}.{name}"), errors);
            }
        }
    }
    let (documented, open) = object_properties(doc, schema);
    let lists_fields = !documented.is_empty() || schema.get("additionalProperties").is_some();
    if lists_fields && !open {
        for name in fields.keys().filter(|name| !documented.contains(*name)) {
            errors.push(format!("{at}: undocumented field {name}"));
        }
    }
}

fn assert_matches_schema(doc: &Value, schema: &Value, value: &Value, what: &str) {
    let mut errors = Vec::new();
    check_schema(doc, schema, value, "$", &mut errors);
    assert!(
        errors.is_empty(),
        "{what} does not match its documented schema:\n  {}\nbody: {value}",
        errors.join("\n  ")
    );
}

// ---- Requests -------------------------------------------------------------------------------

/// A response with its body read.
struct Reply {
    status: StatusCode,
    content_type: String,
    text: String,
}

impl Reply {
    async fn read(response: reqwest::Response) -> Self {
        let status = response.status();
        let content_type = response
            .headers()
            .get(CONTENT_TYPE)
            .and_then(|value| value.to_str().ok())
            .unwrap_or_default()
            .to_owned();
        let text = response.text().await.expect("response body");
        Self {
            status,
            content_type,
            text,
        }
    }

    fn json(&self) -> Value {
        serde_json::from_str(&self.text)
            .unwrap_or_else(|error| panic!("body is not JSON ({error}): {:?}", self.text))
    }
}

/// Request body kinds the document uses.
enum Body {
    None,
    Json(Value),
    Form(String),
}

/// Ids of the objects a [`Fixture`] created.
struct Ids {
    provider: i64,
    proxy: i64,
    mapping: i64,
    client_id: String,
    jti: String,
}

/// A server with one provider, one proxy, one mapping and one redeemed ID-JAG.
struct Fixture {
    server: TestServer,
    idp: TestIdp,
    ids: Ids,
    secret: String,
    access_token: String,
}

impl Fixture {
    async fn start() -> Self {
        let idp = TestIdp::start().await;
        let server = TestServer::start().await;
        let provider = server.add_provider(idp.issuer(), json!({})).await;
        let proxy = server.add_proxy("openapi-proxy", json!({})).await;

        let mapping = server
            .add_mapping(
                proxy,
                provider,
                "idp-client",
                "gateway-client",
                &["openid", "profile"],
            )
            .await;
        let secret = mapping["client_secret"]
            .as_str()
            .expect("a new client's secret")
            .to_owned();

        let claims = idp.claims(&server.issuer(proxy), "idp-client", "alice@example.com");
        let jti = claims["jti"].as_str().expect("jti claim").to_owned();
        let response = server
            .redeem(proxy, "gateway-client", &secret, &idp.mint(&claims), &[])
            .await;
        assert_eq!(response.status(), 200, "ID-JAG redeemed");
        let token: Value = response.json().await.expect("token response");
        let access_token = token["access_token"]
            .as_str()
            .expect("access token")
            .to_owned();

        Self {
            ids: Ids {
                provider,
                proxy,
                mapping: mapping["id"].as_i64().expect("mapping id"),
                client_id: "gateway-client".into(),
                jti,
            },
            server,
            idp,
            secret,
            access_token,
        }
    }

    async fn stop(self) {
        self.server.stop().await;
        self.idp.shutdown().await;
    }

    /// Returns the listener that serves `path`: the public one for path items with their own
    /// `servers`, else the admin one.
    fn base_url(&self, doc: &Value, path: &str) -> &str {
        if doc["paths"][path].get("servers").is_some() {
            &self.server.public_url
        } else {
            &self.server.admin_url
        }
    }

    async fn send(&self, method: &Method, url: &str, body: Body) -> Reply {
        let mut request = self
            .server
            .http
            .request(method.clone(), url)
            .bearer_auth(ADMIN_TOKEN);
        request = match body {
            Body::None => request,
            Body::Json(value) => request.json(&value),
            Body::Form(text) => request
                .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
                .body(text),
        };
        Reply::read(request.send().await.expect("request sent")).await
    }

    /// Sends a request to a documented operation and checks that a route served it and that its
    /// status and body are documented for it.
    async fn call(
        &self,
        doc: &Value,
        method: &str,
        template: &str,
        concrete: &str,
        body: Body,
    ) -> Reply {
        let method = Method::from_bytes(method.as_bytes()).expect("method name");
        let url = format!("{}{concrete}", self.base_url(doc, template));
        let reply = self.send(&method, &url, body).await;
        assert_routed(&format!("{method} {concrete} ({})", reply.status), &reply);
        assert_documented_reply(doc, method.as_str(), template, concrete, &reply);
        reply
    }

    /// Sends a GET without a body, like [`Fixture::call`].
    async fn get(&self, doc: &Value, template: &str, concrete: &str) -> Reply {
        self.call(doc, "GET", template, concrete, Body::None).await
    }
}

/// Fills a path template. DELETE requests get ids that do not exist, so nothing is removed,
/// and every other request gets the fixture's objects.
fn fill_path(template: &str, method: &str, ids: &Ids) -> String {
    let missing = MISSING_ID.to_string();
    let id_or_missing = |id: i64| {
        if method == "DELETE" {
            missing.clone()
        } else {
            id.to_string()
        }
    };
    let id = if template.starts_with("/api/v1/providers/") {
        id_or_missing(ids.provider)
    } else {
        id_or_missing(ids.proxy)
    };
    template
        .replace("{id}", &id)
        .replace("{proxyId}", &id_or_missing(ids.proxy))
        .replace("{mappingId}", &id_or_missing(ids.mapping))
        .replace("{clientId}", &ids.client_id)
        .replace("{jti}", &ids.jti)
}

/// Fails when a reply shows that no route serves the request: 405, or a 404 that did not
/// come from a handler (the admin fallback's message, or the public listener's empty 404).
fn assert_routed(what: &str, reply: &Reply) {
    assert_ne!(
        reply.status,
        StatusCode::METHOD_NOT_ALLOWED,
        "{what}: 405, the router does not serve this method on this path"
    );
    if reply.status == StatusCode::NOT_FOUND {
        let body: Option<Value> = serde_json::from_str(&reply.text).ok();
        let message = body
            .as_ref()
            .and_then(|body| body["message"].as_str())
            .unwrap_or_default();
        assert!(
            body.is_some(),
            "{what}: 404 without a JSON body, so no route matched: {:?}",
            reply.text
        );
        assert!(
            !message.starts_with(FALLBACK_MESSAGE),
            "{what}: 404 from the router fallback: {message}"
        );
    }
}

/// Checks a reply against the document: its status is listed for the operation, its media
/// type is the documented one, and a JSON body matches the documented schema.
fn assert_documented_reply(
    doc: &Value,
    method: &str,
    template: &str,
    concrete: &str,
    reply: &Reply,
) {
    let what = format!("{method} {concrete} ({})", reply.status.as_u16());
    let operation = &doc["paths"][template][method.to_ascii_lowercase()];
    assert!(
        operation.is_object(),
        "{method} {template} is not documented"
    );
    let Some(response) = operation["responses"].get(reply.status.as_str()) else {
        panic!(
            "{what}: status {} is not documented; body {:?}",
            reply.status, reply.text
        );
    };
    let response = resolve(doc, response);
    let Some(content) = response["content"].as_object() else {
        assert!(
            reply.text.is_empty(),
            "{what}: the document lists no body, but the server sent {:?}",
            reply.text
        );
        return;
    };
    let essence = |media: &str| {
        media
            .split(';')
            .next()
            .unwrap_or_default()
            .trim()
            .to_ascii_lowercase()
    };
    let (media, entry) = content
        .iter()
        .find(|(media, _)| essence(media) == essence(&reply.content_type))
        .unwrap_or_else(|| {
            panic!(
                "{what}: content type {:?} is not among the documented {:?}",
                reply.content_type,
                content.keys().collect::<Vec<_>>()
            )
        });
    if media.contains("json") {
        let body = reply.json();
        assert_matches_schema(doc, &entry["schema"], &body, &what);
    }
}

/// Returns the JSON schema the document gives for one response.
fn response_schema<'a>(doc: &'a Value, method: &str, path: &str, status: &str) -> &'a Value {
    let response = resolve(doc, &doc["paths"][path][method]["responses"][status]);
    let schema = &response["content"]["application/json"]["schema"];
    assert!(
        !schema.is_null(),
        "{method} {path} documents no JSON schema for {status}"
    );
    schema
}

/// Names in a schema's `required` list.
fn required_names(doc: &Value, schema: &Value) -> BTreeSet<String> {
    resolve(doc, schema)["required"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|name| name.as_str().map(str::to_owned))
        .collect()
}

fn names(list: &[&str]) -> BTreeSet<String> {
    list.iter().map(|name| (*name).to_owned()).collect()
}

/// Route paths in the `.route("...", ...)` calls of a router's source.
fn routed_paths(source: &str) -> BTreeSet<String> {
    source
        .split(".route(")
        .skip(1)
        .filter_map(|rest| {
            let rest = rest.trim_start().strip_prefix('"')?;
            rest.split('"').next().map(blank_parameters)
        })
        .collect()
}

// ---- Tests ----------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn served_document_is_the_asset() {
    let server = TestServer::start().await;
    let response = server
        .admin(Method::GET, "/api/v1/openapi.json", None)
        .await;
    let reply = Reply::read(response).await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    assert_eq!(reply.content_type, "application/json");
    assert_eq!(reply.json(), document());
    server.stop().await;
}

#[test]
fn document_is_well_formed() {
    let doc = document();
    assert!(
        doc["openapi"]
            .as_str()
            .is_some_and(|version| version.starts_with("3.1.")),
        "openapi version: {}",
        doc["openapi"]
    );
    assert!(
        DOCUMENT.ends_with("}\n"),
        "assets/openapi.json lacks its final newline"
    );
    let mut previous_indent = 0;
    for (number, line) in DOCUMENT.lines().enumerate() {
        let indent = line.len() - line.trim_start_matches(' ').len();
        let number = number + 1;
        assert!(!line.contains('\t'), "line {number} contains a tab");
        assert!(
            indent % 2 == 0,
            "line {number} is indented by {indent} spaces"
        );
        assert!(
            indent <= previous_indent + 2,
            "line {number} is indented by more than 2 spaces past the line before"
        );
        previous_indent = indent;
    }

    let mut references = Vec::new();
    collect_refs(&doc, &mut references);
    assert!(!references.is_empty());
    for reference in &references {
        let pointer = reference.strip_prefix('#').unwrap_or(reference);
        assert!(
            doc.pointer(pointer).is_some(),
            "$ref {reference} does not resolve"
        );
    }

    let scheme = &doc["components"]["securitySchemes"]["adminToken"];
    assert_eq!(scheme["type"], "http");
    assert_eq!(scheme["scheme"], "bearer");
    assert_eq!(doc["security"], json!([{"adminToken": []}]));

    let error = &doc["components"]["schemas"]["Error"];
    assert_eq!(required_names(&doc, error), names(&["error", "message"]));
    assert_eq!(error["properties"]["error"]["type"], "string");
    assert_eq!(error["properties"]["message"]["type"], "string");

    let mut operation_ids = BTreeSet::new();
    for (method, path) in documented_operations(&doc) {
        let operation = &doc["paths"][&path][method.to_ascii_lowercase()];
        let id = operation["operationId"].as_str().unwrap_or_default();
        assert!(
            operation_ids.insert(id.to_owned()),
            "{method} {path}: operationId {id:?} repeats"
        );
        let responses = operation["responses"].as_object().expect("responses");
        assert!(
            responses.keys().any(|status| status.starts_with('2')),
            "{method} {path} documents no success response"
        );
        let admin_only = path.starts_with("/api/v1/") || path == "/metrics";
        if admin_only {
            assert!(
                operation.get("security").is_none(),
                "{method} {path} overrides security"
            );
            assert!(
                responses.contains_key("401"),
                "{method} {path} documents no 401"
            );
        }
    }
    assert_eq!(doc["paths"]["/healthz"]["get"]["security"], json!([]));
}

#[test]
fn request_bodies_and_parameters() {
    let doc = document();
    // Each of these request types is `deny_unknown_fields` on the server.
    let closed = [
        ("post", "/api/v1/providers", vec!["name", "issuer"]),
        ("patch", "/api/v1/providers/{id}", vec![]),
        ("post", "/api/v1/proxies", vec!["name", "kind"]),
        ("patch", "/api/v1/proxies/{id}", vec![]),
        (
            "post",
            "/api/v1/proxies/{proxyId}/xaa/client-mappings",
            vec![
                "idp_provider_id",
                "client_id_at_idp",
                "client_id_at_resource_as",
                "allowed_scopes",
            ],
        ),
        ("post", "/api/v1/xaa/revoke-token", vec!["jti"]),
        (
            "post",
            "/api/v1/xaa/revoke-tokens-by-subject",
            vec!["idp_provider_id", "subject"],
        ),
    ];
    for (method, path, required) in closed {
        let body = &doc["paths"][path][method]["requestBody"];
        assert_eq!(body["required"], true, "{method} {path}");
        let schema = resolve(&doc, &body["content"]["application/json"]["schema"]);
        assert_eq!(schema["additionalProperties"], false, "{method} {path}");
        assert_eq!(
            required_names(&doc, schema),
            names(&required),
            "{method} {path}"
        );
    }

    let query_names = |path: &str| -> BTreeSet<String> {
        doc["paths"][path]["get"]["parameters"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|parameter| resolve(&doc, parameter))
            .filter(|parameter| parameter["in"] == "query")
            .filter_map(|parameter| parameter["name"].as_str().map(str::to_owned))
            .collect()
    };
    assert_eq!(
        query_names("/api/v1/xaa/tokens"),
        names(&[
            "proxy_id",
            "idp_provider_id",
            "subject",
            "client_id",
            "status",
            "limit"
        ])
    );
    assert_eq!(
        query_names("/api/v1/xaa/audit"),
        names(&[
            "event_type",
            "proxy_id",
            "idp_provider_id",
            "after_id",
            "limit"
        ])
    );

    let event_types: Vec<&str> = doc["components"]["schemas"]["AuditEventType"]["enum"]
        .as_array()
        .expect("event type enum")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    let server_types: Vec<&str> = xaa::core::model::AuditEventType::ALL
        .iter()
        .map(|event_type| event_type.as_str())
        .collect();
    assert_eq!(event_types, server_types);

    let algorithms: Vec<&str> = doc["components"]["schemas"]["JwsAlgorithm"]["enum"]
        .as_array()
        .expect("algorithm enum")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert_eq!(algorithms, xaa::core::admin::SUPPORTED_ALGS);
}

#[test]
fn route_list_matches_router_source() {
    let mut source_paths = routed_paths(include_str!("../src/server/admin.rs"));
    source_paths.extend(routed_paths(include_str!("../src/server/oauth.rs")));
    let listed: BTreeSet<String> = ROUTES
        .iter()
        .map(|(_, path)| blank_parameters(path))
        .collect();
    for path in &source_paths {
        assert!(
            listed.contains(path),
            "routed path {path} is missing from ROUTES"
        );
    }
    for path in &listed {
        assert!(
            source_paths.contains(path),
            "ROUTES lists {path}, which no router has"
        );
    }
}

#[test]
fn every_route_is_documented() {
    let doc = document();
    let documented: BTreeSet<(String, String)> = documented_operations(&doc).into_iter().collect();
    for (method, path) in ROUTES {
        assert!(
            documented.contains(&((*method).to_owned(), (*path).to_owned())),
            "{method} {path} is routed but not in the document"
        );
    }
    let listed: BTreeSet<(String, String)> = ROUTES
        .iter()
        .map(|(method, path)| ((*method).to_owned(), (*path).to_owned()))
        .collect();
    for (method, path) in &documented {
        assert!(
            listed.contains(&(method.clone(), path.clone())),
            "{method} {path} is documented but not in ROUTES"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn route_list_matches_router_methods() {
    let doc = document();
    let server = TestServer::start().await;
    let ids = Ids {
        provider: MISSING_ID,
        proxy: MISSING_ID,
        mapping: MISSING_ID,
        client_id: "missing-client".into(),
        jti: "missing-jti".into(),
    };
    let paths: BTreeSet<&str> = ROUTES.iter().map(|(_, path)| *path).collect();
    for path in paths {
        let concrete = fill_path(path, "GET", &ids);
        let base = if doc["paths"][path].get("servers").is_some() {
            &server.public_url
        } else {
            &server.admin_url
        };
        for method in PROBE_METHODS {
            let request = server
                .http
                .request(
                    Method::from_bytes(method.as_bytes()).expect("method"),
                    format!("{base}{concrete}"),
                )
                .bearer_auth(ADMIN_TOKEN);
            let reply = Reply::read(request.send().await.expect("request sent")).await;
            let what = format!("{method} {concrete} ({})", reply.status);
            if ROUTES.contains(&(method, path)) {
                assert_routed(&what, &reply);
            } else {
                assert_eq!(
                    reply.status,
                    StatusCode::METHOD_NOT_ALLOWED,
                    "{what}: the router serves a method that ROUTES does not list; body {:?}",
                    reply.text
                );
                // `/healthz` sits outside the admin router's fallbacks, so its 405 has no body.
                if base == &server.admin_url && path != "/healthz" {
                    let body: Value = serde_json::from_str(&reply.text).unwrap_or_else(|_| {
                        panic!("{what}: the 405 body is not JSON: {:?}", reply.text)
                    });
                    assert_eq!(body["error"], "method_not_allowed", "{what}: {body}");
                }
            }
        }
    }
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_documented_operation_is_routed() {
    let doc = document();
    let fixture = Fixture::start().await;
    for (method, path) in documented_operations(&doc) {
        let operation = &doc["paths"][&path][method.to_ascii_lowercase()];
        let content = &operation["requestBody"]["content"];
        let body = if content.get("application/json").is_some() {
            Body::Json(json!({}))
        } else if content.get("application/x-www-form-urlencoded").is_some() {
            Body::Form(String::new())
        } else {
            Body::None
        };
        let concrete = fill_path(&path, &method, &fixture.ids);
        // `call` fails on 405, on a 404 from the router and on an undocumented status.
        fixture.call(&doc, &method, &path, &concrete, body).await;
    }
    fixture.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_request_fields_are_rejected() {
    let doc = document();
    let fixture = Fixture::start().await;
    for (method, path) in documented_operations(&doc) {
        let operation = &doc["paths"][&path][method.to_ascii_lowercase()];
        let schema = &operation["requestBody"]["content"]["application/json"]["schema"];
        if resolve(&doc, schema)["additionalProperties"] != false {
            continue;
        }
        let concrete = fill_path(&path, &method, &fixture.ids);
        let body = Body::Json(json!({"undocumented_field": 1}));
        let reply = fixture.call(&doc, &method, &path, &concrete, body).await;
        assert_eq!(reply.status, 400, "{method} {concrete}: {}", reply.text);
        assert!(
            reply.text.contains("undocumented_field"),
            "{method} {concrete}: the message does not name the field: {}",
            reply.text
        );
    }
    fixture.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stats_and_mappings_match_schemas() {
    let doc = document();
    let fixture = Fixture::start().await;
    let (provider, proxy) = (fixture.ids.provider, fixture.ids.proxy);

    // Each statistics card's schema requires exactly the card's figures.
    let stats_schema = response_schema(&doc, "get", "/api/v1/xaa/stats", "200");
    let stats_properties = &resolve(&doc, stats_schema)["properties"];
    for (card, fields) in [
        (
            "id_jag_tokens",
            names(&["total", "active", "revoked", "last_token_at"]),
        ),
        (
            "jwks_cache",
            names(&["total_providers", "total_keys", "last_updated"]),
        ),
        (
            "client_mappings",
            names(&["total_mappings", "providers", "last_updated"]),
        ),
    ] {
        assert_eq!(
            required_names(&doc, &stats_properties[card]),
            fields,
            "{card}"
        );
    }
    let stats = fixture
        .get(&doc, "/api/v1/xaa/stats", "/api/v1/xaa/stats")
        .await;
    assert_eq!(stats.status, 200);
    assert_eq!(stats.json()["id_jag_tokens"]["total"], 1);
    let proxy_stats = fixture
        .get(
            &doc,
            "/api/v1/proxies/{proxyId}/xaa/stats",
            &format!("/api/v1/proxies/{proxy}/xaa/stats"),
        )
        .await;
    assert_eq!(proxy_stats.status, 200);

    // Each mapping in the list requires the fields that operators and scripts read.
    let mappings_path = "/api/v1/proxies/{proxyId}/xaa/client-mappings";
    let mapping_item = &response_schema(&doc, "get", mappings_path, "200")["items"];
    let mapping_fields = required_names(&doc, mapping_item);
    for field in [
        "id",
        "idp_provider_id",
        "idp_provider_name",
        "client_id_at_idp",
        "client_id_at_resource_as",
        "allowed_scopes",
        "created_at",
    ] {
        assert!(
            mapping_fields.contains(field),
            "mapping schema lacks {field}"
        );
    }
    let concrete_mappings = format!("/api/v1/proxies/{proxy}/xaa/client-mappings");
    let mappings = fixture.get(&doc, mappings_path, &concrete_mappings).await;
    assert_eq!(mappings.status, 200);
    assert_eq!(mappings.json().as_array().map(Vec::len), Some(1));

    // A second mapping for the same client: 201 without a secret, then 409 for a duplicate.
    let second = json!({
        "idp_provider_id": provider,
        "client_id_at_idp": "idp-client-2",
        "client_id_at_resource_as": "gateway-client",
        "allowed_scopes": ["openid"],
    });
    let created = fixture
        .call(
            &doc,
            "POST",
            mappings_path,
            &concrete_mappings,
            Body::Json(second.clone()),
        )
        .await;
    assert_eq!(created.status, 201, "{}", created.text);
    assert!(created.json().get("client_secret").is_none());
    let duplicate = fixture
        .call(
            &doc,
            "POST",
            mappings_path,
            &concrete_mappings,
            Body::Json(second),
        )
        .await;
    assert_eq!(duplicate.status, 409, "{}", duplicate.text);

    fixture.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn providers_match_schemas() {
    let doc = document();
    let fixture = Fixture::start().await;
    let (provider, proxy) = (fixture.ids.provider, fixture.ids.proxy);
    let mappings_path = "/api/v1/proxies/{proxyId}/xaa/client-mappings";
    let concrete_mappings = format!("/api/v1/proxies/{proxy}/xaa/client-mappings");

    // Providers: one, all, a change, a created one, and 422 for mapping a disabled one.
    let provider_path = "/api/v1/providers/{id}";
    let one = fixture
        .get(
            &doc,
            provider_path,
            &format!("/api/v1/providers/{provider}"),
        )
        .await;
    assert_eq!(one.status, 200);
    let provider_fields = required_names(&doc, response_schema(&doc, "get", provider_path, "200"));
    let provider_body = one.json();
    let sent: BTreeSet<String> = provider_body
        .as_object()
        .expect("provider object")
        .keys()
        .cloned()
        .collect();
    assert_eq!(sent, provider_fields, "provider fields");
    let all = fixture
        .get(&doc, "/api/v1/providers", "/api/v1/providers")
        .await;
    assert_eq!(all.status, 200);
    let disabled = fixture
        .call(
            &doc,
            "POST",
            "/api/v1/providers",
            "/api/v1/providers",
            Body::Json(json!({
                "name": "Disabled IdP",
                "issuer": "https://127.0.0.1:9/disabled",
                "enabled": false,
                "kind": null,
                "jwks_uri": null,
            })),
        )
        .await;
    assert_eq!(disabled.status, 201, "{}", disabled.text);
    let disabled_id = disabled.json()["id"].as_i64().expect("provider id");
    let refused = fixture
        .call(
            &doc,
            "POST",
            mappings_path,
            &concrete_mappings,
            Body::Json(json!({
                "idp_provider_id": disabled_id,
                "client_id_at_idp": "idp-client-3",
                "client_id_at_resource_as": "gateway-client",
                "allowed_scopes": ["openid"],
            })),
        )
        .await;
    assert_eq!(refused.status, 422, "{}", refused.text);
    let changed = fixture
        .call(
            &doc,
            "PATCH",
            provider_path,
            &format!("/api/v1/providers/{disabled_id}"),
            Body::Json(json!({"name": "Renamed IdP", "leeway_secs": 30})),
        )
        .await;
    assert_eq!(changed.status, 200, "{}", changed.text);
    let in_use = fixture
        .call(
            &doc,
            "DELETE",
            provider_path,
            &format!("/api/v1/providers/{provider}"),
            Body::None,
        )
        .await;
    assert_eq!(in_use.status, 409, "{}", in_use.text);
    fixture.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn key_refresh_matches_schemas() {
    let doc = document();
    let fixture = Fixture::start().await;
    let provider = fixture.ids.provider;

    let refreshed = fixture
        .call(
            &doc,
            "POST",
            "/api/v1/providers/{id}/refresh-keys",
            &format!("/api/v1/providers/{provider}/refresh-keys"),
            Body::None,
        )
        .await;
    assert_eq!(refreshed.status, 200, "{}", refreshed.text);
    let health = fixture
        .get(&doc, "/api/v1/xaa/jwks-health", "/api/v1/xaa/jwks-health")
        .await;
    assert_eq!(health.status, 200);

    // A key set fetch that fails at the IdP is the IdP's failure, not the store's.
    fixture.idp.set_mode(Mode::Error500);
    let failed_refresh = fixture
        .call(
            &doc,
            "POST",
            "/api/v1/providers/{id}/refresh-keys",
            &format!("/api/v1/providers/{provider}/refresh-keys"),
            Body::None,
        )
        .await;
    assert_eq!(failed_refresh.status, 502, "{}", failed_refresh.text);
    assert_eq!(failed_refresh.json()["error"], "upstream_failed");

    fixture.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn proxies_and_errors_match_schemas() {
    let doc = document();
    let fixture = Fixture::start().await;
    let proxy = fixture.ids.proxy;

    // Proxies: listed, read, changed, created.
    let proxy_path = "/api/v1/proxies/{id}";
    for (method, template, concrete, body) in [
        (
            "GET",
            "/api/v1/proxies",
            "/api/v1/proxies".to_owned(),
            Body::None,
        ),
        (
            "GET",
            proxy_path,
            format!("/api/v1/proxies/{proxy}"),
            Body::None,
        ),
        (
            "PATCH",
            proxy_path,
            format!("/api/v1/proxies/{proxy}"),
            Body::Json(json!({"require_resource": false})),
        ),
        (
            "POST",
            "/api/v1/proxies",
            "/api/v1/proxies".to_owned(),
            Body::Json(
                json!({"name": "mcp-tools", "kind": "mcp", "resource": "https://mcp.example.com"}),
            ),
        ),
    ] {
        let reply = fixture.call(&doc, method, template, &concrete, body).await;
        assert!(
            reply.status.is_success(),
            "{method} {concrete}: {}",
            reply.text
        );
    }

    // Bodies over server.body_max_bytes, which is 64 KiB in the test configuration.
    let padding = "x".repeat(70 * 1024);
    let oversized_json = fixture
        .call(
            &doc,
            "POST",
            "/api/v1/xaa/revoke-token",
            "/api/v1/xaa/revoke-token",
            Body::Json(json!({ "jti": padding })),
        )
        .await;
    assert_eq!(oversized_json.status, 413, "{}", oversized_json.text);
    let oversized_form = fixture
        .call(
            &doc,
            "POST",
            "/proxies/{proxyId}/oauth2/token",
            &format!("/proxies/{proxy}/oauth2/token"),
            Body::Form(format!("assertion={padding}")),
        )
        .await;
    assert_eq!(oversized_form.status, 413, "{}", oversized_form.text);

    // Errors of the shared shape, and the health check without a token.
    let unauthorized = Reply::read(
        fixture
            .server
            .http
            .get(format!("{}/api/v1/xaa/stats", fixture.server.admin_url))
            .send()
            .await
            .expect("request sent"),
    )
    .await;
    assert_documented_reply(
        &doc,
        "GET",
        "/api/v1/xaa/stats",
        "/api/v1/xaa/stats",
        &unauthorized,
    );
    assert_eq!(unauthorized.status, 401);
    let bad_id = fixture.get(&doc, proxy_path, "/api/v1/proxies/abc").await;
    assert_eq!(bad_id.status, 400);
    let health = Reply::read(
        fixture
            .server
            .http
            .get(format!("{}/healthz", fixture.server.admin_url))
            .send()
            .await
            .expect("request sent"),
    )
    .await;
    assert_documented_reply(&doc, "GET", "/healthz", "/healthz", &health);
    assert_eq!(health.status, 200);

    fixture.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokens_and_revocation_match_schemas() {
    let doc = document();
    let fixture = Fixture::start().await;
    let ids = &fixture.ids;
    let (provider, proxy) = (fixture.ids.provider, fixture.ids.proxy);

    // Tokens: the listing, the lineage and a filter by status.
    let tokens = fixture
        .get(
            &doc,
            "/api/v1/xaa/tokens",
            &format!("/api/v1/xaa/tokens?proxy_id={proxy}&status=active&limit=10"),
        )
        .await;
    assert_eq!(tokens.status, 200);
    assert_eq!(tokens.json().as_array().map(Vec::len), Some(1));
    let bad_status = fixture
        .get(&doc, "/api/v1/xaa/tokens", "/api/v1/xaa/tokens?status=old")
        .await;
    assert_eq!(bad_status.status, 400);
    let lineage = fixture
        .get(
            &doc,
            "/api/v1/xaa/tokens/{jti}",
            &format!("/api/v1/xaa/tokens/{}", ids.jti),
        )
        .await;
    assert_eq!(lineage.status, 200);
    assert_eq!(
        lineage.json()[0]["access_tokens"].as_array().map(Vec::len),
        Some(1)
    );

    // Introspection while the access token is active.
    let introspect_path = "/proxies/{proxyId}/oauth2/introspect";
    let form =
        serde_urlencoded::to_string([("token", fixture.access_token.as_str())]).expect("form");
    let active = fixture
        .call(
            &doc,
            "POST",
            introspect_path,
            &format!("/proxies/{proxy}/oauth2/introspect"),
            Body::Form(form.clone()),
        )
        .await;
    assert_eq!(active.status, 200);
    assert_eq!(active.json()["active"], true);

    // Revocation by JTI twice, then by subject.
    let revoke = json!({"jti": ids.jti, "reason": "test"});
    for already in [false, true] {
        let reply = fixture
            .call(
                &doc,
                "POST",
                "/api/v1/xaa/revoke-token",
                "/api/v1/xaa/revoke-token",
                Body::Json(revoke.clone()),
            )
            .await;
        assert_eq!(reply.status, 200, "{}", reply.text);
        assert_eq!(reply.json()["already_revoked"], already);
    }
    let unknown = fixture
        .call(
            &doc,
            "POST",
            "/api/v1/xaa/revoke-token",
            "/api/v1/xaa/revoke-token",
            Body::Json(json!({"jti": "no-such-jti"})),
        )
        .await;
    assert_eq!(unknown.status, 404, "{}", unknown.text);
    let by_subject = fixture
        .call(
            &doc,
            "POST",
            "/api/v1/xaa/revoke-tokens-by-subject",
            "/api/v1/xaa/revoke-tokens-by-subject",
            Body::Json(json!({"idp_provider_id": provider, "subject": "alice@example.com"})),
        )
        .await;
    assert_eq!(by_subject.status, 200, "{}", by_subject.text);
    let inactive = fixture
        .call(
            &doc,
            "POST",
            introspect_path,
            &format!("/proxies/{proxy}/oauth2/introspect"),
            Body::Form(form),
        )
        .await;
    assert_eq!(inactive.json(), json!({"active": false}));

    fixture.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn audit_matches_schemas() {
    let doc = document();
    let fixture = Fixture::start().await;
    let proxy = fixture.ids.proxy;

    let audit = fixture
        .get(
            &doc,
            "/api/v1/xaa/audit",
            &format!("/api/v1/xaa/audit?proxy_id={proxy}&limit=50"),
        )
        .await;
    assert_eq!(audit.status, 200);
    let events = audit.json();
    let types: BTreeSet<&str> = events
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|event| event["event_type"].as_str())
        .collect();
    assert!(types.contains("xaa_client_mapping_created"), "{types:?}");
    assert!(types.contains("xaa_token_exchange"), "{types:?}");
    let exchanges = fixture
        .get(
            &doc,
            "/api/v1/xaa/audit",
            "/api/v1/xaa/audit?event_type=xaa_token_exchange&after_id=0",
        )
        .await;
    assert_eq!(exchanges.status, 200);
    assert_eq!(exchanges.json().as_array().map(Vec::len), Some(1));
    let bad_type = fixture
        .get(
            &doc,
            "/api/v1/xaa/audit",
            "/api/v1/xaa/audit?event_type=other",
        )
        .await;
    assert_eq!(bad_type.status, 400);

    fixture.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oauth_endpoints_and_secrets_match_schemas() {
    let doc = document();
    let fixture = Fixture::start().await;
    let ids = &fixture.ids;
    let proxy = fixture.ids.proxy;

    // The proxy's keys and its authorization server metadata.
    for (template, concrete) in [
        (
            "/proxies/{proxyId}/jwks.json",
            format!("/proxies/{proxy}/jwks.json"),
        ),
        (
            "/.well-known/oauth-authorization-server/proxies/{proxyId}",
            format!("/.well-known/oauth-authorization-server/proxies/{proxy}"),
        ),
    ] {
        let reply = fixture.get(&doc, template, &concrete).await;
        assert_eq!(reply.status, 200, "{concrete}");
    }

    // Secrets, the token endpoint with the rotated secret, and mapping removal.
    let rotated = fixture
        .call(
            &doc,
            "POST",
            "/api/v1/proxies/{proxyId}/xaa/clients/{clientId}/rotate-secret",
            &format!("/api/v1/proxies/{proxy}/xaa/clients/gateway-client/rotate-secret"),
            Body::None,
        )
        .await;
    assert_eq!(rotated.status, 200, "{}", rotated.text);
    let new_secret = rotated.json()["client_secret"]
        .as_str()
        .expect("new secret")
        .to_owned();
    assert_ne!(new_secret, fixture.secret);
    let claims = fixture.idp.claims(
        &fixture.server.issuer(proxy),
        "idp-client",
        "bob@example.com",
    );
    let token_form = serde_urlencoded::to_string([
        ("grant_type", "urn:ietf:params:oauth:grant-type:jwt-bearer"),
        ("assertion", fixture.idp.mint(&claims).as_str()),
        ("client_id", "gateway-client"),
        ("client_secret", new_secret.as_str()),
    ])
    .expect("form");
    let token = fixture
        .call(
            &doc,
            "POST",
            "/proxies/{proxyId}/oauth2/token",
            &format!("/proxies/{proxy}/oauth2/token"),
            Body::Form(token_form),
        )
        .await;
    assert_eq!(token.status, 200, "{}", token.text);
    let deleted = fixture
        .call(
            &doc,
            "DELETE",
            "/api/v1/proxies/{proxyId}/xaa/client-mappings/{mappingId}",
            &format!(
                "/api/v1/proxies/{proxy}/xaa/client-mappings/{}",
                ids.mapping
            ),
            Body::None,
        )
        .await;
    assert_eq!(deleted.status, 204, "{}", deleted.text);

    fixture.stop().await;
}
