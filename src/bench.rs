//! `xaa bench`: measures the token endpoint, the rejection paths, the store at scale, the
//! dashboard and the signature floor, and renders the figures as a Markdown report.
//!
//! The server under test is `xaa serve` started from the running executable as a child process
//! with a temporary data directory, so its CPU time can be read from `/proc/<pid>/stat`. The
//! bench process hosts the demo IdP, mints every ID-JAG before a phase starts and drives the
//! token endpoint over keep-alive HTTP/1.1 connections. The dashboard suite runs the
//! dashboard from the same executable in a tmux session of its own. Everything listens and
//! connects on 127.0.0.1 only, and every phase is bounded in time and in request count.

mod crypto;
mod dashboard;
mod idp;
mod load;
mod machine;
mod report;
mod scale;
mod server;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use self::idp::{HostedIdp, MintSpec};
use self::load::{LoadSettings, Target, TokenPool};
use self::report::{LoadSuite, PhaseReport, Report};
use self::server::{AdminClient, ServerProcess, Workspace};
use crate::demo::DemoError;

/// Maximum wait for a spawned server to return 200 on `/healthz`.
const STARTUP_LIMIT: Duration = Duration::from_secs(60);
/// Maximum ID-JAGs minted for one phase, whatever the duration (about 600 bytes each).
const MAX_TOKENS_PER_PHASE: usize = 2_000_000;
/// Request rate the default token count is sized for: three times the target of 10,000
/// exchanges per second, because rejections can be cheaper than exchanges.
const TOKENS_PER_SECOND: usize = 30_000;

/// The command-line options of `xaa bench`.
#[derive(Debug, Clone, clap::Args)]
pub struct BenchArgs {
    /// Concurrent keep-alive connections to the token endpoint.
    #[arg(long, default_value_t = 64)]
    pub connections: usize,
    /// Length of each measured load phase, in seconds.
    #[arg(long, default_value_t = 10)]
    pub seconds: u64,
    /// Unmeasured load before each phase, in seconds.
    #[arg(long, default_value_t = 1)]
    pub warmup_seconds: u64,
    /// Load phases, comma-separated: success, bad-signature, unknown-kid, expired, all, none.
    #[arg(long, value_enum, value_delimiter = ',', default_value = "success")]
    pub mode: Vec<Mode>,
    /// ID-JAGs minted before each phase; defaults to 30,000 per second of warm-up and load.
    #[arg(long)]
    pub tokens: Option<usize>,
    /// OS threads of the load generator, each running its share of the connections.
    #[arg(long, default_value_t = 1)]
    pub client_threads: usize,
    /// Also run the scale suite: seed token records, then time statistics, revocation by
    /// subject and start-up.
    #[arg(long)]
    pub scale: bool,
    /// ID-JAG records seeded by the scale suite (each with one access token).
    #[arg(long, default_value_t = 10_000_000)]
    pub scale_records: u64,
    /// Seeded records that belong to the subject revoked by the scale suite.
    #[arg(long, default_value_t = 100_000)]
    pub subject_records: u64,
    /// Also run the dashboard suite: time redraws of the dashboard over one proxy with many
    /// client mappings, then measure the idle CPU and memory of `xaa` in a tmux session.
    #[arg(long)]
    pub dashboard: bool,
    /// Client mappings of the proxy the dashboard suite draws.
    #[arg(long, default_value_t = 10_000)]
    pub dashboard_mappings: u64,
    /// Length of the dashboard's measured idle window, in seconds. The default equals the
    /// dashboard's default refresh period, so the window includes one reload of the mappings.
    #[arg(long, default_value_t = 30)]
    pub dashboard_idle_seconds: u64,
    /// Write the Markdown report to this file as well as to stdout.
    #[arg(long)]
    pub report: Option<PathBuf>,
    /// Directory for the temporary data directory (default: the system temporary directory).
    #[arg(long)]
    pub work_dir: Option<PathBuf>,
    /// Keep the temporary data directory (databases and server logs) after the run.
    #[arg(long)]
    pub keep_data: bool,
}

/// Shape of the ID-JAGs of a load phase, which sets the outcome the phase expects.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Mode {
    /// Distinct valid ID-JAGs; each exchange succeeds.
    Success,
    /// Valid ID-JAGs with one signature character changed.
    BadSignature,
    /// ID-JAGs whose header names a random `kid` the IdP never published.
    UnknownKid,
    /// Validly signed ID-JAGs that expired before the phase started.
    Expired,
    /// Every mode above, in that order.
    All,
    /// No load phase (for a scale-only run).
    None,
}

impl Mode {
    const PHASES: [Self; 4] = [
        Self::Success,
        Self::BadSignature,
        Self::UnknownKid,
        Self::Expired,
    ];

    /// Returns the name used on the command line and in the report.
    pub fn name(self) -> &'static str {
        match self {
            Self::Success => "success",
            Self::BadSignature => "bad-signature",
            Self::UnknownKid => "unknown-kid",
            Self::Expired => "expired",
            Self::All => "all",
            Self::None => "none",
        }
    }

    /// The HTTP status every exchange of this phase should receive.
    fn expected_status(self) -> u16 {
        if self == Self::Success { 200 } else { 400 }
    }
}

/// Failures that stop a benchmark run.
#[derive(Debug, thiserror::Error)]
pub enum BenchError {
    #[error("invalid option: {0}")]
    InvalidOption(String),
    #[error("cannot {action}: {source}")]
    Io {
        action: String,
        #[source]
        source: std::io::Error,
    },
    #[error("the server under test failed: {0}; its output is in the data directory")]
    Server(String),
    #[error("admin API request {request} failed: {detail}")]
    Admin { request: String, detail: String },
    #[error("HTTP request failed: {0}")]
    Http(#[from] reqwest::Error),
    #[error("the demo IdP failed: {0}")]
    Idp(#[from] DemoError),
    #[error("the store failed: {0}")]
    Store(#[from] crate::core::store::StoreError),
    #[error("seeding the database failed: {0}")]
    Seed(#[from] sqlx::Error),
    #[error("the crypto floor measurement failed: {0}")]
    Crypto(String),
    #[error("a benchmark task failed: {0}")]
    Task(String),
    #[error("a core operation failed: {0}")]
    Core(#[from] crate::core::CoreError),
    #[error("the dashboard suite failed: {0}")]
    Dashboard(String),
    #[error("interrupted by SIGINT; the dashboard's tmux session was stopped")]
    Interrupted,
}

impl BenchError {
    fn io(action: impl Into<String>) -> impl FnOnce(std::io::Error) -> Self {
        let action = action.into();
        move |source| Self::Io { action, source }
    }
}

impl BenchArgs {
    fn phases(&self) -> Vec<Mode> {
        let mut phases = Vec::new();
        for mode in &self.mode {
            let expanded: &[Mode] = match mode {
                Mode::All => &Mode::PHASES,
                Mode::None => &[],
                single => std::slice::from_ref(single),
            };
            for phase in expanded {
                if !phases.contains(phase) {
                    phases.push(*phase);
                }
            }
        }
        phases
    }

    fn validate(&self) -> Result<(), BenchError> {
        let invalid = |message: &str| Err(BenchError::InvalidOption(message.to_owned()));
        if !(1..=4096).contains(&self.connections) {
            return invalid("--connections must be between 1 and 4096");
        }
        if !(1..=3600).contains(&self.seconds) || self.warmup_seconds > 600 {
            return invalid("--seconds must be 1 to 3600 and --warmup-seconds at most 600");
        }
        if !(1..=self.connections).contains(&self.client_threads) {
            return invalid("--client-threads must be between 1 and --connections");
        }
        if self
            .tokens
            .is_some_and(|count| !(1..=MAX_TOKENS_PER_PHASE).contains(&count))
        {
            return invalid("--tokens must be between 1 and 2,000,000");
        }
        if self.scale && (self.subject_records == 0 || self.subject_records > self.scale_records) {
            return invalid("--subject-records must be between 1 and --scale-records");
        }
        if self.dashboard && !(1..=1_000_000).contains(&self.dashboard_mappings) {
            return invalid("--dashboard-mappings must be between 1 and 1,000,000");
        }
        if self.dashboard && !(1..=600).contains(&self.dashboard_idle_seconds) {
            return invalid("--dashboard-idle-seconds must be between 1 and 600");
        }
        Ok(())
    }

    /// ID-JAGs to mint per phase: enough for the warm-up and the phase at three times the
    /// target rate, unless `--tokens` sets the count.
    fn tokens_per_phase(&self) -> usize {
        self.tokens.unwrap_or_else(|| {
            let seconds = usize::try_from(self.seconds + self.warmup_seconds).unwrap_or(usize::MAX);
            seconds
                .saturating_mul(TOKENS_PER_SECOND)
                .min(MAX_TOKENS_PER_PHASE)
        })
    }
}

/// Runs the benchmark that `args` selects and returns the Markdown report, which is also
/// written to `--report` when given.
pub async fn run(args: BenchArgs) -> Result<String, BenchError> {
    args.validate()?;
    let mut report = Report::new(command_line(), machine::describe());

    tracing::info!("measuring the crypto floor");
    report.crypto = Some(crypto::measure().await?);

    let workspace = Workspace::create(args.work_dir.as_deref(), args.keep_data)?;
    let phases = args.phases();
    if !phases.is_empty() {
        report.load = Some(run_load_suite(&args, &phases, &workspace).await?);
    }
    if args.scale {
        report.scale = Some(scale::run(&args, &workspace).await?);
    }
    if args.dashboard {
        report.dashboard = Some(dashboard::run(&args, &workspace).await?);
    }

    let text = report.render();
    if let Some(path) = &args.report {
        std::fs::write(path, &text).map_err(BenchError::io(format!(
            "write the report to {}",
            path.display()
        )))?;
    }
    Ok(text)
}

fn command_line() -> String {
    let arguments: Vec<String> = std::env::args().skip(1).collect();
    format!("xaa {}", arguments.join(" "))
}

async fn run_load_suite(
    args: &BenchArgs,
    phases: &[Mode],
    workspace: &Workspace,
) -> Result<LoadSuite, BenchError> {
    let idp = HostedIdp::start().await?;
    let spec = workspace.server_spec("load")?;
    let mut server = ServerProcess::spawn(&spec, "load")?;
    let result = drive_phases(args, phases, &idp, &server).await;
    server.stop().await;
    idp.stop().await;
    result
}

async fn drive_phases(
    args: &BenchArgs,
    phases: &[Mode],
    idp: &HostedIdp,
    server: &ServerProcess,
) -> Result<LoadSuite, BenchError> {
    server.wait_ready(STARTUP_LIMIT).await?;
    let admin = AdminClient::new(server)?;
    let gateway = admin.configure_gateway(idp.issuer()).await?;
    let first = idp
        .mint_batch(&MintSpec::valid(&gateway, "bench-user"), 1)
        .await?;
    scale::expect_status(&gateway, &admin.http, &first, 200, "the first exchange").await?;

    let target = Arc::new(Target::new(server.public_addr(), &gateway));
    let settings = LoadSettings {
        connections: args.connections,
        threads: args.client_threads,
        duration: Duration::from_secs(args.seconds),
    };
    let mut reports = Vec::with_capacity(phases.len());
    for &mode in phases {
        let pool = Arc::new(TokenPool::new(
            idp.mint_for_mode(mode, &gateway, args.tokens_per_phase())
                .await?,
        ));
        if args.warmup_seconds > 0 {
            let warmup = LoadSettings {
                duration: Duration::from_secs(args.warmup_seconds),
                ..settings
            };
            load::run_phase(Arc::clone(&target), Arc::clone(&pool), warmup).await?;
        }
        tracing::info!(
            mode = mode.name(),
            seconds = args.seconds,
            "measuring a load phase"
        );
        let server_cpu = server.cpu_time()?;
        let server_written = server.written_bytes();
        let client_cpu = machine::own_cpu_time()?;
        let jwks_fetches = idp.jwks_fetches();
        let result = load::run_phase(Arc::clone(&target), pool, settings).await?;
        reports.push(PhaseReport {
            mode,
            expected_status: mode.expected_status(),
            server_cpu: server.cpu_time()?.saturating_sub(server_cpu),
            client_cpu: machine::own_cpu_time()?.saturating_sub(client_cpu),
            server_written_bytes: server
                .written_bytes()
                .zip(server_written)
                .map(|(after, before)| after.saturating_sub(before)),
            jwks_fetches: idp.jwks_fetches() - jwks_fetches,
            result,
        });
    }
    Ok(LoadSuite {
        connections: args.connections,
        client_threads: args.client_threads,
        seconds: args.seconds,
        jwks_cooldown_secs: crate::core::jwks::JwksSettings::default().unknown_kid_cooldown_secs,
        phases: reports,
        server_peak_resident_bytes: server.peak_resident_bytes(),
    })
}
