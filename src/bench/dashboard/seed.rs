//! The store the dashboard suite draws: one provider (the bench's demo IdP), one proxy with
//! many client mappings, two proxies with one mapping each, and a few recorded exchanges, in a
//! fresh SQLite file.
//!
//! The provider, the proxies, the first mapping of each proxy and the exchanges go through
//! [`Core`], as an operator's changes would. `Core::create_mapping` reloads the configuration
//! snapshot after every mapping, so creating ten thousand one by one costs time quadratic in
//! the count. The other mappings of the large proxy are therefore inserted in one SQL
//! transaction into the same tables, together with the rows the store writes for each mapping:
//! the resource-AS client, the proxy's mapping change time and the configuration generation.

use std::str::FromStr;
use std::time::{Duration, Instant};

use chrono::Utc;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode};
use sqlx::{ConnectOptions, Connection, SqliteConnection};

use crate::bench::BenchError;
use crate::bench::server::{PUBLIC_URL, ServerSpec};
use crate::config::Config;
use crate::core::Core;
use crate::core::model::{NewMapping, NewProvider, NewProxy, Proxy, ProxyKind};
use crate::core::store::{ExchangeWrite, NewAccessToken};

/// Name of the proxy that contains the mappings. It is the first row of the Proxies screen.
pub const LARGE_PROXY: &str = "bench-proxy-large";
/// Proxies besides the large one, each with one mapping, so the Proxies screen lists several.
const SMALL_PROXIES: [(&str, ProxyKind); 2] = [
    ("bench-proxy-mcp", ProxyKind::Mcp),
    ("bench-proxy-llm", ProxyKind::Llm),
];
/// Exchanges recorded on the large proxy, so the Statistics tab shows non-zero figures.
const RECORDED_EXCHANGES: usize = 200;
/// Distinct subjects of the recorded exchanges.
const SUBJECTS: usize = 20;
/// Allowed scopes of every seeded mapping.
const SCOPES: [&str; 3] = ["openid", "profile", "mcp:tools"];
/// Actor recorded in the audit events of the mappings created through the core.
const ACTOR: &str = "xaa-bench";

/// The store contents that [`seed`] created.
#[derive(Debug, Clone)]
pub struct SeededStore {
    /// Client mappings of the large proxy.
    pub mappings: u64,
    /// Of those, the ones created through `Core::create_mapping`.
    pub mappings_through_core: u64,
    pub small_proxies: usize,
    pub recorded_exchanges: usize,
    pub seed_time: Duration,
}

/// Returns the configuration of the suite's store in `spec`. Its listener addresses are the
/// defaults, because the idle measurement picks free ports itself.
pub fn store_config(spec: &ServerSpec) -> Config {
    let mut config = Config::default();
    config.database.url = spec.database_url();
    config.server.data_dir.clone_from(&spec.data_dir);
    config.server.log_dir = spec.data_dir.join("logs-dashboard");
    PUBLIC_URL.clone_into(&mut config.server.public_url);
    config
}

/// Seeds the store of `config` with `mappings` client mappings on the large proxy, trusting
/// the IdP at `issuer`.
pub async fn seed(config: &Config, issuer: &str, mappings: u64) -> Result<SeededStore, BenchError> {
    let started = Instant::now();
    let core = Core::open(config.clone()).await?;
    let result = seed_through_core(&core, issuer).await;
    core.shutdown().await;
    let (provider_id, proxy) = result?;

    let bulk = mappings.saturating_sub(1);
    tracing::info!(
        mappings = bulk,
        "inserting client mappings in one transaction"
    );
    insert_mappings(&config.database.url, proxy.id, provider_id, bulk).await?;
    Ok(SeededStore {
        mappings,
        mappings_through_core: 1,
        small_proxies: SMALL_PROXIES.len(),
        recorded_exchanges: RECORDED_EXCHANGES,
        seed_time: started.elapsed(),
    })
}

/// Creates the provider, the proxies and their first mappings, and records the exchanges.
/// Returns the provider id and the large proxy.
async fn seed_through_core(core: &Core, issuer: &str) -> Result<(i64, Proxy), BenchError> {
    let provider = core
        .create_provider(NewProvider {
            name: "bench-idp".into(),
            issuer: issuer.to_owned(),
            ..NewProvider::default()
        })
        .await?;
    let large = core
        .create_proxy(NewProxy {
            name: LARGE_PROXY.into(),
            kind: ProxyKind::Mcp,
            ..NewProxy::default()
        })
        .await?;
    core.create_mapping(large.id, new_mapping(provider.id, 0), ACTOR)
        .await?;
    for (number, (name, kind)) in (1..).zip(SMALL_PROXIES) {
        let proxy = core
            .create_proxy(NewProxy {
                name: name.into(),
                kind,
                ..NewProxy::default()
            })
            .await?;
        core.create_mapping(proxy.id, new_mapping(provider.id, number), ACTOR)
            .await?;
    }
    for number in 0..RECORDED_EXCHANGES {
        core.store()
            .record_exchange(exchange(provider.id, large.id, number))
            .await?;
    }
    Ok((provider.id, large))
}

/// Returns mapping `number`, named as the bulk insert names its rows.
fn new_mapping(provider_id: i64, number: u64) -> NewMapping {
    NewMapping {
        idp_provider_id: provider_id,
        client_id_at_idp: format!("bench-agent-{number:05}"),
        client_id_at_resource_as: format!("bench-client-{number:05}"),
        allowed_scopes: SCOPES.map(str::to_owned).to_vec(),
    }
}

/// Returns the store write of one accepted exchange by the first mapping of the large proxy.
fn exchange(provider_id: i64, proxy_id: i64, number: usize) -> ExchangeWrite {
    let now = Utc::now();
    ExchangeWrite {
        idp_provider_id: provider_id,
        proxy_id,
        jti: uuid::Uuid::new_v4().to_string(),
        subject: format!("user-{}@example.com", number % SUBJECTS),
        client_id: "bench-agent-00000".into(),
        client_id_at_resource_as: "bench-client-00000".into(),
        scopes: vec!["mcp:tools".into()],
        issued_at: now,
        expires_at: now + chrono::Duration::minutes(5),
        seen_at: now,
        allow_reuse: false,
        access_token: NewAccessToken {
            jti: uuid::Uuid::new_v4().to_string(),
            audience: format!("{PUBLIC_URL}/proxies/{proxy_id}"),
            issued_at: now,
            expires_at: now + chrono::Duration::minutes(15),
        },
        success_audit: Vec::new(),
    }
}

/// Inserts mappings 1 to `count` of the proxy (mapping 0 came from the core), one second
/// apart in creation time, with a resource-AS client for each.
async fn insert_mappings(
    database_url: &str,
    proxy_id: i64,
    provider_id: i64,
    count: u64,
) -> Result<(), BenchError> {
    let options = SqliteConnectOptions::from_str(database_url)?
        .journal_mode(SqliteJournalMode::Wal)
        .disable_statement_logging();
    let mut conn = SqliteConnection::connect_with(&options).await?;
    let mut transaction = conn.begin().await?;
    let now_ms = Utc::now().timestamp_millis();
    let end = i64::try_from(count).unwrap_or(i64::MAX).saturating_add(1);

    sqlx::query(
        "WITH RECURSIVE seq(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM seq WHERE n + 1 < ?1) \
         INSERT INTO client_mappings (proxy_id, idp_provider_id, client_id_at_idp, \
           client_id_at_resource_as, allowed_scopes, created_at) \
         SELECT ?2, ?3, printf('bench-agent-%05d', n), printf('bench-client-%05d', n), ?4, \
           ?5 - (?1 - n) * 1000 FROM seq WHERE n < ?1",
    )
    .bind(end)
    .bind(proxy_id)
    .bind(provider_id)
    .bind(SCOPES.join(" "))
    .bind(now_ms)
    .execute(&mut *transaction)
    .await?;

    // A random 32-byte value in place of a secret's SHA-256 digest: no secret was generated
    // for it, so these clients cannot authenticate, which nothing in the suite needs.
    sqlx::query(
        "INSERT INTO resource_clients (proxy_id, client_id, secret_hash, created_at) \
         SELECT proxy_id, client_id_at_resource_as, randomblob(32), created_at \
         FROM client_mappings WHERE proxy_id = ?1 \
         ON CONFLICT (proxy_id, client_id) DO NOTHING",
    )
    .bind(proxy_id)
    .execute(&mut *transaction)
    .await?;

    // The rows `Store::create_mapping` updates after each mapping.
    sqlx::query(
        "INSERT INTO mapping_changes (proxy_id, changed_at) VALUES (?1, ?2) \
         ON CONFLICT (proxy_id) DO UPDATE SET changed_at = excluded.changed_at",
    )
    .bind(proxy_id)
    .bind(now_ms)
    .execute(&mut *transaction)
    .await?;
    sqlx::query("UPDATE counters SET value = value + 1 WHERE name = 'config_generation'")
        .execute(&mut *transaction)
        .await?;

    transaction.commit().await?;
    conn.close().await?;
    Ok(())
}
