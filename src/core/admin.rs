//! Operator actions: providers, proxies, client mappings, revocation, statistics and audit.
//!
//! The admin API, the CLI verbs and the dashboard all call these, so input checks and audit
//! records are the same whichever way an operator acts.

use aws_lc_rs::rand::SecureRandom;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::Utc;
use serde::Serialize;
use serde_json::Map;
use sha2::{Digest, Sha256};

use crate::core::exchange::claims::{is_jti_text, is_scope_token};
use crate::core::model::{
    AccessTokenRecord, AuditEvent, AuditEventType, AuditQuery, ClientMapping, IdJagRecord,
    NewAuditEvent, NewMapping, NewProvider, NewProxy, Provider, ProviderPatch, Proxy, ProxyKind,
    ProxyPatch, Revocation, SubjectRevocation, TokenQuery, XaaStats,
};
use crate::core::store::{NewClientCredential, ProviderRow};
use crate::core::{Core, CoreError, CoreResult};

/// Longest accepted client id, subject, reason or actor, in bytes.
const MAX_TEXT_BYTES: usize = 256;
/// Longest accepted revocation reason, in bytes.
const MAX_REASON_BYTES: usize = 1024;
/// Algorithms a provider may be allowed to sign ID-JAGs with.
pub const SUPPORTED_ALGS: [&str; 9] = [
    "RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "EdDSA",
];

/// A created mapping, with the new client's secret when this mapping created the client.
#[derive(Debug, Clone, Serialize)]
pub struct CreatedMapping {
    #[serde(flatten)]
    pub mapping: ClientMapping,
    /// Shown once; only its SHA-256 digest is stored.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_secret: Option<String>,
}

/// Result of a revocation by JTI.
#[derive(Debug, Clone, Serialize)]
pub struct RevokeTokenResult {
    pub jti: String,
    pub revoked: bool,
    /// True when every matching record was already revoked before this call.
    pub already_revoked: bool,
    pub message: String,
}

/// Result of a revocation by subject.
#[derive(Debug, Clone, Serialize)]
pub struct RevokeSubjectResult {
    pub idp_provider_id: i64,
    pub subject: String,
    pub revoked_count: i64,
    pub message: String,
}

fn invalid(message: impl Into<String>) -> CoreError {
    CoreError::InvalidInput(message.into())
}

/// Checks free text from operators: non-empty when required, bounded, no control characters.
fn check_text(field: &str, value: &str, max_bytes: usize) -> CoreResult<()> {
    if value.trim().is_empty() {
        return Err(invalid(format!("{field} is empty; give a value")));
    }
    if value.len() > max_bytes {
        return Err(invalid(format!("{field} is longer than {max_bytes} bytes")));
    }
    if value.chars().any(char::is_control) {
        return Err(invalid(format!(
            "{field} '{}' contains control characters; remove them",
            value.escape_default()
        )));
    }
    Ok(())
}

fn check_optional_text(field: &str, value: Option<&str>, max_bytes: usize) -> CoreResult<()> {
    match value {
        Some(text) if !text.is_empty() => check_text(field, text, max_bytes),
        _ => Ok(()),
    }
}

/// Checks a JTI given to the revocation API with the rule the exchange applies
/// ([`is_jti_text`]), so no recorded ID-JAG is out of reach.
pub fn check_jti_format(jti: &str) -> CoreResult<()> {
    if is_jti_text(jti) {
        Ok(())
    } else {
        Err(invalid(format!(
            "jti '{}' is not a valid JTI: use the token's jti claim, a UUID or base64url text \
             of at most 256 visible ASCII characters (no spaces, quotes or backslashes)",
            jti.chars().take(80).collect::<String>().escape_default()
        )))
    }
}

fn check_client_id(field: &str, value: &str) -> CoreResult<()> {
    check_text(field, value, MAX_TEXT_BYTES)?;
    if value.chars().any(char::is_whitespace) {
        return Err(invalid(format!(
            "{field} '{value}' contains whitespace; client ids have none"
        )));
    }
    Ok(())
}

fn check_scopes(scopes: &[String]) -> CoreResult<()> {
    if scopes.is_empty() {
        return Err(invalid(
            "allowed_scopes is empty; list at least one scope, e.g. [\"openid\"]",
        ));
    }
    if scopes.len() > 64 {
        return Err(invalid("allowed_scopes has more than 64 scopes"));
    }
    if let Some(long) = scopes.iter().find(|scope| scope.len() > 256) {
        return Err(invalid(format!(
            "scope '{}...' is longer than 256 bytes",
            long.chars().take(40).collect::<String>()
        )));
    }
    if scopes.iter().map(|scope| scope.len() + 1).sum::<usize>() > 2048 {
        return Err(invalid("allowed_scopes is longer than 2048 bytes in total"));
    }
    if let Some(bad) = scopes.iter().find(|scope| !is_scope_token(scope)) {
        return Err(invalid(format!(
            "scope '{}' is invalid: scopes are printable ASCII without spaces, '\"' or '\\'",
            bad.escape_default()
        )));
    }
    Ok(())
}

fn check_url(field: &str, value: &str, allow_http_loopback: bool) -> CoreResult<()> {
    let parsed = url::Url::parse(value)
        .map_err(|error| invalid(format!("{field} '{value}' is not an absolute URL: {error}")))?;
    let loopback = match parsed.host() {
        Some(url::Host::Domain(host)) => host == "localhost",
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    };
    match parsed.scheme() {
        "https" => Ok(()),
        "http" if allow_http_loopback && loopback => Ok(()),
        _ => Err(invalid(format!(
            "{field} '{value}' must use https (plain http only for loopback hosts)"
        ))),
    }
}

/// 256 random bits, base64url-encoded.
fn generate_secret() -> CoreResult<String> {
    let mut bytes = [0_u8; 32];
    aws_lc_rs::rand::SystemRandom::new()
        .fill(&mut bytes)
        .map_err(|_| CoreError::Internal("the system random generator failed".into()))?;
    Ok(URL_SAFE_NO_PAD.encode(bytes))
}

fn digest(secret: &str) -> Vec<u8> {
    Sha256::digest(secret.as_bytes()).to_vec()
}

fn audit_event(
    event_type: AuditEventType,
    actor: &str,
    proxy_id: Option<i64>,
    idp_provider_id: Option<i64>,
    fields: Map<String, serde_json::Value>,
) -> NewAuditEvent {
    NewAuditEvent {
        event_type,
        actor: actor.to_owned(),
        proxy_id,
        idp_provider_id,
        reason_code: None,
        fields,
    }
}

impl Core {
    // -- Providers --------------------------------------------------------------------------

    /// All providers.
    pub async fn list_providers(&self) -> CoreResult<Vec<Provider>> {
        Ok(self.store().list_providers().await?)
    }

    /// Adds a trusted IdP and starts fetching its keys in the background.
    pub async fn create_provider(&self, new: NewProvider) -> CoreResult<Provider> {
        check_text("name", &new.name, MAX_TEXT_BYTES)?;
        let allow_http = self.config().jwks.allow_http_loopback;
        check_text("issuer", &new.issuer, 1024)?;
        check_url("issuer", &new.issuer, allow_http)?;
        let own = self.config().server.public_url.trim_end_matches('/');
        if new.issuer.trim_end_matches('/') == own
            || new.issuer.starts_with(&format!("{own}/proxies/"))
        {
            return Err(invalid(format!(
                "issuer '{}' is this gateway itself; a provider must be an external IdP",
                new.issuer
            )));
        }
        if let Some(uri) = &new.jwks_uri {
            check_text("jwks_uri", uri, 1024)?;
            check_url("jwks_uri", uri, allow_http)?;
        }
        let defaults = &self.config().providers;
        let row = ProviderRow {
            name: new.name.trim().to_owned(),
            kind: new.kind.unwrap_or(crate::core::model::ProviderKind::Oidc),
            issuer: new.issuer,
            jwks_uri: new.jwks_uri,
            enabled: new.enabled.unwrap_or(true),
            allowed_algs: new
                .allowed_algs
                .unwrap_or_else(|| defaults.allowed_algs.clone()),
            replay_policy: new.replay_policy.unwrap_or(defaults.replay_policy),
            leeway_secs: new.leeway_secs.unwrap_or(defaults.leeway_secs),
            max_lifetime_secs: new.max_lifetime_secs.unwrap_or(defaults.max_lifetime_secs),
        };
        check_provider_limits(&row.allowed_algs, row.leeway_secs, row.max_lifetime_secs)?;
        let provider = self.store().create_provider(&row).await?;
        self.reload().await?;
        self.warm_keys(&provider);
        tracing::info!(provider_id = provider.id, issuer = %provider.issuer, "provider created");
        Ok(provider)
    }

    /// Changes a provider (enable/disable, key location, policy).
    pub async fn update_provider(&self, id: i64, patch: ProviderPatch) -> CoreResult<Provider> {
        if let Some(name) = &patch.name {
            check_text("name", name, MAX_TEXT_BYTES)?;
        }
        if let Some(Some(uri)) = &patch.jwks_uri {
            check_text("jwks_uri", uri, 1024)?;
            check_url("jwks_uri", uri, self.config().jwks.allow_http_loopback)?;
        }
        let current = self.store().get_provider(id).await?;
        check_provider_limits(
            patch.allowed_algs.as_ref().unwrap_or(&current.allowed_algs),
            patch.leeway_secs.unwrap_or(current.leeway_secs),
            patch.max_lifetime_secs.unwrap_or(current.max_lifetime_secs),
        )?;
        let provider = self.store().update_provider(id, &patch).await?;
        if patch.jwks_uri.is_some() {
            self.jwks().forget(id);
            self.warm_keys(&provider);
        }
        self.reload().await?;
        tracing::info!(
            provider_id = id,
            enabled = provider.enabled,
            "provider updated"
        );
        Ok(provider)
    }

    /// Removes a provider that no mapping uses.
    pub async fn delete_provider(&self, id: i64) -> CoreResult<()> {
        self.store().delete_provider(id).await?;
        self.jwks().forget(id);
        self.reload().await?;
        tracing::info!(provider_id = id, "provider deleted");
        Ok(())
    }

    /// Fetches a provider's key set now; returns the number of usable keys.
    pub async fn refresh_provider_keys(&self, id: i64) -> CoreResult<usize> {
        let provider = self.store().get_provider(id).await?;
        self.jwks().refresh_now(&provider).await.map_err(|error| {
            CoreError::Upstream(format!(
                "fetching the key set of provider {id} ('{}') failed: {error}; check that its \
                 issuer or jwks_uri is reachable from this host",
                provider.name
            ))
        })
    }

    fn warm_keys(&self, provider: &Provider) {
        if !provider.enabled {
            return;
        }
        let jwks = std::sync::Arc::clone(self.jwks());
        let provider = provider.clone();
        tokio::spawn(async move {
            if let Err(error) = jwks.refresh_now(&provider).await {
                tracing::warn!(provider_id = provider.id, %error, "first key set fetch failed");
            }
        });
    }

    // -- Proxies ----------------------------------------------------------------------------

    /// All proxies.
    pub async fn list_proxies(&self) -> CoreResult<Vec<Proxy>> {
        Ok(self.store().list_proxies().await?)
    }

    /// One proxy.
    pub async fn get_proxy(&self, id: i64) -> CoreResult<Proxy> {
        Ok(self.store().get_proxy(id).await?)
    }

    /// Adds a proxy. MCP proxies with a resource require the `resource` claim by default.
    pub async fn create_proxy(&self, new: NewProxy) -> CoreResult<Proxy> {
        check_text("name", &new.name, MAX_TEXT_BYTES)?;
        if let Some(resource) = &new.resource {
            let parsed = url::Url::parse(resource).map_err(|error| {
                invalid(format!(
                    "resource '{resource}' is not an absolute URI: {error}"
                ))
            })?;
            if parsed.fragment().is_some() {
                return Err(invalid(format!(
                    "resource '{resource}' must not have a fragment"
                )));
            }
        }
        let require = new
            .require_resource
            .unwrap_or(new.kind == ProxyKind::Mcp && new.resource.is_some());
        if require && new.resource.is_none() {
            return Err(invalid("require_resource is true but no resource is given"));
        }
        let proxy = self.store().create_proxy(&new, require).await?;
        self.reload().await?;
        tracing::info!(proxy_id = proxy.id, name = %proxy.name, "proxy created");
        Ok(proxy)
    }

    /// Changes a proxy (name, issuance kill switch).
    pub async fn update_proxy(&self, id: i64, patch: ProxyPatch) -> CoreResult<Proxy> {
        if let Some(name) = &patch.name {
            check_text("name", name, MAX_TEXT_BYTES)?;
        }
        let proxy = self.store().update_proxy(id, &patch).await?;
        self.reload().await?;
        tracing::info!(
            proxy_id = id,
            issuance_enabled = proxy.issuance_enabled,
            "proxy updated"
        );
        Ok(proxy)
    }

    /// Removes a proxy with its mappings and clients; token records stay for the audit trail.
    pub async fn delete_proxy(&self, id: i64, actor: &str) -> CoreResult<()> {
        // Mappings go one by one first so each removal leaves its own audit record.
        for mapping in self.store().list_mappings(Some(id)).await? {
            self.delete_mapping(id, mapping.id, actor).await?;
        }
        self.store().delete_proxy(id).await?;
        self.reload().await?;
        tracing::info!(proxy_id = id, "proxy deleted");
        Ok(())
    }

    // -- Client mappings ----------------------------------------------------------------------

    /// The mappings of one proxy.
    pub async fn list_mappings(&self, proxy_id: i64) -> CoreResult<Vec<ClientMapping>> {
        self.store().get_proxy(proxy_id).await?;
        Ok(self.store().list_mappings(Some(proxy_id)).await?)
    }

    /// Creates a mapping. When the client at the resource AS does not exist yet on this proxy,
    /// it is created with a fresh secret, returned once.
    pub async fn create_mapping(
        &self,
        proxy_id: i64,
        new: NewMapping,
        actor: &str,
    ) -> CoreResult<CreatedMapping> {
        check_client_id("client_id_at_idp", &new.client_id_at_idp)?;
        check_client_id("client_id_at_resource_as", &new.client_id_at_resource_as)?;
        check_scopes(&new.allowed_scopes)?;
        self.store().get_proxy(proxy_id).await?;
        let provider = self
            .store()
            .get_provider(new.idp_provider_id)
            .await
            .map_err(|_| {
                CoreError::NotFound(format!("provider {} not found", new.idp_provider_id))
            })?;
        if !provider.enabled {
            return Err(CoreError::ProviderDisabled(format!(
                "provider {} ('{}') is disabled; enable it before mapping clients to it",
                provider.id, provider.name
            )));
        }

        let snapshot = self.snapshot();
        let (credential, secret) = if snapshot.has_client(proxy_id, &new.client_id_at_resource_as) {
            (None, None)
        } else {
            let secret = generate_secret()?;
            let credential = NewClientCredential {
                client_id: new.client_id_at_resource_as.clone(),
                secret_hash: digest(&secret),
            };
            (Some(credential), Some(secret))
        };

        let mut fields = Map::new();
        fields.insert("proxy_id".into(), proxy_id.into());
        fields.insert("idp_provider_id".into(), new.idp_provider_id.into());
        fields.insert(
            "client_id_at_idp".into(),
            new.client_id_at_idp.clone().into(),
        );
        fields.insert(
            "client_id_at_resource_as".into(),
            new.client_id_at_resource_as.clone().into(),
        );
        fields.insert("allowed_scopes".into(), new.allowed_scopes.clone().into());
        let audit = audit_event(
            AuditEventType::XaaClientMappingCreated,
            actor,
            Some(proxy_id),
            Some(new.idp_provider_id),
            fields,
        );
        let (mapping, credential_stored) = self
            .store()
            .create_mapping(proxy_id, &new, credential.as_ref(), &audit)
            .await
            .map_err(|error| match CoreError::from(error) {
                CoreError::Conflict(_) => CoreError::Conflict(format!(
                    "a mapping for provider {} and client id at IdP '{}' already exists on proxy {proxy_id}; delete it first",
                    new.idp_provider_id, new.client_id_at_idp
                )),
                other => other,
            })?;
        let mut audit = audit;
        audit.fields.insert("mapping_id".into(), mapping.id.into());
        self.write_audit_file(&[audit]);
        self.reload().await?;
        tracing::info!(proxy_id, mapping_id = mapping.id, "client mapping created");
        // A concurrent request may have created the client first. Its secret then remains valid
        // and ours was never stored, so ours must not be shown.
        let client_secret = secret.filter(|_| credential_stored);
        Ok(CreatedMapping {
            mapping,
            client_secret,
        })
    }

    /// Deletes a mapping; new exchanges for that client fail at once, issued tokens stay valid.
    pub async fn delete_mapping(
        &self,
        proxy_id: i64,
        mapping_id: i64,
        actor: &str,
    ) -> CoreResult<()> {
        self.store().get_proxy(proxy_id).await?;
        let mut fields = Map::new();
        fields.insert("proxy_id".into(), proxy_id.into());
        fields.insert("mapping_id".into(), mapping_id.into());
        let audit = audit_event(
            AuditEventType::XaaClientMappingDeleted,
            actor,
            Some(proxy_id),
            None,
            fields,
        );
        self.store()
            .delete_mapping(proxy_id, mapping_id, &audit)
            .await?;
        self.write_audit_file(&[audit]);
        self.reload().await?;
        tracing::info!(proxy_id, mapping_id, "client mapping deleted");
        Ok(())
    }

    /// Replaces a client's secret and returns the new one (shown once).
    pub async fn rotate_client_secret(&self, proxy_id: i64, client_id: &str) -> CoreResult<String> {
        check_client_id("client_id", client_id)?;
        let secret = generate_secret()?;
        self.store()
            .set_client_secret(proxy_id, client_id, &digest(&secret))
            .await?;
        self.reload().await?;
        tracing::info!(proxy_id, client_id, "client secret rotated");
        Ok(secret)
    }

    // -- Revocation ---------------------------------------------------------------------------

    /// Revokes the ID-JAG (and every access token minted from it) or the access token with this
    /// JTI. Revoking an already revoked token succeeds and reports that it was already revoked.
    pub async fn revoke_token(
        &self,
        jti: &str,
        reason: Option<String>,
        revoked_by: Option<String>,
    ) -> CoreResult<RevokeTokenResult> {
        check_jti_format(jti)?;
        check_optional_text("reason", reason.as_deref(), MAX_REASON_BYTES)?;
        check_optional_text("revoked_by", revoked_by.as_deref(), MAX_TEXT_BYTES)?;
        let revocation = Revocation {
            revoked_at: Utc::now(),
            reason: reason.clone(),
            revoked_by: revoked_by.clone(),
        };
        let mut fields = Map::new();
        fields.insert("jti".into(), jti.into());
        fields.insert("reason".into(), reason.into());
        fields.insert("revoked_by".into(), revoked_by.clone().into());
        let actor = revoked_by.unwrap_or_else(|| "admin".into());
        let audit = audit_event(AuditEventType::XaaTokenRevoked, &actor, None, None, fields);
        let outcome = self
            .store()
            .revoke_jti(jti, &revocation, &audit)
            .await
            .map_err(|error| match CoreError::from(error) {
                CoreError::NotFound(_) => CoreError::NotFound(format!(
                    "no ID-JAG or access token with jti '{jti}' is recorded; check the value"
                )),
                other => other,
            })?;
        self.write_audit_file(&[audit]);
        let already = outcome.newly_revoked == 0;
        tracing::info!(jti, newly_revoked = outcome.newly_revoked, "token revoked");
        Ok(RevokeTokenResult {
            jti: jti.to_owned(),
            revoked: true,
            already_revoked: already,
            message: if already {
                format!("token {jti} was already revoked")
            } else if outcome.newly_revoked > 1 {
                format!(
                    "{} records with jti {jti} revoked (the same jti was issued by several \
                     providers)",
                    outcome.newly_revoked
                )
            } else {
                format!("token {jti} revoked")
            },
        })
    }

    /// Revokes every ID-JAG of a subject at a provider, their access tokens, and any ID-JAG of
    /// that subject issued up to now.
    pub async fn revoke_subject(
        &self,
        idp_provider_id: i64,
        subject: &str,
        reason: Option<String>,
        revoked_by: Option<String>,
    ) -> CoreResult<RevokeSubjectResult> {
        check_text("subject", subject, MAX_TEXT_BYTES)?;
        check_optional_text("reason", reason.as_deref(), MAX_REASON_BYTES)?;
        check_optional_text("revoked_by", revoked_by.as_deref(), MAX_TEXT_BYTES)?;
        self.store().get_provider(idp_provider_id).await?;
        let revocation = SubjectRevocation {
            idp_provider_id,
            subject: subject.to_owned(),
            revoked_at: Utc::now(),
            reason: reason.clone(),
            revoked_by: revoked_by.clone(),
        };
        let mut fields = Map::new();
        fields.insert("subject".into(), subject.into());
        fields.insert("idp_provider_id".into(), idp_provider_id.into());
        fields.insert("reason".into(), reason.into());
        fields.insert("revoked_by".into(), revoked_by.clone().into());
        let actor = revoked_by.unwrap_or_else(|| "admin".into());
        let mut audit = audit_event(
            AuditEventType::XaaTokensRevokedBySubject,
            &actor,
            None,
            Some(idp_provider_id),
            fields,
        );
        let count = self.store().revoke_subject(&revocation, &audit).await?;
        audit.fields.insert("count".into(), count.into());
        self.write_audit_file(&[audit]);
        self.reload().await?;
        self.start_marking(idp_provider_id, subject, count).await?;
        tracing::info!(idp_provider_id, count, "tokens revoked by subject");
        Ok(RevokeSubjectResult {
            idp_provider_id,
            subject: subject.to_owned(),
            revoked_count: count,
            message: format!("{count} token(s) revoked for subject '{subject}'"),
        })
    }

    // -- Statistics, tokens, audit ------------------------------------------------------------

    /// The statistics cards, for all proxies or one.
    pub async fn stats(&self, proxy_id: Option<i64>) -> CoreResult<XaaStats> {
        if let Some(id) = proxy_id {
            self.store().get_proxy(id).await?;
        }
        Ok(self.store().stats(proxy_id, Utc::now()).await?)
    }

    /// Exchanges and rejections per minute over the last `minutes` minutes, one point per
    /// minute (zero where there was no traffic), oldest first.
    pub async fn activity(
        &self,
        proxy_id: Option<i64>,
        minutes: i64,
    ) -> CoreResult<Vec<crate::core::model::ActivityPoint>> {
        let now = Utc::now();
        let first = now - chrono::Duration::minutes(minutes.clamp(1, 24 * 60) - 1);
        let first_minute = first.timestamp().div_euclid(60);
        let stored = self.store().activity(proxy_id, first).await?;
        let points = (0..minutes.clamp(1, 24 * 60))
            .map(|offset| {
                let minute = first_minute + offset;
                stored
                    .iter()
                    .find(|point| point.minute.timestamp().div_euclid(60) == minute)
                    .copied()
                    .unwrap_or(crate::core::model::ActivityPoint {
                        minute: chrono::DateTime::from_timestamp(minute * 60, 0).unwrap_or(now),
                        succeeded: 0,
                        failed: 0,
                    })
            })
            .collect();
        Ok(points)
    }

    /// Rejection counts by reason code over the last `minutes` minutes, most frequent first.
    pub async fn failure_reasons(
        &self,
        proxy_id: Option<i64>,
        minutes: i64,
    ) -> CoreResult<Vec<(String, i64)>> {
        let since = Utc::now() - chrono::Duration::minutes(minutes.max(1));
        Ok(self.store().failure_reasons(proxy_id, since).await?)
    }

    /// ID-JAG records matching the filter, newest first.
    pub async fn list_tokens(&self, query: &TokenQuery) -> CoreResult<Vec<IdJagRecord>> {
        if let Some(status) = query.status.as_deref()
            && !matches!(status, "active" | "revoked" | "expired")
        {
            return Err(invalid(format!(
                "status '{status}' is not one of: active, revoked, expired"
            )));
        }
        let mut records = self.store().list_id_jags(query).await?;
        let snapshot = self.snapshot();
        let mut newly_covered = false;
        for record in &mut records {
            newly_covered |= snapshot.cover_with_subject_revocation(
                &mut record.revocation,
                record.idp_provider_id,
                &record.subject,
                record.issued_at,
            );
        }
        // Records of a subject revoked moments ago are not marked yet, so the store can still
        // list them as active.
        if newly_covered && query.status.as_deref() == Some("active") {
            records.retain(|record| record.revocation.is_none());
        }
        Ok(records)
    }

    /// Returns the ID-JAG records with this JTI (one per provider that issued it), each with
    /// the access tokens minted from it.
    pub async fn token_lineage(
        &self,
        jti: &str,
    ) -> CoreResult<Vec<(IdJagRecord, Vec<AccessTokenRecord>)>> {
        check_jti_format(jti)?;
        let snapshot = self.snapshot();
        let mut lineage = Vec::new();
        for mut record in self.store().find_id_jags_by_jti(jti).await? {
            let mut access_tokens = self.store().list_access_tokens(record.id).await?;
            snapshot.cover_with_subject_revocation(
                &mut record.revocation,
                record.idp_provider_id,
                &record.subject,
                record.issued_at,
            );
            for token in &mut access_tokens {
                snapshot.cover_with_subject_revocation(
                    &mut token.revocation,
                    token.idp_provider_id,
                    &token.subject,
                    token.issued_at,
                );
            }
            lineage.push((record, access_tokens));
        }
        Ok(lineage)
    }

    /// Audit events matching the filter, newest first.
    pub async fn query_audit(&self, query: &AuditQuery) -> CoreResult<Vec<AuditEvent>> {
        Ok(self.store().query_audit(query).await?)
    }
}

fn check_provider_limits(algs: &[String], leeway: i64, max_lifetime: i64) -> CoreResult<()> {
    if algs.is_empty() {
        return Err(invalid(
            "allowed_algs is empty; list at least one, e.g. [\"RS256\"]",
        ));
    }
    if let Some(bad) = algs
        .iter()
        .find(|alg| !SUPPORTED_ALGS.contains(&alg.as_str()))
    {
        return Err(invalid(format!(
            "algorithm '{bad}' is not supported; use any of {}",
            SUPPORTED_ALGS.join(", ")
        )));
    }
    if !(0..=300).contains(&leeway) {
        return Err(invalid(format!(
            "leeway_secs {leeway} must be between 0 and 300"
        )));
    }
    if !(1..=3600).contains(&max_lifetime) {
        return Err(invalid(format!(
            "max_lifetime_secs {max_lifetime} must be between 1 and 3600"
        )));
    }
    Ok(())
}
