//! The demo IdP hosted in the bench process: served on 127.0.0.1 with a count of key set
//! fetches, and used in process to mint the ID-JAGs of each phase before it starts.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use axum::extract::{Request, State};
use axum::middleware::{self, Next};
use axum::response::Response;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use super::server::{Gateway, IDP_CLIENT_ID};
use super::{BenchError, Mode};
use crate::demo::{DemoIdp, MintRequest};

/// Lifetime of minted ID-JAGs, in seconds: longer than any phase, within the provider's
/// default maximum of 600 s.
const VALID_TTL_SECS: i64 = 300;
/// How far the `iat` of the `expired` phase's ID-JAGs lies in the past: their `exp` is 120 s
/// ago, beyond the provider's default clock leeway of 60 s.
const EXPIRED_BACKDATE_SECS: i64 = 180;
const EXPIRED_TTL_SECS: i64 = 60;
/// Distinct subjects the ID-JAGs of a load phase cycle through.
const SUBJECTS: usize = 1000;

/// The demo IdP, serving discovery and JWKS on a loopback port.
pub struct HostedIdp {
    idp: Arc<DemoIdp>,
    jwks_fetches: Arc<AtomicU64>,
    stop: oneshot::Sender<()>,
    task: JoinHandle<()>,
}

impl HostedIdp {
    /// Binds 127.0.0.1 on a free port and serves the IdP until [`Self::stop`].
    pub async fn start() -> Result<Self, BenchError> {
        let (idp, listener) = crate::demo::bind(([127, 0, 0, 1], 0).into()).await?;
        let jwks_fetches = Arc::new(AtomicU64::new(0));
        let router = Arc::clone(&idp)
            .router()
            .layer(middleware::from_fn_with_state(
                Arc::clone(&jwks_fetches),
                count_jwks_fetches,
            ));
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            let shutdown = async move {
                let _ = stopped.await;
            };
            if let Err(error) = axum::serve(listener, router)
                .with_graceful_shutdown(shutdown)
                .await
            {
                tracing::error!(%error, "the demo IdP stopped with an error");
            }
        });
        tracing::info!(issuer = idp.issuer(), "demo IdP started");
        Ok(Self {
            idp,
            jwks_fetches,
            stop,
            task,
        })
    }

    /// Returns the issuer identifier, `http://127.0.0.1:<port>`.
    pub fn issuer(&self) -> &str {
        self.idp.issuer()
    }

    /// `GET /jwks` requests served since start.
    pub fn jwks_fetches(&self) -> u64 {
        self.jwks_fetches.load(Ordering::Relaxed)
    }

    /// Stops serving and waits for the server task.
    pub async fn stop(self) {
        let _ = self.stop.send(());
        if let Err(error) = self.task.await {
            tracing::warn!(%error, "the demo IdP task failed");
        }
    }

    /// Mints `count` ID-JAGs shaped for `mode`.
    pub async fn mint_for_mode(
        &self,
        mode: Mode,
        gateway: &Gateway,
        count: usize,
    ) -> Result<Vec<String>, BenchError> {
        tracing::info!(mode = mode.name(), count, "minting ID-JAGs");
        let mut spec = MintSpec::valid(gateway, "bench-user");
        if mode == Mode::Expired {
            spec.ttl_secs = EXPIRED_TTL_SECS;
            spec.backdate_secs = EXPIRED_BACKDATE_SECS;
        }
        let mut tokens = self.mint_batch(&spec, count).await?;
        match mode {
            Mode::BadSignature => tokens.iter_mut().for_each(corrupt_signature),
            Mode::UnknownKid => tokens.iter_mut().for_each(replace_kid),
            Mode::Success | Mode::Expired | Mode::All | Mode::None => {}
        }
        Ok(tokens)
    }

    /// Mints `count` distinct ID-JAGs on all CPUs. Subjects cycle through [`SUBJECTS`] values
    /// unless the spec fixes one.
    pub async fn mint_batch(
        &self,
        spec: &MintSpec,
        count: usize,
    ) -> Result<Vec<String>, BenchError> {
        let workers = std::thread::available_parallelism().map_or(1, std::num::NonZero::get);
        let per_worker = count.div_ceil(workers);
        let mut tasks = Vec::with_capacity(workers);
        for worker in 0..workers {
            let first = worker * per_worker;
            let last = count.min(first + per_worker);
            let (idp, spec) = (Arc::clone(&self.idp), spec.clone());
            tasks.push(tokio::task::spawn_blocking(move || {
                (first..last)
                    .map(|index| idp.mint(&spec.request(index)))
                    .collect::<Result<Vec<String>, _>>()
            }));
        }
        let mut tokens = Vec::with_capacity(count);
        for task in tasks {
            let minted = task
                .await
                .map_err(|error| BenchError::Task(format!("minting ID-JAGs: {error}")))??;
            tokens.extend(minted);
        }
        Ok(tokens)
    }
}

async fn count_jwks_fetches(
    State(counter): State<Arc<AtomicU64>>,
    request: Request,
    next: Next,
) -> Response {
    if request.uri().path() == "/jwks" {
        counter.fetch_add(1, Ordering::Relaxed);
    }
    next.run(request).await
}

/// The claims of the ID-JAGs to mint.
#[derive(Debug, Clone)]
pub struct MintSpec {
    audience: String,
    /// A fixed subject, or the prefix of [`SUBJECTS`] numbered subjects.
    subject: Subject,
    ttl_secs: i64,
    backdate_secs: i64,
}

#[derive(Debug, Clone)]
enum Subject {
    Fixed(String),
    Numbered(String),
}

impl MintSpec {
    /// Valid ID-JAGs for the gateway's mapping, with numbered subjects `<prefix>-<n>@example.com`.
    pub fn valid(gateway: &Gateway, subject_prefix: &str) -> Self {
        Self {
            audience: gateway.proxy_issuer.clone(),
            subject: Subject::Numbered(subject_prefix.to_owned()),
            ttl_secs: VALID_TTL_SECS,
            backdate_secs: 0,
        }
    }

    /// Valid ID-JAGs for the gateway's mapping, all for `subject`.
    pub fn for_subject(gateway: &Gateway, subject: &str) -> Self {
        Self {
            subject: Subject::Fixed(subject.to_owned()),
            ..Self::valid(gateway, "")
        }
    }

    fn request(&self, index: usize) -> MintRequest {
        let sub = match &self.subject {
            Subject::Fixed(subject) => subject.clone(),
            Subject::Numbered(prefix) => format!("{prefix}-{}@example.com", index % SUBJECTS),
        };
        MintRequest {
            aud: self.audience.clone(),
            client_id: IDP_CLIENT_ID.to_owned(),
            sub,
            scope: Some("openid profile".into()),
            resource: None,
            ttl: Some(self.ttl_secs),
            backdate_secs: Some(self.backdate_secs),
        }
    }
}

/// Changes one character in the middle of the signature segment. The result is still
/// canonical base64url of the same length, so the token parses and fails only at signature
/// verification.
fn corrupt_signature(token: &mut String) {
    let Some(signature_start) = token.rfind('.').map(|dot| dot + 1) else {
        return;
    };
    let position = signature_start + (token.len() - signature_start) / 2;
    let replacement = if token.as_bytes().get(position) == Some(&b'A') {
        "B"
    } else {
        "A"
    };
    token.replace_range(position..=position, replacement);
}

/// Replaces the protected header with one naming a random `kid`, keeping payload and
/// signature. The server rejects it at key selection, before any signature check.
fn replace_kid(token: &mut String) {
    let Some(header_end) = token.find('.') else {
        return;
    };
    let header = serde_json::json!({
        "alg": "ES256",
        "typ": "oauth-id-jag+jwt",
        "kid": format!("unknown-{}", uuid::Uuid::new_v4().simple()),
    });
    token.replace_range(..header_end, &URL_SAFE_NO_PAD.encode(header.to_string()));
}

#[cfg(test)]
mod tests {
    use super::*;

    const TOKEN: &str = "eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJ4In0.QUFBQUFBQUFBQUFB";

    #[test]
    fn corrupt_signature_changes_one_signature_character() {
        let mut token = TOKEN.to_owned();
        corrupt_signature(&mut token);
        let changed: Vec<usize> = token
            .bytes()
            .zip(TOKEN.bytes())
            .enumerate()
            .filter(|(_, (new, old))| new != old)
            .map(|(index, _)| index)
            .collect();
        assert_eq!(changed.len(), 1);
        assert!(changed[0] > TOKEN.rfind('.').unwrap());
        assert_eq!(token.len(), TOKEN.len());
    }

    #[test]
    fn replace_kid_keeps_payload_and_signature() {
        let mut token = TOKEN.to_owned();
        replace_kid(&mut token);
        let (header, rest) = token.split_once('.').unwrap();
        assert_eq!(rest, TOKEN.split_once('.').unwrap().1);
        let decoded: serde_json::Value =
            serde_json::from_slice(&URL_SAFE_NO_PAD.decode(header).unwrap()).unwrap();
        assert!(decoded["kid"].as_str().unwrap().starts_with("unknown-"));
    }
}
