//! Demo traffic: a task that redeems ID-JAGs at the local token endpoints over real HTTP, with a
//! share of failures of several kinds and an occasional revocation, so the dashboard has
//! something to show from the first second.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;

use super::{DemoIdp, MintRequest};
use crate::core::Core;

/// One client the generator redeems for.
#[derive(Debug, Clone)]
pub struct DemoClient {
    pub proxy_id: i64,
    pub provider_id: i64,
    pub client_id_at_idp: String,
    pub client_id_at_resource_as: String,
    pub secret: String,
    pub scope: String,
}

/// The kind of request the generator sends next.
#[derive(Debug, Clone, Copy)]
enum Shape {
    Valid,
    Replay,
    Expired,
    WrongAudience,
    WrongSecret,
    UnknownClient,
}

/// Picks a request shape: mostly valid, with each failure kind now and then.
fn shape_for(sequence: u64) -> Shape {
    match sequence % 20 {
        3 => Shape::Replay,
        7 => Shape::Expired,
        11 => Shape::WrongAudience,
        13 => Shape::WrongSecret,
        17 => Shape::UnknownClient,
        _ => Shape::Valid,
    }
}

const SUBJECTS: [&str; 6] = [
    "alice@example.com",
    "bob@example.com",
    "carol@example.com",
    "dave@example.com",
    "erin@example.com",
    "frank@example.com",
];

/// Runs until `stop` turns true: a few requests per second across `clients`, and a
/// revocation by subject every few minutes.
pub async fn run(
    core: Core,
    idp: Arc<DemoIdp>,
    clients: Vec<DemoClient>,
    mut stop: watch::Receiver<bool>,
) {
    let http = match reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .build()
    {
        Ok(http) => http,
        Err(error) => {
            tracing::error!(%error, "demo traffic: cannot build an HTTP client");
            return;
        }
    };
    let mut ticker = tokio::time::interval(Duration::from_millis(400));
    let mut sequence: u64 = 0;
    while !clients.is_empty() {
        tokio::select! {
            _ = ticker.tick() => {}
            _ = stop.changed() => break,
        }
        sequence += 1;
        let index = usize::try_from(sequence).unwrap_or(0) % clients.len();
        let client = &clients[index];
        let subject = SUBJECTS[usize::try_from(sequence / 7).unwrap_or(0) % SUBJECTS.len()];
        if let Err(error) = send_one(&core, &idp, &http, client, subject, shape_for(sequence)).await
        {
            tracing::debug!(%error, "demo traffic request failed");
        }
        if sequence.is_multiple_of(450) {
            revoke_someone(&core, client, subject).await;
        }
    }
}

async fn send_one(
    core: &Core,
    idp: &DemoIdp,
    http: &reqwest::Client,
    client: &DemoClient,
    subject: &str,
    shape: Shape,
) -> Result<(), String> {
    let issuer = core.config().proxy_issuer(client.proxy_id);
    let mut request = MintRequest {
        aud: issuer.clone(),
        client_id: client.client_id_at_idp.clone(),
        sub: subject.to_owned(),
        scope: Some(client.scope.clone()),
        resource: None,
        ttl: Some(300),
        backdate_secs: None,
    };
    let mut client_id = client.client_id_at_resource_as.clone();
    let mut secret = client.secret.clone();
    match shape {
        Shape::Expired => request.backdate_secs = Some(1_000),
        Shape::WrongAudience => request.aud = format!("{issuer}-other"),
        Shape::WrongSecret => secret = "not-the-secret".into(),
        Shape::UnknownClient => client_id = "unregistered-client".into(),
        Shape::Valid | Shape::Replay => {}
    }
    let assertion = idp.mint(&request).map_err(|error| error.to_string())?;
    let attempts = if matches!(shape, Shape::Replay) { 2 } else { 1 };
    for _ in 0..attempts {
        http.post(format!("{issuer}/oauth2/token"))
            .basic_auth(&client_id, Some(&secret))
            .form(&[
                ("grant_type", "urn:ietf:params:oauth:grant-type:jwt-bearer"),
                ("assertion", assertion.as_str()),
            ])
            .send()
            .await
            .map_err(|error| error.to_string())?;
    }
    Ok(())
}

async fn revoke_someone(core: &Core, client: &DemoClient, subject: &str) {
    let result = core
        .revoke_subject(
            client.provider_id,
            subject,
            Some("demo: simulated account compromise".into()),
            Some("demo-traffic".into()),
        )
        .await;
    if let Err(error) = result {
        tracing::warn!(%error, "demo traffic: revocation failed");
    }
}
