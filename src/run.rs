//! Process-level wiring of the dashboard: `xaa` (the dashboard over the configured store, with
//! the exchange server as a background task when its ports are free) and `xaa demo` (the same
//! over a throwaway store, with a demo IdP and generated traffic).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use color_eyre::eyre::{Result, WrapErr};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::config::Config;
use crate::core::Core;
use crate::server::{self, AppState};
use crate::tui::{self, TuiOptions};

/// A server running as a background task of this process.
struct BackgroundServer {
    stop: watch::Sender<bool>,
    task: JoinHandle<()>,
}

impl BackgroundServer {
    fn start(core: &Core, admin_token: String, public: TcpListener, admin: TcpListener) -> Self {
        let (stop, mut stopped) = watch::channel(false);
        let state = AppState {
            core: core.clone(),
            admin_token: admin_token.into(),
        };
        let task = tokio::spawn(async move {
            let shutdown = async move {
                let _ = stopped.wait_for(|stop| *stop).await;
            };
            if let Err(error) = server::serve(state, public, admin, shutdown).await {
                tracing::error!(%error, "the background exchange server stopped with an error");
            }
        });
        Self { stop, task }
    }

    async fn stop(self) {
        let _ = self.stop.send(true);
        if tokio::time::timeout(Duration::from_secs(15), self.task)
            .await
            .is_err()
        {
            tracing::warn!("the background exchange server did not stop within 15 s");
        }
    }
}

async fn bind_both(public: SocketAddr, admin: SocketAddr) -> Option<(TcpListener, TcpListener)> {
    let public = TcpListener::bind(public).await.ok()?;
    let admin = TcpListener::bind(admin).await.ok()?;
    Some((public, admin))
}

/// Opens the dashboard on the configured store. When both listener addresses are free the
/// exchange server runs in this process; otherwise another `xaa serve` owns them and the
/// dashboard works on the shared store alone.
pub async fn dashboard(config: Config, read_only: bool) -> Result<()> {
    let public_addr = config.server.public_addr;
    let admin_addr = config.server.admin_addr;
    let data_dir = config.server.data_dir.clone();
    let core = Core::open(config).await.wrap_err("cannot open the store")?;

    let (server, note) = match bind_both(public_addr, admin_addr).await {
        Some((public, admin)) => {
            let token = server::load_or_create_admin_token(&data_dir)
                .wrap_err("cannot read or create the admin token")?;
            let server = BackgroundServer::start(&core, token, public, admin);
            (
                Some(server),
                format!("exchange server on {public_addr}, admin API on {admin_addr}"),
            )
        }
        None => (
            None,
            format!("{public_addr} or {admin_addr} is taken: the server runs elsewhere"),
        ),
    };
    tracing::info!(%note, read_only, "dashboard starting");
    let result = tui::run(
        core.clone(),
        TuiOptions {
            read_only,
            server_note: Some(note),
        },
    )
    .await;
    if let Some(server) = server {
        server.stop().await;
    }
    core.shutdown().await;
    result
}

/// A scratch directory removed on drop.
struct ScratchDir(PathBuf);

impl ScratchDir {
    fn create() -> Result<Self> {
        let path = std::env::temp_dir().join(format!("xaa-demo-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(&path)
            .wrap_err_with(|| format!("cannot create the demo directory {}", path.display()))?;
        Ok(Self(path))
    }

    fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for ScratchDir {
    fn drop(&mut self) {
        if let Err(error) = std::fs::remove_dir_all(&self.0) {
            tracing::warn!(%error, dir = %self.0.display(), "cannot remove the demo directory");
        }
    }
}

/// The demo configuration: a store in `dir`, both listeners on free loopback ports, and a
/// short dashboard refresh so the statistics move visibly.
fn demo_config(dir: &Path, public: SocketAddr, admin: SocketAddr) -> Config {
    let mut config = Config::default();
    config.database.url = format!("sqlite://{}", dir.join("xaa.db").display());
    dir.clone_into(&mut config.server.data_dir);
    config.server.log_dir = dir.join("logs");
    config.server.public_addr = public;
    config.server.admin_addr = admin;
    config.server.public_url = format!("http://{public}");
    config.tui.refresh_secs = 5;
    config
}

/// Runs the demo: a temporary store, the exchange server, a demo IdP and traffic, all on
/// loopback, under the dashboard. Quitting stops everything and deletes the store.
pub async fn demo(read_only: bool) -> Result<()> {
    let scratch = ScratchDir::create()?;
    let public = TcpListener::bind("127.0.0.1:0")
        .await
        .wrap_err("cannot bind a loopback port")?;
    let admin = TcpListener::bind("127.0.0.1:0")
        .await
        .wrap_err("cannot bind a loopback port")?;
    let config = demo_config(scratch.path(), public.local_addr()?, admin.local_addr()?);
    let note = format!(
        "demo: exchange server on {}, admin API on {}, store in {}",
        config.server.public_addr,
        config.server.admin_addr,
        scratch.path().display()
    );
    let core = Core::open(config)
        .await
        .wrap_err("cannot open the demo store")?;
    let token = server::load_or_create_admin_token(scratch.path())?;
    let server = BackgroundServer::start(&core, token, public, admin);

    let (idp, idp_listener) = crate::demo::bind(SocketAddr::from(([127, 0, 0, 1], 0)))
        .await
        .wrap_err("cannot start the demo IdP")?;
    let idp_task = tokio::spawn({
        let router = std::sync::Arc::clone(&idp).router();
        async move {
            if let Err(error) = axum::serve(idp_listener, router).await {
                tracing::error!(%error, "the demo IdP stopped");
            }
        }
    });
    let clients = crate::demo::seed(&core, &idp)
        .await
        .wrap_err("cannot seed the demo store")?;
    let (stop_traffic, traffic_stopped) = watch::channel(false);
    let traffic = tokio::spawn(crate::demo::traffic::run(
        core.clone(),
        idp,
        clients,
        traffic_stopped,
    ));

    let result = tui::run(
        core.clone(),
        TuiOptions {
            read_only,
            server_note: Some(note),
        },
    )
    .await;

    let _ = stop_traffic.send(true);
    let _ = traffic.await;
    idp_task.abort();
    server.stop().await;
    core.shutdown().await;
    drop(scratch);
    result
}
