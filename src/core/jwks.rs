//! The per-provider cache of the JWK sets of trusted identity providers.
//!
//! [`JwksCache`] owns every network fetch of key material. It locates a provider's key set
//! through the configured `jwks_uri` or discovery from the issuer. It fetches the set over
//! HTTPS with a timeout, a size cap and same-origin redirects only, and keeps it in memory for
//! a TTL taken from `Cache-Control: max-age`. The hot path ([`JwksCache::key_for`]) answers from memory while
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

use crate::core::jose::{
    JoseError, Key, KeySelectError, KeySet, excerpt, parse_jwks, redact_private_keys, select_key,
};
use crate::core::model::{AuditEventType, JwksCacheEntry, NewAuditEvent, Provider};
use crate::core::store::Store;

/// Redirects followed per request, all within the origin of the requested URL.
const MAX_REDIRECTS: usize = 3;

/// `Accept` header of key set and metadata requests.
const ACCEPT_JSON: &str = "application/jwk-set+json, application/json;q=0.9";

/// Maximum interval between two passes of the background refresher.
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
    /// Minimum key set lifetime in seconds. A smaller `max-age` is raised to it.
    pub min_ttl_secs: u64,
    /// Maximum key set lifetime in seconds. A larger `max-age` is lowered to it.
    pub max_ttl_secs: u64,
    /// Minimum time in seconds between two fetches for one provider. Inside it an unknown
    /// `kid` fails at once, without a network request.
    pub unknown_kid_cooldown_secs: u64,
    /// Timeout in seconds of one HTTP request, from connecting to the end of the body.
    pub fetch_timeout_secs: u64,
    /// Maximum size in bytes of a key set or discovery document.
    pub max_bytes: usize,
    /// Maximum number of keys in a key set. A larger set is rejected as a whole.
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

/// Error of one key set or metadata fetch.
#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    #[error("URL {url:?} is not allowed: {reason}")]
    UrlRejected { url: String, reason: &'static str },
    /// The request failed before a response arrived, or a redirect was refused. `detail` is
    /// the reqwest error with its causes.
    #[error("request to {url} failed: {detail}")]
    Request { url: String, detail: String },
    #[error("{url} returned HTTP {status}, but only 200 is accepted")]
    Status { url: String, status: u16 },
    #[error("{url} returned more than the maximum of {max} bytes")]
    TooLarge { url: String, max: usize },
    #[error("{url} returned an invalid key set: {error}")]
    Jwks { url: String, error: JoseError },
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
            Self::Jwks { error, .. } => error.reason_code(),
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
    #[error("JWKS refresh of provider {provider_id} failed: {error}")]
    Fetch { provider_id: i64, error: FetchError },
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
            Self::Fetch { error, .. } => error.reason_code(),
            Self::Settings(_) | Self::Client(_) => "jwks_setup_failed",
        }
    }

    /// Returns true when the error means that the keys could not be checked (HTTP 503
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

/// The provider configuration a slot serves. When a provider's issuer or `jwks_uri` changes,
/// its slot is replaced, so a set never serves a configuration it was not fetched for.
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
    /// The URL the set was fetched from, or `None` for a set restored from the store.
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
    /// Key set URL from the issuer's metadata.
    discovered: Option<Url>,
    last_error: Option<String>,
    last_error_at: Option<DateTime<Utc>>,
    /// Start of the latest fetch, successful or not. The cooldown counts from here.
    last_attempt: Option<Instant>,
    last_attempt_failed: bool,
}

/// One provider's entry in the cache.
#[derive(Debug)]
struct ProviderSlot {
    source: SetSource,
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
    fn new(provider: &Provider) -> Self {
        Self {
            source: SetSource::of(provider),
            state: RwLock::default(),
            fetch_lock: tokio::sync::Mutex::new(()),
            fetching: AtomicBool::new(false),
            completed_fetches: AtomicU64::new(0),
            http_requests: AtomicU64::new(0),
        }
    }

    /// Builds the error for a key that is not cached when no fetch may run. After a failed fetch, or
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

/// The key requested from [`JwksCache::key_for`].
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
    /// URL of the latest successful fetch, or `None` before one and for a restored set.
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

/// A sink that receives every audit event the cache has stored.
pub type AuditMirror = Arc<dyn Fn(&NewAuditEvent) + Send + Sync>;

/// Per-provider JWKS cache, shared through an `Arc`.
pub struct JwksCache {
    settings: JwksSettings,
    http: reqwest::Client,
    store: Arc<dyn Store>,
    slots: RwLock<HashMap<i64, Arc<ProviderSlot>>>,
    refresh_budget: Mutex<RefreshBudget>,
    /// Where stored audit events are mirrored (the audit log file), when set.
    audit_mirror: RwLock<Option<AuditMirror>>,
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
            audit_mirror: RwLock::new(None),
        })
    }

    /// Mirrors every audit event this cache stores to `mirror` as well (the audit log file).
    pub fn set_audit_mirror(&self, mirror: AuditMirror) {
        *self.audit_mirror.write() = Some(mirror);
    }

    pub fn settings(&self) -> &JwksSettings {
        &self.settings
    }

    /// Returns the key that verifies a token of `provider` with this `kid` and `alg`.
    ///
    /// A fresh cached set returns the key without network I/O. A `kid` the set lacks (or, without a
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
        let slot = self.slot_for(provider);
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
        let slot = self.slot_for(provider);
        let _flight = slot.fetch_lock.lock().await;
        let set = self
            .fetch_and_store(provider, &slot)
            .await
            .map_err(|error| JwksError::Fetch {
                provider_id: provider.id,
                error,
            })?;
        Ok(set.keys.len())
    }

    /// Drops everything cached for a provider, e.g. after it was deleted. A changed issuer or
    /// `jwks_uri` also resets the provider's entry at its next lookup, without this call.
    ///
    /// NOTE: the stored copy stays until the next fetch overwrites it (or the provider's
    /// deletion removes it), so [`Self::load_persisted`] after a restart restores the old set
    /// under the new configuration until it expires.
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

    /// Returns the provider's slot. A slot made for another issuer or `jwks_uri` is replaced, which
    /// drops its set, cooldown and discovered URL.
    fn slot_for(&self, provider: &Provider) -> Arc<ProviderSlot> {
        if let Some(slot) = self.slots.read().get(&provider.id)
            && slot.source.matches(provider)
        {
            return Arc::clone(slot);
        }
        let mut slots = self.slots.write();
        let slot = slots
            .entry(provider.id)
            .or_insert_with(|| Arc::new(ProviderSlot::new(provider)));
        if !slot.source.matches(provider) {
            info!(
                provider_id = provider.id,
                "provider key set location changed; cache reset"
            );
            *slot = Arc::new(ProviderSlot::new(provider));
        }
        Arc::clone(slot)
    }

    /// Returns the cached set unless it is older than its stale-if-error window.
    fn usable_set(&self, slot: &ProviderSlot) -> Option<Arc<CachedSet>> {
        let state = slot.state.read();
        let set = state.cached.as_ref()?;
        (Utc::now() < set.usable_until(&self.settings)).then(|| Arc::clone(set))
    }

    fn lookup(&self, slot: &ProviderSlot, request: &KeyRequest<'_>) -> Lookup {
        let Some(set) = self.usable_set(slot) else {
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
        let slot = self.slot_for(provider);
        let cooldown = self.settings.cooldown();
        if !self.is_due(&slot) || slot.in_cooldown(cooldown) {
            return;
        }
        let _flight = slot.fetch_lock.lock().await;
        if !self.is_due(&slot) || slot.in_cooldown(cooldown) {
            return;
        }
        if self.take_refresh_budget(provider.id) {
            // The fetch logs and records a failure, and the cached set keeps serving.
            let _ = self.fetch_and_store(provider, &slot).await;
        }
    }

    /// Returns true when the slot has no usable set or its set expires within
    /// `refresh_ahead_secs`.
    fn is_due(&self, slot: &ProviderSlot) -> bool {
        self.usable_set(slot).is_none_or(|set| {
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
        let keys = parse_jwks(&body, self.settings.max_keys).map_err(|error| FetchError::Jwks {
            url: url.to_string(),
            error,
        })?;
        // parse_jwks accepted the bytes as UTF-8, so the lossy conversion copies them as is.
        let document = String::from_utf8_lossy(&body).into_owned();
        let document = redact_private_keys(&document).unwrap_or(document);
        Ok(FetchedSet {
            keys,
            document,
            url,
            max_age: cache_max_age(&headers),
        })
    }

    /// Returns the configured `jwks_uri`, else the one discovered from the issuer (cached per
    /// slot).
    async fn key_set_url(
        &self,
        provider: &Provider,
        slot: &ProviderSlot,
    ) -> Result<Url, FetchError> {
        if let Some(configured) = &provider.jwks_uri {
            return self.check_url(configured);
        }
        let discovered = slot.state.read().discovered.clone();
        if let Some(url) = discovered {
            return Ok(url);
        }
        let url = self.discover(provider, slot).await?;
        slot.state.write().discovered = Some(url.clone());
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
                let found = excerpt(found);
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
        let request_error = |error: reqwest::Error| FetchError::Request {
            url: url.to_string(),
            detail: error_chain(&error),
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

    /// Replaces the provider's set with a fetched one and persists it. The audit event is written
    /// only when the keys differ from the previous set.
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
            return;
        }
        let mirror = self.audit_mirror.read().clone();
        if let (Some(event), Some(mirror)) = (&audit, mirror) {
            mirror(event);
        }
    }

    /// Installs a stored entry and returns whether it contained a usable document.
    fn restore_entry(&self, provider: &Provider, entry: JwksCacheEntry) -> bool {
        let slot = self.slot_for(provider);
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

/// Parses the `max-age` directive of `Cache-Control`, in seconds.
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

#[cfg(test)]
mod tests {
    use std::net::SocketAddr;
    use std::sync::atomic::{AtomicU16, AtomicUsize};

    use axum::Router;
    use axum::extract::{Path, State};
    use axum::http::{HeaderValue, StatusCode as HttpStatus, header};
    use axum::response::{IntoResponse, Response};
    use axum::routing::get;
    use base64::Engine;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use serde_json::json;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpListener;

    use super::*;
    use crate::core::model::{AuditQuery, ProviderKind, ReplayPolicy};
    use crate::core::store::ProviderRow;
    use crate::core::store::sqlite::SqliteStore;

    /// A test identity provider whose key set, status and `Cache-Control` the test changes.
    struct Idp {
        jwks: parking_lot::Mutex<String>,
        status: AtomicU16,
        cache_control: parking_lot::Mutex<Option<String>>,
        delay: parking_lot::Mutex<Duration>,
        metadata: parking_lot::Mutex<Option<Value>>,
        jwks_requests: AtomicUsize,
        redirect_to: parking_lot::Mutex<String>,
    }

    impl Idp {
        fn new(kids: &[&str]) -> Arc<Self> {
            Arc::new(Self {
                jwks: parking_lot::Mutex::new(jwks_document(kids)),
                status: AtomicU16::new(200),
                cache_control: parking_lot::Mutex::new(None),
                delay: parking_lot::Mutex::new(Duration::ZERO),
                metadata: parking_lot::Mutex::new(None),
                jwks_requests: AtomicUsize::new(0),
                redirect_to: parking_lot::Mutex::new(String::new()),
            })
        }

        fn serve_keys(&self, kids: &[&str]) {
            *self.jwks.lock() = jwks_document(kids);
        }

        fn requests(&self) -> usize {
            self.jwks_requests.load(Ordering::SeqCst)
        }
    }

    /// Builds an RSA public JWK with a made-up 2048-bit modulus, which is enough because the
    /// cache never verifies signatures.
    fn rsa_jwk(kid: &str) -> Value {
        json!({"kty": "RSA", "kid": kid, "n": URL_SAFE_NO_PAD.encode([0xC3; 256]), "e": "AQAB"})
    }

    fn jwks_document(kids: &[&str]) -> String {
        let keys: Vec<Value> = kids.iter().map(|kid| rsa_jwk(kid)).collect();
        json!({ "keys": keys }).to_string()
    }

    async fn jwks_route(State(idp): State<Arc<Idp>>) -> Response {
        idp.jwks_requests.fetch_add(1, Ordering::SeqCst);
        let delay = *idp.delay.lock();
        tokio::time::sleep(delay).await;
        let status = HttpStatus::from_u16(idp.status.load(Ordering::SeqCst)).unwrap();
        let mut response = (status, idp.jwks.lock().clone()).into_response();
        if let Some(value) = idp.cache_control.lock().clone() {
            let value = HeaderValue::from_str(&value).unwrap();
            response.headers_mut().insert(header::CACHE_CONTROL, value);
        }
        response
    }

    async fn metadata_route(State(idp): State<Arc<Idp>>) -> Response {
        match idp.metadata.lock().clone() {
            Some(metadata) => axum::Json(metadata).into_response(),
            None => HttpStatus::NOT_FOUND.into_response(),
        }
    }

    async fn moved_route(State(idp): State<Arc<Idp>>) -> Response {
        let location = idp.redirect_to.lock().clone();
        (HttpStatus::FOUND, [(header::LOCATION, location)]).into_response()
    }

    /// `/hop/{n}` redirects to `/hop/{n-1}`, and `/hop/0` to `/jwks`: `n + 1` redirects.
    async fn hop_route(Path(remaining): Path<u32>) -> Response {
        let location = if remaining == 0 {
            "/jwks".to_owned()
        } else {
            format!("/hop/{}", remaining - 1)
        };
        (HttpStatus::FOUND, [(header::LOCATION, location)]).into_response()
    }

    async fn serve(idp: &Arc<Idp>) -> SocketAddr {
        let router = Router::new()
            .route("/jwks", get(jwks_route))
            .route("/.well-known/openid-configuration", get(metadata_route))
            .route(
                "/.well-known/oauth-authorization-server/tenant",
                get(metadata_route),
            )
            .route("/moved", get(moved_route))
            .route("/hop/{remaining}", get(hop_route))
            .with_state(Arc::clone(idp));
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
        address
    }

    /// Serves one chunked response without `Content-Length` to every connection.
    async fn serve_chunked(chunk: Vec<u8>, chunk_count: usize) -> SocketAddr {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        tokio::spawn(async move {
            while let Ok((mut stream, _)) = listener.accept().await {
                let chunk = chunk.clone();
                tokio::spawn(async move {
                    let mut request = [0_u8; 4096];
                    let _ = stream.read(&mut request).await;
                    let head = "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n\
                                transfer-encoding: chunked\r\n\r\n";
                    if stream.write_all(head.as_bytes()).await.is_err() {
                        return;
                    }
                    for _ in 0..chunk_count {
                        let framed =
                            [format!("{:x}\r\n", chunk.len()).as_bytes(), &chunk, b"\r\n"].concat();
                        if stream.write_all(&framed).await.is_err() {
                            return;
                        }
                    }
                    let _ = stream.write_all(b"0\r\n\r\n").await;
                });
            }
        });
        address
    }

    struct Fixture {
        _dir: tempfile::TempDir,
        store: Arc<SqliteStore>,
    }

    impl Fixture {
        async fn new() -> Self {
            let dir = tempfile::tempdir().unwrap();
            let url = format!("sqlite://{}", dir.path().join("xaa.db").display());
            let store = Arc::new(SqliteStore::open(&url).await.unwrap());
            Self { _dir: dir, store }
        }

        async fn provider(&self, issuer: &str, jwks_uri: Option<String>) -> Provider {
            let row = ProviderRow {
                name: issuer.to_owned(),
                kind: ProviderKind::Oidc,
                issuer: issuer.to_owned(),
                jwks_uri,
                enabled: true,
                allowed_algs: vec!["RS256".to_owned()],
                replay_policy: ReplayPolicy::SingleUse,
                leeway_secs: 60,
                max_lifetime_secs: 600,
            };
            self.store.create_provider(&row).await.unwrap()
        }

        async fn provider_at(&self, address: SocketAddr) -> Provider {
            let issuer = format!("http://{address}");
            self.provider(&issuer, Some(format!("http://{address}/jwks")))
                .await
        }

        fn cache(&self, settings: JwksSettings) -> Arc<JwksCache> {
            let store: Arc<dyn Store> = self.store.clone();
            Arc::new(JwksCache::new(settings, store).unwrap())
        }

        async fn cache_updates(&self, provider_id: i64) -> usize {
            let query = AuditQuery {
                event_type: Some(AuditEventType::XaaJwksCacheUpdated),
                idp_provider_id: Some(provider_id),
                ..AuditQuery::default()
            };
            self.store.query_audit(&query).await.unwrap().len()
        }
    }

    /// Settings whose sets expire at once and whose cooldown never blocks a fetch.
    fn expiring_settings() -> JwksSettings {
        JwksSettings {
            min_ttl_secs: 0,
            unknown_kid_cooldown_secs: 0,
            ..JwksSettings::default()
        }
    }

    async fn key_for(
        cache: &JwksCache,
        provider: &Provider,
        kid: &str,
    ) -> Result<Arc<Key>, JwksError> {
        cache.key_for(provider, Some(kid), Algorithm::RS256).await
    }

    fn ttl_of(cache: &JwksCache, provider_id: i64) -> i64 {
        let health = cache
            .health()
            .into_iter()
            .find(|h| h.provider_id == provider_id)
            .unwrap();
        (health.expires_at.unwrap() - health.fetched_at.unwrap()).num_seconds()
    }

    // Settings and pure helpers.

    #[test]
    fn settings_defaults_and_partial_table() {
        let settings: JwksSettings = toml::from_str("max_keys = 10").unwrap();
        assert_eq!(settings.max_keys, 10);
        assert_eq!(settings.default_ttl_secs, 600);
        assert_eq!(settings.unknown_kid_cooldown_secs, 30);
        assert!(settings.allow_http_loopback);
        assert!(toml::from_str::<JwksSettings>("max_key = 10").is_err());
        assert!(JwksSettings::default().validate().is_ok());

        let inverted = JwksSettings {
            min_ttl_secs: 10,
            max_ttl_secs: 5,
            ..Default::default()
        };
        assert_eq!(inverted.validate().unwrap_err().field, "min_ttl_secs");
        let no_timeout = JwksSettings {
            fetch_timeout_secs: 0,
            ..Default::default()
        };
        assert_eq!(
            no_timeout.validate().unwrap_err().field,
            "fetch_timeout_secs"
        );
    }

    #[test]
    fn ttl_clamps_max_age() {
        let settings = JwksSettings::default();
        assert_eq!(settings.ttl_secs(None), 600);
        assert_eq!(settings.ttl_secs(Some(1000)), 1000);
        assert_eq!(settings.ttl_secs(Some(10)), 300);
        assert_eq!(settings.ttl_secs(Some(10_000_000)), 86_400);
    }

    #[test]
    fn cache_control_max_age_parsing() {
        let table = [
            ("max-age=120", Some(120)),
            ("public, max-age=3600, must-revalidate", Some(3600)),
            ("Max-Age = \"90\"", Some(90)),
            ("no-store", None),
            ("max-age=abc", None),
            ("s-maxage=50", None),
        ];
        for (value, expected) in table {
            let mut headers = HeaderMap::new();
            headers.insert(CACHE_CONTROL, HeaderValue::from_str(value).unwrap());
            assert_eq!(cache_max_age(&headers), expected, "Cache-Control: {value}");
        }
        assert_eq!(cache_max_age(&HeaderMap::new()), None);
    }

    #[test]
    fn urls_must_be_https_or_loopback_http() {
        let accepted = [
            ("https://idp.example.com/keys", true),
            ("http://127.0.0.1:8080/jwks", true),
            ("http://127.9.9.9/jwks", true),
            ("http://[::1]:9000/jwks", true),
            ("http://LOCALHOST/jwks", true),
        ];
        for (url, allow_loopback) in accepted {
            assert!(check_url(url, allow_loopback).is_ok(), "{url}");
        }
        let rejected = [
            ("http://idp.example.com/keys", true),
            ("http://10.0.0.1/jwks", true),
            ("http://localhost.example.com/jwks", true),
            ("http://127.0.0.1/jwks", false),
            ("ftp://idp.example.com/keys", true),
            ("https://user:secret@idp.example.com/keys", true),
            ("/relative/jwks", true),
        ];
        for (url, allow_loopback) in rejected {
            let error = check_url(url, allow_loopback).unwrap_err();
            assert_eq!(error.reason_code(), "jwks_url_rejected", "{url}");
        }
    }

    #[tokio::test]
    async fn discovery_urls_for_issuer_paths() {
        let fixture = Fixture::new().await;
        let cache = fixture.cache(JwksSettings::default());
        let [openid, oauth] = cache.discovery_urls("https://idp.test/tenant1/").unwrap();
        assert_eq!(
            openid.as_str(),
            "https://idp.test/tenant1/.well-known/openid-configuration"
        );
        assert_eq!(
            oauth.as_str(),
            "https://idp.test/.well-known/oauth-authorization-server/tenant1"
        );
        let [openid, oauth] = cache.discovery_urls("https://idp.test").unwrap();
        assert_eq!(
            openid.as_str(),
            "https://idp.test/.well-known/openid-configuration"
        );
        assert_eq!(
            oauth.as_str(),
            "https://idp.test/.well-known/oauth-authorization-server"
        );
        assert!(cache.discovery_urls("https://idp.test/?tenant=1").is_err());
    }

    // Fetching and freshness.

    #[tokio::test]
    async fn fresh_set_serves_without_fetching() {
        let fixture = Fixture::new().await;
        let idp = Idp::new(&["k1"]);
        let provider = fixture.provider_at(serve(&idp).await).await;
        let cache = fixture.cache(JwksSettings::default());

        for _ in 0..5 {
            let key = key_for(&cache, &provider, "k1").await.unwrap();
            assert_eq!(key.kid(), Some("k1"));
        }
        assert_eq!(idp.requests(), 1);
        assert_eq!(cache.http_request_count(provider.id), 1);
    }

    #[tokio::test]
    async fn ttl_follows_cache_control() {
        let fixture = Fixture::new().await;
        let idp = Idp::new(&["k1"]);
        let provider = fixture.provider_at(serve(&idp).await).await;
        let cache = fixture.cache(JwksSettings::default());

        let table = [
            (None, 600),
            (Some("max-age=1000"), 1000),
            (Some("public, max-age=10"), 300),
            (Some("max-age=999999"), 86_400),
            (Some("no-cache"), 600),
        ];
        for (cache_control, expected) in table {
            *idp.cache_control.lock() = cache_control.map(str::to_owned);
            cache.refresh_now(&provider).await.unwrap();
            assert_eq!(
                ttl_of(&cache, provider.id),
                expected,
                "Cache-Control {cache_control:?}"
            );
        }
    }

    #[tokio::test]
    async fn expired_set_is_fetched_again() {
        let fixture = Fixture::new().await;
        let idp = Idp::new(&["k1"]);
        *idp.cache_control.lock() = Some("max-age=0".to_owned());
        let provider = fixture.provider_at(serve(&idp).await).await;
        let cache = fixture.cache(expiring_settings());

        key_for(&cache, &provider, "k1").await.unwrap();
        key_for(&cache, &provider, "k1").await.unwrap();
        assert_eq!(idp.requests(), 2);
    }

    #[tokio::test]
    async fn expired_set_drops_removed_key() {
        let fixture = Fixture::new().await;
        let idp = Idp::new(&["k1"]);
        *idp.cache_control.lock() = Some("max-age=0".to_owned());
        let provider = fixture.provider_at(serve(&idp).await).await;
        let cache = fixture.cache(expiring_settings());

        key_for(&cache, &provider, "k1").await.unwrap();
        idp.serve_keys(&["k2"]);
        let error = key_for(&cache, &provider, "k1").await.unwrap_err();
        assert_eq!(error.reason_code(), "unknown_kid");
        assert!(!error.is_unavailable());
    }

    #[tokio::test]
    async fn unknown_kid_finds_rotated_key() {
        let fixture = Fixture::new().await;
        let idp = Idp::new(&["k1"]);
        let provider = fixture.provider_at(serve(&idp).await).await;
        let settings = JwksSettings {
            unknown_kid_cooldown_secs: 0,
            ..JwksSettings::default()
        };
        let cache = fixture.cache(settings);

        key_for(&cache, &provider, "k1").await.unwrap();
        idp.serve_keys(&["k1", "k2"]);
        let key = key_for(&cache, &provider, "k2").await.unwrap();
        assert_eq!(key.kid(), Some("k2"));
        assert_eq!(idp.requests(), 2);
    }

    #[tokio::test]
    async fn kid_missing_after_fetch_is_invalid() {
        let fixture = Fixture::new().await;
        let idp = Idp::new(&["k1"]);
        let provider = fixture.provider_at(serve(&idp).await).await;
        let cache = fixture.cache(JwksSettings::default());

        let error = key_for(&cache, &provider, "other").await.unwrap_err();
        assert_eq!(error.reason_code(), "unknown_kid");
        assert!(!error.is_unavailable());
        assert_eq!(idp.requests(), 1);
    }

    #[tokio::test]
    async fn ambiguous_selection_does_not_fetch() {
        let fixture = Fixture::new().await;
        let idp = Idp::new(&["k1", "k2"]);
        let provider = fixture.provider_at(serve(&idp).await).await;
        let settings = JwksSettings {
            unknown_kid_cooldown_secs: 0,
            ..JwksSettings::default()
        };
        let cache = fixture.cache(settings);

        cache.refresh_now(&provider).await.unwrap();
        let error = cache
            .key_for(&provider, None, Algorithm::RS256)
            .await
            .unwrap_err();
        assert_eq!(error.reason_code(), "kid_required");
        let error = cache
            .key_for(&provider, Some("k1"), Algorithm::ES256)
            .await
            .unwrap_err();
        assert_eq!(error.reason_code(), "kid_alg_mismatch");
        assert_eq!(idp.requests(), 1);
    }

    // Single flight, cooldown and budget.

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_misses_share_one_fetch() {
        let fixture = Fixture::new().await;
        let idp = Idp::new(&["k1"]);
        *idp.delay.lock() = Duration::from_millis(300);
        let provider = fixture.provider_at(serve(&idp).await).await;
        let cache = fixture.cache(JwksSettings::default());

        let mut tasks = tokio::task::JoinSet::new();
        for i in 0..50 {
            let (cache, provider) = (Arc::clone(&cache), provider.clone());
            tasks.spawn(async move { key_for(&cache, &provider, &format!("unknown-{i}")).await });
        }
        while let Some(outcome) = tasks.join_next().await {
            let error = outcome.unwrap().unwrap_err();
            assert_eq!(error.reason_code(), "unknown_kid");
        }
        assert_eq!(idp.requests(), 1);
        assert_eq!(cache.http_request_count(provider.id), 1);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_misses_share_fetch_without_cooldown() {
        let fixture = Fixture::new().await;
        let idp = Idp::new(&["k1"]);
        let provider = fixture.provider_at(serve(&idp).await).await;
        let settings = JwksSettings {
            unknown_kid_cooldown_secs: 0,
            ..JwksSettings::default()
        };
        let cache = fixture.cache(settings);
        cache.refresh_now(&provider).await.unwrap();

        *idp.delay.lock() = Duration::from_millis(300);
        idp.serve_keys(&["k1", "k2"]);
        let mut tasks = tokio::task::JoinSet::new();
        for _ in 0..50 {
            let (cache, provider) = (Arc::clone(&cache), provider.clone());
            tasks.spawn(async move { key_for(&cache, &provider, "k2").await });
        }
        while let Some(outcome) = tasks.join_next().await {
            assert_eq!(outcome.unwrap().unwrap().kid(), Some("k2"));
        }
        assert_eq!(idp.requests(), 2);
    }

    #[tokio::test]
    async fn cooldown_blocks_second_unknown_kid() {
        let fixture = Fixture::new().await;
        let idp = Idp::new(&["k1"]);
        let provider = fixture.provider_at(serve(&idp).await).await;
        let settings = JwksSettings {
            unknown_kid_cooldown_secs: 1,
            ..JwksSettings::default()
        };
        let cache = fixture.cache(settings);

        assert!(key_for(&cache, &provider, "u1").await.is_err());
        assert_eq!(idp.requests(), 1);

        let error = key_for(&cache, &provider, "u2").await.unwrap_err();
        assert_eq!(error.reason_code(), "unknown_kid");
        assert!(!error.is_unavailable());
        assert_eq!(
            idp.requests(),
            1,
            "a miss inside the cooldown must not fetch"
        );

        tokio::time::sleep(Duration::from_millis(1100)).await;
        assert!(key_for(&cache, &provider, "u3").await.is_err());
        assert_eq!(idp.requests(), 2, "a miss after the cooldown fetches again");
    }

    #[tokio::test]
    async fn global_budget_caps_fetches() {
        let fixture = Fixture::new().await;
        let idp = Idp::new(&["k1"]);
        let provider = fixture.provider_at(serve(&idp).await).await;
        let settings = JwksSettings {
            unknown_kid_cooldown_secs: 0,
            max_refreshes_per_minute: 2,
            ..JwksSettings::default()
        };
        let cache = fixture.cache(settings);

        for kid in ["u1", "u2", "u3", "u4"] {
            let error = key_for(&cache, &provider, kid).await.unwrap_err();
            assert_eq!(error.reason_code(), "unknown_kid", "kid {kid}");
        }
        assert_eq!(idp.requests(), 2);

        // The admin action is not counted against the budget.
        cache.refresh_now(&provider).await.unwrap();
        assert_eq!(idp.requests(), 3);
    }

    #[tokio::test]
    async fn spent_budget_without_set_is_unavailable() {
        let fixture = Fixture::new().await;
        let idp = Idp::new(&["k1"]);
        let provider = fixture.provider_at(serve(&idp).await).await;
        let settings = JwksSettings {
            max_refreshes_per_minute: 0,
            ..JwksSettings::default()
        };
        let cache = fixture.cache(settings);

        let error = key_for(&cache, &provider, "k1").await.unwrap_err();
        assert_eq!(error.reason_code(), "jwks_refresh_limited");
        assert!(error.is_unavailable());
        assert_eq!(idp.requests(), 0);
    }

    // Failures.

    #[tokio::test]
    async fn stale_set_serves_while_idp_fails() {
        let fixture = Fixture::new().await;
        let idp = Idp::new(&["k1"]);
        *idp.cache_control.lock() = Some("max-age=0".to_owned());
        let provider = fixture.provider_at(serve(&idp).await).await;
        let cache = fixture.cache(expiring_settings());

        key_for(&cache, &provider, "k1").await.unwrap();
        idp.status.store(500, Ordering::SeqCst);

        let key = key_for(&cache, &provider, "k1").await.unwrap();
        assert_eq!(key.kid(), Some("k1"));
        assert_eq!(idp.requests(), 2);
        let health = &cache.health()[0];
        assert!(
            health.last_error.as_deref().unwrap().contains("HTTP 500"),
            "{health:?}"
        );
        assert!(health.last_error_at.is_some());
        assert_eq!(health.key_count, 1);

        let error = key_for(&cache, &provider, "k2").await.unwrap_err();
        assert_eq!(error.reason_code(), "jwks_unavailable");
        assert!(error.is_unavailable());
    }

    #[tokio::test]
    async fn stale_limit_ends_stale_serving() {
        let fixture = Fixture::new().await;
        let idp = Idp::new(&["k1"]);
        *idp.cache_control.lock() = Some("max-age=0".to_owned());
        let provider = fixture.provider_at(serve(&idp).await).await;
        let settings = JwksSettings {
            stale_if_error_secs: 0,
            ..expiring_settings()
        };
        let cache = fixture.cache(settings);

        key_for(&cache, &provider, "k1").await.unwrap();
        idp.status.store(500, Ordering::SeqCst);
        let error = key_for(&cache, &provider, "k1").await.unwrap_err();
        assert_eq!(error.reason_code(), "jwks_unavailable");
    }

    #[tokio::test]
    async fn idp_down_and_nothing_cached_is_unavailable() {
        let fixture = Fixture::new().await;
        let idp = Idp::new(&["k1"]);
        idp.status.store(503, Ordering::SeqCst);
        let provider = fixture.provider_at(serve(&idp).await).await;
        let cache = fixture.cache(JwksSettings::default());

        let error = key_for(&cache, &provider, "k1").await.unwrap_err();
        assert_eq!(error.reason_code(), "jwks_unavailable");
        assert!(error.to_string().contains("HTTP 503"), "{error}");

        let error = key_for(&cache, &provider, "k1").await.unwrap_err();
        assert!(error.is_unavailable());
        assert_eq!(
            idp.requests(),
            1,
            "the cooldown also limits retries after a failure"
        );
    }

    #[tokio::test]
    async fn invalid_document_keeps_last_good_set() {
        let fixture = Fixture::new().await;
        let idp = Idp::new(&["k1"]);
        let provider = fixture.provider_at(serve(&idp).await).await;
        let cache = fixture.cache(JwksSettings::default());

        cache.refresh_now(&provider).await.unwrap();
        *idp.jwks.lock() = "{\"keys\": 5}".to_owned();
        let error = cache.refresh_now(&provider).await.unwrap_err();
        assert_eq!(error.reason_code(), "jwks_invalid");
        assert!(key_for(&cache, &provider, "k1").await.is_ok());
    }

    #[tokio::test]
    async fn oversized_document_is_rejected() {
        let fixture = Fixture::new().await;
        let idp = Idp::new(&["k1", "k2", "k3", "k4", "k5"]);
        let provider = fixture.provider_at(serve(&idp).await).await;
        let settings = JwksSettings {
            max_bytes: 1024,
            ..JwksSettings::default()
        };
        let cache = fixture.cache(settings);

        let error = cache.refresh_now(&provider).await.unwrap_err();
        assert_eq!(error.reason_code(), "jwks_too_large");
    }

    #[tokio::test]
    async fn oversized_chunked_body_is_cut_off() {
        let fixture = Fixture::new().await;
        let address = serve_chunked(vec![b' '; 1000], 100).await;
        let provider = fixture.provider_at(address).await;
        let settings = JwksSettings {
            max_bytes: 4096,
            ..JwksSettings::default()
        };
        let cache = fixture.cache(settings);

        let error = cache.refresh_now(&provider).await.unwrap_err();
        assert_eq!(error.reason_code(), "jwks_too_large");
    }

    #[tokio::test]
    async fn too_many_keys_are_rejected() {
        let fixture = Fixture::new().await;
        let idp = Idp::new(&["k1", "k2", "k3"]);
        let provider = fixture.provider_at(serve(&idp).await).await;
        let settings = JwksSettings {
            max_keys: 2,
            ..JwksSettings::default()
        };
        let cache = fixture.cache(settings);

        let error = cache.refresh_now(&provider).await.unwrap_err();
        assert_eq!(error.reason_code(), "jwks_too_many_keys");
    }

    // Redirects and discovery.

    #[tokio::test]
    async fn off_origin_redirect_is_refused() {
        let fixture = Fixture::new().await;
        let idp = Idp::new(&["k1"]);
        let other = Idp::new(&["k1"]);
        let address = serve(&idp).await;
        let other_address = serve(&other).await;
        *idp.redirect_to.lock() = format!("http://{other_address}/jwks");
        let provider = fixture
            .provider(
                &format!("http://{address}"),
                Some(format!("http://{address}/moved")),
            )
            .await;
        let cache = fixture.cache(JwksSettings::default());

        let error = cache.refresh_now(&provider).await.unwrap_err();
        assert_eq!(error.reason_code(), "jwks_fetch_failed");
        assert!(error.to_string().contains("another origin"), "{error}");
        assert_eq!(other.requests(), 0);
    }

    #[tokio::test]
    async fn same_origin_redirects_are_bounded() {
        let fixture = Fixture::new().await;
        let idp = Idp::new(&["k1"]);
        let address = serve(&idp).await;
        let issuer = format!("http://{address}");
        let three_hops = fixture
            .provider(&issuer, Some(format!("{issuer}/hop/2")))
            .await;
        let cache = fixture.cache(JwksSettings::default());
        assert_eq!(cache.refresh_now(&three_hops).await.unwrap(), 1);

        let four_hops = Provider {
            jwks_uri: Some(format!("{issuer}/hop/3")),
            ..three_hops
        };
        let error = cache.refresh_now(&four_hops).await.unwrap_err();
        assert!(
            error.to_string().contains("more than 3 redirects"),
            "{error}"
        );
    }

    #[tokio::test]
    async fn discovery_finds_jwks_uri() {
        let fixture = Fixture::new().await;
        let idp = Idp::new(&["k1"]);
        let address = serve(&idp).await;
        let issuer = format!("http://{address}");
        *idp.metadata.lock() =
            Some(json!({"issuer": issuer, "jwks_uri": format!("{issuer}/jwks")}));
        let provider = fixture.provider(&issuer, None).await;
        let cache = fixture.cache(JwksSettings::default());

        assert_eq!(cache.refresh_now(&provider).await.unwrap(), 1);
        assert_eq!(cache.http_request_count(provider.id), 2);
        // The discovered URL is reused by the next fetch.
        cache.refresh_now(&provider).await.unwrap();
        assert_eq!(cache.http_request_count(provider.id), 3);
        let health = &cache.health()[0];
        assert_eq!(
            health.jwks_uri.as_deref(),
            Some(format!("{issuer}/jwks").as_str())
        );
    }

    #[tokio::test]
    async fn discovery_falls_back_to_rfc8414() {
        let fixture = Fixture::new().await;
        let idp = Idp::new(&["k1"]);
        let address = serve(&idp).await;
        let issuer = format!("http://{address}/tenant");
        let jwks_uri = format!("http://{address}/jwks");
        *idp.metadata.lock() = Some(json!({"issuer": issuer, "jwks_uri": jwks_uri}));
        let provider = fixture.provider(&issuer, None).await;
        let cache = fixture.cache(JwksSettings::default());

        assert_eq!(cache.refresh_now(&provider).await.unwrap(), 1);
        assert_eq!(cache.http_request_count(provider.id), 3);
    }

    #[tokio::test]
    async fn discovery_issuer_mismatch_is_refused() {
        let fixture = Fixture::new().await;
        let idp = Idp::new(&["k1"]);
        let address = serve(&idp).await;
        let issuer = format!("http://{address}");
        let metadata =
            json!({"issuer": "https://attacker.test", "jwks_uri": format!("{issuer}/jwks")});
        *idp.metadata.lock() = Some(metadata);
        let provider = fixture.provider(&issuer, None).await;
        let cache = fixture.cache(JwksSettings::default());

        let error = cache.refresh_now(&provider).await.unwrap_err();
        assert_eq!(error.reason_code(), "jwks_discovery_failed");
        assert!(error.to_string().contains("does not match"), "{error}");
        assert_eq!(idp.requests(), 0);
    }

    #[tokio::test]
    async fn discovered_jwks_uri_must_be_allowed() {
        let fixture = Fixture::new().await;
        let idp = Idp::new(&["k1"]);
        let address = serve(&idp).await;
        let issuer = format!("http://{address}");
        *idp.metadata.lock() = Some(json!({"issuer": issuer, "jwks_uri": "http://10.1.2.3/jwks"}));
        let provider = fixture.provider(&issuer, None).await;
        let cache = fixture.cache(JwksSettings::default());

        let error = cache.refresh_now(&provider).await.unwrap_err();
        assert_eq!(error.reason_code(), "jwks_discovery_failed");
        assert!(error.to_string().contains("loopback"), "{error}");
    }

    // Configuration changes, persistence and the refresher.

    #[tokio::test]
    async fn changed_jwks_uri_ignores_old_set() {
        let fixture = Fixture::new().await;
        let idp = Idp::new(&["k1"]);
        let provider = fixture.provider_at(serve(&idp).await).await;
        let other = Idp::new(&["k9"]);
        let other_address = serve(&other).await;
        let cache = fixture.cache(JwksSettings::default());

        key_for(&cache, &provider, "k1").await.unwrap();
        let moved = Provider {
            jwks_uri: Some(format!("http://{other_address}/jwks")),
            ..provider
        };
        let error = key_for(&cache, &moved, "k1").await.unwrap_err();
        assert_eq!(error.reason_code(), "unknown_kid");
        assert_eq!(other.requests(), 1);
        assert!(key_for(&cache, &moved, "k9").await.is_ok());
    }

    #[tokio::test]
    async fn forget_drops_cached_set() {
        let fixture = Fixture::new().await;
        let idp = Idp::new(&["k1"]);
        let provider = fixture.provider_at(serve(&idp).await).await;
        let cache = fixture.cache(JwksSettings::default());

        key_for(&cache, &provider, "k1").await.unwrap();
        cache.forget(provider.id);
        assert!(cache.health().is_empty());
        key_for(&cache, &provider, "k1").await.unwrap();
        assert_eq!(idp.requests(), 2);
    }

    #[tokio::test]
    async fn fetches_are_persisted_and_audited() {
        let fixture = Fixture::new().await;
        let idp = Idp::new(&["k1"]);
        let provider = fixture.provider_at(serve(&idp).await).await;
        let cache = fixture.cache(JwksSettings::default());

        cache.refresh_now(&provider).await.unwrap();
        let entry = fixture.store.load_jwks(provider.id).await.unwrap().unwrap();
        assert_eq!(entry.key_count, 1);
        assert_eq!(
            entry.jwks_json.as_deref(),
            Some(jwks_document(&["k1"]).as_str())
        );
        assert!(entry.fetched_at.is_some());
        assert!(entry.expires_at > entry.fetched_at);
        assert_eq!(fixture.cache_updates(provider.id).await, 1);

        cache.refresh_now(&provider).await.unwrap();
        assert_eq!(
            fixture.cache_updates(provider.id).await,
            1,
            "same keys: no audit event"
        );

        idp.serve_keys(&["k1", "k2"]);
        cache.refresh_now(&provider).await.unwrap();
        assert_eq!(fixture.cache_updates(provider.id).await, 2);
        let entry = fixture.store.load_jwks(provider.id).await.unwrap().unwrap();
        assert_eq!(entry.key_count, 2);

        idp.status.store(500, Ordering::SeqCst);
        assert!(cache.refresh_now(&provider).await.is_err());
        let entry = fixture.store.load_jwks(provider.id).await.unwrap().unwrap();
        assert_eq!(
            entry.key_count, 2,
            "a failed fetch keeps the last good document"
        );
        assert!(entry.last_error.is_some());
        assert!(entry.last_error_at.is_some());
        assert_eq!(fixture.cache_updates(provider.id).await, 2);
    }

    #[tokio::test]
    async fn private_keys_are_not_stored() {
        let fixture = Fixture::new().await;
        let idp = Idp::new(&[]);
        let mut private = rsa_jwk("leaked");
        private["d"] = json!("cHJpdmF0ZQ");
        *idp.jwks.lock() = json!({"keys": [rsa_jwk("k1"), private]}).to_string();
        let provider = fixture.provider_at(serve(&idp).await).await;
        let cache = fixture.cache(JwksSettings::default());

        assert_eq!(cache.refresh_now(&provider).await.unwrap(), 1);
        let entry = fixture.store.load_jwks(provider.id).await.unwrap().unwrap();
        let stored = entry.jwks_json.unwrap();
        assert!(!stored.contains("cHJpdmF0ZQ"), "{stored}");
        assert!(stored.contains("k1"));
        let health = &cache.health()[0];
        assert_eq!(health.skipped_keys.len(), 1, "{health:?}");
        assert!(health.skipped_keys[0].contains("leaked"));
    }

    #[tokio::test]
    async fn restart_serves_from_store() {
        let fixture = Fixture::new().await;
        let idp = Idp::new(&["k1"]);
        let provider = fixture.provider_at(serve(&idp).await).await;
        let first = fixture.cache(JwksSettings::default());
        key_for(&first, &provider, "k1").await.unwrap();

        let restarted = fixture.cache(JwksSettings::default());
        assert_eq!(
            restarted
                .load_persisted(std::slice::from_ref(&provider))
                .await,
            1
        );
        let key = key_for(&restarted, &provider, "k1").await.unwrap();
        assert_eq!(key.kid(), Some("k1"));
        assert_eq!(restarted.http_request_count(provider.id), 0);
        assert_eq!(idp.requests(), 1);

        let unrelated = fixture.cache(JwksSettings::default());
        assert_eq!(unrelated.load_persisted(&[]).await, 0);
    }

    #[tokio::test]
    async fn refresher_fetches_before_expiry_and_stops() {
        let fixture = Fixture::new().await;
        let idp = Idp::new(&["k1"]);
        *idp.cache_control.lock() = Some("max-age=1".to_owned());
        let provider = fixture.provider_at(serve(&idp).await).await;
        let disabled_idp = Idp::new(&["k1"]);
        let disabled_address = serve(&disabled_idp).await;
        let mut disabled = fixture.provider_at(disabled_address).await;
        disabled.enabled = false;
        let settings = JwksSettings {
            refresh_ahead_secs: 1,
            ..expiring_settings()
        };
        let cache = fixture.cache(settings);

        let (stop, shutdown) = watch::channel(false);
        let providers = vec![provider.clone(), disabled];
        let handle = Arc::clone(&cache).spawn_refresher(move || providers.clone(), shutdown);
        tokio::time::sleep(Duration::from_millis(2500)).await;
        assert!(idp.requests() >= 2, "requests: {}", idp.requests());
        assert_eq!(disabled_idp.requests(), 0);
        assert_eq!(cache.health()[0].key_count, 1);

        stop.send(true).unwrap();
        tokio::time::timeout(Duration::from_secs(2), handle)
            .await
            .unwrap()
            .unwrap();
    }
}
