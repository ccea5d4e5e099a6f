//! A real xaa server for integration tests: a SQLite file in a temporary directory, both
//! listeners on 127.0.0.1 port 0, and the same `Core` the binary uses.

use std::path::{Path, PathBuf};

use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use xaa::config::Config;
use xaa::core::Core;
use xaa::server::{self, AppState};

/// Admin token every test server uses.
pub const ADMIN_TOKEN: &str = "test-admin-token-0123456789";

/// A running server. Dropping it stops the listeners; call [`TestServer::stop`] to also close
/// the store before reopening the same directory.
pub struct TestServer {
    pub core: Core,
    pub public_url: String,
    pub admin_url: String,
    pub dir: PathBuf,
    pub http: reqwest::Client,
    stop: Option<oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<()>>,
}

/// A test configuration rooted at `dir`, with the public URL filled in by [`TestServer`].
pub fn test_config(dir: &Path) -> Config {
    let mut config = Config::default();
    config.database.url = format!("sqlite://{}", dir.join("xaa.db").display());
    dir.clone_into(&mut config.server.data_dir);
    config.server.log_dir = dir.join("logs");
    config
}

impl TestServer {
    /// Starts a server on a fresh temporary directory (kept until the test process ends).
    pub async fn start() -> Self {
        let dir = tempfile::tempdir().expect("temp dir").keep();
        Self::start_in(&dir, |_| {}).await
    }

    /// Starts a server on `dir`, letting the test adjust the configuration first.
    pub async fn start_in(dir: &Path, adjust: impl FnOnce(&mut Config)) -> Self {
        let public = TcpListener::bind("127.0.0.1:0").await.expect("bind public");
        let admin = TcpListener::bind("127.0.0.1:0").await.expect("bind admin");
        let public_url = format!("http://{}", public.local_addr().expect("addr"));
        let admin_url = format!("http://{}", admin.local_addr().expect("addr"));

        let mut config = test_config(dir);
        config.server.public_url = public_url.clone();
        adjust(&mut config);
        let core = Core::open(config).await.expect("core opens");
        let state = AppState {
            core: core.clone(),
            admin_token: ADMIN_TOKEN.into(),
        };
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            let shutdown = async move {
                let _ = stopped.await;
            };
            server::serve(state, public, admin, shutdown)
                .await
                .expect("server runs");
        });
        Self {
            core,
            public_url,
            admin_url,
            dir: dir.to_owned(),
            http: reqwest::Client::new(),
            stop: Some(stop),
            task: Some(task),
        }
    }

    /// Stops the listeners and closes the store.
    pub async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
        self.core.shutdown().await;
    }

    /// The issuer identifier of a proxy.
    pub fn issuer(&self, proxy_id: i64) -> String {
        format!("{}/proxies/{proxy_id}", self.public_url)
    }

    /// The token endpoint of a proxy.
    pub fn token_endpoint(&self, proxy_id: i64) -> String {
        format!("{}/oauth2/token", self.issuer(proxy_id))
    }

    /// Sends an authenticated admin request with an optional JSON body.
    pub async fn admin(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> reqwest::Response {
        let mut request = self
            .http
            .request(method, format!("{}{path}", self.admin_url))
            .bearer_auth(ADMIN_TOKEN);
        if let Some(body) = body {
            request = request.json(&body);
        }
        request.send().await.expect("admin request")
    }

    /// Creates a provider for `issuer` and returns its id.
    pub async fn add_provider(&self, issuer: &str, extra: Value) -> i64 {
        let mut body = json!({ "name": format!("IdP {issuer}"), "kind": "oidc", "issuer": issuer });
        if let (Some(target), Some(extra)) = (body.as_object_mut(), extra.as_object()) {
            target.extend(extra.clone());
        }
        let response = self
            .admin(reqwest::Method::POST, "/api/v1/providers", Some(body))
            .await;
        assert_eq!(response.status(), 201, "provider created");
        response.json::<Value>().await.expect("json")["id"]
            .as_i64()
            .expect("id")
    }

    /// Creates a proxy and returns its id.
    pub async fn add_proxy(&self, name: &str, extra: Value) -> i64 {
        let mut body = json!({ "name": name, "kind": "llm" });
        if let (Some(target), Some(extra)) = (body.as_object_mut(), extra.as_object()) {
            target.extend(extra.clone());
        }
        let response = self
            .admin(reqwest::Method::POST, "/api/v1/proxies", Some(body))
            .await;
        assert_eq!(response.status(), 201, "proxy created");
        response.json::<Value>().await.expect("json")["id"]
            .as_i64()
            .expect("id")
    }

    /// Creates a mapping and returns the response body (with `client_secret` when new).
    pub async fn add_mapping(
        &self,
        proxy_id: i64,
        provider_id: i64,
        client_at_idp: &str,
        client_at_as: &str,
        scopes: &[&str],
    ) -> Value {
        let body = json!({
            "idp_provider_id": provider_id,
            "client_id_at_idp": client_at_idp,
            "client_id_at_resource_as": client_at_as,
            "allowed_scopes": scopes,
        });
        let path = format!("/api/v1/proxies/{proxy_id}/xaa/client-mappings");
        let response = self.admin(reqwest::Method::POST, &path, Some(body)).await;
        assert_eq!(response.status(), 201, "mapping created");
        response.json().await.expect("json")
    }

    /// Presents an assertion at a proxy's token endpoint with Basic client authentication.
    pub async fn redeem(
        &self,
        proxy_id: i64,
        client_id: &str,
        secret: &str,
        assertion: &str,
        extra: &[(&str, &str)],
    ) -> reqwest::Response {
        let mut form: Vec<(&str, &str)> = vec![
            ("grant_type", "urn:ietf:params:oauth:grant-type:jwt-bearer"),
            ("assertion", assertion),
        ];
        form.extend_from_slice(extra);
        let body = serde_urlencoded::to_string(&form).expect("form");
        self.http
            .post(self.token_endpoint(proxy_id))
            .basic_auth(form_encode(client_id), Some(form_encode(secret)))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body)
            .send()
            .await
            .expect("token request")
    }
}

/// Form-urlencodes one value, as RFC 6749 §2.3.1 requires for Basic credentials.
pub fn form_encode(value: &str) -> String {
    url::form_urlencoded::byte_serialize(value.as_bytes()).collect()
}
