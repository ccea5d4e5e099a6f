//! The dashboard suite. It seeds a store with one proxy of many client mappings and times
//! redraws of the real dashboard state over it in process. Then it runs the real dashboard in
//! tmux on the same store and measures its idle CPU time and resident memory.

mod idle;
mod redraw;
mod seed;

use std::time::Duration;

pub use self::idle::{IdleFigures, IdleOutcome};
pub use self::redraw::{Change, DrawnScreen, REDRAWS, RedrawTiming};
use super::idp::HostedIdp;
use super::server::Workspace;
use super::{BenchArgs, BenchError};
use crate::core::Core;

/// Figures of the dashboard suite.
#[derive(Debug, Clone)]
pub struct DashboardReport {
    /// Client mappings of the proxy on the Client Mappings tab.
    pub mappings: u64,
    /// Of those, the ones created through `Core::create_mapping`; the rest were inserted in
    /// one SQL transaction.
    pub mappings_through_core: u64,
    /// Proxies with one mapping each, besides the large one.
    pub small_proxies: usize,
    pub recorded_exchanges: usize,
    pub seed_time: Duration,
    pub redraws: Vec<RedrawTiming>,
    pub idle: IdleOutcome,
    /// Terminal size of the idle measurement, in columns and rows.
    pub idle_size: (u16, u16),
    /// Wait between the Client Mappings tab appearing and the start of the idle window.
    pub idle_settle: Duration,
}

/// Runs the suite in its own data directory with its own demo IdP, which the seeded provider
/// trusts, so the dashboard's key set refreshes succeed.
pub async fn run(args: &BenchArgs, workspace: &Workspace) -> Result<DashboardReport, BenchError> {
    let idp = HostedIdp::start().await?;
    let result = run_with_idp(args, workspace, &idp).await;
    idp.stop().await;
    result
}

async fn run_with_idp(
    args: &BenchArgs,
    workspace: &Workspace,
    idp: &HostedIdp,
) -> Result<DashboardReport, BenchError> {
    let spec = workspace.server_spec("dashboard")?;
    let config = seed::store_config(&spec);
    tracing::info!(
        mappings = args.dashboard_mappings,
        "seeding the dashboard store"
    );
    let seeded = seed::seed(&config, idp.issuer(), args.dashboard_mappings).await?;

    tracing::info!("timing dashboard redraws");
    let core = Core::open(config.clone()).await?;
    let redraws = redraw::measure(&core, seeded.mappings).await;
    core.shutdown().await;
    let redraws = redraws?;

    tracing::info!("starting the dashboard in tmux");
    let window = Duration::from_secs(args.dashboard_idle_seconds);
    let idle = idle::measure(&config, seeded.mappings, window).await?;

    Ok(DashboardReport {
        mappings: seeded.mappings,
        mappings_through_core: seeded.mappings_through_core,
        small_proxies: seeded.small_proxies,
        recorded_exchanges: seeded.recorded_exchanges,
        seed_time: seeded.seed_time,
        redraws,
        idle,
        idle_size: (idle::WIDTH, idle::HEIGHT),
        idle_settle: idle::SETTLE,
    })
}
