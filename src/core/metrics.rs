//! Process-local counters for `/metrics` (Prometheus text format) and the dashboard.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};

use parking_lot::Mutex;

/// Exchange counters of this process since it started.
#[derive(Debug, Default)]
pub struct Metrics {
    exchanges_succeeded: AtomicU64,
    exchanges_failed: AtomicU64,
    failures_by_reason: Mutex<BTreeMap<&'static str, u64>>,
}

impl Metrics {
    /// Counts an issued access token.
    pub fn record_exchange_success(&self) {
        self.exchanges_succeeded.fetch_add(1, Ordering::Relaxed);
    }

    /// Counts a rejected exchange under its reason code.
    pub fn record_exchange_failure(&self, reason: &'static str) {
        self.exchanges_failed.fetch_add(1, Ordering::Relaxed);
        *self.failures_by_reason.lock().entry(reason).or_default() += 1;
    }

    /// Successful and failed exchanges so far.
    pub fn exchange_totals(&self) -> (u64, u64) {
        (
            self.exchanges_succeeded.load(Ordering::Relaxed),
            self.exchanges_failed.load(Ordering::Relaxed),
        )
    }

    /// Renders the counters in the Prometheus text exposition format.
    pub fn render_prometheus(&self, extra: &[(&str, &str, i64)]) -> String {
        let (succeeded, failed) = self.exchange_totals();
        let mut out = String::new();
        let _ = writeln!(
            out,
            "# HELP xaa_exchanges_total ID-JAG exchanges by outcome."
        );
        let _ = writeln!(out, "# TYPE xaa_exchanges_total counter");
        let _ = writeln!(
            out,
            "xaa_exchanges_total{{outcome=\"success\"}} {succeeded}"
        );
        let _ = writeln!(out, "xaa_exchanges_total{{outcome=\"failure\"}} {failed}");
        let _ = writeln!(
            out,
            "# HELP xaa_exchange_failures_total Rejected exchanges by reason."
        );
        let _ = writeln!(out, "# TYPE xaa_exchange_failures_total counter");
        for (reason, count) in self.failures_by_reason.lock().iter() {
            let _ = writeln!(
                out,
                "xaa_exchange_failures_total{{reason=\"{reason}\"}} {count}"
            );
        }
        for (name, help, value) in extra {
            let _ = writeln!(out, "# HELP {name} {help}");
            let _ = writeln!(out, "# TYPE {name} gauge");
            let _ = writeln!(out, "{name} {value}");
        }
        out
    }
}
