//! The in-memory view of configuration that the exchange reads without touching the store:
//! providers, proxies, mappings, client secret digests and subject revocations.
//!
//! A snapshot is immutable. The core builds a new one after every change it makes and when the
//! store's generation counters show a change made by another process or instance.

use std::collections::HashMap;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::config::Config;
use crate::core::model::{ClientMapping, Provider, Proxy, Revocation, SubjectRevocation};
use crate::core::store::{Store, StoreResult};

/// Digest compared when a client id is unknown, so both paths do the same work.
const UNKNOWN_CLIENT_DIGEST: [u8; 32] = [0; 32];

/// One consistent view of the configuration.
#[derive(Debug, Default)]
pub struct Snapshot {
    pub providers: HashMap<i64, Provider>,
    pub proxies: HashMap<i64, Proxy>,
    providers_by_issuer: HashMap<String, i64>,
    mappings: HashMap<i64, Vec<ClientMapping>>,
    client_digests: HashMap<(i64, String), Vec<u8>>,
    subject_revocations: HashMap<(i64, String), SubjectRevocation>,
    /// Subject revocations whose records are still being marked.
    pub pending_subject_revocations: Vec<SubjectRevocation>,
    /// The store's (configuration, revocation) generations this view was built from.
    pub generations: (i64, i64),
}

impl Snapshot {
    /// Reads everything the exchange needs from the store.
    pub async fn load(store: &Arc<dyn Store>) -> StoreResult<Self> {
        let generations = store.generations().await?;
        let providers = store.list_providers().await?;
        let proxies = store.list_proxies().await?;
        let mappings = store.list_mappings(None).await?;
        let clients = store.list_clients().await?;
        let revocations = store.list_subject_revocations().await?;
        let pending = store.pending_subject_revocations().await?;

        let mut snapshot = Self {
            generations,
            ..Self::default()
        };
        for provider in providers {
            snapshot
                .providers_by_issuer
                .insert(provider.issuer.clone(), provider.id);
            snapshot.providers.insert(provider.id, provider);
        }
        snapshot.proxies = proxies.into_iter().map(|proxy| (proxy.id, proxy)).collect();
        for mapping in mappings {
            snapshot
                .mappings
                .entry(mapping.proxy_id)
                .or_default()
                .push(mapping);
        }
        snapshot.client_digests = clients
            .into_iter()
            .map(|client| ((client.proxy_id, client.client_id), client.secret_hash))
            .collect();
        snapshot.subject_revocations = revocations
            .into_iter()
            .map(|revocation| {
                (
                    (revocation.idp_provider_id, revocation.subject.clone()),
                    revocation,
                )
            })
            .collect();
        snapshot.pending_subject_revocations = pending;
        Ok(snapshot)
    }

    /// The provider whose issuer is exactly `issuer`.
    pub fn provider_by_issuer(&self, issuer: &str) -> Option<&Provider> {
        self.providers_by_issuer
            .get(issuer)
            .and_then(|id| self.providers.get(id))
    }

    /// Whether `issuer` names one of this gateway's own proxy issuers.
    pub fn is_own_issuer(&self, config: &Config, issuer: &str) -> bool {
        let prefix = format!(
            "{}/proxies/",
            config.server.public_url.trim_end_matches('/')
        );
        issuer.starts_with(&prefix)
    }

    /// The mappings of one proxy.
    pub fn mappings_for(&self, proxy_id: i64) -> &[ClientMapping] {
        self.mappings.get(&proxy_id).map_or(&[], Vec::as_slice)
    }

    /// Whether `client_id` exists at the proxy and `secret` is its secret. Compares digests in
    /// constant time, and spends the same effort when the client is unknown.
    pub fn verify_client_secret(&self, proxy_id: i64, client_id: &str, secret: &str) -> bool {
        let presented = Sha256::digest(secret.as_bytes());
        let key = (proxy_id, client_id.to_owned());
        if let Some(stored) = self.client_digests.get(&key) {
            bool::from(presented.as_slice().ct_eq(stored))
        } else {
            let _ = presented.as_slice().ct_eq(&UNKNOWN_CLIENT_DIGEST);
            false
        }
    }

    /// Whether a client credential exists at the proxy.
    pub fn has_client(&self, proxy_id: i64, client_id: &str) -> bool {
        self.client_digests
            .contains_key(&(proxy_id, client_id.to_owned()))
    }

    /// When the subject was revoked at this provider, if it was.
    pub fn subject_revoked_at(&self, provider_id: i64, subject: &str) -> Option<DateTime<Utc>> {
        self.subject_revocation(provider_id, subject)
            .map(|revocation| revocation.revoked_at)
    }

    /// Returns the revocation of the subject at this provider, if it was revoked.
    pub fn subject_revocation(
        &self,
        provider_id: i64,
        subject: &str,
    ) -> Option<&SubjectRevocation> {
        self.subject_revocations
            .get(&(provider_id, subject.to_owned()))
    }

    /// Fills in the unset `revocation` of a record issued at `issued_at` when its subject was
    /// revoked later, and returns whether it did. Records are marked some seconds after their
    /// subject is revoked, so until then this check reports them as revoked.
    pub fn cover_with_subject_revocation(
        &self,
        revocation: &mut Option<Revocation>,
        provider_id: i64,
        subject: &str,
        issued_at: DateTime<Utc>,
    ) -> bool {
        if revocation.is_some() {
            return false;
        }
        *revocation = self
            .subject_revocation(provider_id, subject)
            .filter(|subject_revocation| issued_at <= subject_revocation.revoked_at)
            .map(|subject_revocation| Revocation {
                revoked_at: subject_revocation.revoked_at,
                reason: subject_revocation.reason.clone(),
                revoked_by: subject_revocation.revoked_by.clone(),
            });
        revocation.is_some()
    }
}
