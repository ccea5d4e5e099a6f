//! Interoperability with a third-party OAuth client: `exchangeJwtAuthGrant` from the MCP
//! TypeScript SDK (`@modelcontextprotocol/client`, pinned in `tests/js/package.json`) redeems an
//! ID-JAG at xaa's token endpoint through `tests/js/redeem.mjs`, and xaa's introspection endpoint
//! then reports the token active.
//!
//! The tests need Node.js and the SDK under `tests/js/node_modules`. When the SDK is missing they
//! run `npm ci --prefix tests/js` if `CI` or `XAA_NPM_INSTALL` is set, and are skipped otherwise,
//! so a local `cargo test` makes no network request of its own.

mod common;

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::sync::OnceLock;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use common::idp::TestIdp;
use common::server::TestServer;
use serde_json::{Value, json};

const IDP_CLIENT_ID: &str = "0oa-idp-client";
// NOTE: the SDK (2.4.0) base64-encodes `id:secret` for Basic without form-urlencoding the parts
// first, while xaa form-decodes them (RFC 6749 §2.3.1). The two agree only on ids and secrets
// without `%` or `+`, such as this id and xaa's base64url secrets.
const CLIENT_ID: &str = "gateway-client";
const SUBJECT: &str = "alice@example.com";
/// The scope xaa grants: the ID-JAG requests `openid profile mcp:tools`, and the mapping allows
/// only these two.
const GRANTED_SCOPE: &str = "openid mcp:tools";

/// Upper bound for one run of `redeem.mjs`, which normally takes well under a second.
const NODE_TIMEOUT: Duration = Duration::from_secs(60);
/// Upper bound for `npm ci`, which downloads the SDK and its dependencies.
const NPM_CI_TIMEOUT: Duration = Duration::from_secs(300);

fn js_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/js")
}

/// Output of a child process that ran to completion within its time limit.
struct Finished {
    status: ExitStatus,
    stdout: String,
    stderr: String,
}

/// Runs `command` with piped output, killing it when it outlives `timeout`.
fn run_bounded(mut command: Command, timeout: Duration) -> Finished {
    // Program and arguments only: `Command`'s Debug output also lists the environment, which here
    // carries the client secret and the assertion.
    let arguments: Vec<_> = command
        .get_args()
        .map(|arg| arg.to_string_lossy())
        .collect();
    let description = format!(
        "{} {}",
        command.get_program().to_string_lossy(),
        arguments.join(" ")
    );
    let mut child = command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|error| panic!("failed to start {description}: {error}"));

    // Reader threads drain both pipes so a chatty child cannot block on a full pipe buffer.
    let stdout = read_in_background(child.stdout.take());
    let stderr = read_in_background(child.stderr.take());

    let deadline = Instant::now() + timeout;
    let status = loop {
        if let Some(status) = child.try_wait().expect("poll child process") {
            break status;
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{description} timed out after {timeout:?}");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    Finished {
        status,
        stdout: stdout.join().expect("stdout reader thread"),
        stderr: stderr.join().expect("stderr reader thread"),
    }
}

/// Reads `pipe` to its end on a new thread.
fn read_in_background<R: Read + Send + 'static>(pipe: Option<R>) -> JoinHandle<String> {
    std::thread::spawn(move || {
        let mut text = String::new();
        if let Some(mut pipe) = pipe {
            let _ = pipe.read_to_string(&mut text);
        }
        text
    })
}

/// Returns the version that `program --version` prints, or `None` when it cannot run.
fn tool_version(program: &str) -> Option<String> {
    let output = Command::new(program)
        .arg("--version")
        .stdin(Stdio::null())
        .output()
        .ok()?;
    output
        .status
        .success()
        .then(|| String::from_utf8_lossy(&output.stdout).trim().to_owned())
}

/// Makes sure Node.js and the SDK are available, installing the SDK with `npm ci` when the
/// environment allows it. Returns the reason to skip when they are not available.
fn prepare_sdk() -> Result<(), String> {
    let node = tool_version("node").ok_or("node not found on PATH (Node.js 20 or newer)")?;
    let sdk = js_dir().join("node_modules/@modelcontextprotocol/client/package.json");
    if sdk.is_file() {
        eprintln!("using node {node} and the SDK in {}", js_dir().display());
        return Ok(());
    }

    let install_allowed =
        std::env::var_os("CI").is_some() || std::env::var_os("XAA_NPM_INSTALL").is_some();
    if !install_allowed {
        return Err(format!(
            "{} is missing; run `npm ci --prefix tests/js` in {}, or set XAA_NPM_INSTALL=1 to let \
             this test run it",
            sdk.display(),
            env!("CARGO_MANIFEST_DIR"),
        ));
    }
    let npm = tool_version("npm").ok_or("npm not found on PATH, so the SDK cannot be installed")?;

    eprintln!("installing the SDK: npm {npm} ci --prefix tests/js");
    let mut command = Command::new("npm");
    command
        .args(["ci", "--prefix", "tests/js"])
        .current_dir(env!("CARGO_MANIFEST_DIR"));
    let install = run_bounded(command, NPM_CI_TIMEOUT);
    // A failed install where installing was allowed is a broken setup, not a reason to skip.
    assert!(
        install.status.success(),
        "npm ci --prefix tests/js failed with {}:\n{}\n{}",
        install.status,
        install.stdout,
        install.stderr,
    );
    assert!(
        sdk.is_file(),
        "npm ci succeeded but {} is still missing",
        sdk.display()
    );
    Ok(())
}

/// Runs [`prepare_sdk`] once per test binary, so parallel tests never run `npm ci` together.
fn sdk_ready() -> bool {
    static READY: OnceLock<Result<(), String>> = OnceLock::new();
    match READY.get_or_init(prepare_sdk) {
        Ok(()) => true,
        Err(reason) => {
            eprintln!("skipped: {reason}");
            false
        }
    }
}

/// A running IdP and xaa with one provider, one proxy and one mapping for [`CLIENT_ID`].
struct Fixture {
    idp: TestIdp,
    server: TestServer,
    proxy: i64,
    secret: String,
}

impl Fixture {
    async fn start() -> Self {
        let idp = TestIdp::start().await;
        let server = TestServer::start().await;
        let provider = server.add_provider(idp.issuer(), json!({})).await;
        let proxy = server.add_proxy("mcp-tools", json!({})).await;
        let mapping = server
            .add_mapping(
                proxy,
                provider,
                IDP_CLIENT_ID,
                CLIENT_ID,
                &["openid", "mcp:tools"],
            )
            .await;
        let secret = mapping["client_secret"]
            .as_str()
            .expect("a new mapping returns its client_secret")
            .to_owned();
        Self {
            idp,
            server,
            proxy,
            secret,
        }
    }

    /// Mints a fresh ID-JAG for [`SUBJECT`] addressed to the proxy's issuer.
    fn mint_id_jag(&self) -> String {
        let claims = self
            .idp
            .claims(&self.server.issuer(self.proxy), IDP_CLIENT_ID, SUBJECT);
        self.idp.mint(&claims)
    }

    /// Runs `redeem.mjs` against the proxy's token endpoint. `auth_method` of `None` leaves the
    /// SDK's default in place.
    async fn redeem_with_sdk(
        &self,
        secret: &str,
        assertion: &str,
        auth_method: Option<&str>,
    ) -> Finished {
        let mut command = Command::new("node");
        command
            .arg("redeem.mjs")
            .current_dir(js_dir())
            .env("XAA_TOKEN_ENDPOINT", self.server.token_endpoint(self.proxy))
            .env("XAA_CLIENT_ID", CLIENT_ID)
            .env("XAA_CLIENT_SECRET", secret)
            .env("XAA_ASSERTION", assertion)
            .env_remove("XAA_AUTH_METHOD")
            .env_remove("NODE_OPTIONS");
        if let Some(method) = auth_method {
            command.env("XAA_AUTH_METHOD", method);
        }
        // Blocking wait on a worker thread, so the runtime keeps serving xaa and the IdP meanwhile.
        tokio::task::spawn_blocking(move || run_bounded(command, NODE_TIMEOUT))
            .await
            .expect("node runner thread")
    }

    /// Introspects `token` at the proxy with Basic client credentials.
    async fn introspect(&self, token: &str) -> Value {
        let response = self
            .server
            .http
            .post(format!(
                "{}/oauth2/introspect",
                self.server.issuer(self.proxy)
            ))
            .basic_auth(CLIENT_ID, Some(&self.secret))
            .form(&[("token", token)])
            .send()
            .await
            .expect("introspection request");
        assert_eq!(response.status(), 200, "introspection status");
        response.json().await.expect("introspection body is JSON")
    }

    async fn stop(self) {
        self.server.stop().await;
        self.idp.shutdown().await;
    }
}

/// Parses the script's stdout, one line of JSON, failing with the script's output on error.
fn parse_token_response(run: &Finished) -> Value {
    assert!(
        run.status.success(),
        "redeem.mjs exited with {}\nstdout: {}\nstderr: {}",
        run.status,
        run.stdout,
        run.stderr,
    );
    serde_json::from_str(run.stdout.trim()).unwrap_or_else(|error| {
        panic!(
            "redeem.mjs printed no JSON ({error})\nstdout: {}\nstderr: {}",
            run.stdout, run.stderr
        )
    })
}

/// Redeems with `auth_method` through the SDK, then checks the token response and introspection.
async fn redeem_and_introspect(auth_method: Option<&str>) {
    let fixture = Fixture::start().await;
    let assertion = fixture.mint_id_jag();

    let run = fixture
        .redeem_with_sdk(&fixture.secret, &assertion, auth_method)
        .await;
    let tokens = parse_token_response(&run);
    let access_token = tokens["access_token"]
        .as_str()
        .unwrap_or_else(|| panic!("access_token missing from {tokens}"));
    assert!(!access_token.is_empty(), "empty access_token in {tokens}");
    assert_eq!(tokens["token_type"], "Bearer", "{tokens}");
    assert_eq!(tokens["scope"], GRANTED_SCOPE, "{tokens}");
    let expires_in = tokens["expires_in"]
        .as_i64()
        .unwrap_or_else(|| panic!("expires_in missing from {tokens}"));
    assert!(expires_in > 0, "expires_in {expires_in} is not positive");
    assert!(
        tokens.get("refresh_token").is_none(),
        "unexpected refresh_token in {tokens}"
    );

    let introspection = fixture.introspect(access_token).await;
    assert_eq!(introspection["active"], true, "{introspection}");
    assert_eq!(introspection["sub"], SUBJECT, "{introspection}");
    assert_eq!(introspection["client_id"], CLIENT_ID, "{introspection}");
    assert_eq!(introspection["scope"], GRANTED_SCOPE, "{introspection}");
    fixture.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sdk_redeems_with_default_basic_auth() {
    if !sdk_ready() {
        return;
    }
    // The SDK's default is client_secret_basic.
    redeem_and_introspect(None).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sdk_redeems_with_post_auth() {
    if !sdk_ready() {
        return;
    }
    redeem_and_introspect(Some("client_secret_post")).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sdk_reports_wrong_secret() {
    if !sdk_ready() {
        return;
    }
    let fixture = Fixture::start().await;
    let assertion = fixture.mint_id_jag();

    let run = fixture
        .redeem_with_sdk("not-the-secret", &assertion, None)
        .await;
    assert_eq!(
        run.status.code(),
        Some(1),
        "redeem.mjs should fail\nstdout: {}\nstderr: {}",
        run.stdout,
        run.stderr,
    );
    assert!(
        run.stdout.trim().is_empty(),
        "no token on stdout: {}",
        run.stdout
    );
    assert!(
        run.stderr.contains("invalid_client"),
        "the SDK error names the OAuth error: {}",
        run.stderr
    );
    fixture.stop().await;
}
