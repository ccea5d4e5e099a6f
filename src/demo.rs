//! A demonstration identity provider for local trials: real ES256 keys, real OpenID discovery
//! and JWKS over HTTP, and a `POST /mint` endpoint that signs ID-JAGs on request.
//!
//! It exists so a newcomer can try the whole exchange without an Okta tenant, and so
//! `xaa demo` can generate traffic. It binds to loopback only and must never be exposed: anyone
//! who can reach `/mint` can obtain ID-JAGs for any subject.

pub mod traffic;

use std::net::SocketAddr;
use std::sync::Arc;

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair};
use axum::Router;
use axum::extract::{Form, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde::Deserialize;
use serde_json::{Value, json};
use tokio::net::TcpListener;

/// Errors of the demonstration IdP.
#[derive(Debug, thiserror::Error)]
pub enum DemoError {
    #[error("key generation failed")]
    KeyGeneration,
    #[error("signing failed: {0}")]
    Sign(#[from] jsonwebtoken::errors::Error),
    #[error("the demo IdP only listens on loopback addresses; {0} is not one")]
    NotLoopback(SocketAddr),
    #[error(transparent)]
    Io(#[from] std::io::Error),
}

/// The claims of an ID-JAG to mint.
#[derive(Debug, Clone, Deserialize)]
pub struct MintRequest {
    /// The proxy's issuer identifier (`{public_url}/proxies/{id}`).
    pub aud: String,
    pub client_id: String,
    pub sub: String,
    /// Space-separated scopes; `openid profile` when absent.
    pub scope: Option<String>,
    pub resource: Option<String>,
    /// Lifetime in seconds; 300 when absent, at most 3600.
    pub ttl: Option<i64>,
    /// Seconds to move `iat` (and so `exp`) into the past, to produce expired ID-JAGs.
    #[serde(default)]
    pub backdate_secs: Option<i64>,
}

/// The demonstration IdP: its issuer and its one signing key.
pub struct DemoIdp {
    issuer: String,
    kid: String,
    key: EncodingKey,
    public_jwk: Value,
}

impl DemoIdp {
    /// Generates a fresh P-256 key for `issuer`.
    pub fn generate(issuer: impl Into<String>) -> Result<Self, DemoError> {
        let rng = SystemRandom::new();
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng)
            .map_err(|_| DemoError::KeyGeneration)?;
        let pair = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref())
            .map_err(|_| DemoError::KeyGeneration)?;
        let point = pair.public_key().as_ref();
        if point.len() != 65 {
            return Err(DemoError::KeyGeneration);
        }
        let kid = format!("demo-{}", uuid::Uuid::new_v4().simple());
        let public_jwk = json!({
            "kty": "EC", "crv": "P-256", "use": "sig", "alg": "ES256", "kid": kid,
            "x": URL_SAFE_NO_PAD.encode(&point[1..33]),
            "y": URL_SAFE_NO_PAD.encode(&point[33..]),
        });
        Ok(Self {
            issuer: issuer.into(),
            kid,
            key: EncodingKey::from_ec_der(pkcs8.as_ref()),
            public_jwk,
        })
    }

    /// The issuer identifier, e.g. `http://127.0.0.1:9000`.
    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    /// Signs an ID-JAG (`typ: oauth-id-jag+jwt`, ES256).
    pub fn mint(&self, request: &MintRequest) -> Result<String, DemoError> {
        let now = chrono::Utc::now().timestamp() - request.backdate_secs.unwrap_or(0).max(0);
        let ttl = request.ttl.unwrap_or(300).clamp(1, 3600);
        let mut claims = json!({
            "iss": self.issuer,
            "sub": request.sub,
            "aud": request.aud,
            "client_id": request.client_id,
            "jti": uuid::Uuid::new_v4().to_string(),
            "iat": now,
            "exp": now + ttl,
            "scope": request.scope.clone().unwrap_or_else(|| "openid profile".into()),
        });
        if let Some(resource) = &request.resource {
            claims["resource"] = resource.clone().into();
        }
        let mut header = Header::new(Algorithm::ES256);
        header.typ = Some("oauth-id-jag+jwt".into());
        header.kid = Some(self.kid.clone());
        Ok(jsonwebtoken::encode(&header, &claims, &self.key)?)
    }

    /// The HTTP routes: discovery, JWKS and `/mint`.
    pub fn router(self: Arc<Self>) -> Router {
        Router::new()
            .route("/.well-known/openid-configuration", get(discovery))
            .route("/.well-known/oauth-authorization-server", get(discovery))
            .route("/jwks", get(jwks))
            .route("/mint", post(mint))
            .with_state(self)
    }
}

async fn discovery(State(idp): State<Arc<DemoIdp>>) -> Response {
    axum::Json(json!({
        "issuer": idp.issuer,
        "jwks_uri": format!("{}/jwks", idp.issuer),
        "token_endpoint": format!("{}/token", idp.issuer),
        "id_token_signing_alg_values_supported": ["ES256"],
    }))
    .into_response()
}

async fn jwks(State(idp): State<Arc<DemoIdp>>) -> Response {
    axum::Json(json!({ "keys": [idp.public_jwk] })).into_response()
}

async fn mint(State(idp): State<Arc<DemoIdp>>, Form(request): Form<MintRequest>) -> Response {
    match idp.mint(&request) {
        Ok(token) => (StatusCode::OK, format!("{token}\n")).into_response(),
        Err(error) => (StatusCode::INTERNAL_SERVER_ERROR, error.to_string()).into_response(),
    }
}

/// Binds the demo IdP on a loopback address and returns it with its listener; the issuer is
/// `http://{bound address}`.
pub async fn bind(addr: SocketAddr) -> Result<(Arc<DemoIdp>, TcpListener), DemoError> {
    if !addr.ip().is_loopback() {
        return Err(DemoError::NotLoopback(addr));
    }
    let listener = TcpListener::bind(addr).await?;
    let issuer = format!("http://{}", listener.local_addr()?);
    Ok((Arc::new(DemoIdp::generate(issuer)?), listener))
}

/// Creates the demo provider, two proxies and their client mappings, and returns the clients
/// (with their one-time secrets) for the traffic generator.
pub async fn seed(
    core: &crate::core::Core,
    idp: &DemoIdp,
) -> Result<Vec<traffic::DemoClient>, crate::core::CoreError> {
    use crate::core::model::{NewMapping, NewProvider, NewProxy, ProviderKind, ProxyKind};

    let provider = core
        .create_provider(NewProvider {
            name: "Demo IdP".into(),
            kind: Some(ProviderKind::Okta),
            issuer: idp.issuer().to_owned(),
            ..NewProvider::default()
        })
        .await?;
    let mcp = core
        .create_proxy(NewProxy {
            name: "mcp-tools".into(),
            kind: ProxyKind::Mcp,
            ..NewProxy::default()
        })
        .await?;
    let llm = core
        .create_proxy(NewProxy {
            name: "llm-gateway".into(),
            kind: ProxyKind::Llm,
            ..NewProxy::default()
        })
        .await?;

    let plan = [
        (
            mcp.id,
            "0oa-demo-agent",
            "agent-at-mcp-tools",
            "openid profile mcp:tools",
        ),
        (
            mcp.id,
            "0oa-demo-ci-bot",
            "ci-bot-at-mcp-tools",
            "openid mcp:read_tools",
        ),
        (
            llm.id,
            "0oa-demo-agent",
            "agent-at-llm-gateway",
            "openid llm:chat",
        ),
    ];
    let mut clients = Vec::new();
    for (proxy_id, at_idp, at_as, scopes) in plan {
        let created = core
            .create_mapping(
                proxy_id,
                NewMapping {
                    idp_provider_id: provider.id,
                    client_id_at_idp: at_idp.into(),
                    client_id_at_resource_as: at_as.into(),
                    allowed_scopes: scopes.split(' ').map(str::to_owned).collect(),
                },
                "demo",
            )
            .await?;
        clients.push(traffic::DemoClient {
            proxy_id,
            provider_id: provider.id,
            client_id_at_idp: at_idp.into(),
            client_id_at_resource_as: at_as.into(),
            secret: created.client_secret.unwrap_or_default(),
            scope: scopes.into(),
        });
    }
    Ok(clients)
}
