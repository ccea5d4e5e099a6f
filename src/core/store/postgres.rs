//! PostgreSQL implementation of [`Store`]: a connection pool and one transaction per mutating
//! call.
//!
//! PostgreSQL runs concurrent writers itself, so there is no writer task, and several xaa
//! instances may share one database. The replay check is a single
//! `INSERT ... ON CONFLICT DO UPDATE ... RETURNING`, which PostgreSQL executes atomically, so
//! of two instances that receive the same ID-JAG at once, one records presentation 1 and the
//! other presentation 2. Revocations update rows `WHERE revoked_at IS NULL ... RETURNING`, so
//! each record moves to the revoked counters in exactly one transaction.

use std::collections::BTreeMap;
use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sqlx::postgres::{PgConnectOptions, PgConnection, PgPoolOptions, PgRow};
use sqlx::{PgPool, Postgres, QueryBuilder, Row};

use super::{
    ExchangeOutcome, ExchangeWrite, JtiRevocationOutcome, MAPPING_SELECT, MarkProgress,
    NewClientCredential, ProviderRow, Store, StoreError, StoreResult, StoredPresentation,
    apply_provider_patch, audit_fields_from_text, audit_fields_to_text, clamp_limit, from_millis,
    join_words, jti_revocation_audit, map_error, mapping_created_audit, millis, minute_of,
    opt_from_millis, parse_text, proxy_update_error, repeat_presentation_outcome, split_words,
    subject_revocation_audit,
};
use crate::core::model::{
    AccessTokenRecord, ActivityPoint, AuditEvent, AuditEventType, AuditQuery, ClientMapping,
    ClientMappingStats, IdJagRecord, IdJagTokenStats, JwksCacheEntry, JwksCacheStats,
    NewAuditEvent, NewMapping, NewProxy, Provider, ProviderPatch, Proxy, ProxyPatch,
    ResourceClient, Revocation, SigningKeyRecord, SubjectRevocation, TokenQuery, XaaStats,
};

/// Maximum connections in each instance's pool. PostgreSQL's `max_connections` setting must
/// allow this many for every instance.
const MAX_CONNECTIONS: u32 = 10;
/// How long a call waits for a free connection before it fails with `PoolTimedOut`.
const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(5);

/// The PostgreSQL store.
pub struct PostgresStore {
    pool: PgPool,
}

impl PostgresStore {
    /// Connects to the database at `url` (`postgres://USER@HOST/DB` or `postgresql://...`) and
    /// runs the migrations. Concurrent instances may call this at once: sqlx serializes
    /// migrations with an advisory lock.
    /// TLS follows the URL's `sslmode` (rustls with the webpki root certificates).
    pub async fn open(url: &str) -> StoreResult<Self> {
        let options = PgConnectOptions::from_str(url)?;
        let pool = PgPoolOptions::new()
            .max_connections(MAX_CONNECTIONS)
            .acquire_timeout(ACQUIRE_TIMEOUT)
            .connect_with(options)
            .await?;
        sqlx::migrate!("./migrations/postgres").run(&pool).await?;
        Ok(Self { pool })
    }
}

// ---------------------------------------------------------------------------------------------
// Row conversions

fn provider_from_row(row: &PgRow) -> StoreResult<Provider> {
    Ok(Provider {
        id: row.try_get("id")?,
        name: row.try_get("name")?,
        kind: parse_text(row.try_get::<&str, _>("kind")?, "providers.kind")?,
        issuer: row.try_get("issuer")?,
        jwks_uri: row.try_get("jwks_uri")?,
        enabled: row.try_get("enabled")?,
        allowed_algs: split_words(row.try_get("allowed_algs")?),
        replay_policy: parse_text(row.try_get::<&str, _>("replay_policy")?, "replay_policy")?,
        leeway_secs: row.try_get("leeway_secs")?,
        max_lifetime_secs: row.try_get("max_lifetime_secs")?,
        created_at: from_millis(row.try_get("created_at")?)?,
    })
}

fn proxy_from_row(row: &PgRow) -> StoreResult<Proxy> {
    Ok(Proxy {
        id: row.try_get("id")?,
        name: row.try_get("name")?,
        kind: parse_text(row.try_get::<&str, _>("kind")?, "proxies.kind")?,
        resource: row.try_get("resource")?,
        require_resource: row.try_get("require_resource")?,
        issuance_enabled: row.try_get("issuance_enabled")?,
        created_at: from_millis(row.try_get("created_at")?)?,
    })
}

fn mapping_from_row(row: &PgRow) -> StoreResult<ClientMapping> {
    Ok(ClientMapping {
        id: row.try_get("id")?,
        proxy_id: row.try_get("proxy_id")?,
        idp_provider_id: row.try_get("idp_provider_id")?,
        idp_provider_name: row.try_get("provider_name")?,
        client_id_at_idp: row.try_get("client_id_at_idp")?,
        client_id_at_resource_as: row.try_get("client_id_at_resource_as")?,
        allowed_scopes: split_words(row.try_get("allowed_scopes")?),
        created_at: from_millis(row.try_get("created_at")?)?,
    })
}

fn client_from_row(row: &PgRow) -> StoreResult<ResourceClient> {
    Ok(ResourceClient {
        proxy_id: row.try_get("proxy_id")?,
        client_id: row.try_get("client_id")?,
        secret_hash: row.try_get("secret_hash")?,
        created_at: from_millis(row.try_get("created_at")?)?,
    })
}

fn revocation_from_row(row: &PgRow) -> StoreResult<Option<Revocation>> {
    let Some(revoked_at) = row.try_get::<Option<i64>, _>("revoked_at")? else {
        return Ok(None);
    };
    Ok(Some(Revocation {
        revoked_at: from_millis(revoked_at)?,
        reason: row.try_get("revoke_reason")?,
        revoked_by: row.try_get("revoked_by")?,
    }))
}

fn id_jag_from_row(row: &PgRow) -> StoreResult<IdJagRecord> {
    Ok(IdJagRecord {
        id: row.try_get("id")?,
        idp_provider_id: row.try_get("idp_provider_id")?,
        proxy_id: row.try_get("proxy_id")?,
        jti: row.try_get("jti")?,
        subject: row.try_get("subject")?,
        client_id: row.try_get("client_id")?,
        client_id_at_resource_as: row.try_get("client_id_at_resource_as")?,
        scopes: split_words(row.try_get("scopes")?),
        issued_at: from_millis(row.try_get("issued_at")?)?,
        expires_at: from_millis(row.try_get("expires_at")?)?,
        first_seen_at: from_millis(row.try_get("first_seen_at")?)?,
        last_seen_at: from_millis(row.try_get("last_seen_at")?)?,
        presentation_count: row.try_get("presentation_count")?,
        revocation: revocation_from_row(row)?,
    })
}

fn access_token_from_row(row: &PgRow) -> StoreResult<AccessTokenRecord> {
    Ok(AccessTokenRecord {
        jti: row.try_get("jti")?,
        id_jag_id: row.try_get("id_jag_id")?,
        proxy_id: row.try_get("proxy_id")?,
        idp_provider_id: row.try_get("idp_provider_id")?,
        subject: row.try_get("subject")?,
        client_id: row.try_get("client_id")?,
        scopes: split_words(row.try_get("scopes")?),
        audience: row.try_get("audience")?,
        issued_at: from_millis(row.try_get("issued_at")?)?,
        expires_at: from_millis(row.try_get("expires_at")?)?,
        revocation: revocation_from_row(row)?,
    })
}

fn subject_revocation_from_row(row: &PgRow) -> StoreResult<SubjectRevocation> {
    Ok(SubjectRevocation {
        idp_provider_id: row.try_get("idp_provider_id")?,
        subject: row.try_get("subject")?,
        revoked_at: from_millis(row.try_get("revoked_at")?)?,
        reason: row.try_get("reason")?,
        revoked_by: row.try_get("revoked_by")?,
    })
}

fn jwks_from_row(row: &PgRow) -> StoreResult<JwksCacheEntry> {
    Ok(JwksCacheEntry {
        idp_provider_id: row.try_get("idp_provider_id")?,
        jwks_json: row.try_get("jwks_json")?,
        key_count: row.try_get("key_count")?,
        fetched_at: opt_from_millis(row.try_get("fetched_at")?)?,
        expires_at: opt_from_millis(row.try_get("expires_at")?)?,
        last_error: row.try_get("last_error")?,
        last_error_at: opt_from_millis(row.try_get("last_error_at")?)?,
    })
}

fn signing_key_from_row(row: &PgRow) -> StoreResult<SigningKeyRecord> {
    Ok(SigningKeyRecord {
        kid: row.try_get("kid")?,
        alg: row.try_get("alg")?,
        private_pkcs8: row.try_get("private_pkcs8")?,
        public_jwk: row.try_get("public_jwk")?,
        created_at: from_millis(row.try_get("created_at")?)?,
        active: row.try_get("active")?,
    })
}

fn audit_from_row(row: &PgRow) -> StoreResult<AuditEvent> {
    Ok(AuditEvent {
        id: row.try_get("id")?,
        at: from_millis(row.try_get("at")?)?,
        event_type: parse_text(row.try_get::<&str, _>("event_type")?, "event_type")?,
        actor: row.try_get("actor")?,
        proxy_id: row.try_get("proxy_id")?,
        idp_provider_id: row.try_get("idp_provider_id")?,
        reason_code: row.try_get("reason_code")?,
        fields: audit_fields_from_text(row.try_get("fields")?)?,
    })
}

// ---------------------------------------------------------------------------------------------
// Statements shared by several writes

async fn insert_audit(conn: &mut PgConnection, event: &NewAuditEvent) -> StoreResult<()> {
    let fields = audit_fields_to_text(event)?;
    sqlx::query(
        "INSERT INTO audit_logs (at, event_type, actor, proxy_id, idp_provider_id, reason_code, \
         fields) VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(millis(Utc::now()))
    .bind(event.event_type.as_str())
    .bind(&event.actor)
    .bind(event.proxy_id)
    .bind(event.idp_provider_id)
    .bind(&event.reason_code)
    .bind(fields)
    .execute(&mut *conn)
    .await?;
    count_activity(conn, event).await
}

/// Counts exchange outcomes per proxy and minute for the activity chart.
async fn count_activity(conn: &mut PgConnection, event: &NewAuditEvent) -> StoreResult<()> {
    let (succeeded, failed): (i64, i64) = match event.event_type {
        AuditEventType::XaaTokenExchange => (1, 0),
        AuditEventType::XaaTokenValidationFailed => (0, 1),
        _ => return Ok(()),
    };
    sqlx::query(
        "INSERT INTO exchange_activity (proxy_id, minute, succeeded, failed) \
         VALUES ($1, $2, $3, $4) ON CONFLICT (proxy_id, minute) DO UPDATE SET \
         succeeded = exchange_activity.succeeded + excluded.succeeded, \
         failed = exchange_activity.failed + excluded.failed",
    )
    .bind(event.proxy_id.unwrap_or(0))
    .bind(minute_of(millis(Utc::now())))
    .bind(succeeded)
    .bind(failed)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

async fn touch_mappings(conn: &mut PgConnection, proxy_id: i64) -> StoreResult<()> {
    sqlx::query(
        "INSERT INTO mapping_changes (proxy_id, changed_at) VALUES ($1, $2) \
         ON CONFLICT (proxy_id) DO UPDATE SET changed_at = excluded.changed_at",
    )
    .bind(proxy_id)
    .bind(millis(Utc::now()))
    .execute(&mut *conn)
    .await?;
    bump_config_generation(conn).await
}

async fn bump_config_generation(conn: &mut PgConnection) -> StoreResult<()> {
    sqlx::query("UPDATE counters SET value = value + 1 WHERE name = 'config_generation'")
        .execute(&mut *conn)
        .await?;
    Ok(())
}

async fn bump_revocation_generation(conn: &mut PgConnection) -> StoreResult<()> {
    sqlx::query("UPDATE counters SET value = value + 1 WHERE name = 'revocation_generation'")
        .execute(&mut *conn)
        .await?;
    Ok(())
}

/// Counts a newly recorded ID-JAG in the statistics counters.
async fn count_new_token(
    conn: &mut PgConnection,
    proxy_id: i64,
    expires_at: i64,
    seen_at: i64,
) -> StoreResult<()> {
    sqlx::query(
        "INSERT INTO token_counters (proxy_id, total, revoked, last_token_at) \
         VALUES ($1, 1, 0, $2) \
         ON CONFLICT (proxy_id) DO UPDATE SET total = token_counters.total + 1, \
         last_token_at = GREATEST(coalesce(token_counters.last_token_at, 0), \
         excluded.last_token_at)",
    )
    .bind(proxy_id)
    .bind(seen_at)
    .execute(&mut *conn)
    .await?;
    sqlx::query(
        "INSERT INTO token_expiry_buckets (proxy_id, minute, unrevoked) VALUES ($1, $2, 1) \
         ON CONFLICT (proxy_id, minute) DO UPDATE \
         SET unrevoked = token_expiry_buckets.unrevoked + 1",
    )
    .bind(proxy_id)
    .bind(minute_of(expires_at))
    .execute(&mut *conn)
    .await?;
    Ok(())
}

async fn touch_last_token(conn: &mut PgConnection, proxy_id: i64, at: i64) -> StoreResult<()> {
    sqlx::query(
        "UPDATE token_counters SET last_token_at = GREATEST(coalesce(last_token_at, 0), $1) \
         WHERE proxy_id = $2",
    )
    .bind(at)
    .bind(proxy_id)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// Moves newly revoked ID-JAG records, given as `(proxy_id, expires_at)` pairs, from the
/// unrevoked expiry buckets to the revoked counters.
///
/// The groups are applied in (proxy, minute) order, so concurrent revocations lock the
/// counter rows in the same order as each other and as exchanges (counter row first, then
/// bucket rows), which rules out deadlocks between them.
async fn count_revoked(conn: &mut PgConnection, records: &[(i64, i64)]) -> StoreResult<()> {
    let mut groups: BTreeMap<(i64, i64), i64> = BTreeMap::new();
    for &(proxy_id, expires_at) in records {
        *groups.entry((proxy_id, minute_of(expires_at))).or_default() += 1;
    }
    for ((proxy_id, minute), count) in groups {
        sqlx::query("UPDATE token_counters SET revoked = revoked + $1 WHERE proxy_id = $2")
            .bind(count)
            .bind(proxy_id)
            .execute(&mut *conn)
            .await?;
        sqlx::query(
            "UPDATE token_expiry_buckets SET unrevoked = unrevoked - $1 \
             WHERE proxy_id = $2 AND minute = $3",
        )
        .bind(count)
        .bind(proxy_id)
        .bind(minute)
        .execute(&mut *conn)
        .await?;
    }
    Ok(())
}

fn revoked_records(rows: &[PgRow]) -> StoreResult<Vec<(i64, i64)>> {
    rows.iter()
        .map(|row| Ok((row.try_get("proxy_id")?, row.try_get("expires_at")?)))
        .collect()
}

async fn insert_access_token(
    conn: &mut PgConnection,
    id_jag_id: i64,
    write: &ExchangeWrite,
) -> StoreResult<()> {
    let token = &write.access_token;
    sqlx::query(
        "INSERT INTO access_tokens (jti, id_jag_id, proxy_id, idp_provider_id, subject, \
         client_id, scopes, audience, issued_at, expires_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
    )
    .bind(&token.jti)
    .bind(id_jag_id)
    .bind(write.proxy_id)
    .bind(write.idp_provider_id)
    .bind(&write.subject)
    .bind(&write.client_id_at_resource_as)
    .bind(join_words(&write.scopes))
    .bind(&token.audience)
    .bind(millis(token.issued_at))
    .bind(millis(token.expires_at))
    .execute(&mut *conn)
    .await
    .map_err(|error| map_error(error, "access token"))?;
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Transactions of the larger writes

async fn exchange_job(
    conn: &mut PgConnection,
    write: &ExchangeWrite,
) -> StoreResult<ExchangeOutcome> {
    let seen_at = millis(write.seen_at);
    // The conflict update takes the row lock, so a concurrent presentation of the same
    // (issuer, jti) waits for this transaction and then reads the incremented count.
    let row = sqlx::query(
        "INSERT INTO id_jag_tokens (idp_provider_id, proxy_id, jti, subject, client_id, \
         client_id_at_resource_as, scopes, issued_at, expires_at, first_seen_at, last_seen_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) \
         ON CONFLICT (idp_provider_id, jti) DO UPDATE SET \
         presentation_count = id_jag_tokens.presentation_count + 1, \
         last_seen_at = excluded.last_seen_at \
         RETURNING id, proxy_id, presentation_count, revoked_at, client_id_at_resource_as",
    )
    .bind(write.idp_provider_id)
    .bind(write.proxy_id)
    .bind(&write.jti)
    .bind(&write.subject)
    .bind(&write.client_id)
    .bind(&write.client_id_at_resource_as)
    .bind(join_words(&write.scopes))
    .bind(millis(write.issued_at))
    .bind(millis(write.expires_at))
    .bind(seen_at)
    .bind(seen_at)
    .fetch_one(&mut *conn)
    .await?;

    let id_jag_id: i64 = row.try_get("id")?;
    let presentation_count: i64 = row.try_get("presentation_count")?;
    if presentation_count == 1 {
        count_new_token(conn, write.proxy_id, millis(write.expires_at), seen_at).await?;
    } else {
        let stored = StoredPresentation {
            proxy_id: row.try_get("proxy_id")?,
            client_id_at_resource_as: row.try_get("client_id_at_resource_as")?,
            presentation_count,
            revoked: row.try_get::<Option<i64>, _>("revoked_at")?.is_some(),
        };
        if let Some(rejected) = repeat_presentation_outcome(write, &stored) {
            return Ok(rejected);
        }
        touch_last_token(conn, write.proxy_id, seen_at).await?;
    }

    insert_access_token(conn, id_jag_id, write).await?;
    for event in &write.success_audit {
        insert_audit(conn, event).await?;
    }
    Ok(ExchangeOutcome::Issued {
        id_jag_id,
        presentation_count,
    })
}

async fn revoke_jti_job(
    conn: &mut PgConnection,
    jti: &str,
    revocation: &Revocation,
    audit: &NewAuditEvent,
) -> StoreResult<JtiRevocationOutcome> {
    let at = millis(revocation.revoked_at);
    let revoked = sqlx::query(
        "UPDATE id_jag_tokens SET revoked_at = $1, revoke_reason = $2, revoked_by = $3 \
         WHERE jti = $4 AND revoked_at IS NULL RETURNING id, proxy_id, expires_at",
    )
    .bind(at)
    .bind(&revocation.reason)
    .bind(&revocation.revoked_by)
    .bind(jti)
    .fetch_all(&mut *conn)
    .await?;
    let matching: i64 = sqlx::query_scalar("SELECT count(*) FROM id_jag_tokens WHERE jti = $1")
        .bind(jti)
        .fetch_one(&mut *conn)
        .await?;
    let newly_revoked = i64::try_from(revoked.len()).unwrap_or(i64::MAX);
    let mut outcome = JtiRevocationOutcome {
        newly_revoked,
        already_revoked: matching - newly_revoked,
    };

    if matching == 0 {
        // No ID-JAG has this JTI, so it may name an access token.
        let done = sqlx::query(
            "UPDATE access_tokens SET revoked_at = $1, revoke_reason = $2, revoked_by = $3 \
             WHERE jti = $4 AND revoked_at IS NULL",
        )
        .bind(at)
        .bind(&revocation.reason)
        .bind(&revocation.revoked_by)
        .bind(jti)
        .execute(&mut *conn)
        .await?;
        if done.rows_affected() == 0 {
            let exists = sqlx::query("SELECT 1 FROM access_tokens WHERE jti = $1")
                .bind(jti)
                .fetch_optional(&mut *conn)
                .await?;
            if exists.is_none() {
                return Err(StoreError::NotFound(format!("token with jti '{jti}'")));
            }
            outcome.already_revoked = 1;
        } else {
            outcome.newly_revoked = 1;
        }
    } else if !revoked.is_empty() {
        let ids = revoked
            .iter()
            .map(|row| row.try_get::<i64, _>("id"))
            .collect::<Result<Vec<_>, _>>()?;
        sqlx::query(
            "UPDATE access_tokens SET revoked_at = $1, revoke_reason = $2, revoked_by = $3 \
             WHERE id_jag_id = ANY($4) AND revoked_at IS NULL",
        )
        .bind(at)
        .bind(&revocation.reason)
        .bind(&revocation.revoked_by)
        .bind(&ids)
        .execute(&mut *conn)
        .await?;
        count_revoked(conn, &revoked_records(&revoked)?).await?;
    }

    if outcome.newly_revoked > 0 {
        bump_revocation_generation(conn).await?;
    }
    insert_audit(conn, &jti_revocation_audit(audit, &outcome)).await?;
    Ok(outcome)
}

async fn revoke_subject_job(
    conn: &mut PgConnection,
    revocation: &SubjectRevocation,
    audit: &NewAuditEvent,
) -> StoreResult<i64> {
    let at = millis(revocation.revoked_at);
    sqlx::query(
        "INSERT INTO subject_revocations (idp_provider_id, subject, revoked_at, reason, \
         revoked_by, pending) VALUES ($1, $2, $3, $4, $5, TRUE) \
         ON CONFLICT (idp_provider_id, subject) DO UPDATE SET \
         revoked_at = GREATEST(subject_revocations.revoked_at, excluded.revoked_at), \
         reason = excluded.reason, revoked_by = excluded.revoked_by, pending = TRUE",
    )
    .bind(revocation.idp_provider_id)
    .bind(&revocation.subject)
    .bind(at)
    .bind(&revocation.reason)
    .bind(&revocation.revoked_by)
    .execute(&mut *conn)
    .await?;
    let count: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM id_jag_tokens WHERE idp_provider_id = $1 AND subject = $2 \
         AND revoked_at IS NULL AND issued_at <= $3",
    )
    .bind(revocation.idp_provider_id)
    .bind(&revocation.subject)
    .bind(at)
    .fetch_one(&mut *conn)
    .await?;
    bump_revocation_generation(conn).await?;
    insert_audit(conn, &subject_revocation_audit(audit, count)).await?;
    Ok(count)
}

/// Checks whether any record the revocation covers is still unrevoked.
async fn covers_unmarked(
    conn: &mut PgConnection,
    revocation: &SubjectRevocation,
) -> StoreResult<bool> {
    let found: bool = sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM id_jag_tokens WHERE idp_provider_id = $1 \
         AND subject = $2 AND revoked_at IS NULL AND issued_at <= $3)",
    )
    .bind(revocation.idp_provider_id)
    .bind(&revocation.subject)
    .bind(millis(revocation.revoked_at))
    .fetch_one(&mut *conn)
    .await?;
    Ok(found)
}

async fn mark_subject_job(
    conn: &mut PgConnection,
    revocation: &SubjectRevocation,
    after_id: i64,
    limit: u32,
) -> StoreResult<MarkProgress> {
    let at = millis(revocation.revoked_at);
    // SKIP LOCKED lets instances that mark the same revocation at once take different rows
    // instead of queueing behind each other. The rows are picked in a CTE, which PostgreSQL
    // runs once: a LIMIT in an `IN (...)` subquery of an UPDATE can be run again and pick
    // more rows.
    let marked = sqlx::query(
        "WITH picked AS (SELECT id FROM id_jag_tokens \
                         WHERE idp_provider_id = $4 AND subject = $5 AND id > $6 \
                         AND revoked_at IS NULL AND issued_at <= $1 ORDER BY id LIMIT $7 \
                         FOR UPDATE SKIP LOCKED) \
         UPDATE id_jag_tokens SET revoked_at = $1, revoke_reason = $2, revoked_by = $3 \
         FROM picked WHERE id_jag_tokens.id = picked.id AND id_jag_tokens.revoked_at IS NULL \
         RETURNING id_jag_tokens.id, id_jag_tokens.proxy_id, id_jag_tokens.expires_at",
    )
    .bind(at)
    .bind(&revocation.reason)
    .bind(&revocation.revoked_by)
    .bind(revocation.idp_provider_id)
    .bind(&revocation.subject)
    .bind(after_id)
    .bind(i64::from(limit))
    .fetch_all(&mut *conn)
    .await?;
    let ids = marked
        .iter()
        .map(|row| row.try_get::<i64, _>("id"))
        .collect::<Result<Vec<_>, _>>()?;
    if !ids.is_empty() {
        sqlx::query(
            "UPDATE access_tokens SET revoked_at = $1, revoke_reason = $2, revoked_by = $3 \
             WHERE id_jag_id = ANY($4) AND revoked_at IS NULL",
        )
        .bind(at)
        .bind(&revocation.reason)
        .bind(&revocation.revoked_by)
        .bind(&ids)
        .execute(&mut *conn)
        .await?;
        count_revoked(conn, &revoked_records(&marked)?).await?;
    }

    let done = marked.len() < usize::try_from(limit).unwrap_or(usize::MAX)
        && !covers_unmarked(conn, revocation).await?;
    if done {
        let cleared = sqlx::query(
            "UPDATE subject_revocations SET pending = FALSE \
             WHERE idp_provider_id = $1 AND subject = $2 AND revoked_at = $3 AND pending",
        )
        .bind(revocation.idp_provider_id)
        .bind(&revocation.subject)
        .bind(at)
        .execute(&mut *conn)
        .await?;
        if cleared.rows_affected() > 0 {
            bump_revocation_generation(conn).await?;
        }
    }
    // A short chunk that leaves records unmarked met rows another instance held, or rows
    // recorded behind the walk: the next chunk walks again from the start.
    let full = marked.len() == usize::try_from(limit).unwrap_or(usize::MAX);
    let last_id = if full || done {
        ids.iter().copied().max().unwrap_or(after_id)
    } else {
        0
    };
    Ok(MarkProgress {
        marked: u64::try_from(ids.len()).unwrap_or(u64::MAX),
        last_id,
        done,
    })
}

async fn update_provider_job(
    conn: &mut PgConnection,
    id: i64,
    patch: &ProviderPatch,
) -> StoreResult<Provider> {
    let current = sqlx::query("SELECT * FROM providers WHERE id = $1 FOR UPDATE")
        .bind(id)
        .fetch_one(&mut *conn)
        .await
        .map_err(|error| map_error(error, &format!("provider {id}")))?;
    let mut provider = provider_from_row(&current)?;
    apply_provider_patch(&mut provider, patch.clone());
    let updated = sqlx::query(
        "UPDATE providers SET name = $1, jwks_uri = $2, enabled = $3, allowed_algs = $4, \
         replay_policy = $5, leeway_secs = $6, max_lifetime_secs = $7 WHERE id = $8 \
         RETURNING *",
    )
    .bind(&provider.name)
    .bind(&provider.jwks_uri)
    .bind(provider.enabled)
    .bind(join_words(&provider.allowed_algs))
    .bind(provider.replay_policy.as_str())
    .bind(provider.leeway_secs)
    .bind(provider.max_lifetime_secs)
    .bind(id)
    .fetch_one(&mut *conn)
    .await
    .map_err(|error| map_error(error, &format!("a provider named '{}'", provider.name)))?;
    bump_config_generation(conn).await?;
    provider_from_row(&updated)
}

async fn delete_provider_job(conn: &mut PgConnection, id: i64) -> StoreResult<()> {
    let used: i64 =
        sqlx::query_scalar("SELECT count(*) FROM client_mappings WHERE idp_provider_id = $1")
            .bind(id)
            .fetch_one(&mut *conn)
            .await?;
    if used > 0 {
        return Err(StoreError::Conflict(format!(
            "provider {id} is used by {used} client mapping(s); delete them first"
        )));
    }
    // A mapping committed by another instance after the count above fails this delete with a
    // foreign key violation, which becomes a conflict as well.
    let done = sqlx::query("DELETE FROM providers WHERE id = $1")
        .bind(id)
        .execute(&mut *conn)
        .await
        .map_err(|error| map_error(error, &format!("provider {id}")))?;
    if done.rows_affected() == 0 {
        return Err(StoreError::NotFound(format!("provider {id}")));
    }
    bump_config_generation(conn).await
}

async fn create_mapping_job(
    conn: &mut PgConnection,
    proxy_id: i64,
    new: &NewMapping,
    credential: Option<&NewClientCredential>,
    audit: &NewAuditEvent,
) -> StoreResult<(ClientMapping, bool)> {
    let id: i64 = sqlx::query_scalar(
        "INSERT INTO client_mappings (proxy_id, idp_provider_id, client_id_at_idp, \
         client_id_at_resource_as, allowed_scopes, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6) RETURNING id",
    )
    .bind(proxy_id)
    .bind(new.idp_provider_id)
    .bind(&new.client_id_at_idp)
    .bind(&new.client_id_at_resource_as)
    .bind(join_words(&new.allowed_scopes))
    .bind(millis(Utc::now()))
    .fetch_one(&mut *conn)
    .await
    .map_err(|error| {
        map_error(
            error,
            &format!(
                "a mapping for provider {} and client id at IdP '{}' on proxy {proxy_id}",
                new.idp_provider_id, new.client_id_at_idp
            ),
        )
    })?;
    let mut credential_created = false;
    if let Some(credential) = credential {
        credential_created = sqlx::query(
            "INSERT INTO resource_clients (proxy_id, client_id, secret_hash, created_at) \
             VALUES ($1, $2, $3, $4) ON CONFLICT (proxy_id, client_id) DO NOTHING RETURNING client_id",
        )
        .bind(proxy_id)
        .bind(&credential.client_id)
        .bind(&credential.secret_hash)
        .bind(millis(Utc::now()))
        .fetch_optional(&mut *conn)
        .await
        .map_err(|error| map_error(error, &format!("client '{}'", credential.client_id)))?
        .is_some();
    }
    touch_mappings(conn, proxy_id).await?;
    insert_audit(conn, &mapping_created_audit(audit, id)).await?;
    let sql = format!("{MAPPING_SELECT} WHERE m.id = $1");
    let row = sqlx::query(&sql).bind(id).fetch_one(&mut *conn).await?;
    Ok((mapping_from_row(&row)?, credential_created))
}

async fn delete_mapping_job(
    conn: &mut PgConnection,
    proxy_id: i64,
    mapping_id: i64,
    audit: &NewAuditEvent,
) -> StoreResult<()> {
    let client: Option<String> = sqlx::query_scalar(
        "DELETE FROM client_mappings WHERE id = $1 AND proxy_id = $2 \
         RETURNING client_id_at_resource_as",
    )
    .bind(mapping_id)
    .bind(proxy_id)
    .fetch_optional(&mut *conn)
    .await?;
    let Some(client) = client else {
        return Err(StoreError::NotFound(format!(
            "mapping {mapping_id} on proxy {proxy_id}"
        )));
    };
    // A client with no mapping left can redeem nothing. Its credential is deleted so that a
    // later mapping issues a fresh secret instead of reviving the old one.
    sqlx::query(
        "DELETE FROM resource_clients WHERE proxy_id = $1 AND client_id = $2 \
         AND NOT EXISTS (SELECT 1 FROM client_mappings \
         WHERE proxy_id = $1 AND client_id_at_resource_as = $2)",
    )
    .bind(proxy_id)
    .bind(&client)
    .execute(&mut *conn)
    .await?;
    touch_mappings(conn, proxy_id).await?;
    insert_audit(conn, audit).await
}

// ---------------------------------------------------------------------------------------------
// Statistics queries

async fn token_stats(
    pool: &PgPool,
    proxy_id: Option<i64>,
    now: DateTime<Utc>,
) -> StoreResult<IdJagTokenStats> {
    let now_ms = millis(now);
    let this_minute = minute_of(now_ms);
    let next_minute_start = (this_minute + 1) * 60_000;

    // sum() of BIGINT is NUMERIC in PostgreSQL, hence the casts back to BIGINT.
    let counters = sqlx::query(
        "SELECT coalesce(sum(total), 0)::BIGINT AS total, \
         coalesce(sum(revoked), 0)::BIGINT AS revoked, max(last_token_at) AS last_token_at \
         FROM token_counters WHERE ($1::BIGINT IS NULL OR proxy_id = $1)",
    )
    .bind(proxy_id)
    .fetch_one(pool)
    .await?;
    // Buckets of later minutes contain only unexpired records. The current minute is partly
    // past, so its records are counted from the table.
    let future_minutes: i64 = sqlx::query_scalar(
        "SELECT coalesce(sum(unrevoked), 0)::BIGINT FROM token_expiry_buckets \
         WHERE minute > $1 AND ($2::BIGINT IS NULL OR proxy_id = $2)",
    )
    .bind(this_minute)
    .bind(proxy_id)
    .fetch_one(pool)
    .await?;
    let this_minute_active: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM id_jag_tokens WHERE expires_at > $1 AND expires_at < $2 \
         AND revoked_at IS NULL AND ($3::BIGINT IS NULL OR proxy_id = $3)",
    )
    .bind(now_ms)
    .bind(next_minute_start)
    .bind(proxy_id)
    .fetch_one(pool)
    .await?;

    Ok(IdJagTokenStats {
        total: counters.try_get("total")?,
        active: future_minutes + this_minute_active,
        revoked: counters.try_get("revoked")?,
        last_token_at: opt_from_millis(counters.try_get("last_token_at")?)?,
    })
}

async fn jwks_stats(pool: &PgPool) -> StoreResult<JwksCacheStats> {
    let row = sqlx::query(
        "SELECT count(*) FILTER (WHERE key_count > 0) AS providers, \
         coalesce(sum(key_count), 0)::BIGINT AS total_keys, max(fetched_at) AS last_updated \
         FROM jwks_cache",
    )
    .fetch_one(pool)
    .await?;
    Ok(JwksCacheStats {
        total_providers: row.try_get("providers")?,
        total_keys: row.try_get("total_keys")?,
        last_updated: opt_from_millis(row.try_get("last_updated")?)?,
    })
}

async fn mapping_stats(pool: &PgPool, proxy_id: Option<i64>) -> StoreResult<ClientMappingStats> {
    let row = sqlx::query(
        "SELECT count(*) AS total, count(DISTINCT idp_provider_id) AS providers \
         FROM client_mappings WHERE ($1::BIGINT IS NULL OR proxy_id = $1)",
    )
    .bind(proxy_id)
    .fetch_one(pool)
    .await?;
    let last_updated: Option<i64> = sqlx::query_scalar(
        "SELECT max(changed_at) FROM mapping_changes WHERE ($1::BIGINT IS NULL OR proxy_id = $1)",
    )
    .bind(proxy_id)
    .fetch_one(pool)
    .await?;
    Ok(ClientMappingStats {
        total_mappings: row.try_get("total")?,
        providers: row.try_get("providers")?,
        last_updated: opt_from_millis(last_updated)?,
    })
}

// ---------------------------------------------------------------------------------------------

#[async_trait]
impl Store for PostgresStore {
    async fn list_providers(&self) -> StoreResult<Vec<Provider>> {
        let rows = sqlx::query("SELECT * FROM providers ORDER BY id")
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(provider_from_row).collect()
    }

    async fn get_provider(&self, id: i64) -> StoreResult<Provider> {
        let row = sqlx::query("SELECT * FROM providers WHERE id = $1")
            .bind(id)
            .fetch_one(&self.pool)
            .await
            .map_err(|error| map_error(error, &format!("provider {id}")))?;
        provider_from_row(&row)
    }

    async fn create_provider(&self, row: &ProviderRow) -> StoreResult<Provider> {
        let mut tx = self.pool.begin().await?;
        let created = sqlx::query(
            "INSERT INTO providers (name, kind, issuer, jwks_uri, enabled, allowed_algs, \
             replay_policy, leeway_secs, max_lifetime_secs, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) RETURNING *",
        )
        .bind(&row.name)
        .bind(row.kind.as_str())
        .bind(&row.issuer)
        .bind(&row.jwks_uri)
        .bind(row.enabled)
        .bind(join_words(&row.allowed_algs))
        .bind(row.replay_policy.as_str())
        .bind(row.leeway_secs)
        .bind(row.max_lifetime_secs)
        .bind(millis(Utc::now()))
        .fetch_one(&mut *tx)
        .await
        .map_err(|error| {
            map_error(
                error,
                &format!(
                    "a provider named '{}' or with issuer '{}'",
                    row.name, row.issuer
                ),
            )
        })?;
        bump_config_generation(&mut tx).await?;
        let provider = provider_from_row(&created)?;
        tx.commit().await?;
        Ok(provider)
    }

    async fn update_provider(&self, id: i64, patch: &ProviderPatch) -> StoreResult<Provider> {
        let mut tx = self.pool.begin().await?;
        let provider = update_provider_job(&mut tx, id, patch).await?;
        tx.commit().await?;
        Ok(provider)
    }

    async fn delete_provider(&self, id: i64) -> StoreResult<()> {
        let mut tx = self.pool.begin().await?;
        delete_provider_job(&mut tx, id).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn list_proxies(&self) -> StoreResult<Vec<Proxy>> {
        let rows = sqlx::query("SELECT * FROM proxies ORDER BY id")
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(proxy_from_row).collect()
    }

    async fn get_proxy(&self, id: i64) -> StoreResult<Proxy> {
        let row = sqlx::query("SELECT * FROM proxies WHERE id = $1")
            .bind(id)
            .fetch_one(&self.pool)
            .await
            .map_err(|error| map_error(error, &format!("proxy {id}")))?;
        proxy_from_row(&row)
    }

    async fn create_proxy(&self, new: &NewProxy, require_resource: bool) -> StoreResult<Proxy> {
        let mut tx = self.pool.begin().await?;
        let row = sqlx::query(
            "INSERT INTO proxies (name, kind, resource, require_resource, created_at) \
             VALUES ($1, $2, $3, $4, $5) RETURNING *",
        )
        .bind(&new.name)
        .bind(new.kind.as_str())
        .bind(&new.resource)
        .bind(require_resource)
        .bind(millis(Utc::now()))
        .fetch_one(&mut *tx)
        .await
        .map_err(|error| map_error(error, &format!("a proxy named '{}'", new.name)))?;
        bump_config_generation(&mut tx).await?;
        let proxy = proxy_from_row(&row)?;
        tx.commit().await?;
        Ok(proxy)
    }

    async fn update_proxy(&self, id: i64, patch: &ProxyPatch) -> StoreResult<Proxy> {
        let mut tx = self.pool.begin().await?;
        let row = sqlx::query(
            "UPDATE proxies SET name = coalesce($1, name), \
             issuance_enabled = coalesce($2, issuance_enabled), \
             require_resource = coalesce($3, require_resource) WHERE id = $4 RETURNING *",
        )
        .bind(&patch.name)
        .bind(patch.issuance_enabled)
        .bind(patch.require_resource)
        .bind(id)
        .fetch_one(&mut *tx)
        .await
        .map_err(|error| proxy_update_error(error, id, patch.name.as_deref()))?;
        bump_config_generation(&mut tx).await?;
        let proxy = proxy_from_row(&row)?;
        tx.commit().await?;
        Ok(proxy)
    }

    async fn delete_proxy(&self, id: i64) -> StoreResult<()> {
        let mut tx = self.pool.begin().await?;
        let done = sqlx::query("DELETE FROM proxies WHERE id = $1")
            .bind(id)
            .execute(&mut *tx)
            .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound(format!("proxy {id}")));
        }
        touch_mappings(&mut tx, id).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn list_mappings(&self, proxy_id: Option<i64>) -> StoreResult<Vec<ClientMapping>> {
        let sql =
            format!("{MAPPING_SELECT} WHERE ($1::BIGINT IS NULL OR m.proxy_id = $1) ORDER BY m.id");
        let rows = sqlx::query(&sql)
            .bind(proxy_id)
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(mapping_from_row).collect()
    }

    async fn get_mapping(&self, proxy_id: i64, mapping_id: i64) -> StoreResult<ClientMapping> {
        let sql = format!("{MAPPING_SELECT} WHERE m.proxy_id = $1 AND m.id = $2");
        let row = sqlx::query(&sql)
            .bind(proxy_id)
            .bind(mapping_id)
            .fetch_one(&self.pool)
            .await
            .map_err(|error| {
                map_error(error, &format!("mapping {mapping_id} on proxy {proxy_id}"))
            })?;
        mapping_from_row(&row)
    }

    async fn create_mapping(
        &self,
        proxy_id: i64,
        new: &NewMapping,
        credential: Option<&NewClientCredential>,
        audit: &NewAuditEvent,
    ) -> StoreResult<(ClientMapping, bool)> {
        let mut tx = self.pool.begin().await?;
        let created = create_mapping_job(&mut tx, proxy_id, new, credential, audit).await?;
        tx.commit().await?;
        Ok(created)
    }

    async fn delete_mapping(
        &self,
        proxy_id: i64,
        mapping_id: i64,
        audit: &NewAuditEvent,
    ) -> StoreResult<()> {
        let mut tx = self.pool.begin().await?;
        delete_mapping_job(&mut tx, proxy_id, mapping_id, audit).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn list_clients(&self) -> StoreResult<Vec<ResourceClient>> {
        let rows = sqlx::query("SELECT * FROM resource_clients ORDER BY proxy_id, client_id")
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(client_from_row).collect()
    }

    async fn set_client_secret(
        &self,
        proxy_id: i64,
        client_id: &str,
        secret_hash: &[u8],
    ) -> StoreResult<()> {
        let mut tx = self.pool.begin().await?;
        let done = sqlx::query(
            "UPDATE resource_clients SET secret_hash = $1, rotated_at = $2 \
             WHERE proxy_id = $3 AND client_id = $4",
        )
        .bind(secret_hash)
        .bind(millis(Utc::now()))
        .bind(proxy_id)
        .bind(client_id)
        .execute(&mut *tx)
        .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound(format!(
                "client '{client_id}' on proxy {proxy_id}"
            )));
        }
        bump_config_generation(&mut tx).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn record_exchange(&self, write: ExchangeWrite) -> StoreResult<ExchangeOutcome> {
        let mut tx = self.pool.begin().await?;
        let outcome = exchange_job(&mut tx, &write).await?;
        // A replayed or revoked outcome commits too: the presentation count it bumped is the
        // record of the rejected attempt.
        tx.commit().await?;
        Ok(outcome)
    }

    async fn append_audit(&self, events: Vec<NewAuditEvent>) -> StoreResult<()> {
        let mut tx = self.pool.begin().await?;
        for event in &events {
            insert_audit(&mut tx, event).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    async fn list_id_jags(&self, query: &TokenQuery) -> StoreResult<Vec<IdJagRecord>> {
        let now = millis(Utc::now());
        let mut sql = QueryBuilder::<Postgres>::new("SELECT * FROM id_jag_tokens WHERE 1 = 1");
        if let Some(proxy_id) = query.proxy_id {
            sql.push(" AND proxy_id = ").push_bind(proxy_id);
        }
        if let Some(provider_id) = query.idp_provider_id {
            sql.push(" AND idp_provider_id = ").push_bind(provider_id);
        }
        if let Some(subject) = &query.subject {
            sql.push(" AND subject = ").push_bind(subject.clone());
        }
        if let Some(client_id) = &query.client_id {
            sql.push(" AND (client_id = ").push_bind(client_id.clone());
            sql.push(" OR client_id_at_resource_as = ")
                .push_bind(client_id.clone())
                .push(")");
        }
        match query.status.as_deref() {
            Some("active") => {
                sql.push(" AND revoked_at IS NULL AND expires_at > ")
                    .push_bind(now);
            }
            Some("revoked") => {
                sql.push(" AND revoked_at IS NOT NULL");
            }
            Some("expired") => {
                sql.push(" AND revoked_at IS NULL AND expires_at <= ")
                    .push_bind(now);
            }
            _ => {}
        }
        sql.push(" ORDER BY id DESC LIMIT ")
            .push_bind(clamp_limit(query.limit));
        let rows = sql.build().fetch_all(&self.pool).await?;
        rows.iter().map(id_jag_from_row).collect()
    }

    async fn find_id_jags_by_jti(&self, jti: &str) -> StoreResult<Vec<IdJagRecord>> {
        let rows = sqlx::query("SELECT * FROM id_jag_tokens WHERE jti = $1 ORDER BY id")
            .bind(jti)
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(id_jag_from_row).collect()
    }

    async fn get_access_token(&self, jti: &str) -> StoreResult<Option<AccessTokenRecord>> {
        let row = sqlx::query("SELECT * FROM access_tokens WHERE jti = $1")
            .bind(jti)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(access_token_from_row).transpose()
    }

    async fn list_access_tokens(&self, id_jag_id: i64) -> StoreResult<Vec<AccessTokenRecord>> {
        let rows =
            sqlx::query("SELECT * FROM access_tokens WHERE id_jag_id = $1 ORDER BY issued_at")
                .bind(id_jag_id)
                .fetch_all(&self.pool)
                .await?;
        rows.iter().map(access_token_from_row).collect()
    }

    async fn revoke_jti(
        &self,
        jti: &str,
        revocation: &Revocation,
        audit: &NewAuditEvent,
    ) -> StoreResult<JtiRevocationOutcome> {
        let mut tx = self.pool.begin().await?;
        let outcome = revoke_jti_job(&mut tx, jti, revocation, audit).await?;
        tx.commit().await?;
        Ok(outcome)
    }

    async fn revoke_subject(
        &self,
        revocation: &SubjectRevocation,
        audit: &NewAuditEvent,
    ) -> StoreResult<i64> {
        let mut tx = self.pool.begin().await?;
        let count = revoke_subject_job(&mut tx, revocation, audit).await?;
        tx.commit().await?;
        Ok(count)
    }

    async fn revoke_access_token(&self, jti: &str, revocation: &Revocation) -> StoreResult<bool> {
        let mut tx = self.pool.begin().await?;
        let exists = sqlx::query("SELECT 1 FROM access_tokens WHERE jti = $1")
            .bind(jti)
            .fetch_optional(&mut *tx)
            .await?
            .is_some();
        let done = sqlx::query(
            "UPDATE access_tokens SET revoked_at = $1, revoke_reason = $2, revoked_by = $3 \
             WHERE jti = $4 AND revoked_at IS NULL",
        )
        .bind(millis(revocation.revoked_at))
        .bind(&revocation.reason)
        .bind(&revocation.revoked_by)
        .bind(jti)
        .execute(&mut *tx)
        .await?;
        if done.rows_affected() > 0 {
            bump_revocation_generation(&mut tx).await?;
        }
        tx.commit().await?;
        Ok(exists)
    }

    async fn pending_subject_revocations(&self) -> StoreResult<Vec<SubjectRevocation>> {
        let rows = sqlx::query(
            "SELECT * FROM subject_revocations WHERE pending \
             ORDER BY idp_provider_id, subject",
        )
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(subject_revocation_from_row).collect()
    }

    async fn mark_subject_revocation(
        &self,
        revocation: &SubjectRevocation,
        after_id: i64,
        limit: u32,
    ) -> StoreResult<MarkProgress> {
        let mut tx = self.pool.begin().await?;
        let progress = mark_subject_job(&mut tx, revocation, after_id, limit).await?;
        tx.commit().await?;
        Ok(progress)
    }

    async fn list_subject_revocations(&self) -> StoreResult<Vec<SubjectRevocation>> {
        let rows =
            sqlx::query("SELECT * FROM subject_revocations ORDER BY idp_provider_id, subject")
                .fetch_all(&self.pool)
                .await?;
        rows.iter().map(subject_revocation_from_row).collect()
    }

    async fn generations(&self) -> StoreResult<(i64, i64)> {
        let rows = sqlx::query("SELECT name, value FROM counters")
            .fetch_all(&self.pool)
            .await?;
        let mut generations = (0, 0);
        for row in &rows {
            match row.try_get::<&str, _>("name")? {
                "config_generation" => generations.0 = row.try_get("value")?,
                "revocation_generation" => generations.1 = row.try_get("value")?,
                _ => {}
            }
        }
        Ok(generations)
    }

    async fn revocation_generation(&self) -> StoreResult<i64> {
        Ok(
            sqlx::query_scalar("SELECT value FROM counters WHERE name = 'revocation_generation'")
                .fetch_one(&self.pool)
                .await?,
        )
    }

    async fn stats(&self, proxy_id: Option<i64>, now: DateTime<Utc>) -> StoreResult<XaaStats> {
        Ok(XaaStats {
            id_jag_tokens: token_stats(&self.pool, proxy_id, now).await?,
            jwks_cache: jwks_stats(&self.pool).await?,
            client_mappings: mapping_stats(&self.pool, proxy_id).await?,
            revocation_generation: self.revocation_generation().await?,
        })
    }

    async fn query_audit(&self, query: &AuditQuery) -> StoreResult<Vec<AuditEvent>> {
        let mut sql = QueryBuilder::<Postgres>::new("SELECT * FROM audit_logs WHERE 1 = 1");
        if let Some(event_type) = query.event_type {
            sql.push(" AND event_type = ")
                .push_bind(event_type.as_str());
        }
        if let Some(proxy_id) = query.proxy_id {
            sql.push(" AND proxy_id = ").push_bind(proxy_id);
        }
        if let Some(provider_id) = query.idp_provider_id {
            sql.push(" AND idp_provider_id = ").push_bind(provider_id);
        }
        if let Some(after_id) = query.after_id {
            sql.push(" AND id > ").push_bind(after_id);
        }
        if let Some(since) = query.since {
            sql.push(" AND at >= ").push_bind(millis(since));
        }
        // Following the log (`after_id`) takes the oldest events past that id, so a reader
        // never skips any; the result is still returned newest first.
        let order = if query.after_id.is_some() {
            "ASC"
        } else {
            "DESC"
        };
        sql.push(format!(" ORDER BY id {order} LIMIT "))
            .push_bind(clamp_limit(query.limit));
        let rows = sql.build().fetch_all(&self.pool).await?;
        let mut events = rows
            .iter()
            .map(audit_from_row)
            .collect::<StoreResult<Vec<_>>>()?;
        if query.after_id.is_some() {
            events.reverse();
        }
        Ok(events)
    }

    async fn activity(
        &self,
        proxy_id: Option<i64>,
        since: DateTime<Utc>,
    ) -> StoreResult<Vec<ActivityPoint>> {
        let rows = sqlx::query(
            "SELECT minute, sum(succeeded)::BIGINT AS succeeded, sum(failed)::BIGINT AS failed \
             FROM exchange_activity WHERE minute >= $1 AND ($2::BIGINT IS NULL OR proxy_id = $2) \
             GROUP BY minute ORDER BY minute",
        )
        .bind(minute_of(millis(since)))
        .bind(proxy_id)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|row| {
                Ok(ActivityPoint {
                    minute: from_millis(row.try_get::<i64, _>("minute")? * 60_000)?,
                    succeeded: row.try_get("succeeded")?,
                    failed: row.try_get("failed")?,
                })
            })
            .collect()
    }

    async fn failure_reasons(
        &self,
        proxy_id: Option<i64>,
        since: DateTime<Utc>,
    ) -> StoreResult<Vec<(String, i64)>> {
        let rows = sqlx::query(
            "SELECT coalesce(reason_code, 'unknown') AS reason, count(*) AS n FROM audit_logs \
             WHERE at >= $1 AND event_type = 'xaa_token_validation_failed' \
             AND ($2::BIGINT IS NULL OR proxy_id = $2) \
             GROUP BY reason ORDER BY n DESC, reason LIMIT 20",
        )
        .bind(millis(since))
        .bind(proxy_id)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|row| Ok((row.try_get("reason")?, row.try_get("n")?)))
            .collect()
    }

    async fn load_jwks(&self, provider_id: i64) -> StoreResult<Option<JwksCacheEntry>> {
        let row = sqlx::query("SELECT * FROM jwks_cache WHERE idp_provider_id = $1")
            .bind(provider_id)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(jwks_from_row).transpose()
    }

    async fn list_jwks(&self) -> StoreResult<Vec<JwksCacheEntry>> {
        let rows = sqlx::query("SELECT * FROM jwks_cache ORDER BY idp_provider_id")
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(jwks_from_row).collect()
    }

    async fn save_jwks(
        &self,
        entry: &JwksCacheEntry,
        audit: Option<&NewAuditEvent>,
    ) -> StoreResult<()> {
        let mut tx = self.pool.begin().await?;
        sqlx::query(
            "INSERT INTO jwks_cache (idp_provider_id, jwks_json, key_count, fetched_at, \
             expires_at, last_error, last_error_at) VALUES ($1, $2, $3, $4, $5, $6, $7) \
             ON CONFLICT (idp_provider_id) DO UPDATE SET jwks_json = excluded.jwks_json, \
             key_count = excluded.key_count, fetched_at = excluded.fetched_at, \
             expires_at = excluded.expires_at, last_error = excluded.last_error, \
             last_error_at = excluded.last_error_at",
        )
        .bind(entry.idp_provider_id)
        .bind(&entry.jwks_json)
        .bind(entry.key_count)
        .bind(entry.fetched_at.map(millis))
        .bind(entry.expires_at.map(millis))
        .bind(&entry.last_error)
        .bind(entry.last_error_at.map(millis))
        .execute(&mut *tx)
        .await
        .map_err(|error| map_error(error, &format!("provider {}", entry.idp_provider_id)))?;
        if let Some(audit) = audit {
            insert_audit(&mut tx, audit).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    async fn list_signing_keys(&self) -> StoreResult<Vec<SigningKeyRecord>> {
        let rows = sqlx::query("SELECT * FROM signing_keys ORDER BY created_at")
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(signing_key_from_row).collect()
    }

    async fn insert_signing_key(&self, key: &SigningKeyRecord) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO signing_keys (kid, alg, private_pkcs8, public_jwk, created_at, active) \
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(&key.kid)
        .bind(&key.alg)
        .bind(&key.private_pkcs8)
        .bind(&key.public_jwk)
        .bind(millis(key.created_at))
        .bind(key.active)
        .execute(&self.pool)
        .await
        .map_err(|error| map_error(error, &format!("signing key '{}'", key.kid)))?;
        Ok(())
    }

    async fn close(&self) {
        self.pool.close().await;
    }
}
