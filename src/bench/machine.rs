//! The machine a benchmark runs on, and process CPU time from `/proc`.

use std::time::Duration;

use super::BenchError;

/// Clock ticks per second of `/proc/<pid>/stat` when `getconf CLK_TCK` cannot be run; 100 on
/// every mainstream Linux architecture.
const DEFAULT_CLOCK_TICKS: u64 = 100;

/// Hardware and kernel facts printed with the figures.
#[derive(Debug, Clone)]
pub struct Machine {
    /// Logical CPUs available to this process (what `nproc` prints).
    pub cpus: usize,
    pub cpu_model: String,
    pub memory: String,
    pub kernel: String,
    /// `/proc/loadavg` when the run started: other work on the machine skews every figure.
    pub load_average: String,
}

/// Reads the machine facts from `/proc`; a missing file yields "unknown".
pub fn describe() -> Machine {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
    Machine {
        cpus: std::thread::available_parallelism().map_or(0, std::num::NonZero::get),
        cpu_model: field(&cpuinfo, "model name").unwrap_or_else(|| "unknown".into()),
        memory: field(&meminfo, "MemTotal").map_or_else(|| "unknown".into(), format_memory),
        kernel: std::fs::read_to_string("/proc/sys/kernel/osrelease")
            .map_or_else(|_| "unknown".into(), |text| text.trim().to_owned()),
        load_average: std::fs::read_to_string("/proc/loadavg").map_or_else(
            |_| "unknown".into(),
            |text| {
                text.split_whitespace()
                    .take(3)
                    .collect::<Vec<_>>()
                    .join(" ")
            },
        ),
    }
}

fn field(text: &str, name: &str) -> Option<String> {
    text.lines()
        .filter_map(|line| line.split_once(':'))
        .find(|(key, _)| key.trim() == name)
        .map(|(_, value)| value.trim().to_owned())
}

/// Turns `/proc/meminfo`'s "24576000 kB" into "23.4 GiB".
fn format_memory(value: String) -> String {
    let kib = value
        .split_whitespace()
        .next()
        .and_then(|number| number.parse::<u32>().ok());
    match kib {
        Some(kib) => format!("{:.1} GiB", f64::from(kib) / 1024.0 / 1024.0),
        None => value,
    }
}

/// User plus system CPU time of a process, all threads included.
pub fn cpu_time(pid: u32) -> Result<Duration, BenchError> {
    read_cpu_time(&format!("/proc/{pid}/stat"))
}

/// User plus system CPU time of this process: the load generator and the demo IdP.
pub fn own_cpu_time() -> Result<Duration, BenchError> {
    read_cpu_time("/proc/self/stat")
}

/// Peak resident memory of a process (`VmHWM`), in bytes, or `None` when unreadable.
pub fn peak_resident_bytes(pid: u32) -> Option<u64> {
    status_bytes(pid, "VmHWM")
}

/// Resident memory of a process now (`VmRSS`), in bytes, or `None` when unreadable.
pub fn resident_bytes(pid: u32) -> Option<u64> {
    status_bytes(pid, "VmRSS")
}

/// Reads a `/proc/<pid>/status` field given in kB, such as `VmRSS:  1234 kB`, as bytes, or
/// `None` when unreadable.
pub fn status_bytes(pid: u32, name: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let kib = field(&status, name)?
        .split_whitespace()
        .next()?
        .parse::<u64>()
        .ok()?;
    Some(kib * 1024)
}

/// Bytes a process has caused to be written to storage (`write_bytes` of `/proc/<pid>/io`),
/// or `None` when unreadable.
pub fn written_bytes(pid: u32) -> Option<u64> {
    let io = std::fs::read_to_string(format!("/proc/{pid}/io")).ok()?;
    field(&io, "write_bytes")?.parse().ok()
}

/// Scheduler times of one thread, from `/proc/thread-self/schedstat`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ThreadTimes {
    /// Time on a CPU.
    pub on_cpu: Duration,
    /// Time runnable but waiting for a CPU, e.g. while other processes ran.
    pub waiting: Duration,
}

impl ThreadTimes {
    /// Returns the times spent between `earlier` and `self`.
    pub fn since(self, earlier: Self) -> Self {
        Self {
            on_cpu: self.on_cpu.saturating_sub(earlier.on_cpu),
            waiting: self.waiting.saturating_sub(earlier.waiting),
        }
    }
}

/// Reads the scheduler times of the calling thread, or `None` where the kernel does not
/// provide `/proc/thread-self/schedstat`.
pub fn thread_times() -> Option<ThreadTimes> {
    let text = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
    parse_schedstat(&text)
}

/// Parses `schedstat`: nanoseconds on a CPU, nanoseconds waiting, then a count of time slices.
fn parse_schedstat(text: &str) -> Option<ThreadTimes> {
    let mut fields = text.split_whitespace();
    let on_cpu = fields.next()?.parse().ok()?;
    let waiting = fields.next()?.parse().ok()?;
    Some(ThreadTimes {
        on_cpu: Duration::from_nanos(on_cpu),
        waiting: Duration::from_nanos(waiting),
    })
}

fn read_cpu_time(path: &str) -> Result<Duration, BenchError> {
    let text = std::fs::read_to_string(path).map_err(BenchError::io(format!("read {path}")))?;
    // The command name in field 2 may contain spaces, so fields are counted after its ')'.
    // utime and stime are fields 14 and 15, i.e. the 12th and 13th after the name.
    let after_name = text.rsplit_once(')').map_or("", |(_, rest)| rest);
    let mut fields = after_name.split_whitespace().skip(11);
    let mut next_ticks = || fields.next().and_then(|value| value.parse::<u64>().ok());
    let (Some(user), Some(system)) = (next_ticks(), next_ticks()) else {
        return Err(BenchError::Server(format!(
            "{path} has no utime and stime fields"
        )));
    };
    let ticks = user + system;
    let per_second = clock_ticks();
    Ok(Duration::from_secs(ticks / per_second)
        + Duration::from_nanos((ticks % per_second) * 1_000_000_000 / per_second))
}

fn clock_ticks() -> u64 {
    static TICKS: std::sync::OnceLock<u64> = std::sync::OnceLock::new();
    *TICKS.get_or_init(|| {
        std::process::Command::new("getconf")
            .arg("CLK_TCK")
            .output()
            .ok()
            .and_then(|output| String::from_utf8(output.stdout).ok())
            .and_then(|text| text.trim().parse().ok())
            .filter(|ticks| *ticks > 0)
            .unwrap_or(DEFAULT_CLOCK_TICKS)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn own_cpu_time_reads_proc() {
        assert!(own_cpu_time().is_ok());
    }

    #[test]
    fn peak_resident_bytes_reads_own_status() {
        assert!(peak_resident_bytes(std::process::id()).is_some_and(|bytes| bytes > 0));
    }

    #[test]
    fn resident_bytes_reads_own_status() {
        assert!(resident_bytes(std::process::id()).is_some_and(|bytes| bytes > 0));
    }

    #[test]
    fn parse_schedstat_reads_nanoseconds() {
        let times = parse_schedstat("1500000 250000 12\n");
        assert_eq!(
            times.map(|times| times.on_cpu),
            Some(Duration::from_micros(1500))
        );
        assert_eq!(
            times.map(|times| times.waiting),
            Some(Duration::from_micros(250))
        );
        assert_eq!(parse_schedstat("garbage"), None);
    }

    #[test]
    fn written_bytes_reads_own_io() {
        assert!(written_bytes(std::process::id()).is_some());
    }

    #[test]
    fn memory_formats_in_gib() {
        assert_eq!(format_memory("2097152 kB".into()), "2.0 GiB");
    }

    #[test]
    fn field_finds_first_match() {
        let text = "processor\t: 0\nmodel name\t: Example CPU\nmodel name\t: Other\n";
        assert_eq!(field(text, "model name").as_deref(), Some("Example CPU"));
    }
}
