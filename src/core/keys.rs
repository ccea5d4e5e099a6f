//! The gateway's own access-token signing keys (RFC 9068 JWTs).
//!
//! Keys live in the store so every instance signs with the same key and publishes the same
//! JWKS. The first start generates a P-256 key; every stored key stays published so tokens
//! signed before a rotation still verify until they expire.

use std::sync::Arc;

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::Utc;
use jsonwebtoken::{Algorithm, DecodingKey, Header};
use serde::Serialize;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::core::model::SigningKeyRecord;
use crate::core::store::{Store, StoreError};

/// Errors creating, loading or using signing keys.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("signing key generation failed")]
    Generate,
    #[error("stored signing key '{kid}' is unusable: {problem}")]
    Unusable { kid: String, problem: String },
    #[error("signing failed: {0}")]
    Sign(#[from] jsonwebtoken::errors::Error),
    #[error("signing with key '{kid}' failed")]
    SignWithKey { kid: String },
    #[error(transparent)]
    Store(#[from] StoreError),
}

struct LoadedKey {
    kid: String,
    /// Parsed once at load: parsing PKCS#8 costs about a third of an ES256 signature.
    pair: EcdsaKeyPair,
    decoding: DecodingKey,
    public_jwk: Value,
    active: bool,
}

/// The loaded key ring: one active key for signing, all keys for verifying and publishing.
pub struct SigningKeys {
    keys: Vec<LoadedKey>,
}

impl SigningKeys {
    /// Loads the stored keys, generating and storing an ES256 key when none is active.
    pub async fn load_or_create(store: &Arc<dyn Store>) -> Result<Self, KeyError> {
        let mut records = store.list_signing_keys().await?;
        if !records.iter().any(|record| record.active) {
            let record = generate_es256()?;
            store.insert_signing_key(&record).await?;
            tracing::info!(kid = %record.kid, "generated access-token signing key");
            records.push(record);
        }
        let keys = records
            .iter()
            .map(load_record)
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Self { keys })
    }

    /// The public key set published at every proxy's `jwks.json`.
    pub fn jwks(&self) -> Value {
        json!({ "keys": self.keys.iter().map(|key| key.public_jwk.clone()).collect::<Vec<_>>() })
    }

    /// Signs `claims` as an `at+jwt` with the active key.
    pub fn sign<T: Serialize>(&self, claims: &T) -> Result<String, KeyError> {
        let key = self
            .keys
            .iter()
            .rev()
            .find(|key| key.active)
            .ok_or_else(|| KeyError::Unusable {
                kid: "-".into(),
                problem: "no active key".into(),
            })?;
        let mut header = Header::new(Algorithm::ES256);
        header.typ = Some("at+jwt".into());
        header.kid = Some(key.kid.clone());
        let mut token = URL_SAFE_NO_PAD
            .encode(serde_json::to_vec(&header).map_err(jsonwebtoken::errors::Error::from)?);
        token.push('.');
        URL_SAFE_NO_PAD.encode_string(
            serde_json::to_vec(claims).map_err(jsonwebtoken::errors::Error::from)?,
            &mut token,
        );
        // ECDSA_P256_SHA256_FIXED_SIGNING yields the JWS form of the signature: R || S.
        let signature = key
            .pair
            .sign(&SystemRandom::new(), token.as_bytes())
            .map_err(|_| KeyError::SignWithKey {
                kid: key.kid.clone(),
            })?;
        token.push('.');
        URL_SAFE_NO_PAD.encode_string(signature.as_ref(), &mut token);
        Ok(token)
    }

    /// The verification key with this `kid`.
    pub fn decoding_key(&self, kid: &str) -> Option<&DecodingKey> {
        self.keys
            .iter()
            .find(|key| key.kid == kid)
            .map(|key| &key.decoding)
    }
}

fn generate_es256() -> Result<SigningKeyRecord, KeyError> {
    let rng = SystemRandom::new();
    let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng)
        .map_err(|_| KeyError::Generate)?;
    let pair = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref())
        .map_err(|_| KeyError::Generate)?;
    let (x, y) = split_point(pair.public_key().as_ref()).ok_or(KeyError::Generate)?;
    let kid = thumbprint(&x, &y);
    let public_jwk = json!({
        "kty": "EC", "crv": "P-256", "x": x, "y": y,
        "kid": kid, "use": "sig", "alg": "ES256",
    });
    Ok(SigningKeyRecord {
        kid,
        alg: "ES256".into(),
        private_pkcs8: pkcs8.as_ref().to_vec(),
        public_jwk: public_jwk.to_string(),
        created_at: Utc::now(),
        active: true,
    })
}

/// Splits an uncompressed P-256 point (`04 || X || Y`) into base64url coordinates.
fn split_point(point: &[u8]) -> Option<(String, String)> {
    if point.len() != 65 || point[0] != 4 {
        return None;
    }
    Some((
        URL_SAFE_NO_PAD.encode(&point[1..33]),
        URL_SAFE_NO_PAD.encode(&point[33..]),
    ))
}

/// RFC 7638 JWK thumbprint of a P-256 key, used as its `kid`.
fn thumbprint(x: &str, y: &str) -> String {
    let canonical = format!(r#"{{"crv":"P-256","kty":"EC","x":"{x}","y":"{y}"}}"#);
    URL_SAFE_NO_PAD.encode(Sha256::digest(canonical.as_bytes()))
}

fn load_record(record: &SigningKeyRecord) -> Result<LoadedKey, KeyError> {
    let unusable = |problem: &str| KeyError::Unusable {
        kid: record.kid.clone(),
        problem: problem.to_owned(),
    };
    if record.alg != "ES256" {
        return Err(unusable("only ES256 keys are supported"));
    }
    let public_jwk: Value =
        serde_json::from_str(&record.public_jwk).map_err(|_| unusable("public JWK is not JSON"))?;
    let coordinate = |name: &str| {
        public_jwk
            .get(name)
            .and_then(Value::as_str)
            .map(str::to_owned)
    };
    let (Some(x), Some(y)) = (coordinate("x"), coordinate("y")) else {
        return Err(unusable("public JWK lacks x or y"));
    };
    let decoding =
        DecodingKey::from_ec_components(&x, &y).map_err(|_| unusable("bad EC coordinates"))?;
    let pair = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &record.private_pkcs8)
        .map_err(|_| unusable("private key is not a P-256 PKCS#8 key"))?;
    Ok(LoadedKey {
        kid: record.kid.clone(),
        pair,
        decoding,
        public_jwk,
        active: record.active,
    })
}

#[cfg(test)]
mod tests {
    use jsonwebtoken::Validation;

    use super::*;

    #[test]
    fn signed_token_verifies_with_published_key() {
        let record = generate_es256().unwrap();
        let keys = SigningKeys {
            keys: vec![load_record(&record).unwrap()],
        };
        let token = keys
            .sign(&json!({"sub": "alice", "exp": 4_102_444_800_i64}))
            .unwrap();

        let header = jsonwebtoken::decode_header(&token).unwrap();
        assert_eq!(header.alg, Algorithm::ES256);
        assert_eq!(header.typ.as_deref(), Some("at+jwt"));
        assert_eq!(header.kid.as_deref(), Some(record.kid.as_str()));
        let key = keys.decoding_key(&record.kid).unwrap();
        let mut validation = Validation::new(Algorithm::ES256);
        validation.validate_aud = false;
        let claims = jsonwebtoken::decode::<Value>(&token, key, &validation)
            .unwrap()
            .claims;
        assert_eq!(claims["sub"], "alice");
    }

    #[test]
    fn load_rejects_broken_private_key() {
        let mut record = generate_es256().unwrap();
        record.private_pkcs8.truncate(10);
        assert!(matches!(
            load_record(&record),
            Err(KeyError::Unusable { .. })
        ));
    }
}
