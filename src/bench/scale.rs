//! The scale suite: seed millions of token records straight into a SQLite file, then time the
//! statistics query, start-up to serving, and revocation by subject with its effect on the
//! next exchange at two instances.
//!
//! Seeding bypasses the store on purpose and writes the tables with bulk SQL inside SQLite.
//! It then rebuilds the counter tables that the store maintains (`token_counters`,
//! `token_expiry_buckets`) from the rows, so statistics read exactly what a server that had
//! recorded these tokens would read. Audit records and activity counters are not seeded,
//! because none of the timed operations reads them.

use std::collections::BTreeMap;
use std::path::Path;
use std::str::FromStr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use chrono::Utc;
use serde_json::json;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqliteSynchronous};
use sqlx::{ConnectOptions, Connection, Row, SqliteConnection};

use super::idp::{HostedIdp, MintSpec};
use super::server::{AdminClient, Gateway, ServerProcess, ServerSpec, Workspace};
use super::{BenchArgs, BenchError, STARTUP_LIMIT};
use crate::core::store::Store;
use crate::core::store::sqlite::SqliteStore;

/// A subject with no seeded records, whose exchanges run beside the revocation.
const BYSTANDER_SUBJECT: &str = "bystander@example.com";
/// Most bystander exchanges sent during one revocation.
const BYSTANDER_PROBES: usize = 6_000;
/// The subject whose records are revoked.
const REVOKED_SUBJECT: &str = "revoked-user@example.com";
/// Distinct subjects of the other seeded records.
const OTHER_SUBJECTS: u64 = 250_000;
/// Seeded records spread evenly over this span before now.
const SEED_SPAN_MS: i64 = 30 * 24 * 3600 * 1000;
/// ID-JAG lifetime of seeded records; access tokens live 900 s, the configuration default.
const SEED_ID_JAG_TTL_MS: i64 = 300_000;
const SEED_ACCESS_TOKEN_TTL_MS: i64 = 900_000;
/// One in this many of the other records is already revoked, so the counters are not trivial.
const REVOKED_ONE_IN: u64 = 100;
/// Records inserted per transaction.
const SEED_CHUNK: u64 = 1_000_000;
/// Timed runs of the statistics query; the first one is reported apart as the cold run.
const STATS_RUNS: usize = 21;
/// Timed start-ups of a server on the seeded file.
const STARTUP_RUNS: usize = 3;
/// Maximum wait, from the start of the revocation request, for an instance to reject the
/// revoked subject.
const REJECTION_LIMIT: Duration = Duration::from_secs(120);
/// Delay between two probes of an instance that still accepts the revoked subject.
const PROBE_POLL: Duration = Duration::from_millis(20);
/// Pause between reads of the statistics while the revoked records are marked.
const MARKING_POLL: Duration = Duration::from_millis(50);
/// Probes minted per instance: enough for a probe every [`PROBE_POLL`] for 20 s. Probes that
/// wait on a busy writer take longer each, so fewer are needed.
const PROBES_PER_INSTANCE: usize = 1000;

/// Figures of the scale suite.
#[derive(Debug, Clone)]
pub struct ScaleReport {
    pub records: u64,
    pub subject_records: u64,
    pub seed_time: Duration,
    pub database_bytes: u64,
    pub stats_cold: Duration,
    pub stats_median: Duration,
    pub stats_max: Duration,
    pub stats_warm_runs: usize,
    /// Whether `Store::stats` returned the totals the seeding wrote.
    pub stats_consistent: bool,
    pub startups: Vec<Duration>,
    /// The revocation by subject, or why it could not be measured.
    pub revocation: Result<RevocationTiming, String>,
}

/// Revocation by subject through the admin API of one of two instances on the seeded file.
#[derive(Debug, Clone)]
pub struct RevocationTiming {
    /// Time until the admin API responded, and the HTTP status of the response.
    pub request: Duration,
    pub status: u16,
    /// Records revoked, as the response reports them (absent unless the status is 200).
    pub revoked_count: Option<i64>,
    /// Probes of the instance that took the request.
    pub same_instance: ProbeResult,
    /// Probes of a second instance, which learns of the revocation through its change poll.
    pub other_instance: ProbeResult,
    /// From the start of the request until the statistics counted every record revoked.
    /// The instances mark the records in chunks after the response.
    pub marked_after: Option<Duration>,
    /// Exchanges of another subject at the instance that took the request, sent one at a
    /// time from the request until the marking was done.
    pub bystander: ProbeResult,
    /// Peak resident memory of the instance that took the request, in bytes.
    pub peak_resident_bytes: Option<u64>,
    /// Bytes that instance caused to be written to storage from the request to the last probe.
    pub written_bytes: Option<u64>,
}

/// Exchanges of the revoked subject sent to one instance from the start of the request.
#[derive(Debug, Clone, Default)]
pub struct ProbeResult {
    /// From the start of the request to the first rejection (HTTP 400).
    pub rejected_after: Option<Duration>,
    /// Maximum probe round trip: how long the instance stalled exchanges.
    pub slowest: Duration,
    /// Responses by HTTP status, including the final rejection.
    pub statuses: BTreeMap<u16, u64>,
}

/// Runs the suite in its own data directory with its own demo IdP.
pub async fn run(args: &BenchArgs, workspace: &Workspace) -> Result<ScaleReport, BenchError> {
    let idp = HostedIdp::start().await?;
    let result = run_with_idp(args, workspace, &idp).await;
    idp.stop().await;
    result
}

async fn run_with_idp(
    args: &BenchArgs,
    workspace: &Workspace,
    idp: &HostedIdp,
) -> Result<ScaleReport, BenchError> {
    let spec = workspace.server_spec("scale")?;
    let gateway = prepare_gateway(&spec, idp).await?;

    tracing::info!(records = args.scale_records, "seeding token records");
    let started = Instant::now();
    let plan = SeedPlan {
        records: args.scale_records,
        subject_every: args.scale_records / args.subject_records,
        provider_id: gateway.provider_id,
        proxy_id: gateway.proxy_id,
    };
    let expected = seed(&spec.database, &plan).await?;
    let seed_time = started.elapsed();
    let database_bytes = std::fs::metadata(&spec.database).map_or(0, |meta| meta.len());

    tracing::info!("timing the statistics query");
    let stats = time_stats(&spec, &expected).await?;
    tracing::info!("timing start-up on the seeded database");
    let startups = time_startups(&spec).await?;
    tracing::info!("timing revocation by subject");
    let revocation = time_revocation(&spec, idp, &gateway)
        .await
        .map_err(|error| error.to_string());

    Ok(ScaleReport {
        records: args.scale_records,
        subject_records: plan.subject_records(),
        seed_time,
        database_bytes,
        stats_cold: stats.cold,
        stats_median: stats.median,
        stats_max: stats.max,
        stats_warm_runs: STATS_RUNS - 1,
        stats_consistent: stats.consistent,
        startups,
        revocation,
    })
}

/// Creates the schema, provider, proxy and mapping through a real server, and records one real
/// exchange, then stops the server so the file can be seeded.
async fn prepare_gateway(spec: &ServerSpec, idp: &HostedIdp) -> Result<Gateway, BenchError> {
    let mut server = ServerProcess::spawn(spec, "setup")?;
    let result = async {
        server.wait_ready(STARTUP_LIMIT).await?;
        let admin = AdminClient::new(&server)?;
        let gateway = admin.configure_gateway(idp.issuer()).await?;
        let tokens = idp
            .mint_batch(&MintSpec::valid(&gateway, "setup-user"), 1)
            .await?;
        expect_status(&gateway, &admin.http, &tokens, 200, "the setup exchange").await?;
        Ok(gateway)
    }
    .await;
    server.stop().await;
    result
}

/// Redeems the first of `tokens` and fails unless the status is `expected`. `check` names the
/// exchange in the error message.
pub(super) async fn expect_status(
    gateway: &Gateway,
    http: &reqwest::Client,
    tokens: &[String],
    expected: u16,
    check: &str,
) -> Result<(), BenchError> {
    let Some(token) = tokens.first() else {
        return Err(BenchError::Task(format!("no ID-JAG minted for {check}")));
    };
    let status = gateway.redeem(http, token).await?;
    if status == expected {
        Ok(())
    } else {
        Err(BenchError::Server(format!(
            "{check} returned HTTP {status}, expected {expected}"
        )))
    }
}

/// The rows to seed.
#[derive(Debug, Clone, Copy)]
struct SeedPlan {
    records: u64,
    /// Every record whose number is a multiple of this belongs to [`REVOKED_SUBJECT`].
    subject_every: u64,
    provider_id: i64,
    proxy_id: i64,
}

impl SeedPlan {
    fn subject_records(&self) -> u64 {
        self.records.div_ceil(self.subject_every)
    }

    fn is_subject(&self, number: u64) -> bool {
        number.is_multiple_of(self.subject_every)
    }

    /// Seeded records that are already revoked.
    fn revoked_records(&self) -> u64 {
        (0..self.records)
            .filter(|number| number % REVOKED_ONE_IN == REVOKED_ONE_IN - 1)
            .fold(0, |count, number| {
                count + u64::from(!self.is_subject(number))
            })
    }
}

/// Totals the statistics must report after seeding.
#[derive(Debug, Clone, Copy)]
struct ExpectedTotals {
    total: i64,
    revoked: i64,
}

async fn seed(database: &Path, plan: &SeedPlan) -> Result<ExpectedTotals, BenchError> {
    // The seed is a fixture, not data under test, so it skips fsync. The server under test
    // keeps `synchronous = FULL`.
    let options = SqliteConnectOptions::from_str(&format!("sqlite://{}", database.display()))?
        .journal_mode(SqliteJournalMode::Wal)
        .synchronous(SqliteSynchronous::Off)
        .pragma("cache_size", "-1048576")
        .disable_statement_logging();
    let mut conn = SqliteConnection::connect_with(&options).await?;
    let before: i64 = sqlx::query_scalar("SELECT count(*) FROM id_jag_tokens")
        .fetch_one(&mut conn)
        .await?;
    let indexes = drop_secondary_indexes(&mut conn).await?;

    let now_ms = Utc::now().timestamp_millis();
    let first_ms = now_ms - SEED_SPAN_MS;
    let step_ms = (SEED_SPAN_MS / i64::try_from(plan.records).unwrap_or(i64::MAX)).max(1);
    let mut next = 0;
    while next < plan.records {
        let end = plan.records.min(next + SEED_CHUNK);
        insert_chunk(&mut conn, plan, next, end, first_ms, step_ms).await?;
        tracing::info!(seeded = end, "seeding progress");
        next = end;
    }

    tracing::info!(count = indexes.len(), "rebuilding indexes");
    for create in &indexes {
        sqlx::query(create).execute(&mut conn).await?;
    }
    rebuild_counters(&mut conn).await?;
    conn.close().await?;

    Ok(ExpectedTotals {
        total: before + i64::try_from(plan.records).unwrap_or(i64::MAX),
        revoked: i64::try_from(plan.revoked_records()).unwrap_or(i64::MAX),
    })
}

/// Drops the explicit indexes of the token tables and returns their `CREATE INDEX` statements,
/// so they are rebuilt by sorting once instead of by millions of random inserts. The indexes
/// behind `UNIQUE` and `PRIMARY KEY` stay; seeded keys arrive in order, so they only append.
async fn drop_secondary_indexes(conn: &mut SqliteConnection) -> Result<Vec<String>, BenchError> {
    let rows = sqlx::query(
        "SELECT name, sql FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL \
         AND tbl_name IN ('id_jag_tokens', 'access_tokens')",
    )
    .fetch_all(&mut *conn)
    .await?;
    let mut statements = Vec::with_capacity(rows.len());
    for row in rows {
        let name: String = row.try_get("name")?;
        sqlx::query(&format!("DROP INDEX \"{}\"", name.replace('"', "\"\"")))
            .execute(&mut *conn)
            .await?;
        statements.push(row.try_get("sql")?);
    }
    Ok(statements)
}

/// Inserts records `first..end` and one access token for each, in one transaction.
async fn insert_chunk(
    conn: &mut SqliteConnection,
    plan: &SeedPlan,
    first: u64,
    end: u64,
    first_ms: i64,
    step_ms: i64,
) -> Result<(), BenchError> {
    let mut transaction = conn.begin().await?;
    let last_id: i64 = sqlx::query_scalar("SELECT coalesce(max(id), 0) FROM id_jag_tokens")
        .fetch_one(&mut *transaction)
        .await?;

    insert_id_jags(&mut transaction, plan, (first, end), first_ms, step_ms).await?;
    insert_access_tokens(&mut transaction, plan, last_id).await?;
    transaction.commit().await?;
    Ok(())
}

/// Inserts the ID-JAG records numbered `first..end`, generated inside SQLite. Record `n` is
/// issued at `first_ms + n * step_ms`.
async fn insert_id_jags(
    conn: &mut SqliteConnection,
    plan: &SeedPlan,
    (first, end): (u64, u64),
    first_ms: i64,
    step_ms: i64,
) -> Result<(), BenchError> {
    let as_i64 = |value: u64| i64::try_from(value).unwrap_or(i64::MAX);

    sqlx::query(
        "WITH RECURSIVE seq(n) AS (SELECT ?1 UNION ALL SELECT n + 1 FROM seq WHERE n + 1 < ?2), \
         seeded AS (SELECT n, ?7 + n * ?8 AS at, \
           n % ?5 <> 0 AND n % ?9 = ?9 - 1 AS revoked FROM seq) \
         INSERT INTO id_jag_tokens (idp_provider_id, proxy_id, jti, subject, client_id, \
           client_id_at_resource_as, scopes, issued_at, expires_at, first_seen_at, \
           last_seen_at, presentation_count, revoked_at, revoke_reason, revoked_by) \
         SELECT ?3, ?4, printf('seed-%012d', n), \
           CASE WHEN n % ?5 = 0 THEN ?6 ELSE 'user-' || (n % ?10) || '@example.com' END, \
           ?11, ?12, 'openid profile', at, at + ?13, at, at, 1, \
           CASE WHEN revoked THEN at + 1000 END, CASE WHEN revoked THEN 'seeded' END, \
           CASE WHEN revoked THEN 'xaa-bench' END \
         FROM seeded",
    )
    .bind(as_i64(first))
    .bind(as_i64(end))
    .bind(plan.provider_id)
    .bind(plan.proxy_id)
    .bind(as_i64(plan.subject_every))
    .bind(REVOKED_SUBJECT)
    .bind(first_ms)
    .bind(step_ms)
    .bind(as_i64(REVOKED_ONE_IN))
    .bind(as_i64(OTHER_SUBJECTS))
    .bind(super::server::IDP_CLIENT_ID)
    .bind(super::server::CLIENT_ID)
    .bind(SEED_ID_JAG_TTL_MS)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// Inserts one access token for every ID-JAG record after `last_id`, revoked with it.
async fn insert_access_tokens(
    conn: &mut SqliteConnection,
    plan: &SeedPlan,
    last_id: i64,
) -> Result<(), BenchError> {
    sqlx::query(
        "INSERT INTO access_tokens (jti, id_jag_id, proxy_id, idp_provider_id, subject, \
           client_id, scopes, audience, issued_at, expires_at, revoked_at, revoke_reason, \
           revoked_by) \
         SELECT 'seed-at-' || substr(jti, 6), id, proxy_id, idp_provider_id, subject, \
           client_id_at_resource_as, scopes, ?1, issued_at, issued_at + ?2, revoked_at, \
           revoke_reason, revoked_by \
         FROM id_jag_tokens WHERE id > ?3 ORDER BY id",
    )
    .bind(format!(
        "{}/proxies/{}",
        super::server::PUBLIC_URL,
        plan.proxy_id
    ))
    .bind(SEED_ACCESS_TOKEN_TTL_MS)
    .bind(last_id)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// Recomputes the maintained counters from the rows: per proxy the records, the revoked ones
/// and the latest presentation, and per proxy and expiry minute the unrevoked records.
async fn rebuild_counters(conn: &mut SqliteConnection) -> Result<(), BenchError> {
    let mut transaction = conn.begin().await?;
    for statement in [
        "DELETE FROM token_counters",
        "INSERT INTO token_counters (proxy_id, total, revoked, last_token_at) \
         SELECT proxy_id, count(*), count(revoked_at), max(last_seen_at) FROM id_jag_tokens \
         GROUP BY proxy_id",
        "DELETE FROM token_expiry_buckets",
        "INSERT INTO token_expiry_buckets (proxy_id, minute, unrevoked) \
         SELECT proxy_id, expires_at / 60000, count(*) FROM id_jag_tokens \
         WHERE revoked_at IS NULL GROUP BY proxy_id, expires_at / 60000",
    ] {
        sqlx::query(statement).execute(&mut *transaction).await?;
    }
    transaction.commit().await?;
    Ok(())
}

struct StatsTiming {
    cold: Duration,
    median: Duration,
    max: Duration,
    consistent: bool,
}

/// Times `Store::stats` through the library on the seeded file.
async fn time_stats(
    spec: &ServerSpec,
    expected: &ExpectedTotals,
) -> Result<StatsTiming, BenchError> {
    let store = SqliteStore::open(&spec.database_url()).await?;
    let mut durations = Vec::with_capacity(STATS_RUNS);
    let mut last = None;
    for _ in 0..STATS_RUNS {
        let started = Instant::now();
        let stats = store.stats(None, Utc::now()).await?;
        durations.push(started.elapsed());
        last = Some(stats);
    }
    store.close().await;

    let consistent = last.is_some_and(|stats| {
        let tokens = stats.id_jag_tokens;
        tracing::info!(
            tokens.total,
            tokens.active,
            tokens.revoked,
            "seeded statistics"
        );
        tokens.total == expected.total && tokens.revoked == expected.revoked
    });
    let cold = durations.first().copied().unwrap_or_default();
    let mut warm = durations.split_off(1.min(durations.len()));
    warm.sort_unstable();
    Ok(StatsTiming {
        cold,
        median: warm.get(warm.len() / 2).copied().unwrap_or_default(),
        max: warm.last().copied().unwrap_or_default(),
        consistent,
    })
}

async fn time_startups(spec: &ServerSpec) -> Result<Vec<Duration>, BenchError> {
    let mut startups = Vec::with_capacity(STARTUP_RUNS);
    for run in 0..STARTUP_RUNS {
        let mut server = ServerProcess::spawn(spec, &format!("startup-{run}"))?;
        let ready = server.wait_ready(STARTUP_LIMIT).await;
        server.stop().await;
        startups.push(ready?);
    }
    Ok(startups)
}

/// Starts two instances on the seeded file, revokes the subject through the first one and
/// probes both with ID-JAGs of that subject minted before the revocation.
async fn time_revocation(
    spec: &ServerSpec,
    idp: &HostedIdp,
    gateway: &Gateway,
) -> Result<RevocationTiming, BenchError> {
    let mut first = ServerProcess::spawn(spec, "instance-a")?;
    let mut second = ServerProcess::spawn(spec, "instance-b")?;
    let result = revoke_and_probe(idp, gateway, &first, &second).await;
    first.stop().await;
    second.stop().await;
    result
}

async fn revoke_and_probe(
    idp: &HostedIdp,
    gateway: &Gateway,
    first: &ServerProcess,
    second: &ServerProcess,
) -> Result<RevocationTiming, BenchError> {
    first.wait_ready(STARTUP_LIMIT).await?;
    second.wait_ready(STARTUP_LIMIT).await?;
    let admin = AdminClient::new(first)?;
    let at_first = gateway.on_instance(first);
    let at_second = gateway.on_instance(second);
    let spec = MintSpec::for_subject(gateway, REVOKED_SUBJECT);
    let mut first_probes = idp.mint_batch(&spec, PROBES_PER_INSTANCE + 1).await?;
    let mut second_probes = idp.mint_batch(&spec, PROBES_PER_INSTANCE + 1).await?;
    let bystander_probes = idp
        .mint_batch(
            &MintSpec::for_subject(gateway, BYSTANDER_SUBJECT),
            BYSTANDER_PROBES,
        )
        .await?;
    let revoked_before = revoked_records(&admin).await?;

    // Both instances accept the subject before the revocation.
    let before = first_probes.split_off(PROBES_PER_INSTANCE);
    expect_status(
        &at_first,
        &admin.http,
        &before,
        200,
        "an exchange before revocation",
    )
    .await?;
    let before = second_probes.split_off(PROBES_PER_INSTANCE);
    let check = "an exchange at the second instance";
    expect_status(&at_second, &admin.http, &before, 200, check).await?;

    // The request and the probes of both instances run at once, so a request that outlives
    // the server's request timeout still shows when the revocation took effect.
    let written_before = first.written_bytes();
    let marking_done = AtomicBool::new(false);
    let started = Instant::now();
    let request = async {
        let answer = admin
            .post_status(
                "/api/v1/xaa/revoke-tokens-by-subject",
                &json!({"idp_provider_id": gateway.provider_id, "subject": REVOKED_SUBJECT,
                        "reason": "benchmark", "revoked_by": "xaa-bench"}),
            )
            .await;
        let answered = started.elapsed();
        let count = answer
            .as_ref()
            .ok()
            .and_then(|(_, body)| body.as_ref()?["revoked_count"].as_i64());
        let marked = match count {
            Some(count) => wait_for_marking(&admin, revoked_before + count, started).await,
            None => Ok(None),
        };
        marking_done.store(true, Ordering::Release);
        (answer, answered, marked)
    };
    let ((answer, request, marked_after), same_instance, other_instance, bystander) = tokio::join!(
        request,
        probe_until_rejected(&at_first, &admin.http, first_probes, started),
        probe_until_rejected(&at_second, &admin.http, second_probes, started),
        probe_while(
            &at_first,
            &admin.http,
            bystander_probes,
            &marking_done,
            started
        ),
    );
    let (status, answer) = answer?;
    if status != 200 {
        tracing::warn!(status, "the revocation request failed");
    }
    Ok(RevocationTiming {
        request,
        status,
        revoked_count: answer.and_then(|body| body["revoked_count"].as_i64()),
        same_instance: same_instance?,
        other_instance: other_instance?,
        marked_after: marked_after?,
        bystander: bystander?,
        peak_resident_bytes: first.peak_resident_bytes(),
        written_bytes: first
            .written_bytes()
            .zip(written_before)
            .map(|(after, before)| after.saturating_sub(before)),
    })
}

/// Records counted as revoked by the statistics of all proxies.
async fn revoked_records(admin: &AdminClient) -> Result<i64, BenchError> {
    let stats = admin.get("/api/v1/xaa/stats").await?;
    stats["id_jag_tokens"]["revoked"]
        .as_i64()
        .ok_or_else(|| BenchError::Admin {
            request: "GET /api/v1/xaa/stats".into(),
            detail: format!("no id_jag_tokens.revoked in {stats}"),
        })
}

/// Polls the statistics until they count `expected` revoked records; returns the time from
/// `started`, or `None` when that takes longer than the rejection limit.
async fn wait_for_marking(
    admin: &AdminClient,
    expected: i64,
    started: Instant,
) -> Result<Option<Duration>, BenchError> {
    while started.elapsed() <= REJECTION_LIMIT {
        if revoked_records(admin).await? >= expected {
            return Ok(Some(started.elapsed()));
        }
        tokio::time::sleep(MARKING_POLL).await;
    }
    Ok(None)
}

/// Redeems probes one after another until `stop` is set, the probes run out or the rejection
/// limit passes.
async fn probe_while(
    gateway: &Gateway,
    http: &reqwest::Client,
    probes: Vec<String>,
    stop: &AtomicBool,
    started: Instant,
) -> Result<ProbeResult, BenchError> {
    let mut result = ProbeResult::default();
    for probe in probes {
        if stop.load(Ordering::Acquire) || started.elapsed() > REJECTION_LIMIT {
            break;
        }
        let sent_at = Instant::now();
        let status = gateway.redeem(http, &probe).await?;
        result.slowest = result.slowest.max(sent_at.elapsed());
        *result.statuses.entry(status).or_default() += 1;
        tokio::time::sleep(PROBE_POLL).await;
    }
    Ok(result)
}

/// Redeems probes of the revoked subject one after another until one is rejected.
async fn probe_until_rejected(
    gateway: &Gateway,
    http: &reqwest::Client,
    probes: Vec<String>,
    started: Instant,
) -> Result<ProbeResult, BenchError> {
    let mut result = ProbeResult::default();
    for probe in probes {
        if started.elapsed() > REJECTION_LIMIT {
            break;
        }
        let sent_at = Instant::now();
        let status = gateway.redeem(http, &probe).await?;
        result.slowest = result.slowest.max(sent_at.elapsed());
        *result.statuses.entry(status).or_default() += 1;
        if status == 400 {
            result.rejected_after = Some(started.elapsed());
            break;
        }
        tokio::time::sleep(PROBE_POLL).await;
    }
    Ok(result)
}
