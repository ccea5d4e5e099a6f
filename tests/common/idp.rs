//! Test identity provider: an HTTP server on 127.0.0.1 that publishes discovery metadata and a
//! JWKS, and mints ID-JAGs with keys generated for each run.
//!
//! ```ignore
//! let idp = TestIdp::start().await;
//! let claims = idp.claims("https://as.test", "c1", "user-1");
//! let token = idp.mint(&claims);
//! idp.set_mode(Mode::Error500);
//! ```
//!
//! The server serves these paths, where `{path}` is the issuer path (empty for [`TestIdp::start`]):
//!
//! - `{path}/.well-known/openid-configuration`: OpenID Connect discovery, path appended to the
//!   issuer.
//! - `/.well-known/oauth-authorization-server{path}`: RFC 8414 metadata, well-known segment
//!   inserted between host and path.
//! - `{path}/jwks`: the published keys.
//! - `/attacker/jwks` and `/attacker/cert.pem`: targets for `jku` and `x5u` headers, so a test
//!   can assert through [`TestIdp::attacker_fetches`] that the server never dereferenced them.
//!
//! The token endpoint listed in the metadata is not served.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use aws_lc_rs::encoding::{AsDer, Pkcs8V1Der, PublicKeyX509Der};
use aws_lc_rs::hmac;
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::rsa::KeySize;
use aws_lc_rs::signature::{
    self, EcdsaKeyPair, KeyPair as _, RsaEncoding, RsaKeyPair, RsaPublicKeyComponents,
};
use axum::Router;
use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use parking_lot::Mutex;
use serde_json::{Map, Value, json};
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// `typ` header value that ID-JAGs carry.
pub const ID_JAG_TYP: &str = "oauth-id-jag+jwt";

/// Scope that [`TestIdp::claims`] puts into every ID-JAG.
pub const DEFAULT_SCOPE: &str = "openid profile mcp:tools";

/// Lifetime in seconds (`exp - iat`) of the claims from [`TestIdp::claims`].
pub const DEFAULT_LIFETIME_SECS: i64 = 300;

/// Padding added by [`Mode::Oversized`]: 1 MiB, so any response size cap below that rejects it.
pub const OVERSIZED_BODY_BYTES: usize = 1024 * 1024;

/// Body of a [`Mode::Garbage`] response: an HTML error page sent as `application/json`.
pub const GARBAGE_BODY: &str = "<!DOCTYPE html><html><body><h1>502 Bad Gateway</h1></body></html>";

/// How long [`TestIdp::shutdown`] waits for open connections before it aborts the server task.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

/// Behaviour of the JWKS and discovery endpoints, switchable while the server runs.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Mode {
    /// 200 with the JSON document.
    #[default]
    Normal,
    /// 200 with the JSON document after the given delay. Shutdown cuts the delay short with 503.
    Slow(Duration),
    /// 500 with a small JSON error body.
    Error500,
    /// 200 with [`GARBAGE_BODY`], which is not JSON, under `Content-Type: application/json`.
    Garbage,
    /// 200 with the normal document followed by [`OVERSIZED_BODY_BYTES`] spaces. The body stays
    /// valid JSON, so only a size limit rejects it.
    Oversized,
}

/// RSA signature algorithms for [`KeyChoice::RsaAs`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RsaAlg {
    /// RSASSA-PKCS1-v1_5 with SHA-256.
    Rs256,
    /// RSASSA-PKCS1-v1_5 with SHA-384.
    Rs384,
    /// RSASSA-PKCS1-v1_5 with SHA-512.
    Rs512,
    /// RSASSA-PSS with SHA-256, salt as long as the digest.
    Ps256,
    /// RSASSA-PSS with SHA-384, salt as long as the digest.
    Ps384,
    /// RSASSA-PSS with SHA-512, salt as long as the digest.
    Ps512,
}

impl RsaAlg {
    /// JWS `alg` name.
    pub fn name(self) -> &'static str {
        match self {
            Self::Rs256 => "RS256",
            Self::Rs384 => "RS384",
            Self::Rs512 => "RS512",
            Self::Ps256 => "PS256",
            Self::Ps384 => "PS384",
            Self::Ps512 => "PS512",
        }
    }

    fn encoding(self) -> &'static dyn RsaEncoding {
        match self {
            Self::Rs256 => &signature::RSA_PKCS1_SHA256,
            Self::Rs384 => &signature::RSA_PKCS1_SHA384,
            Self::Rs512 => &signature::RSA_PKCS1_SHA512,
            Self::Ps256 => &signature::RSA_PSS_SHA256,
            Self::Ps384 => &signature::RSA_PSS_SHA384,
            Self::Ps512 => &signature::RSA_PSS_SHA512,
        }
    }

    /// `openssl dgst` digest option, for the PKCS#1 v1.5 algorithms only.
    fn openssl_digest(self) -> Option<&'static str> {
        match self {
            Self::Rs256 => Some("-sha256"),
            Self::Rs384 => Some("-sha384"),
            Self::Rs512 => Some("-sha512"),
            Self::Ps256 | Self::Ps384 | Self::Ps512 => None,
        }
    }
}

/// Key (or absence of one) that signs a token.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum KeyChoice {
    /// The current primary RSA key, signing RS256. [`TestIdp::mint`] uses it.
    Rsa,
    /// The published P-256 key, signing ES256 with the 64-byte R||S signature.
    Ec,
    /// The attacker's RSA key, signing RS256. It stays out of the JWKS unless a test publishes it.
    Attacker,
    /// Any key the IdP holds, published or not, found by `kid`. RSA keys sign RS256 and the
    /// P-256 key signs ES256.
    Kid(String),
    /// An RSA key found by `kid`, signing with the given algorithm instead of RS256.
    RsaAs(String, RsaAlg),
    /// HMAC-SHA256 with this secret, for the case where an RSA public key is misused as an HMAC
    /// secret.
    Hs256(Vec<u8>),
    /// No key: the token ends with an empty signature segment.
    Unsigned,
}

/// A running test IdP. Dropping it stops the server, as does [`TestIdp::shutdown`].
pub struct TestIdp {
    shared: Arc<Shared>,
    addr: SocketAddr,
    server: Option<JoinHandle<()>>,
}

impl TestIdp {
    /// Starts an IdP whose issuer is `http://127.0.0.1:{port}`.
    pub async fn start() -> Self {
        Self::start_at_path("").await
    }

    /// Starts an IdP whose issuer is `http://127.0.0.1:{port}{path}`, for example with
    /// `path = "/tenant1"`. `path` is empty or starts with `/` and has no trailing `/`.
    pub async fn start_at_path(path: &str) -> Self {
        assert!(
            path.is_empty() || (path.starts_with('/') && !path.ends_with('/')),
            "issuer path {path:?} must be empty or start with '/' and not end with '/'"
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("test IdP failed to bind 127.0.0.1:0");
        let addr = listener
            .local_addr()
            .expect("a bound TCP listener has a local address");

        let (shutdown, _) = watch::channel(false);
        let shared = Arc::new(Shared {
            issuer: format!("http://{addr}{path}"),
            origin: format!("http://{addr}"),
            keys: Mutex::new(KeyTable::generate()),
            settings: Mutex::new(Settings::default()),
            jwks_fetches: AtomicUsize::new(0),
            oidc_fetches: AtomicUsize::new(0),
            oauth_fetches: AtomicUsize::new(0),
            attacker_fetches: AtomicUsize::new(0),
            shutdown,
            openssl_dir: Mutex::new(None),
            attacker_cert: Mutex::new(CertState::NotTried),
        });

        let app = router(Arc::clone(&shared), path);
        let mut stop = shared.shutdown.subscribe();
        let signal = async move {
            // An error means the sender is gone, which also ends the server.
            let _ = stop.wait_for(|stopped| *stopped).await;
        };
        let server = tokio::spawn(async move {
            if let Err(error) = axum::serve(listener, app)
                .with_graceful_shutdown(signal)
                .await
            {
                eprintln!("test IdP server on {addr} failed: {error}");
            }
        });

        Self {
            shared,
            addr,
            server: Some(server),
        }
    }

    /// Stops accepting connections, lets open ones finish for up to 5 s, then aborts the task.
    pub async fn shutdown(mut self) {
        self.shared.shutdown.send_replace(true);
        if let Some(mut server) = self.server.take()
            && tokio::time::timeout(SHUTDOWN_GRACE, &mut server)
                .await
                .is_err()
        {
            server.abort();
        }
    }

    // ---- Addresses -------------------------------------------------------------------------

    /// Issuer identifier, `http://127.0.0.1:{port}` plus the path, without a trailing slash.
    pub fn issuer(&self) -> &str {
        &self.shared.issuer
    }

    /// Socket address the server listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// URL of the JWKS, `{issuer}/jwks`.
    pub fn jwks_uri(&self) -> String {
        format!("{}/jwks", self.shared.issuer)
    }

    /// URL listed as `token_endpoint` in the metadata. Nothing is served there.
    pub fn token_endpoint(&self) -> String {
        format!("{}/token", self.shared.issuer)
    }

    /// OpenID Connect discovery URL: `{issuer}/.well-known/openid-configuration`.
    pub fn oidc_discovery_url(&self) -> String {
        format!("{}/.well-known/openid-configuration", self.shared.issuer)
    }

    /// RFC 8414 metadata URL: `/.well-known/oauth-authorization-server` inserted between the
    /// origin and the issuer path.
    pub fn oauth_metadata_url(&self) -> String {
        let path = &self.shared.issuer[self.shared.origin.len()..];
        format!(
            "{}/.well-known/oauth-authorization-server{path}",
            self.shared.origin
        )
    }

    /// URL of a JWKS holding the attacker's public key, for `jku` headers.
    pub fn attacker_jwks_url(&self) -> String {
        format!("{}/attacker/jwks", self.shared.origin)
    }

    /// URL of the attacker's PEM certificate, for `x5u` headers. It returns 404 until
    /// [`TestIdp::attacker_x5c`] has created the certificate.
    pub fn attacker_cert_url(&self) -> String {
        format!("{}/attacker/cert.pem", self.shared.origin)
    }

    // ---- Claims and minting ----------------------------------------------------------------

    /// Builds valid ID-JAG claims: `iss` = this issuer, the given `aud`, `client_id` and `sub`,
    /// a fresh UUID `jti`, `iat` = now, `exp` = now + 300 s and [`DEFAULT_SCOPE`].
    pub fn claims(&self, aud: &str, client_id: &str, sub: &str) -> Value {
        let now = unix_now();
        json!({
            "iss": self.shared.issuer,
            "sub": sub,
            "aud": aud,
            "client_id": client_id,
            "jti": uuid::Uuid::new_v4().to_string(),
            "iat": now,
            "exp": now + DEFAULT_LIFETIME_SECS,
            "scope": DEFAULT_SCOPE,
        })
    }

    /// Signs `claims` with the primary RSA key under the header
    /// `{"typ":"oauth-id-jag+jwt","alg":"RS256","kid":...}`.
    pub fn mint(&self, claims: &Value) -> String {
        self.mint_with(&KeyChoice::Rsa, claims)
    }

    /// Signs `claims` with the P-256 key under an ES256 ID-JAG header.
    pub fn mint_es256(&self, claims: &Value) -> String {
        self.mint_with(&KeyChoice::Ec, claims)
    }

    /// Signs `claims` with `key` under the header from [`TestIdp::header_for`].
    pub fn mint_with(&self, key: &KeyChoice, claims: &Value) -> String {
        self.sign_json(&self.header_for(key), claims, key)
    }

    /// Builds the ID-JAG header that fits `key`: `typ`, the matching `alg` and the key's `kid`.
    /// [`KeyChoice::Hs256`] gets `HS256` with the primary RSA `kid`, and [`KeyChoice::Unsigned`]
    /// gets `none` without a `kid`.
    pub fn header_for(&self, key: &KeyChoice) -> Value {
        let (alg, kid) = match key {
            KeyChoice::Hs256(_) => ("HS256", Some(self.rsa_kid())),
            KeyChoice::Unsigned => ("none", None),
            _ => {
                let (kid, material, rsa_alg) = self.resolve(key);
                let alg = match &*material {
                    KeyMaterial::Ec(_) => "ES256",
                    KeyMaterial::Rsa(_) | KeyMaterial::WeakRsa(_) => {
                        rsa_alg.unwrap_or(RsaAlg::Rs256).name()
                    }
                };
                (alg, Some(kid))
            }
        };
        let mut header = json!({ "typ": ID_JAG_TYP, "alg": alg });
        if let Some(kid) = kid {
            header["kid"] = Value::String(kid);
        }
        header
    }

    /// Serializes `header` and `payload` compactly and signs them with `key`.
    pub fn sign_json(&self, header: &Value, payload: &Value, key: &KeyChoice) -> String {
        self.sign_raw(&header.to_string(), &payload.to_string(), key)
    }

    /// Signs the exact header and payload text, so a test can send duplicate members, odd
    /// values or any other JSON a serializer would not produce.
    pub fn sign_raw(&self, header_json: &str, payload_json: &str, key: &KeyChoice) -> String {
        self.sign_bytes(header_json.as_bytes(), payload_json.as_bytes(), key)
    }

    /// Signs arbitrary header and payload bytes, which need not be UTF-8 or JSON.
    pub fn sign_bytes(&self, header: &[u8], payload: &[u8], key: &KeyChoice) -> String {
        let signing_input = format!("{}.{}", b64url(header), b64url(payload));
        let signature = self.signature(signing_input.as_bytes(), key);
        format!("{signing_input}.{}", b64url(&signature))
    }

    fn signature(&self, signing_input: &[u8], key: &KeyChoice) -> Vec<u8> {
        match key {
            KeyChoice::Hs256(secret) => {
                let hmac_key = hmac::Key::new(hmac::HMAC_SHA256, secret);
                hmac::sign(&hmac_key, signing_input).as_ref().to_vec()
            }
            KeyChoice::Unsigned => Vec::new(),
            _ => {
                // The key is cloned out of the table so the lock is not held while openssl runs.
                let (kid, material, rsa_alg) = self.resolve(key);
                material.sign(&kid, signing_input, rsa_alg)
            }
        }
    }

    /// Finds the key material for a choice that names a key.
    fn resolve(&self, key: &KeyChoice) -> (String, Arc<KeyMaterial>, Option<RsaAlg>) {
        let table = self.shared.keys.lock();
        let (kid, rsa_alg) = match key {
            KeyChoice::Rsa => (table.primary_rsa.clone(), None),
            KeyChoice::Ec => (table.ec.clone(), None),
            KeyChoice::Attacker => (table.attacker.clone(), None),
            KeyChoice::Kid(kid) => (kid.clone(), None),
            KeyChoice::RsaAs(kid, alg) => (kid.clone(), Some(*alg)),
            KeyChoice::Hs256(_) | KeyChoice::Unsigned => {
                unreachable!("{key:?} names no key")
            }
        };
        let material = Arc::clone(&table.get(&kid).material);
        (kid, material, rsa_alg)
    }

    // ---- Keys ------------------------------------------------------------------------------

    /// `kid` of the primary RSA key, the one [`KeyChoice::Rsa`] and [`TestIdp::mint`] use.
    pub fn rsa_kid(&self) -> String {
        self.shared.keys.lock().primary_rsa.clone()
    }

    /// `kid` of the published P-256 key.
    pub fn ec_kid(&self) -> String {
        self.shared.keys.lock().ec.clone()
    }

    /// `kid` of the attacker key, which is never published unless a test calls
    /// [`TestIdp::publish`] on it.
    pub fn attacker_kid(&self) -> String {
        self.shared.keys.lock().attacker.clone()
    }

    /// Generates a new RSA key, publishes it and makes it the primary key. With
    /// `keep_old = false` the previous primary key leaves the JWKS, but tests can still sign
    /// with it through [`KeyChoice::Kid`]. Returns the new `kid`.
    pub fn rotate_rsa(&self, keep_old: bool) -> String {
        let held = HeldKey::generate_rsa("rsa", true, KeyUse::Sig);
        let kid = held.kid.clone();
        let mut table = self.shared.keys.lock();
        if !keep_old {
            let old = table.primary_rsa.clone();
            table.get_mut(&old).published = false;
        }
        table.keys.push(held);
        table.primary_rsa.clone_from(&kid);
        kid
    }

    /// Generates another RSA key and publishes it next to the primary one, so the JWKS contains
    /// two RS256 keys. Returns its `kid`.
    pub fn add_rsa_key(&self) -> String {
        self.insert(HeldKey::generate_rsa("rsa", true, KeyUse::Sig))
    }

    /// Generates an RSA key that the JWKS does not contain until [`TestIdp::publish`] is called.
    /// Returns its `kid`.
    pub fn add_unpublished_rsa_key(&self) -> String {
        self.insert(HeldKey::generate_rsa("rsa", false, KeyUse::Sig))
    }

    /// Generates an RSA key and publishes it with `"use": "enc"` and no `alg`, so `use` is the
    /// only member that makes it unfit for signatures. Returns its `kid`.
    pub fn add_enc_key(&self) -> String {
        self.insert(HeldKey::generate_rsa("rsa-enc", true, KeyUse::Enc))
    }

    /// Generates a 1024-bit RSA key with the `openssl` CLI and publishes it as an RS256 key.
    /// aws-lc-rs rejects RSA keys under 2048 bits, so signing with it also runs `openssl`.
    /// Returns `None`, after printing why, when `openssl` is missing or fails.
    pub fn add_weak_rsa_key(&self) -> Option<String> {
        let kid = new_kid("rsa-weak");
        let dir = self.openssl_dir("the 1024-bit RSA key")?;
        match WeakRsaKey::generate(&dir, &kid) {
            Ok(weak) => Some(self.insert(HeldKey {
                kid,
                material: Arc::new(KeyMaterial::WeakRsa(weak)),
                published: true,
                key_use: KeyUse::Sig,
            })),
            Err(error) => {
                eprintln!("skipping the 1024-bit RSA key: {error}");
                None
            }
        }
    }

    /// Adds `kid` to the JWKS. Panics when the IdP has no key with that `kid`.
    pub fn publish(&self, kid: &str) {
        self.shared.keys.lock().get_mut(kid).published = true;
    }

    /// Removes `kid` from the JWKS while keeping the key for signing. Panics when the IdP has no
    /// key with that `kid`.
    pub fn unpublish(&self, kid: &str) {
        self.shared.keys.lock().get_mut(kid).published = false;
    }

    /// Returns the JWKS that the server sends in [`Mode::Normal`] without a body override.
    pub fn jwks(&self) -> Value {
        self.shared.keys.lock().jwks()
    }

    /// Public JWK of any held key, published or not. Panics on an unknown `kid`.
    pub fn public_jwk(&self, kid: &str) -> Value {
        let table = self.shared.keys.lock();
        let held = table.get(kid);
        held.material.public_jwk(&held.kid, held.key_use)
    }

    /// Public JWK of the attacker key, for embedded `jwk` headers.
    pub fn attacker_jwk(&self) -> Value {
        self.public_jwk(&self.attacker_kid())
    }

    /// PEM-encoded `SubjectPublicKeyInfo` of the primary RSA key, for the case where a token is
    /// HMAC-signed with the public key as the secret.
    pub fn rsa_public_key_pem(&self) -> String {
        let (_, material, _) = self.resolve(&KeyChoice::Rsa);
        let KeyMaterial::Rsa(key_pair) = &*material else {
            unreachable!("the primary RSA key is always generated by aws-lc-rs")
        };
        let spki: PublicKeyX509Der<'static> = key_pair
            .public_key()
            .as_der()
            .expect("aws-lc-rs encodes its own RSA public key");
        pem("PUBLIC KEY", spki.as_ref())
    }

    /// `x5c` chain (one self-signed certificate, standard base64 DER) for the attacker key.
    /// Returns `None`, after printing why, when `openssl` is missing or fails.
    pub fn attacker_x5c(&self) -> Option<Vec<String>> {
        self.attacker_cert_der()
            .map(|der| vec![STANDARD.encode(der)])
    }

    fn attacker_cert_der(&self) -> Option<Vec<u8>> {
        match self.shared.attacker_cert.lock().clone() {
            CertState::NotTried => {}
            CertState::Failed => return None,
            CertState::Created(der) => return Some(der),
        }
        let dir = self.openssl_dir("the attacker certificate")?;
        let (_, material, _) = self.resolve(&KeyChoice::Attacker);
        let KeyMaterial::Rsa(key_pair) = &*material else {
            unreachable!("the attacker key is always generated by aws-lc-rs")
        };
        match self_signed_cert(&dir, key_pair) {
            Ok(der) => {
                *self.shared.attacker_cert.lock() = CertState::Created(der.clone());
                Some(der)
            }
            Err(error) => {
                eprintln!("skipping the attacker certificate: {error}");
                *self.shared.attacker_cert.lock() = CertState::Failed;
                None
            }
        }
    }

    fn insert(&self, held: HeldKey) -> String {
        let kid = held.kid.clone();
        self.shared.keys.lock().keys.push(held);
        kid
    }

    /// Directory for the openssl key and certificate files, deleted with the IdP. Returns `None`,
    /// after printing that `purpose` is skipped, when `openssl` cannot run.
    fn openssl_dir(&self, purpose: &str) -> Option<PathBuf> {
        let mut dir = self.shared.openssl_dir.lock();
        if let Some(existing) = dir.as_ref() {
            return Some(existing.path().to_path_buf());
        }
        if let Err(error) = run_openssl(&["version"], None) {
            eprintln!("skipping {purpose}, which needs the openssl CLI: {error}");
            return None;
        }
        let created = tempfile::tempdir().expect("failed to create a temporary directory");
        let path = created.path().to_path_buf();
        *dir = Some(created);
        Some(path)
    }

    // ---- Server behaviour ------------------------------------------------------------------

    /// Sets the mode of the JWKS and both discovery endpoints.
    pub fn set_mode(&self, mode: Mode) {
        let mut settings = self.shared.settings.lock();
        settings.jwks_mode = mode;
        settings.discovery_mode = mode;
    }

    /// Sets the mode of the JWKS endpoint only.
    pub fn set_jwks_mode(&self, mode: Mode) {
        self.shared.settings.lock().jwks_mode = mode;
    }

    /// Sets the mode of both discovery endpoints only.
    pub fn set_discovery_mode(&self, mode: Mode) {
        self.shared.settings.lock().discovery_mode = mode;
    }

    /// Sends `Cache-Control: max-age={seconds}` on successful JWKS and discovery responses, or
    /// no `Cache-Control` header with `None` (the default).
    pub fn set_cache_max_age(&self, seconds: Option<u64>) {
        self.shared.settings.lock().cache_max_age = seconds;
    }

    /// Serves `body` verbatim as the JWKS instead of the generated set, or the generated set
    /// again with `None`. Modes still apply.
    pub fn set_jwks_body(&self, body: Option<String>) {
        self.shared.settings.lock().jwks_body = body;
    }

    /// Sets member `name` in both discovery documents, replacing the generated value. A
    /// `Value::Null` removes the member instead.
    pub fn set_discovery_member(&self, name: &str, value: Value) {
        self.shared
            .settings
            .lock()
            .discovery_overrides
            .insert(name.to_owned(), value);
    }

    /// Drops every change made by [`TestIdp::set_discovery_member`].
    pub fn clear_discovery_members(&self) {
        self.shared.settings.lock().discovery_overrides.clear();
    }

    /// Serves OpenID Connect discovery (`true`, the default) or 404 (`false`).
    pub fn set_oidc_discovery_enabled(&self, enabled: bool) {
        self.shared.settings.lock().oidc_enabled = enabled;
    }

    /// Serves RFC 8414 metadata (`true`, the default) or 404 (`false`).
    pub fn set_oauth_metadata_enabled(&self, enabled: bool) {
        self.shared.settings.lock().oauth_enabled = enabled;
    }

    // ---- Counters --------------------------------------------------------------------------

    /// Requests received on the JWKS endpoint, in every mode.
    pub fn jwks_fetches(&self) -> usize {
        self.shared.jwks_fetches.load(Ordering::SeqCst)
    }

    /// Requests received on both discovery endpoints together, in every mode.
    pub fn discovery_fetches(&self) -> usize {
        self.oidc_discovery_fetches() + self.oauth_metadata_fetches()
    }

    /// Requests received on the OpenID Connect discovery endpoint.
    pub fn oidc_discovery_fetches(&self) -> usize {
        self.shared.oidc_fetches.load(Ordering::SeqCst)
    }

    /// Requests received on the RFC 8414 metadata endpoint.
    pub fn oauth_metadata_fetches(&self) -> usize {
        self.shared.oauth_fetches.load(Ordering::SeqCst)
    }

    /// Requests received on the attacker URLs (`/attacker/jwks` and `/attacker/cert.pem`).
    pub fn attacker_fetches(&self) -> usize {
        self.shared.attacker_fetches.load(Ordering::SeqCst)
    }

    /// Sets every counter back to zero.
    pub fn reset_counters(&self) {
        for counter in [
            &self.shared.jwks_fetches,
            &self.shared.oidc_fetches,
            &self.shared.oauth_fetches,
            &self.shared.attacker_fetches,
        ] {
            counter.store(0, Ordering::SeqCst);
        }
    }
}

impl Drop for TestIdp {
    fn drop(&mut self) {
        // The signal makes open connections close gracefully, and the abort closes the listener.
        self.shared.shutdown.send_replace(true);
        if let Some(server) = self.server.take() {
            server.abort();
        }
    }
}

// ---- Key material ------------------------------------------------------------------------------

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum KeyUse {
    Sig,
    Enc,
}

struct HeldKey {
    kid: String,
    material: Arc<KeyMaterial>,
    published: bool,
    key_use: KeyUse,
}

impl HeldKey {
    fn generate_rsa(prefix: &str, published: bool, key_use: KeyUse) -> Self {
        let key_pair =
            RsaKeyPair::generate(KeySize::Rsa2048).expect("aws-lc-rs failed to generate RSA 2048");
        Self {
            kid: new_kid(prefix),
            material: Arc::new(KeyMaterial::Rsa(key_pair)),
            published,
            key_use,
        }
    }
}

enum KeyMaterial {
    Rsa(RsaKeyPair),
    Ec(EcdsaKeyPair),
    WeakRsa(WeakRsaKey),
}

impl KeyMaterial {
    /// Public JWK. Keys with `use: enc` get no `alg`.
    fn public_jwk(&self, kid: &str, key_use: KeyUse) -> Value {
        let mut jwk = match self {
            Self::Rsa(key_pair) => {
                // NOTE: this `From` impl exists only with the aws-lc-rs `ring-io` feature, which
                // jsonwebtoken's default aws-lc-rs features enable in this dependency tree.
                let components = RsaPublicKeyComponents::<Vec<u8>>::from(key_pair.public_key());
                rsa_jwk(&components.n, &components.e)
            }
            Self::WeakRsa(weak) => rsa_jwk(&weak.n, &weak.e),
            Self::Ec(key_pair) => {
                // Uncompressed SEC 1 point: 0x04, then 32 bytes of x and 32 bytes of y.
                let point = key_pair.public_key().as_ref();
                json!({
                    "kty": "EC",
                    "crv": "P-256",
                    "alg": "ES256",
                    "x": b64url(&point[1..33]),
                    "y": b64url(&point[33..65]),
                })
            }
        };
        jwk["kid"] = Value::String(kid.to_owned());
        match key_use {
            KeyUse::Sig => jwk["use"] = json!("sig"),
            KeyUse::Enc => {
                jwk["use"] = json!("enc");
                if let Some(members) = jwk.as_object_mut() {
                    members.remove("alg");
                }
            }
        }
        jwk
    }

    fn sign(&self, kid: &str, signing_input: &[u8], rsa_alg: Option<RsaAlg>) -> Vec<u8> {
        let rng = SystemRandom::new();
        match self {
            Self::Rsa(key_pair) => {
                let alg = rsa_alg.unwrap_or(RsaAlg::Rs256);
                let mut signature = vec![0; key_pair.public_modulus_len()];
                key_pair
                    .sign(alg.encoding(), &rng, signing_input, &mut signature)
                    .expect("aws-lc-rs failed to sign with an RSA key");
                signature
            }
            Self::Ec(key_pair) => {
                assert!(
                    rsa_alg.is_none(),
                    "key {kid} is a P-256 key and signs only ES256"
                );
                key_pair
                    .sign(&rng, signing_input)
                    .expect("aws-lc-rs failed to sign with the P-256 key")
                    .as_ref()
                    .to_vec()
            }
            Self::WeakRsa(weak) => {
                let alg = rsa_alg.unwrap_or(RsaAlg::Rs256);
                weak.sign(signing_input, alg)
                    .unwrap_or_else(|error| panic!("signing with key {kid} failed: {error}"))
            }
        }
    }
}

fn rsa_jwk(n: &[u8], e: &[u8]) -> Value {
    json!({ "kty": "RSA", "alg": "RS256", "n": b64url(n), "e": b64url(e) })
}

fn new_kid(prefix: &str) -> String {
    let id = uuid::Uuid::new_v4().simple().to_string();
    format!("{prefix}-{}", &id[..12])
}

struct KeyTable {
    /// Keys in insertion order, which is also their order in the JWKS.
    keys: Vec<HeldKey>,
    primary_rsa: String,
    ec: String,
    attacker: String,
}

impl KeyTable {
    /// Generates the starting set: one published RSA key, one published P-256 key and the
    /// unpublished attacker RSA key.
    fn generate() -> Self {
        let rsa = HeldKey::generate_rsa("rsa", true, KeyUse::Sig);
        let attacker = HeldKey::generate_rsa("attacker", false, KeyUse::Sig);
        let ec_pair = EcdsaKeyPair::generate(&signature::ECDSA_P256_SHA256_FIXED_SIGNING)
            .expect("aws-lc-rs failed to generate a P-256 key");
        let ec = HeldKey {
            kid: new_kid("ec"),
            material: Arc::new(KeyMaterial::Ec(ec_pair)),
            published: true,
            key_use: KeyUse::Sig,
        };
        Self {
            primary_rsa: rsa.kid.clone(),
            ec: ec.kid.clone(),
            attacker: attacker.kid.clone(),
            keys: vec![rsa, ec, attacker],
        }
    }

    fn get(&self, kid: &str) -> &HeldKey {
        self.keys
            .iter()
            .find(|held| held.kid == kid)
            .unwrap_or_else(|| panic!("the test IdP has no key with kid {kid:?}"))
    }

    fn get_mut(&mut self, kid: &str) -> &mut HeldKey {
        self.keys
            .iter_mut()
            .find(|held| held.kid == kid)
            .unwrap_or_else(|| panic!("the test IdP has no key with kid {kid:?}"))
    }

    fn jwks(&self) -> Value {
        let keys: Vec<Value> = self
            .keys
            .iter()
            .filter(|held| held.published)
            .map(|held| held.material.public_jwk(&held.kid, held.key_use))
            .collect();
        json!({ "keys": keys })
    }
}

// ---- openssl helpers ---------------------------------------------------------------------------

/// 1024-bit RSA key stored as a PEM file and used through the `openssl` CLI.
struct WeakRsaKey {
    pem_path: PathBuf,
    n: Vec<u8>,
    e: Vec<u8>,
}

impl WeakRsaKey {
    fn generate(dir: &Path, kid: &str) -> Result<Self, String> {
        let pem_path = dir.join(format!("{kid}.pem"));
        let path = path_str(&pem_path)?;
        run_openssl(
            &[
                "genpkey",
                "-algorithm",
                "RSA",
                "-pkeyopt",
                "rsa_keygen_bits:1024",
                "-pkeyopt",
                "rsa_keygen_pubexp:65537",
                "-out",
                path,
            ],
            None,
        )?;
        let output = run_openssl(&["rsa", "-in", path, "-noout", "-modulus"], None)?;
        let text = String::from_utf8(output).map_err(|_| "openssl printed non-UTF-8 output")?;
        let hex = text
            .trim()
            .strip_prefix("Modulus=")
            .ok_or_else(|| format!("unexpected `openssl rsa -modulus` output: {text:?}"))?;
        let n = decode_hex(hex)?;
        Ok(Self {
            pem_path,
            n,
            // The exponent requested from genpkey above.
            e: vec![0x01, 0x00, 0x01],
        })
    }

    fn sign(&self, signing_input: &[u8], alg: RsaAlg) -> Result<Vec<u8>, String> {
        let digest = alg.openssl_digest().ok_or_else(|| {
            format!(
                "the 1024-bit key signs only RS256/384/512, not {}",
                alg.name()
            )
        })?;
        let path = path_str(&self.pem_path)?;
        run_openssl(&["dgst", digest, "-sign", path], Some(signing_input))
    }
}

/// Creates a self-signed certificate for `key_pair`, valid for one day, and returns its DER.
fn self_signed_cert(dir: &Path, key_pair: &RsaKeyPair) -> Result<Vec<u8>, String> {
    let pkcs8: Pkcs8V1Der<'static> = key_pair
        .as_der()
        .map_err(|_| "aws-lc-rs failed to encode the attacker key as PKCS#8")?;
    let key_path = dir.join("attacker-key.pem");
    let cert_path = dir.join("attacker-cert.der");
    std::fs::write(&key_path, pem("PRIVATE KEY", pkcs8.as_ref()))
        .map_err(|error| format!("failed to write {}: {error}", key_path.display()))?;
    run_openssl(
        &[
            "req",
            "-x509",
            "-new",
            "-key",
            path_str(&key_path)?,
            "-subj",
            "/CN=attacker.test",
            "-days",
            "1",
            "-outform",
            "DER",
            "-out",
            path_str(&cert_path)?,
        ],
        None,
    )?;
    std::fs::read(&cert_path)
        .map_err(|error| format!("failed to read {}: {error}", cert_path.display()))
}

/// Runs `openssl` with `args`, feeding `stdin` if given, and returns its standard output.
fn run_openssl(args: &[&str], stdin: Option<&[u8]>) -> Result<Vec<u8>, String> {
    use std::io::Write as _;

    let mut child = Command::new("openssl")
        .args(args)
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|error| format!("failed to run openssl: {error}"))?;
    if let (Some(input), Some(mut pipe)) = (stdin, child.stdin.take()) {
        pipe.write_all(input)
            .map_err(|error| format!("failed to write to openssl: {error}"))?;
    }
    let output = child
        .wait_with_output()
        .map_err(|error| format!("failed to wait for openssl: {error}"))?;
    if output.status.success() {
        Ok(output.stdout)
    } else {
        Err(format!(
            "`openssl {}` failed with {}: {}",
            args.join(" "),
            output.status,
            String::from_utf8_lossy(&output.stderr).trim()
        ))
    }
}

fn path_str(path: &Path) -> Result<&str, String> {
    path.to_str()
        .ok_or_else(|| format!("temporary path {} is not UTF-8", path.display()))
}

fn decode_hex(hex: &str) -> Result<Vec<u8>, String> {
    if !hex.len().is_multiple_of(2) {
        return Err(format!("odd-length hex string of {} digits", hex.len()));
    }
    (0..hex.len())
        .step_by(2)
        .map(|i| {
            u8::from_str_radix(&hex[i..i + 2], 16)
                .map_err(|_| format!("invalid hex digits {:?}", &hex[i..i + 2]))
        })
        .collect()
}

fn pem(label: &str, der: &[u8]) -> String {
    let encoded = STANDARD.encode(der);
    let mut text = format!("-----BEGIN {label}-----\n");
    for line in encoded.as_bytes().chunks(64) {
        text.push_str(std::str::from_utf8(line).expect("base64 output is ASCII"));
        text.push('\n');
    }
    text.push_str("-----END ");
    text.push_str(label);
    text.push_str("-----\n");
    text
}

// ---- HTTP server -------------------------------------------------------------------------------

struct Shared {
    issuer: String,
    /// `http://127.0.0.1:{port}`, the issuer without its path.
    origin: String,
    keys: Mutex<KeyTable>,
    settings: Mutex<Settings>,
    jwks_fetches: AtomicUsize,
    oidc_fetches: AtomicUsize,
    oauth_fetches: AtomicUsize,
    attacker_fetches: AtomicUsize,
    /// Becomes `true` when the IdP shuts down.
    shutdown: watch::Sender<bool>,
    /// Holds the openssl files, created on first use.
    openssl_dir: Mutex<Option<tempfile::TempDir>>,
    attacker_cert: Mutex<CertState>,
}

/// Progress of the attacker certificate, which openssl creates on first use.
#[derive(Clone)]
enum CertState {
    NotTried,
    Failed,
    Created(Vec<u8>),
}

struct Settings {
    jwks_mode: Mode,
    discovery_mode: Mode,
    cache_max_age: Option<u64>,
    jwks_body: Option<String>,
    discovery_overrides: Map<String, Value>,
    oidc_enabled: bool,
    oauth_enabled: bool,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            jwks_mode: Mode::Normal,
            discovery_mode: Mode::Normal,
            cache_max_age: None,
            jwks_body: None,
            discovery_overrides: Map::new(),
            oidc_enabled: true,
            oauth_enabled: true,
        }
    }
}

fn router(shared: Arc<Shared>, path: &str) -> Router {
    Router::new()
        .route(
            &format!("{path}/.well-known/openid-configuration"),
            get(oidc_discovery),
        )
        .route(
            &format!("/.well-known/oauth-authorization-server{path}"),
            get(oauth_metadata),
        )
        .route(&format!("{path}/jwks"), get(jwks))
        .route("/attacker/jwks", get(attacker_jwks))
        .route("/attacker/cert.pem", get(attacker_cert))
        .with_state(shared)
}

async fn jwks(State(shared): State<Arc<Shared>>) -> Response {
    shared.jwks_fetches.fetch_add(1, Ordering::SeqCst);
    let (mode, max_age, body) = {
        let settings = shared.settings.lock();
        (
            settings.jwks_mode,
            settings.cache_max_age,
            settings.jwks_body.clone(),
        )
    };
    let body = body.unwrap_or_else(|| shared.keys.lock().jwks().to_string());
    respond(&shared, mode, max_age, body).await
}

async fn oidc_discovery(State(shared): State<Arc<Shared>>) -> Response {
    shared.oidc_fetches.fetch_add(1, Ordering::SeqCst);
    let enabled = shared.settings.lock().oidc_enabled;
    discovery(&shared, enabled).await
}

async fn oauth_metadata(State(shared): State<Arc<Shared>>) -> Response {
    shared.oauth_fetches.fetch_add(1, Ordering::SeqCst);
    let enabled = shared.settings.lock().oauth_enabled;
    discovery(&shared, enabled).await
}

async fn discovery(shared: &Shared, enabled: bool) -> Response {
    if !enabled {
        return StatusCode::NOT_FOUND.into_response();
    }
    let (mode, max_age, body) = {
        let settings = shared.settings.lock();
        let document = discovery_document(&shared.issuer, &settings.discovery_overrides);
        (
            settings.discovery_mode,
            settings.cache_max_age,
            document.to_string(),
        )
    };
    respond(shared, mode, max_age, body).await
}

/// Builds the metadata document that both discovery endpoints serve.
fn discovery_document(issuer: &str, overrides: &Map<String, Value>) -> Value {
    let mut document = json!({
        "issuer": issuer,
        "jwks_uri": format!("{issuer}/jwks"),
        "token_endpoint": format!("{issuer}/token"),
        "authorization_endpoint": format!("{issuer}/authorize"),
        "response_types_supported": ["code"],
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": ["RS256", "ES256"],
        "grant_types_supported": [
            "authorization_code",
            "urn:ietf:params:oauth:grant-type:token-exchange"
        ],
    });
    let members = document
        .as_object_mut()
        .expect("the document literal is a JSON object");
    for (name, value) in overrides {
        if value.is_null() {
            members.remove(name);
        } else {
            members.insert(name.clone(), value.clone());
        }
    }
    document
}

async fn attacker_jwks(State(shared): State<Arc<Shared>>) -> Response {
    shared.attacker_fetches.fetch_add(1, Ordering::SeqCst);
    let body = {
        let table = shared.keys.lock();
        let held = table.get(&table.attacker);
        json!({ "keys": [held.material.public_jwk(&held.kid, held.key_use)] }).to_string()
    };
    json_response(body, None)
}

async fn attacker_cert(State(shared): State<Arc<Shared>>) -> Response {
    shared.attacker_fetches.fetch_add(1, Ordering::SeqCst);
    let cert = shared.attacker_cert.lock().clone();
    match cert {
        CertState::Created(der) => (
            [(header::CONTENT_TYPE, "application/x-pem-file")],
            pem("CERTIFICATE", &der),
        )
            .into_response(),
        CertState::NotTried | CertState::Failed => StatusCode::NOT_FOUND.into_response(),
    }
}

async fn respond(shared: &Shared, mode: Mode, max_age: Option<u64>, body: String) -> Response {
    match mode {
        Mode::Normal => json_response(body, max_age),
        Mode::Slow(delay) => {
            let mut stop = shared.shutdown.subscribe();
            tokio::select! {
                () = tokio::time::sleep(delay) => json_response(body, max_age),
                _ = stop.wait_for(|stopped| *stopped) => {
                    StatusCode::SERVICE_UNAVAILABLE.into_response()
                }
            }
        }
        Mode::Error500 => (
            StatusCode::INTERNAL_SERVER_ERROR,
            [(header::CONTENT_TYPE, "application/json")],
            r#"{"error":"server_error"}"#,
        )
            .into_response(),
        Mode::Garbage => json_response(GARBAGE_BODY.to_owned(), max_age),
        Mode::Oversized => {
            let mut padded = body;
            padded.extend(std::iter::repeat_n(' ', OVERSIZED_BODY_BYTES));
            json_response(padded, max_age)
        }
    }
}

fn json_response(body: String, max_age: Option<u64>) -> Response {
    let mut response = ([(header::CONTENT_TYPE, "application/json")], body).into_response();
    if let Some(seconds) = max_age {
        let value = HeaderValue::from_str(&format!("max-age={seconds}"))
            .expect("max-age=<digits> is a valid header value");
        response.headers_mut().insert(header::CACHE_CONTROL, value);
    }
    response
}

// ---- Token helpers -----------------------------------------------------------------------------

/// Current time in whole seconds since the Unix epoch.
pub fn unix_now() -> i64 {
    chrono::Utc::now().timestamp()
}

/// Base64url without padding, as JWS segments use.
pub fn b64url(bytes: impl AsRef<[u8]>) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

/// Decodes one base64url JWS segment. Panics on invalid input.
pub fn b64url_decode(segment: &str) -> Vec<u8> {
    URL_SAFE_NO_PAD
        .decode(segment)
        .unwrap_or_else(|error| panic!("invalid base64url segment {segment:?}: {error}"))
}

/// Splits a compact JWS into its three segments. Panics unless there are exactly three.
pub fn split_token(token: &str) -> [&str; 3] {
    let segments: Vec<&str> = token.split('.').collect();
    <[&str; 3]>::try_from(segments)
        .unwrap_or_else(|segments| panic!("expected 3 JWS segments, found {}", segments.len()))
}

/// Decodes the JOSE header of a compact JWS as JSON.
pub fn decode_header(token: &str) -> Value {
    decode_json_segment(split_token(token)[0])
}

/// Decodes the payload of a compact JWS as JSON.
pub fn decode_payload(token: &str) -> Value {
    decode_json_segment(split_token(token)[1])
}

fn decode_json_segment(segment: &str) -> Value {
    serde_json::from_slice(&b64url_decode(segment)).expect("JWS segment is not JSON")
}

/// Flips the lowest bit of the first signature byte.
pub fn flip_signature_bit(token: &str) -> String {
    let [header, payload, signature] = split_token(token);
    let mut bytes = b64url_decode(signature);
    assert!(
        !bytes.is_empty(),
        "the token has no signature to tamper with"
    );
    bytes[0] ^= 1;
    format!("{header}.{payload}.{}", b64url(bytes))
}

/// Flips the lowest bit of the last ASCII digit in the payload and keeps the signature. A digit
/// stays a digit (0↔1, 2↔3 and so on), and the last digit of a number is never its leading
/// digit unless the number has one digit, so the payload stays valid JSON.
pub fn flip_payload_bit(token: &str) -> String {
    let [header, payload, signature] = split_token(token);
    let mut bytes = b64url_decode(payload);
    let position = bytes
        .iter()
        .rposition(u8::is_ascii_digit)
        .expect("the payload has no digit to flip");
    bytes[position] ^= 1;
    format!("{header}.{}.{signature}", b64url(bytes))
}

/// Re-encodes an ES256 token's 64-byte R||S signature as an ASN.1 DER `ECDSA-Sig-Value`. JWS
/// requires the R||S form (RFC 7518, section 3.4), so a verifier must reject this variant.
pub fn es256_der_variant(token: &str) -> String {
    let [header, payload, signature] = split_token(token);
    let raw = b64url_decode(signature);
    assert_eq!(raw.len(), 64, "an ES256 signature has 64 bytes");
    let mut content = der_integer(&raw[..32]);
    content.extend(der_integer(&raw[32..]));
    let mut der = vec![0x30, der_length(content.len())];
    der.extend(content);
    format!("{header}.{payload}.{}", b64url(der))
}

/// DER INTEGER for an unsigned big-endian value: leading zeros trimmed, and one zero byte
/// prepended when the top bit is set so the value stays positive.
fn der_integer(unsigned: &[u8]) -> Vec<u8> {
    let first_nonzero = unsigned
        .iter()
        .position(|byte| *byte != 0)
        .unwrap_or(unsigned.len() - 1);
    let trimmed = &unsigned[first_nonzero..];
    let mut content = Vec::with_capacity(trimmed.len() + 1);
    if trimmed[0] & 0x80 != 0 {
        content.push(0);
    }
    content.extend_from_slice(trimmed);
    let mut integer = vec![0x02, der_length(content.len())];
    integer.extend(content);
    integer
}

/// Short-form DER length, enough for P-256 signatures (at most 70 content bytes).
fn der_length(length: usize) -> u8 {
    let short = u8::try_from(length).expect("ES256 DER parts are shorter than 128 bytes");
    assert!(short < 0x80, "length {length} needs the long DER form");
    short
}
