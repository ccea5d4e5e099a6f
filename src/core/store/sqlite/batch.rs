//! The batched writes of the exchange path. The ID-JAG records, access tokens, audit events and
//! statistics counters of a run of consecutive exchange and audit jobs ([`Segment`]) are
//! written with a few multi-row statements, not several statements per job.
//!
//! Each statement is a round trip to sqlx's SQLite worker thread, and those round trips, not
//! SQLite itself, dominated the cost of an exchange. A segment therefore costs one upsert of
//! all ID-JAG records plus one insert per table, whatever its length. Counter increments are
//! summed in memory first.
//!
//! When a statement of a segment fails (for example on a duplicate access-token JTI), the
//! segment is written again job by job, so only the job at fault gets the error.

use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, Utc};
use sqlx::sqlite::SqliteConnection;
use sqlx::{QueryBuilder, Row, Sqlite};
use tokio::sync::oneshot;

use super::super::{
    ExchangeOutcome, ExchangeWrite, StoreError, StoreResult, StoredPresentation,
    audit_fields_to_text, join_words, millis, minute_of, repeat_presentation_outcome,
};
use crate::core::model::{AuditEventType, NewAuditEvent};

/// Rows per multi-row statement: 256 rows of at most 11 columns stay far below SQLite's
/// default limit of 32,766 bound parameters.
const ROWS_PER_STATEMENT: usize = 256;

/// Channel that receives a batched job's result once its transaction has committed.
pub(super) type Reply<T> = oneshot::Sender<StoreResult<T>>;

/// An audit event ready to insert: its fields are serialized by the caller, off the writer.
#[derive(Debug, Clone)]
pub(super) struct AuditRow {
    event_type: AuditEventType,
    actor: String,
    proxy_id: Option<i64>,
    idp_provider_id: Option<i64>,
    reason_code: Option<String>,
    fields: String,
}

impl AuditRow {
    pub(super) fn prepare(event: &NewAuditEvent) -> StoreResult<Self> {
        Ok(Self {
            event_type: event.event_type,
            actor: event.actor.clone(),
            proxy_id: event.proxy_id,
            idp_provider_id: event.idp_provider_id,
            reason_code: event.reason_code.clone(),
            fields: audit_fields_to_text(event)?,
        })
    }

    pub(super) fn prepare_all(events: &[NewAuditEvent]) -> StoreResult<Vec<Self>> {
        events.iter().map(Self::prepare).collect()
    }
}

/// An exchange to record, with its success audit prepared.
#[derive(Debug)]
pub(super) struct PreparedExchange {
    write: ExchangeWrite,
    success_audit: Vec<AuditRow>,
}

impl PreparedExchange {
    pub(super) fn new(write: ExchangeWrite) -> StoreResult<Self> {
        let success_audit = AuditRow::prepare_all(&write.success_audit)?;
        Ok(Self {
            write,
            success_audit,
        })
    }
}

/// A job the writer batches.
pub(super) enum Batched {
    Exchange(Box<PreparedExchange>, Reply<ExchangeOutcome>),
    Audit(Vec<AuditRow>, Reply<()>),
}

/// A batched job whose writes are done, waiting for the commit.
pub(super) enum Settled {
    Exchange(Reply<ExchangeOutcome>, ExchangeOutcome),
    Audit(Reply<()>),
}

impl Settled {
    /// Sends the result after a successful commit.
    pub(super) fn succeed(self) {
        match self {
            Self::Exchange(reply, outcome) => {
                let _ = reply.send(Ok(outcome));
            }
            Self::Audit(reply) => {
                let _ = reply.send(Ok(()));
            }
        }
    }

    /// Sends a commit failure.
    pub(super) fn fail(self, message: &str) {
        match self {
            Self::Exchange(reply, _) => fail(reply, message),
            Self::Audit(reply) => fail(reply, message),
        }
    }
}

/// Sends a commit failure to a batched job.
pub(super) fn fail<T>(reply: Reply<T>, message: &str) {
    let _ = reply.send(Err(StoreError::CommitFailed(message.to_owned())));
}

impl Batched {
    /// Sends a commit failure.
    pub(super) fn fail(self, message: &str) {
        match self {
            Self::Exchange(_, reply) => fail(reply, message),
            Self::Audit(_, reply) => fail(reply, message),
        }
    }

    /// Sends the error that rejected this job's own writes.
    fn reject(self, error: StoreError) {
        match self {
            Self::Exchange(_, reply) => {
                let _ = reply.send(Err(error));
            }
            Self::Audit(_, reply) => {
                let _ = reply.send(Err(error));
            }
        }
    }
}

/// Consecutive batched jobs of one group commit, in queue order.
#[derive(Default)]
pub(super) struct Segment {
    jobs: Vec<Batched>,
}

impl Segment {
    pub(super) fn push(&mut self, job: Batched) {
        self.jobs.push(job);
    }

    pub(super) fn is_empty(&self) -> bool {
        self.jobs.is_empty()
    }

    /// Writes every job of the segment, first in its transaction, and returns them settled.
    ///
    /// When a statement fails, the transaction is rolled back and begun again. The jobs are
    /// then written one at a time, each inside a savepoint, so only the job at fault gets its
    /// error (for example `Conflict` on a duplicate access-token JTI) and leaves nothing
    /// behind. `Err` means the transaction or savepoint statements themselves failed. Every job
    /// has then been failed, and the caller must roll back.
    pub(super) async fn write(self, conn: &mut SqliteConnection) -> Result<Vec<Settled>, ()> {
        let error = match self.write_rows(conn, Utc::now()).await {
            Ok(outcomes) => return Ok(self.settle(outcomes)),
            Err(error) => error,
        };
        tracing::warn!(%error, jobs = self.jobs.len(), "batched write failed; retrying its jobs one at a time");
        if let Err(error) = super::restart_transaction(conn).await {
            self.fail_all(&error.to_string());
            return Err(());
        }
        self.write_one_at_a_time(conn).await
    }

    async fn write_one_at_a_time(self, conn: &mut SqliteConnection) -> Result<Vec<Settled>, ()> {
        let mut settled = Vec::with_capacity(self.jobs.len());
        let mut jobs = self.jobs.into_iter();
        while let Some(job) = jobs.next() {
            let single = Self { jobs: vec![job] };
            let written = async {
                execute(conn, "SAVEPOINT job").await?;
                let written = single.write_rows(conn, Utc::now()).await;
                if written.is_err() {
                    execute(conn, "ROLLBACK TO job").await?;
                }
                execute(conn, "RELEASE job").await?;
                Ok::<_, StoreError>(written)
            };
            match written.await {
                Ok(Ok(outcomes)) => settled.extend(single.settle(outcomes)),
                Ok(Err(error)) => {
                    if let Some(job) = single.jobs.into_iter().next() {
                        job.reject(error);
                    }
                }
                Err(error) => {
                    let message = error.to_string();
                    for job in settled {
                        job.fail(&message);
                    }
                    single.fail_all(&message);
                    Self {
                        jobs: jobs.collect(),
                    }
                    .fail_all(&message);
                    return Err(());
                }
            }
        }
        Ok(settled)
    }

    /// Fails every job with `message`.
    pub(super) fn fail_all(self, message: &str) {
        for job in self.jobs {
            job.fail(message);
        }
    }

    /// Records the ID-JAGs, decides each exchange, then writes what the accepted exchanges and
    /// the audit jobs add. Returns the exchanges' outcomes in queue order.
    async fn write_rows(
        &self,
        conn: &mut SqliteConnection,
        now: DateTime<Utc>,
    ) -> StoreResult<Vec<ExchangeOutcome>> {
        let exchanges: Vec<&ExchangeWrite> = self
            .jobs
            .iter()
            .filter_map(|job| match job {
                Batched::Exchange(prepared, _) => Some(&prepared.write),
                Batched::Audit(..) => None,
            })
            .collect();
        let mut recorded = record_id_jags(conn, &exchanges).await?.into_iter();

        let mut writes = Deferred::default();
        let mut outcomes = Vec::with_capacity(exchanges.len());
        for job in &self.jobs {
            match job {
                Batched::Exchange(prepared, _) => {
                    let stored = recorded.next().ok_or_else(|| {
                        StoreError::Corrupt("fewer ID-JAG records than exchanges".into())
                    })?;
                    outcomes.push(writes.add_exchange(prepared, &stored, now));
                }
                Batched::Audit(rows, _) => writes.add_audit(rows, now),
            }
        }
        writes.write(conn, now).await?;
        Ok(outcomes)
    }

    fn settle(self, outcomes: Vec<ExchangeOutcome>) -> Vec<Settled> {
        let mut outcomes = outcomes.into_iter();
        self.jobs
            .into_iter()
            .filter_map(|job| match job {
                Batched::Exchange(_, reply) => {
                    if let Some(outcome) = outcomes.next() {
                        Some(Settled::Exchange(reply, outcome))
                    } else {
                        fail(reply, "the exchange was not decided");
                        None
                    }
                }
                Batched::Audit(_, reply) => Some(Settled::Audit(reply)),
            })
            .collect()
    }
}

async fn execute(conn: &mut SqliteConnection, sql: &str) -> StoreResult<()> {
    sqlx::query(sql).execute(&mut *conn).await?;
    Ok(())
}

/// The ID-JAG record of one exchange after its upsert.
#[derive(Debug)]
struct RecordedIdJag {
    id: i64,
    proxy_id: i64,
    presentation_count: i64,
    revoked: bool,
    client_id_at_resource_as: String,
}

/// Inserts the ID-JAG records (or counts another presentation of a known one) and returns
/// each exchange's record in input order. Two exchanges of the same (issuer, jti) in one
/// statement get the presentation counts in input order, as if they had run one by one.
async fn record_id_jags(
    conn: &mut SqliteConnection,
    exchanges: &[&ExchangeWrite],
) -> StoreResult<Vec<RecordedIdJag>> {
    let mut recorded = Vec::with_capacity(exchanges.len());
    for chunk in exchanges.chunks(ROWS_PER_STATEMENT) {
        let mut sql = QueryBuilder::<Sqlite>::new(
            "INSERT INTO id_jag_tokens (idp_provider_id, proxy_id, jti, subject, client_id, \
             client_id_at_resource_as, scopes, issued_at, expires_at, first_seen_at, \
             last_seen_at) ",
        );
        sql.push_values(chunk, |mut row, write| {
            let seen_at = millis(write.seen_at);
            row.push_bind(write.idp_provider_id)
                .push_bind(write.proxy_id)
                .push_bind(write.jti.as_str())
                .push_bind(write.subject.as_str())
                .push_bind(write.client_id.as_str())
                .push_bind(write.client_id_at_resource_as.as_str())
                .push_bind(join_words(&write.scopes))
                .push_bind(millis(write.issued_at))
                .push_bind(millis(write.expires_at))
                .push_bind(seen_at)
                .push_bind(seen_at);
        });
        sql.push(
            " ON CONFLICT (idp_provider_id, jti) DO UPDATE SET \
             presentation_count = presentation_count + 1, last_seen_at = excluded.last_seen_at \
             RETURNING id, idp_provider_id, jti, proxy_id, presentation_count, revoked_at, \
             client_id_at_resource_as",
        );
        // Statements of every length are built, so caching them would only evict others.
        let rows = sql.build().persistent(false).fetch_all(&mut *conn).await?;

        let mut by_key: HashMap<(i64, String), Vec<RecordedIdJag>> = HashMap::new();
        for row in &rows {
            let key = (row.try_get("idp_provider_id")?, row.try_get("jti")?);
            by_key.entry(key).or_default().push(RecordedIdJag {
                id: row.try_get("id")?,
                proxy_id: row.try_get("proxy_id")?,
                presentation_count: row.try_get("presentation_count")?,
                revoked: row.try_get::<Option<i64>, _>("revoked_at")?.is_some(),
                client_id_at_resource_as: row.try_get("client_id_at_resource_as")?,
            });
        }
        // Pop from the end, so sort each key's records by descending count.
        for records in by_key.values_mut() {
            records.sort_unstable_by_key(|record| std::cmp::Reverse(record.presentation_count));
        }
        for write in chunk {
            let key = (write.idp_provider_id, write.jti.clone());
            let record = by_key.get_mut(&key).and_then(Vec::pop).ok_or_else(|| {
                StoreError::Corrupt(format!("no record returned for jti '{}'", write.jti))
            })?;
            recorded.push(record);
        }
    }
    Ok(recorded)
}

/// Writes collected from the jobs of a segment, applied together.
#[derive(Default)]
struct Deferred<'a> {
    access_tokens: Vec<(i64, &'a ExchangeWrite)>,
    audit: Vec<&'a AuditRow>,
    /// Per proxy: new ID-JAG records and the latest presentation time.
    token_counts: BTreeMap<i64, (i64, i64)>,
    /// Per proxy and expiry minute: new unrevoked ID-JAG records.
    expiry_buckets: BTreeMap<(i64, i64), i64>,
    /// Per proxy and minute: successful and failed exchanges.
    activity: BTreeMap<(i64, i64), (i64, i64)>,
}

impl<'a> Deferred<'a> {
    /// Decides one exchange from its recorded ID-JAG and collects its writes when it issues.
    fn add_exchange(
        &mut self,
        prepared: &'a PreparedExchange,
        stored: &RecordedIdJag,
        now: DateTime<Utc>,
    ) -> ExchangeOutcome {
        let write = &prepared.write;
        let seen_at = millis(write.seen_at);
        if stored.presentation_count == 1 {
            self.count_new_token(write.proxy_id, millis(write.expires_at), seen_at);
        } else {
            let presentation = StoredPresentation {
                proxy_id: stored.proxy_id,
                client_id_at_resource_as: &stored.client_id_at_resource_as,
                presentation_count: stored.presentation_count,
                revoked: stored.revoked,
            };
            if let Some(rejected) = repeat_presentation_outcome(write, &presentation) {
                return rejected;
            }
            let counts = self
                .token_counts
                .entry(write.proxy_id)
                .or_insert((0, seen_at));
            counts.1 = counts.1.max(seen_at);
        }
        self.access_tokens.push((stored.id, write));
        self.add_audit(&prepared.success_audit, now);
        ExchangeOutcome::Issued {
            id_jag_id: stored.id,
            presentation_count: stored.presentation_count,
        }
    }

    fn count_new_token(&mut self, proxy_id: i64, expires_at: i64, seen_at: i64) {
        let counts = self.token_counts.entry(proxy_id).or_insert((0, seen_at));
        counts.0 += 1;
        counts.1 = counts.1.max(seen_at);
        *self
            .expiry_buckets
            .entry((proxy_id, minute_of(expires_at)))
            .or_default() += 1;
    }

    /// Collects audit rows and counts exchange outcomes per proxy and minute for the activity
    /// chart.
    fn add_audit(&mut self, rows: &'a [AuditRow], now: DateTime<Utc>) {
        let minute = minute_of(millis(now));
        for row in rows {
            let (succeeded, failed) = match row.event_type {
                AuditEventType::XaaTokenExchange => (1, 0),
                AuditEventType::XaaTokenValidationFailed => (0, 1),
                _ => continue,
            };
            let counts = self
                .activity
                .entry((row.proxy_id.unwrap_or(0), minute))
                .or_default();
            counts.0 += succeeded;
            counts.1 += failed;
        }
        self.audit.extend(rows);
    }

    async fn write(self, conn: &mut SqliteConnection, now: DateTime<Utc>) -> StoreResult<()> {
        for chunk in self.access_tokens.chunks(ROWS_PER_STATEMENT) {
            insert_access_tokens(conn, chunk).await?;
        }
        for chunk in self.audit.chunks(ROWS_PER_STATEMENT) {
            insert_audit_rows(conn, chunk, millis(now)).await?;
        }
        self.write_counters(conn).await
    }

    async fn write_counters(&self, conn: &mut SqliteConnection) -> StoreResult<()> {
        if !self.token_counts.is_empty() {
            let mut sql = QueryBuilder::<Sqlite>::new(
                "INSERT INTO token_counters (proxy_id, total, revoked, last_token_at) ",
            );
            sql.push_values(&self.token_counts, |mut row, (proxy_id, (total, last))| {
                row.push_bind(*proxy_id)
                    .push_bind(*total)
                    .push_bind(0_i64)
                    .push_bind(*last);
            });
            sql.push(
                " ON CONFLICT (proxy_id) DO UPDATE SET total = total + excluded.total, \
                 last_token_at = max(coalesce(last_token_at, 0), excluded.last_token_at)",
            );
            sql.build().persistent(false).execute(&mut *conn).await?;
        }
        if !self.expiry_buckets.is_empty() {
            let mut sql = QueryBuilder::<Sqlite>::new(
                "INSERT INTO token_expiry_buckets (proxy_id, minute, unrevoked) ",
            );
            sql.push_values(
                &self.expiry_buckets,
                |mut row, ((proxy_id, minute), count)| {
                    row.push_bind(*proxy_id)
                        .push_bind(*minute)
                        .push_bind(*count);
                },
            );
            sql.push(
                " ON CONFLICT (proxy_id, minute) DO UPDATE SET \
                 unrevoked = unrevoked + excluded.unrevoked",
            );
            sql.build().persistent(false).execute(&mut *conn).await?;
        }
        if !self.activity.is_empty() {
            let mut sql = QueryBuilder::<Sqlite>::new(
                "INSERT INTO exchange_activity (proxy_id, minute, succeeded, failed) ",
            );
            sql.push_values(
                &self.activity,
                |mut row, ((proxy_id, minute), (ok, failed))| {
                    row.push_bind(*proxy_id)
                        .push_bind(*minute)
                        .push_bind(*ok)
                        .push_bind(*failed);
                },
            );
            sql.push(
                " ON CONFLICT (proxy_id, minute) DO UPDATE SET \
                 succeeded = succeeded + excluded.succeeded, failed = failed + excluded.failed",
            );
            sql.build().persistent(false).execute(&mut *conn).await?;
        }
        Ok(())
    }
}

async fn insert_access_tokens(
    conn: &mut SqliteConnection,
    tokens: &[(i64, &ExchangeWrite)],
) -> StoreResult<()> {
    let mut sql = QueryBuilder::<Sqlite>::new(
        "INSERT INTO access_tokens (jti, id_jag_id, proxy_id, idp_provider_id, subject, \
         client_id, scopes, audience, issued_at, expires_at) ",
    );
    sql.push_values(tokens, |mut row, (id_jag_id, write)| {
        let token = &write.access_token;
        row.push_bind(token.jti.as_str())
            .push_bind(*id_jag_id)
            .push_bind(write.proxy_id)
            .push_bind(write.idp_provider_id)
            .push_bind(write.subject.as_str())
            .push_bind(write.client_id_at_resource_as.as_str())
            .push_bind(join_words(&write.scopes))
            .push_bind(token.audience.as_str())
            .push_bind(millis(token.issued_at))
            .push_bind(millis(token.expires_at));
    });
    sql.build()
        .persistent(false)
        .execute(&mut *conn)
        .await
        .map_err(|error| super::super::map_error(error, "access token"))?;
    Ok(())
}

async fn insert_audit_rows(
    conn: &mut SqliteConnection,
    rows: &[&AuditRow],
    at: i64,
) -> StoreResult<()> {
    let mut sql = QueryBuilder::<Sqlite>::new(
        "INSERT INTO audit_logs (at, event_type, actor, proxy_id, idp_provider_id, reason_code, \
         fields) ",
    );
    sql.push_values(rows, |mut row, audit| {
        row.push_bind(at)
            .push_bind(audit.event_type.as_str())
            .push_bind(audit.actor.as_str())
            .push_bind(audit.proxy_id)
            .push_bind(audit.idp_provider_id)
            .push_bind(audit.reason_code.as_deref())
            .push_bind(audit.fields.as_str());
    });
    sql.build().persistent(false).execute(&mut *conn).await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use chrono::Duration;
    use futures_util::future::join_all;
    use serde_json::Map;

    use super::super::SqliteStore;
    use crate::core::model::{AuditEventType, NewAuditEvent};
    use crate::core::store::{ExchangeOutcome, ExchangeWrite, NewAccessToken, Store, StoreError};

    const EXCHANGES: usize = 20;

    async fn open_store(dir: &tempfile::TempDir) -> SqliteStore {
        let url = format!("sqlite://{}", dir.path().join("xaa.db").display());
        SqliteStore::open(&url).await.unwrap()
    }

    fn write(jti: &str, access_jti: &str) -> ExchangeWrite {
        let now = chrono::Utc::now();
        ExchangeWrite {
            idp_provider_id: 1,
            proxy_id: 1,
            jti: jti.into(),
            subject: "alice".into(),
            client_id: "idp-client".into(),
            client_id_at_resource_as: "as-client".into(),
            scopes: vec!["openid".into()],
            issued_at: now,
            expires_at: now + Duration::minutes(5),
            seen_at: now,
            allow_reuse: false,
            access_token: NewAccessToken {
                jti: access_jti.into(),
                audience: "https://mcp.example/".into(),
                issued_at: now,
                expires_at: now + Duration::minutes(5),
            },
            success_audit: vec![NewAuditEvent {
                event_type: AuditEventType::XaaTokenExchange,
                actor: "client:as-client".into(),
                proxy_id: Some(1),
                idp_provider_id: Some(1),
                reason_code: None,
                fields: Map::new(),
            }],
        }
    }

    #[tokio::test]
    async fn concurrent_presentations_issue_once() {
        let dir = tempfile::tempdir().unwrap();
        let store = open_store(&dir).await;
        let writes: Vec<_> = (0..EXCHANGES)
            .map(|n| write("jti-shared", &format!("at-{n}")))
            .collect();
        let outcomes = join_all(writes.into_iter().map(|w| store.record_exchange(w))).await;

        let issued = outcomes
            .iter()
            .filter(|outcome| matches!(outcome, Ok(ExchangeOutcome::Issued { .. })))
            .count();
        assert_eq!(issued, 1);
        let mut replay_counts: Vec<i64> = outcomes
            .iter()
            .filter_map(|outcome| match outcome {
                Ok(ExchangeOutcome::Replayed { presentation_count }) => Some(*presentation_count),
                _ => None,
            })
            .collect();
        replay_counts.sort_unstable();
        let expected: Vec<i64> = (2..=i64::try_from(EXCHANGES).unwrap()).collect();
        assert_eq!(replay_counts, expected);

        let stats = store.stats(None, chrono::Utc::now()).await.unwrap();
        assert_eq!(stats.id_jag_tokens.total, 1);
        assert_eq!(stats.id_jag_tokens.active, 1);
    }

    #[tokio::test]
    async fn clashing_access_token_fails_only_its_exchange() {
        let dir = tempfile::tempdir().unwrap();
        let store = open_store(&dir).await;
        let mut writes: Vec<_> = (0..EXCHANGES)
            .map(|n| write(&format!("jti-{n}"), &format!("at-{n}")))
            .collect();
        writes.push(write("jti-clash", "at-0"));
        let outcomes = join_all(writes.into_iter().map(|w| store.record_exchange(w))).await;

        let conflicts = outcomes
            .iter()
            .filter(|outcome| matches!(outcome, Err(StoreError::Conflict(_))))
            .count();
        let issued = outcomes
            .iter()
            .filter(|outcome| matches!(outcome, Ok(ExchangeOutcome::Issued { .. })))
            .count();
        assert_eq!(conflicts, 1, "{outcomes:?}");
        assert_eq!(issued, EXCHANGES, "{outcomes:?}");
        let stored_clash = store.find_id_jags_by_jti("jti-clash").await.unwrap().len();
        let stored_first = store.find_id_jags_by_jti("jti-0").await.unwrap().len();
        assert_eq!(stored_clash + stored_first, 1);
        let stats = store.stats(None, chrono::Utc::now()).await.unwrap();
        assert_eq!(stats.id_jag_tokens.total, i64::try_from(EXCHANGES).unwrap());
    }

    #[tokio::test]
    async fn audit_appends_count_failures() {
        let dir = tempfile::tempdir().unwrap();
        let store = open_store(&dir).await;
        let failure = NewAuditEvent {
            event_type: AuditEventType::XaaTokenValidationFailed,
            actor: "client:as-client".into(),
            proxy_id: Some(1),
            idp_provider_id: None,
            reason_code: Some("signature_invalid".into()),
            fields: Map::new(),
        };
        let appends = (0..EXCHANGES).map(|_| store.append_audit(vec![failure.clone()]));
        for result in join_all(appends).await {
            result.unwrap();
        }

        let since = chrono::Utc::now() - Duration::minutes(1);
        let failed: i64 = store
            .activity(Some(1), since)
            .await
            .unwrap()
            .iter()
            .map(|point| point.failed)
            .sum();
        assert_eq!(failed, i64::try_from(EXCHANGES).unwrap());
        let reasons = store.failure_reasons(Some(1), since).await.unwrap();
        assert_eq!(
            reasons,
            [(
                "signature_invalid".to_owned(),
                i64::try_from(EXCHANGES).unwrap()
            )]
        );
    }
}
