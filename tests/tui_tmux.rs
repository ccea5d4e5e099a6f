//! The dashboard in a real terminal: the `xaa` binary runs under bash in a tmux pane, keys
//! arrive through `tmux send-keys`, and the screen is read back with `tmux capture-pane`.
//!
//! Each test starts its own tmux server on a socket of its own (`tmux -L NAME`) and kills only
//! that server when it ends, failed or not. Listeners bind free ports on 127.0.0.1. Every wait
//! polls the screen every 200 ms up to a bound. Without tmux on PATH the tests print why they
//! skip and pass.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::Value;
use tempfile::TempDir;

/// Interval between two captures of the pane while waiting.
const POLL: Duration = Duration::from_millis(200);
/// Maximum wait for the screen to reach an expected state. Generous because other builds may
/// share the machine's cores.
const SCREEN_WAIT: Duration = Duration::from_secs(30);
/// Maximum wait for the demo's statistics to change without a key press: several refresh
/// periods of the demo (5 s).
const DEMO_CHANGE_WAIT: Duration = Duration::from_secs(20);
/// Maximum wait for a listener to accept connections.
const LISTENER_WAIT: Duration = Duration::from_secs(20);

/// The operator name the dashboard records as actor (`USER@host`).
const OPERATOR: &str = "tmux-tester";
/// Prints a line that the shell can only produce by running it, because `$((40+2))` is
/// expanded by the shell and never echoed as typed.
const ECHO_PROBE: &str = "echo ok-$((40+2))";
const ECHO_EXPECTED: &str = "ok-42";
/// Prints `tty-sane-2` when the terminal is in canonical mode with echo on (what the shell
/// leaves for its commands), `tty-raw-7` when a program left raw mode or `-echo` behind.
const TTY_PROBE: &str =
    "stty -a | grep -qwE -- '-icanon|-echo' && echo tty-raw-$((6+1)) || echo tty-sane-$((1+1))";
const TTY_SANE: &str = "tty-sane-2";
/// A subject that clears the screen, sets the window title and rings the bell, then breaks
/// the line, if a terminal ever receives it raw.
const EVIL_SUBJECT: &str = "evil\u{1b}[2J\u{1b}]0;pwned\u{7}\nline2";

/// Event types the Audit tab's `f` key cycles through, besides "all".
const AUDIT_EVENT_TYPES: usize = 8;

static SESSIONS: AtomicUsize = AtomicUsize::new(0);

/// Returns true, after printing the reason, when tmux cannot run here.
fn skip_without_tmux() -> bool {
    let found = Command::new("tmux")
        .arg("-V")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|status| status.success());
    if !found {
        println!("skipped: tmux not found");
    }
    !found
}

/// A tmux server of this test on its own socket, with one session running `bash --norc`. The
/// pane keeps running after the dashboard exits, so the shell can be checked afterwards.
/// Dropping it kills this server only.
struct Tmux {
    socket: String,
    /// The socket file, which tmux leaves behind when its server exits.
    socket_path: Option<PathBuf>,
}

impl Tmux {
    fn start(label: &str, width: u16, height: u16) -> Self {
        let socket = format!(
            "xaa-tui-{}-{label}-{}",
            std::process::id(),
            SESSIONS.fetch_add(1, Ordering::Relaxed)
        );
        let mut tmux = Self {
            socket,
            socket_path: None,
        };
        // HISTFILE empty: the shell keeps no history file. PS1 fixed: the prompt is known.
        let shell = "env HISTFILE= PS1='$ ' TERM=xterm-256color bash --norc --noprofile";
        let (width, height) = (width.to_string(), height.to_string());
        tmux.run(&[
            "-f",
            "/dev/null",
            "new-session",
            "-d",
            "-s",
            "xaa",
            "-x",
            &width,
            "-y",
            &height,
            shell,
        ]);
        tmux.socket_path = Some(PathBuf::from(tmux.format("#{socket_path}")));
        tmux.wait_for("the shell prompt", |screen| screen.contains('$'));
        tmux
    }

    fn command(&self) -> Command {
        let mut command = Command::new("tmux");
        command.env_remove("TMUX").args(["-L", &self.socket]);
        command
    }

    /// Runs a tmux command and returns its output; panics when it fails.
    fn run(&self, args: &[&str]) -> String {
        let output = self
            .command()
            .args(args)
            .output()
            .expect("tmux runs on PATH");
        assert!(
            output.status.success(),
            "tmux {args:?} failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8(output.stdout).expect("tmux prints UTF-8")
    }

    /// Presses one key, named as tmux names it (`Enter`, `Tab`, `Escape`, `C-c`, `a`). Callers
    /// wait for the effect of `Escape` before the next key, because crossterm reads ESC
    /// followed at once by another byte as Alt plus that key.
    fn press(&self, key: &str) {
        self.run(&["send-keys", "-t", "xaa", key]);
    }

    /// Types text literally, character by character.
    fn type_text(&self, text: &str) {
        self.run(&["send-keys", "-t", "xaa", "-l", text]);
    }

    /// Types a shell command and presses Enter.
    fn shell(&self, command_line: &str) {
        self.type_text(command_line);
        self.press("Enter");
    }

    /// Pastes text the way a terminal pastes the clipboard: bracketed when the program
    /// enabled bracketed paste.
    fn paste(&self, text: &str) {
        let mut load = self
            .command()
            .args(["load-buffer", "-b", "test-paste", "-"])
            .stdin(Stdio::piped())
            .spawn()
            .expect("tmux load-buffer starts");
        std::io::Write::write_all(
            &mut load.stdin.take().expect("load-buffer has a stdin"),
            text.as_bytes(),
        )
        .expect("the paste text reaches tmux");
        let status = load.wait().expect("tmux load-buffer finishes");
        assert!(status.success(), "tmux load-buffer failed");
        self.run(&["paste-buffer", "-p", "-d", "-b", "test-paste", "-t", "xaa"]);
    }

    /// Returns the visible text of the pane.
    fn screen(&self) -> String {
        self.run(&["capture-pane", "-p", "-t", "xaa"])
    }

    /// Returns the visible pane with its attributes as escape sequences (`capture-pane -e`).
    fn screen_with_escapes(&self) -> String {
        self.run(&["capture-pane", "-p", "-e", "-t", "xaa"])
    }

    /// Expands a tmux format such as `#{alternate_on}` for the pane.
    fn format(&self, format: &str) -> String {
        self.run(&["display-message", "-p", "-t", "xaa", format])
            .trim()
            .to_owned()
    }

    /// Polls the screen until `ready` accepts it, for at most [`SCREEN_WAIT`]; returns that
    /// screen or panics with the last one.
    fn wait_for(&self, what: &str, ready: impl Fn(&str) -> bool) -> String {
        self.wait_up_to(SCREEN_WAIT, what, ready)
    }

    fn wait_up_to(&self, limit: Duration, what: &str, ready: impl Fn(&str) -> bool) -> String {
        let start = Instant::now();
        loop {
            let screen = self.screen();
            if ready(&screen) {
                return screen;
            }
            assert!(
                start.elapsed() < limit,
                "timed out after {limit:?} waiting for {what}; the screen shows:\n{screen}"
            );
            std::thread::sleep(POLL);
        }
    }

    fn wait_for_text(&self, text: &str) -> String {
        self.wait_for(&format!("'{text}'"), |screen| screen.contains(text))
    }

    fn wait_for_all(&self, texts: &[&str]) -> String {
        self.wait_for(&format!("{texts:?}"), |screen| {
            texts.iter().all(|text| screen.contains(text))
        })
    }

    fn wait_until_gone(&self, text: &str) -> String {
        self.wait_for(&format!("'{text}' to go away"), |screen| {
            !screen.contains(text)
        })
    }

    /// Polls a tmux format until it expands to `expected`, for at most [`SCREEN_WAIT`].
    fn wait_for_format(&self, format: &str, expected: &str) {
        let start = Instant::now();
        loop {
            let value = self.format(format);
            if value == expected {
                return;
            }
            assert!(
                start.elapsed() < SCREEN_WAIT,
                "timed out waiting for {format} to be {expected}, it is {value}; the screen \
                 shows:\n{}",
                self.screen()
            );
            std::thread::sleep(POLL);
        }
    }

    /// Waits for the dashboard to exit and the primary screen to return.
    fn wait_for_exit(&self) {
        self.wait_for_format("#{pane_current_command}", "bash");
        self.wait_for_format("#{alternate_on}", "0");
        let screen = self.screen();
        assert!(
            !screen.contains("┌ Proxies"),
            "the dashboard drew on the primary screen:\n{screen}"
        );
    }

    /// Waits for the dashboard to exit, then checks that the terminal is back in normal mode:
    /// the primary screen is shown, the shell runs commands, and canonical mode and echo are on.
    fn assert_terminal_restored(&self) {
        self.wait_for_exit();
        self.assert_shell_works();
    }

    /// Checks that the shell runs commands and that canonical mode and echo are on.
    fn assert_shell_works(&self) {
        self.shell(ECHO_PROBE);
        self.wait_for("the echo probe's output", |screen| {
            has_line(screen, ECHO_EXPECTED)
        });
        self.shell(TTY_PROBE);
        let screen = self.wait_for("the tty probe's output", |screen| {
            screen.contains("tty-raw-7") || has_line(screen, TTY_SANE)
        });
        assert!(
            has_line(&screen, TTY_SANE),
            "the terminal was left in raw mode or without echo:\n{screen}"
        );
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        // Ends this server's panes too: the dashboard stops on the SIGHUP it receives.
        let _ = self
            .command()
            .arg("kill-server")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        if let Some(path) = &self.socket_path {
            let _ = std::fs::remove_file(path);
        }
    }
}

fn has_line(screen: &str, expected: &str) -> bool {
    screen.lines().any(|line| line.trim() == expected)
}

/// A child process killed and reaped on drop.
struct ChildGuard(Child);

impl Drop for ChildGuard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Returns `N` distinct loopback ports that were free a moment ago: all are held open until
/// the last one is chosen, so none repeats.
fn free_ports<const N: usize>() -> [u16; N] {
    let listeners: Vec<std::net::TcpListener> = (0..N)
        .map(|_| std::net::TcpListener::bind("127.0.0.1:0").expect("a loopback port can be bound"))
        .collect();
    std::array::from_fn(|index| {
        listeners[index]
            .local_addr()
            .expect("a bound listener has an address")
            .port()
    })
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime starts")
}

/// Returns the status of a GET, or `None` when the request fails.
fn http_get_status(url: &str) -> Option<u16> {
    runtime().block_on(async {
        let response = reqwest::get(url).await.ok()?;
        Some(response.status().as_u16())
    })
}

/// Polls a URL until it returns 200, for at most [`LISTENER_WAIT`].
fn wait_for_http(url: &str) {
    let start = Instant::now();
    while http_get_status(url) != Some(200) {
        assert!(
            start.elapsed() < LISTENER_WAIT,
            "{url} did not return 200 within {LISTENER_WAIT:?}"
        );
        std::thread::sleep(POLL);
    }
}

/// POSTs a form, with HTTP Basic credentials when given; returns the status and the body.
fn post_form(url: &str, form: &[(&str, &str)], basic: Option<(&str, &str)>) -> (u16, String) {
    runtime().block_on(async {
        let mut request = reqwest::Client::new().post(url).form(form);
        if let Some((user, password)) = basic {
            request = request.basic_auth(user, Some(password));
        }
        let response = request.send().await.expect("the POST gets a response");
        let status = response.status().as_u16();
        let body = response.text().await.expect("the response has a text body");
        (status, body)
    })
}

/// Returns the `jti` claim of a JWT, read without checking the signature.
fn jti_of(jwt: &str) -> String {
    let payload = jwt.split('.').nth(1).expect("a JWT has a payload part");
    let bytes = URL_SAFE_NO_PAD
        .decode(payload)
        .expect("the JWT payload is base64url");
    let claims: Value = serde_json::from_slice(&bytes).expect("the JWT payload is JSON");
    claims["jti"]
        .as_str()
        .expect("the ID-JAG has a jti")
        .to_owned()
}

/// Quotes a word for bash.
fn shell_quote(text: &str) -> String {
    format!("'{}'", text.replace('\'', r"'\''"))
}

/// Returns the escape sequences in `text`: CSI sequences up to their final byte, OSC and
/// other sequences as the ESC and the byte after it.
fn escape_sequences(text: &str) -> Vec<String> {
    let mut found = Vec::new();
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c != '\u{1b}' {
            continue;
        }
        let mut sequence = String::from(c);
        match chars.next() {
            Some('[') => {
                sequence.push('[');
                for next in chars.by_ref() {
                    sequence.push(next);
                    if ('\u{40}'..='\u{7e}').contains(&next) {
                        break;
                    }
                }
            }
            Some(other) => sequence.push(other),
            None => {}
        }
        found.push(sequence);
    }
    found
}

/// Returns whether an escape sequence is SGR (`ESC [ params m`), which `capture-pane -e` writes for
/// the text attributes of the pane.
fn is_sgr(sequence: &str) -> bool {
    sequence
        .strip_prefix("\u{1b}[")
        .and_then(|rest| rest.strip_suffix('m'))
        .is_some_and(|params| params.chars().all(|c| c.is_ascii_digit() || c == ';'))
}

/// Returns whether an SGR sequence sets a foreground or background colour (resets to the default
/// colour, 39 and 49, do not count).
fn sets_colour(sequence: &str) -> bool {
    let Some(params) = sequence
        .strip_prefix("\u{1b}[")
        .and_then(|rest| rest.strip_suffix('m'))
    else {
        return false;
    };
    params
        .split(';')
        .filter_map(|param| param.parse::<u16>().ok())
        .any(|code| matches!(code, 30..=38 | 40..=48 | 90..=97 | 100..=107))
}

/// Asserts that a captured screen contains nothing a terminal would act on beyond attributes:
/// only SGR sequences, no BEL, no other control characters.
fn assert_inert(captured: &str) {
    let foreign: Vec<String> = escape_sequences(captured)
        .into_iter()
        .filter(|sequence| !is_sgr(sequence))
        .collect();
    assert!(
        foreign.is_empty(),
        "the pane contains escape sequences other than SGR: {foreign:?}\n{captured}"
    );
    let controls: Vec<char> = captured
        .chars()
        .filter(|c| c.is_control() && !matches!(c, '\u{1b}' | '\n'))
        .collect();
    assert!(
        controls.is_empty(),
        "the pane contains control characters {controls:?}:\n{captured}"
    );
}

/// Returns the Total figure of the ID-JAG Tokens card, the first card whose line reads
/// `Total <number>`; `None` while the cards are not drawn.
fn id_jag_total(screen: &str) -> Option<u64> {
    screen.lines().find_map(|line| {
        line.split('│').find_map(|cell| {
            let rest = cell.trim().strip_prefix("Total")?.trim();
            let digits: String = rest.chars().filter(char::is_ascii_digit).collect();
            let only_figure = rest.chars().all(|c| c.is_ascii_digit() || c == ',');
            if !only_figure || digits.is_empty() {
                return None;
            }
            digits.parse().ok()
        })
    })
}

/// Returns the first word after `after` that looks like a client secret (40 or more
/// base64url characters).
fn secret_after(screen: &str, after: &str) -> Option<String> {
    let start = screen.find(after)? + after.len();
    screen[start..]
        .split(|c: char| c.is_whitespace() || c == '│')
        .find(|word| {
            word.len() >= 40
                && word
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        })
        .map(str::to_owned)
}

/// Builds the `xaa` command for a CLI verb, run in `dir` so it reads `dir/config.toml`.
fn xaa(dir: &Path) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_xaa"));
    command
        .current_dir(dir)
        .env_remove("XAA_CONFIG")
        .env_remove("XAA_ADMIN_TOKEN")
        .env("RUST_BACKTRACE", "0");
    command
}

fn xaa_output(dir: &Path, args: &[&str]) -> Output {
    xaa(dir).args(args).output().expect("the xaa binary runs")
}

/// Runs a verb with `--json` and parses what it prints; panics when it fails.
fn xaa_json(dir: &Path, args: &[&str]) -> Value {
    let output = xaa(dir)
        .args(args)
        .arg("--json")
        .output()
        .expect("the xaa binary runs");
    assert!(
        output.status.success(),
        "xaa {args:?} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).expect("xaa --json prints JSON")
}

/// Builds the shell command that starts `xaa ARGS` in `dir` under the test's terminal settings, with
/// `variables` (`NAME=value` words, already quoted) added to its environment.
fn dashboard_command(dir: &Path, no_color: bool, variables: &str, args: &str) -> String {
    let colour = if no_color {
        "NO_COLOR=1"
    } else {
        "-u NO_COLOR"
    };
    format!(
        "cd {} && env -u XAA_CONFIG -u XAA_ADMIN_TOKEN {colour} USER={OPERATOR} \
         TERM=xterm-256color {variables} {} {args}",
        shell_quote(&dir.to_string_lossy()),
        shell_quote(env!("CARGO_BIN_EXE_xaa")),
    )
}

/// Returns the names of the demo's store directories (`xaa-demo-*`) in `dir`.
fn demo_dirs(dir: &Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .expect("the scratch directory is readable")
        .filter_map(Result::ok)
        .filter(|entry| entry.file_type().is_ok_and(|kind| kind.is_dir()))
        .map(|entry| entry.file_name().to_string_lossy().into_owned())
        .filter(|name| name.starts_with("xaa-demo-"))
        .collect()
}

/// A store prepared with the CLI: one provider (a running `xaa demo-idp`), one proxy, and a
/// mapping of `seed-agent` to `seed-client`. Its `config.toml` puts both listeners on free
/// loopback ports.
struct Store {
    dir: TempDir,
    public_url: String,
    admin_url: String,
    idp_url: String,
    seed_secret: String,
    _idp: ChildGuard,
}

impl Store {
    fn prepare() -> Self {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let [public, admin, idp_port] = free_ports();
        let public_url = format!("http://127.0.0.1:{public}");
        let config = format!(
            "[server]\n\
             public_addr = \"127.0.0.1:{public}\"\n\
             admin_addr = \"127.0.0.1:{admin}\"\n\
             public_url = \"{public_url}\"\n\
             data_dir = \"data\"\n\
             log_dir = \"logs\"\n\
             \n\
             [database]\n\
             url = \"sqlite://data/xaa.db\"\n"
        );
        std::fs::write(dir.path().join("config.toml"), config).expect("config.toml is written");

        let idp = xaa(dir.path())
            .args(["demo-idp", "--addr", &format!("127.0.0.1:{idp_port}")])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("xaa demo-idp starts");
        let idp = ChildGuard(idp);
        let idp_url = format!("http://127.0.0.1:{idp_port}");
        wait_for_http(&format!("{idp_url}/jwks"));

        let path = dir.path();
        xaa_json(
            path,
            &[
                "providers",
                "add",
                "--name",
                "Tmux IdP",
                "--issuer",
                &idp_url,
            ],
        );
        xaa_json(path, &["proxies", "add", "--name", "tmux-proxy"]);
        let mapping = xaa_json(
            path,
            &[
                "mappings",
                "add",
                "--proxy",
                "1",
                "--provider",
                "1",
                "--client-id-at-idp",
                "seed-agent",
                "--client-id-at-resource-as",
                "seed-client",
                "--scopes",
                "openid profile",
            ],
        );
        let seed_secret = mapping["client_secret"]
            .as_str()
            .expect("a new mapping prints its client secret")
            .to_owned();
        Self {
            dir,
            public_url,
            admin_url: format!("http://127.0.0.1:{admin}"),
            idp_url,
            seed_secret,
            _idp: idp,
        }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Starts `xaa` in the pane and waits for the Proxies screen with its background server.
    fn open_dashboard(&self, tmux: &Tmux, no_color: bool) {
        tmux.shell(&dashboard_command(self.path(), no_color, "", ""));
        let public = self.public_url.trim_start_matches("http://");
        tmux.wait_for_all(&["tmux-proxy", &format!("exchange server on {public}")]);
        wait_for_http(&format!("{}/healthz", self.admin_url));
    }

    /// Asks the demo IdP for an ID-JAG addressed to proxy 1.
    fn mint(&self, client_id: &str, subject: &str) -> String {
        let audience = format!("{}/proxies/1", self.public_url);
        let (status, body) = post_form(
            &format!("{}/mint", self.idp_url),
            &[
                ("aud", audience.as_str()),
                ("client_id", client_id),
                ("sub", subject),
            ],
            None,
        );
        assert_eq!(status, 200, "the demo IdP did not mint: {body}");
        body.trim().to_owned()
    }

    /// Presents an ID-JAG at proxy 1's token endpoint; returns the status and the JSON body.
    fn redeem(&self, client_id: &str, secret: &str, assertion: &str) -> (u16, Value) {
        let (status, body) = post_form(
            &format!("{}/proxies/1/oauth2/token", self.public_url),
            &[
                ("grant_type", "urn:ietf:params:oauth:grant-type:jwt-bearer"),
                ("assertion", assertion),
            ],
            Some((client_id, secret)),
        );
        let json = serde_json::from_str(&body).expect("the token endpoint returns JSON");
        (status, json)
    }
}

/// Finds the audit event of a type whose field `key` is `value`.
fn audit_event<'a>(events: &'a Value, event_type: &str, key: &str, value: &str) -> &'a Value {
    events
        .as_array()
        .expect("xaa audit --json prints an array")
        .iter()
        .find(|event| event["event_type"] == event_type && event["fields"][key] == value)
        .unwrap_or_else(|| panic!("no {event_type} event with {key} = {value} in {events:#}"))
}

/// Adds a mapping and revokes a token through the dashboard by keyboard, then checks the
/// store with the CLI.
fn mapping_and_revocation(width: u16, height: u16, no_color: bool) {
    if skip_without_tmux() {
        return;
    }
    let store = Store::prepare();
    let tmux = Tmux::start(&format!("flow{width}"), width, height);
    store.open_dashboard(&tmux, no_color);
    assert_eq!(
        tmux.format("#{mouse_any_flag}"),
        "0",
        "the dashboard captures the mouse"
    );

    let colours: Vec<String> = escape_sequences(&tmux.screen_with_escapes())
        .into_iter()
        .filter(|sequence| sets_colour(sequence))
        .collect();
    if no_color {
        assert!(
            colours.is_empty(),
            "NO_COLOR=1 still sets colours: {colours:?}"
        );
    } else {
        assert!(
            !colours.is_empty(),
            "without NO_COLOR the screen has no colour"
        );
    }

    // Proxies screen to the XAA view, then the Client Mappings tab.
    tmux.press("Enter");
    tmux.wait_for_text("tmux-proxy (mcp, id 1) › XAA");
    tmux.press("Tab");
    tmux.wait_for_all(&["Client Mappings · 1 row", "seed-agent"]);

    // The Add XAA Client Mapping dialog, filled in field by field.
    tmux.press("a");
    tmux.wait_for_all(&["Add XAA Client Mapping", "‹ Tmux IdP (oidc) ›"]);
    tmux.press("Tab");
    tmux.type_text("tmux-agent");
    tmux.press("Tab");
    tmux.type_text("tmux-client");
    tmux.press("Tab");
    tmux.type_text("openid profile");
    tmux.wait_for_all(&["tmux-agent", "tmux-client", "openid profile"]);
    tmux.press("Enter");
    let screen = tmux.wait_for_all(&[
        "Mapping created.",
        "Client Secret",
        "Client secret of 'tmux-client':",
        "This secret is shown once.",
    ]);
    let secret = secret_after(&screen, "Client secret of 'tmux-client':")
        .unwrap_or_else(|| panic!("no client secret under its heading:\n{screen}"));

    // The secret on screen is the one the store accepts.
    let assertion = store.mint("tmux-agent", "alice@example.com");
    let jti = jti_of(&assertion);
    let (status, body) = store.redeem("tmux-client", &secret, &assertion);
    assert_eq!(status, 200, "the on-screen secret was rejected: {body}");
    assert_eq!(body["token_type"], "Bearer");

    tmux.press("Enter");
    tmux.wait_until_gone("Client Secret");
    tmux.wait_for_all(&["Client Mappings · 2 rows", "tmux-agent"]);

    // Token Revocation: fill in the Revoke Single Token form, confirm, read the result.
    tmux.press("Tab");
    tmux.wait_for_all(&[
        "Revoke Single Token",
        "Press Enter to fill in the selected form.",
    ]);
    tmux.press("Enter");
    tmux.wait_for_all(&["Enter submit", "Esc cancel"]);
    tmux.type_text(&jti);
    tmux.press("Tab");
    tmux.type_text("tmux revocation");
    tmux.wait_for_all(&[jti.as_str(), "tmux revocation"]);
    tmux.press("Enter");
    tmux.wait_for_all(&["Revoke the token with JTI", "y confirms, n or Esc cancels."]);
    tmux.press("y");
    tmux.wait_for_all(&["Token Revoked", &format!("token {jti} revoked")]);
    tmux.press("Enter");
    tmux.wait_until_gone("Token Revoked");
    // Leave the form (Esc), then quit (q) once the hint shows the form is left.
    tmux.press("Escape");
    tmux.wait_for_text("Press Enter to fill in the selected form.");
    tmux.press("q");
    tmux.assert_terminal_restored();
    let health = format!("{}/healthz", store.admin_url);
    assert_eq!(
        http_get_status(&health),
        None,
        "the background server outlived the dashboard"
    );

    assert_store_after_flow(&store, &jti);
}

/// Checks with the CLI what the dashboard flow stored: the new mapping, the audit records of
/// its creation and of the revocation, and the revoked ID-JAG.
fn assert_store_after_flow(store: &Store, jti: &str) {
    let mappings = xaa_json(store.path(), &["mappings", "list", "--proxy", "1"]);
    let created = mappings
        .as_array()
        .expect("mappings list --json prints an array")
        .iter()
        .find(|mapping| mapping["client_id_at_idp"] == "tmux-agent")
        .unwrap_or_else(|| panic!("the new mapping is not stored: {mappings:#}"));
    assert_eq!(created["client_id_at_resource_as"], "tmux-client");
    assert_eq!(
        created["allowed_scopes"],
        serde_json::json!(["openid", "profile"])
    );
    assert_eq!(created["idp_provider_name"], "Tmux IdP");

    let events = xaa_json(store.path(), &["audit", "--limit", "100"]);
    let mapping_event = audit_event(
        &events,
        "xaa_client_mapping_created",
        "client_id_at_idp",
        "tmux-agent",
    );
    let actor = mapping_event["actor"].as_str().unwrap_or_default();
    assert!(
        actor.starts_with(&format!("{OPERATOR}@")),
        "the mapping's actor is {actor}"
    );
    let revoked = audit_event(&events, "xaa_token_revoked", "jti", jti);
    assert_eq!(revoked["fields"]["reason"], "tmux revocation");
    let revoked_by = revoked["fields"]["revoked_by"].as_str().unwrap_or_default();
    assert!(
        revoked_by.starts_with(&format!("{OPERATOR}@")),
        "revoked_by is {revoked_by}"
    );

    let tokens = xaa_json(store.path(), &["tokens", "--status", "revoked"]);
    assert!(
        tokens
            .as_array()
            .expect("tokens --json prints an array")
            .iter()
            .any(|token| token["jti"] == jti),
        "the revoked ID-JAG is not listed as revoked: {tokens:#}"
    );
}

#[test]
fn escape_helpers_classify_sequences() {
    let sample = "a\u{1b}[1;38;5;3mb\u{1b}[2Jc\u{1b}]0;t\u{7}";
    assert_eq!(
        escape_sequences(sample),
        ["\u{1b}[1;38;5;3m", "\u{1b}[2J", "\u{1b}]"]
    );
    assert!(is_sgr("\u{1b}[0m"));
    assert!(!is_sgr("\u{1b}[2J"));
    assert!(sets_colour("\u{1b}[1;38;5;3m"));
    assert!(!sets_colour("\u{1b}[39m"));
    assert!(!sets_colour("\u{1b}[1;7m"));
    let panel = "│Total                  16││Total Providers        1│";
    assert_eq!(id_jag_total(panel), Some(16));
    assert_eq!(id_jag_total("│Total Providers        1│"), None);
}

#[test]
fn mapping_and_revocation_80x24() {
    mapping_and_revocation(80, 24, true);
}

#[test]
fn mapping_and_revocation_200x50() {
    mapping_and_revocation(200, 50, false);
}

#[test]
fn demo_statistics_refresh_unprompted() {
    if skip_without_tmux() {
        return;
    }
    // The demo puts its throwaway store and its log under TMPDIR: here, a directory of this
    // test, so the store's removal can be checked.
    let scratch = tempfile::tempdir().expect("a temporary directory");
    let tmux = Tmux::start("demo", 80, 24);
    let tmpdir = format!("TMPDIR={}", shell_quote(&scratch.path().to_string_lossy()));
    tmux.shell(&dashboard_command(scratch.path(), true, &tmpdir, "demo"));
    tmux.wait_for_all(&["mcp-tools", "llm-gateway"]);
    let running = demo_dirs(scratch.path());
    assert_eq!(running.len(), 1, "one demo store under TMPDIR: {running:?}");

    tmux.press("Enter");
    let screen = tmux.wait_for("the ID-JAG Tokens card", |screen| {
        screen.contains("ID-JAG Tokens") && id_jag_total(screen).is_some()
    });
    let first = id_jag_total(&screen).expect("the card shows a total");

    // No key is pressed from here: the periodic refresh alone must bring a new figure.
    let screen = tmux.wait_up_to(
        DEMO_CHANGE_WAIT,
        "the ID-JAG total to change by itself",
        |screen| id_jag_total(screen).is_some_and(|total| total != first),
    );
    let second = id_jag_total(&screen).expect("the card shows a total");
    assert!(second > first, "the total fell from {first} to {second}");

    tmux.press("q");
    tmux.assert_terminal_restored();
    let left = demo_dirs(scratch.path());
    assert!(left.is_empty(), "the demo left its store behind: {left:?}");
}

/// Returns the pid of the child of `parent` whose command name is `name`.
fn child_named(parent: u32, name: &str) -> Option<u32> {
    let entries = std::fs::read_dir("/proc").ok()?;
    entries.filter_map(Result::ok).find_map(|entry| {
        let process: u32 = entry.file_name().to_str()?.parse().ok()?;
        let stat = std::fs::read_to_string(entry.path().join("stat")).ok()?;
        // Format: "pid (comm) state ppid ...", where comm may itself contain spaces or ')'.
        let open = stat.find('(')?;
        let close = stat.rfind(')')?;
        let comm = &stat[open + 1..close];
        let parent_of_process: u32 = stat[close + 1..].split_whitespace().nth(1)?.parse().ok()?;
        (parent_of_process == parent && comm == name).then_some(process)
    })
}

#[test]
fn sighup_restores_terminal() {
    if skip_without_tmux() {
        return;
    }
    let store = Store::prepare();
    let tmux = Tmux::start("hup", 80, 24);
    store.open_dashboard(&tmux, true);

    let shell: u32 = tmux
        .run(&["list-panes", "-t", "xaa", "-F", "#{pane_pid}"])
        .trim()
        .parse()
        .expect("tmux prints the pane's pid");
    let dashboard = child_named(shell, "xaa")
        .unwrap_or_else(|| panic!("no xaa process under the pane's shell {shell}"));
    // The shell's builtin kill: a kill binary is not installed everywhere.
    let status = Command::new("sh")
        .args(["-c", "kill -HUP \"$1\"", "sh", &dashboard.to_string()])
        .status()
        .expect("sh runs");
    assert!(status.success(), "kill -HUP {dashboard} failed");

    // SIGHUP is a request to stop, so the dashboard exits cleanly with status 0.
    tmux.wait_for_exit();
    tmux.shell("echo exit-status-$?");
    let screen = tmux.wait_for("the dashboard's exit status", |screen| {
        screen
            .lines()
            .any(|line| line.trim().starts_with("exit-status-"))
    });
    assert!(has_line(&screen, "exit-status-0"), "{screen}");
    tmux.assert_shell_works();

    let log = std::fs::read_to_string(store.path().join("logs/dashboard.log"))
        .expect("the dashboard wrote its log");
    assert!(
        log.contains("SIGHUP"),
        "the dashboard log does not name SIGHUP as the reason to stop:\n{log}"
    );
}

#[test]
fn escape_sequences_stay_inert() {
    if skip_without_tmux() {
        return;
    }
    let store = Store::prepare();
    let tmux = Tmux::start("escapes", 80, 24);
    store.open_dashboard(&tmux, false);
    let title = tmux.format("#{pane_title}");

    // The exchange rejects a subject with control characters, and records the attempt.
    let assertion = store.mint("seed-agent", EVIL_SUBJECT);
    let (status, body) = store.redeem("seed-client", &store.seed_secret, &assertion);
    assert_eq!(status, 400, "the exchange accepted the subject: {body}");
    assert_eq!(body["error"], "invalid_grant");
    let events = xaa_json(store.path(), &["audit", "--limit", "10"]);
    let rejected = audit_event(
        &events,
        "xaa_token_validation_failed",
        "jti",
        &jti_of(&assertion),
    );
    assert_eq!(rejected["reason_code"], "sub_invalid");

    // The CLI rejects a revocation reason with control characters.
    let good = store.mint("seed-agent", "bob@example.com");
    let (status, body) = store.redeem("seed-client", &store.seed_secret, &good);
    assert_eq!(status, 200, "a plain subject was rejected: {body}");
    let output = xaa_output(
        store.path(),
        &["revoke", "token", &jti_of(&good), "--reason", "a\u{1b}[2Jb"],
    );
    assert!(
        !output.status.success(),
        "the CLI accepted a reason with an escape sequence"
    );
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("control characters"), "{stderr}");

    // The rejected attempt's audit record, opened on the Audit tab.
    tmux.press("Enter");
    tmux.wait_for_text("tmux-proxy (mcp, id 1) › XAA");
    tmux.press("5");
    tmux.wait_for_text("event type: all");
    // f cycles through the event types; stop at the failed validations.
    let expected_title = "event type: xaa_token_validation_failed";
    for _ in 0..AUDIT_EVENT_TYPES {
        if tmux.screen().contains(expected_title) {
            break;
        }
        let before = tmux.screen();
        let current_title = before
            .lines()
            .find(|line| line.contains("event type:"))
            .unwrap_or_default()
            .to_owned();
        tmux.press("f");
        tmux.wait_for("the next event type", |screen| {
            !screen.contains(&current_title)
        });
    }
    // The title names the type; a row with it must show below.
    tmux.wait_for("a failed validation row", |screen| {
        screen.contains(expected_title)
            && screen
                .lines()
                .filter(|line| line.contains("xaa_token_validation_failed"))
                .count()
                >= 2
    });
    tmux.press("Enter");
    let screen = tmux.wait_for_all(&["Audit Event", "sub_invalid"]);
    let subject_line = screen
        .lines()
        .find(|line| line.contains("subject"))
        .unwrap_or_else(|| panic!("the audit details show no subject:\n{screen}"));
    assert!(subject_line.contains("evil"), "{subject_line}");
    assert_inert(&tmux.screen_with_escapes());
    tmux.press("Enter");
    tmux.wait_until_gone("Audit Event");

    // A bracketed paste with escape sequences and a newline into the Reason field: the
    // control characters are dropped and the rest arrives as one piece of text.
    tmux.press("3");
    tmux.wait_for_text("Press Enter to fill in the selected form.");
    tmux.press("Enter");
    tmux.wait_for_text("Enter submit");
    tmux.press("Tab");
    tmux.paste("a\u{1b}[2J\u{1b}]0;pwned\u{7}\nb");
    tmux.wait_for_text("a[2J]0;pwnedb");
    assert_inert(&tmux.screen_with_escapes());

    let after = tmux.format("#{pane_title}");
    assert_eq!(after, title, "the pane title changed");
    tmux.press("Escape");
    tmux.wait_for_text("Press Enter to fill in the selected form.");
    tmux.press("q");
    tmux.assert_terminal_restored();
}
