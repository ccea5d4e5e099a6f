//! Background work of the dashboard: the requests of the [`App`](crate::tui::App) ([`Job`]),
//! their execution against the core ([`execute`]), and their results ([`JobOutput`]).
//!
//! Each job returns a whole snapshot (the full list, all figures of the statistics), never a
//! delta to merge, so the app replaces what it shows in one step. Loads carry their request
//! parameters back, so the app can drop a result for a proxy or filter no longer on screen.

mod runner;

use std::future::Future;
use std::time::Duration;

use crate::core::admin::{CreatedMapping, RevokeSubjectResult, RevokeTokenResult};
use crate::core::jwks::JwksHealth;
use crate::core::model::{
    ActivityPoint, AuditEvent, AuditEventType, AuditQuery, ClientMapping, IdJagRecord, NewMapping,
    NewProvider, Provider, ProviderPatch, Proxy, ProxyPatch, TokenQuery, XaaStats,
};
use crate::core::{Core, CoreError, CoreResult};
use crate::tui::strings;

pub use self::runner::JobSlots;

/// Longest a job may take before the dashboard reports the store as unavailable.
pub const JOB_TIMEOUT: Duration = Duration::from_secs(30);
/// Minutes of exchange activity loaded for the chart.
pub const ACTIVITY_MINUTES: i64 = 180;
/// Window of the ranked failure reasons.
pub const FAILURE_WINDOW_MINUTES: i64 = 60;
/// Most recent token records loaded for the Tokens tab.
pub const TOKEN_LIMIT: i64 = 500;
/// Audit events loaded when the Audit tab opens or its filter changes.
pub const AUDIT_LIMIT: i64 = 500;

/// A proxy with the figures of its card on the home screen.
#[derive(Debug, Clone)]
pub struct ProxySummary {
    pub proxy: Proxy,
    pub mapping_count: usize,
    pub active_tokens: i64,
}

/// A provider with the state of its key set in this process's JWKS cache.
#[derive(Debug, Clone)]
pub struct ProviderState {
    pub provider: Provider,
    /// `None` until the cache has seen the provider.
    pub health: Option<JwksHealth>,
}

/// Everything the Statistics tab shows.
#[derive(Debug, Clone)]
pub struct StatsSnapshot {
    pub stats: XaaStats,
    pub activity: Vec<ActivityPoint>,
    /// Rejections by reason code, most frequent first.
    pub failure_reasons: Vec<(String, i64)>,
    pub providers: Vec<ProviderState>,
}

/// Token record states the Tokens tab can filter on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenStatus {
    Active,
    Revoked,
    Expired,
}

impl TokenStatus {
    /// Returns the spelling that [`TokenQuery::status`] takes.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Active => "active",
            Self::Revoked => "revoked",
            Self::Expired => "expired",
        }
    }
}

/// The Tokens tab's filter.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TokenFilter {
    /// Matches part of the subject or of either client id among the recent records, and the
    /// whole subject or client id among all records.
    pub text: String,
    pub status: Option<TokenStatus>,
}

/// Work the app requests from the runtime.
#[derive(Debug, Clone)]
pub enum Job {
    LoadProxies,
    LoadProviders,
    LoadStats {
        proxy_id: i64,
    },
    LoadMappings {
        proxy_id: i64,
    },
    LoadTokens {
        proxy_id: i64,
        filter: TokenFilter,
    },
    /// Audit events, newest first; with `after_id`, only those newer than that event.
    LoadAudit {
        event_type: Option<AuditEventType>,
        after_id: Option<i64>,
    },
    CreateMapping {
        proxy_id: i64,
        mapping: NewMapping,
        actor: String,
    },
    DeleteMapping {
        proxy_id: i64,
        mapping_id: i64,
        actor: String,
    },
    RevokeToken {
        jti: String,
        reason: Option<String>,
        revoked_by: Option<String>,
    },
    RevokeSubject {
        provider_id: i64,
        subject: String,
        reason: Option<String>,
        revoked_by: Option<String>,
    },
    SetProviderEnabled {
        provider_id: i64,
        enabled: bool,
    },
    RefreshProviderKeys {
        provider_id: i64,
    },
    CreateProvider {
        provider: NewProvider,
    },
    /// The issuance kill switch of a proxy.
    SetIssuance {
        proxy_id: i64,
        enabled: bool,
    },
}

/// Groups jobs for the runner: at most one load per key runs at a time, and a newer request
/// replaces a waiting one. Actions each run at once.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum JobKey {
    Proxies,
    Providers,
    Stats,
    Mappings,
    Tokens,
    Audit,
    Action,
}

impl Job {
    /// Returns the runner group of this job.
    pub fn key(&self) -> JobKey {
        match self {
            Self::LoadProxies => JobKey::Proxies,
            Self::LoadProviders => JobKey::Providers,
            Self::LoadStats { .. } => JobKey::Stats,
            Self::LoadMappings { .. } => JobKey::Mappings,
            Self::LoadTokens { .. } => JobKey::Tokens,
            Self::LoadAudit { .. } => JobKey::Audit,
            _ => JobKey::Action,
        }
    }

    /// Returns whether the job changes the store. Read-only mode never submits these.
    pub fn is_mutating(&self) -> bool {
        self.key() == JobKey::Action
    }
}

/// Result of a job: the request's parameters and a whole snapshot or the error.
#[derive(Debug)]
pub enum JobOutput {
    Proxies(CoreResult<Vec<ProxySummary>>),
    Providers(CoreResult<Vec<ProviderState>>),
    Stats {
        proxy_id: i64,
        result: CoreResult<StatsSnapshot>,
    },
    Mappings {
        proxy_id: i64,
        result: CoreResult<Vec<ClientMapping>>,
    },
    Tokens {
        proxy_id: i64,
        filter: TokenFilter,
        result: CoreResult<Vec<IdJagRecord>>,
    },
    Audit {
        event_type: Option<AuditEventType>,
        after_id: Option<i64>,
        result: CoreResult<Vec<AuditEvent>>,
    },
    MappingCreated {
        proxy_id: i64,
        result: CoreResult<CreatedMapping>,
    },
    MappingDeleted {
        proxy_id: i64,
        result: CoreResult<()>,
    },
    TokenRevoked(CoreResult<RevokeTokenResult>),
    SubjectRevoked(CoreResult<RevokeSubjectResult>),
    ProviderUpdated(CoreResult<Provider>),
    ProviderKeysRefreshed {
        provider_id: i64,
        result: CoreResult<usize>,
    },
    ProviderCreated(CoreResult<Provider>),
    IssuanceSet(CoreResult<Proxy>),
}

impl JobOutput {
    /// Returns the runner group of the job that produced this output.
    pub fn key(&self) -> JobKey {
        match self {
            Self::Proxies(_) => JobKey::Proxies,
            Self::Providers(_) => JobKey::Providers,
            Self::Stats { .. } => JobKey::Stats,
            Self::Mappings { .. } => JobKey::Mappings,
            Self::Tokens { .. } => JobKey::Tokens,
            Self::Audit { .. } => JobKey::Audit,
            _ => JobKey::Action,
        }
    }
}

/// Runs one job against the core. Each store call is bounded by [`JOB_TIMEOUT`].
pub async fn execute(core: &Core, job: Job) -> JobOutput {
    match job {
        Job::LoadProxies => JobOutput::Proxies(timed(load_proxies(core)).await),
        Job::LoadProviders => JobOutput::Providers(timed(load_providers(core)).await),
        Job::LoadStats { proxy_id } => JobOutput::Stats {
            proxy_id,
            result: timed(load_stats(core, proxy_id)).await,
        },
        Job::LoadMappings { proxy_id } => JobOutput::Mappings {
            proxy_id,
            result: timed(core.list_mappings(proxy_id)).await,
        },
        Job::LoadTokens { proxy_id, filter } => JobOutput::Tokens {
            proxy_id,
            result: timed(load_tokens(core, proxy_id, &filter)).await,
            filter,
        },
        Job::LoadAudit {
            event_type,
            after_id,
        } => JobOutput::Audit {
            event_type,
            after_id,
            result: timed(load_audit(core, event_type, after_id)).await,
        },
        Job::CreateMapping {
            proxy_id,
            mapping,
            actor,
        } => JobOutput::MappingCreated {
            proxy_id,
            result: timed(core.create_mapping(proxy_id, mapping, &actor)).await,
        },
        Job::DeleteMapping {
            proxy_id,
            mapping_id,
            actor,
        } => JobOutput::MappingDeleted {
            proxy_id,
            result: timed(core.delete_mapping(proxy_id, mapping_id, &actor)).await,
        },
        Job::RevokeToken {
            jti,
            reason,
            revoked_by,
        } => JobOutput::TokenRevoked(timed(core.revoke_token(&jti, reason, revoked_by)).await),
        Job::RevokeSubject {
            provider_id,
            subject,
            reason,
            revoked_by,
        } => JobOutput::SubjectRevoked(
            timed(core.revoke_subject(provider_id, &subject, reason, revoked_by)).await,
        ),
        Job::SetProviderEnabled {
            provider_id,
            enabled,
        } => JobOutput::ProviderUpdated(timed(set_enabled(core, provider_id, enabled)).await),
        Job::RefreshProviderKeys { provider_id } => JobOutput::ProviderKeysRefreshed {
            provider_id,
            result: timed(core.refresh_provider_keys(provider_id)).await,
        },
        Job::CreateProvider { provider } => {
            JobOutput::ProviderCreated(timed(core.create_provider(provider)).await)
        }
        Job::SetIssuance { proxy_id, enabled } => {
            JobOutput::IssuanceSet(timed(set_issuance(core, proxy_id, enabled)).await)
        }
    }
}

async fn timed<T>(work: impl Future<Output = CoreResult<T>>) -> CoreResult<T> {
    tokio::time::timeout(JOB_TIMEOUT, work)
        .await
        .unwrap_or_else(|_| {
            Err(CoreError::Unavailable(strings::no_answer(
                JOB_TIMEOUT.as_secs(),
            )))
        })
}

/// Proxies with their mapping count and active tokens.
///
/// NOTE: this costs one statistics query per proxy. Gateways have few proxies, and a core
/// query returning the summaries in one pass would remove the loop.
async fn load_proxies(core: &Core) -> CoreResult<Vec<ProxySummary>> {
    let proxies = core.list_proxies().await?;
    let mut summaries = Vec::with_capacity(proxies.len());
    for proxy in proxies {
        let stats = core.stats(Some(proxy.id)).await?;
        summaries.push(ProxySummary {
            mapping_count: usize::try_from(stats.client_mappings.total_mappings).unwrap_or(0),
            active_tokens: stats.id_jag_tokens.active,
            proxy,
        });
    }
    Ok(summaries)
}

async fn load_audit(
    core: &Core,
    event_type: Option<AuditEventType>,
    after_id: Option<i64>,
) -> CoreResult<Vec<AuditEvent>> {
    let query = AuditQuery {
        event_type,
        after_id,
        limit: Some(AUDIT_LIMIT),
        ..AuditQuery::default()
    };
    core.query_audit(&query).await
}

async fn set_enabled(core: &Core, provider_id: i64, enabled: bool) -> CoreResult<Provider> {
    let patch = ProviderPatch {
        enabled: Some(enabled),
        ..ProviderPatch::default()
    };
    core.update_provider(provider_id, patch).await
}

async fn set_issuance(core: &Core, proxy_id: i64, enabled: bool) -> CoreResult<Proxy> {
    let patch = ProxyPatch {
        issuance_enabled: Some(enabled),
        ..ProxyPatch::default()
    };
    core.update_proxy(proxy_id, patch).await
}

async fn load_providers(core: &Core) -> CoreResult<Vec<ProviderState>> {
    let providers = core.list_providers().await?;
    let health = core.jwks().health();
    Ok(providers
        .into_iter()
        .map(|provider| ProviderState {
            health: health
                .iter()
                .find(|h| h.provider_id == provider.id)
                .cloned(),
            provider,
        })
        .collect())
}

async fn load_stats(core: &Core, proxy_id: i64) -> CoreResult<StatsSnapshot> {
    Ok(StatsSnapshot {
        stats: core.stats(Some(proxy_id)).await?,
        activity: core.activity(Some(proxy_id), ACTIVITY_MINUTES).await?,
        failure_reasons: core
            .failure_reasons(Some(proxy_id), FAILURE_WINDOW_MINUTES)
            .await?,
        providers: load_providers(core).await?,
    })
}

/// Loads the recent records of a proxy that match the filter text in part, plus every record
/// whose subject or client id equals it (which may be older than the recent window).
async fn load_tokens(
    core: &Core,
    proxy_id: i64,
    filter: &TokenFilter,
) -> CoreResult<Vec<IdJagRecord>> {
    let base = TokenQuery {
        proxy_id: Some(proxy_id),
        status: filter.status.map(|status| status.as_str().to_owned()),
        limit: Some(TOKEN_LIMIT),
        ..TokenQuery::default()
    };
    let recent = core.list_tokens(&base).await?;
    let text = filter.text.trim();
    if text.is_empty() {
        return Ok(recent);
    }
    let needle = text.to_lowercase();
    let mut records: Vec<IdJagRecord> = recent
        .into_iter()
        .filter(|record| token_matches(record, &needle))
        .collect();
    let by_subject = TokenQuery {
        subject: Some(text.to_owned()),
        ..base.clone()
    };
    let by_client = TokenQuery {
        client_id: Some(text.to_owned()),
        ..base
    };
    records.extend(core.list_tokens(&by_subject).await?);
    records.extend(core.list_tokens(&by_client).await?);
    records.sort_unstable_by_key(|record| std::cmp::Reverse(record.id));
    records.dedup_by_key(|record| record.id);
    Ok(records)
}

/// Returns whether a record's subject or client ids contain `needle` (already lowercase).
pub fn token_matches(record: &IdJagRecord, needle: &str) -> bool {
    [
        &record.subject,
        &record.client_id,
        &record.client_id_at_resource_as,
    ]
    .iter()
    .any(|value| value.to_lowercase().contains(needle))
}
