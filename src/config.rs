//! Layered configuration: built-in defaults, then the TOML file, then `XAA_` environment
//! variables (`__` separates the table from the key, e.g. `XAA_DATABASE__URL`). Later layers
//! win. Command-line flags are applied by the binary after loading.

use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use figment::Figment;
use figment::providers::{Env, Format, Serialized, Toml};
use serde::{Deserialize, Serialize};

use crate::core::jwks::JwksSettings;

/// The default configuration file, with a comment on every setting.
pub const DEFAULT_CONFIG_TOML: &str = include_str!("../config.toml");

/// Everything xaa reads from its configuration.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    pub database: DatabaseSettings,
    pub server: ServerSettings,
    pub exchange: ExchangeSettings,
    pub providers: ProviderDefaults,
    pub jwks: JwksSettings,
    pub tui: TuiSettings,
}

/// The `[database]` table.
#[derive(Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DatabaseSettings {
    /// `sqlite://path` (the embedded default) or `postgres://user:password@host/db`.
    pub url: String,
}

impl Default for DatabaseSettings {
    fn default() -> Self {
        Self {
            url: "sqlite://data/xaa.db".into(),
        }
    }
}

impl fmt::Debug for DatabaseSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DatabaseSettings")
            .field("url", &redact_url(&self.url))
            .finish()
    }
}

/// Hides the password of a database URL for logs and `Debug` output.
pub fn redact_url(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut parsed) if parsed.password().is_some() => {
            let _ = parsed.set_password(Some("REDACTED"));
            parsed.to_string()
        }
        _ => url.to_owned(),
    }
}

/// The `[server]` table.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ServerSettings {
    /// Listener for the per-proxy OAuth endpoints.
    pub public_addr: SocketAddr,
    /// Listener for the admin API and metrics.
    pub admin_addr: SocketAddr,
    /// External base URL of the public listener; each proxy's issuer is
    /// `{public_url}/proxies/{id}`.
    pub public_url: String,
    /// Directory for the generated admin token (and the SQLite file by default).
    pub data_dir: PathBuf,
    /// Directory for `xaa.log` and `audit.jsonl`.
    pub log_dir: PathBuf,
    /// Requests running longer than this get a 408 response, in seconds.
    pub request_timeout_secs: u64,
    /// Connections that send no complete request headers for this long are closed, in seconds
    /// (slow clients, idle keep-alive connections).
    pub header_read_timeout_secs: u64,
    /// Largest accepted request body, in bytes.
    pub body_max_bytes: usize,
}

impl Default for ServerSettings {
    fn default() -> Self {
        Self {
            public_addr: SocketAddr::from(([127, 0, 0, 1], 8080)),
            admin_addr: SocketAddr::from(([127, 0, 0, 1], 8081)),
            public_url: "http://127.0.0.1:8080".into(),
            data_dir: PathBuf::from("data"),
            log_dir: PathBuf::from("logs"),
            request_timeout_secs: 10,
            header_read_timeout_secs: 10,
            body_max_bytes: 64 * 1024,
        }
    }
}

/// The `[exchange]` table: limits of the token endpoint.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ExchangeSettings {
    /// Lifetime of issued access tokens, in seconds.
    pub access_token_lifetime_secs: i64,
    /// Never let an access token outlive the ID-JAG it came from.
    pub cap_access_token_at_id_jag_exp: bool,
    /// Longest accepted assertion, in bytes; checked before decoding.
    pub assertion_max_bytes: usize,
    /// Most scopes accepted in one ID-JAG or request.
    pub max_scopes: usize,
    /// Longest accepted `jti`, `kid`, `sub` and `client_id`, in bytes.
    pub max_claim_bytes: usize,
    /// Algorithm of the gateway's own access-token signing key: `ES256` or `RS256`.
    pub signing_alg: String,
}

impl Default for ExchangeSettings {
    fn default() -> Self {
        Self {
            access_token_lifetime_secs: 900,
            cap_access_token_at_id_jag_exp: false,
            assertion_max_bytes: 16 * 1024,
            max_scopes: 64,
            max_claim_bytes: 256,
            signing_alg: "ES256".into(),
        }
    }
}

/// The `[providers]` table: defaults for providers created without these fields.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ProviderDefaults {
    pub allowed_algs: Vec<String>,
    /// Clock leeway for `exp`, `iat` and `nbf`, in seconds (0 to 300).
    pub leeway_secs: i64,
    /// Longest accepted ID-JAG lifetime (`exp - iat`), in seconds (at most 3600).
    pub max_lifetime_secs: i64,
    /// `single-use` or `reuse-until-expiry`.
    pub replay_policy: crate::core::model::ReplayPolicy,
}

impl Default for ProviderDefaults {
    fn default() -> Self {
        Self {
            allowed_algs: vec!["RS256".into(), "PS256".into(), "ES256".into()],
            leeway_secs: 60,
            max_lifetime_secs: 600,
            replay_policy: crate::core::model::ReplayPolicy::SingleUse,
        }
    }
}

/// The `[tui]` table.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TuiSettings {
    /// Statistics refresh period of the dashboard, in seconds.
    pub refresh_secs: u64,
}

impl Default for TuiSettings {
    fn default() -> Self {
        Self { refresh_secs: 30 }
    }
}

/// A configuration that cannot be used, with what to change.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("configuration file {path} not found; create it (see `xaa config`) or fix --config")]
    Missing { path: PathBuf },
    #[error("invalid configuration: {0}")]
    Parse(Box<figment::Error>),
    #[error("invalid configuration: {key} = {value}: {problem}")]
    Invalid {
        key: &'static str,
        value: String,
        problem: String,
    },
}

impl Config {
    /// Loads the configuration. `path` is the explicit file (which must exist); without it,
    /// `config.toml` in the working directory is read when present.
    pub fn load(path: Option<&Path>) -> Result<Self, ConfigError> {
        let file = match path {
            Some(path) if !path.exists() => {
                return Err(ConfigError::Missing {
                    path: path.to_owned(),
                });
            }
            Some(path) => Some(path.to_owned()),
            None => Some(PathBuf::from("config.toml")).filter(|default| default.exists()),
        };
        let mut figment = Figment::from(Serialized::defaults(Self::default()));
        if let Some(file) = file {
            figment = figment.merge(Toml::file(file));
        }
        // Every setting lives in a table, so only variables with `__` are settings; this keeps
        // XAA_ADMIN_TOKEN, XAA_CONFIG and XAA_LOG out of the parse.
        figment = figment.merge(
            Env::prefixed("XAA_")
                .filter(|key| key.as_str().contains("__"))
                .split("__"),
        );
        let config: Self = figment
            .extract()
            .map_err(|e| ConfigError::Parse(Box::new(e)))?;
        config.validate()?;
        Ok(config)
    }

    /// Parses one TOML document on top of the defaults, without the environment.
    pub fn from_toml(text: &str) -> Result<Self, ConfigError> {
        let config: Self = Figment::from(Serialized::defaults(Self::default()))
            .merge(Toml::string(text))
            .extract()
            .map_err(|e| ConfigError::Parse(Box::new(e)))?;
        config.validate()?;
        Ok(config)
    }

    /// Checks ranges and formats that serde cannot express.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let url = &self.database.url;
        if !(url.starts_with("sqlite:")
            || url.starts_with("postgres://")
            || url.starts_with("postgresql://"))
        {
            return Err(invalid(
                "database.url",
                redact_url(url),
                "use sqlite://PATH or postgres://USER@HOST/DB",
            ));
        }
        validate_public_url(&self.server.public_url)?;
        let exchange = &self.exchange;
        if !(60..=86_400).contains(&exchange.access_token_lifetime_secs) {
            return Err(invalid(
                "exchange.access_token_lifetime_secs",
                exchange.access_token_lifetime_secs,
                "must be between 60 and 86400 seconds",
            ));
        }
        if !matches!(exchange.signing_alg.as_str(), "ES256" | "RS256") {
            return Err(invalid(
                "exchange.signing_alg",
                &exchange.signing_alg,
                "use ES256 or RS256",
            ));
        }
        if !(0..=300).contains(&self.providers.leeway_secs) {
            return Err(invalid(
                "providers.leeway_secs",
                self.providers.leeway_secs,
                "must be between 0 and 300 seconds",
            ));
        }
        if !(1..=3600).contains(&self.providers.max_lifetime_secs) {
            return Err(invalid(
                "providers.max_lifetime_secs",
                self.providers.max_lifetime_secs,
                "must be between 1 and 3600 seconds",
            ));
        }
        if self.server.header_read_timeout_secs == 0 || self.server.request_timeout_secs == 0 {
            return Err(invalid(
                "server.header_read_timeout_secs / server.request_timeout_secs",
                0,
                "must be at least 1 second",
            ));
        }
        if self.tui.refresh_secs == 0 {
            return Err(invalid("tui.refresh_secs", 0, "must be at least 1 second"));
        }
        Ok(())
    }

    /// The issuer identifier of a proxy's authorization server.
    pub fn proxy_issuer(&self, proxy_id: i64) -> String {
        format!(
            "{}/proxies/{proxy_id}",
            self.server.public_url.trim_end_matches('/')
        )
    }
}

fn validate_public_url(value: &str) -> Result<(), ConfigError> {
    let parsed = url::Url::parse(value)
        .map_err(|error| invalid("server.public_url", value, &format!("not a URL: {error}")))?;
    if !matches!(parsed.scheme(), "http" | "https") || parsed.host().is_none() {
        return Err(invalid(
            "server.public_url",
            value,
            "use http(s)://HOST[:PORT][/PATH]",
        ));
    }
    if parsed.query().is_some() || parsed.fragment().is_some() {
        return Err(invalid(
            "server.public_url",
            value,
            "remove the query and fragment",
        ));
    }
    Ok(())
}

fn invalid(key: &'static str, value: impl fmt::Display, problem: &str) -> ConfigError {
    ConfigError::Invalid {
        key,
        value: format!("'{value}'"),
        problem: problem.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shipped_config_matches_defaults() {
        let shipped = Config::from_toml(DEFAULT_CONFIG_TOML).expect("config.toml parses");
        let defaults = Config::default();
        assert_eq!(
            serde_json::to_value(&shipped).unwrap(),
            serde_json::to_value(&defaults).unwrap(),
            "config.toml must state the built-in defaults"
        );
    }

    #[test]
    fn unknown_keys_are_rejected() {
        let error = Config::from_toml("[server]\npublic_adr = \"127.0.0.1:1\"\n").unwrap_err();
        assert!(error.to_string().contains("public_adr"), "{error}");
        let error = Config::from_toml("[nonsense]\nx = 1\n").unwrap_err();
        assert!(error.to_string().contains("nonsense"), "{error}");
    }

    #[test]
    fn invalid_values_name_the_key_and_fix() {
        let cases = [
            ("[database]\nurl = \"mysql://x\"\n", "database.url"),
            (
                "[server]\npublic_url = \"not a url\"\n",
                "server.public_url",
            ),
            (
                "[server]\npublic_url = \"ftp://host\"\n",
                "server.public_url",
            ),
            (
                "[exchange]\naccess_token_lifetime_secs = 5\n",
                "exchange.access_token_lifetime_secs",
            ),
            (
                "[exchange]\nsigning_alg = \"HS256\"\n",
                "exchange.signing_alg",
            ),
            ("[providers]\nleeway_secs = 301\n", "providers.leeway_secs"),
            ("[tui]\nrefresh_secs = 0\n", "tui.refresh_secs"),
        ];
        for (text, key) in cases {
            let error = Config::from_toml(text).unwrap_err().to_string();
            assert!(error.contains(key), "{text:?} gave {error}");
        }
    }

    #[test]
    fn database_password_is_redacted() {
        let settings = DatabaseSettings {
            url: "postgres://xaa:hunter2@db/xaa".into(),
        };
        let shown = format!("{settings:?}");
        assert!(!shown.contains("hunter2"), "{shown}");
        assert!(shown.contains("REDACTED"), "{shown}");
    }

    #[test]
    fn proxy_issuer_joins_without_double_slash() {
        let mut config = Config::default();
        config.server.public_url = "https://gw.example/".into();
        assert_eq!(config.proxy_issuer(7), "https://gw.example/proxies/7");
    }
}
