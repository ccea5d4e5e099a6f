//! The REST admin API under `/api/v1`, plus `/healthz` and `/metrics`.
//!
//! Every `/api/v1` and `/metrics` request needs `Authorization: Bearer <admin token>`.
//! `/healthz` is open so load balancers can probe it, and reports only up or down.
//! Errors are `{"error": "<code>", "message": "<what failed, on which value, what to do>"}`.

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, Query, Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::json;
use subtle::ConstantTimeEq;

use super::AppState;
use crate::core::CoreError;
use crate::core::model::{
    AuditEventType, AuditQuery, NewMapping, NewProvider, NewProxy, ProviderPatch, ProxyPatch,
    TokenQuery,
};

/// An admin API error with its status.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    code: &'static str,
    message: String,
}

impl ApiError {
    fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
        }
    }

    fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "invalid_request", message)
    }
}

impl From<CoreError> for ApiError {
    fn from(error: CoreError) -> Self {
        match error {
            CoreError::InvalidInput(message) => Self::bad_request(message),
            CoreError::NotFound(message) => Self::new(StatusCode::NOT_FOUND, "not_found", message),
            CoreError::Conflict(message) => Self::new(StatusCode::CONFLICT, "conflict", message),
            CoreError::ProviderDisabled(message) => Self::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "provider_disabled",
                message,
            ),
            CoreError::Upstream(message) => {
                tracing::warn!(%message, "admin request failed: identity provider unreachable");
                Self::new(StatusCode::BAD_GATEWAY, "upstream_failed", message)
            }
            CoreError::Unavailable(message) => {
                tracing::error!(%message, "admin request failed: store unavailable");
                Self::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "unavailable",
                    "the store is unavailable; retry shortly and check the server log",
                )
            }
            CoreError::Internal(message) => {
                tracing::error!(%message, "admin request failed");
                Self::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "internal_error",
                    "internal error; the server log has the details",
                )
            }
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = json!({ "error": self.code, "message": self.message });
        (self.status, Json(body)).into_response()
    }
}

type ApiResult<T> = Result<T, ApiError>;

/// The routes of the admin listener.
pub fn router(state: AppState) -> Router<AppState> {
    let api = Router::new()
        .route(
            "/api/v1/providers",
            get(list_providers).post(create_provider),
        )
        .route(
            "/api/v1/providers/{id}",
            get(get_provider)
                .patch(update_provider)
                .delete(delete_provider),
        )
        .route(
            "/api/v1/providers/{id}/refresh-keys",
            post(refresh_provider_keys),
        )
        .route("/api/v1/proxies", get(list_proxies).post(create_proxy))
        .route(
            "/api/v1/proxies/{id}",
            get(get_proxy).patch(update_proxy).delete(delete_proxy),
        )
        .route(
            "/api/v1/proxies/{proxy_id}/xaa/client-mappings",
            get(list_mappings).post(create_mapping),
        )
        .route(
            "/api/v1/proxies/{proxy_id}/xaa/client-mappings/{mapping_id}",
            axum::routing::delete(delete_mapping),
        )
        .route(
            "/api/v1/proxies/{proxy_id}/xaa/clients/{client_id}/rotate-secret",
            post(rotate_secret),
        )
        .route("/api/v1/proxies/{proxy_id}/xaa/stats", get(proxy_stats))
        .route("/api/v1/xaa/stats", get(global_stats))
        .route("/api/v1/xaa/revoke-token", post(revoke_token))
        .route(
            "/api/v1/xaa/revoke-tokens-by-subject",
            post(revoke_by_subject),
        )
        .route("/api/v1/xaa/tokens", get(list_tokens))
        .route("/api/v1/xaa/tokens/{jti}", get(token_lineage))
        .route("/api/v1/xaa/audit", get(query_audit))
        .route("/api/v1/xaa/jwks-health", get(jwks_health))
        .route("/api/v1/openapi.json", get(openapi))
        .route("/metrics", get(metrics))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(middleware::from_fn_with_state(state, require_admin_token));
    Router::new().route("/healthz", get(healthz)).merge(api)
}

async fn require_admin_token(
    State(state): State<AppState>,
    request: Request,
    next: Next,
) -> Response {
    let presented = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(|text| text.strip_prefix("Bearer "))
        .map(str::trim);
    match presented {
        Some(token) if bool::from(token.as_bytes().ct_eq(state.admin_token.as_bytes())) => {
            next.run(request).await
        }
        Some(_) => ApiError::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "the admin bearer token is wrong; use the value of XAA_ADMIN_TOKEN or <data_dir>/admin-token",
        )
        .into_response(),
        None => ApiError::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "missing 'Authorization: Bearer <admin token>'; the token is in <data_dir>/admin-token",
        )
        .into_response(),
    }
}

async fn not_found() -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "not_found",
        "no such endpoint; see /api/v1/openapi.json",
    )
}

async fn method_not_allowed() -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        "this endpoint does not accept that method; see /api/v1/openapi.json",
    )
}

/// The JSON of a proxy, with its issuer identifier and token endpoint.
fn proxy_json(state: &AppState, proxy: &crate::core::model::Proxy) -> serde_json::Value {
    let issuer = state.core.config().proxy_issuer(proxy.id);
    let mut value = serde_json::to_value(proxy).unwrap_or_default();
    value["issuer"] = issuer.clone().into();
    value["token_endpoint"] = format!("{issuer}/oauth2/token").into();
    value
}

fn parse_id(name: &str, text: &str) -> ApiResult<i64> {
    text.parse::<i64>()
        .ok()
        .filter(|id| *id > 0)
        .ok_or_else(|| {
            ApiError::bad_request(format!(
                "{name} '{}' is not a positive integer",
                text.escape_default()
            ))
        })
}

/// Parses a JSON body into `T`, with the same error shape as every other admin error.
fn parse_json<T: DeserializeOwned>(
    headers: &HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult<T> {
    let body = body.map_err(|rejection| {
        if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "payload_too_large",
                "the body is larger than server.body_max_bytes",
            )
        } else {
            ApiError::bad_request(format!("cannot read the body: {}", rejection.body_text()))
        }
    })?;
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .unwrap_or_default();
    if !content_type
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .eq_ignore_ascii_case("application/json")
    {
        return Err(ApiError::bad_request(
            "the body must be JSON; send 'Content-Type: application/json'",
        ));
    }
    serde_json::from_slice(&body)
        .map_err(|error| ApiError::bad_request(format!("invalid JSON body: {error}")))
}

fn actor_from(headers: &HeaderMap) -> String {
    headers
        .get("x-xaa-actor")
        .and_then(|value| value.to_str().ok())
        .filter(|text| !text.is_empty() && text.len() <= 256)
        .map_or_else(|| "admin-api".to_owned(), str::to_owned)
}

// -- Providers ------------------------------------------------------------------------------

async fn list_providers(State(state): State<AppState>) -> ApiResult<Response> {
    Ok(Json(state.core.list_providers().await?).into_response())
}

async fn get_provider(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> ApiResult<Response> {
    let id = parse_id("provider id", &id)?;
    let provider = state
        .core
        .store()
        .get_provider(id)
        .await
        .map_err(CoreError::from)?;
    Ok(Json(provider).into_response())
}

async fn create_provider(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult<Response> {
    let new: NewProvider = parse_json(&headers, body)?;
    let provider = state.core.create_provider(new).await?;
    Ok((StatusCode::CREATED, Json(provider)).into_response())
}

async fn update_provider(
    State(state): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult<Response> {
    let id = parse_id("provider id", &id)?;
    let patch: ProviderPatch = parse_json(&headers, body)?;
    Ok(Json(state.core.update_provider(id, patch).await?).into_response())
}

async fn delete_provider(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    let id = parse_id("provider id", &id)?;
    state.core.delete_provider(id).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn refresh_provider_keys(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> ApiResult<Response> {
    let id = parse_id("provider id", &id)?;
    let key_count = state.core.refresh_provider_keys(id).await?;
    Ok(Json(json!({ "idp_provider_id": id, "key_count": key_count })).into_response())
}

async fn jwks_health(State(state): State<AppState>) -> Response {
    Json(state.core.jwks().health()).into_response()
}

// -- Proxies --------------------------------------------------------------------------------

async fn list_proxies(State(state): State<AppState>) -> ApiResult<Response> {
    let proxies = state.core.list_proxies().await?;
    let listed: Vec<_> = proxies
        .iter()
        .map(|proxy| proxy_json(&state, proxy))
        .collect();
    Ok(Json(listed).into_response())
}

async fn get_proxy(State(state): State<AppState>, Path(id): Path<String>) -> ApiResult<Response> {
    let id = parse_id("proxy id", &id)?;
    let proxy = state.core.get_proxy(id).await?;
    Ok(Json(proxy_json(&state, &proxy)).into_response())
}

async fn create_proxy(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult<Response> {
    let new: NewProxy = parse_json(&headers, body)?;
    let proxy = state.core.create_proxy(new).await?;
    Ok((StatusCode::CREATED, Json(proxy_json(&state, &proxy))).into_response())
}

async fn update_proxy(
    State(state): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult<Response> {
    let id = parse_id("proxy id", &id)?;
    let patch: ProxyPatch = parse_json(&headers, body)?;
    let proxy = state.core.update_proxy(id, patch).await?;
    Ok(Json(proxy_json(&state, &proxy)).into_response())
}

async fn delete_proxy(
    State(state): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> ApiResult<StatusCode> {
    let id = parse_id("proxy id", &id)?;
    state.core.delete_proxy(id, &actor_from(&headers)).await?;
    Ok(StatusCode::NO_CONTENT)
}

// -- Client mappings ------------------------------------------------------------------------

async fn list_mappings(
    State(state): State<AppState>,
    Path(proxy_id): Path<String>,
) -> ApiResult<Response> {
    let proxy_id = parse_id("proxyId", &proxy_id)?;
    Ok(Json(state.core.list_mappings(proxy_id).await?).into_response())
}

async fn create_mapping(
    State(state): State<AppState>,
    Path(proxy_id): Path<String>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult<Response> {
    let proxy_id = parse_id("proxyId", &proxy_id)?;
    let new: NewMapping = parse_json(&headers, body)?;
    let created = state
        .core
        .create_mapping(proxy_id, new, &actor_from(&headers))
        .await?;
    Ok((StatusCode::CREATED, Json(created)).into_response())
}

async fn delete_mapping(
    State(state): State<AppState>,
    Path((proxy_id, mapping_id)): Path<(String, String)>,
    headers: HeaderMap,
) -> ApiResult<StatusCode> {
    let proxy_id = parse_id("proxyId", &proxy_id)?;
    let mapping_id = parse_id("mappingId", &mapping_id)?;
    state
        .core
        .delete_mapping(proxy_id, mapping_id, &actor_from(&headers))
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn rotate_secret(
    State(state): State<AppState>,
    Path((proxy_id, client_id)): Path<(String, String)>,
) -> ApiResult<Response> {
    let proxy_id = parse_id("proxyId", &proxy_id)?;
    let secret = state
        .core
        .rotate_client_secret(proxy_id, &client_id)
        .await?;
    Ok(Json(json!({ "client_id": client_id, "client_secret": secret })).into_response())
}

// -- Statistics -----------------------------------------------------------------------------

async fn global_stats(State(state): State<AppState>) -> ApiResult<Response> {
    Ok(Json(state.core.stats(None).await?).into_response())
}

async fn proxy_stats(
    State(state): State<AppState>,
    Path(proxy_id): Path<String>,
) -> ApiResult<Response> {
    let proxy_id = parse_id("proxyId", &proxy_id)?;
    Ok(Json(state.core.stats(Some(proxy_id)).await?).into_response())
}

// -- Revocation -----------------------------------------------------------------------------

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RevokeTokenBody {
    jti: String,
    reason: Option<String>,
    revoked_by: Option<String>,
}

async fn revoke_token(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult<Response> {
    let request: RevokeTokenBody = parse_json(&headers, body)?;
    let revoked_by = request.revoked_by.or_else(|| Some(actor_from(&headers)));
    let result = state
        .core
        .revoke_token(&request.jti, request.reason, revoked_by)
        .await?;
    Ok(Json(result).into_response())
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RevokeSubjectBody {
    idp_provider_id: i64,
    subject: String,
    reason: Option<String>,
    revoked_by: Option<String>,
}

async fn revoke_by_subject(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult<Response> {
    let request: RevokeSubjectBody = parse_json(&headers, body)?;
    let revoked_by = request.revoked_by.or_else(|| Some(actor_from(&headers)));
    let result = state
        .core
        .revoke_subject(
            request.idp_provider_id,
            &request.subject,
            request.reason,
            revoked_by,
        )
        .await?;
    Ok(Json(result).into_response())
}

// -- Tokens and audit -----------------------------------------------------------------------

async fn list_tokens(
    State(state): State<AppState>,
    query: Result<Query<TokenQuery>, axum::extract::rejection::QueryRejection>,
) -> ApiResult<Response> {
    let Query(query) = query.map_err(|error| ApiError::bad_request(error.body_text()))?;
    Ok(Json(state.core.list_tokens(&query).await?).into_response())
}

async fn token_lineage(
    State(state): State<AppState>,
    Path(jti): Path<String>,
) -> ApiResult<Response> {
    let records = state.core.token_lineage(&jti).await?;
    if records.is_empty() {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "not_found",
            format!("no ID-JAG with jti '{jti}' is recorded"),
        ));
    }
    let lineage: Vec<_> = records
        .into_iter()
        .map(|(record, access_tokens)| json!({ "id_jag": record, "access_tokens": access_tokens }))
        .collect();
    Ok(Json(lineage).into_response())
}

#[derive(Debug, Deserialize)]
struct AuditParams {
    event_type: Option<String>,
    proxy_id: Option<i64>,
    idp_provider_id: Option<i64>,
    after_id: Option<i64>,
    limit: Option<i64>,
}

async fn query_audit(
    State(state): State<AppState>,
    params: Result<Query<AuditParams>, axum::extract::rejection::QueryRejection>,
) -> ApiResult<Response> {
    let Query(params) = params.map_err(|error| ApiError::bad_request(error.body_text()))?;
    let event_type = params
        .event_type
        .map(|text| text.parse::<AuditEventType>())
        .transpose()
        .map_err(|error| ApiError::bad_request(format!("event_type {error}")))?;
    let query = AuditQuery {
        event_type,
        proxy_id: params.proxy_id,
        idp_provider_id: params.idp_provider_id,
        after_id: params.after_id,
        since: None,
        limit: params.limit,
    };
    Ok(Json(state.core.query_audit(&query).await?).into_response())
}

// -- Health, metrics, OpenAPI ---------------------------------------------------------------

async fn healthz(State(state): State<AppState>) -> Response {
    match state.core.store().generations().await {
        Ok(_) => Json(json!({ "status": "ok" })).into_response(),
        Err(error) => {
            tracing::warn!(%error, "health check: store unreachable");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                Json(json!({ "status": "store unavailable" })),
            )
                .into_response()
        }
    }
}

async fn metrics(State(state): State<AppState>) -> Response {
    let generation = state.core.snapshot().generations.1;
    let body = state.core.metrics().render_prometheus(&[(
        "xaa_revocation_generation",
        "Revocation generation this instance has applied.",
        generation,
    )]);
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], body).into_response()
}

async fn openapi() -> Response {
    (
        [(header::CONTENT_TYPE, "application/json")],
        include_str!("../../assets/openapi.json"),
    )
        .into_response()
}
