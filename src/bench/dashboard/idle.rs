//! Idle CPU time and resident memory of the real dashboard. The running executable starts
//! without a subcommand in a detached tmux session on a socket of its own, over the seeded
//! store, and then stays untouched on the Client Mappings tab of the large proxy.
//!
//! The dashboard binds its exchange server to free ports on 127.0.0.1, as an operator's
//! dashboard does when no `xaa serve` listens on the configured ports, so the figures include that
//! idle server. Only the tmux server this module starts is ever stopped.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use super::seed::LARGE_PROXY;
use crate::bench::{BenchError, machine};
use crate::config::Config;

/// Terminal size of the tmux session, in columns and rows.
pub const WIDTH: u16 = 200;
pub const HEIGHT: u16 = 50;
/// Wait after the Client Mappings tab appears before the idle window starts.
pub const SETTLE: Duration = Duration::from_secs(3);
/// Maximum wait for the dashboard to show an expected screen. Generous, because the machine
/// may be busy with other work.
const SCREEN_WAIT: Duration = Duration::from_secs(60);
/// Interval between two captures of the pane while waiting.
const POLL: Duration = Duration::from_millis(200);
/// Maximum wait for the pane's process to become the dashboard.
const EXEC_WAIT: Duration = Duration::from_secs(10);
/// Maximum wait for the dashboard to exit after its tmux server is killed.
const EXIT_WAIT: Duration = Duration::from_secs(20);
/// Name of the one session on the suite's tmux server.
const SESSION: &str = "xaa-bench";

/// The idle measurement, or why there is none.
#[derive(Debug, Clone)]
pub enum IdleOutcome {
    Measured(IdleFigures),
    /// Not attempted, e.g. because tmux is not installed.
    Skipped(String),
    Failed(String),
}

/// Figures of the dashboard process over its idle window.
#[derive(Debug, Clone)]
pub struct IdleFigures {
    /// `tmux -V`, e.g. "tmux 3.3a".
    pub tmux_version: String,
    /// Whether the header showed the dashboard's own exchange server running.
    pub server_in_process: bool,
    /// Seconds between the dashboard's automatic reloads of the tab on display.
    pub refresh_secs: u64,
    /// Wall-clock length of the window.
    pub window: Duration,
    /// User plus system CPU time of the dashboard process during the window.
    pub cpu: Duration,
    /// `VmRSS` at the start of the window, in bytes.
    pub resident_bytes_at_start: Option<u64>,
    /// `VmRSS` at the end of the window, in bytes.
    pub resident_bytes: Option<u64>,
    /// `VmHWM` (peak resident memory since start) at the end of the window, in bytes.
    pub peak_resident_bytes: Option<u64>,
    /// The anonymous part of `VmRSS` (`RssAnon`: heap and stacks), in bytes.
    pub anonymous_bytes: Option<u64>,
    /// The file-backed part of `VmRSS` (`RssFile`: mapped pages of the executable, its
    /// libraries and other files), in bytes.
    pub file_bytes: Option<u64>,
}

impl IdleFigures {
    /// CPU time over wall time, in percent of one core.
    pub fn core_percent(&self) -> f64 {
        if self.window.is_zero() {
            0.0
        } else {
            self.cpu.as_secs_f64() / self.window.as_secs_f64() * 100.0
        }
    }
}

/// Runs the dashboard over the store of `config` and measures it over an idle window of
/// `window`. `mappings` is the count the Client Mappings tab must show. A failed measurement
/// is an outcome for the report, and only an interruption by SIGINT is an error.
pub async fn measure(
    config: &Config,
    mappings: u64,
    window: Duration,
) -> Result<IdleOutcome, BenchError> {
    let Some(tmux_version) = tmux_version() else {
        return Ok(IdleOutcome::Skipped(
            "tmux is not installed or does not run".into(),
        ));
    };
    match run(config, mappings, window, tmux_version).await {
        Ok(figures) => Ok(IdleOutcome::Measured(figures)),
        Err(BenchError::Interrupted) => Err(BenchError::Interrupted),
        Err(error) => {
            tracing::warn!(%error, "the dashboard idle measurement failed");
            let reason = match error {
                BenchError::Dashboard(message) => message,
                other => other.to_string(),
            };
            Ok(IdleOutcome::Failed(reason))
        }
    }
}

fn tmux_version() -> Option<String> {
    let output = Command::new("tmux")
        .arg("-V")
        .stdin(Stdio::null())
        .output()
        .ok()
        .filter(|output| output.status.success())?;
    Some(String::from_utf8_lossy(&output.stdout).trim().to_owned())
}

async fn run(
    config: &Config,
    mappings: u64,
    window: Duration,
    tmux_version: String,
) -> Result<IdleFigures, BenchError> {
    let config_path = write_config(config)?;
    let mut session = TmuxSession::start(&config_path, &config.server.data_dir).await?;
    // tmux detaches its server from the terminal, so a Ctrl-C of the bench does not reach
    // the dashboard. The session is stopped here instead.
    // NOTE: a bench killed by SIGTERM or SIGKILL still leaves the tmux server running.
    let result = tokio::select! {
        result = measure_session(&session, mappings, window) => result,
        _ = tokio::signal::ctrl_c() => Err(BenchError::Interrupted),
    };
    session.stop().await;
    let mut figures = result?;
    figures.tmux_version = tmux_version;
    figures.refresh_secs = config.tui.refresh_secs;
    Ok(figures)
}

/// Writes the suite's configuration with both listeners on free loopback ports to
/// `dashboard.toml` in the data directory and returns its path.
fn write_config(config: &Config) -> Result<PathBuf, BenchError> {
    let mut config = config.clone();
    // Both ports are held until both are chosen, so they differ. They are released before
    // the dashboard binds them, and if another process takes one in between, the dashboard
    // runs without its exchange server, which the report states.
    let bind =
        || TcpListener::bind("127.0.0.1:0").map_err(BenchError::io("find a free loopback port"));
    let (public, admin) = (bind()?, bind()?);
    config.server.public_addr = public
        .local_addr()
        .map_err(BenchError::io("read a loopback listener's address"))?;
    config.server.admin_addr = admin
        .local_addr()
        .map_err(BenchError::io("read a loopback listener's address"))?;
    drop((public, admin));
    let text = toml::to_string(&config).map_err(|error| {
        BenchError::Dashboard(format!("cannot write the dashboard configuration: {error}"))
    })?;
    let path = config.server.data_dir.join("dashboard.toml");
    std::fs::write(&path, text).map_err(BenchError::io(format!("write {}", path.display())))?;
    Ok(path)
}

/// Opens the Client Mappings tab, lets the dashboard settle, then samples it over `window`.
/// The returned figures leave `tmux_version` and `refresh_secs` to the caller.
async fn measure_session(
    session: &TmuxSession,
    mappings: u64,
    window: Duration,
) -> Result<IdleFigures, BenchError> {
    let pid = session.pid;
    let start_screen = session.wait_for(LARGE_PROXY).await?;
    let server_in_process = start_screen.contains("exchange server on");
    session.send_key("Enter")?;
    session.wait_for("1 Statistics").await?;
    session.send_key("2")?;
    // The tab title counts the loaded rows, e.g. "Client Mappings · 10000 rows".
    let marker = format!("{mappings} rows");
    session.wait_for(&marker).await?;

    tokio::time::sleep(SETTLE).await;
    tracing::info!(
        pid,
        seconds = window.as_secs(),
        "measuring the idle dashboard"
    );
    let resident_bytes_at_start = machine::resident_bytes(pid);
    let cpu_before = machine::cpu_time(pid)?;
    let started = Instant::now();
    tokio::time::sleep(window).await;
    let cpu = machine::cpu_time(pid)?.saturating_sub(cpu_before);
    let elapsed = started.elapsed();
    let resident_bytes = machine::resident_bytes(pid);
    let peak_resident_bytes = machine::peak_resident_bytes(pid);
    let anonymous_bytes = machine::status_bytes(pid, "RssAnon");
    let file_bytes = machine::status_bytes(pid, "RssFile");

    let end_screen = session.capture()?;
    if !end_screen.contains(&marker) {
        return Err(BenchError::Dashboard(format!(
            "the dashboard no longer shows '{marker}' after the idle window; it shows:\n\
             {end_screen}"
        )));
    }
    Ok(IdleFigures {
        tmux_version: String::new(),
        server_in_process,
        refresh_secs: 0,
        window: elapsed,
        cpu,
        resident_bytes_at_start,
        resident_bytes,
        peak_resident_bytes,
        anonymous_bytes,
        file_bytes,
    })
}

/// A tmux server on a socket of this run, with one session whose pane runs the dashboard.
/// Dropping it kills that server only.
struct TmuxSession {
    socket: String,
    /// The socket file, which tmux leaves behind when its server exits.
    socket_path: Option<PathBuf>,
    /// The dashboard process, which the pane runs directly.
    pid: u32,
    stopped: bool,
}

impl TmuxSession {
    /// Starts `xaa --config CONFIG` in a detached session of [`WIDTH`]×[`HEIGHT`] with
    /// `data_dir` as working directory, and waits until the pane runs it. The caller's `XAA_`
    /// variables are removed, because they would override the file. The pane stays open
    /// when the dashboard exits, so an error it prints can be captured.
    async fn start(config: &Path, data_dir: &Path) -> Result<Self, BenchError> {
        let exe = std::env::current_exe().map_err(BenchError::io("locate the xaa executable"))?;
        let tmux_config = data_dir.join("tmux.conf");
        std::fs::write(&tmux_config, "set-option -g remain-on-exit on\n")
            .map_err(BenchError::io(format!("write {}", tmux_config.display())))?;
        let socket = format!(
            "xaa-bench-{}-{}",
            std::process::id(),
            uuid::Uuid::new_v4().simple()
        );
        let mut session = Self {
            socket,
            socket_path: None,
            pid: 0,
            stopped: false,
        };
        let mut command = session.command();
        command.current_dir(data_dir);
        for (name, _) in std::env::vars_os() {
            if name.to_string_lossy().starts_with("XAA_") {
                command.env_remove(name);
            }
        }
        // Several words after `--`: tmux runs the program itself, not through a shell, so the
        // pane's process is the dashboard.
        command
            .arg("-f")
            .arg(&tmux_config)
            .args(["new-session", "-d", "-s", SESSION])
            .args(["-x", &WIDTH.to_string(), "-y", &HEIGHT.to_string(), "--"])
            .arg(&exe)
            .arg("--config")
            .arg(config);
        checked(&mut command, "tmux new-session")?;
        tracing::info!(socket = session.socket, "tmux session started");

        session.socket_path = Some(PathBuf::from(session.display("#{socket_path}")?));
        session.pid = session.wait_for_exec(&exe).await?;
        tracing::info!(pid = session.pid, "dashboard started in tmux");
        Ok(session)
    }

    /// Returns the pid of the pane's process once it runs `exe`: right after
    /// `new-session` it may still be the forked tmux process.
    async fn wait_for_exec(&self, exe: &Path) -> Result<u32, BenchError> {
        let pid_text = self.display("#{pane_pid}")?;
        let pid: u32 = pid_text.parse().map_err(|_| {
            BenchError::Dashboard(format!("tmux printed '{pid_text}' as the pane's pid"))
        })?;
        let started = Instant::now();
        loop {
            let running = std::fs::read_link(format!("/proc/{pid}/exe"))
                .map_err(BenchError::io(format!("read /proc/{pid}/exe")))?;
            if running == exe {
                return Ok(pid);
            }
            if started.elapsed() >= EXEC_WAIT {
                return Err(BenchError::Dashboard(format!(
                    "the tmux pane runs {} instead of {}",
                    running.display(),
                    exe.display()
                )));
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    fn command(&self) -> Command {
        let mut command = Command::new("tmux");
        command
            .env_remove("TMUX")
            .args(["-L", &self.socket])
            .stdin(Stdio::null());
        command
    }

    /// Expands a tmux format such as `#{pane_pid}` for the session's pane.
    fn display(&self, format: &str) -> Result<String, BenchError> {
        let mut command = self.command();
        command.args(["display-message", "-p", "-t", SESSION, format]);
        let output = checked(&mut command, "tmux display-message")?;
        Ok(String::from_utf8_lossy(&output.stdout).trim().to_owned())
    }

    /// Returns the visible text of the pane.
    fn capture(&self) -> Result<String, BenchError> {
        let mut command = self.command();
        command.args(["capture-pane", "-p", "-t", SESSION]);
        let output = checked(&mut command, "tmux capture-pane")?;
        Ok(String::from_utf8_lossy(&output.stdout).into_owned())
    }

    /// Presses one key, named as tmux names it (`Enter`, `2`).
    fn send_key(&self, key: &str) -> Result<(), BenchError> {
        let mut command = self.command();
        command.args(["send-keys", "-t", SESSION, key]);
        checked(&mut command, "tmux send-keys").map(drop)
    }

    /// Polls the pane until it shows `text`, for at most [`SCREEN_WAIT`] and while the
    /// dashboard runs, and returns that screen.
    async fn wait_for(&self, text: &str) -> Result<String, BenchError> {
        let started = Instant::now();
        loop {
            let screen = self.capture()?;
            if screen.contains(text) {
                return Ok(screen);
            }
            if !is_running(self.pid) {
                return Err(BenchError::Dashboard(format!(
                    "the dashboard exited before showing '{text}'; its pane shows:\n{screen}"
                )));
            }
            if started.elapsed() >= SCREEN_WAIT {
                return Err(BenchError::Dashboard(format!(
                    "the dashboard did not show '{text}' within {} s; it shows:\n{screen}",
                    SCREEN_WAIT.as_secs()
                )));
            }
            tokio::time::sleep(POLL).await;
        }
    }

    /// Kills the tmux server, which hangs up on the dashboard, and waits for the dashboard to
    /// exit. After [`EXIT_WAIT`] the dashboard is killed by its pid.
    async fn stop(&mut self) {
        self.kill_server();
        if self.pid == 0 {
            return;
        }
        let deadline = Instant::now() + EXIT_WAIT;
        while Instant::now() < deadline {
            if !is_running(self.pid) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let pid = self.pid.to_string();
        tracing::warn!(
            pid,
            "the dashboard did not exit after its tmux server stopped"
        );
        match Command::new("kill").args(["-KILL", &pid]).status() {
            Ok(status) if status.success() => {}
            Ok(status) => tracing::warn!(pid, %status, "`kill -KILL` failed"),
            Err(error) => tracing::warn!(pid, %error, "cannot run `kill`"),
        }
    }

    fn kill_server(&mut self) {
        if self.stopped {
            return;
        }
        self.stopped = true;
        let status = self
            .command()
            .arg("kill-server")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        if let Err(error) = status {
            tracing::warn!(%error, socket = self.socket, "cannot run `tmux kill-server`");
        }
        if let Some(path) = &self.socket_path {
            let _ = std::fs::remove_file(path);
        }
    }
}

impl Drop for TmuxSession {
    fn drop(&mut self) {
        // An early return skipped `stop`: no tmux server of the bench may outlive it.
        self.kill_server();
    }
}

/// Runs a tmux command and returns its output, or an error with its stderr.
fn checked(command: &mut Command, what: &str) -> Result<Output, BenchError> {
    let output = command
        .output()
        .map_err(BenchError::io(format!("run `{what}`")))?;
    if output.status.success() {
        Ok(output)
    } else {
        Err(BenchError::Dashboard(format!(
            "`{what}` failed with {}: {}",
            output.status,
            String::from_utf8_lossy(&output.stderr).trim()
        )))
    }
}

/// Returns whether a process exists and is not a zombie.
fn is_running(pid: u32) -> bool {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return false;
    };
    // The state is the first field after the command name, which ends with the last ')'.
    let state = stat
        .rsplit_once(')')
        .and_then(|(_, rest)| rest.split_whitespace().next());
    state != Some("Z")
}
