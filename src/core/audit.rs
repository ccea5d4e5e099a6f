//! The audit log file: every audit event, one JSON object per line, in `<log_dir>/audit.jsonl`.
//!
//! The store holds the queryable copy; this file is what log shippers and SIEMs tail. Writes go
//! through a non-blocking appender so the exchange never waits on file I/O.

use std::io::Write;
use std::path::Path;

use chrono::Utc;
use parking_lot::Mutex;
use serde_json::json;
use tracing_appender::non_blocking::{NonBlocking, WorkerGuard};

use crate::core::model::NewAuditEvent;

/// The open audit log file.
pub struct AuditFile {
    writer: Mutex<NonBlocking>,
    _guard: WorkerGuard,
}

impl AuditFile {
    /// Opens `<log_dir>/audit.jsonl` for appending, creating the directory. Returns `None` (and
    /// logs why) when the directory cannot be created, so a read-only disk does not stop the
    /// server; the store still holds every event.
    pub fn open(log_dir: &Path) -> Option<Self> {
        if let Err(error) = std::fs::create_dir_all(log_dir) {
            tracing::error!(%error, dir = %log_dir.display(), "cannot create the log directory; audit.jsonl is off");
            return None;
        }
        let appender = tracing_appender::rolling::never(log_dir, "audit.jsonl");
        let (writer, guard) = tracing_appender::non_blocking::NonBlockingBuilder::default()
            .lossy(false)
            .finish(appender);
        Some(Self {
            writer: Mutex::new(writer),
            _guard: guard,
        })
    }

    /// Appends one event as a JSON line.
    pub fn write(&self, event: &NewAuditEvent) {
        let line = json!({
            "at": Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
            "event_type": event.event_type,
            "actor": event.actor,
            "proxy_id": event.proxy_id,
            "idp_provider_id": event.idp_provider_id,
            "reason_code": event.reason_code,
            "fields": event.fields,
        });
        let mut text = line.to_string();
        text.push('\n');
        if let Err(error) = self.writer.lock().write_all(text.as_bytes()) {
            tracing::error!(%error, "writing audit.jsonl failed");
        }
    }
}
