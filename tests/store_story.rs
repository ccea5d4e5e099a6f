//! One story over the `Store` trait, run against every store implementation: SQLite in a
//! temporary directory always, PostgreSQL when `XAA_TEST_POSTGRES_URL` names a server (for
//! example `postgres://postgres@127.0.0.1:5432/test`). Each PostgreSQL run creates its own
//! schema and drops it at the end, so concurrent runs never share tables.

// The story's helpers are test code too: a store error there is a test failure.
#![allow(clippy::unwrap_used)]

use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};
use serde_json::{Map, Value, json};
use sqlx::Connection as _;
use sqlx::postgres::PgConnection;
use xaa::core::model::{
    AuditEventType, AuditQuery, JwksCacheEntry, NewAuditEvent, NewMapping, NewProxy, ProviderKind,
    ProviderPatch, ProxyKind, ProxyPatch, ReplayPolicy, Revocation, SigningKeyRecord,
    SubjectRevocation, TokenQuery,
};
use xaa::core::open_store;
use xaa::core::store::{
    ExchangeOutcome, ExchangeWrite, JtiRevocationOutcome, NewAccessToken, NewClientCredential,
    ProviderRow, Store, StoreError,
};

/// Presentations of one ID-JAG raced across two store instances.
const RACING_PRESENTATIONS: i64 = 16;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_store_story() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("xaa.db").display());
    let store = open_store(&url).await.unwrap();
    story(Arc::clone(&store)).await;

    let second = open_store(&url).await.unwrap();
    replay_across_instances(Arc::clone(&store), Arc::clone(&second)).await;
    subject_marking(Arc::clone(&store), Arc::clone(&second)).await;
    second.close().await;
    store.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_store_story() {
    let Ok(base_url) = std::env::var("XAA_TEST_POSTGRES_URL") else {
        println!("skipped PostgreSQL: XAA_TEST_POSTGRES_URL is not set");
        return;
    };
    let schema = format!("xaa_test_{}", uuid::Uuid::new_v4().simple());
    let mut admin = PgConnection::connect(&base_url).await.unwrap();
    sqlx::query(&format!("CREATE SCHEMA {schema}"))
        .execute(&mut admin)
        .await
        .unwrap();

    let mut url = url::Url::parse(&base_url).unwrap();
    url.query_pairs_mut()
        .append_pair("options[search_path]", &schema);
    let stores = (
        open_store(url.as_str()).await,
        open_store(url.as_str()).await,
    );
    // The story runs in its own task so that a failed assertion still reaches the cleanup.
    let outcome = match stores {
        (Ok(store), Ok(second)) => tokio::spawn(async move {
            story(Arc::clone(&store)).await;
            replay_across_instances(Arc::clone(&store), Arc::clone(&second)).await;
            subject_marking(Arc::clone(&store), Arc::clone(&second)).await;
            second.close().await;
            store.close().await;
        })
        .await
        .map_err(tokio::task::JoinError::into_panic),
        (first, second) => Err(Box::new(format!(
            "opening the PostgreSQL store failed: {:?}, {:?}",
            first.err(),
            second.err()
        )) as Box<dyn std::any::Any + Send>),
    };

    sqlx::query(&format!("DROP SCHEMA {schema} CASCADE"))
        .execute(&mut admin)
        .await
        .unwrap();
    admin.close().await.unwrap();
    if let Err(panic) = outcome {
        std::panic::resume_unwind(panic);
    }
}

// ---------------------------------------------------------------------------------------------
// Helpers

/// Returns the current time at the stores' millisecond precision, so stored times compare
/// equal.
fn now_ms() -> DateTime<Utc> {
    DateTime::from_timestamp_millis(Utc::now().timestamp_millis()).unwrap()
}

fn provider_row(name: &str, issuer: &str) -> ProviderRow {
    ProviderRow {
        name: name.into(),
        kind: ProviderKind::Okta,
        issuer: issuer.into(),
        jwks_uri: Some(format!("{issuer}keys")),
        enabled: true,
        allowed_algs: vec!["RS256".into(), "ES256".into()],
        replay_policy: ReplayPolicy::SingleUse,
        leeway_secs: 60,
        max_lifetime_secs: 300,
    }
}

fn event(event_type: AuditEventType, proxy_id: Option<i64>, provider_id: i64) -> NewAuditEvent {
    NewAuditEvent {
        event_type,
        actor: "story".into(),
        proxy_id,
        idp_provider_id: Some(provider_id),
        reason_code: None,
        fields: Map::new(),
    }
}

fn failure(proxy_id: i64, provider_id: i64, reason: &str) -> NewAuditEvent {
    NewAuditEvent {
        reason_code: Some(reason.into()),
        ..event(
            AuditEventType::XaaTokenValidationFailed,
            Some(proxy_id),
            provider_id,
        )
    }
}

/// Builds a first presentation by client `as-client` that expires 30 minutes after `seen_at`
/// and may not be reused. Tests change fields for other cases.
fn presentation(
    provider_id: i64,
    proxy_id: i64,
    jti: &str,
    subject: &str,
    seen_at: DateTime<Utc>,
) -> ExchangeWrite {
    let expires_at = seen_at + Duration::minutes(30);
    let mut success = event(
        AuditEventType::XaaTokenExchange,
        Some(proxy_id),
        provider_id,
    );
    success.fields.insert("jti".into(), jti.into());
    ExchangeWrite {
        idp_provider_id: provider_id,
        proxy_id,
        jti: jti.into(),
        subject: subject.into(),
        client_id: "idp-client".into(),
        client_id_at_resource_as: "as-client".into(),
        scopes: vec!["mcp:tools".into(), "mcp:read".into()],
        issued_at: seen_at,
        expires_at,
        seen_at,
        allow_reuse: false,
        access_token: NewAccessToken {
            jti: format!("at-{jti}-1"),
            audience: "https://mcp.example/".into(),
            issued_at: seen_at,
            expires_at: seen_at + Duration::minutes(5),
        },
        success_audit: vec![success],
    }
}

fn revocation(at: DateTime<Utc>, reason: &str) -> Revocation {
    Revocation {
        revoked_at: at,
        reason: Some(reason.into()),
        revoked_by: Some("admin".into()),
    }
}

async fn assert_generations(store: &dyn Store, config: i64, revocation: i64) {
    assert_eq!(
        store.generations().await.unwrap(),
        (config, revocation),
        "(config_generation, revocation_generation)"
    );
    assert_eq!(store.revocation_generation().await.unwrap(), revocation);
}

async fn audit_of_type(store: &dyn Store, event_type: AuditEventType) -> Vec<Map<String, Value>> {
    let query = AuditQuery {
        event_type: Some(event_type),
        ..AuditQuery::default()
    };
    let events = store.query_audit(&query).await.unwrap();
    events.into_iter().map(|event| event.fields).collect()
}

// ---------------------------------------------------------------------------------------------
// The story

#[allow(clippy::too_many_lines)]
async fn story(store: Arc<dyn Store>) {
    let store = store.as_ref();
    let t0 = now_ms();
    let mut config_generation = 0;
    let mut revocation_generation = 0;
    assert_generations(store, config_generation, revocation_generation).await;

    // Providers.
    let provider = store
        .create_provider(&provider_row("okta-main", "https://idp.example/"))
        .await
        .unwrap();
    config_generation += 1;
    assert_eq!(provider.name, "okta-main");
    assert_eq!(provider.kind, ProviderKind::Okta);
    assert_eq!(provider.issuer, "https://idp.example/");
    assert_eq!(
        provider.jwks_uri.as_deref(),
        Some("https://idp.example/keys")
    );
    assert!(provider.enabled);
    assert_eq!(provider.allowed_algs, ["RS256", "ES256"]);
    assert_eq!(provider.replay_policy, ReplayPolicy::SingleUse);
    assert_eq!(provider.leeway_secs, 60);
    assert_eq!(provider.max_lifetime_secs, 300);
    assert!(provider.created_at >= t0);
    assert_eq!(store.get_provider(provider.id).await.unwrap(), provider);

    let duplicate = store
        .create_provider(&provider_row("okta-main", "https://other.example/"))
        .await;
    assert!(
        matches!(duplicate, Err(StoreError::Conflict(_))),
        "{duplicate:?}"
    );
    let missing = store.get_provider(provider.id + 1000).await;
    assert!(
        matches!(missing, Err(StoreError::NotFound(_))),
        "{missing:?}"
    );

    let patch = ProviderPatch {
        jwks_uri: Some(None),
        leeway_secs: Some(30),
        replay_policy: Some(ReplayPolicy::ReuseUntilExpiry),
        ..ProviderPatch::default()
    };
    let provider = store.update_provider(provider.id, &patch).await.unwrap();
    config_generation += 1;
    assert_eq!(provider.jwks_uri, None);
    assert_eq!(provider.leeway_secs, 30);
    assert_eq!(provider.replay_policy, ReplayPolicy::ReuseUntilExpiry);
    assert_eq!(provider.name, "okta-main");
    assert_eq!(provider.allowed_algs, ["RS256", "ES256"]);
    let missing = store.update_provider(provider.id + 1000, &patch).await;
    assert!(
        matches!(missing, Err(StoreError::NotFound(_))),
        "{missing:?}"
    );

    let other_provider = store
        .create_provider(&provider_row("oidc-other", "https://other.example/"))
        .await
        .unwrap();
    config_generation += 1;
    let providers = store.list_providers().await.unwrap();
    assert_eq!(providers, [provider.clone(), other_provider.clone()]);
    assert_generations(store, config_generation, revocation_generation).await;

    // Proxies.
    let new_proxy = NewProxy {
        name: "mcp-main".into(),
        kind: ProxyKind::Mcp,
        resource: Some("https://mcp.example/".into()),
        require_resource: None,
    };
    let proxy = store.create_proxy(&new_proxy, true).await.unwrap();
    config_generation += 1;
    assert_eq!(proxy.name, "mcp-main");
    assert_eq!(proxy.kind, ProxyKind::Mcp);
    assert_eq!(proxy.resource.as_deref(), Some("https://mcp.example/"));
    assert!(proxy.require_resource);
    assert!(proxy.issuance_enabled);
    let duplicate = store.create_proxy(&new_proxy, false).await;
    assert!(
        matches!(duplicate, Err(StoreError::Conflict(_))),
        "{duplicate:?}"
    );

    let disable = ProxyPatch {
        issuance_enabled: Some(false),
        ..ProxyPatch::default()
    };
    let disabled = store.update_proxy(proxy.id, &disable).await.unwrap();
    config_generation += 1;
    assert!(!disabled.issuance_enabled);
    assert!(disabled.require_resource);
    assert_eq!(disabled.name, "mcp-main");
    let enable = ProxyPatch {
        issuance_enabled: Some(true),
        ..ProxyPatch::default()
    };
    let proxy = store.update_proxy(proxy.id, &enable).await.unwrap();
    config_generation += 1;
    assert!(proxy.issuance_enabled);
    let missing = store.update_proxy(proxy.id + 1000, &enable).await;
    assert!(
        matches!(missing, Err(StoreError::NotFound(_))),
        "{missing:?}"
    );

    let llm_proxy = store
        .create_proxy(
            &NewProxy {
                name: "llm-main".into(),
                kind: ProxyKind::Llm,
                resource: None,
                require_resource: None,
            },
            false,
        )
        .await
        .unwrap();
    config_generation += 1;
    assert_eq!(
        store.list_proxies().await.unwrap(),
        [proxy.clone(), llm_proxy.clone()]
    );
    assert_eq!(store.get_proxy(llm_proxy.id).await.unwrap(), llm_proxy);
    assert_generations(store, config_generation, revocation_generation).await;

    // Client mappings and the resource-AS client they create.
    let new_mapping = NewMapping {
        idp_provider_id: provider.id,
        client_id_at_idp: "idp-client".into(),
        client_id_at_resource_as: "as-client".into(),
        allowed_scopes: vec!["mcp:tools".into(), "mcp:read".into()],
    };
    let credential = NewClientCredential {
        client_id: "as-client".into(),
        secret_hash: vec![1; 32],
    };
    let created_audit = event(
        AuditEventType::XaaClientMappingCreated,
        Some(proxy.id),
        provider.id,
    );
    let (mapping, credential_stored) = store
        .create_mapping(proxy.id, &new_mapping, Some(&credential), &created_audit)
        .await
        .unwrap();
    assert!(
        credential_stored,
        "the first mapping of a client stores its credential"
    );
    config_generation += 1;
    assert_eq!(mapping.proxy_id, proxy.id);
    assert_eq!(mapping.idp_provider_id, provider.id);
    assert_eq!(mapping.idp_provider_name, "okta-main");
    assert_eq!(mapping.client_id_at_idp, "idp-client");
    assert_eq!(mapping.client_id_at_resource_as, "as-client");
    assert_eq!(mapping.allowed_scopes, ["mcp:tools", "mcp:read"]);
    assert_eq!(
        store.get_mapping(proxy.id, mapping.id).await.unwrap(),
        mapping
    );
    let wrong_proxy = store.get_mapping(llm_proxy.id, mapping.id).await;
    assert!(
        matches!(wrong_proxy, Err(StoreError::NotFound(_))),
        "{wrong_proxy:?}"
    );

    let duplicate = store
        .create_mapping(proxy.id, &new_mapping, None, &created_audit)
        .await;
    assert!(
        matches!(duplicate, Err(StoreError::Conflict(_))),
        "{duplicate:?}"
    );
    let unknown_provider = NewMapping {
        idp_provider_id: provider.id + 1000,
        ..new_mapping.clone()
    };
    let dangling = store
        .create_mapping(proxy.id, &unknown_provider, None, &created_audit)
        .await;
    assert!(
        matches!(dangling, Err(StoreError::Conflict(_))),
        "{dangling:?}"
    );

    // A second mapping names the same resource-AS client, so deleting one keeps the client.
    let second_mapping = store
        .create_mapping(
            proxy.id,
            &NewMapping {
                client_id_at_idp: "idp-client-2".into(),
                ..new_mapping.clone()
            },
            None,
            &created_audit,
        )
        .await
        .unwrap()
        .0;
    config_generation += 1;
    assert_eq!(
        store.list_mappings(Some(proxy.id)).await.unwrap(),
        [mapping.clone(), second_mapping.clone()]
    );
    assert_eq!(store.list_mappings(None).await.unwrap().len(), 2);
    assert!(
        store
            .list_mappings(Some(llm_proxy.id))
            .await
            .unwrap()
            .is_empty()
    );
    let created_fields = audit_of_type(store, AuditEventType::XaaClientMappingCreated).await;
    assert_eq!(
        created_fields.len(),
        2,
        "failed creations write no audit event"
    );
    assert_eq!(created_fields[0]["mapping_id"], json!(second_mapping.id));
    assert_eq!(created_fields[1]["mapping_id"], json!(mapping.id));

    let clients = store.list_clients().await.unwrap();
    assert_eq!(clients.len(), 1);
    assert_eq!(clients[0].proxy_id, proxy.id);
    assert_eq!(clients[0].client_id, "as-client");
    assert_eq!(clients[0].secret_hash, vec![1; 32]);
    store
        .set_client_secret(proxy.id, "as-client", &[2; 32])
        .await
        .unwrap();
    config_generation += 1;
    assert_eq!(
        store.list_clients().await.unwrap()[0].secret_hash,
        vec![2; 32]
    );
    let missing = store.set_client_secret(proxy.id, "nobody", &[3; 32]).await;
    assert!(
        matches!(missing, Err(StoreError::NotFound(_))),
        "{missing:?}"
    );

    let in_use = store.delete_provider(provider.id).await;
    assert!(matches!(in_use, Err(StoreError::Conflict(_))), "{in_use:?}");
    assert_generations(store, config_generation, revocation_generation).await;

    // Exchanges: a first presentation, a replay, a reuse and a reuse by another client.
    let first_seen = now_ms();
    let mut write_a = presentation(provider.id, proxy.id, "jti-a", "alice", first_seen);
    write_a.expires_at = first_seen + Duration::minutes(10);
    let ExchangeOutcome::Issued {
        id_jag_id: id_a,
        presentation_count: 1,
    } = store.record_exchange(write_a.clone()).await.unwrap()
    else {
        panic!("the first presentation of jti-a must be issued");
    };

    let mut replay_a = write_a.clone();
    replay_a.seen_at = first_seen + Duration::seconds(5);
    replay_a.access_token.jti = "at-jti-a-2".into();
    assert_eq!(
        store.record_exchange(replay_a.clone()).await.unwrap(),
        ExchangeOutcome::Replayed {
            presentation_count: 2
        }
    );
    assert_eq!(store.get_access_token("at-jti-a-2").await.unwrap(), None);

    let write_b = presentation(provider.id, proxy.id, "jti-b", "alice", first_seen);
    let ExchangeOutcome::Issued {
        id_jag_id: id_b,
        presentation_count: 1,
    } = store.record_exchange(write_b.clone()).await.unwrap()
    else {
        panic!("the first presentation of jti-b must be issued");
    };
    let mut reuse_b = write_b.clone();
    reuse_b.allow_reuse = true;
    reuse_b.seen_at = first_seen + Duration::seconds(10);
    reuse_b.access_token.jti = "at-jti-b-2".into();
    assert_eq!(
        store.record_exchange(reuse_b.clone()).await.unwrap(),
        ExchangeOutcome::Issued {
            id_jag_id: id_b,
            presentation_count: 2
        }
    );
    let mut other_client_b = reuse_b.clone();
    other_client_b.client_id_at_resource_as = "someone-else".into();
    other_client_b.access_token.jti = "at-jti-b-3".into();
    assert_eq!(
        store.record_exchange(other_client_b).await.unwrap(),
        ExchangeOutcome::Replayed {
            presentation_count: 3
        }
    );

    let write_c = presentation(provider.id, llm_proxy.id, "jti-c", "bob", first_seen);
    assert!(matches!(
        store.record_exchange(write_c).await.unwrap(),
        ExchangeOutcome::Issued {
            presentation_count: 1,
            ..
        }
    ));
    // The same JTI from another issuer is a different ID-JAG.
    let mut write_a_other = presentation(other_provider.id, proxy.id, "jti-a", "carol", first_seen);
    write_a_other.access_token.jti = "at-jti-a-other".into();
    let ExchangeOutcome::Issued {
        id_jag_id: id_a_other,
        presentation_count: 1,
    } = store.record_exchange(write_a_other).await.unwrap()
    else {
        panic!("jti-a from another issuer must be issued");
    };
    assert_ne!(id_a_other, id_a);

    // A failing write leaves nothing behind: the access token JTI is taken.
    let mut clashing = presentation(provider.id, proxy.id, "jti-d", "dave", first_seen);
    clashing.access_token.jti = "at-jti-a-1".into();
    let clash = store.record_exchange(clashing).await;
    assert!(matches!(clash, Err(StoreError::Conflict(_))), "{clash:?}");
    assert!(store.find_id_jags_by_jti("jti-d").await.unwrap().is_empty());

    let jti_a_records = store.find_id_jags_by_jti("jti-a").await.unwrap();
    assert_eq!(jti_a_records.len(), 2);
    let record_a = &jti_a_records[0];
    assert_eq!(record_a.id, id_a);
    assert_eq!(record_a.idp_provider_id, provider.id);
    assert_eq!(record_a.proxy_id, proxy.id);
    assert_eq!(record_a.subject, "alice");
    assert_eq!(record_a.client_id, "idp-client");
    assert_eq!(record_a.client_id_at_resource_as, "as-client");
    assert_eq!(record_a.scopes, ["mcp:tools", "mcp:read"]);
    assert_eq!(record_a.issued_at, first_seen);
    assert_eq!(record_a.expires_at, write_a.expires_at);
    assert_eq!(record_a.first_seen_at, first_seen);
    assert_eq!(record_a.last_seen_at, replay_a.seen_at);
    assert_eq!(record_a.presentation_count, 2);
    assert_eq!(record_a.revocation, None);
    assert_eq!(jti_a_records[1].id, id_a_other);

    let tokens_b = store.list_access_tokens(id_b).await.unwrap();
    let token_jtis: Vec<_> = tokens_b.iter().map(|token| token.jti.as_str()).collect();
    assert_eq!(token_jtis.len(), 2);
    assert!(token_jtis.contains(&"at-jti-b-1"), "{token_jtis:?}");
    assert!(token_jtis.contains(&"at-jti-b-2"), "{token_jtis:?}");
    let token_a = store.get_access_token("at-jti-a-1").await.unwrap().unwrap();
    assert_eq!(token_a.id_jag_id, id_a);
    assert_eq!(token_a.proxy_id, proxy.id);
    assert_eq!(token_a.idp_provider_id, provider.id);
    assert_eq!(token_a.subject, "alice");
    assert_eq!(token_a.client_id, "as-client");
    assert_eq!(token_a.scopes, ["mcp:tools", "mcp:read"]);
    assert_eq!(token_a.audience, "https://mcp.example/");
    assert_eq!(token_a.issued_at, write_a.access_token.issued_at);
    assert_eq!(token_a.expires_at, write_a.access_token.expires_at);
    assert_eq!(token_a.revocation, None);
    let exchange_events = audit_of_type(store, AuditEventType::XaaTokenExchange).await;
    assert_eq!(
        exchange_events.len(),
        5,
        "one audit event per issued access token"
    );

    // Statistics before any revocation. Four ID-JAGs: jti-a expires after 10 minutes, the
    // others after 30.
    let stats = store.stats(None, first_seen).await.unwrap();
    assert_eq!(stats.id_jag_tokens.total, 4);
    assert_eq!(stats.id_jag_tokens.active, 4);
    assert_eq!(stats.id_jag_tokens.revoked, 0);
    assert_eq!(stats.id_jag_tokens.last_token_at, Some(reuse_b.seen_at));
    assert_eq!(stats.revocation_generation, 0);
    assert_eq!(stats.client_mappings.total_mappings, 2);
    assert_eq!(stats.client_mappings.providers, 1);
    assert!(stats.client_mappings.last_updated.is_some());
    let proxy_stats = store.stats(Some(proxy.id), first_seen).await.unwrap();
    assert_eq!(proxy_stats.id_jag_tokens.total, 3);
    assert_eq!(proxy_stats.id_jag_tokens.active, 3);
    let llm_stats = store.stats(Some(llm_proxy.id), first_seen).await.unwrap();
    assert_eq!(llm_stats.id_jag_tokens.total, 1);
    assert_eq!(llm_stats.client_mappings.total_mappings, 0);
    // `active` at a given time: jti-a is active a second before its expiry, because its own
    // minute is counted from the table, and inactive at the expiry itself. Nothing is active
    // after 40 minutes.
    let before_a_expires = write_a.expires_at - Duration::seconds(1);
    let stats = store.stats(None, before_a_expires).await.unwrap();
    assert_eq!(stats.id_jag_tokens.active, 4);
    let stats = store.stats(None, write_a.expires_at).await.unwrap();
    assert_eq!(stats.id_jag_tokens.active, 3);
    let stats = store
        .stats(None, first_seen + Duration::minutes(40))
        .await
        .unwrap();
    assert_eq!(stats.id_jag_tokens.active, 0);
    assert_eq!(stats.id_jag_tokens.total, 4);

    // Revocation by JTI: both ID-JAG records with jti-a and their access tokens.
    let revoked_at = now_ms();
    let revoke_audit = event(AuditEventType::XaaTokenRevoked, Some(proxy.id), provider.id);
    let outcome = store
        .revoke_jti("jti-a", &revocation(revoked_at, "leaked"), &revoke_audit)
        .await
        .unwrap();
    revocation_generation += 1;
    assert_eq!(
        outcome,
        JtiRevocationOutcome {
            newly_revoked: 2,
            already_revoked: 0
        }
    );
    let record_a = &store.find_id_jags_by_jti("jti-a").await.unwrap()[0];
    assert_eq!(
        record_a.revocation,
        Some(revocation(revoked_at, "leaked")),
        "revocation stored on the ID-JAG"
    );
    let token_a = store.get_access_token("at-jti-a-1").await.unwrap().unwrap();
    assert_eq!(token_a.revocation, Some(revocation(revoked_at, "leaked")));
    assert_generations(store, config_generation, revocation_generation).await;

    let outcome = store
        .revoke_jti("jti-a", &revocation(now_ms(), "again"), &revoke_audit)
        .await
        .unwrap();
    assert_eq!(
        outcome,
        JtiRevocationOutcome {
            newly_revoked: 0,
            already_revoked: 2
        }
    );
    assert_generations(store, config_generation, revocation_generation).await;
    let revoked_fields = audit_of_type(store, AuditEventType::XaaTokenRevoked).await;
    assert_eq!(revoked_fields.len(), 2);
    assert_eq!(revoked_fields[0]["already_revoked"], json!(true));
    assert_eq!(revoked_fields[1]["already_revoked"], json!(false));
    let record_a = &store.find_id_jags_by_jti("jti-a").await.unwrap()[0];
    assert_eq!(
        record_a.revocation.as_ref().unwrap().reason.as_deref(),
        Some("leaked"),
        "a second revocation keeps the first one's record"
    );

    let mut after_revocation = write_a.clone();
    after_revocation.allow_reuse = true;
    after_revocation.access_token.jti = "at-jti-a-3".into();
    assert_eq!(
        store.record_exchange(after_revocation).await.unwrap(),
        ExchangeOutcome::Revoked
    );
    assert_eq!(store.get_access_token("at-jti-a-3").await.unwrap(), None);

    // Revocation by JTI of an access token, which has no ID-JAG with that JTI.
    let outcome = store
        .revoke_jti(
            "at-jti-b-1",
            &revocation(now_ms(), "one token"),
            &revoke_audit,
        )
        .await
        .unwrap();
    revocation_generation += 1;
    assert_eq!(
        outcome,
        JtiRevocationOutcome {
            newly_revoked: 1,
            already_revoked: 0
        }
    );
    let outcome = store
        .revoke_jti(
            "at-jti-b-1",
            &revocation(now_ms(), "one token"),
            &revoke_audit,
        )
        .await
        .unwrap();
    assert_eq!(
        outcome,
        JtiRevocationOutcome {
            newly_revoked: 0,
            already_revoked: 1
        }
    );
    let unknown = store
        .revoke_jti("no-such-jti", &revocation(now_ms(), "none"), &revoke_audit)
        .await;
    assert!(
        matches!(unknown, Err(StoreError::NotFound(_))),
        "{unknown:?}"
    );
    let record_b = &store.find_id_jags_by_jti("jti-b").await.unwrap()[0];
    assert_eq!(
        record_b.revocation, None,
        "revoking an access token keeps its ID-JAG"
    );
    assert_generations(store, config_generation, revocation_generation).await;

    let stats = store.stats(None, first_seen).await.unwrap();
    assert_eq!(stats.id_jag_tokens.total, 4);
    assert_eq!(stats.id_jag_tokens.revoked, 2);
    assert_eq!(stats.id_jag_tokens.active, 2);
    assert_eq!(stats.revocation_generation, revocation_generation);

    // Token revocation (RFC 7009) of one access token.
    assert!(
        store
            .revoke_access_token("at-jti-b-2", &revocation(now_ms(), "logout"))
            .await
            .unwrap()
    );
    revocation_generation += 1;
    assert!(
        store
            .revoke_access_token("at-jti-b-2", &revocation(now_ms(), "logout"))
            .await
            .unwrap(),
        "an already revoked token still exists"
    );
    assert!(
        !store
            .revoke_access_token("no-such-token", &revocation(now_ms(), "logout"))
            .await
            .unwrap()
    );
    assert_generations(store, config_generation, revocation_generation).await;

    // Revocation by subject: of alice's ID-JAGs only jti-b was still unrevoked.
    let subject_revocation = SubjectRevocation {
        idp_provider_id: provider.id,
        subject: "alice".into(),
        revoked_at: now_ms(),
        reason: Some("offboarded".into()),
        revoked_by: Some("admin".into()),
    };
    let subject_audit = event(AuditEventType::XaaTokensRevokedBySubject, None, provider.id);
    let count = store
        .revoke_subject(&subject_revocation, &subject_audit)
        .await
        .unwrap();
    revocation_generation += 1;
    assert_eq!(count, 1);
    assert_eq!(
        store.pending_subject_revocations().await.unwrap(),
        std::slice::from_ref(&subject_revocation)
    );
    let record_b = &store.find_id_jags_by_jti("jti-b").await.unwrap()[0];
    assert_eq!(
        record_b.revocation, None,
        "the records are marked after the revocation is recorded"
    );
    let progress = store
        .mark_subject_revocation(&subject_revocation, 0, 500)
        .await
        .unwrap();
    revocation_generation += 1;
    assert_eq!((progress.marked, progress.done), (1, true));
    assert_eq!(progress.last_id, record_b.id);
    assert!(
        store
            .pending_subject_revocations()
            .await
            .unwrap()
            .is_empty()
    );
    let record_b = &store.find_id_jags_by_jti("jti-b").await.unwrap()[0];
    assert_eq!(
        record_b.revocation.as_ref().unwrap().reason.as_deref(),
        Some("offboarded")
    );
    let token_b2 = store.get_access_token("at-jti-b-2").await.unwrap().unwrap();
    assert_eq!(
        token_b2.revocation.unwrap().reason.as_deref(),
        Some("logout"),
        "an access token keeps its earlier revocation"
    );
    let count = store
        .revoke_subject(&subject_revocation, &subject_audit)
        .await
        .unwrap();
    revocation_generation += 1;
    assert_eq!(count, 0);
    let progress = store
        .mark_subject_revocation(&subject_revocation, 0, 500)
        .await
        .unwrap();
    revocation_generation += 1;
    assert_eq!((progress.marked, progress.done), (0, true));
    let subject_fields = audit_of_type(store, AuditEventType::XaaTokensRevokedBySubject).await;
    assert_eq!(subject_fields.len(), 2);
    assert_eq!(subject_fields[0]["count"], json!(0));
    assert_eq!(subject_fields[1]["count"], json!(1));
    assert_eq!(
        store.list_subject_revocations().await.unwrap(),
        [subject_revocation]
    );
    assert_generations(store, config_generation, revocation_generation).await;

    let stats = store.stats(None, first_seen).await.unwrap();
    assert_eq!(stats.id_jag_tokens.total, 4);
    assert_eq!(stats.id_jag_tokens.revoked, 3);
    assert_eq!(stats.id_jag_tokens.active, 1);
    assert_eq!(stats.revocation_generation, revocation_generation);
    let proxy_stats = store.stats(Some(proxy.id), first_seen).await.unwrap();
    assert_eq!(proxy_stats.id_jag_tokens.revoked, 3);
    assert_eq!(proxy_stats.id_jag_tokens.active, 0);
    let llm_stats = store.stats(Some(llm_proxy.id), first_seen).await.unwrap();
    assert_eq!(llm_stats.id_jag_tokens.revoked, 0);
    assert_eq!(llm_stats.id_jag_tokens.active, 1);

    // Token listings by status and filter.
    let list = |status: Option<&str>, proxy_id: Option<i64>| TokenQuery {
        status: status.map(str::to_owned),
        proxy_id,
        ..TokenQuery::default()
    };
    let all = store.list_id_jags(&list(None, None)).await.unwrap();
    assert_eq!(all.len(), 4);
    assert!(
        all.windows(2).all(|pair| pair[0].id > pair[1].id),
        "newest first"
    );
    let revoked = store
        .list_id_jags(&list(Some("revoked"), None))
        .await
        .unwrap();
    assert_eq!(revoked.len(), 3);
    let active = store
        .list_id_jags(&list(Some("active"), None))
        .await
        .unwrap();
    assert_eq!(active.len(), 1);
    assert_eq!(active[0].jti, "jti-c");
    let expired = store
        .list_id_jags(&list(Some("expired"), None))
        .await
        .unwrap();
    assert!(expired.is_empty());
    let on_proxy = store
        .list_id_jags(&list(None, Some(proxy.id)))
        .await
        .unwrap();
    assert_eq!(on_proxy.len(), 3);
    let by_subject = TokenQuery {
        subject: Some("bob".into()),
        ..TokenQuery::default()
    };
    assert_eq!(store.list_id_jags(&by_subject).await.unwrap().len(), 1);
    let by_client = TokenQuery {
        client_id: Some("as-client".into()),
        idp_provider_id: Some(provider.id),
        limit: Some(2),
        ..TokenQuery::default()
    };
    assert_eq!(store.list_id_jags(&by_client).await.unwrap().len(), 2);

    // Failures, activity and the audit log.
    store
        .append_audit(vec![
            failure(proxy.id, provider.id, "signature_invalid"),
            failure(proxy.id, provider.id, "expired"),
            failure(proxy.id, provider.id, "signature_invalid"),
        ])
        .await
        .unwrap();
    let since = t0 - Duration::minutes(1);
    assert_eq!(
        store.failure_reasons(None, since).await.unwrap(),
        [
            ("signature_invalid".to_owned(), 2),
            ("expired".to_owned(), 1)
        ]
    );
    assert!(
        store
            .failure_reasons(Some(llm_proxy.id), since)
            .await
            .unwrap()
            .is_empty()
    );
    let activity = store.activity(None, since).await.unwrap();
    assert_eq!(activity.iter().map(|point| point.succeeded).sum::<i64>(), 5);
    assert_eq!(activity.iter().map(|point| point.failed).sum::<i64>(), 3);

    let newest = store
        .query_audit(&AuditQuery {
            limit: Some(1),
            ..AuditQuery::default()
        })
        .await
        .unwrap();
    assert_eq!(newest.len(), 1);
    assert_eq!(
        newest[0].event_type,
        AuditEventType::XaaTokenValidationFailed
    );
    assert_eq!(newest[0].reason_code.as_deref(), Some("signature_invalid"));
    assert_eq!(newest[0].proxy_id, Some(proxy.id));
    assert_eq!(newest[0].idp_provider_id, Some(provider.id));
    assert_eq!(newest[0].actor, "story");
    assert!(newest[0].at >= t0);
    let everything = store.query_audit(&AuditQuery::default()).await.unwrap();
    let after_id = everything[3].id;
    let following = store
        .query_audit(&AuditQuery {
            after_id: Some(after_id),
            ..AuditQuery::default()
        })
        .await
        .unwrap();
    assert_eq!(following.len(), 3);
    let on_llm = store
        .query_audit(&AuditQuery {
            proxy_id: Some(llm_proxy.id),
            ..AuditQuery::default()
        })
        .await
        .unwrap();
    assert_eq!(on_llm.len(), 1, "the exchange of jti-c");
    let from_other = store
        .query_audit(&AuditQuery {
            idp_provider_id: Some(other_provider.id),
            ..AuditQuery::default()
        })
        .await
        .unwrap();
    assert_eq!(
        from_other.len(),
        1,
        "the exchange of jti-a from the other issuer"
    );
    let in_future = store
        .query_audit(&AuditQuery {
            since: Some(now_ms() + Duration::minutes(1)),
            ..AuditQuery::default()
        })
        .await
        .unwrap();
    assert!(in_future.is_empty());

    // JWKS cache.
    assert_eq!(store.load_jwks(provider.id).await.unwrap(), None);
    let fetched_at = now_ms();
    let entry = JwksCacheEntry {
        idp_provider_id: provider.id,
        jwks_json: Some(r#"{"keys":[{"kid":"k1"},{"kid":"k2"}]}"#.into()),
        key_count: 2,
        fetched_at: Some(fetched_at),
        expires_at: Some(fetched_at + Duration::hours(1)),
        last_error: None,
        last_error_at: None,
    };
    let jwks_audit = event(AuditEventType::XaaJwksCacheUpdated, None, provider.id);
    store.save_jwks(&entry, Some(&jwks_audit)).await.unwrap();
    assert_eq!(
        store.load_jwks(provider.id).await.unwrap(),
        Some(entry.clone())
    );
    let failed_refresh = JwksCacheEntry {
        last_error: Some("timed out".into()),
        last_error_at: Some(fetched_at + Duration::minutes(5)),
        ..entry.clone()
    };
    store.save_jwks(&failed_refresh, None).await.unwrap();
    assert_eq!(
        store.load_jwks(provider.id).await.unwrap(),
        Some(failed_refresh.clone())
    );
    assert_eq!(store.list_jwks().await.unwrap(), [failed_refresh]);
    assert_eq!(
        audit_of_type(store, AuditEventType::XaaJwksCacheUpdated)
            .await
            .len(),
        1,
        "only the save that changed the keys carried an audit event"
    );
    let stats = store.stats(None, first_seen).await.unwrap();
    assert_eq!(stats.jwks_cache.total_providers, 1);
    assert_eq!(stats.jwks_cache.total_keys, 2);
    assert_eq!(stats.jwks_cache.last_updated, Some(fetched_at));
    let orphan = JwksCacheEntry {
        idp_provider_id: provider.id + 1000,
        ..entry.clone()
    };
    let orphan = store.save_jwks(&orphan, None).await;
    assert!(matches!(orphan, Err(StoreError::Conflict(_))), "{orphan:?}");

    // Signing keys.
    let older = SigningKeyRecord {
        kid: "key-1".into(),
        alg: "ES256".into(),
        private_pkcs8: vec![0, 1, 2, 255],
        public_jwk: r#"{"kid":"key-1"}"#.into(),
        created_at: t0 - Duration::days(1),
        active: false,
    };
    let newer = SigningKeyRecord {
        kid: "key-2".into(),
        created_at: t0,
        active: true,
        ..older.clone()
    };
    store.insert_signing_key(&newer).await.unwrap();
    store.insert_signing_key(&older).await.unwrap();
    assert_eq!(
        store.list_signing_keys().await.unwrap(),
        [older.clone(), newer.clone()]
    );
    let duplicate = store.insert_signing_key(&newer).await;
    assert!(
        matches!(duplicate, Err(StoreError::Conflict(_))),
        "{duplicate:?}"
    );

    // Deleting mappings: the client goes with the last mapping that names it.
    let deleted_audit = event(
        AuditEventType::XaaClientMappingDeleted,
        Some(proxy.id),
        provider.id,
    );
    store
        .delete_mapping(proxy.id, mapping.id, &deleted_audit)
        .await
        .unwrap();
    config_generation += 1;
    assert_eq!(store.list_clients().await.unwrap().len(), 1);
    store
        .delete_mapping(proxy.id, second_mapping.id, &deleted_audit)
        .await
        .unwrap();
    config_generation += 1;
    assert!(store.list_clients().await.unwrap().is_empty());
    let missing = store
        .delete_mapping(proxy.id, mapping.id, &deleted_audit)
        .await;
    assert!(
        matches!(missing, Err(StoreError::NotFound(_))),
        "{missing:?}"
    );
    assert_eq!(
        audit_of_type(store, AuditEventType::XaaClientMappingDeleted)
            .await
            .len(),
        2
    );
    let stats = store.stats(Some(proxy.id), first_seen).await.unwrap();
    assert_eq!(stats.client_mappings.total_mappings, 0);
    assert_eq!(stats.client_mappings.providers, 0);
    assert!(stats.client_mappings.last_updated.is_some());

    // Deleting providers and proxies.
    store.delete_provider(provider.id).await.unwrap();
    config_generation += 1;
    assert_eq!(
        store.load_jwks(provider.id).await.unwrap(),
        None,
        "the key set goes with its provider"
    );
    let missing = store.delete_provider(provider.id).await;
    assert!(
        matches!(missing, Err(StoreError::NotFound(_))),
        "{missing:?}"
    );
    store.delete_proxy(llm_proxy.id).await.unwrap();
    config_generation += 1;
    let missing = store.delete_proxy(llm_proxy.id).await;
    assert!(
        matches!(missing, Err(StoreError::NotFound(_))),
        "{missing:?}"
    );
    assert_eq!(store.list_providers().await.unwrap(), [other_provider]);
    assert_eq!(store.list_proxies().await.unwrap(), [proxy]);
    assert_generations(store, config_generation, revocation_generation).await;
}

/// Presents one ID-JAG many times at once through two store instances on the same database.
/// Exactly one presentation is issued, and each replay returns a distinct presentation count.
async fn replay_across_instances(first: Arc<dyn Store>, second: Arc<dyn Store>) {
    let provider = first
        .create_provider(&provider_row("racing-idp", "https://racing.example/"))
        .await
        .unwrap();
    let proxy = first
        .create_proxy(
            &NewProxy {
                name: "racing-proxy".into(),
                kind: ProxyKind::Mcp,
                resource: None,
                require_resource: None,
            },
            false,
        )
        .await
        .unwrap();
    let total_before = first
        .stats(None, now_ms())
        .await
        .unwrap()
        .id_jag_tokens
        .total;

    let seen_at = now_ms();
    let mut tasks = Vec::new();
    for attempt in 0..RACING_PRESENTATIONS {
        let store = if attempt % 2 == 0 {
            Arc::clone(&first)
        } else {
            Arc::clone(&second)
        };
        let mut write = presentation(provider.id, proxy.id, "jti-race", "erin", seen_at);
        write.access_token.jti = format!("at-jti-race-{attempt}");
        tasks.push(tokio::spawn(async move {
            store.record_exchange(write).await.unwrap()
        }));
    }
    let mut issued = 0;
    let mut replay_counts = Vec::new();
    for task in tasks {
        match task.await.unwrap() {
            ExchangeOutcome::Issued {
                presentation_count, ..
            } => {
                assert_eq!(presentation_count, 1);
                issued += 1;
            }
            ExchangeOutcome::Replayed { presentation_count } => {
                replay_counts.push(presentation_count);
            }
            ExchangeOutcome::Revoked => panic!("nothing revoked jti-race"),
        }
    }
    assert_eq!(issued, 1, "exactly one presentation is issued");
    replay_counts.sort_unstable();
    let expected: Vec<i64> = (2..=RACING_PRESENTATIONS).collect();
    assert_eq!(replay_counts, expected, "each replay sees its own count");

    let records = second.find_id_jags_by_jti("jti-race").await.unwrap();
    assert_eq!(records.len(), 1);
    assert_eq!(records[0].presentation_count, RACING_PRESENTATIONS);
    assert_eq!(
        second
            .list_access_tokens(records[0].id)
            .await
            .unwrap()
            .len(),
        1
    );
    let total_after = second
        .stats(None, now_ms())
        .await
        .unwrap()
        .id_jag_tokens
        .total;
    assert_eq!(total_after, total_before + 1);
}

/// Marks the records of a revoked subject in chunks: first one instance alone, then two
/// instances on the same database at once. Each covered record is marked once, records
/// issued after the revocation and other subjects' records stay as they were, and the
/// counters move by exactly the marked records.
#[expect(clippy::too_many_lines, reason = "one story, read top to bottom")]
async fn subject_marking(first: Arc<dyn Store>, second: Arc<dyn Store>) {
    let provider = first
        .create_provider(&provider_row("marking-idp", "https://marking.example/"))
        .await
        .unwrap();
    let proxy = first
        .create_proxy(
            &NewProxy {
                name: "marking-proxy".into(),
                kind: ProxyKind::Mcp,
                resource: None,
                require_resource: None,
            },
            false,
        )
        .await
        .unwrap();
    let seen_at = now_ms();
    let record = |jti: &str, subject: &str, issued_at: DateTime<Utc>| {
        let mut write = presentation(provider.id, proxy.id, jti, subject, seen_at);
        write.issued_at = issued_at;
        write
    };
    for number in 0..5 {
        first
            .record_exchange(record(&format!("trudy-{number}"), "trudy", seen_at))
            .await
            .unwrap();
    }
    for number in 0..11 {
        first
            .record_exchange(record(&format!("mallory-{number}"), "mallory", seen_at))
            .await
            .unwrap();
    }
    first
        .record_exchange(record("oscar-0", "oscar", seen_at))
        .await
        .unwrap();
    let stats_before = first.stats(Some(proxy.id), seen_at).await.unwrap();
    assert_eq!(stats_before.id_jag_tokens.active, 17);

    // One instance, chunks of three: three, then two and done.
    let revoked_at = seen_at + Duration::milliseconds(5);
    let trudy = SubjectRevocation {
        idp_provider_id: provider.id,
        subject: "trudy".into(),
        revoked_at,
        reason: Some("stolen laptop".into()),
        revoked_by: Some("story".into()),
    };
    let audit = event(AuditEventType::XaaTokensRevokedBySubject, None, provider.id);
    assert_eq!(first.revoke_subject(&trudy, &audit).await.unwrap(), 5);
    let progress = first.mark_subject_revocation(&trudy, 0, 3).await.unwrap();
    assert_eq!((progress.marked, progress.done), (3, false));
    let progress = first
        .mark_subject_revocation(&trudy, progress.last_id, 3)
        .await
        .unwrap();
    assert_eq!((progress.marked, progress.done), (2, true));

    // Two instances at once, chunks of two, after a record issued past the revocation.
    let mallory = SubjectRevocation {
        subject: "mallory".into(),
        ..trudy.clone()
    };
    assert_eq!(first.revoke_subject(&mallory, &audit).await.unwrap(), 11);
    first
        .record_exchange(record(
            "mallory-new",
            "mallory",
            revoked_at + Duration::seconds(1),
        ))
        .await
        .unwrap();
    let mut markers = Vec::new();
    for store in [Arc::clone(&first), Arc::clone(&second)] {
        let mallory = mallory.clone();
        markers.push(tokio::spawn(async move {
            let (mut marked, mut after_id) = (0, 0);
            for _ in 0..50 {
                let progress = store
                    .mark_subject_revocation(&mallory, after_id, 2)
                    .await
                    .unwrap();
                marked += progress.marked;
                if progress.done {
                    return marked;
                }
                after_id = progress.last_id;
            }
            panic!("marking did not finish in 50 chunks");
        }));
    }
    let mut marked = 0;
    for marker in markers {
        marked += marker.await.unwrap();
    }
    assert_eq!(marked, 11, "each record is marked once");
    assert!(
        first
            .pending_subject_revocations()
            .await
            .unwrap()
            .is_empty()
    );

    for number in 0..11 {
        let jti = format!("mallory-{number}");
        let record = &first.find_id_jags_by_jti(&jti).await.unwrap()[0];
        let revocation = record.revocation.as_ref().unwrap();
        assert_eq!(revocation.reason.as_deref(), Some("stolen laptop"));
        let token = first
            .get_access_token(&format!("at-{jti}-1"))
            .await
            .unwrap()
            .unwrap();
        assert!(token.revocation.is_some(), "{jti}: its access token too");
    }
    let later = &first.find_id_jags_by_jti("mallory-new").await.unwrap()[0];
    assert_eq!(later.revocation, None, "issued after the revocation");
    let oscar = &first.find_id_jags_by_jti("oscar-0").await.unwrap()[0];
    assert_eq!(oscar.revocation, None, "another subject");

    let stats = first.stats(Some(proxy.id), seen_at).await.unwrap();
    assert_eq!(stats.id_jag_tokens.total, 18);
    assert_eq!(stats.id_jag_tokens.revoked, 16);
    assert_eq!(stats.id_jag_tokens.active, 2);
}
