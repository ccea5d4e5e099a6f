//! The server under test: a temporary data directory, `xaa serve` as a child process on free
//! loopback ports, and the admin API calls that configure it.

use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Value, json};

use super::{BenchError, machine};

/// Admin token of every server the bench starts; only loopback clients can reach it.
const ADMIN_TOKEN: &str = "xaa-bench-admin-token-not-secret";
/// `server.public_url` of every instance, so instances sharing a database agree on the proxy
/// issuers. Nothing connects to it: the `.invalid` domain never resolves.
pub const PUBLIC_URL: &str = "https://xaa-bench.invalid";
/// Delay between two `/healthz` probes while a server starts.
const READY_POLL: Duration = Duration::from_millis(5);
/// Maximum wait for a server to exit after SIGTERM before it is killed.
const STOP_LIMIT: Duration = Duration::from_secs(15);
/// Client id of the mapping at the IdP, as minted ID-JAGs name it.
pub const IDP_CLIENT_ID: &str = "bench-idp-client";
/// Client id at the resource authorization server, which authenticates at the token endpoint.
pub const CLIENT_ID: &str = "bench-client";

/// The temporary directory of one run, removed on drop unless it is to be kept.
pub struct Workspace {
    root: PathBuf,
    keep: bool,
}

impl Workspace {
    /// Creates a fresh directory under `parent` (default: the system temporary directory).
    pub fn create(parent: Option<&Path>, keep: bool) -> Result<Self, BenchError> {
        let parent = parent.map_or_else(std::env::temp_dir, Path::to_owned);
        let stamp = chrono::Utc::now().format("%Y%m%d-%H%M%S");
        let root = parent.join(format!("xaa-bench-{stamp}-{}", std::process::id()));
        std::fs::create_dir_all(&parent)
            .and_then(|()| std::fs::create_dir(&root))
            .map_err(BenchError::io(format!("create {}", root.display())))?;
        tracing::info!(dir = %root.display(), "benchmark data directory created");
        Ok(Self { root, keep })
    }

    /// Creates the data directory `name` inside the workspace and returns its spec.
    pub fn server_spec(&self, name: &str) -> Result<ServerSpec, BenchError> {
        let data_dir = self.root.join(name);
        std::fs::create_dir_all(&data_dir)
            .map_err(BenchError::io(format!("create {}", data_dir.display())))?;
        Ok(ServerSpec {
            database: data_dir.join("xaa.db"),
            data_dir,
        })
    }
}

impl Drop for Workspace {
    fn drop(&mut self) {
        if self.keep {
            tracing::info!(dir = %self.root.display(), "benchmark data directory kept");
            return;
        }
        if let Err(error) = std::fs::remove_dir_all(&self.root) {
            tracing::warn!(%error, dir = %self.root.display(), "cannot remove the benchmark data directory");
        }
    }
}

/// Data directory and database file of a server.
#[derive(Debug, Clone)]
pub struct ServerSpec {
    pub data_dir: PathBuf,
    /// The SQLite database file.
    pub database: PathBuf,
}

impl ServerSpec {
    /// Returns the sqlx URL of the database.
    pub fn database_url(&self) -> String {
        format!("sqlite://{}", self.database.display())
    }
}

/// A running `xaa serve` child process.
pub struct ServerProcess {
    child: Child,
    public_addr: SocketAddr,
    admin_addr: SocketAddr,
    spawned_at: Instant,
    stopped: bool,
}

impl ServerProcess {
    /// Starts `xaa serve` on free loopback ports with the spec's data directory. Settings come
    /// from `XAA_` environment variables only: the child's working directory is the data
    /// directory (so no `config.toml` is picked up) and the caller's `XAA_` variables are
    /// removed. Output goes to `<instance>.out` in the data directory.
    pub fn spawn(spec: &ServerSpec, instance: &str) -> Result<Self, BenchError> {
        let exe = std::env::current_exe().map_err(BenchError::io("locate the xaa executable"))?;
        let public_addr = free_loopback_port()?;
        let admin_addr = free_loopback_port()?;
        let output_path = spec.data_dir.join(format!("{instance}.out"));
        let output = std::fs::File::create(&output_path)
            .map_err(BenchError::io(format!("create {}", output_path.display())))?;
        let errors = output
            .try_clone()
            .map_err(BenchError::io("duplicate the server output file"))?;

        let mut command = Command::new(exe);
        command
            .arg("serve")
            .current_dir(&spec.data_dir)
            .stdin(Stdio::null())
            .stdout(output)
            .stderr(errors);
        for (name, _) in std::env::vars_os() {
            if name.to_string_lossy().starts_with("XAA_") {
                command.env_remove(name);
            }
        }
        command
            .env("XAA_SERVER__PUBLIC_ADDR", public_addr.to_string())
            .env("XAA_SERVER__ADMIN_ADDR", admin_addr.to_string())
            .env("XAA_SERVER__PUBLIC_URL", PUBLIC_URL)
            .env("XAA_SERVER__DATA_DIR", &spec.data_dir)
            .env(
                "XAA_SERVER__LOG_DIR",
                spec.data_dir.join(format!("logs-{instance}")),
            )
            .env("XAA_DATABASE__URL", spec.database_url())
            .env("XAA_ADMIN_TOKEN", ADMIN_TOKEN);

        let spawned_at = Instant::now();
        let child = command
            .spawn()
            .map_err(BenchError::io("start `xaa serve`"))?;
        tracing::info!(pid = child.id(), instance, %public_addr, "server under test started");
        Ok(Self {
            child,
            public_addr,
            admin_addr,
            spawned_at,
            stopped: false,
        })
    }

    /// Returns the address of the public (OAuth) listener.
    pub fn public_addr(&self) -> SocketAddr {
        self.public_addr
    }

    /// Polls `/healthz` until it returns 200 and returns the time since the spawn.
    pub async fn wait_ready(&self, limit: Duration) -> Result<Duration, BenchError> {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(2))
            .build()?;
        let url = format!("http://{}/healthz", self.admin_addr);
        let deadline = self.spawned_at + limit;
        while Instant::now() < deadline {
            if let Ok(response) = http.get(&url).send().await
                && response.status() == reqwest::StatusCode::OK
            {
                return Ok(self.spawned_at.elapsed());
            }
            tokio::time::sleep(READY_POLL).await;
        }
        Err(BenchError::Server(format!(
            "no 200 response from {url} within {} s",
            limit.as_secs()
        )))
    }

    /// CPU time the server has used since it started.
    pub fn cpu_time(&self) -> Result<Duration, BenchError> {
        machine::cpu_time(self.child.id())
    }

    /// Bytes the server has caused to be written to storage so far.
    pub fn written_bytes(&self) -> Option<u64> {
        machine::written_bytes(self.child.id())
    }

    /// Peak resident memory of the server so far, in bytes.
    pub fn peak_resident_bytes(&self) -> Option<u64> {
        machine::peak_resident_bytes(self.child.id())
    }

    /// Sends SIGTERM and waits for a graceful exit, killing the process after [`STOP_LIMIT`].
    pub async fn stop(&mut self) {
        if self.stopped {
            return;
        }
        self.stopped = true;
        let pid = self.child.id().to_string();
        match Command::new("kill").args(["-TERM", &pid]).status() {
            Ok(status) if status.success() => {}
            Ok(status) => tracing::warn!(pid, %status, "`kill -TERM` failed"),
            Err(error) => tracing::warn!(pid, %error, "cannot run `kill`"),
        }
        let deadline = Instant::now() + STOP_LIMIT;
        while Instant::now() < deadline {
            match self.child.try_wait() {
                Ok(Some(_)) => return,
                Ok(None) => tokio::time::sleep(Duration::from_millis(20)).await,
                Err(error) => {
                    tracing::warn!(pid, %error, "cannot wait for the server");
                    break;
                }
            }
        }
        tracing::warn!(pid, "the server did not stop after SIGTERM; killing it");
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        if !self.stopped {
            // An early return skipped `stop`: kill the child so no server outlives the bench.
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

fn free_loopback_port() -> Result<SocketAddr, BenchError> {
    // NOTE: the port is released before the child binds it, so another process could take it
    // in between. The child then fails to start, and the bench reports that.
    TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .map_err(BenchError::io("find a free loopback port"))
}

/// A client of one server's admin API.
pub struct AdminClient {
    pub http: reqwest::Client,
    base: String,
    public_base: String,
}

impl AdminClient {
    /// Creates a client for `server`'s admin listener.
    pub fn new(server: &ServerProcess) -> Result<Self, BenchError> {
        Ok(Self {
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(120))
                .build()?,
            base: format!("http://{}", server.admin_addr),
            public_base: format!("http://{}", server.public_addr),
        })
    }

    /// POSTs a JSON body to an admin API path and returns the HTTP status with the response
    /// body, when it is JSON.
    pub async fn post_status(
        &self,
        path: &str,
        body: &Value,
    ) -> Result<(u16, Option<Value>), BenchError> {
        let response = self
            .http
            .post(format!("{}{path}", self.base))
            .bearer_auth(ADMIN_TOKEN)
            .json(body)
            .send()
            .await?;
        let status = response.status().as_u16();
        let text = response.text().await?;
        Ok((status, serde_json::from_str(&text).ok()))
    }

    /// GETs an admin API path and returns the JSON response.
    pub async fn get(&self, path: &str) -> Result<Value, BenchError> {
        let request = self.http.get(format!("{}{path}", self.base));
        Self::send_for_json(request, &format!("GET {path}")).await
    }

    /// POSTs a JSON body to an admin API path and returns the JSON response.
    pub async fn post(&self, path: &str, body: &Value) -> Result<Value, BenchError> {
        let request = self.http.post(format!("{}{path}", self.base)).json(body);
        Self::send_for_json(request, &format!("POST {path}")).await
    }

    /// Sends an admin API request with the admin token and parses its JSON response; a
    /// status other than 2xx is an error naming `label`.
    async fn send_for_json(
        request: reqwest::RequestBuilder,
        label: &str,
    ) -> Result<Value, BenchError> {
        let response = request.bearer_auth(ADMIN_TOKEN).send().await?;
        let status = response.status();
        let text = response.text().await?;
        if !status.is_success() {
            return Err(BenchError::Admin {
                request: label.to_owned(),
                detail: format!("HTTP {status}: {text}"),
            });
        }
        serde_json::from_str(&text).map_err(|error| BenchError::Admin {
            request: label.to_owned(),
            detail: format!("the response is not JSON: {error}"),
        })
    }

    /// Creates a provider trusting `issuer` with the default settings, one proxy and one
    /// mapping, and returns what a client needs.
    pub async fn configure_gateway(&self, issuer: &str) -> Result<Gateway, BenchError> {
        let provider = self
            .post(
                "/api/v1/providers",
                &json!({"name": "bench-idp", "issuer": issuer}),
            )
            .await?;
        let provider_id = id_field(&provider, "id", "POST /api/v1/providers")?;
        let proxy = self
            .post(
                "/api/v1/proxies",
                &json!({"name": "bench-proxy", "kind": "mcp"}),
            )
            .await?;
        let proxy_id = id_field(&proxy, "id", "POST /api/v1/proxies")?;
        let mappings_path = format!("/api/v1/proxies/{proxy_id}/xaa/client-mappings");
        let mapping = self
            .post(
                &mappings_path,
                &json!({
                    "idp_provider_id": provider_id,
                    "client_id_at_idp": IDP_CLIENT_ID,
                    "client_id_at_resource_as": CLIENT_ID,
                    "allowed_scopes": ["openid", "profile"],
                }),
            )
            .await?;
        let secret = mapping["client_secret"]
            .as_str()
            .ok_or_else(|| BenchError::Admin {
                request: format!("POST {mappings_path}"),
                detail: "the response has no client_secret".into(),
            })?;
        let token_path = format!("/proxies/{proxy_id}/oauth2/token");
        Ok(Gateway {
            provider_id,
            proxy_id,
            proxy_issuer: format!("{PUBLIC_URL}/proxies/{proxy_id}"),
            token_url: format!("{}{token_path}", self.public_base),
            token_path,
            authorization: basic_authorization(CLIENT_ID, secret),
        })
    }
}

fn id_field(value: &Value, name: &str, request: &str) -> Result<i64, BenchError> {
    value[name].as_i64().ok_or_else(|| BenchError::Admin {
        request: request.to_owned(),
        detail: format!("the response has no integer '{name}': {value}"),
    })
}

/// `Authorization: Basic` with form-encoded id and secret (RFC 6749 §2.3.1).
fn basic_authorization(client_id: &str, secret: &str) -> String {
    let encode =
        |text: &str| url::form_urlencoded::byte_serialize(text.as_bytes()).collect::<String>();
    let pair = format!("{}:{}", encode(client_id), encode(secret));
    format!("Basic {}", STANDARD.encode(pair))
}

/// A configured proxy: what a client needs to redeem ID-JAGs there.
#[derive(Debug, Clone)]
pub struct Gateway {
    pub provider_id: i64,
    pub proxy_id: i64,
    /// The proxy's issuer identifier: the `aud` of its ID-JAGs.
    pub proxy_issuer: String,
    /// Path of the proxy's token endpoint.
    pub token_path: String,
    /// The token endpoint on the instance this value was made for.
    pub token_url: String,
    /// The `Authorization` header value of the mapped client.
    pub authorization: String,
}

impl Gateway {
    /// Returns the same gateway served by another instance on the same database.
    pub fn on_instance(&self, server: &ServerProcess) -> Self {
        Self {
            token_url: format!("http://{}{}", server.public_addr, self.token_path),
            ..self.clone()
        }
    }

    /// Redeems one ID-JAG and returns the HTTP status.
    pub async fn redeem(&self, http: &reqwest::Client, assertion: &str) -> Result<u16, BenchError> {
        let response = http
            .post(&self.token_url)
            .header(reqwest::header::AUTHORIZATION, &self.authorization)
            .form(&[
                ("grant_type", "urn:ietf:params:oauth:grant-type:jwt-bearer"),
                ("assertion", assertion),
            ])
            .send()
            .await?;
        Ok(response.status().as_u16())
    }
}
