//! Command-line definitions and the scriptable verbs.
//!
//! Every verb opens the configured store through the same [`Core`] the server uses, so rules
//! and audit records are identical whichever way an operator acts. `--json` prints the admin
//! API's JSON shape.

use std::fmt::Write as _;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};
use color_eyre::eyre::{Result, WrapErr, bail};
use serde::Serialize;

use crate::core::Core;
use crate::core::model::{
    AuditEventType, AuditQuery, NewMapping, NewProvider, NewProxy, ProviderKind, ProviderPatch,
    ProxyKind, ProxyPatch, ReplayPolicy, TokenQuery,
};

/// xaa: Cross App Access (ID-JAG) token exchange for an MCP/LLM gateway.
#[derive(Debug, Parser)]
#[command(
    version,
    about,
    after_help = "Without a command, xaa opens the dashboard."
)]
pub struct Cli {
    /// Configuration file (default: ./config.toml when present).
    #[arg(long, global = true, env = "XAA_CONFIG")]
    pub config: Option<PathBuf>,

    /// Dashboard for wall screens: hide and refuse every action that changes the store.
    #[arg(long, global = true)]
    pub read_only: bool,

    #[command(subcommand)]
    pub command: Option<Command>,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the exchange server and the admin API until SIGINT or SIGTERM.
    Serve,
    /// Open the dashboard on a throwaway store with a demo IdP and generated traffic.
    Demo,
    /// Print the default configuration, or check a configuration file.
    Config {
        /// File to check instead of printing the defaults.
        #[arg(long)]
        check: Option<PathBuf>,
    },
    /// Manage identity providers.
    #[command(subcommand)]
    Providers(ProviderCommand),
    /// Manage proxies.
    #[command(subcommand)]
    Proxies(ProxyCommand),
    /// Manage client ID mappings of a proxy.
    #[command(subcommand)]
    Mappings(MappingCommand),
    /// Revoke ID-JAGs by JTI or by subject.
    #[command(subcommand)]
    Revoke(RevokeCommand),
    /// Show the statistics cards.
    Stats {
        /// Only this proxy.
        #[arg(long)]
        proxy: Option<i64>,
        #[command(flatten)]
        output: Output,
    },
    /// List recorded ID-JAGs, newest first.
    Tokens {
        #[arg(long)]
        proxy: Option<i64>,
        #[arg(long)]
        subject: Option<String>,
        /// active, revoked or expired.
        #[arg(long)]
        status: Option<String>,
        #[arg(long, default_value_t = 50)]
        limit: i64,
        #[command(flatten)]
        output: Output,
    },
    /// Show audit events, newest first.
    Audit {
        /// One of the xaa_* event types.
        #[arg(long)]
        event_type: Option<AuditEventType>,
        #[arg(long)]
        proxy: Option<i64>,
        #[arg(long, default_value_t = 50)]
        limit: i64,
        #[command(flatten)]
        output: Output,
    },
    /// Print the admin API token (generating it on first use).
    AdminToken,
    /// Run a demonstration IdP on loopback: discovery, JWKS, and `POST /mint` for ID-JAGs.
    DemoIdp {
        /// Loopback address to listen on.
        #[arg(long, default_value = "127.0.0.1:9000")]
        addr: std::net::SocketAddr,
    },
    /// Benchmark a child `xaa serve` on loopback and print a Markdown report.
    Bench(Box<crate::bench::BenchArgs>),
}

/// Output format shared by the verbs.
#[derive(Debug, Args)]
pub struct Output {
    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Subcommand)]
pub enum ProviderCommand {
    /// List providers.
    List(Output),
    /// Add a trusted IdP.
    Add {
        #[arg(long)]
        name: String,
        /// Issuer identifier, exactly as it appears in ID-JAG `iss`.
        #[arg(long)]
        issuer: String,
        #[arg(long, default_value = "oidc")]
        kind: ProviderKind,
        /// Key set URL; discovered from the issuer when omitted.
        #[arg(long)]
        jwks_uri: Option<String>,
        /// single-use or reuse-until-expiry.
        #[arg(long)]
        replay_policy: Option<ReplayPolicy>,
        #[command(flatten)]
        output: Output,
    },
    /// Enable a provider.
    Enable { id: i64 },
    /// Disable a provider: its ID-JAGs are rejected until it is enabled again.
    Disable { id: i64 },
    /// Fetch a provider's key set now.
    RefreshKeys { id: i64 },
    /// Delete a provider that no mapping uses.
    Delete { id: i64 },
}

#[derive(Debug, Subcommand)]
pub enum ProxyCommand {
    /// List proxies with their issuer identifiers.
    List(Output),
    /// Add a proxy.
    Add {
        #[arg(long)]
        name: String,
        #[arg(long, default_value = "mcp")]
        kind: ProxyKind,
        /// Protected resource URI; the access token's audience.
        #[arg(long)]
        resource: Option<String>,
        #[command(flatten)]
        output: Output,
    },
    /// Stop issuing tokens at a proxy (kill switch).
    DisableIssuance { id: i64 },
    /// Resume issuing tokens at a proxy.
    EnableIssuance { id: i64 },
    /// Delete a proxy with its mappings.
    Delete { id: i64 },
}

#[derive(Debug, Subcommand)]
pub enum MappingCommand {
    /// List the mappings of a proxy.
    List {
        #[arg(long)]
        proxy: i64,
        #[command(flatten)]
        output: Output,
    },
    /// Add a mapping; prints the client secret once when the client is new.
    Add {
        #[arg(long)]
        proxy: i64,
        #[arg(long)]
        provider: i64,
        #[arg(long)]
        client_id_at_idp: String,
        #[arg(long)]
        client_id_at_resource_as: String,
        /// Space-separated scopes, e.g. "openid profile mcp:tools".
        #[arg(long)]
        scopes: String,
        #[command(flatten)]
        output: Output,
    },
    /// Delete a mapping.
    Delete {
        #[arg(long)]
        proxy: i64,
        #[arg(long)]
        id: i64,
    },
    /// Replace a client's secret; prints the new one once.
    RotateSecret {
        #[arg(long)]
        proxy: i64,
        #[arg(long)]
        client_id: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum RevokeCommand {
    /// Revoke one ID-JAG (and its access tokens) or one access token by JTI.
    Token {
        jti: String,
        #[arg(long)]
        reason: Option<String>,
        #[arg(long)]
        revoked_by: Option<String>,
        #[command(flatten)]
        output: Output,
    },
    /// Revoke every token of a subject at a provider.
    Subject {
        #[arg(long)]
        provider: i64,
        subject: String,
        #[arg(long)]
        reason: Option<String>,
        #[arg(long)]
        revoked_by: Option<String>,
        #[command(flatten)]
        output: Output,
    },
}

/// The operator name recorded when `--revoked-by` is not given: `user@host`.
pub fn default_actor() -> String {
    let user = std::env::var("USER")
        .or_else(|_| std::env::var("LOGNAME"))
        .unwrap_or_else(|_| "unknown".into());
    let host = std::fs::read_to_string("/etc/hostname")
        .map_or_else(|_| "localhost".into(), |text| text.trim().to_owned());
    format!("{user}@{host}")
}

fn print<T: Serialize>(value: &T, json: bool, text: impl FnOnce(&T) -> String) -> Result<()> {
    let out = if json {
        serde_json::to_string_pretty(value)?
    } else {
        text(value)
    };
    #[expect(clippy::print_stdout, reason = "the CLI's output is its result")]
    {
        println!("{out}");
    }
    Ok(())
}

fn done(message: &str) -> Result<()> {
    print(&serde_json::json!({ "result": message }), false, |_| {
        message.to_owned()
    })
}

/// Runs one of the store verbs against an opened core.
pub async fn run_verb(core: &Core, command: Command) -> Result<()> {
    let actor = default_actor();
    match command {
        Command::Providers(command) => run_provider(core, command).await,
        Command::Proxies(command) => run_proxy(core, command).await,
        Command::Mappings(command) => run_mapping(core, command, &actor).await,
        Command::Revoke(command) => run_revoke(core, command, &actor).await,
        Command::Stats { proxy, output } => show_stats(core, proxy, &output).await,
        Command::Tokens {
            proxy,
            subject,
            status,
            limit,
            output,
        } => {
            let query = TokenQuery {
                proxy_id: proxy,
                subject,
                status,
                limit: Some(limit),
                ..TokenQuery::default()
            };
            show_tokens(core, query, &output).await
        }
        Command::Audit {
            event_type,
            proxy,
            limit,
            output,
        } => {
            let query = AuditQuery {
                event_type,
                proxy_id: proxy,
                limit: Some(limit),
                ..AuditQuery::default()
            };
            show_audit(core, query, &output).await
        }
        Command::Serve
        | Command::Config { .. }
        | Command::AdminToken
        | Command::DemoIdp { .. }
        | Command::Bench(_)
        | Command::Demo => {
            bail!("this command is not a store verb")
        }
    }
}

/// Makes stored text safe to print on a terminal: control characters (C0, DEL, C1) and
/// bidirectional overrides become `\u{..}` escapes; other characters pass unchanged.
pub fn printable(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        let bidi = matches!(c, '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}');
        if c.is_control() || bidi {
            let _ = write!(out, "\\u{{{:x}}}", u32::from(c));
        } else {
            out.push(c);
        }
    }
    out
}

async fn show_stats(core: &Core, proxy: Option<i64>, output: &Output) -> Result<()> {
    let stats = core.stats(proxy).await?;
    print(&stats, output.json, |s| {
        let t = &s.id_jag_tokens;
        let j = &s.jwks_cache;
        let m = &s.client_mappings;
        format!(
            "ID-JAG tokens   total {}  active {}  revoked {}  last {}\n\
             JWKS cache      providers {}  keys {}  last updated {}\n\
             Client mappings total {}  providers {}  last updated {}\n\
             Revocation generation {}",
            t.total,
            t.active,
            t.revoked,
            when(t.last_token_at),
            j.total_providers,
            j.total_keys,
            when(j.last_updated),
            m.total_mappings,
            m.providers,
            when(m.last_updated),
            s.revocation_generation
        )
    })
}

async fn show_tokens(core: &Core, query: TokenQuery, output: &Output) -> Result<()> {
    let tokens = core.list_tokens(&query).await?;
    print(&tokens, output.json, |list| {
        list.iter()
            .map(|t| {
                let state = if t.revocation.is_some() {
                    "revoked"
                } else if t.expires_at <= chrono::Utc::now() {
                    "expired"
                } else {
                    "active"
                };
                format!(
                    "{}  proxy {}  provider {}  sub {}  client {}  {}  seen {}x",
                    printable(&t.jti),
                    t.proxy_id,
                    t.idp_provider_id,
                    printable(&t.subject),
                    printable(&t.client_id_at_resource_as),
                    state,
                    t.presentation_count
                )
            })
            .collect::<Vec<_>>()
            .join("\n")
    })
}

async fn show_audit(core: &Core, query: AuditQuery, output: &Output) -> Result<()> {
    let events = core.query_audit(&query).await?;
    print(&events, output.json, |list| {
        list.iter()
            .map(|e| {
                format!(
                    "{} {} {} actor={} reason={} {}",
                    e.id,
                    e.at.format("%Y-%m-%d %H:%M:%S"),
                    e.event_type,
                    printable(&e.actor),
                    e.reason_code.as_deref().unwrap_or("-"),
                    printable(&serde_json::Value::Object(e.fields.clone()).to_string())
                )
            })
            .collect::<Vec<_>>()
            .join("\n")
    })
}

fn when(at: Option<chrono::DateTime<chrono::Utc>>) -> String {
    at.map_or_else(
        || "never".into(),
        |at| at.format("%Y-%m-%d %H:%M:%S UTC").to_string(),
    )
}

async fn run_provider(core: &Core, command: ProviderCommand) -> Result<()> {
    let patch = |enabled| ProviderPatch {
        enabled: Some(enabled),
        ..ProviderPatch::default()
    };
    match command {
        ProviderCommand::List(output) => {
            let providers = core.list_providers().await?;
            print(&providers, output.json, |list| {
                list.iter()
                    .map(|p| {
                        format!(
                            "{:>4}  {:<24} {:<5} {:<8} {}",
                            p.id,
                            p.name,
                            p.kind,
                            if p.enabled { "enabled" } else { "disabled" },
                            printable(&p.issuer)
                        )
                    })
                    .collect::<Vec<_>>()
                    .join("\n")
            })
        }
        ProviderCommand::Add {
            name,
            issuer,
            kind,
            jwks_uri,
            replay_policy,
            output,
        } => {
            let new = NewProvider {
                name,
                kind: Some(kind),
                issuer,
                jwks_uri,
                replay_policy,
                ..NewProvider::default()
            };
            let provider = core.create_provider(new).await?;
            print(&provider, output.json, |p| {
                format!("provider {} created for issuer {}", p.id, p.issuer)
            })
        }
        ProviderCommand::Enable { id } => {
            core.update_provider(id, patch(true)).await?;
            done(&format!("provider {id} enabled"))
        }
        ProviderCommand::Disable { id } => {
            core.update_provider(id, patch(false)).await?;
            done(&format!("provider {id} disabled"))
        }
        ProviderCommand::RefreshKeys { id } => {
            let count = core.refresh_provider_keys(id).await?;
            done(&format!("provider {id}: {count} usable key(s) fetched"))
        }
        ProviderCommand::Delete { id } => {
            core.delete_provider(id).await?;
            done(&format!("provider {id} deleted"))
        }
    }
}

async fn run_proxy(core: &Core, command: ProxyCommand) -> Result<()> {
    let issuance = |enabled| ProxyPatch {
        issuance_enabled: Some(enabled),
        ..ProxyPatch::default()
    };
    match command {
        ProxyCommand::List(output) => {
            let proxies = core.list_proxies().await?;
            print(&proxies, output.json, |list| {
                list.iter()
                    .map(|p| {
                        format!(
                            "{:>4}  {:<24} {:<4} issuer {}{}",
                            p.id,
                            p.name,
                            p.kind,
                            core.config().proxy_issuer(p.id),
                            if p.issuance_enabled {
                                ""
                            } else {
                                "  (issuance off)"
                            }
                        )
                    })
                    .collect::<Vec<_>>()
                    .join("\n")
            })
        }
        ProxyCommand::Add {
            name,
            kind,
            resource,
            output,
        } => {
            let proxy = core
                .create_proxy(NewProxy {
                    name,
                    kind,
                    resource,
                    require_resource: None,
                })
                .await?;
            let issuer = core.config().proxy_issuer(proxy.id);
            print(&proxy, output.json, |p| {
                format!("proxy {} created; issuer {issuer}", p.id)
            })
        }
        ProxyCommand::DisableIssuance { id } => {
            core.update_proxy(id, issuance(false)).await?;
            done(&format!("proxy {id}: issuance disabled"))
        }
        ProxyCommand::EnableIssuance { id } => {
            core.update_proxy(id, issuance(true)).await?;
            done(&format!("proxy {id}: issuance enabled"))
        }
        ProxyCommand::Delete { id } => {
            core.delete_proxy(id, &default_actor()).await?;
            done(&format!("proxy {id} deleted"))
        }
    }
}

async fn run_mapping(core: &Core, command: MappingCommand, actor: &str) -> Result<()> {
    match command {
        MappingCommand::List { proxy, output } => {
            let mappings = core.list_mappings(proxy).await?;
            print(&mappings, output.json, |list| {
                list.iter()
                    .map(|m| {
                        format!(
                            "{:>4}  {:<20} {:<24} -> {:<24} {}  {}",
                            m.id,
                            printable(&m.idp_provider_name),
                            printable(&m.client_id_at_idp),
                            printable(&m.client_id_at_resource_as),
                            m.allowed_scopes.join(", "),
                            m.created_at.format("%Y-%m-%d %H:%M")
                        )
                    })
                    .collect::<Vec<_>>()
                    .join("\n")
            })
        }
        MappingCommand::Add {
            proxy,
            provider,
            client_id_at_idp,
            client_id_at_resource_as,
            scopes,
            output,
        } => {
            let new = NewMapping {
                idp_provider_id: provider,
                client_id_at_idp,
                client_id_at_resource_as,
                allowed_scopes: scopes.split_whitespace().map(str::to_owned).collect(),
            };
            let created = core.create_mapping(proxy, new, actor).await?;
            print(&created, output.json, |c| match &c.client_secret {
                Some(secret) => format!(
                    "mapping {} created\nclient {} secret (shown once): {secret}",
                    c.mapping.id, c.mapping.client_id_at_resource_as
                ),
                None => format!(
                    "mapping {} created (client already had a secret)",
                    c.mapping.id
                ),
            })
        }
        MappingCommand::Delete { proxy, id } => {
            core.delete_mapping(proxy, id, actor).await?;
            done(&format!("mapping {id} deleted from proxy {proxy}"))
        }
        MappingCommand::RotateSecret { proxy, client_id } => {
            let secret = core.rotate_client_secret(proxy, &client_id).await?;
            done(&format!(
                "client {client_id} new secret (shown once): {secret}"
            ))
        }
    }
}

async fn run_revoke(core: &Core, command: RevokeCommand, actor: &str) -> Result<()> {
    match command {
        RevokeCommand::Token {
            jti,
            reason,
            revoked_by,
            output,
        } => {
            let result = core
                .revoke_token(
                    &jti,
                    reason,
                    Some(revoked_by.unwrap_or_else(|| actor.to_owned())),
                )
                .await
                .wrap_err("revocation failed")?;
            print(&result, output.json, |r| r.message.clone())
        }
        RevokeCommand::Subject {
            provider,
            subject,
            reason,
            revoked_by,
            output,
        } => {
            let result = core
                .revoke_subject(
                    provider,
                    &subject,
                    reason,
                    Some(revoked_by.unwrap_or_else(|| actor.to_owned())),
                )
                .await
                .wrap_err("revocation failed")?;
            print(&result, output.json, |r| r.message.clone())
        }
    }
}
