//! The audit log file: every audit event, one JSON object per line, in `<log_dir>/audit.jsonl`.
//!
//! The store contains the queryable copy; this file is what log shippers and SIEMs tail. Writes go
//! through a non-blocking appender so the exchange never waits on file I/O.

use std::io::Write;
use std::path::Path;

use chrono::Utc;
use parking_lot::Mutex;
use serde::Serialize;
use serde_json::{Map, Value};
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
    /// server; the store still contains every event.
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
        let line = AuditLine {
            actor: &event.actor,
            at: Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
            event_type: event.event_type.as_str(),
            fields: &event.fields,
            idp_provider_id: event.idp_provider_id,
            proxy_id: event.proxy_id,
            reason_code: event.reason_code.as_deref(),
        };
        let mut text = match serde_json::to_vec(&line) {
            Ok(text) => text,
            Err(error) => {
                tracing::error!(%error, "encoding an audit.jsonl line failed");
                return;
            }
        };
        text.push(b'\n');
        if let Err(error) = self.writer.lock().write_all(&text) {
            tracing::error!(%error, "writing audit.jsonl failed");
        }
    }
}

/// One line of `audit.jsonl`, borrowing from the event so the fields are not copied. Members are
/// in alphabetical order, as in earlier versions of the file.
#[derive(Serialize)]
struct AuditLine<'a> {
    actor: &'a str,
    at: String,
    event_type: &'static str,
    fields: &'a Map<String, Value>,
    idp_provider_id: Option<i64>,
    proxy_id: Option<i64>,
    reason_code: Option<&'a str>,
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::core::model::AuditEventType;

    #[test]
    fn write_appends_one_json_line() {
        let dir = tempfile::tempdir().unwrap();
        let file = AuditFile::open(dir.path()).unwrap();
        let mut fields = Map::new();
        fields.insert("jti".into(), "abc".into());
        file.write(&NewAuditEvent {
            event_type: AuditEventType::XaaTokenExchange,
            actor: "client:gateway".into(),
            proxy_id: Some(3),
            idp_provider_id: None,
            reason_code: None,
            fields,
        });
        // Dropping the file flushes the non-blocking writer.
        drop(file);

        let text = std::fs::read_to_string(dir.path().join("audit.jsonl")).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 1);
        let line: Value = serde_json::from_str(lines[0]).unwrap();
        assert_eq!(line["event_type"], "xaa_token_exchange");
        assert_eq!(line["actor"], "client:gateway");
        assert_eq!(line["proxy_id"], 3);
        assert_eq!(line["idp_provider_id"], Value::Null);
        assert_eq!(line["reason_code"], Value::Null);
        assert_eq!(line["fields"], json!({"jti": "abc"}));
        assert!(line["at"].as_str().unwrap().ends_with('Z'));
    }
}
