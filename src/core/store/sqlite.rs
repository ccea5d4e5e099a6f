//! SQLite implementation of [`Store`]: WAL mode, a read pool, and one writer task.
//!
//! SQLite allows one writer at a time, so every write goes through a single connection owned
//! by a writer task. The task drains whatever jobs are queued (up to [`MAX_BATCH`]). Exchange
//! records and audit appends, the jobs of the exchange path, are written together with
//! multi-row statements and committed in one transaction (see [`batch`]): a group commit, so a
//! burst of exchanges costs one fsync instead of one each. Every other job (configuration
//! changes, revocations, key sets) is rare and runs in a transaction of its own, so a failing
//! job is undone by rolling back that transaction, without savepoints, whose journal copies
//! every page a job changes. A job's result reaches its caller only after the commit, so
//! nothing is acknowledged before it is durable (`synchronous = FULL`).

mod batch;

use std::any::Any;
use std::collections::BTreeMap;
use std::future::Future;
use std::path::Path;
use std::pin::Pin;
use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteConnection, SqliteJournalMode, SqlitePoolOptions, SqliteRow,
    SqliteSynchronous,
};
use sqlx::{Connection, QueryBuilder, Row, Sqlite, SqlitePool};
use tokio::sync::{mpsc, oneshot};

use self::batch::{AuditRow, Batched, PreparedExchange, Segment, Settled};
use super::{
    ExchangeOutcome, ExchangeWrite, JtiRevocationOutcome, MAPPING_SELECT, MarkProgress,
    NewClientCredential, ProviderRow, Store, StoreError, StoreResult, apply_provider_patch,
    audit_fields_from_text, audit_fields_to_text, clamp_limit, from_millis, join_words,
    jti_revocation_audit, map_error, mapping_created_audit, millis, minute_of, opt_from_millis,
    parse_text, proxy_update_error, split_words, subject_revocation_audit,
};
use crate::core::model::{
    AccessTokenRecord, ActivityPoint, AuditEvent, AuditEventType, AuditQuery, ClientMapping,
    IdJagRecord, JwksCacheEntry, NewAuditEvent, NewMapping, NewProxy, Provider, ProviderPatch,
    Proxy, ProxyPatch, ResourceClient, Revocation, SigningKeyRecord, SubjectRevocation, TokenQuery,
    XaaStats,
};

/// Most jobs committed in one transaction.
const MAX_BATCH: usize = 512;
/// Queued write jobs before callers wait for room.
const QUEUE_DEPTH: usize = 4096;

type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;
type JobOutput = (bool, Box<dyn Any + Send>);
type JobFn = Box<dyn for<'c> FnOnce(&'c mut SqliteConnection) -> BoxFuture<'c, JobOutput> + Send>;

type RunReply = oneshot::Sender<Result<Box<dyn Any + Send>, String>>;

/// A queued write.
enum Job {
    /// A write run in a transaction of its own.
    Run { run: JobFn, reply: RunReply },
    /// An exchange record or audit append, batched with its queue neighbours.
    Batched(Batched),
}

/// The SQLite store.
pub struct SqliteStore {
    read: SqlitePool,
    writer: mpsc::Sender<Job>,
}

impl SqliteStore {
    /// Opens (creating if missing) the database at `url`, runs the migrations and starts the
    /// writer task. `url` is a sqlx SQLite URL such as `sqlite://data/xaa.db`.
    pub async fn open(url: &str) -> StoreResult<Self> {
        let options = SqliteConnectOptions::from_str(url)?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full)
            .foreign_keys(true)
            .busy_timeout(Duration::from_secs(5))
            // Statement journals (and the savepoint journal of a batch retried job by job) stay
            // in memory instead of temporary files. They only serve rollbacks inside a
            // transaction; crash recovery uses the WAL. The writer keeps them small because it
            // runs no savepoint around jobs.
            .pragma("temp_store", "memory");
        create_parent_dir(&options)?;
        restrict_file_mode(&options)?;

        let mut write_conn = SqliteConnection::connect_with(&options).await?;
        sqlx::migrate!("./migrations/sqlite")
            .run(&mut write_conn)
            .await?;

        let read = SqlitePoolOptions::new()
            .max_connections(4)
            .min_connections(1)
            .connect_with(options)
            .await?;
        let (writer, jobs) = mpsc::channel(QUEUE_DEPTH);
        tokio::spawn(run_writer(write_conn, jobs));
        Ok(Self { read, writer })
    }

    /// Runs `f` on the writer connection inside the next group commit and returns its result
    /// once that commit has succeeded.
    async fn write<T, F>(&self, f: F) -> StoreResult<T>
    where
        T: Send + 'static,
        F: for<'c> FnOnce(&'c mut SqliteConnection) -> BoxFuture<'c, StoreResult<T>>
            + Send
            + 'static,
    {
        let (reply, result) = oneshot::channel();
        let run: JobFn = Box::new(move |conn| {
            Box::pin(async move {
                let outcome = f(conn).await;
                let ok = outcome.is_ok();
                (ok, Box::new(outcome) as Box<dyn Any + Send>)
            })
        });
        self.writer
            .send(Job::Run { run, reply })
            .await
            .map_err(|_| StoreError::WriterStopped)?;
        let boxed = result
            .await
            .map_err(|_| StoreError::WriterStopped)?
            .map_err(StoreError::CommitFailed)?;
        match boxed.downcast::<StoreResult<T>>() {
            Ok(outcome) => *outcome,
            Err(_) => Err(StoreError::Corrupt(
                "writer returned a result of another type".into(),
            )),
        }
    }
}

impl SqliteStore {
    /// Queues a batched job and returns its result once its group commit has succeeded.
    async fn write_batched<T>(
        &self,
        job: impl FnOnce(batch::Reply<T>) -> Batched,
    ) -> StoreResult<T> {
        let (reply, result) = oneshot::channel();
        self.writer
            .send(Job::Batched(job(reply)))
            .await
            .map_err(|_| StoreError::WriterStopped)?;
        result.await.map_err(|_| StoreError::WriterStopped)?
    }
}

fn create_parent_dir(options: &SqliteConnectOptions) -> StoreResult<()> {
    let filename = options.get_filename();
    if filename == Path::new(":memory:") {
        return Ok(());
    }
    if let Some(parent) = filename.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent).map_err(|error| {
            StoreError::Database(sqlx::Error::Configuration(
                format!(
                    "cannot create database directory {}: {error}",
                    parent.display()
                )
                .into(),
            ))
        })?;
    }
    Ok(())
}

/// Creates the database file readable by its owner only, or narrows an existing one: it holds
/// the access-token signing key. SQLite gives its `-wal` and `-shm` files the same mode.
#[cfg(unix)]
fn restrict_file_mode(options: &SqliteConnectOptions) -> StoreResult<()> {
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};

    let filename = options.get_filename();
    if filename == Path::new(":memory:") {
        return Ok(());
    }
    let failed = |error: std::io::Error| {
        StoreError::Database(sqlx::Error::Configuration(
            format!(
                "cannot set owner-only permissions on {}: {error}",
                filename.display()
            )
            .into(),
        ))
    };
    if filename.exists() {
        let mode = std::fs::metadata(filename)
            .map_err(failed)?
            .permissions()
            .mode();
        if mode & 0o077 != 0 {
            std::fs::set_permissions(filename, std::fs::Permissions::from_mode(0o600))
                .map_err(failed)?;
        }
    } else {
        std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(filename)
            .map_err(failed)?;
    }
    Ok(())
}

#[cfg(not(unix))]
fn restrict_file_mode(_options: &SqliteConnectOptions) -> StoreResult<()> {
    Ok(())
}

async fn run_writer(mut conn: SqliteConnection, mut jobs: mpsc::Receiver<Job>) {
    while let Some(first) = jobs.recv().await {
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match jobs.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        run_batch(&mut conn, batch).await;
    }
    tracing::debug!("store writer stopped");
}

/// Runs a batch in queue order: each run of consecutive batched jobs in one transaction, and
/// each other job in a transaction of its own.
async fn run_batch(conn: &mut SqliteConnection, batch: Vec<Job>) {
    let mut segment = Segment::default();
    for job in batch {
        match job {
            Job::Batched(job) => segment.push(job),
            Job::Run { run, reply } => {
                commit_segment(conn, std::mem::take(&mut segment)).await;
                run_alone(conn, run, reply).await;
            }
        }
    }
    commit_segment(conn, segment).await;
}

/// Writes and commits a segment of batched jobs, then sends their results.
async fn commit_segment(conn: &mut SqliteConnection, segment: Segment) {
    if segment.is_empty() {
        return;
    }
    if let Err(error) = sqlx::query("BEGIN IMMEDIATE").execute(&mut *conn).await {
        tracing::error!(%error, "store writer could not begin a transaction");
        segment.fail_all(&error.to_string());
        return;
    }
    let Ok(settled) = segment.write(conn).await else {
        // `write` failed every job of the segment; undo whatever it left.
        let _ = sqlx::query("ROLLBACK").execute(&mut *conn).await;
        return;
    };
    match sqlx::query("COMMIT").execute(&mut *conn).await {
        Ok(_) => settled.into_iter().for_each(Settled::succeed),
        Err(error) => {
            tracing::error!(%error, jobs = settled.len(), "store commit failed");
            let _ = sqlx::query("ROLLBACK").execute(&mut *conn).await;
            let message = error.to_string();
            for job in settled {
                job.fail(&message);
            }
        }
    }
}

/// Runs one job in a transaction of its own: committed when it succeeds, rolled back when it
/// fails. Its output is sent after either.
async fn run_alone(conn: &mut SqliteConnection, run: JobFn, reply: RunReply) {
    if let Err(error) = sqlx::query("BEGIN IMMEDIATE").execute(&mut *conn).await {
        tracing::error!(%error, "store writer could not begin a transaction");
        let _ = reply.send(Err(error.to_string()));
        return;
    }
    let (ok, output) = run(conn).await;
    let end = if ok { "COMMIT" } else { "ROLLBACK" };
    match sqlx::query(end).execute(&mut *conn).await {
        Ok(_) => {
            let _ = reply.send(Ok(output));
        }
        Err(error) => {
            tracing::error!(%error, "store commit failed");
            if ok {
                let _ = sqlx::query("ROLLBACK").execute(&mut *conn).await;
            }
            let _ = reply.send(Err(error.to_string()));
        }
    }
}

/// Rolls back the open transaction and begins a new one.
async fn restart_transaction(conn: &mut SqliteConnection) -> Result<(), sqlx::Error> {
    sqlx::query("ROLLBACK").execute(&mut *conn).await?;
    sqlx::query("BEGIN IMMEDIATE").execute(&mut *conn).await?;
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Conversions

fn provider_from_row(row: &SqliteRow) -> StoreResult<Provider> {
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

fn proxy_from_row(row: &SqliteRow) -> StoreResult<Proxy> {
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

fn mapping_from_row(row: &SqliteRow) -> StoreResult<ClientMapping> {
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

fn revocation_from_row(row: &SqliteRow, reason_column: &str) -> StoreResult<Option<Revocation>> {
    let Some(revoked_at) = row.try_get::<Option<i64>, _>("revoked_at")? else {
        return Ok(None);
    };
    Ok(Some(Revocation {
        revoked_at: from_millis(revoked_at)?,
        reason: row.try_get(reason_column)?,
        revoked_by: row.try_get("revoked_by")?,
    }))
}

fn id_jag_from_row(row: &SqliteRow) -> StoreResult<IdJagRecord> {
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
        revocation: revocation_from_row(row, "revoke_reason")?,
    })
}

fn access_token_from_row(row: &SqliteRow) -> StoreResult<AccessTokenRecord> {
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
        revocation: revocation_from_row(row, "revoke_reason")?,
    })
}

fn jwks_from_row(row: &SqliteRow) -> StoreResult<JwksCacheEntry> {
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

fn audit_from_row(row: &SqliteRow) -> StoreResult<AuditEvent> {
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

async fn insert_audit(conn: &mut SqliteConnection, event: &NewAuditEvent) -> StoreResult<()> {
    let fields = audit_fields_to_text(event)?;
    sqlx::query(
        "INSERT INTO audit_logs (at, event_type, actor, proxy_id, idp_provider_id, reason_code, \
         fields) VALUES (?, ?, ?, ?, ?, ?, ?)",
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
async fn count_activity(conn: &mut SqliteConnection, event: &NewAuditEvent) -> StoreResult<()> {
    let (succeeded, failed) = match event.event_type {
        AuditEventType::XaaTokenExchange => (1, 0),
        AuditEventType::XaaTokenValidationFailed => (0, 1),
        _ => return Ok(()),
    };
    sqlx::query(
        "INSERT INTO exchange_activity (proxy_id, minute, succeeded, failed) VALUES (?, ?, ?, ?) \
         ON CONFLICT (proxy_id, minute) DO UPDATE SET succeeded = succeeded + excluded.succeeded, \
         failed = failed + excluded.failed",
    )
    .bind(event.proxy_id.unwrap_or(0))
    .bind(minute_of(millis(Utc::now())))
    .bind(succeeded)
    .bind(failed)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

async fn touch_mappings(conn: &mut SqliteConnection, proxy_id: i64) -> StoreResult<()> {
    sqlx::query(
        "INSERT INTO mapping_changes (proxy_id, changed_at) VALUES (?, ?) \
         ON CONFLICT (proxy_id) DO UPDATE SET changed_at = excluded.changed_at",
    )
    .bind(proxy_id)
    .bind(millis(Utc::now()))
    .execute(&mut *conn)
    .await?;
    bump_config_generation(conn).await
}

async fn bump_config_generation(conn: &mut SqliteConnection) -> StoreResult<()> {
    sqlx::query("UPDATE counters SET value = value + 1 WHERE name = 'config_generation'")
        .execute(&mut *conn)
        .await?;
    Ok(())
}

async fn bump_generation(conn: &mut SqliteConnection) -> StoreResult<()> {
    sqlx::query("UPDATE counters SET value = value + 1 WHERE name = 'revocation_generation'")
        .execute(&mut *conn)
        .await?;
    Ok(())
}

/// Moves `count` ID-JAG records of one proxy and expiry minute from unrevoked to revoked.
async fn count_revoked(
    conn: &mut SqliteConnection,
    proxy_id: i64,
    minute: i64,
    count: i64,
) -> StoreResult<()> {
    sqlx::query("UPDATE token_counters SET revoked = revoked + ? WHERE proxy_id = ?")
        .bind(count)
        .bind(proxy_id)
        .execute(&mut *conn)
        .await?;
    sqlx::query(
        "UPDATE token_expiry_buckets SET unrevoked = unrevoked - ? \
         WHERE proxy_id = ? AND minute = ?",
    )
    .bind(count)
    .bind(proxy_id)
    .bind(minute)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

async fn revoke_jti_job(
    conn: &mut SqliteConnection,
    jti: &str,
    revocation: &Revocation,
    audit: &NewAuditEvent,
) -> StoreResult<JtiRevocationOutcome> {
    let records =
        sqlx::query("SELECT id, proxy_id, expires_at, revoked_at FROM id_jag_tokens WHERE jti = ?")
            .bind(jti)
            .fetch_all(&mut *conn)
            .await?;
    let at = millis(revocation.revoked_at);
    let mut outcome = JtiRevocationOutcome {
        newly_revoked: 0,
        already_revoked: 0,
    };

    if records.is_empty() {
        let done = sqlx::query(
            "UPDATE access_tokens SET revoked_at = ?, revoke_reason = ?, revoked_by = ? \
             WHERE jti = ? AND revoked_at IS NULL",
        )
        .bind(at)
        .bind(&revocation.reason)
        .bind(&revocation.revoked_by)
        .bind(jti)
        .execute(&mut *conn)
        .await?;
        if done.rows_affected() == 0 {
            let exists = sqlx::query("SELECT 1 FROM access_tokens WHERE jti = ?")
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
    }

    for record in &records {
        if record.try_get::<Option<i64>, _>("revoked_at")?.is_some() {
            outcome.already_revoked += 1;
            continue;
        }
        let id: i64 = record.try_get("id")?;
        sqlx::query(
            "UPDATE id_jag_tokens SET revoked_at = ?, revoke_reason = ?, revoked_by = ? \
             WHERE id = ?",
        )
        .bind(at)
        .bind(&revocation.reason)
        .bind(&revocation.revoked_by)
        .bind(id)
        .execute(&mut *conn)
        .await?;
        sqlx::query(
            "UPDATE access_tokens SET revoked_at = ?, revoke_reason = ?, revoked_by = ? \
             WHERE id_jag_id = ? AND revoked_at IS NULL",
        )
        .bind(at)
        .bind(&revocation.reason)
        .bind(&revocation.revoked_by)
        .bind(id)
        .execute(&mut *conn)
        .await?;
        let proxy_id: i64 = record.try_get("proxy_id")?;
        let expires_at: i64 = record.try_get("expires_at")?;
        count_revoked(conn, proxy_id, minute_of(expires_at), 1).await?;
        outcome.newly_revoked += 1;
    }

    if outcome.newly_revoked > 0 {
        bump_generation(conn).await?;
    }
    insert_audit(conn, &jti_revocation_audit(audit, &outcome)).await?;
    Ok(outcome)
}

async fn revoke_subject_job(
    conn: &mut SqliteConnection,
    revocation: &SubjectRevocation,
    audit: &NewAuditEvent,
) -> StoreResult<i64> {
    let at = millis(revocation.revoked_at);
    sqlx::query(
        "INSERT INTO subject_revocations (idp_provider_id, subject, revoked_at, reason, \
         revoked_by, pending) VALUES (?, ?, ?, ?, ?, 1) \
         ON CONFLICT (idp_provider_id, subject) DO UPDATE SET \
         revoked_at = max(revoked_at, excluded.revoked_at), reason = excluded.reason, \
         revoked_by = excluded.revoked_by, pending = 1",
    )
    .bind(revocation.idp_provider_id)
    .bind(&revocation.subject)
    .bind(at)
    .bind(&revocation.reason)
    .bind(&revocation.revoked_by)
    .execute(&mut *conn)
    .await?;
    let count: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM id_jag_tokens WHERE idp_provider_id = ? AND subject = ? \
         AND revoked_at IS NULL AND issued_at <= ?",
    )
    .bind(revocation.idp_provider_id)
    .bind(&revocation.subject)
    .bind(at)
    .fetch_one(&mut *conn)
    .await?;
    bump_generation(conn).await?;
    insert_audit(conn, &subject_revocation_audit(audit, count)).await?;
    Ok(count)
}

/// Checks whether any record the revocation covers is still unrevoked.
async fn covers_unmarked(
    conn: &mut SqliteConnection,
    revocation: &SubjectRevocation,
) -> StoreResult<bool> {
    let found: bool = sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM id_jag_tokens WHERE idp_provider_id = ? \
         AND subject = ? AND revoked_at IS NULL AND issued_at <= ?)",
    )
    .bind(revocation.idp_provider_id)
    .bind(&revocation.subject)
    .bind(millis(revocation.revoked_at))
    .fetch_one(&mut *conn)
    .await?;
    Ok(found)
}

async fn mark_subject_job(
    conn: &mut SqliteConnection,
    revocation: &SubjectRevocation,
    after_id: i64,
    limit: u32,
) -> StoreResult<MarkProgress> {
    let at = millis(revocation.revoked_at);
    // The subject index ends with the rowid, so the walk from `after_id` reads only the
    // entries it has not seen yet.
    let marked = sqlx::query(
        "UPDATE id_jag_tokens SET revoked_at = ?1, revoke_reason = ?2, revoked_by = ?3 \
         WHERE revoked_at IS NULL AND id IN (SELECT id FROM id_jag_tokens \
                      WHERE idp_provider_id = ?4 AND subject = ?5 AND id > ?6 \
                      AND revoked_at IS NULL AND issued_at <= ?1 ORDER BY id LIMIT ?7) \
         RETURNING id, proxy_id, expires_at",
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

    let mut ids = Vec::with_capacity(marked.len());
    let mut groups: BTreeMap<(i64, i64), i64> = BTreeMap::new();
    for row in &marked {
        ids.push(row.try_get::<i64, _>("id")?);
        let proxy_id: i64 = row.try_get("proxy_id")?;
        let expires_at: i64 = row.try_get("expires_at")?;
        *groups.entry((proxy_id, minute_of(expires_at))).or_default() += 1;
    }
    if !ids.is_empty() {
        let ids_json = serde_json::to_string(&ids)
            .map_err(|error| StoreError::Corrupt(format!("record ids: {error}")))?;
        sqlx::query(
            "UPDATE access_tokens SET revoked_at = ?, revoke_reason = ?, revoked_by = ? \
             WHERE id_jag_id IN (SELECT value FROM json_each(?)) AND revoked_at IS NULL",
        )
        .bind(at)
        .bind(&revocation.reason)
        .bind(&revocation.revoked_by)
        .bind(ids_json)
        .execute(&mut *conn)
        .await?;
    }
    for ((proxy_id, minute), count) in groups {
        count_revoked(conn, proxy_id, minute, count).await?;
    }

    let done = marked.len() < usize::try_from(limit).unwrap_or(usize::MAX)
        && !covers_unmarked(conn, revocation).await?;
    if done {
        let cleared = sqlx::query(
            "UPDATE subject_revocations SET pending = 0 \
             WHERE idp_provider_id = ? AND subject = ? AND revoked_at = ? AND pending = 1",
        )
        .bind(revocation.idp_provider_id)
        .bind(&revocation.subject)
        .bind(at)
        .execute(&mut *conn)
        .await?;
        if cleared.rows_affected() > 0 {
            bump_generation(conn).await?;
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

fn subject_revocation_from_row(row: &SqliteRow) -> StoreResult<SubjectRevocation> {
    Ok(SubjectRevocation {
        idp_provider_id: row.try_get("idp_provider_id")?,
        subject: row.try_get("subject")?,
        revoked_at: from_millis(row.try_get("revoked_at")?)?,
        reason: row.try_get("reason")?,
        revoked_by: row.try_get("revoked_by")?,
    })
}

// ---------------------------------------------------------------------------------------------
// Statistics queries

async fn token_stats(
    pool: &SqlitePool,
    proxy_id: Option<i64>,
    now: DateTime<Utc>,
) -> StoreResult<crate::core::model::IdJagTokenStats> {
    let now_ms = millis(now);
    let this_minute = minute_of(now_ms);
    let next_minute_start = (this_minute + 1) * 60_000;

    let counters = sqlx::query(
        "SELECT coalesce(sum(total), 0) AS total, coalesce(sum(revoked), 0) AS revoked, \
         max(last_token_at) AS last_token_at FROM token_counters \
         WHERE (?1 IS NULL OR proxy_id = ?1)",
    )
    .bind(proxy_id)
    .fetch_one(pool)
    .await?;
    let future_minutes: i64 = sqlx::query_scalar(
        "SELECT coalesce(sum(unrevoked), 0) FROM token_expiry_buckets \
         WHERE minute > ?1 AND (?2 IS NULL OR proxy_id = ?2)",
    )
    .bind(this_minute)
    .bind(proxy_id)
    .fetch_one(pool)
    .await?;
    let this_minute_active: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM id_jag_tokens WHERE expires_at > ?1 AND expires_at < ?2 \
         AND revoked_at IS NULL AND (?3 IS NULL OR proxy_id = ?3)",
    )
    .bind(now_ms)
    .bind(next_minute_start)
    .bind(proxy_id)
    .fetch_one(pool)
    .await?;

    Ok(crate::core::model::IdJagTokenStats {
        total: counters.try_get("total")?,
        active: future_minutes + this_minute_active,
        revoked: counters.try_get("revoked")?,
        last_token_at: opt_from_millis(counters.try_get("last_token_at")?)?,
    })
}

async fn jwks_stats(pool: &SqlitePool) -> StoreResult<crate::core::model::JwksCacheStats> {
    let row = sqlx::query(
        "SELECT coalesce(sum(CASE WHEN key_count > 0 THEN 1 ELSE 0 END), 0) AS providers, \
         coalesce(sum(key_count), 0) AS total_keys, max(fetched_at) AS last_updated \
         FROM jwks_cache",
    )
    .fetch_one(pool)
    .await?;
    Ok(crate::core::model::JwksCacheStats {
        total_providers: row.try_get("providers")?,
        total_keys: row.try_get("total_keys")?,
        last_updated: opt_from_millis(row.try_get("last_updated")?)?,
    })
}

async fn mapping_stats(
    pool: &SqlitePool,
    proxy_id: Option<i64>,
) -> StoreResult<crate::core::model::ClientMappingStats> {
    let row = sqlx::query(
        "SELECT count(*) AS total, count(DISTINCT idp_provider_id) AS providers \
         FROM client_mappings WHERE (?1 IS NULL OR proxy_id = ?1)",
    )
    .bind(proxy_id)
    .fetch_one(pool)
    .await?;
    let last_updated: Option<i64> = sqlx::query_scalar(
        "SELECT max(changed_at) FROM mapping_changes WHERE (?1 IS NULL OR proxy_id = ?1)",
    )
    .bind(proxy_id)
    .fetch_one(pool)
    .await?;
    Ok(crate::core::model::ClientMappingStats {
        total_mappings: row.try_get("total")?,
        providers: row.try_get("providers")?,
        last_updated: opt_from_millis(last_updated)?,
    })
}

// ---------------------------------------------------------------------------------------------

#[async_trait]
impl Store for SqliteStore {
    async fn list_providers(&self) -> StoreResult<Vec<Provider>> {
        let rows = sqlx::query("SELECT * FROM providers ORDER BY id")
            .fetch_all(&self.read)
            .await?;
        rows.iter().map(provider_from_row).collect()
    }

    async fn get_provider(&self, id: i64) -> StoreResult<Provider> {
        let row = sqlx::query("SELECT * FROM providers WHERE id = ?")
            .bind(id)
            .fetch_one(&self.read)
            .await
            .map_err(|error| map_error(error, &format!("provider {id}")))?;
        provider_from_row(&row)
    }

    async fn create_provider(&self, row: &ProviderRow) -> StoreResult<Provider> {
        let row = row.clone();
        self.write(move |conn| {
            Box::pin(async move {
                let created = sqlx::query(
                    "INSERT INTO providers (name, kind, issuer, jwks_uri, enabled, allowed_algs, \
                     replay_policy, leeway_secs, max_lifetime_secs, created_at) \
                     VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING *",
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
                .fetch_one(&mut *conn)
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
                bump_config_generation(conn).await?;
                provider_from_row(&created)
            })
        })
        .await
    }

    async fn update_provider(&self, id: i64, patch: &ProviderPatch) -> StoreResult<Provider> {
        let patch = patch.clone();
        self.write(move |conn| {
            Box::pin(async move {
                let current = sqlx::query("SELECT * FROM providers WHERE id = ?")
                    .bind(id)
                    .fetch_one(&mut *conn)
                    .await
                    .map_err(|error| map_error(error, &format!("provider {id}")))?;
                let mut provider = provider_from_row(&current)?;
                apply_provider_patch(&mut provider, patch);
                let updated = sqlx::query(
                    "UPDATE providers SET name = ?, jwks_uri = ?, enabled = ?, allowed_algs = ?, \
                     replay_policy = ?, leeway_secs = ?, max_lifetime_secs = ? WHERE id = ? \
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
                .map_err(|error| {
                    map_error(error, &format!("a provider named '{}'", provider.name))
                })?;
                bump_config_generation(conn).await?;
                provider_from_row(&updated)
            })
        })
        .await
    }

    async fn delete_provider(&self, id: i64) -> StoreResult<()> {
        self.write(move |conn| {
            Box::pin(async move {
                let used: i64 = sqlx::query_scalar(
                    "SELECT count(*) FROM client_mappings WHERE idp_provider_id = ?",
                )
                .bind(id)
                .fetch_one(&mut *conn)
                .await?;
                if used > 0 {
                    return Err(StoreError::Conflict(format!(
                        "provider {id} is used by {used} client mapping(s); delete them first"
                    )));
                }
                let done = sqlx::query("DELETE FROM providers WHERE id = ?")
                    .bind(id)
                    .execute(&mut *conn)
                    .await?;
                if done.rows_affected() == 0 {
                    return Err(StoreError::NotFound(format!("provider {id}")));
                }
                bump_config_generation(conn).await
            })
        })
        .await
    }

    async fn list_proxies(&self) -> StoreResult<Vec<Proxy>> {
        let rows = sqlx::query("SELECT * FROM proxies ORDER BY id")
            .fetch_all(&self.read)
            .await?;
        rows.iter().map(proxy_from_row).collect()
    }

    async fn get_proxy(&self, id: i64) -> StoreResult<Proxy> {
        let row = sqlx::query("SELECT * FROM proxies WHERE id = ?")
            .bind(id)
            .fetch_one(&self.read)
            .await
            .map_err(|error| map_error(error, &format!("proxy {id}")))?;
        proxy_from_row(&row)
    }

    async fn create_proxy(&self, new: &NewProxy, require_resource: bool) -> StoreResult<Proxy> {
        let new = new.clone();
        self.write(move |conn| {
            Box::pin(async move {
                let row = sqlx::query(
                    "INSERT INTO proxies (name, kind, resource, require_resource, created_at) \
                     VALUES (?, ?, ?, ?, ?) RETURNING *",
                )
                .bind(&new.name)
                .bind(new.kind.as_str())
                .bind(&new.resource)
                .bind(require_resource)
                .bind(millis(Utc::now()))
                .fetch_one(&mut *conn)
                .await
                .map_err(|error| map_error(error, &format!("a proxy named '{}'", new.name)))?;
                bump_config_generation(conn).await?;
                proxy_from_row(&row)
            })
        })
        .await
    }

    async fn update_proxy(&self, id: i64, patch: &ProxyPatch) -> StoreResult<Proxy> {
        let patch = patch.clone();
        self.write(move |conn| {
            Box::pin(async move {
                let row = sqlx::query(
                    "UPDATE proxies SET name = coalesce(?, name), \
                     issuance_enabled = coalesce(?, issuance_enabled), \
                     require_resource = coalesce(?, require_resource) WHERE id = ? RETURNING *",
                )
                .bind(&patch.name)
                .bind(patch.issuance_enabled)
                .bind(patch.require_resource)
                .bind(id)
                .fetch_one(&mut *conn)
                .await
                .map_err(|error| proxy_update_error(error, id, patch.name.as_deref()))?;
                bump_config_generation(conn).await?;
                proxy_from_row(&row)
            })
        })
        .await
    }

    async fn delete_proxy(&self, id: i64) -> StoreResult<()> {
        self.write(move |conn| {
            Box::pin(async move {
                let done = sqlx::query("DELETE FROM proxies WHERE id = ?")
                    .bind(id)
                    .execute(&mut *conn)
                    .await?;
                if done.rows_affected() == 0 {
                    return Err(StoreError::NotFound(format!("proxy {id}")));
                }
                touch_mappings(conn, id).await
            })
        })
        .await
    }

    async fn list_mappings(&self, proxy_id: Option<i64>) -> StoreResult<Vec<ClientMapping>> {
        let sql = format!("{MAPPING_SELECT} WHERE (?1 IS NULL OR m.proxy_id = ?1) ORDER BY m.id");
        let rows = sqlx::query(&sql)
            .bind(proxy_id)
            .fetch_all(&self.read)
            .await?;
        rows.iter().map(mapping_from_row).collect()
    }

    async fn get_mapping(&self, proxy_id: i64, mapping_id: i64) -> StoreResult<ClientMapping> {
        let sql = format!("{MAPPING_SELECT} WHERE m.proxy_id = ? AND m.id = ?");
        let row = sqlx::query(&sql)
            .bind(proxy_id)
            .bind(mapping_id)
            .fetch_one(&self.read)
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
        let (new, credential, audit) = (new.clone(), credential.cloned(), audit.clone());
        self.write(move |conn| {
            Box::pin(async move {
                let id: i64 = sqlx::query_scalar(
                    "INSERT INTO client_mappings (proxy_id, idp_provider_id, client_id_at_idp, \
                     client_id_at_resource_as, allowed_scopes, created_at) \
                     VALUES (?, ?, ?, ?, ?, ?) RETURNING id",
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
                        "INSERT INTO resource_clients (proxy_id, client_id, secret_hash, \
                         created_at) VALUES (?, ?, ?, ?) ON CONFLICT (proxy_id, client_id) DO NOTHING RETURNING client_id",
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
                insert_audit(conn, &mapping_created_audit(&audit, id)).await?;
                let sql = format!("{MAPPING_SELECT} WHERE m.id = ?");
                let row = sqlx::query(&sql).bind(id).fetch_one(&mut *conn).await?;
                Ok((mapping_from_row(&row)?, credential_created))
            })
        })
        .await
    }

    async fn delete_mapping(
        &self,
        proxy_id: i64,
        mapping_id: i64,
        audit: &NewAuditEvent,
    ) -> StoreResult<()> {
        let audit = audit.clone();
        self.write(move |conn| {
            Box::pin(async move {
                let client: Option<String> = sqlx::query_scalar(
                    "DELETE FROM client_mappings WHERE id = ? AND proxy_id = ? \
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
                // A client with no mapping left can redeem nothing; drop its credential so a
                // later mapping issues a fresh secret instead of reviving an old one.
                sqlx::query(
                    "DELETE FROM resource_clients WHERE proxy_id = ?1 AND client_id = ?2 \
                     AND NOT EXISTS (SELECT 1 FROM client_mappings \
                     WHERE proxy_id = ?1 AND client_id_at_resource_as = ?2)",
                )
                .bind(proxy_id)
                .bind(&client)
                .execute(&mut *conn)
                .await?;
                touch_mappings(conn, proxy_id).await?;
                insert_audit(conn, &audit).await
            })
        })
        .await
    }

    async fn list_clients(&self) -> StoreResult<Vec<ResourceClient>> {
        let rows = sqlx::query("SELECT * FROM resource_clients")
            .fetch_all(&self.read)
            .await?;
        rows.iter()
            .map(|row| {
                Ok(ResourceClient {
                    proxy_id: row.try_get("proxy_id")?,
                    client_id: row.try_get("client_id")?,
                    secret_hash: row.try_get("secret_hash")?,
                    created_at: from_millis(row.try_get("created_at")?)?,
                })
            })
            .collect()
    }

    async fn set_client_secret(
        &self,
        proxy_id: i64,
        client_id: &str,
        secret_hash: &[u8],
    ) -> StoreResult<()> {
        let (client_id, secret_hash) = (client_id.to_owned(), secret_hash.to_vec());
        self.write(move |conn| {
            Box::pin(async move {
                let done = sqlx::query(
                    "UPDATE resource_clients SET secret_hash = ?, rotated_at = ? \
                     WHERE proxy_id = ? AND client_id = ?",
                )
                .bind(&secret_hash)
                .bind(millis(Utc::now()))
                .bind(proxy_id)
                .bind(&client_id)
                .execute(&mut *conn)
                .await?;
                if done.rows_affected() == 0 {
                    return Err(StoreError::NotFound(format!(
                        "client '{client_id}' on proxy {proxy_id}"
                    )));
                }
                bump_config_generation(conn).await
            })
        })
        .await
    }

    async fn record_exchange(&self, write: ExchangeWrite) -> StoreResult<ExchangeOutcome> {
        let prepared = Box::new(PreparedExchange::new(write)?);
        self.write_batched(|reply| Batched::Exchange(prepared, reply))
            .await
    }

    async fn append_audit(&self, events: Vec<NewAuditEvent>) -> StoreResult<()> {
        let rows = AuditRow::prepare_all(&events)?;
        self.write_batched(|reply| Batched::Audit(rows, reply))
            .await
    }

    async fn list_id_jags(&self, query: &TokenQuery) -> StoreResult<Vec<IdJagRecord>> {
        let now = millis(Utc::now());
        let mut sql = QueryBuilder::<Sqlite>::new("SELECT * FROM id_jag_tokens WHERE 1 = 1");
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
        let rows = sql.build().fetch_all(&self.read).await?;
        rows.iter().map(id_jag_from_row).collect()
    }

    async fn find_id_jags_by_jti(&self, jti: &str) -> StoreResult<Vec<IdJagRecord>> {
        let rows = sqlx::query("SELECT * FROM id_jag_tokens WHERE jti = ? ORDER BY id")
            .bind(jti)
            .fetch_all(&self.read)
            .await?;
        rows.iter().map(id_jag_from_row).collect()
    }

    async fn get_access_token(&self, jti: &str) -> StoreResult<Option<AccessTokenRecord>> {
        let row = sqlx::query("SELECT * FROM access_tokens WHERE jti = ?")
            .bind(jti)
            .fetch_optional(&self.read)
            .await?;
        row.as_ref().map(access_token_from_row).transpose()
    }

    async fn list_access_tokens(&self, id_jag_id: i64) -> StoreResult<Vec<AccessTokenRecord>> {
        let rows =
            sqlx::query("SELECT * FROM access_tokens WHERE id_jag_id = ? ORDER BY issued_at")
                .bind(id_jag_id)
                .fetch_all(&self.read)
                .await?;
        rows.iter().map(access_token_from_row).collect()
    }

    async fn revoke_jti(
        &self,
        jti: &str,
        revocation: &Revocation,
        audit: &NewAuditEvent,
    ) -> StoreResult<JtiRevocationOutcome> {
        let (jti, revocation, audit) = (jti.to_owned(), revocation.clone(), audit.clone());
        self.write(move |conn| {
            Box::pin(async move { revoke_jti_job(conn, &jti, &revocation, &audit).await })
        })
        .await
    }

    async fn revoke_subject(
        &self,
        revocation: &SubjectRevocation,
        audit: &NewAuditEvent,
    ) -> StoreResult<i64> {
        let (revocation, audit) = (revocation.clone(), audit.clone());
        self.write(move |conn| {
            Box::pin(async move { revoke_subject_job(conn, &revocation, &audit).await })
        })
        .await
    }

    async fn revoke_access_token(&self, jti: &str, revocation: &Revocation) -> StoreResult<bool> {
        let (jti, revocation) = (jti.to_owned(), revocation.clone());
        self.write(move |conn| {
            Box::pin(async move {
                let exists = sqlx::query("SELECT 1 FROM access_tokens WHERE jti = ?")
                    .bind(&jti)
                    .fetch_optional(&mut *conn)
                    .await?
                    .is_some();
                let done = sqlx::query(
                    "UPDATE access_tokens SET revoked_at = ?, revoke_reason = ?, revoked_by = ? \
                     WHERE jti = ? AND revoked_at IS NULL",
                )
                .bind(millis(revocation.revoked_at))
                .bind(&revocation.reason)
                .bind(&revocation.revoked_by)
                .bind(&jti)
                .execute(&mut *conn)
                .await?;
                if done.rows_affected() > 0 {
                    bump_generation(conn).await?;
                }
                Ok(exists)
            })
        })
        .await
    }

    async fn pending_subject_revocations(&self) -> StoreResult<Vec<SubjectRevocation>> {
        let rows = sqlx::query(
            "SELECT * FROM subject_revocations WHERE pending = 1 \
             ORDER BY idp_provider_id, subject",
        )
        .fetch_all(&self.read)
        .await?;
        rows.iter().map(subject_revocation_from_row).collect()
    }

    async fn mark_subject_revocation(
        &self,
        revocation: &SubjectRevocation,
        after_id: i64,
        limit: u32,
    ) -> StoreResult<MarkProgress> {
        let revocation = revocation.clone();
        self.write(move |conn| {
            Box::pin(async move { mark_subject_job(conn, &revocation, after_id, limit).await })
        })
        .await
    }

    async fn list_subject_revocations(&self) -> StoreResult<Vec<SubjectRevocation>> {
        let rows = sqlx::query("SELECT * FROM subject_revocations")
            .fetch_all(&self.read)
            .await?;
        rows.iter().map(subject_revocation_from_row).collect()
    }

    async fn generations(&self) -> StoreResult<(i64, i64)> {
        let rows = sqlx::query("SELECT name, value FROM counters")
            .fetch_all(&self.read)
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
                .fetch_one(&self.read)
                .await?,
        )
    }

    async fn stats(&self, proxy_id: Option<i64>, now: DateTime<Utc>) -> StoreResult<XaaStats> {
        Ok(XaaStats {
            id_jag_tokens: token_stats(&self.read, proxy_id, now).await?,
            jwks_cache: jwks_stats(&self.read).await?,
            client_mappings: mapping_stats(&self.read, proxy_id).await?,
            revocation_generation: self.revocation_generation().await?,
        })
    }

    async fn query_audit(&self, query: &AuditQuery) -> StoreResult<Vec<AuditEvent>> {
        let mut sql = QueryBuilder::<Sqlite>::new("SELECT * FROM audit_logs WHERE 1 = 1");
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
        let rows = sql.build().fetch_all(&self.read).await?;
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
            "SELECT minute, sum(succeeded) AS succeeded, sum(failed) AS failed \
             FROM exchange_activity WHERE minute >= ?1 AND (?2 IS NULL OR proxy_id = ?2) \
             GROUP BY minute ORDER BY minute",
        )
        .bind(minute_of(millis(since)))
        .bind(proxy_id)
        .fetch_all(&self.read)
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
             WHERE at >= ?1 AND event_type = 'xaa_token_validation_failed' \
             AND (?2 IS NULL OR proxy_id = ?2) GROUP BY reason ORDER BY n DESC LIMIT 20",
        )
        .bind(millis(since))
        .bind(proxy_id)
        .fetch_all(&self.read)
        .await?;
        rows.iter()
            .map(|row| Ok((row.try_get("reason")?, row.try_get("n")?)))
            .collect()
    }

    async fn load_jwks(&self, provider_id: i64) -> StoreResult<Option<JwksCacheEntry>> {
        let row = sqlx::query("SELECT * FROM jwks_cache WHERE idp_provider_id = ?")
            .bind(provider_id)
            .fetch_optional(&self.read)
            .await?;
        row.as_ref().map(jwks_from_row).transpose()
    }

    async fn list_jwks(&self) -> StoreResult<Vec<JwksCacheEntry>> {
        let rows = sqlx::query("SELECT * FROM jwks_cache ORDER BY idp_provider_id")
            .fetch_all(&self.read)
            .await?;
        rows.iter().map(jwks_from_row).collect()
    }

    async fn save_jwks(
        &self,
        entry: &JwksCacheEntry,
        audit: Option<&NewAuditEvent>,
    ) -> StoreResult<()> {
        let (entry, audit) = (entry.clone(), audit.cloned());
        self.write(move |conn| {
            Box::pin(async move {
                sqlx::query(
                    "INSERT INTO jwks_cache (idp_provider_id, jwks_json, key_count, fetched_at, \
                     expires_at, last_error, last_error_at) VALUES (?, ?, ?, ?, ?, ?, ?) \
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
                .execute(&mut *conn)
                .await
                .map_err(|error| {
                    map_error(error, &format!("provider {}", entry.idp_provider_id))
                })?;
                if let Some(audit) = &audit {
                    insert_audit(conn, audit).await?;
                }
                Ok(())
            })
        })
        .await
    }

    async fn list_signing_keys(&self) -> StoreResult<Vec<SigningKeyRecord>> {
        let rows = sqlx::query("SELECT * FROM signing_keys ORDER BY created_at")
            .fetch_all(&self.read)
            .await?;
        rows.iter()
            .map(|row| {
                Ok(SigningKeyRecord {
                    kid: row.try_get("kid")?,
                    alg: row.try_get("alg")?,
                    private_pkcs8: row.try_get("private_pkcs8")?,
                    public_jwk: row.try_get("public_jwk")?,
                    created_at: from_millis(row.try_get("created_at")?)?,
                    active: row.try_get("active")?,
                })
            })
            .collect()
    }

    async fn insert_signing_key(&self, key: &SigningKeyRecord) -> StoreResult<()> {
        let key = key.clone();
        self.write(move |conn| {
            Box::pin(async move {
                sqlx::query(
                    "INSERT INTO signing_keys (kid, alg, private_pkcs8, public_jwk, created_at, \
                     active) VALUES (?, ?, ?, ?, ?, ?)",
                )
                .bind(&key.kid)
                .bind(&key.alg)
                .bind(&key.private_pkcs8)
                .bind(&key.public_jwk)
                .bind(millis(key.created_at))
                .bind(key.active)
                .execute(&mut *conn)
                .await
                .map_err(|error| map_error(error, &format!("signing key '{}'", key.kid)))?;
                Ok(())
            })
        })
        .await
    }

    async fn close(&self) {
        self.read.close().await;
    }
}
