//! Domain types shared by the store, the exchange pipeline, the admin API and the dashboard.
//!
//! Field names follow the admin API's JSON, so most types serialize as they are.

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// Kind of identity provider.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ProviderKind {
    /// Okta's org authorization server.
    Okta,
    /// Any IdP that follows OpenID Connect Discovery or RFC 8414.
    Oidc,
}

/// The policy for a second presentation of the same ID-JAG (`iss`, `jti`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ReplayPolicy {
    /// Every presentation after the first is rejected with `invalid_grant`.
    SingleUse,
    /// The same client may present an unexpired ID-JAG again and gets a new access token.
    ReuseUntilExpiry,
}

/// Kind of gateway proxy that a resource authorization server protects.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ProxyKind {
    /// MCP proxy.
    #[default]
    Mcp,
    /// LLM proxy.
    Llm,
}

macro_rules! text_enum {
    ($ty:ident { $($variant:ident => $text:literal),+ $(,)? }) => {
        impl $ty {
            /// The stored and wire spelling.
            pub fn as_str(self) -> &'static str {
                match self {
                    $(Self::$variant => $text),+
                }
            }
        }

        impl fmt::Display for $ty {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl FromStr for $ty {
            type Err = String;

            fn from_str(text: &str) -> Result<Self, Self::Err> {
                match text {
                    $($text => Ok(Self::$variant),)+
                    other => Err(format!(
                        "'{other}' is not one of: {}",
                        [$($text),+].join(", ")
                    )),
                }
            }
        }
    };
}

text_enum!(ProviderKind { Okta => "okta", Oidc => "oidc" });
text_enum!(ReplayPolicy { SingleUse => "single-use", ReuseUntilExpiry => "reuse-until-expiry" });
text_enum!(ProxyKind { Mcp => "mcp", Llm => "llm" });

/// A trusted identity provider that signs ID-JAGs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Provider {
    pub id: i64,
    pub name: String,
    pub kind: ProviderKind,
    /// Issuer identifier, compared to the ID-JAG `iss` by exact string equality.
    pub issuer: String,
    /// Key set location; discovered from the issuer's metadata when absent.
    pub jwks_uri: Option<String>,
    pub enabled: bool,
    /// JWS algorithms this provider may sign with, e.g. `["RS256", "ES256"]`.
    pub allowed_algs: Vec<String>,
    pub replay_policy: ReplayPolicy,
    /// Clock leeway applied to `exp`, `iat` and `nbf`, in seconds.
    pub leeway_secs: i64,
    /// Longest accepted `exp - iat`, in seconds.
    pub max_lifetime_secs: i64,
    pub created_at: DateTime<Utc>,
}

/// Input for a new provider. Optional fields take the configured defaults.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct NewProvider {
    pub name: String,
    pub kind: Option<ProviderKind>,
    pub issuer: String,
    pub jwks_uri: Option<String>,
    pub enabled: Option<bool>,
    pub allowed_algs: Option<Vec<String>>,
    pub replay_policy: Option<ReplayPolicy>,
    pub leeway_secs: Option<i64>,
    pub max_lifetime_secs: Option<i64>,
}

/// Changes to a provider; absent fields stay as they are.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ProviderPatch {
    pub name: Option<String>,
    pub enabled: Option<bool>,
    /// Absent: unchanged; `null`: back to discovery; a string: the new key set URL.
    #[serde(default, deserialize_with = "present_or_null")]
    pub jwks_uri: Option<Option<String>>,
    pub allowed_algs: Option<Vec<String>>,
    pub replay_policy: Option<ReplayPolicy>,
    pub leeway_secs: Option<i64>,
    pub max_lifetime_secs: Option<i64>,
}

/// Reads a field that is present (as a value or `null`) into `Some`, so `null` and absence
/// differ; `#[serde(default)]` supplies `None` for absence.
#[expect(
    clippy::option_option,
    reason = "absent, null and a URL mean three different things"
)]
fn present_or_null<'de, D>(deserializer: D) -> Result<Option<Option<String>>, D::Error>
where
    D: serde::Deserializer<'de>,
{
    Option::<String>::deserialize(deserializer).map(Some)
}

/// A gateway proxy; each one is its own resource authorization server.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Proxy {
    pub id: i64,
    pub name: String,
    pub kind: ProxyKind,
    /// Protected resource URI. When set, it is the access token's `aud` and an ID-JAG `resource`
    /// claim must equal it.
    pub resource: Option<String>,
    /// Reject ID-JAGs without a `resource` claim.
    pub require_resource: bool,
    /// Kill switch: when false every exchange at this proxy is rejected.
    pub issuance_enabled: bool,
    pub created_at: DateTime<Utc>,
}

/// Input for a new proxy.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct NewProxy {
    pub name: String,
    pub kind: ProxyKind,
    pub resource: Option<String>,
    pub require_resource: Option<bool>,
}

/// Changes to a proxy; absent fields stay as they are.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ProxyPatch {
    pub name: Option<String>,
    pub issuance_enabled: Option<bool>,
    pub require_resource: Option<bool>,
}

/// Maps a client id at an IdP to the client id at a proxy's authorization server.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClientMapping {
    pub id: i64,
    /// Not in the admin API's mapping JSON, whose path already names the proxy.
    #[serde(skip_serializing, default)]
    pub proxy_id: i64,
    pub idp_provider_id: i64,
    pub idp_provider_name: String,
    pub client_id_at_idp: String,
    pub client_id_at_resource_as: String,
    pub allowed_scopes: Vec<String>,
    pub created_at: DateTime<Utc>,
}

/// Input for a new client mapping, as the admin API receives it.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct NewMapping {
    pub idp_provider_id: i64,
    pub client_id_at_idp: String,
    pub client_id_at_resource_as: String,
    pub allowed_scopes: Vec<String>,
}

/// A confidential client that redeems ID-JAGs at one proxy's token endpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResourceClient {
    pub proxy_id: i64,
    pub client_id: String,
    /// SHA-256 digest of the client secret.
    pub secret_hash: Vec<u8>,
    pub created_at: DateTime<Utc>,
}

/// Revocation state shared by ID-JAG and access-token records.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Revocation {
    pub revoked_at: DateTime<Utc>,
    pub reason: Option<String>,
    pub revoked_by: Option<String>,
}

/// A validated ID-JAG as recorded by the exchange.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IdJagRecord {
    pub id: i64,
    pub idp_provider_id: i64,
    pub proxy_id: i64,
    pub jti: String,
    pub subject: String,
    /// The `client_id` claim as the IdP sent it.
    pub client_id: String,
    /// The authenticated client that redeemed it.
    pub client_id_at_resource_as: String,
    pub scopes: Vec<String>,
    pub issued_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    pub first_seen_at: DateTime<Utc>,
    pub last_seen_at: DateTime<Utc>,
    pub presentation_count: i64,
    pub revocation: Option<Revocation>,
}

/// An access token minted from an ID-JAG.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccessTokenRecord {
    pub jti: String,
    pub id_jag_id: i64,
    pub proxy_id: i64,
    pub idp_provider_id: i64,
    pub subject: String,
    pub client_id: String,
    pub scopes: Vec<String>,
    pub audience: String,
    pub issued_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    pub revocation: Option<Revocation>,
}

/// A revoke-by-subject entry: ID-JAGs of this subject issued at or before `revoked_at` are
/// rejected.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SubjectRevocation {
    pub idp_provider_id: i64,
    pub subject: String,
    pub revoked_at: DateTime<Utc>,
    pub reason: Option<String>,
    pub revoked_by: Option<String>,
}

/// The persisted JWKS of one provider.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JwksCacheEntry {
    pub idp_provider_id: i64,
    /// The key set document as fetched (public keys only).
    pub jwks_json: Option<String>,
    pub key_count: i64,
    pub fetched_at: Option<DateTime<Utc>>,
    pub expires_at: Option<DateTime<Utc>>,
    pub last_error: Option<String>,
    pub last_error_at: Option<DateTime<Utc>>,
}

/// One of the gateway's own access-token signing keys.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SigningKeyRecord {
    pub kid: String,
    pub alg: String,
    /// PKCS#8 DER of the private key.
    pub private_pkcs8: Vec<u8>,
    /// Public JWK as JSON, as published at the JWKS endpoints.
    pub public_jwk: String,
    pub created_at: DateTime<Utc>,
    pub active: bool,
}

/// The audit event types.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AuditEventType {
    XaaClientMappingCreated,
    XaaClientMappingDeleted,
    XaaTokenExchange,
    XaaTokenValidationSuccess,
    XaaTokenValidationFailed,
    XaaTokenRevoked,
    XaaTokensRevokedBySubject,
    XaaJwksCacheUpdated,
}

text_enum!(AuditEventType {
    XaaClientMappingCreated => "xaa_client_mapping_created",
    XaaClientMappingDeleted => "xaa_client_mapping_deleted",
    XaaTokenExchange => "xaa_token_exchange",
    XaaTokenValidationSuccess => "xaa_token_validation_success",
    XaaTokenValidationFailed => "xaa_token_validation_failed",
    XaaTokenRevoked => "xaa_token_revoked",
    XaaTokensRevokedBySubject => "xaa_tokens_revoked_by_subject",
    XaaJwksCacheUpdated => "xaa_jwks_cache_updated",
});

impl AuditEventType {
    /// Every event type, in the order operators see them listed.
    pub const ALL: [Self; 8] = [
        Self::XaaClientMappingCreated,
        Self::XaaClientMappingDeleted,
        Self::XaaTokenExchange,
        Self::XaaTokenValidationSuccess,
        Self::XaaTokenValidationFailed,
        Self::XaaTokenRevoked,
        Self::XaaTokensRevokedBySubject,
        Self::XaaJwksCacheUpdated,
    ];
}

/// An audit event before it is stored. `fields` carries the event type's own fields
/// (`jti`, `subject`, `client_id`, `scopes`, ...); it never contains a raw token.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NewAuditEvent {
    pub event_type: AuditEventType,
    pub actor: String,
    pub proxy_id: Option<i64>,
    pub idp_provider_id: Option<i64>,
    /// Machine-readable cause on failures, e.g. `signature_invalid`.
    pub reason_code: Option<String>,
    pub fields: serde_json::Map<String, serde_json::Value>,
}

/// A stored audit event.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AuditEvent {
    pub id: i64,
    pub at: DateTime<Utc>,
    pub event_type: AuditEventType,
    pub actor: String,
    pub proxy_id: Option<i64>,
    pub idp_provider_id: Option<i64>,
    pub reason_code: Option<String>,
    pub fields: serde_json::Map<String, serde_json::Value>,
}

/// Filter for audit queries. Empty fields match everything.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
pub struct AuditQuery {
    pub event_type: Option<AuditEventType>,
    pub proxy_id: Option<i64>,
    pub idp_provider_id: Option<i64>,
    /// Only events with an id greater than this (for following the log).
    pub after_id: Option<i64>,
    pub since: Option<DateTime<Utc>>,
    pub limit: Option<i64>,
}

/// Filter for ID-JAG token listings. Empty fields match everything.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
pub struct TokenQuery {
    pub proxy_id: Option<i64>,
    pub idp_provider_id: Option<i64>,
    pub subject: Option<String>,
    pub client_id: Option<String>,
    /// `active`, `revoked` or `expired`.
    pub status: Option<String>,
    pub limit: Option<i64>,
}

/// Figures of the ID-JAG tokens card.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct IdJagTokenStats {
    pub total: i64,
    pub active: i64,
    pub revoked: i64,
    pub last_token_at: Option<DateTime<Utc>>,
}

/// Figures of the JWKS cache card.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct JwksCacheStats {
    pub total_providers: i64,
    pub total_keys: i64,
    pub last_updated: Option<DateTime<Utc>>,
}

/// Figures of the client mappings card.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClientMappingStats {
    pub total_mappings: i64,
    pub providers: i64,
    pub last_updated: Option<DateTime<Utc>>,
}

/// The statistics of `GET /api/v1/xaa/stats`, globally or for one proxy.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct XaaStats {
    pub id_jag_tokens: IdJagTokenStats,
    pub jwks_cache: JwksCacheStats,
    pub client_mappings: ClientMappingStats,
    /// Incremented by every revocation; instances that applied the same generation agree.
    pub revocation_generation: i64,
}

/// Exchanges and rejections in one minute.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ActivityPoint {
    /// Start of the minute.
    pub minute: DateTime<Utc>,
    pub succeeded: i64,
    pub failed: i64,
}
