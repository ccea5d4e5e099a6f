//! The persistence boundary: one [`Store`] trait, implemented for SQLite (and PostgreSQL).
//!
//! Callers never see sqlx types. Every mutating call that an operator or the exchange makes
//! carries its audit event, which the implementation commits in the same transaction, so a
//! change is never stored without its audit record.

pub mod sqlite;

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use crate::core::model::{
    AccessTokenRecord, AuditEvent, AuditQuery, ClientMapping, IdJagRecord, JwksCacheEntry,
    NewAuditEvent, NewMapping, NewProxy, Provider, ProviderPatch, Proxy, ProxyPatch,
    ResourceClient, Revocation, SigningKeyRecord, SubjectRevocation, TokenQuery, XaaStats,
};

/// Errors at the store boundary. sqlx errors are mapped once, here.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("{0} not found")]
    NotFound(String),
    #[error("conflict: {0}")]
    Conflict(String),
    #[error("invalid stored data: {0}")]
    Corrupt(String),
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    #[error("database migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("the store writer has stopped")]
    WriterStopped,
    #[error("commit failed: {0}")]
    CommitFailed(String),
}

/// Result alias for store calls.
pub type StoreResult<T> = Result<T, StoreError>;

/// A provider row as stored, before defaults are applied by the core.
#[derive(Debug, Clone)]
pub struct ProviderRow {
    pub name: String,
    pub kind: crate::core::model::ProviderKind,
    pub issuer: String,
    pub jwks_uri: Option<String>,
    pub enabled: bool,
    pub allowed_algs: Vec<String>,
    pub replay_policy: crate::core::model::ReplayPolicy,
    pub leeway_secs: i64,
    pub max_lifetime_secs: i64,
}

/// A new client credential created together with a mapping.
#[derive(Debug, Clone)]
pub struct NewClientCredential {
    pub client_id: String,
    pub secret_hash: Vec<u8>,
}

/// Everything one successful or replayed exchange writes, committed in one transaction.
#[derive(Debug, Clone)]
pub struct ExchangeWrite {
    pub idp_provider_id: i64,
    pub proxy_id: i64,
    pub jti: String,
    pub subject: String,
    pub client_id: String,
    pub client_id_at_resource_as: String,
    pub scopes: Vec<String>,
    pub issued_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    pub seen_at: DateTime<Utc>,
    /// Whether a second presentation may mint another access token.
    pub allow_reuse: bool,
    pub access_token: NewAccessToken,
    /// Audit events written when the exchange is accepted.
    pub success_audit: Vec<NewAuditEvent>,
}

/// The access-token part of an [`ExchangeWrite`].
#[derive(Debug, Clone)]
pub struct NewAccessToken {
    pub jti: String,
    pub audience: String,
    pub issued_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
}

/// What the store decided for an [`ExchangeWrite`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ExchangeOutcome {
    /// The ID-JAG was recorded (or re-presented where allowed) and the access token stored.
    Issued {
        id_jag_id: i64,
        presentation_count: i64,
    },
    /// The (`iss`, `jti`) pair was seen before and reuse is not allowed for this presentation.
    Replayed { presentation_count: i64 },
    /// The ID-JAG record is administratively revoked.
    Revoked,
}

/// Result of a revocation by JTI.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JtiRevocationOutcome {
    /// ID-JAG and access-token records that this call revoked.
    pub newly_revoked: i64,
    /// Records that were already revoked before this call.
    pub already_revoked: i64,
}

/// The persistence operations of xaa.
#[async_trait]
pub trait Store: Send + Sync + 'static {
    // Providers.
    async fn list_providers(&self) -> StoreResult<Vec<Provider>>;
    async fn get_provider(&self, id: i64) -> StoreResult<Provider>;
    async fn create_provider(&self, row: &ProviderRow) -> StoreResult<Provider>;
    async fn update_provider(&self, id: i64, patch: &ProviderPatch) -> StoreResult<Provider>;
    async fn delete_provider(&self, id: i64) -> StoreResult<()>;

    // Proxies.
    async fn list_proxies(&self) -> StoreResult<Vec<Proxy>>;
    async fn get_proxy(&self, id: i64) -> StoreResult<Proxy>;
    async fn create_proxy(&self, new: &NewProxy, require_resource: bool) -> StoreResult<Proxy>;
    async fn update_proxy(&self, id: i64, patch: &ProxyPatch) -> StoreResult<Proxy>;
    async fn delete_proxy(&self, id: i64) -> StoreResult<()>;

    // Client mappings and the resource-AS clients they name.
    async fn list_mappings(&self, proxy_id: Option<i64>) -> StoreResult<Vec<ClientMapping>>;
    async fn get_mapping(&self, proxy_id: i64, mapping_id: i64) -> StoreResult<ClientMapping>;
    /// Creates the mapping and, when `credential` is given, the client it names, with `audit`.
    async fn create_mapping(
        &self,
        proxy_id: i64,
        new: &NewMapping,
        credential: Option<&NewClientCredential>,
        audit: &NewAuditEvent,
    ) -> StoreResult<ClientMapping>;
    async fn delete_mapping(
        &self,
        proxy_id: i64,
        mapping_id: i64,
        audit: &NewAuditEvent,
    ) -> StoreResult<()>;
    async fn list_clients(&self) -> StoreResult<Vec<ResourceClient>>;
    /// Replaces a client's secret digest; `NotFound` when the client does not exist.
    async fn set_client_secret(
        &self,
        proxy_id: i64,
        client_id: &str,
        secret_hash: &[u8],
    ) -> StoreResult<()>;

    // Exchange.
    /// Records one validated presentation atomically: the ID-JAG record (insert, or bump the
    /// presentation count), the replay and revocation decision, the access token and the audit.
    async fn record_exchange(&self, write: ExchangeWrite) -> StoreResult<ExchangeOutcome>;
    /// Appends audit events that have no other write (failures, JWKS updates).
    async fn append_audit(&self, events: Vec<NewAuditEvent>) -> StoreResult<()>;

    // Tokens.
    async fn list_id_jags(&self, query: &TokenQuery) -> StoreResult<Vec<IdJagRecord>>;
    async fn find_id_jags_by_jti(&self, jti: &str) -> StoreResult<Vec<IdJagRecord>>;
    async fn get_access_token(&self, jti: &str) -> StoreResult<Option<AccessTokenRecord>>;
    async fn list_access_tokens(&self, id_jag_id: i64) -> StoreResult<Vec<AccessTokenRecord>>;

    // Revocation.
    /// Revokes every ID-JAG record with this JTI (and its access tokens), or else the access
    /// token with this JTI. `NotFound` when neither exists.
    async fn revoke_jti(
        &self,
        jti: &str,
        revocation: &Revocation,
        audit: &NewAuditEvent,
    ) -> StoreResult<JtiRevocationOutcome>;
    /// Records a subject revocation and revokes that subject's ID-JAGs and access tokens.
    /// Returns the number of ID-JAG records newly revoked.
    async fn revoke_subject(
        &self,
        revocation: &SubjectRevocation,
        audit: &NewAuditEvent,
    ) -> StoreResult<i64>;
    /// Revokes one access token (RFC 7009); returns false when it does not exist.
    async fn revoke_access_token(&self, jti: &str, revocation: &Revocation) -> StoreResult<bool>;
    async fn list_subject_revocations(&self) -> StoreResult<Vec<SubjectRevocation>>;
    /// The configuration and revocation generations: counters that every change to
    /// providers, proxies, mappings or clients (first) and every revocation (second) increments.
    async fn generations(&self) -> StoreResult<(i64, i64)>;
    /// The counter every revocation increments.
    async fn revocation_generation(&self) -> StoreResult<i64>;

    // Statistics and audit.
    async fn stats(&self, proxy_id: Option<i64>, now: DateTime<Utc>) -> StoreResult<XaaStats>;
    async fn query_audit(&self, query: &AuditQuery) -> StoreResult<Vec<AuditEvent>>;
    /// Failure counts by reason code since `since`, most frequent first.
    async fn failure_reasons(
        &self,
        proxy_id: Option<i64>,
        since: DateTime<Utc>,
    ) -> StoreResult<Vec<(String, i64)>>;

    // JWKS cache.
    async fn load_jwks(&self, provider_id: i64) -> StoreResult<Option<JwksCacheEntry>>;
    async fn list_jwks(&self) -> StoreResult<Vec<JwksCacheEntry>>;
    /// Saves the cache entry; `audit` is written with it when the key set itself changed.
    async fn save_jwks(
        &self,
        entry: &JwksCacheEntry,
        audit: Option<&NewAuditEvent>,
    ) -> StoreResult<()>;

    // The gateway's own signing keys.
    async fn list_signing_keys(&self) -> StoreResult<Vec<SigningKeyRecord>>;
    async fn insert_signing_key(&self, key: &SigningKeyRecord) -> StoreResult<()>;

    /// Closes connections and stops background writers.
    async fn close(&self);
}
