//! xaa: the Cross App Access side of an MCP/LLM gateway.
//!
//! - [`core`] owns the store, the JWKS cache, the exchange pipeline, revocation, statistics and
//!   the audit log. It never imports axum, ratatui or crossterm.
//! - [`server`] exposes the core over HTTP: the per-proxy OAuth endpoints and the admin API.
//! - [`config`] loads the layered configuration.
//! - [`tui`] is the terminal dashboard; it calls `core` like the server does.
//! - [`bench`] is `xaa bench`, the load and scale benchmark of a child `xaa serve`.
//!
//! `server` (and the dashboard) call `core`; `core` calls neither.

pub mod bench;
pub mod cli;
pub mod config;
pub mod core;
pub mod demo;
pub mod run;
pub mod server;
pub mod tui;
