//! The per-provider cache of the JWK sets of trusted identity providers.
//!
//! [`JwksCache`] owns every network fetch of key material: it locates a provider's key set
//! (configured `jwks_uri`, or discovery from the issuer), fetches it over HTTPS with a timeout,
//! a size cap and same-origin redirects only, and keeps it in memory for a TTL taken from
//! `Cache-Control: max-age`. The hot path ([`JwksCache::key_for`]) answers from memory while
//! the set is fresh. An unknown `kid` triggers one shared refresh, limited by a per-provider
//! cooldown and a global refresh budget, so a flood of random `kid`s cannot turn xaa into a
//! load generator against the identity provider. When a provider's key set endpoint fails, the
//! last good set keeps serving until it is `stale_if_error_secs` old. Every fetch is persisted
//! through the [`Store`], so a restart serves from the stored sets without fetching.
//!
//! Only URLs from configuration or from a discovery document whose `issuer` matches exactly
//! are fetched, never a URL taken from a token.

use std::collections::HashMap;
use std::error::Error as StdError;
use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use chrono::{DateTime, TimeDelta, Utc};
use jsonwebtoken::Algorithm;
use parking_lot::{Mutex, RwLock};
use reqwest::StatusCode;
use reqwest::header::{ACCEPT, CACHE_CONTROL, HeaderMap};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use tokio::sync::watch;
use tracing::{debug, info, warn};
use url::{Host, Url};

use crate::core::jose::{JoseError, Key, KeySelectError, KeySet, parse_jwks, select_key};
use crate::core::model::{AuditEventType, JwksCacheEntry, NewAuditEvent, Provider};
use crate::core::store::Store;

/// Redirects followed per request, all within the origin of the requested URL.
const MAX_REDIRECTS: usize = 3;

/// `Accept` header of key set and metadata requests.
const ACCEPT_JSON: &str = "application/jwk-set+json, application/json;q=0.9";

/// Longest interval between two passes of the background refresher.
const MAX_REFRESHER_TICK: Duration = Duration::from_secs(30);

// ---------------------------------------------------------------------------------------------
// Settings.
// ---------------------------------------------------------------------------------------------

/// Settings of the JWKS cache: the `[jwks]` table of the configuration.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct JwksSettings {
    /// Key set lifetime in seconds when the response has no `Cache-Control: max-age`.
    pub default_ttl_secs: u64,
    /// Minimum key set lifetime in seconds; a smaller `max-age` is raised to it.
    pub min_ttl_secs: u64,
    /// Maximum key set lifetime in seconds; a larger `max-age` is lowered to it.
    pub max_ttl_secs: u64,
    /// Minimum time in seconds between two fetches for one provider. Inside it an unknown
    /// `kid` fails at once, without a network request.
    pub unknown_kid_cooldown_secs: u64,
    /// Timeout in seconds of one HTTP request, from connecting to the end of the body.
    pub fetch_timeout_secs: u64,
    /// Maximum size in bytes of a key set or discovery document.
    pub max_bytes: usize,
    /// Maximum number of keys in a key set; a larger set is rejected as a whole.
    pub max_keys: usize,
    /// How long in seconds after a successful fetch the set stays usable while refreshes
    /// fail.
    pub stale_if_error_secs: u64,
    /// How long in seconds before expiry the background refresher fetches a set again.
    pub refresh_ahead_secs: u64,
    /// Maximum number of key set fetches per minute over all providers. The admin "refresh
    /// keys" action is not counted.
    pub max_refreshes_per_minute: u32,
    /// Accept `http://` URLs whose host is a loopback address (127.0.0.0/8, `::1` or
    /// `localhost`), for local test identity providers. Every other URL must be `https://`.
    pub allow_http_loopback: bool,
}

impl Default for JwksSettings {
    fn default() -> Self {
        Self {
            default_ttl_secs: 600,
            min_ttl_secs: 300,
            max_ttl_secs: 86_400,
            unknown_kid_cooldown_secs: 30,
            fetch_timeout_secs: 5,
            max_bytes: 65_536,
            max_keys: 32,
            stale_if_error_secs: 86_400,
            refresh_ahead_secs: 60,
            max_refreshes_per_minute: 60,
            allow_http_loopback: true,
        }
    }
}

/// An invalid value in [`JwksSettings`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid [jwks] setting {field}: {reason}")]
pub struct JwksSettingsError {
    pub field: &'static str,
    pub reason: String,
}

impl JwksSettings {
    /// Checks that the values can work together.
    pub fn validate(&self) -> Result<(), JwksSettingsError> {
        if self.min_ttl_secs > self.max_ttl_secs {
            return Err(JwksSettingsError {
                field: "min_ttl_secs",
                reason: format!(
                    "{} is greater than max_ttl_secs ({})",
                    self.min_ttl_secs, self.max_ttl_secs
                ),
            });
        }
        if self.fetch_timeout_secs == 0 {
            return Err(JwksSettingsError {
                field: "fetch_timeout_secs",
                reason: "must be at least 1".to_owned(),
            });
        }
        if self.max_bytes == 0 || self.max_keys == 0 {
            let field = if self.max_bytes == 0 {
                "max_bytes"
            } else {
                "max_keys"
            };
            return Err(JwksSettingsError {
                field,
                reason: "must be at least 1".to_owned(),
            });
        }
        Ok(())
    }

    /// Lifetime of a fetched set: `max-age` clamped to the configured range, else the default.
    fn ttl_secs(&self, max_age: Option<u64>) -> u64 {
        max_age.map_or(self.default_ttl_secs, |age| {
            age.max(self.min_ttl_secs).min(self.max_ttl_secs)
        })
    }

    fn cooldown(&self) -> Duration {
        Duration::from_secs(self.unknown_kid_cooldown_secs)
    }

    fn refresher_tick(&self) -> Duration {
        let half_lead = Duration::from_secs(self.refresh_ahead_secs / 2);
        half_lead.clamp(Duration::from_secs(1), MAX_REFRESHER_TICK)
    }
}

// ---------------------------------------------------------------------------------------------
// Errors.
// ---------------------------------------------------------------------------------------------

/// Why one fetch of a key set failed.
#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    #[error("URL {url:?} is not allowed: {reason}")]
    UrlRejected { url: String, reason: &'static str },
    #[error("request to {url} failed")]
    Request {
        url: String,
        #[source]
        source: reqwest::Error,
    },
    #[error("{url} returned HTTP {status}, but only 200 is accepted")]
    Status { url: String, status: u16 },
    #[error("{url} returned more than the maximum of {max} bytes")]
    TooLarge { url: String, max: usize },
    #[error("{url} returned an invalid key set")]
    Jwks {
        url: String,
        #[source]
        source: JoseError,
    },
    #[error("discovery for issuer {issuer} failed: {detail}")]
    Discovery { issuer: String, detail: String },
}

impl FetchError {
    /// Stable code for the audit log.
    pub fn reason_code(&self) -> &'static str {
        match self {
            Self::UrlRejected { .. } => "jwks_url_rejected",
            Self::Request { .. } => "jwks_fetch_failed",
            Self::Status { .. } => "jwks_http_status",
            Self::TooLarge { .. } => "jwks_too_large",
            Self::Jwks { source, .. } => source.reason_code(),
            Self::Discovery { .. } => "jwks_discovery_failed",
        }
    }
}

/// Errors of the JWKS cache.
#[derive(Debug, thiserror::Error)]
pub enum JwksError {
    /// The key set was available but names no single key for this token.
    #[error(transparent)]
    Key(#[from] KeySelectError),
    /// The key could not be looked up because the provider's key set cannot be fetched.
    #[error("keys of provider {provider_id} are unavailable: {detail}")]
    Unavailable { provider_id: i64, detail: String },
    /// No usable set, and the global refresh budget is spent.
    #[error(
        "keys of provider {provider_id} are unavailable: the limit of {limit} JWKS fetches per \
         minute is reached"
    )]
    RefreshLimited { provider_id: i64, limit: u32 },
    /// A fetch requested by an operator failed.
    #[error("JWKS refresh of provider {provider_id} failed: {source}")]
    Fetch {
        provider_id: i64,
        #[source]
        source: FetchError,
    },
    #[error(transparent)]
    Settings(#[from] JwksSettingsError),
    #[error("building the JWKS HTTP client failed")]
    Client(#[source] reqwest::Error),
}

impl JwksError {
    /// Stable code for the audit log.
    pub fn reason_code(&self) -> &'static str {
        match self {
            Self::Key(error) => error.reason_code(),
            Self::Unavailable { .. } => "jwks_unavailable",
            Self::RefreshLimited { .. } => "jwks_refresh_limited",
            Self::Fetch { source, .. } => source.reason_code(),
            Self::Settings(_) | Self::Client(_) => "jwks_setup_failed",
        }
    }

    /// Whether the error means the keys could not be checked (HTTP 503
    /// `temporarily_unavailable`) rather than that the token names no valid key (HTTP 400
    /// `invalid_grant`).
    pub fn is_unavailable(&self) -> bool {
        !matches!(self, Self::Key(_))
    }
}

/// Formats an error with its chain of sources, e.g. `request to … failed: connection refused`.
fn error_chain(error: &dyn StdError) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

// ---------------------------------------------------------------------------------------------
// Cache state.
// ---------------------------------------------------------------------------------------------

/// The provider configuration a set was fetched for. A set never serves a provider whose
/// issuer or `jwks_uri` has changed since.
#[derive(Debug, Clone, PartialEq, Eq)]
struct SetSource {
    issuer: String,
    jwks_uri: Option<String>,
}

impl SetSource {
    fn of(provider: &Provider) -> Self {
        Self {
            issuer: provider.issuer.clone(),
            jwks_uri: provider.jwks_uri.clone(),
        }
    }

    fn matches(&self, provider: &Provider) -> bool {
        self.issuer == provider.issuer && self.jwks_uri == provider.jwks_uri
    }
}

/// One successfully fetched (or restored) key set.
#[derive(Debug)]
struct CachedSet {
    keys: KeySet,
    /// The document as fetched, for persistence.
    document: String,
    source: SetSource,
    /// The URL the set was fetched from; `None` for a set restored from the store.
    fetched_from: Option<String>,
    fetched_at: DateTime<Utc>,
    expires_at: DateTime<Utc>,
}

impl CachedSet {
    /// End of the stale-if-error window: the set serves until then while refreshes fail.
    fn usable_until(&self, settings: &JwksSettings) -> DateTime<Utc> {
        self.expires_at
            .max(add_secs(self.fetched_at, settings.stale_if_error_secs))
    }
}

/// Mutable state of one provider's cache entry.
#[derive(Debug, Default)]
struct SlotState {
    cached: Option<Arc<CachedSet>>,
    /// Key set URL from the issuer's metadata, with the issuer it was discovered for.
    discovered: Option<(String, Url)>,
    last_error: Option<String>,
    last_error_at: Option<DateTime<Utc>>,
    /// Start of the latest fetch, successful or not; the cooldown counts from here.
    last_attempt: Option<Instant>,
    last_attempt_failed: bool,
}

/// One provider's entry in the cache.
#[derive(Debug, Default)]
struct ProviderSlot {
    state: RwLock<SlotState>,
    /// Held for the whole of a fetch, so concurrent misses wait for one shared fetch.
    fetch_lock: tokio::sync::Mutex<()>,
    /// True while a fetch runs.
    fetching: AtomicBool,
    /// Fetches finished (or abandoned). A caller that waited for the fetch lock compares it
    /// with the value it saw before waiting, so it never repeats a fetch that just ran.
    completed_fetches: AtomicU64,
    /// HTTP requests sent for this provider (discovery and key sets).
    http_requests: AtomicU64,
}

impl ProviderSlot {
    /// The error for a key that is not cached when no fetch may run. After a failed fetch, or
    /// without any usable set, the key cannot be checked (unavailable). Otherwise the
    /// provider's current set does not contain it (invalid).
    fn miss_error(&self, provider_id: i64, miss: Option<KeySelectError>) -> JwksError {
        match miss {
            Some(error) if !self.last_attempt_failed() => error.into(),
            _ => {
                let detail = self.state.read().last_error.clone();
                JwksError::Unavailable {
                    provider_id,
                    detail: detail.unwrap_or_else(|| "no key set has been fetched yet".to_owned()),
                }
            }
        }
    }

    fn in_cooldown(&self, cooldown: Duration) -> bool {
        self.state
            .read()
            .last_attempt
            .is_some_and(|at| at.elapsed() < cooldown)
    }

    fn last_attempt_failed(&self) -> bool {
        self.state.read().last_attempt_failed
    }
}

/// Marks a fetch as running. Dropping it, also when the fetch future is dropped, clears
/// `fetching` and counts the fetch as completed.
struct RunningFetch<'a>(&'a ProviderSlot);

impl<'a> RunningFetch<'a> {
    fn start(slot: &'a ProviderSlot) -> Self {
        slot.fetching.store(true, Ordering::Release);
        Self(slot)
    }
}

impl Drop for RunningFetch<'_> {
    fn drop(&mut self) {
        self.0.completed_fetches.fetch_add(1, Ordering::AcqRel);
        self.0.fetching.store(false, Ordering::Release);
    }
}

/// Token bucket behind `max_refreshes_per_minute`.
#[derive(Debug)]
struct RefreshBudget {
    capacity: f64,
    tokens: f64,
    refilled_at: Instant,
}

impl RefreshBudget {
    fn new(per_minute: u32) -> Self {
        let capacity = f64::from(per_minute);
        Self {
            capacity,
            tokens: capacity,
            refilled_at: Instant::now(),
        }
    }

    fn try_take(&mut self) -> bool {
        let now = Instant::now();
        let elapsed = now.duration_since(self.refilled_at).as_secs_f64();
        self.tokens = (self.tokens + elapsed * self.capacity / 60.0).min(self.capacity);
        self.refilled_at = now;
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

/// Result of looking a key up in the cached set.
enum Lookup {
    /// Found in a set that has not expired.
    Fresh(Arc<Key>),
    /// Found in an expired set that is still inside its stale-if-error window.
    Stale(Arc<Key>),
    /// The set cannot name a single key, and a refresh would not change that.
    Rejected(KeySelectError),
    /// Not found. `None` when no usable set is cached.
    Miss(Option<KeySelectError>),
}

/// The key a caller of [`JwksCache::key_for`] asks for.
struct KeyRequest<'a> {
    provider: &'a Provider,
    kid: Option<&'a str>,
    alg: Algorithm,
}

impl KeyRequest<'_> {
    fn select_from(&self, set: &CachedSet) -> Result<Arc<Key>, JwksError> {
        select_key(&set.keys, self.kid, self.alg)
            .map(Arc::clone)
            .map_err(JwksError::from)
    }
}

/// A key set as fetched, before it enters the cache.
struct FetchedSet {
    keys: KeySet,
    document: String,
    url: Url,
    max_age: Option<u64>,
}

/// Cache figures of one provider, for statistics and the dashboard.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct JwksHealth {
    pub provider_id: i64,
    pub key_count: usize,
    /// URL of the latest successful fetch; `None` before one or for a restored set.
    pub jwks_uri: Option<String>,
    pub fetched_at: Option<DateTime<Utc>>,
    pub expires_at: Option<DateTime<Utc>>,
    pub last_error: Option<String>,
    pub last_error_at: Option<DateTime<Utc>>,
    /// Keys of the cached document that were left out, with the reason.
    pub skipped_keys: Vec<String>,
    /// HTTP requests sent for this provider since start (discovery and key sets).
    pub http_requests: u64,
}

// ---------------------------------------------------------------------------------------------
// The cache.
// ---------------------------------------------------------------------------------------------

/// Per-provider JWKS cache, shared through an `Arc`.
pub struct JwksCache {
    settings: JwksSettings,
    http: reqwest::Client,
    store: Arc<dyn Store>,
    slots: RwLock<HashMap<i64, Arc<ProviderSlot>>>,
    refresh_budget: Mutex<RefreshBudget>,
}

impl std::fmt::Debug for JwksCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JwksCache")
            .field("settings", &self.settings)
            .field("providers", &self.slots.read().len())
            .finish_non_exhaustive()
    }
}

impl JwksCache {
    /// Creates an empty cache and its HTTP client.
    pub fn new(settings: JwksSettings, store: Arc<dyn Store>) -> Result<Self, JwksError> {
        settings.validate()?;
        let http = build_http_client(&settings).map_err(JwksError::Client)?;
        Ok(Self {
            refresh_budget: Mutex::new(RefreshBudget::new(settings.max_refreshes_per_minute)),
            settings,
            http,
            store,
            slots: RwLock::new(HashMap::new()),
        })
    }

    pub fn settings(&self) -> &JwksSettings {
        &self.settings
    }

    /// Returns the key that verifies a token of `provider` with this `kid` and `alg`.
    ///
    /// A fresh cached set answers without network I/O. A `kid` the set lacks (or, without a
    /// `kid`, an algorithm no key supports) triggers one refresh shared by all concurrent
    /// callers, unless the provider is inside its cooldown or the global budget is spent. An
    /// expired set is refreshed once per cooldown and keeps serving while refreshes fail,
    /// until `stale_if_error_secs` after its fetch.
    pub async fn key_for(
        &self,
        provider: &Provider,
        kid: Option<&str>,
        alg: Algorithm,
    ) -> Result<Arc<Key>, JwksError> {
        let slot = self.slot(provider.id);
        let request = KeyRequest { provider, kid, alg };
        // Read before the lookup, so a fetch that completes after it is noticed.
        let seen_fetches = slot.completed_fetches.load(Ordering::Acquire);
        match self.lookup(&slot, &request) {
            Lookup::Fresh(key) => Ok(key),
            Lookup::Stale(key) => self.revalidate(&slot, &request, key, seen_fetches).await,
            Lookup::Rejected(error) => Err(error.into()),
            Lookup::Miss(miss) => {
                self.refresh_on_miss(&slot, &request, miss, seen_fetches)
                    .await
            }
        }
    }

    /// Fetches the provider's key set now, ignoring the cooldown and the refresh budget, and
    /// returns the number of usable keys. Concurrent fetches for the provider are still shared.
    pub async fn refresh_now(&self, provider: &Provider) -> Result<usize, JwksError> {
        let slot = self.slot(provider.id);
        let _flight = slot.fetch_lock.lock().await;
        let set = self
            .fetch_and_store(provider, &slot)
            .await
            .map_err(|source| JwksError::Fetch {
                provider_id: provider.id,
                source,
            })?;
        Ok(set.keys.len())
    }

    /// Drops everything cached for a provider, e.g. after it was deleted or its `jwks_uri`
    /// changed.
    ///
    /// NOTE: the stored copy stays until the next fetch overwrites it (or the provider's
    /// deletion removes it), so [`Self::load_persisted`] after a restart can restore it.
    pub fn forget(&self, provider_id: i64) {
        self.slots.write().remove(&provider_id);
    }

    /// Fills the memory cache from the store, so a restart serves without fetching. Entries of
    /// providers not in `providers` are ignored. Returns the number of sets restored.
    pub async fn load_persisted(&self, providers: &[Provider]) -> usize {
        let entries = match self.store.list_jwks().await {
            Ok(entries) => entries,
            Err(error) => {
                warn!(error = %error_chain(&error), "loading stored JWKS failed; fetching instead");
                return 0;
            }
        };
        let mut restored = 0;
        for entry in entries {
            let Some(provider) = providers.iter().find(|p| p.id == entry.idp_provider_id) else {
                continue;
            };
            if self.restore_entry(provider, entry) {
                restored += 1;
            }
        }
        info!(restored, "restored stored JWKS");
        restored
    }

    /// Starts a task that refreshes each enabled provider's set `refresh_ahead_secs` before it
    /// expires (and fetches sets never fetched), until `shutdown` turns true or its sender
    /// is dropped.
    pub fn spawn_refresher<F>(
        self: Arc<Self>,
        providers: F,
        mut shutdown: watch::Receiver<bool>,
    ) -> tokio::task::JoinHandle<()>
    where
        F: Fn() -> Vec<Provider> + Send + Sync + 'static,
    {
        tokio::spawn(async move {
            let tick = self.settings.refresher_tick();
            info!(tick_secs = tick.as_secs(), "JWKS refresher started");
            while !*shutdown.borrow() {
                for provider in providers().iter().filter(|provider| provider.enabled) {
                    self.refresh_if_due(provider).await;
                }
                tokio::select! {
                    () = tokio::time::sleep(tick) => {}
                    changed = shutdown.changed() => {
                        if changed.is_err() {
                            break;
                        }
                    }
                }
            }
            info!("JWKS refresher stopped");
        })
    }

    /// Cache figures of every provider seen since start, ordered by provider id.
    pub fn health(&self) -> Vec<JwksHealth> {
        let mut slots: Vec<(i64, Arc<ProviderSlot>)> = self
            .slots
            .read()
            .iter()
            .map(|(id, slot)| (*id, Arc::clone(slot)))
            .collect();
        slots.sort_unstable_by_key(|(id, _)| *id);
        slots
            .iter()
            .map(|(id, slot)| slot_health(*id, slot))
            .collect()
    }

    /// HTTP requests sent for a provider since start or since [`Self::forget`].
    pub fn http_request_count(&self, provider_id: i64) -> u64 {
        self.slots
            .read()
            .get(&provider_id)
            .map_or(0, |slot| slot.http_requests.load(Ordering::Relaxed))
    }

    // Lookup and refresh decisions.

    fn slot(&self, provider_id: i64) -> Arc<ProviderSlot> {
        if let Some(slot) = self.slots.read().get(&provider_id) {
            return Arc::clone(slot);
        }
        Arc::clone(self.slots.write().entry(provider_id).or_default())
    }

    fn usable_set(&self, slot: &ProviderSlot, provider: &Provider) -> Option<Arc<CachedSet>> {
        let state = slot.state.read();
        let set = state.cached.as_ref()?;
        let usable = set.source.matches(provider) && Utc::now() < set.usable_until(&self.settings);
        usable.then(|| Arc::clone(set))
    }

    fn lookup(&self, slot: &ProviderSlot, request: &KeyRequest<'_>) -> Lookup {
        let Some(set) = self.usable_set(slot, request.provider) else {
            return Lookup::Miss(None);
        };
        match select_key(&set.keys, request.kid, request.alg) {
            Ok(key) if Utc::now() < set.expires_at => Lookup::Fresh(Arc::clone(key)),
            Ok(key) => Lookup::Stale(Arc::clone(key)),
            Err(error) if error.may_resolve_after_refresh() => Lookup::Miss(Some(error)),
            Err(error) => Lookup::Rejected(error),
        }
    }

    /// Refreshes an expired set that still contains the key, at most once per cooldown, and
    /// falls back to the stale key when the refresh is skipped or fails. `seen_fetches` is the
    /// slot's completed fetch count before the caller's lookup.
    async fn revalidate(
        &self,
        slot: &ProviderSlot,
        request: &KeyRequest<'_>,
        stale_key: Arc<Key>,
        seen_fetches: u64,
    ) -> Result<Arc<Key>, JwksError> {
        let cooldown = self.settings.cooldown();
        if slot.in_cooldown(cooldown) {
            return Ok(stale_key);
        }
        let _flight = slot.fetch_lock.lock().await;
        let fetched_meanwhile = slot.completed_fetches.load(Ordering::Acquire) != seen_fetches;
        match self.lookup(slot, request) {
            Lookup::Fresh(key) => return Ok(key),
            Lookup::Stale(key) if fetched_meanwhile || slot.in_cooldown(cooldown) => {
                return Ok(key);
            }
            Lookup::Stale(_) => {}
            Lookup::Rejected(error) => return Err(error.into()),
            Lookup::Miss(miss) => return Err(slot.miss_error(request.provider.id, miss)),
        }
        if !self.take_refresh_budget(request.provider.id) {
            return Ok(stale_key);
        }
        match self.fetch_and_store(request.provider, slot).await {
            Ok(set) => request.select_from(&set),
            Err(_) => Ok(stale_key),
        }
    }

    /// Handles a key the cache does not have: one fetch shared by concurrent callers, unless
    /// the cooldown or the refresh budget forbids it. `seen_fetches` is the slot's completed
    /// fetch count before the caller's lookup.
    async fn refresh_on_miss(
        &self,
        slot: &ProviderSlot,
        request: &KeyRequest<'_>,
        miss: Option<KeySelectError>,
        seen_fetches: u64,
    ) -> Result<Arc<Key>, JwksError> {
        let provider_id = request.provider.id;
        let cooldown = self.settings.cooldown();
        // Fail without waiting when no running fetch could bring the key.
        if slot.in_cooldown(cooldown) && !slot.fetching.load(Ordering::Acquire) {
            debug!(
                provider_id,
                "key not cached and the JWKS fetch cooldown is running"
            );
            return Err(slot.miss_error(provider_id, miss));
        }

        let _flight = slot.fetch_lock.lock().await;
        let miss = match self.lookup(slot, request) {
            Lookup::Fresh(key) | Lookup::Stale(key) => return Ok(key),
            Lookup::Rejected(error) => return Err(error.into()),
            Lookup::Miss(miss) => miss,
        };
        let fetched_meanwhile = slot.completed_fetches.load(Ordering::Acquire) != seen_fetches;
        if fetched_meanwhile || slot.in_cooldown(cooldown) {
            return Err(slot.miss_error(provider_id, miss));
        }
        if !self.take_refresh_budget(provider_id) {
            return Err(match miss {
                Some(error) if !slot.last_attempt_failed() => error.into(),
                _ => JwksError::RefreshLimited {
                    provider_id,
                    limit: self.settings.max_refreshes_per_minute,
                },
            });
        }

        match self.fetch_and_store(request.provider, slot).await {
            Ok(set) => request.select_from(&set),
            Err(error) => Err(JwksError::Unavailable {
                provider_id,
                detail: error_chain(&error),
            }),
        }
    }

    fn take_refresh_budget(&self, provider_id: i64) -> bool {
        let granted = self.refresh_budget.lock().try_take();
        if !granted {
            warn!(
                provider_id,
                limit = self.settings.max_refreshes_per_minute,
                "JWKS fetch skipped: the global limit of fetches per minute is reached"
            );
        }
        granted
    }

    async fn refresh_if_due(&self, provider: &Provider) {
        let slot = self.slot(provider.id);
        let cooldown = self.settings.cooldown();
        if !self.is_due(&slot, provider) || slot.in_cooldown(cooldown) {
            return;
        }
        let _flight = slot.fetch_lock.lock().await;
        if !self.is_due(&slot, provider) || slot.in_cooldown(cooldown) {
            return;
        }
        if self.take_refresh_budget(provider.id) {
            // A failure is logged and recorded by the fetch; the cached set keeps serving.
            let _ = self.fetch_and_store(provider, &slot).await;
        }
    }

    /// Whether a provider has no usable set or its set expires within `refresh_ahead_secs`.
    fn is_due(&self, slot: &ProviderSlot, provider: &Provider) -> bool {
        self.usable_set(slot, provider).is_none_or(|set| {
            add_secs(Utc::now(), self.settings.refresh_ahead_secs) >= set.expires_at
        })
    }

    // Fetching and storing.

    /// Fetches the provider's set, installs it (or records the failure) and persists the
    /// outcome. The caller holds the slot's fetch lock.
    async fn fetch_and_store(
        &self,
        provider: &Provider,
        slot: &ProviderSlot,
    ) -> Result<Arc<CachedSet>, FetchError> {
        slot.state.write().last_attempt = Some(Instant::now());
        let fetched = {
            let _running = RunningFetch::start(slot);
            self.fetch(provider, slot).await
        };
        match fetched {
            Ok(fetched) => Ok(self.install(provider, slot, fetched).await),
            Err(error) => {
                self.record_failure(provider, slot, &error).await;
                Err(error)
            }
        }
    }

    async fn fetch(
        &self,
        provider: &Provider,
        slot: &ProviderSlot,
    ) -> Result<FetchedSet, FetchError> {
        let url = self.key_set_url(provider, slot).await?;
        let (body, headers) = self.get_capped(&url, slot).await?;
        let keys =
            parse_jwks(&body, self.settings.max_keys).map_err(|source| FetchError::Jwks {
                url: url.to_string(),
                source,
            })?;
        // parse_jwks accepted the bytes as UTF-8, so the lossy conversion copies them as is.
        let document = String::from_utf8_lossy(&body).into_owned();
        Ok(FetchedSet {
            keys,
            document,
            url,
            max_age: cache_max_age(&headers),
        })
    }

    /// The configured `jwks_uri`, else the one discovered from the issuer (cached per slot).
    async fn key_set_url(
        &self,
        provider: &Provider,
        slot: &ProviderSlot,
    ) -> Result<Url, FetchError> {
        if let Some(configured) = &provider.jwks_uri {
            return self.check_url(configured);
        }
        let discovered = slot.state.read().discovered.clone();
        let for_this_issuer = discovered.filter(|(issuer, _)| *issuer == provider.issuer);
        if let Some((_, url)) = for_this_issuer {
            return Ok(url);
        }
        let url = self.discover(provider, slot).await?;
        slot.state.write().discovered = Some((provider.issuer.clone(), url.clone()));
        Ok(url)
    }

    /// Reads the issuer's metadata (OIDC Discovery first, then RFC 8414) and returns
    /// its `jwks_uri`. A document whose `issuer` differs from the configured one is discarded.
    async fn discover(&self, provider: &Provider, slot: &ProviderSlot) -> Result<Url, FetchError> {
        let issuer = &provider.issuer;
        let candidates = self.discovery_urls(issuer)?;
        let mut failures = Vec::new();
        for candidate in candidates {
            match self.fetch_metadata(&candidate, issuer, slot).await {
                Ok(url) => return Ok(url),
                Err(error) => failures.push(format!("{candidate}: {error}")),
            }
        }
        Err(FetchError::Discovery {
            issuer: issuer.clone(),
            detail: failures.join("; "),
        })
    }

    fn discovery_urls(&self, issuer: &str) -> Result<[Url; 2], FetchError> {
        let issuer_url = self.check_url(issuer)?;
        if issuer_url.query().is_some() || issuer_url.fragment().is_some() {
            return Err(FetchError::UrlRejected {
                url: issuer.to_owned(),
                reason: "an issuer must not contain a query or fragment",
            });
        }
        let path = issuer_url.path().trim_end_matches('/').to_owned();

        let mut openid = issuer_url.clone();
        openid.set_path(&format!("{path}/.well-known/openid-configuration"));
        let mut oauth = issuer_url;
        oauth.set_path(&format!("/.well-known/oauth-authorization-server{path}"));
        Ok([openid, oauth])
    }

    async fn fetch_metadata(
        &self,
        url: &Url,
        issuer: &str,
        slot: &ProviderSlot,
    ) -> Result<Url, String> {
        let (body, _) = self
            .get_capped(url, slot)
            .await
            .map_err(|error| error_chain(&error))?;
        let metadata: Value =
            serde_json::from_slice(&body).map_err(|error| format!("not JSON: {error}"))?;
        match metadata.get("issuer").and_then(Value::as_str) {
            Some(found) if found == issuer => {}
            Some(found) => {
                return Err(format!("issuer {found:?} does not match the configuration"));
            }
            None => return Err("no issuer member".to_owned()),
        }
        let jwks_uri = metadata
            .get("jwks_uri")
            .and_then(Value::as_str)
            .ok_or_else(|| "no jwks_uri member".to_owned())?;
        self.check_url(jwks_uri).map_err(|error| error.to_string())
    }

    fn check_url(&self, text: &str) -> Result<Url, FetchError> {
        check_url(text, self.settings.allow_http_loopback)
    }

    /// Sends a GET and reads a 200 response body of at most `max_bytes`.
    async fn get_capped(
        &self,
        url: &Url,
        slot: &ProviderSlot,
    ) -> Result<(Vec<u8>, HeaderMap), FetchError> {
        let request_error = |source| FetchError::Request {
            url: url.to_string(),
            source,
        };
        let too_large = || FetchError::TooLarge {
            url: url.to_string(),
            max: self.settings.max_bytes,
        };

        slot.http_requests.fetch_add(1, Ordering::Relaxed);
        let mut response = self
            .http
            .get(url.clone())
            .header(ACCEPT, ACCEPT_JSON)
            .send()
            .await
            .map_err(request_error)?;
        if response.status() != StatusCode::OK {
            let status = response.status().as_u16();
            return Err(FetchError::Status {
                url: url.to_string(),
                status,
            });
        }
        let max = self.settings.max_bytes;
        if response
            .content_length()
            .is_some_and(|len| len > max as u64)
        {
            return Err(too_large());
        }

        let mut body = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(request_error)? {
            if body.len() + chunk.len() > max {
                return Err(too_large());
            }
            body.extend_from_slice(&chunk);
        }
        Ok((body, response.headers().clone()))
    }

    /// Replaces the provider's set with a fetched one and persists it; the audit event is
    /// written only when the keys differ from the previous set.
    async fn install(
        &self,
        provider: &Provider,
        slot: &ProviderSlot,
        fetched: FetchedSet,
    ) -> Arc<CachedSet> {
        let fetched_at = Utc::now();
        let ttl_secs = self.settings.ttl_secs(fetched.max_age);
        let set = Arc::new(CachedSet {
            keys: fetched.keys,
            document: fetched.document,
            source: SetSource::of(provider),
            fetched_from: Some(fetched.url.to_string()),
            fetched_at,
            expires_at: add_secs(fetched_at, ttl_secs),
        });

        let changed = {
            let mut state = slot.state.write();
            let changed = state
                .cached
                .as_ref()
                .is_none_or(|old| old.keys.fingerprints() != set.keys.fingerprints());
            state.cached = Some(Arc::clone(&set));
            state.last_error = None;
            state.last_error_at = None;
            state.last_attempt_failed = false;
            changed
        };
        debug!(provider_id = provider.id, url = %fetched.url, ttl_secs, "JWKS fetched");
        if changed {
            log_new_set(provider.id, &set);
        }
        self.persist(provider.id, slot, changed).await;
        set
    }

    async fn record_failure(&self, provider: &Provider, slot: &ProviderSlot, error: &FetchError) {
        let detail = error_chain(error);
        let serving_stale = {
            let mut state = slot.state.write();
            state.last_error = Some(detail.clone());
            state.last_error_at = Some(Utc::now());
            state.last_attempt_failed = true;
            // Discovery runs again next time, in case the metadata moved the key set.
            state.discovered = None;
            state.cached.is_some()
        };
        warn!(
            provider_id = provider.id,
            issuer = %provider.issuer,
            reason = error.reason_code(),
            error = %detail,
            serving_stale,
            "JWKS fetch failed"
        );
        self.persist(provider.id, slot, false).await;
    }

    /// Saves the slot's current state. A store failure is logged and otherwise ignored,
    /// because the memory cache stays correct.
    async fn persist(&self, provider_id: i64, slot: &ProviderSlot, key_set_changed: bool) {
        let entry = cache_entry(provider_id, &slot.state.read());
        let audit = key_set_changed.then(|| cache_updated_event(provider_id, entry.key_count));
        if let Err(error) = self.store.save_jwks(&entry, audit.as_ref()).await {
            warn!(provider_id, error = %error_chain(&error), "saving the JWKS cache entry failed");
        }
    }

    /// Installs a stored entry; returns whether it held a usable document.
    fn restore_entry(&self, provider: &Provider, entry: JwksCacheEntry) -> bool {
        let slot = self.slot(provider.id);
        let mut state = slot.state.write();
        state.last_error = entry.last_error;
        state.last_error_at = entry.last_error_at;
        let Some(document) = entry.jwks_json else {
            return false;
        };
        let keys = match parse_jwks(document.as_bytes(), self.settings.max_keys) {
            Ok(keys) => keys,
            Err(error) => {
                warn!(provider_id = provider.id, %error, "stored JWKS is invalid; ignoring it");
                return false;
            }
        };
        let now = Utc::now();
        state.cached = Some(Arc::new(CachedSet {
            keys,
            document,
            source: SetSource::of(provider),
            fetched_from: None,
            fetched_at: entry.fetched_at.unwrap_or(now),
            expires_at: entry.expires_at.unwrap_or(now),
        }));
        true
    }
}

fn build_http_client(settings: &JwksSettings) -> Result<reqwest::Client, reqwest::Error> {
    let timeout = Duration::from_secs(settings.fetch_timeout_secs);
    // reqwest keeps no cookies unless its `cookies` feature is on, and it is off here.
    reqwest::Client::builder()
        .timeout(timeout)
        .connect_timeout(timeout)
        .redirect(same_origin_redirects())
        .referer(false)
        .user_agent(concat!("xaa/", env!("CARGO_PKG_VERSION")))
        .build()
}

/// Follows at most [`MAX_REDIRECTS`] redirects, each to the origin of the first URL.
fn same_origin_redirects() -> reqwest::redirect::Policy {
    reqwest::redirect::Policy::custom(|attempt| {
        // `previous` lists the URLs requested so far, the original one first.
        let previous = attempt.previous();
        if previous.len() > MAX_REDIRECTS {
            return attempt.error(format!("more than {MAX_REDIRECTS} redirects"));
        }
        let same_origin = previous
            .first()
            .is_some_and(|first| first.origin() == attempt.url().origin());
        if same_origin {
            attempt.follow()
        } else {
            attempt.error("redirect to another origin is not followed")
        }
    })
}

/// Accepts `https` URLs, and `http` URLs on a loopback host when `allow_http_loopback` is set.
fn check_url(text: &str, allow_http_loopback: bool) -> Result<Url, FetchError> {
    let reject = |reason| FetchError::UrlRejected {
        url: text.to_owned(),
        reason,
    };
    let url = Url::parse(text).map_err(|_| reject("not an absolute URL"))?;
    if !url.username().is_empty() || url.password().is_some() {
        return Err(reject("URLs with credentials are not fetched"));
    }
    match url.scheme() {
        "https" => Ok(url),
        "http" if allow_http_loopback && is_loopback_host(&url) => Ok(url),
        "http" => Err(reject(
            "http is accepted only for loopback hosts, else use https",
        )),
        _ => Err(reject("the scheme must be https")),
    }
}

fn is_loopback_host(url: &Url) -> bool {
    match url.host() {
        Some(Host::Ipv4(ip)) => IpAddr::V4(ip).is_loopback(),
        Some(Host::Ipv6(ip)) => IpAddr::V6(ip).is_loopback(),
        Some(Host::Domain(domain)) => domain.eq_ignore_ascii_case("localhost"),
        None => false,
    }
}

/// The `max-age` directive of `Cache-Control`, in seconds.
fn cache_max_age(headers: &HeaderMap) -> Option<u64> {
    headers
        .get_all(CACHE_CONTROL)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .filter_map(|directive| directive.trim().split_once('='))
        .find(|(name, _)| name.trim().eq_ignore_ascii_case("max-age"))
        .and_then(|(_, value)| value.trim().trim_matches('"').parse().ok())
}

fn add_secs(at: DateTime<Utc>, secs: u64) -> DateTime<Utc> {
    let delta = i64::try_from(secs)
        .ok()
        .and_then(TimeDelta::try_seconds)
        .unwrap_or(TimeDelta::MAX);
    at.checked_add_signed(delta)
        .unwrap_or(DateTime::<Utc>::MAX_UTC)
}

fn log_new_set(provider_id: i64, set: &CachedSet) {
    info!(
        provider_id,
        key_count = set.keys.len(),
        skipped = set.keys.skipped().len(),
        expires_at = %set.expires_at,
        "JWKS key set changed"
    );
    for skipped in set.keys.skipped() {
        warn!(provider_id, key = %skipped, "JWKS key skipped");
    }
}

fn cache_entry(provider_id: i64, state: &SlotState) -> JwksCacheEntry {
    let cached = state.cached.as_deref();
    JwksCacheEntry {
        idp_provider_id: provider_id,
        jwks_json: cached.map(|set| set.document.clone()),
        key_count: cached.map_or(0, |set| i64::try_from(set.keys.len()).unwrap_or(i64::MAX)),
        fetched_at: cached.map(|set| set.fetched_at),
        expires_at: cached.map(|set| set.expires_at),
        last_error: state.last_error.clone(),
        last_error_at: state.last_error_at,
    }
}

fn cache_updated_event(provider_id: i64, key_count: i64) -> NewAuditEvent {
    let mut fields = serde_json::Map::new();
    fields.insert("idp_provider_id".to_owned(), provider_id.into());
    fields.insert("key_count".to_owned(), key_count.into());
    NewAuditEvent {
        event_type: AuditEventType::XaaJwksCacheUpdated,
        actor: "system".to_owned(),
        proxy_id: None,
        idp_provider_id: Some(provider_id),
        reason_code: None,
        fields,
    }
}

fn slot_health(provider_id: i64, slot: &ProviderSlot) -> JwksHealth {
    let state = slot.state.read();
    let cached = state.cached.as_deref();
    JwksHealth {
        provider_id,
        key_count: cached.map_or(0, |set| set.keys.len()),
        jwks_uri: cached.and_then(|set| set.fetched_from.clone()),
        fetched_at: cached.map(|set| set.fetched_at),
        expires_at: cached.map(|set| set.expires_at),
        last_error: state.last_error.clone(),
        last_error_at: state.last_error_at,
        skipped_keys: cached
            .map(|set| set.keys.skipped().iter().map(ToString::to_string).collect())
            .unwrap_or_default(),
        http_requests: slot.http_requests.load(Ordering::Relaxed),
    }
}
