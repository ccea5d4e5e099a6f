//! Helpers shared by the integration tests. Each test binary uses only some of them.
#![allow(dead_code)]
// "IdP" and "OpenID" are terms of the field, not code identifiers that need backticks.
#![allow(clippy::doc_markdown)]

pub mod cases;
pub mod idp;
pub mod server;
