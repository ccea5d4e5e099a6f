//! The public, per-proxy OAuth endpoints: token (RFC 7523 JWT-bearer grant), introspection
//! (RFC 7662), revocation (RFC 7009), the proxy's JWKS and its RFC 8414 metadata.
//!
//! This module owns the HTTP layer of the token endpoint: content type, parameter parsing and
//! client credentials. Everything about the ID-JAG itself is the core's.

use axum::Router;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Value, json};
use subtle::ConstantTimeEq;

use super::AppState;
use crate::core::exchange::{ClientCredentials, ExchangeError, ExchangeRequest, OAuthErrorCode};
use crate::core::introspect::IntrospectionCaller;

const JWT_BEARER: &str = "urn:ietf:params:oauth:grant-type:jwt-bearer";

/// The routes of the public listener.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/proxies/{proxy}/oauth2/token", post(token))
        .route("/proxies/{proxy}/oauth2/introspect", post(introspect))
        .route("/proxies/{proxy}/oauth2/revoke", post(revoke))
        .route("/proxies/{proxy}/jwks.json", get(jwks))
        .route(
            "/.well-known/oauth-authorization-server/proxies/{proxy}",
            get(metadata),
        )
}

/// An OAuth error response (RFC 6749 §5.2) with `Cache-Control: no-store`.
#[derive(Debug)]
pub struct OAuthError {
    code: OAuthErrorCode,
    status: StatusCode,
}

impl OAuthError {
    fn new(code: OAuthErrorCode) -> Self {
        let status = StatusCode::from_u16(code.status()).unwrap_or(StatusCode::BAD_REQUEST);
        Self { code, status }
    }

    fn not_found() -> Self {
        Self {
            code: OAuthErrorCode::InvalidRequest,
            status: StatusCode::NOT_FOUND,
        }
    }

    /// A body that could not be read: over the size limit (413) or broken (400).
    fn from_body(rejection: &BytesRejection) -> Self {
        let status = if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
            StatusCode::PAYLOAD_TOO_LARGE
        } else {
            StatusCode::BAD_REQUEST
        };
        Self {
            code: OAuthErrorCode::InvalidRequest,
            status,
        }
    }
}

impl From<ExchangeError> for OAuthError {
    fn from(error: ExchangeError) -> Self {
        if error.reason == "unknown_proxy" {
            return Self::not_found();
        }
        Self::new(error.code)
    }
}

impl IntoResponse for OAuthError {
    fn into_response(self) -> Response {
        let description = if self.status == StatusCode::NOT_FOUND {
            "unknown proxy"
        } else {
            self.code.description()
        };
        let body = json!({ "error": self.code.as_str(), "error_description": description });
        let mut response = (self.status, no_store_headers(), body.to_string()).into_response();
        let headers = response.headers_mut();
        if self.code == OAuthErrorCode::InvalidClient {
            headers.insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Basic realm=\"xaa\""),
            );
        }
        if self.code == OAuthErrorCode::TemporarilyUnavailable {
            headers.insert(header::RETRY_AFTER, HeaderValue::from_static("5"));
        }
        response
    }
}

fn no_store_headers() -> [(header::HeaderName, HeaderValue); 3] {
    [
        (
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json;charset=UTF-8"),
        ),
        (header::CACHE_CONTROL, HeaderValue::from_static("no-store")),
        (header::PRAGMA, HeaderValue::from_static("no-cache")),
    ]
}

fn json_no_store(status: StatusCode, body: &Value) -> Response {
    (status, no_store_headers(), body.to_string()).into_response()
}

fn invalid_request() -> OAuthError {
    OAuthError::new(OAuthErrorCode::InvalidRequest)
}

fn invalid_client() -> OAuthError {
    OAuthError::new(OAuthErrorCode::InvalidClient)
}

fn parse_proxy_id(text: &str) -> Result<i64, OAuthError> {
    text.parse().map_err(|_| OAuthError::not_found())
}

/// Form parameters with RFC 6749 §3.2 rules: a repeated parameter is an error, an empty value
/// counts as absent, and unknown parameters are ignored.
struct Form {
    pairs: Vec<(String, String)>,
}

impl Form {
    fn parse(headers: &HeaderMap, body: &[u8]) -> Result<Self, OAuthError> {
        let content_type = headers
            .get(header::CONTENT_TYPE)
            .and_then(|value| value.to_str().ok())
            .unwrap_or_default();
        let media_type = content_type.split(';').next().unwrap_or_default().trim();
        if !media_type.eq_ignore_ascii_case("application/x-www-form-urlencoded") {
            return Err(invalid_request());
        }
        std::str::from_utf8(body).map_err(|_| invalid_request())?;
        let mut pairs: Vec<(String, String)> = Vec::new();
        for (name, value) in url::form_urlencoded::parse(body) {
            if pairs.iter().any(|(existing, _)| *existing == name) {
                return Err(invalid_request());
            }
            pairs.push((name.into_owned(), value.into_owned()));
        }
        Ok(Self { pairs })
    }

    fn get(&self, name: &str) -> Option<&str> {
        self.pairs
            .iter()
            .find(|(key, value)| key == name && !value.is_empty())
            .map(|(_, value)| value.as_str())
    }
}

/// Decodes `Authorization: Basic`, whose id and secret are form-urlencoded before base64
/// (RFC 6749 §2.3.1), so ids with `:` or `/` survive.
fn basic_credentials(headers: &HeaderMap) -> Result<Option<ClientCredentials>, OAuthError> {
    let Some(value) = headers.get(header::AUTHORIZATION) else {
        return Ok(None);
    };
    let text = value.to_str().map_err(|_| invalid_client())?;
    let Some((scheme, encoded)) = text.split_once(' ') else {
        return Err(invalid_client());
    };
    if !scheme.eq_ignore_ascii_case("basic") {
        return Ok(None);
    }
    let decoded = STANDARD
        .decode(encoded.trim())
        .map_err(|_| invalid_client())?;
    let decoded = String::from_utf8(decoded).map_err(|_| invalid_client())?;
    let (id, secret) = decoded.split_once(':').ok_or_else(invalid_client)?;
    let unescape = |part: &str| -> String {
        url::form_urlencoded::parse(format!("v={part}").as_bytes())
            .next()
            .map(|(_, value)| value.into_owned())
            .unwrap_or_default()
    };
    Ok(Some(ClientCredentials {
        client_id: unescape(id),
        secret: unescape(secret),
    }))
}

/// Finds the client's credentials: exactly one method, and never a public client.
fn client_credentials(headers: &HeaderMap, form: &Form) -> Result<ClientCredentials, OAuthError> {
    let basic = basic_credentials(headers)?;
    let post_secret = form.get("client_secret");
    if basic.is_some() && (post_secret.is_some() || form.get("client_assertion").is_some()) {
        return Err(invalid_request());
    }
    if let Some(credentials) = basic {
        if let Some(body_id) = form.get("client_id")
            && body_id != credentials.client_id
        {
            return Err(invalid_request());
        }
        return Ok(credentials);
    }
    if form.get("client_assertion").is_some() {
        // private_key_jwt is not supported yet, so such a client cannot authenticate.
        return Err(invalid_client());
    }
    match (form.get("client_id"), post_secret) {
        (Some(client_id), Some(secret)) => Ok(ClientCredentials {
            client_id: client_id.to_owned(),
            secret: secret.to_owned(),
        }),
        _ => Err(invalid_client()),
    }
}

async fn token(
    State(state): State<AppState>,
    Path(proxy): Path<String>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, OAuthError> {
    let body = body.map_err(|rejection| OAuthError::from_body(&rejection))?;
    let proxy_id = parse_proxy_id(&proxy)?;
    if !state.core.proxy_exists(proxy_id).await {
        return Err(OAuthError::not_found());
    }
    let form = Form::parse(&headers, &body)?;
    match form.get("grant_type") {
        None => return Err(invalid_request()),
        Some(JWT_BEARER) => {}
        Some(_) => return Err(OAuthError::new(OAuthErrorCode::UnsupportedGrantType)),
    }
    let client = client_credentials(&headers, &form)?;
    let assertion = form.get("assertion").ok_or_else(invalid_request)?;

    let request = ExchangeRequest {
        proxy_id,
        client,
        assertion: assertion.to_owned(),
        scope: form.get("scope").map(str::to_owned),
        resource: form.get("resource").map(str::to_owned),
    };
    match state.core.exchange(request).await {
        Ok(response) => {
            let body = serde_json::to_value(&response).unwrap_or_default();
            Ok(json_no_store(StatusCode::OK, &body))
        }
        Err(error) => {
            tracing::debug!(proxy_id, reason = error.reason, "token request rejected");
            Err(error.into())
        }
    }
}

/// The caller of introspection: a client of the proxy, or the gateway with the admin token.
fn introspection_caller(
    state: &AppState,
    headers: &HeaderMap,
    form: &Form,
) -> Result<IntrospectionCaller, OAuthError> {
    let bearer = headers
        .get(header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(|text| text.strip_prefix("Bearer "));
    if let Some(token) = bearer {
        return if bool::from(token.as_bytes().ct_eq(state.admin_token.as_bytes())) {
            Ok(IntrospectionCaller::Gateway)
        } else {
            Err(invalid_client())
        };
    }
    client_credentials(headers, form).map(IntrospectionCaller::Client)
}

async fn introspect(
    State(state): State<AppState>,
    Path(proxy): Path<String>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, OAuthError> {
    let body = body.map_err(|rejection| OAuthError::from_body(&rejection))?;
    let proxy_id = parse_proxy_id(&proxy)?;
    if !state.core.proxy_exists(proxy_id).await {
        return Err(OAuthError::not_found());
    }
    let form = Form::parse(&headers, &body)?;
    let caller = introspection_caller(&state, &headers, &form)?;
    let token = form.get("token").ok_or_else(invalid_request)?;
    let answer = state.core.introspect(proxy_id, &caller, token).await?;
    Ok(json_no_store(StatusCode::OK, &answer))
}

async fn revoke(
    State(state): State<AppState>,
    Path(proxy): Path<String>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, OAuthError> {
    let body = body.map_err(|rejection| OAuthError::from_body(&rejection))?;
    let proxy_id = parse_proxy_id(&proxy)?;
    if !state.core.proxy_exists(proxy_id).await {
        return Err(OAuthError::not_found());
    }
    let form = Form::parse(&headers, &body)?;
    let client = client_credentials(&headers, &form)?;
    let token = form.get("token").ok_or_else(invalid_request)?;
    state
        .core
        .revoke_by_client(proxy_id, &client, token)
        .await?;
    Ok((StatusCode::OK, no_store_headers()).into_response())
}

async fn jwks(State(state): State<AppState>, Path(proxy): Path<String>) -> Response {
    let Ok(proxy_id) = proxy.parse::<i64>() else {
        return OAuthError::not_found().into_response();
    };
    if !state.core.proxy_exists(proxy_id).await {
        return OAuthError::not_found().into_response();
    }
    let body = state.core.signing_keys().jwks();
    (
        [
            (header::CONTENT_TYPE, "application/jwk-set+json"),
            (header::CACHE_CONTROL, "max-age=300"),
        ],
        body.to_string(),
    )
        .into_response()
}

async fn metadata(State(state): State<AppState>, Path(proxy): Path<String>) -> Response {
    let Ok(proxy_id) = proxy.parse::<i64>() else {
        return OAuthError::not_found().into_response();
    };
    if !state.core.proxy_exists(proxy_id).await {
        return OAuthError::not_found().into_response();
    }
    let issuer = state.core.config().proxy_issuer(proxy_id);
    // RFC 8414 requires response_types_supported even without an authorization endpoint; the
    // empty list states that none is offered.
    let body = json!({
        "issuer": issuer,
        "token_endpoint": format!("{issuer}/oauth2/token"),
        "jwks_uri": format!("{issuer}/jwks.json"),
        "introspection_endpoint": format!("{issuer}/oauth2/introspect"),
        "revocation_endpoint": format!("{issuer}/oauth2/revoke"),
        "grant_types_supported": [JWT_BEARER],
        "authorization_grant_profiles_supported": ["urn:ietf:params:oauth:grant-profile:id-jag"],
        "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
        "introspection_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
        "revocation_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
        "response_types_supported": [],
    });
    (
        [(header::CONTENT_TYPE, "application/json")],
        body.to_string(),
    )
        .into_response()
}
