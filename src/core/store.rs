//! The persistence boundary: one [`Store`] trait, implemented for SQLite and PostgreSQL.
//!
//! Callers never see sqlx types. Every mutating call that an operator or the exchange makes
//! carries its audit event, which the implementation commits in the same transaction, so a
//! change is never stored without its audit record.

pub mod postgres;
pub mod sqlite;

use std::str::FromStr;

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

/// Maps a failed proxy update: a unique violation is the new name, anything else the proxy.
pub(crate) fn proxy_update_error(error: sqlx::Error, id: i64, name: Option<&str>) -> StoreError {
    match map_error(error, &format!("proxy {id}")) {
        StoreError::Conflict(_) => StoreError::Conflict(format!(
            "a proxy named '{}' already exists",
            name.unwrap_or_default()
        )),
        other => other,
    }
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

/// The store's decision for an [`ExchangeWrite`].
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

/// Result of one chunk of [`Store::mark_subject_revocation`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MarkProgress {
    /// ID-JAG records this chunk marked as revoked.
    pub marked: u64,
    /// Highest record id this chunk marked; the next chunk starts after it.
    pub last_id: i64,
    /// Whether the revocation has no records left to mark.
    pub done: bool,
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
    /// Creates the mapping and, when `credential` is given and the client does not exist yet,
    /// the client it names, with `audit`. The flag is true when the credential was stored
    /// (false when another request created the client first).
    async fn create_mapping(
        &self,
        proxy_id: i64,
        new: &NewMapping,
        credential: Option<&NewClientCredential>,
        audit: &NewAuditEvent,
    ) -> StoreResult<(ClientMapping, bool)>;
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
    /// Records a subject revocation, pending, and returns how many unrevoked ID-JAG records of
    /// the subject it covers (those issued at or before it). It does not wait for the records,
    /// which [`Store::mark_subject_revocation`] marks later. Every instance's snapshot rejects
    /// the subject from its next reload.
    async fn revoke_subject(
        &self,
        revocation: &SubjectRevocation,
        audit: &NewAuditEvent,
    ) -> StoreResult<i64>;
    /// Subject revocations whose records are not all marked yet.
    async fn pending_subject_revocations(&self) -> StoreResult<Vec<SubjectRevocation>>;
    /// Marks, in one transaction, up to `limit` unrevoked ID-JAG records that a pending
    /// revocation covers and whose id is above `after_id`, their access tokens too, and moves
    /// them to revoked in the statistics counters. When fewer than `limit` were left, the
    /// revocation stops being pending (unless it was renewed meanwhile) and the revocation
    /// generation moves. Safe to run from several instances at once.
    async fn mark_subject_revocation(
        &self,
        revocation: &SubjectRevocation,
        after_id: i64,
        limit: u32,
    ) -> StoreResult<MarkProgress>;
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
    /// Exchanges and rejections per minute since `since`, oldest first; minutes without
    /// traffic are absent.
    async fn activity(
        &self,
        proxy_id: Option<i64>,
        since: DateTime<Utc>,
    ) -> StoreResult<Vec<crate::core::model::ActivityPoint>>;
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

// ---------------------------------------------------------------------------------------------
// Helpers that both implementations share because they do not depend on the SQL dialect

/// Default and maximum rows returned by listing calls.
pub(crate) const DEFAULT_LIMIT: i64 = 100;
pub(crate) const MAX_LIMIT: i64 = 10_000;

/// The mapping columns joined with the provider name; callers append the `WHERE` clause.
pub(crate) const MAPPING_SELECT: &str = "SELECT m.id, m.proxy_id, m.idp_provider_id, \
     p.name AS provider_name, m.client_id_at_idp, m.client_id_at_resource_as, m.allowed_scopes, \
     m.created_at FROM client_mappings m JOIN providers p ON p.id = m.idp_provider_id";

/// Converts a time to the stored representation, Unix milliseconds.
pub(crate) fn millis(at: DateTime<Utc>) -> i64 {
    at.timestamp_millis()
}

pub(crate) fn from_millis(value: i64) -> StoreResult<DateTime<Utc>> {
    DateTime::from_timestamp_millis(value)
        .ok_or_else(|| StoreError::Corrupt(format!("timestamp {value} is out of range")))
}

pub(crate) fn opt_from_millis(value: Option<i64>) -> StoreResult<Option<DateTime<Utc>>> {
    value.map(from_millis).transpose()
}

/// Returns the expiry bucket of a time in Unix milliseconds: whole minutes since the epoch.
pub(crate) fn minute_of(at_millis: i64) -> i64 {
    at_millis.div_euclid(60_000)
}

/// Joins a word list (scopes, algorithms) into the space-separated text of one column.
pub(crate) fn join_words(words: &[String]) -> String {
    words.join(" ")
}

pub(crate) fn split_words(text: &str) -> Vec<String> {
    text.split_whitespace().map(str::to_owned).collect()
}

pub(crate) fn parse_text<T: FromStr<Err = String>>(text: &str, column: &str) -> StoreResult<T> {
    text.parse()
        .map_err(|error| StoreError::Corrupt(format!("column {column}: {error}")))
}

/// Maps sqlx errors once: missing rows become `NotFound`, constraint violations `Conflict`.
pub(crate) fn map_error(error: sqlx::Error, what: &str) -> StoreError {
    match &error {
        sqlx::Error::RowNotFound => StoreError::NotFound(what.to_owned()),
        sqlx::Error::Database(db) if db.is_unique_violation() => {
            StoreError::Conflict(format!("{what} already exists"))
        }
        sqlx::Error::Database(db) if db.is_foreign_key_violation() => {
            StoreError::Conflict(format!("{what} is still referenced"))
        }
        _ => StoreError::Database(error),
    }
}

pub(crate) fn clamp_limit(limit: Option<i64>) -> i64 {
    limit.unwrap_or(DEFAULT_LIMIT).clamp(1, MAX_LIMIT)
}

pub(crate) fn apply_provider_patch(provider: &mut Provider, patch: ProviderPatch) {
    if let Some(name) = patch.name {
        provider.name = name;
    }
    if let Some(enabled) = patch.enabled {
        provider.enabled = enabled;
    }
    if let Some(jwks_uri) = patch.jwks_uri {
        provider.jwks_uri = jwks_uri;
    }
    if let Some(algs) = patch.allowed_algs {
        provider.allowed_algs = algs;
    }
    if let Some(policy) = patch.replay_policy {
        provider.replay_policy = policy;
    }
    if let Some(leeway) = patch.leeway_secs {
        provider.leeway_secs = leeway;
    }
    if let Some(lifetime) = patch.max_lifetime_secs {
        provider.max_lifetime_secs = lifetime;
    }
}

/// Serializes an audit event's fields for the `audit_logs.fields` text column.
pub(crate) fn audit_fields_to_text(event: &NewAuditEvent) -> StoreResult<String> {
    serde_json::to_string(&event.fields)
        .map_err(|error| StoreError::Corrupt(format!("audit fields: {error}")))
}

pub(crate) fn audit_fields_from_text(
    text: &str,
) -> StoreResult<serde_json::Map<String, serde_json::Value>> {
    serde_json::from_str(text)
        .map_err(|error| StoreError::Corrupt(format!("audit fields: {error}")))
}

/// The stored ID-JAG record after a repeated presentation incremented its count.
pub(crate) struct StoredPresentation<'a> {
    pub proxy_id: i64,
    pub client_id_at_resource_as: &'a str,
    pub presentation_count: i64,
    pub revoked: bool,
}

/// Decides a repeated presentation: `Some` outcome when it is rejected, `None` when another
/// access token may be issued (reuse allowed, and the same client at the same proxy).
pub(crate) fn repeat_presentation_outcome(
    write: &ExchangeWrite,
    stored: &StoredPresentation<'_>,
) -> Option<ExchangeOutcome> {
    if stored.revoked {
        return Some(ExchangeOutcome::Revoked);
    }
    let same_client = stored.client_id_at_resource_as == write.client_id_at_resource_as
        && stored.proxy_id == write.proxy_id;
    if write.allow_reuse && same_client {
        None
    } else {
        Some(ExchangeOutcome::Replayed {
            presentation_count: stored.presentation_count,
        })
    }
}

/// Adds the new mapping's id to the audit event of a mapping creation.
pub(crate) fn mapping_created_audit(audit: &NewAuditEvent, mapping_id: i64) -> NewAuditEvent {
    let mut audit = audit.clone();
    audit.fields.insert("mapping_id".into(), mapping_id.into());
    audit
}

/// Adds `already_revoked` to the audit event of a revocation by JTI. It is true when the
/// revocation changed nothing.
pub(crate) fn jti_revocation_audit(
    audit: &NewAuditEvent,
    outcome: &JtiRevocationOutcome,
) -> NewAuditEvent {
    let mut audit = audit.clone();
    audit.fields.insert(
        "already_revoked".into(),
        (outcome.newly_revoked == 0).into(),
    );
    audit
}

/// Adds `count`, the number of ID-JAGs newly revoked, to the audit event of a revocation by
/// subject.
pub(crate) fn subject_revocation_audit(audit: &NewAuditEvent, count: i64) -> NewAuditEvent {
    let mut audit = audit.clone();
    audit.fields.insert("count".into(), count.into());
    audit
}
