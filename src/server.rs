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
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio::sync::watch;
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

/// Maximum wait for open connections to finish after shutdown begins.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(10);

/// Serves both apps until `shutdown` completes, then lets in-flight requests finish.
pub async fn serve(
    state: AppState,
    public: TcpListener,
    admin: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> io::Result<()> {
    let (stop_tx, stop_rx) = watch::channel(false);
    tokio::spawn(async move {
        shutdown.await;
        let _ = stop_tx.send(true);
    });
    let header_timeout = Duration::from_secs(state.core.config().server.header_read_timeout_secs);
    let public_app = public_router(state.clone());
    let public_server = serve_listener(public, public_app, header_timeout, stop_rx.clone());
    let admin_server = serve_listener(admin, admin_router(state), header_timeout, stop_rx);
    tokio::try_join!(public_server, admin_server)?;
    Ok(())
}

/// Accepts HTTP/1.1 connections on one listener until `stop` turns true, then drains them.
async fn serve_listener(
    listener: TcpListener,
    app: Router,
    header_timeout: Duration,
    mut stop: watch::Receiver<bool>,
) -> io::Result<()> {
    let graceful = GracefulShutdown::new();
    let mut builder = http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(header_timeout);
    while !*stop.borrow() {
        let stream = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _peer)) => stream,
                Err(error) => {
                    // Usually out of file descriptors; back off instead of spinning.
                    tracing::warn!(%error, "accepting a connection failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
            changed = stop.changed() => {
                if changed.is_err() {
                    break;
                }
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let service = TowerToHyperService::new(app.clone());
        let connection = graceful.watch(builder.serve_connection(TokioIo::new(stream), service));
        tokio::spawn(async move {
            if let Err(error) = connection.await {
                tracing::debug!(%error, "connection closed with an error");
            }
        });
    }
    drop(listener);
    tokio::select! {
        () = graceful.shutdown() => {}
        () = tokio::time::sleep(DRAIN_TIMEOUT) => {
            tracing::warn!("connections still open after the drain timeout; closing them");
        }
    }
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
