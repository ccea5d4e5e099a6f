//! The shared core: one [`Core`] handle that the server, the CLI verbs and the dashboard call.
//!
//! The core owns the store, the JWKS cache, the signing keys, the in-memory configuration
//! snapshot and the audit log file. Business rules live here once. It never imports axum,
//! ratatui or crossterm.

pub mod admin;
pub mod audit;
pub mod exchange;
pub mod introspect;
pub mod jose;
pub mod jwks;
pub mod keys;
pub mod marking;
pub mod metrics;
pub mod model;
pub mod snapshot;
pub mod store;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use parking_lot::RwLock;
use tokio::sync::{Notify, watch};

use self::audit::AuditFile;
use self::jwks::JwksCache;
use self::keys::{KeyError, SigningKeys};
use self::metrics::Metrics;
use self::model::NewAuditEvent;
use self::snapshot::Snapshot;
use self::store::sqlite::SqliteStore;
use self::store::{Store, StoreError};
use crate::config::Config;

/// How often the core checks the store for changes made by another process or instance.
const RELOAD_POLL: Duration = Duration::from_secs(1);

/// Errors of core operations, each mapped to one admin API status.
#[derive(Debug, thiserror::Error)]
pub enum CoreError {
    /// Bad input; the message names the value and the fix (400).
    #[error("{0}")]
    InvalidInput(String),
    /// An id that does not exist (404).
    #[error("{0}")]
    NotFound(String),
    /// A duplicate (409).
    #[error("{0}")]
    Conflict(String),
    /// The provider exists but is disabled (422).
    #[error("{0}")]
    ProviderDisabled(String),
    /// The store cannot be reached (503).
    #[error("store unavailable: {0}")]
    Unavailable(String),
    /// An identity provider could not be reached or sent an unusable response (502).
    #[error("{0}")]
    Upstream(String),
    /// Anything else (500).
    #[error("internal error: {0}")]
    Internal(String),
}

impl From<StoreError> for CoreError {
    fn from(error: StoreError) -> Self {
        match error {
            StoreError::NotFound(what) => Self::NotFound(format!("{what} not found")),
            StoreError::Conflict(what) => Self::Conflict(what),
            StoreError::Database(ref db) if is_connection_error(db) => {
                Self::Unavailable(error.to_string())
            }
            StoreError::WriterStopped | StoreError::CommitFailed(_) => {
                Self::Unavailable(error.to_string())
            }
            other => Self::Internal(other.to_string()),
        }
    }
}

impl From<KeyError> for CoreError {
    fn from(error: KeyError) -> Self {
        Self::Internal(error.to_string())
    }
}

fn is_connection_error(error: &sqlx::Error) -> bool {
    matches!(
        error,
        sqlx::Error::Io(_)
            | sqlx::Error::PoolTimedOut
            | sqlx::Error::PoolClosed
            | sqlx::Error::Tls(_)
    )
}

/// Result alias for core operations.
pub type CoreResult<T> = Result<T, CoreError>;

struct Inner {
    config: Config,
    store: Arc<dyn Store>,
    jwks: Arc<JwksCache>,
    keys: SigningKeys,
    snapshot: RwLock<Arc<Snapshot>>,
    metrics: Metrics,
    audit_file: Option<Arc<AuditFile>>,
    shutdown: watch::Sender<bool>,
    /// Wakes the marking task after a revocation by subject.
    marking: Notify,
    /// Whether a background task marks pending subject revocations; without one (one-shot
    /// commands), a revocation by subject marks its records before it returns.
    marks_in_background: AtomicBool,
}

/// The handle to everything xaa does. Cheap to clone.
#[derive(Clone)]
pub struct Core {
    inner: Arc<Inner>,
}

/// Opens the store named by a database URL.
pub async fn open_store(url: &str) -> Result<Arc<dyn Store>, StoreError> {
    if url.starts_with("sqlite:") {
        return Ok(Arc::new(SqliteStore::open(url).await?));
    }
    if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        return Ok(Arc::new(store::postgres::PostgresStore::open(url).await?));
    }
    Err(StoreError::Database(sqlx::Error::Configuration(
        format!(
            "database URL '{}' is not supported; use sqlite://PATH or postgres://USER@HOST/DB",
            crate::config::redact_url(url)
        )
        .into(),
    )))
}

impl Core {
    /// Opens the store, loads keys, configuration and cached key sets, and starts the
    /// background tasks (change polling and key set refresh).
    pub async fn open(config: Config) -> CoreResult<Self> {
        let store = open_store(&config.database.url).await?;
        Self::with_store(config, store).await
    }

    /// Opens the store for a one-shot command: no change polling and no key set refresh,
    /// because the process ends as soon as the command is done.
    pub async fn open_for_command(config: Config) -> CoreResult<Self> {
        let store = open_store(&config.database.url).await?;
        Self::build(config, store).await
    }

    /// Like [`Core::open`] with an already opened store.
    pub async fn with_store(config: Config, store: Arc<dyn Store>) -> CoreResult<Self> {
        let core = Self::build(config, store).await?;
        core.spawn_background_tasks();
        Ok(core)
    }

    async fn build(config: Config, store: Arc<dyn Store>) -> CoreResult<Self> {
        let keys = SigningKeys::load_or_create(&store).await?;
        let snapshot = Snapshot::load(&store).await?;
        let jwks = Arc::new(
            JwksCache::new(config.jwks.clone(), Arc::clone(&store))
                .map_err(|error| CoreError::Internal(error.to_string()))?,
        );
        let providers: Vec<_> = snapshot.providers.values().cloned().collect();
        jwks.load_persisted(&providers).await;
        let audit_file = AuditFile::open(&config.server.log_dir).map(Arc::new);
        if let Some(file) = &audit_file {
            let file = Arc::clone(file);
            jwks.set_audit_mirror(Arc::new(move |event| file.write(event)));
        }
        let (shutdown, _) = watch::channel(false);

        let core = Self {
            inner: Arc::new(Inner {
                config,
                store,
                jwks,
                keys,
                snapshot: RwLock::new(Arc::new(snapshot)),
                metrics: Metrics::default(),
                audit_file,
                shutdown,
                marking: Notify::new(),
                marks_in_background: AtomicBool::new(false),
            }),
        };
        Ok(core)
    }

    fn spawn_background_tasks(&self) {
        let weak = Arc::downgrade(&self.inner);
        let mut stop = self.inner.shutdown.subscribe();
        tokio::spawn(async move {
            let mut ticker = tokio::time::interval(RELOAD_POLL);
            loop {
                tokio::select! {
                    _ = ticker.tick() => {}
                    _ = stop.changed() => break,
                }
                let Some(inner) = weak.upgrade() else { break };
                let core = Self { inner };
                core.reload_if_changed().await;
            }
        });

        self.inner
            .marks_in_background
            .store(true, Ordering::Release);
        let weak = Arc::downgrade(&self.inner);
        let mut stop = self.inner.shutdown.subscribe();
        tokio::spawn(async move {
            let mut ticker = tokio::time::interval(RELOAD_POLL);
            loop {
                let Some(inner) = weak.upgrade() else { break };
                let core = Self { inner };
                if let Err(error) = core.mark_pending_subject_revocations().await {
                    tracing::warn!(%error, "marking the records of a revoked subject failed");
                }
                let wake = async { core.inner.marking.notified().await };
                tokio::select! {
                    () = wake => {}
                    _ = ticker.tick() => {}
                    _ = stop.changed() => break,
                }
            }
        });

        let snapshot_source = {
            let weak = Arc::downgrade(&self.inner);
            move || {
                weak.upgrade()
                    .map(|inner| inner.snapshot.read().providers.values().cloned().collect())
                    .unwrap_or_default()
            }
        };
        Arc::clone(&self.inner.jwks)
            .spawn_refresher(snapshot_source, self.inner.shutdown.subscribe());
    }

    /// Stops the background tasks and closes the store.
    pub async fn shutdown(&self) {
        let _ = self.inner.shutdown.send(true);
        self.inner.store.close().await;
    }

    /// The loaded configuration.
    pub fn config(&self) -> &Config {
        &self.inner.config
    }

    /// The store behind this core.
    pub fn store(&self) -> &Arc<dyn Store> {
        &self.inner.store
    }

    /// The JWKS cache of the trusted providers.
    pub fn jwks(&self) -> &Arc<JwksCache> {
        &self.inner.jwks
    }

    /// The gateway's access-token signing keys.
    pub fn signing_keys(&self) -> &SigningKeys {
        &self.inner.keys
    }

    /// Counters for `/metrics` and the dashboard.
    pub fn metrics(&self) -> &Metrics {
        &self.inner.metrics
    }

    /// The current configuration snapshot.
    pub fn snapshot(&self) -> Arc<Snapshot> {
        Arc::clone(&self.inner.snapshot.read())
    }

    /// Rebuilds the snapshot from the store now.
    pub async fn reload(&self) -> CoreResult<()> {
        let snapshot = Snapshot::load(&self.inner.store).await?;
        *self.inner.snapshot.write() = Arc::new(snapshot);
        Ok(())
    }

    /// Reloads the snapshot when the store's generations moved; returns whether it did.
    pub(crate) async fn reload_if_changed(&self) -> bool {
        let current = self.snapshot().generations;
        match self.inner.store.generations().await {
            Ok(latest) if latest != current => match self.reload().await {
                Ok(()) => {
                    tracing::debug!(?latest, "configuration reloaded after a change elsewhere");
                    true
                }
                Err(error) => {
                    tracing::warn!(%error, "reloading configuration from the store failed");
                    false
                }
            },
            Ok(_) => false,
            Err(error) => {
                tracing::warn!(%error, "polling the store for changes failed");
                false
            }
        }
    }

    /// Whether a proxy exists, reloading the snapshot first when it is not in the current one.
    pub async fn proxy_exists(&self, proxy_id: i64) -> bool {
        if self.snapshot().proxies.contains_key(&proxy_id) {
            return true;
        }
        self.reload_if_changed().await && self.snapshot().proxies.contains_key(&proxy_id)
    }

    /// Stores audit events and mirrors them to the audit log file. A failure is logged, not
    /// returned, because the operation being audited has already happened.
    pub(crate) async fn append_audit(&self, events: Vec<NewAuditEvent>) {
        if let Err(error) = self.inner.store.append_audit(events.clone()).await {
            tracing::error!(%error, "writing audit events to the store failed");
        }
        self.write_audit_file(&events);
    }

    /// Starts marking the `count` records of a subject revocation just recorded. Up to
    /// [`marking::MARK_AT_ONCE`] records are marked before this returns, so the statistics
    /// are exact when the caller reads them. More go to the background task, or are marked
    /// before this returns when there is none.
    pub(crate) async fn start_marking(
        &self,
        idp_provider_id: i64,
        subject: &str,
        count: i64,
    ) -> CoreResult<()> {
        let in_background = self.inner.marks_in_background.load(Ordering::Acquire);
        if in_background && count > i64::from(marking::MARK_AT_ONCE) {
            self.inner.marking.notify_one();
            return Ok(());
        }
        let pending = self
            .snapshot()
            .pending_subject_revocations
            .iter()
            .find(|revocation| {
                revocation.idp_provider_id == idp_provider_id && revocation.subject == subject
            })
            .cloned();
        if let Some(revocation) = pending {
            self.mark_subject_now(&revocation).await?;
        }
        Ok(())
    }

    /// Mirrors already stored audit events to `audit.jsonl`.
    pub(crate) fn write_audit_file(&self, events: &[NewAuditEvent]) {
        if let Some(file) = &self.inner.audit_file {
            for event in events {
                file.write(event);
            }
        }
    }
}
