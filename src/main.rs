//! The `xaa` binary: parse the command line, load the configuration, set up logging, and hand
//! over to the server or a CLI verb.

use std::io::IsTerminal;
use std::path::Path;

use clap::Parser;
use color_eyre::eyre::{Result, WrapErr};
use tokio::net::TcpListener;
use tracing_subscriber::EnvFilter;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use xaa::cli::{self, Cli, Command};
use xaa::config::{Config, DEFAULT_CONFIG_TOML};
use xaa::core::Core;
use xaa::server::{self, AppState};

#[tokio::main]
async fn main() -> Result<()> {
    install_error_reports()?;
    let cli = Cli::parse();
    let Some(command) = cli.command else {
        let config = Config::load(cli.config.as_deref())?;
        let _guard = init_file_logging(&config.server.log_dir, "dashboard.log");
        return xaa::run::dashboard(config, cli.read_only).await;
    };
    match command {
        Command::Demo => {
            let _guard = init_file_logging(&std::env::temp_dir(), "xaa-demo.log");
            xaa::run::demo(cli.read_only).await
        }
        Command::Config { check } => check_config(check.as_deref()),
        Command::Serve => {
            let config = Config::load(cli.config.as_deref())?;
            let _guard = init_server_logging(&config.server.log_dir);
            serve(config).await
        }
        Command::AdminToken => {
            let config = Config::load(cli.config.as_deref())?;
            let token = server::load_or_create_admin_token(&config.server.data_dir)
                .wrap_err("cannot read or create the admin token")?;
            print_line(&token);
            Ok(())
        }
        Command::DemoIdp { addr } => {
            init_cli_logging();
            run_demo_idp(addr).await
        }
        Command::Bench(args) => {
            init_logging_to_stderr("info,sqlx=warn");
            let report = xaa::bench::run(*args).await?;
            print_line(report.trim_end());
            Ok(())
        }
        verb => {
            let config = Config::load(cli.config.as_deref())?;
            init_cli_logging();
            let core = Core::open_for_command(config)
                .await
                .wrap_err("cannot open the store")?;
            let result = cli::run_verb(&core, verb).await;
            core.shutdown().await;
            result
        }
    }
}

/// Installs color-eyre, with colours only when stderr is a terminal and `NO_COLOR` is unset.
fn install_error_reports() -> Result<()> {
    let colour = std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none();
    let theme = if colour {
        color_eyre::config::Theme::dark()
    } else {
        color_eyre::config::Theme::new()
    };
    // Operator errors are sentences; the environment section would only add noise to them.
    color_eyre::config::HookBuilder::default()
        .theme(theme)
        .display_env_section(false)
        .install()
}

#[expect(clippy::print_stdout, reason = "the command's output is its result")]
fn print_line(text: &str) {
    println!("{text}");
}

fn check_config(path: Option<&Path>) -> Result<()> {
    let Some(path) = path else {
        print_line(DEFAULT_CONFIG_TOML.trim_end());
        return Ok(());
    };
    let text = std::fs::read_to_string(path)
        .wrap_err_with(|| format!("cannot read configuration file {}", path.display()))?;
    Config::from_toml(&text)?;
    print_line(&format!("{}: configuration is valid", path.display()));
    Ok(())
}

/// Logs to stdout (ANSI only on a terminal) and to `<log_dir>/xaa.log`. `XAA_LOG` sets the
/// filter, e.g. `XAA_LOG=debug`.
fn init_server_logging(log_dir: &Path) -> Option<tracing_appender::non_blocking::WorkerGuard> {
    let filter = || {
        EnvFilter::try_from_env("XAA_LOG")
            .unwrap_or_else(|_| EnvFilter::new("info,tower_http=info,sqlx=warn"))
    };
    let stdout = tracing_subscriber::fmt::layer()
        .with_ansi(std::io::stdout().is_terminal())
        .with_filter_from(filter());
    let (file_layer, guard) = match std::fs::create_dir_all(log_dir) {
        Ok(()) => {
            let appender = tracing_appender::rolling::never(log_dir, "xaa.log");
            let (writer, guard) = tracing_appender::non_blocking(appender);
            let layer = tracing_subscriber::fmt::layer()
                .with_ansi(false)
                .with_writer(writer);
            (Some(layer.with_filter_from(filter())), Some(guard))
        }
        Err(error) => {
            eprintln!(
                "warning: cannot create log directory {}: {error}",
                log_dir.display()
            );
            (None, None)
        }
    };
    tracing_subscriber::registry()
        .with(stdout)
        .with(file_layer)
        .init();
    guard
}

/// Logs to `<dir>/<file>` only, because the dashboard owns the terminal. `XAA_LOG` sets the
/// filter. A directory that cannot be created leaves logging off rather than failing.
fn init_file_logging(
    dir: &Path,
    file: &str,
) -> Option<tracing_appender::non_blocking::WorkerGuard> {
    std::fs::create_dir_all(dir).ok()?;
    let appender = tracing_appender::rolling::never(dir, file);
    let (writer, guard) = tracing_appender::non_blocking(appender);
    let filter = EnvFilter::try_from_env("XAA_LOG")
        .unwrap_or_else(|_| EnvFilter::new("info,tower_http=warn,sqlx=warn"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(writer)
        .with_ansi(false)
        .init();
    Some(guard)
}

/// Verbs log warnings and errors to stderr only, so their stdout stays machine-readable.
fn init_cli_logging() {
    init_logging_to_stderr("warn");
}

/// Logs to stderr with `XAA_LOG` as the filter, or `default_filter` when it is unset.
fn init_logging_to_stderr(default_filter: &str) {
    let filter =
        EnvFilter::try_from_env("XAA_LOG").unwrap_or_else(|_| EnvFilter::new(default_filter));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .init();
}

trait WithFilter<S>: tracing_subscriber::Layer<S> + Sized
where
    S: tracing::Subscriber + for<'a> tracing_subscriber::registry::LookupSpan<'a>,
{
    fn with_filter_from(
        self,
        filter: EnvFilter,
    ) -> tracing_subscriber::filter::Filtered<Self, EnvFilter, S> {
        tracing_subscriber::Layer::with_filter(self, filter)
    }
}

impl<S, L> WithFilter<S> for L
where
    L: tracing_subscriber::Layer<S>,
    S: tracing::Subscriber + for<'a> tracing_subscriber::registry::LookupSpan<'a>,
{
}

async fn serve(config: Config) -> Result<()> {
    let admin_token = server::load_or_create_admin_token(&config.server.data_dir)
        .wrap_err("cannot read or create the admin token")?;
    let public_addr = config.server.public_addr;
    let admin_addr = config.server.admin_addr;
    let public = TcpListener::bind(public_addr).await.wrap_err_with(|| {
        format!("cannot listen on {public_addr} (server.public_addr); is another xaa running?")
    })?;
    let admin = TcpListener::bind(admin_addr).await.wrap_err_with(|| {
        format!("cannot listen on {admin_addr} (server.admin_addr); is another xaa running?")
    })?;
    tracing::info!(
        database = %xaa::config::redact_url(&config.database.url),
        "opening the store"
    );
    let core = Core::open(config).await.wrap_err("cannot open the store")?;
    tracing::info!(%public_addr, %admin_addr, public_url = %core.config().server.public_url, "xaa serving");
    let state = AppState {
        core: core.clone(),
        admin_token: admin_token.into(),
    };
    server::serve(state, public, admin, shutdown_signal()).await?;
    core.shutdown().await;
    tracing::info!("xaa stopped");
    Ok(())
}

async fn run_demo_idp(addr: std::net::SocketAddr) -> Result<()> {
    let (idp, listener) = xaa::demo::bind(addr)
        .await
        .wrap_err("cannot start the demo IdP")?;
    print_line(&format!(
        "demo IdP issuer {issuer}\n  discovery {issuer}/.well-known/openid-configuration\n  \
         mint an ID-JAG: curl -s {issuer}/mint -d aud=ISSUER_OF_PROXY -d client_id=CLIENT -d sub=USER\n\
         Press Ctrl-C to stop.",
        issuer = idp.issuer()
    ));
    axum::serve(listener, idp.router())
        .with_graceful_shutdown(shutdown_signal())
        .await?;
    Ok(())
}

async fn shutdown_signal() {
    let ctrl_c = async {
        if let Err(error) = tokio::signal::ctrl_c().await {
            tracing::error!(%error, "cannot listen for Ctrl-C");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(error) => {
                tracing::error!(%error, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {}
        () = terminate => {}
    }
    tracing::info!("shutdown signal received; draining requests");
}
