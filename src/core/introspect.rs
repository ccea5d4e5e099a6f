//! Introspection (RFC 7662) and client revocation (RFC 7009) of the access tokens we issue.
//!
//! A token is active only when its signature and issuer check out, its record exists, it is
//! not expired, and neither it nor its ID-JAG nor its subject has been revoked. Revocations
//! mark the access-token records, so one lookup checks all three. A revocation by subject
//! takes some seconds to mark its records, and the snapshot's subject revocations cover them
//! until then.

use chrono::Utc;
use jsonwebtoken::{Algorithm, Validation};
use serde_json::{Map, Value, json};

use crate::core::Core;
use crate::core::exchange::{ClientCredentials, ExchangeError, OAuthErrorCode};
use crate::core::model::{AccessTokenRecord, AuditEventType, NewAuditEvent, Revocation};

/// The caller of an introspection request.
#[derive(Debug, Clone)]
pub enum IntrospectionCaller {
    /// A client of the proxy; it sees only tokens issued to itself.
    Client(ClientCredentials),
    /// The gateway itself, authenticated with the admin token; it sees every token of the proxy.
    Gateway,
}

fn inactive() -> Value {
    json!({ "active": false })
}

impl Core {
    fn authenticate(&self, proxy_id: i64, client: &ClientCredentials) -> Result<(), ExchangeError> {
        if self
            .snapshot()
            .verify_client_secret(proxy_id, &client.client_id, &client.secret)
        {
            Ok(())
        } else {
            Err(ExchangeError::new(
                OAuthErrorCode::InvalidClient,
                "client_auth_failed",
                "unknown client or wrong secret",
            ))
        }
    }

    /// Verifies one of our access tokens for a proxy and returns its record when it is ours.
    async fn lookup_access_token(&self, proxy_id: i64, token: &str) -> Option<AccessTokenRecord> {
        let header = jsonwebtoken::decode_header(token).ok()?;
        if header.alg != Algorithm::ES256 {
            return None;
        }
        let key = self.signing_keys().decoding_key(header.kid.as_deref()?)?;
        let mut validation = Validation::new(Algorithm::ES256);
        validation.set_issuer(&[self.config().proxy_issuer(proxy_id)]);
        validation.validate_aud = false;
        validation.leeway = 0;
        let data = jsonwebtoken::decode::<Map<String, Value>>(token, key, &validation).ok()?;
        let jti = data.claims.get("jti").and_then(Value::as_str)?;
        let mut record = self.store().get_access_token(jti).await.ok()??;
        if record.proxy_id != proxy_id {
            return None;
        }
        self.snapshot().cover_with_subject_revocation(
            &mut record.revocation,
            record.idp_provider_id,
            &record.subject,
            record.issued_at,
        );
        Some(record)
    }

    /// Introspects a token at a proxy. Unknown, expired, revoked, foreign and malformed tokens
    /// all give exactly `{"active": false}`.
    pub async fn introspect(
        &self,
        proxy_id: i64,
        caller: &IntrospectionCaller,
        token: &str,
    ) -> Result<Value, ExchangeError> {
        if let IntrospectionCaller::Client(client) = caller {
            self.authenticate(proxy_id, client)?;
        }
        let Some(record) = self.lookup_access_token(proxy_id, token).await else {
            return Ok(inactive());
        };
        let now = Utc::now();
        let visible = match caller {
            IntrospectionCaller::Client(client) => client.client_id == record.client_id,
            IntrospectionCaller::Gateway => true,
        };
        if !visible || record.revocation.is_some() || record.expires_at <= now {
            return Ok(inactive());
        }
        Ok(json!({
            "active": true,
            "scope": record.scopes.join(" "),
            "client_id": record.client_id,
            "token_type": "Bearer",
            "exp": record.expires_at.timestamp(),
            "iat": record.issued_at.timestamp(),
            "sub": record.subject,
            "aud": record.audience,
            "iss": self.config().proxy_issuer(proxy_id),
            "jti": record.jti,
        }))
    }

    /// Revokes an access token at the request of the client it was issued to (RFC 7009).
    /// Unknown tokens and tokens of other clients are ignored, and the response is the same.
    pub async fn revoke_by_client(
        &self,
        proxy_id: i64,
        client: &ClientCredentials,
        token: &str,
    ) -> Result<(), ExchangeError> {
        self.authenticate(proxy_id, client)?;
        let Some(record) = self.lookup_access_token(proxy_id, token).await else {
            return Ok(());
        };
        if record.client_id != client.client_id || record.revocation.is_some() {
            return Ok(());
        }
        let revocation = Revocation {
            revoked_at: Utc::now(),
            reason: Some("revoked by the client (RFC 7009)".into()),
            revoked_by: Some(format!("client:{}", client.client_id)),
        };
        self.store()
            .revoke_access_token(&record.jti, &revocation)
            .await
            .map_err(|error| {
                tracing::error!(%error, jti = %record.jti, "client revocation failed");
                ExchangeError::new(
                    OAuthErrorCode::TemporarilyUnavailable,
                    "store_unavailable",
                    "the token store could not record the revocation",
                )
            })?;
        let mut fields = Map::new();
        fields.insert("jti".into(), record.jti.clone().into());
        fields.insert("reason".into(), revocation.reason.into());
        fields.insert("revoked_by".into(), revocation.revoked_by.into());
        fields.insert("token_type".into(), "access_token".into());
        let event = NewAuditEvent {
            event_type: AuditEventType::XaaTokenRevoked,
            actor: format!("client:{}", client.client_id),
            proxy_id: Some(proxy_id),
            idp_provider_id: Some(record.idp_provider_id),
            reason_code: None,
            fields,
        };
        self.append_audit(vec![event]).await;
        Ok(())
    }
}
