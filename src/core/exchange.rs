//! The JWT-bearer pipeline: authenticate the client, validate the ID-JAG, authorize, record,
//! and mint the access token.
//!
//! Checks run in this order: client authentication, assertion syntax and header, issuer
//! binding, key selection and signature, then claims (audience, times, required strings),
//! mapping lookup, scope and resource narrowing, subject revocation, and finally the atomic
//! replay check in the store. Caller-controlled properties come before anything that depends
//! on trust, so a rejection does not reveal whether an issuer is trusted. Every rejection
//! carries a reason code for the audit log, while the wire response stays generic.

pub mod claims;

use std::fmt;

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::{Map, Value};

use self::claims::{ClaimLimits, Times};
use crate::core::Core;
use crate::core::jose::{self, ParsedJws};
use crate::core::model::{
    AuditEventType, ClientMapping, NewAuditEvent, Provider, Proxy, ReplayPolicy,
};
use crate::core::snapshot::Snapshot;
use crate::core::store::{ExchangeOutcome, ExchangeWrite, NewAccessToken};

/// OAuth error codes the token endpoint returns (RFC 6749 §5.2, RFC 8707, and two of ours).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OAuthErrorCode {
    InvalidRequest,
    InvalidClient,
    InvalidGrant,
    UnauthorizedClient,
    UnsupportedGrantType,
    InvalidScope,
    InvalidTarget,
    /// JWKS unreachable with no usable key, or the store is down (503).
    TemporarilyUnavailable,
    /// Unexpected failure (500).
    ServerError,
}

impl OAuthErrorCode {
    /// The `error` value on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::InvalidRequest => "invalid_request",
            Self::InvalidClient => "invalid_client",
            Self::InvalidGrant => "invalid_grant",
            Self::UnauthorizedClient => "unauthorized_client",
            Self::UnsupportedGrantType => "unsupported_grant_type",
            Self::InvalidScope => "invalid_scope",
            Self::InvalidTarget => "invalid_target",
            Self::TemporarilyUnavailable => "temporarily_unavailable",
            Self::ServerError => "server_error",
        }
    }

    /// The HTTP status that goes with the code.
    pub fn status(self) -> u16 {
        match self {
            Self::InvalidClient => 401,
            Self::TemporarilyUnavailable => 503,
            Self::ServerError => 500,
            _ => 400,
        }
    }

    /// A fixed, ASCII-only description that reveals nothing about the token or our trust.
    pub fn description(self) -> &'static str {
        match self {
            Self::InvalidRequest => "the request is malformed",
            Self::InvalidClient => "client authentication failed",
            Self::InvalidGrant => "the assertion was rejected",
            Self::UnauthorizedClient => "the client may not use this grant here",
            Self::UnsupportedGrantType => "only the jwt-bearer grant is supported",
            Self::InvalidScope => "the requested scope is not available",
            Self::InvalidTarget => "the requested resource is not available",
            Self::TemporarilyUnavailable => "try again later",
            Self::ServerError => "internal error",
        }
    }
}

/// A rejected exchange: the wire code plus the internal reason for the audit log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExchangeError {
    pub code: OAuthErrorCode,
    /// Machine-readable reason code, e.g. `signature_invalid`.
    pub reason: &'static str,
    /// Human-readable detail for the audit log and the explain view; never sent to clients.
    pub detail: String,
}

impl ExchangeError {
    /// A rejection with its code, reason code and detail.
    pub fn new(code: OAuthErrorCode, reason: &'static str, detail: impl Into<String>) -> Self {
        Self {
            code,
            reason,
            detail: detail.into(),
        }
    }
}

impl fmt::Display for ExchangeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} ({}): {}",
            self.code.as_str(),
            self.reason,
            self.detail
        )
    }
}

/// Client credentials presented with a token request.
#[derive(Debug, Clone)]
pub struct ClientCredentials {
    pub client_id: String,
    pub secret: String,
}

/// A token request after the HTTP layer has parsed the form.
#[derive(Debug, Clone)]
pub struct ExchangeRequest {
    pub proxy_id: i64,
    pub client: ClientCredentials,
    pub assertion: String,
    pub scope: Option<String>,
    pub resource: Option<String>,
}

/// A successful exchange, as the token endpoint returns it.
#[derive(Debug, Clone, Serialize)]
pub struct TokenResponse {
    pub access_token: String,
    pub token_type: &'static str,
    pub expires_in: i64,
    pub scope: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub resource: Option<String>,
}

/// RFC 9068 access-token claims.
#[derive(Debug, Serialize)]
struct AccessTokenClaims<'a> {
    iss: &'a str,
    sub: &'a str,
    aud: &'a str,
    client_id: &'a str,
    iat: i64,
    exp: i64,
    jti: &'a str,
    scope: String,
    /// Issuer of the ID-JAG, so a resource server can tell subjects of different IdPs apart.
    idp_iss: &'a str,
    #[serde(flatten)]
    copied: Map<String, Value>,
}

/// The facts validation established about an ID-JAG before authorization.
struct ValidatedAssertion {
    provider: Provider,
    claims: Map<String, Value>,
    times: Times,
    jti: String,
    subject: String,
    client_id: String,
}

/// Context for the failure audit: whatever is known when a check fails.
#[derive(Default)]
struct FailureContext {
    provider_id: Option<i64>,
    jti: Option<String>,
    subject: Option<String>,
    claimed_client_id: Option<String>,
}

impl Core {
    /// Redeems an ID-JAG at a proxy's token endpoint.
    ///
    /// Every outcome is audited: a success writes `xaa_token_validation_success` and
    /// `xaa_token_exchange` in the same transaction as the token records; a rejection writes
    /// `xaa_token_validation_failed` with its reason code.
    pub async fn exchange(&self, request: ExchangeRequest) -> Result<TokenResponse, ExchangeError> {
        let snapshot = self.snapshot();
        let mut context = FailureContext::default();
        let mut result = self.exchange_inner(&snapshot, &request, &mut context).await;
        if result
            .as_ref()
            .is_err_and(|error| MISS_REASONS.contains(&error.reason))
            && self.reload_if_changed().await
        {
            // Another process changed the configuration since this snapshot was built (the
            // poll runs once a second): decide again on the fresh view.
            context = FailureContext::default();
            result = self
                .exchange_inner(&self.snapshot(), &request, &mut context)
                .await;
        }
        match &result {
            Ok(_) => self.metrics().record_exchange_success(),
            Err(error) => {
                self.metrics().record_exchange_failure(error.reason);
                self.audit_exchange_failure(&request, &context, error).await;
            }
        }
        result
    }

    async fn exchange_inner(
        &self,
        snapshot: &Snapshot,
        request: &ExchangeRequest,
        context: &mut FailureContext,
    ) -> Result<TokenResponse, ExchangeError> {
        let proxy = snapshot.proxies.get(&request.proxy_id).ok_or_else(|| {
            ExchangeError::new(
                OAuthErrorCode::InvalidRequest,
                "unknown_proxy",
                "no such proxy",
            )
        })?;
        authenticate_client(snapshot, proxy.id, &request.client)?;
        if !proxy.issuance_enabled {
            return Err(ExchangeError::new(
                OAuthErrorCode::UnauthorizedClient,
                "issuance_disabled",
                format!("token issuance is switched off for proxy {}", proxy.id),
            ));
        }

        let validated = self
            .validate_assertion(snapshot, proxy, &request.assertion, context)
            .await?;
        let mapping = find_mapping(snapshot, proxy.id, &validated, &request.client.client_id)?;
        check_subject_revocation(snapshot, &validated)?;
        let scopes = self.grant_scopes(&validated, mapping, request.scope.as_deref())?;
        let resource = claims::decide_resource(
            proxy.resource.as_deref(),
            proxy.require_resource,
            claims::resource_claim(&validated.claims)?.as_deref(),
            request.resource.as_deref(),
        )?;
        self.issue(proxy, &validated, mapping, scopes, resource)
            .await
    }

    async fn validate_assertion(
        &self,
        snapshot: &Snapshot,
        proxy: &Proxy,
        assertion: &str,
        context: &mut FailureContext,
    ) -> Result<ValidatedAssertion, ExchangeError> {
        let settings = &self.config().exchange;
        let parsed = jose::parse_compact(assertion, settings.assertion_max_bytes)
            .map_err(|error| grant(error.reason_code(), error.to_string()))?;
        // Every algorithm any provider may allow: the header is checked before the issuer is
        // known, and the provider's own list is applied after issuer binding.
        let alg = jose::check_header(parsed.header(), &crate::core::admin::SUPPORTED_ALGS)
            .map_err(|error| grant(error.reason_code(), error.to_string()))?;

        let provider = bind_issuer(self, snapshot, &parsed)?;
        context.provider_id = Some(provider.id);
        if !provider
            .allowed_algs
            .iter()
            .any(|allowed| allowed == alg_name(alg))
        {
            return Err(grant(
                "alg_not_allowed",
                format!("{alg:?} is not allowed for this issuer"),
            ));
        }
        let key = self
            .jwks()
            .key_for(provider, parsed.header().kid(), alg)
            .await
            .map_err(|error| {
                let code = if error.is_unavailable() {
                    OAuthErrorCode::TemporarilyUnavailable
                } else {
                    OAuthErrorCode::InvalidGrant
                };
                ExchangeError::new(code, error.reason_code(), error.to_string())
            })?;
        if !jose::verify(&parsed, &key, alg) {
            return Err(grant("signature_invalid", "signature verification failed"));
        }

        let limits = ClaimLimits {
            now: Utc::now().timestamp(),
            leeway_secs: provider.leeway_secs,
            max_lifetime_secs: provider.max_lifetime_secs,
            max_claim_bytes: settings.max_claim_bytes,
            max_scopes: settings.max_scopes,
        };
        let claims = parsed.into_claims();
        context.jti = claims
            .get("jti")
            .and_then(Value::as_str)
            .map(truncate_for_audit);
        context.subject = claims
            .get("sub")
            .and_then(Value::as_str)
            .map(truncate_for_audit);
        context.claimed_client_id = claims
            .get("client_id")
            .and_then(Value::as_str)
            .map(truncate_for_audit);
        check_claims(
            provider.clone(),
            claims,
            &self.config().proxy_issuer(proxy.id),
            &limits,
        )
    }

    fn grant_scopes(
        &self,
        validated: &ValidatedAssertion,
        mapping: &ClientMapping,
        requested: Option<&str>,
    ) -> Result<Vec<String>, ExchangeError> {
        let max_scopes = self.config().exchange.max_scopes;
        let from_idp = claims::scope_claim(&validated.claims, max_scopes)?;
        let requested = requested
            .map(|text| claims::split_scopes(text, max_scopes))
            .transpose()
            .map_err(|(reason, detail)| {
                ExchangeError::new(OAuthErrorCode::InvalidScope, reason, detail)
            })?;
        claims::narrow_scopes(&from_idp, &mapping.allowed_scopes, requested.as_deref())
    }

    async fn issue(
        &self,
        proxy: &Proxy,
        validated: &ValidatedAssertion,
        mapping: &ClientMapping,
        scopes: Vec<String>,
        resource: Option<String>,
    ) -> Result<TokenResponse, ExchangeError> {
        let now = Utc::now();
        let issuer = self.config().proxy_issuer(proxy.id);
        let audience = resource.clone().unwrap_or_else(|| issuer.clone());
        let expires_at = self.access_token_expiry(now, validated.times.exp);
        let token_jti = uuid::Uuid::now_v7().to_string();
        let scope = scopes.join(" ");

        let access_token = self
            .signing_keys()
            .sign(&AccessTokenClaims {
                iss: &issuer,
                sub: &validated.subject,
                aud: &audience,
                client_id: &mapping.client_id_at_resource_as,
                iat: now.timestamp(),
                exp: expires_at.timestamp(),
                jti: &token_jti,
                scope: scope.clone(),
                idp_iss: &validated.provider.issuer,
                copied: copied_claims(&validated.claims),
            })
            .map_err(|error| {
                ExchangeError::new(
                    OAuthErrorCode::ServerError,
                    "signing_failed",
                    error.to_string(),
                )
            })?;

        let success_audit = success_events(proxy, validated, mapping, &scopes, &token_jti);
        let write = ExchangeWrite {
            idp_provider_id: validated.provider.id,
            proxy_id: proxy.id,
            jti: validated.jti.clone(),
            subject: validated.subject.clone(),
            client_id: validated.client_id.clone(),
            client_id_at_resource_as: mapping.client_id_at_resource_as.clone(),
            scopes: scopes.clone(),
            issued_at: from_secs(validated.times.iat),
            expires_at: from_secs(validated.times.exp),
            seen_at: now,
            allow_reuse: validated.provider.replay_policy == ReplayPolicy::ReuseUntilExpiry,
            access_token: NewAccessToken {
                jti: token_jti.clone(),
                audience,
                issued_at: now,
                expires_at,
            },
            success_audit: success_audit.clone(),
        };
        let outcome = self.store().record_exchange(write).await.map_err(|error| {
            tracing::error!(%error, proxy_id = proxy.id, "recording an exchange failed");
            ExchangeError::new(
                OAuthErrorCode::TemporarilyUnavailable,
                "store_unavailable",
                "the token store could not record the exchange",
            )
        })?;
        match outcome {
            ExchangeOutcome::Issued { .. } => {
                self.write_audit_file(&success_audit);
                Ok(TokenResponse {
                    access_token,
                    token_type: "Bearer",
                    expires_in: (expires_at - now).num_seconds(),
                    scope,
                    resource,
                })
            }
            ExchangeOutcome::Replayed { presentation_count } => Err(grant(
                "replayed",
                format!("jti already presented ({presentation_count} presentations)"),
            )),
            ExchangeOutcome::Revoked => Err(grant("jti_revoked", "this ID-JAG has been revoked")),
        }
    }

    fn access_token_expiry(&self, now: DateTime<Utc>, id_jag_exp: i64) -> DateTime<Utc> {
        let settings = &self.config().exchange;
        let mut expiry = now + chrono::Duration::seconds(settings.access_token_lifetime_secs);
        if settings.cap_access_token_at_id_jag_exp {
            expiry = expiry.min(from_secs(id_jag_exp).max(now));
        }
        expiry
    }

    async fn audit_exchange_failure(
        &self,
        request: &ExchangeRequest,
        context: &FailureContext,
        error: &ExchangeError,
    ) {
        let mut fields = Map::new();
        fields.insert("reason".into(), error.reason.into());
        fields.insert("detail".into(), error.detail.clone().into());
        fields.insert(
            "client_id".into(),
            truncate_for_audit(&request.client.client_id).into(),
        );
        fields.insert("error".into(), error.code.as_str().into());
        if let Some(claimed) = &context.claimed_client_id {
            fields.insert("claimed_client_id".into(), claimed.clone().into());
        }
        if let Some(jti) = &context.jti {
            fields.insert("jti".into(), jti.clone().into());
        }
        if let Some(subject) = &context.subject {
            fields.insert("subject".into(), subject.clone().into());
        }
        let event = NewAuditEvent {
            event_type: AuditEventType::XaaTokenValidationFailed,
            actor: format!("client:{}", truncate_for_audit(&request.client.client_id)),
            proxy_id: Some(request.proxy_id),
            idp_provider_id: context.provider_id,
            reason_code: Some(error.reason.to_owned()),
            fields,
        };
        self.append_audit(vec![event]).await;
    }
}

/// Rejections that a configuration change made elsewhere could turn into a success.
const MISS_REASONS: [&str; 6] = [
    "unknown_proxy",
    "client_auth_failed",
    "issuer_untrusted",
    "no_mapping",
    "client_id_mismatch",
    "provider_disabled",
];

fn grant(reason: &'static str, detail: impl Into<String>) -> ExchangeError {
    ExchangeError::new(OAuthErrorCode::InvalidGrant, reason, detail)
}

fn from_secs(secs: i64) -> DateTime<Utc> {
    DateTime::from_timestamp(secs, 0).unwrap_or(DateTime::<Utc>::MAX_UTC)
}

/// Keeps audit fields bounded and free of control characters, whatever a client sent.
fn truncate_for_audit(text: &str) -> String {
    text.chars()
        .take(256)
        .map(|c| if c.is_control() { '\u{FFFD}' } else { c })
        .collect()
}

fn alg_name(alg: jsonwebtoken::Algorithm) -> &'static str {
    use jsonwebtoken::Algorithm::{ES256, ES384, EdDSA, PS256, PS384, PS512, RS256, RS384, RS512};
    match alg {
        RS256 => "RS256",
        RS384 => "RS384",
        RS512 => "RS512",
        PS256 => "PS256",
        PS384 => "PS384",
        PS512 => "PS512",
        ES256 => "ES256",
        ES384 => "ES384",
        EdDSA => "EdDSA",
        _ => "unsupported",
    }
}

fn authenticate_client(
    snapshot: &Snapshot,
    proxy_id: i64,
    client: &ClientCredentials,
) -> Result<(), ExchangeError> {
    if snapshot.verify_client_secret(proxy_id, &client.client_id, &client.secret) {
        Ok(())
    } else {
        Err(ExchangeError::new(
            OAuthErrorCode::InvalidClient,
            "client_auth_failed",
            "unknown client or wrong secret",
        ))
    }
}

/// Picks the trusted provider named by the unverified `iss`.
fn bind_issuer<'s>(
    core: &Core,
    snapshot: &'s Snapshot,
    parsed: &ParsedJws,
) -> Result<&'s Provider, ExchangeError> {
    let Some(Value::String(issuer)) = parsed.claims().get("iss") else {
        return Err(grant("iss_missing", "'iss' is missing or not a string"));
    };
    if snapshot.is_own_issuer(core.config(), issuer) {
        return Err(grant(
            "self_issued",
            "the ID-JAG was issued by this gateway",
        ));
    }
    let provider = snapshot
        .provider_by_issuer(issuer)
        .ok_or_else(|| grant("issuer_untrusted", "issuer is not a configured provider"))?;
    if !provider.enabled {
        return Err(grant(
            "provider_disabled",
            format!("provider {} is disabled", provider.id),
        ));
    }
    Ok(provider)
}

fn check_claims(
    provider: Provider,
    claims: Map<String, Value>,
    our_issuer: &str,
    limits: &ClaimLimits,
) -> Result<ValidatedAssertion, ExchangeError> {
    claims::check_audience(&claims, our_issuer)?;
    let times = claims::check_times(&claims, limits)?;
    let subject = claims::required_string(&claims, "sub", "sub_invalid", limits.max_claim_bytes)?;
    let jti = claims::required_string(&claims, "jti", "jti_invalid", limits.max_claim_bytes)?;
    if !claims::is_jti_text(&jti) {
        return Err(grant(
            "jti_invalid",
            "'jti' is not 1 to 256 visible ASCII characters without quotes",
        ));
    }
    let client_id = claims::required_string(
        &claims,
        "client_id",
        "client_id_invalid",
        limits.max_claim_bytes,
    )?;
    if claims.contains_key("cnf") {
        return Err(grant(
            "cnf_unsupported",
            "sender-constrained ID-JAGs (cnf) are not supported",
        ));
    }
    Ok(ValidatedAssertion {
        provider,
        claims,
        times,
        jti,
        subject,
        client_id,
    })
}

/// Finds the mapping for the ID-JAG's `client_id` (matched on either side) and checks that the
/// authenticated client is the mapping's client at the resource AS.
fn find_mapping<'s>(
    snapshot: &'s Snapshot,
    proxy_id: i64,
    validated: &ValidatedAssertion,
    authenticated_client: &str,
) -> Result<&'s ClientMapping, ExchangeError> {
    let candidates: Vec<&ClientMapping> = snapshot
        .mappings_for(proxy_id)
        .iter()
        .filter(|mapping| mapping.idp_provider_id == validated.provider.id)
        .filter(|mapping| {
            mapping.client_id_at_idp == validated.client_id
                || mapping.client_id_at_resource_as == validated.client_id
        })
        .collect();
    if candidates.is_empty() {
        return Err(grant(
            "no_mapping",
            format!(
                "no client mapping for client_id '{}'",
                truncate_for_audit(&validated.client_id)
            ),
        ));
    }
    candidates
        .into_iter()
        .find(|mapping| mapping.client_id_at_resource_as == authenticated_client)
        .ok_or_else(|| {
            grant(
                "client_id_mismatch",
                "the ID-JAG client_id maps to a different client",
            )
        })
}

fn check_subject_revocation(
    snapshot: &Snapshot,
    validated: &ValidatedAssertion,
) -> Result<(), ExchangeError> {
    if let Some(revoked_at) = snapshot.subject_revoked_at(validated.provider.id, &validated.subject)
        && validated.times.iat <= revoked_at.timestamp()
    {
        return Err(grant(
            "subject_revoked",
            format!("subject revoked at {revoked_at}, ID-JAG issued before"),
        ));
    }
    Ok(())
}

/// ID-JAG claims copied into the access token when present (RFC 9068 §2.2.1, RFC 8693 §4.1).
fn copied_claims(claims: &Map<String, Value>) -> Map<String, Value> {
    ["auth_time", "acr", "amr", "act"]
        .into_iter()
        .filter_map(|name| {
            claims
                .get(name)
                .map(|value| (name.to_owned(), value.clone()))
        })
        .collect()
}

fn success_events(
    proxy: &Proxy,
    validated: &ValidatedAssertion,
    mapping: &ClientMapping,
    scopes: &[String],
    token_jti: &str,
) -> Vec<NewAuditEvent> {
    let actor = format!("client:{}", mapping.client_id_at_resource_as);
    let mut validation = Map::new();
    validation.insert("jti".into(), validated.jti.clone().into());
    validation.insert("subject".into(), validated.subject.clone().into());
    validation.insert("client_id".into(), validated.client_id.clone().into());
    let mut exchange = validation.clone();
    exchange.insert("scopes".into(), scopes.to_vec().into());
    exchange.insert("access_token_jti".into(), token_jti.into());
    exchange.insert(
        "client_id_at_resource_as".into(),
        mapping.client_id_at_resource_as.clone().into(),
    );
    [
        (AuditEventType::XaaTokenValidationSuccess, validation),
        (AuditEventType::XaaTokenExchange, exchange),
    ]
    .into_iter()
    .map(|(event_type, fields)| NewAuditEvent {
        event_type,
        actor: actor.clone(),
        proxy_id: Some(proxy.id),
        idp_provider_id: Some(validated.provider.id),
        reason_code: None,
        fields,
    })
    .collect()
}
