//! HTTP exposure of the core: the public OAuth listener and the admin listener.
//!
//! [`public_router`] and [`admin_router`] build the two apps so tests can serve them on any
//! listener; [`serve`] runs both until the shutdown future completes, then drains requests.

pub mod admin;
pub mod oauth;

use std::future::Future;
use std::io;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::StatusCode;
use tokio::net::TcpListener;
use tower_http::timeout::TimeoutLayer;
use tower_http::trace::TraceLayer;

use crate::core::Core;

/// State shared by every handler.
#[derive(Clone)]
pub struct AppState {
    pub core: Core,
    /// The admin API bearer token.
    pub admin_token: Arc<str>,
}

fn with_common_layers(router: Router<AppState>, state: AppState) -> Router {
    let settings = &state.core.config().server;
    let timeout = Duration::from_secs(settings.request_timeout_secs);
    let body_limit = settings.body_max_bytes;
    router
        .layer(DefaultBodyLimit::max(body_limit))
        .layer(TimeoutLayer::with_status_code(
            StatusCode::REQUEST_TIMEOUT,
            timeout,
        ))
        .layer(TraceLayer::new_for_http())
        .with_state(state)
}

/// The public OAuth app.
pub fn public_router(state: AppState) -> Router {
    with_common_layers(oauth::router(), state)
}

/// The admin API app.
pub fn admin_router(state: AppState) -> Router {
    with_common_layers(admin::router(state.clone()), state)
}

/// Serves both apps until `shutdown` completes, then lets in-flight requests finish.
pub async fn serve(
    state: AppState,
    public: TcpListener,
    admin: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> io::Result<()> {
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    tokio::spawn(async move {
        shutdown.await;
        let _ = stop_tx.send(true);
    });
    let wait = |mut rx: tokio::sync::watch::Receiver<bool>| async move {
        let _ = rx.wait_for(|stopped| *stopped).await;
    };
    let public_server = axum::serve(public, public_router(state.clone()))
        .with_graceful_shutdown(wait(stop_rx.clone()));
    let admin_server =
        axum::serve(admin, admin_router(state)).with_graceful_shutdown(wait(stop_rx));
    tokio::try_join!(public_server.into_future(), admin_server.into_future())?;
    Ok(())
}

/// Name of the generated admin token file inside the data directory.
pub const ADMIN_TOKEN_FILE: &str = "admin-token";

/// The admin token: `XAA_ADMIN_TOKEN` when set, else `<data_dir>/admin-token`, generated on
/// first use with owner-only permissions.
pub fn load_or_create_admin_token(data_dir: &Path) -> io::Result<String> {
    if let Ok(token) = std::env::var("XAA_ADMIN_TOKEN") {
        if token.trim().len() >= 16 {
            return Ok(token.trim().to_owned());
        }
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "XAA_ADMIN_TOKEN is shorter than 16 characters; set a longer random value",
        ));
    }
    let path = data_dir.join(ADMIN_TOKEN_FILE);
    match std::fs::read_to_string(&path) {
        Ok(token) if !token.trim().is_empty() => return Ok(token.trim().to_owned()),
        Ok(_) => {}
        Err(error) if error.kind() == io::ErrorKind::NotFound => {}
        Err(error) => return Err(error),
    }
    std::fs::create_dir_all(data_dir)?;
    let token = random_token()?;
    write_owner_only(&path, &token)?;
    tracing::info!(path = %path.display(), "generated the admin API token");
    Ok(token)
}

fn random_token() -> io::Result<String> {
    use aws_lc_rs::rand::SecureRandom;
    use base64::Engine;
    let mut bytes = [0_u8; 32];
    aws_lc_rs::rand::SystemRandom::new()
        .fill(&mut bytes)
        .map_err(|_| io::Error::other("the system random generator failed"))?;
    Ok(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes))
}

#[cfg(unix)]
fn write_owner_only(path: &Path, contents: &str) -> io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)?;
    file.write_all(contents.as_bytes())?;
    file.write_all(b"\n")
}

#[cfg(not(unix))]
fn write_owner_only(path: &Path, contents: &str) -> io::Result<()> {
    std::fs::write(path, format!("{contents}\n"))
}
