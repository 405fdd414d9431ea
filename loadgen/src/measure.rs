//! What the tool measures with: latency histograms, CPU time from `/proc`, resident memory and
//! bytes on disk.

use hdrhistogram::Histogram;
use serde::Serialize;
use std::path::Path;
use std::time::Duration;

/// Latencies of one operation, in microseconds (1 µs .. 10 min, 3 significant digits).
pub(crate) struct Latencies {
    hist: Histogram<u64>,
    errors: u64,
    first_error: Option<String>,
}

impl std::fmt::Debug for Latencies {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Latencies")
            .field("count", &self.hist.len())
            .field("errors", &self.errors)
            .finish()
    }
}

impl Default for Latencies {
    fn default() -> Self {
        Self::new()
    }
}

impl Latencies {
    pub(crate) fn new() -> Self {
        // 1 µs to 600 s with 3 significant figures: the bounds are constants, valid by
        // construction; `new_with_bounds` only fails for low < 1 or high < 2·low.
        let hist = Histogram::new_with_bounds(1, 600_000_000, 3)
            .unwrap_or_else(|_| unreachable!("constant histogram bounds are valid"));
        Self {
            hist,
            errors: 0,
            first_error: None,
        }
    }

    pub(crate) fn record(&mut self, d: Duration) {
        let us = u64::try_from(d.as_micros()).unwrap_or(u64::MAX).max(1);
        self.hist.saturating_record(us);
    }

    pub(crate) fn error(&mut self, e: impl std::fmt::Display) {
        self.errors += 1;
        if self.first_error.is_none() {
            self.first_error = Some(e.to_string());
        }
    }

    pub(crate) fn merge(&mut self, other: &Latencies) {
        // Same bounds on both sides: `add` cannot fail.
        let _ = self.hist.add(&other.hist);
        self.errors += other.errors;
        if self.first_error.is_none() {
            self.first_error.clone_from(&other.first_error);
        }
    }

    pub(crate) fn count(&self) -> u64 {
        self.hist.len()
    }

    /// Percentile in milliseconds.
    pub(crate) fn p_ms(&self, q: f64) -> f64 {
        if self.hist.is_empty() {
            return 0.0;
        }
        self.hist.value_at_quantile(q) as f64 / 1000.0
    }

    pub(crate) fn summary(&self, op: &str, elapsed: Duration) -> OpSummary {
        let secs = elapsed.as_secs_f64();
        OpSummary {
            op: op.to_owned(),
            count: self.count(),
            errors: self.errors,
            first_error: self.first_error.clone(),
            throughput_per_s: if secs > 0.0 {
                self.count() as f64 / secs
            } else {
                0.0
            },
            p50_ms: self.p_ms(0.50),
            p95_ms: self.p_ms(0.95),
            p99_ms: self.p_ms(0.99),
            max_ms: if self.hist.is_empty() {
                0.0
            } else {
                self.hist.max() as f64 / 1000.0
            },
            mean_ms: if self.hist.is_empty() {
                0.0
            } else {
                self.hist.mean() / 1000.0
            },
            node_cpu_ms_per_op: None,
            client_cpu_ms_per_op: None,
        }
    }
}

/// One operation's numbers, as printed and as JSON.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct OpSummary {
    pub(crate) op: String,
    pub(crate) count: u64,
    pub(crate) errors: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) first_error: Option<String>,
    pub(crate) throughput_per_s: f64,
    pub(crate) p50_ms: f64,
    pub(crate) p95_ms: f64,
    pub(crate) p99_ms: f64,
    pub(crate) max_ms: f64,
    pub(crate) mean_ms: f64,
    /// Node CPU (user + system, all nodes) per operation, when it could be attributed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) node_cpu_ms_per_op: Option<f64>,
    /// The load generator's own CPU per operation.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) client_cpu_ms_per_op: Option<f64>,
}

/// Clock ticks per second of `/proc/*/stat` times. Linux has used 100 on every architecture
/// this runs on; `getconf CLK_TCK` would need libc.
const CLK_TCK: f64 = 100.0;

/// `utime + stime` in seconds from the text of a `/proc/.../stat` file.
fn stat_cpu_secs(text: &str) -> Option<f64> {
    // The command name (field 2) is in parentheses and may hold spaces: split after the last ')'.
    let rest = &text[text.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // After the name: state is field 3, so utime (field 14) is index 11 and stime index 12.
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some((utime + stime) as f64 / CLK_TCK)
}

/// CPU seconds used so far by process `pid`.
pub(crate) fn process_cpu_secs(pid: u32) -> Option<f64> {
    stat_cpu_secs(&std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?)
}

/// Who used this process's CPU: the in-process nodes' threads (the node runtime's workers and
/// blocking threads, named [`NODE_THREAD_PREFIX`], and sled's own I/O and flusher threads)
/// versus everything else (the clients).
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct CpuSplit {
    pub(crate) node_secs: f64,
    pub(crate) other_secs: f64,
}

/// Name prefix of the threads that run in-process nodes.
pub(crate) const NODE_THREAD_PREFIX: &str = "dlocker-node";

fn is_node_thread(comm: &str) -> bool {
    // sled's pool threads are `sled-io-N`, its periodic flusher is `log flusher`.
    comm.starts_with(NODE_THREAD_PREFIX) || comm.starts_with("sled") || comm == "log flusher"
}

/// Reads every thread of this process. Threads that exited since the last reading take their
/// time with them; the node runtime's workers and sled's threads live for the whole run.
pub(crate) fn self_cpu_split() -> CpuSplit {
    let mut split = CpuSplit::default();
    let Ok(tasks) = std::fs::read_dir("/proc/self/task") else {
        return split;
    };
    for t in tasks.flatten() {
        let p = t.path();
        let comm = std::fs::read_to_string(p.join("comm")).unwrap_or_default();
        let Some(secs) = std::fs::read_to_string(p.join("stat"))
            .ok()
            .and_then(|s| stat_cpu_secs(&s))
        else {
            continue;
        };
        if is_node_thread(comm.trim()) {
            split.node_secs += secs;
        } else {
            split.other_secs += secs;
        }
    }
    split
}

/// Where node CPU is read from.
#[derive(Debug, Clone)]
pub(crate) enum NodeCpu {
    /// Nodes run in this process on named threads.
    InProcess,
    /// Nodes are these processes.
    Pids(Vec<u32>),
    /// Unknown (a remote cluster without `--node-pids`).
    Unknown,
}

/// A CPU reading: (node seconds if known, this process's non-node seconds).
#[derive(Debug, Clone, Copy)]
pub(crate) struct CpuReading {
    node: Option<f64>,
    client: f64,
}

impl NodeCpu {
    pub(crate) fn read(&self) -> CpuReading {
        let split = self_cpu_split();
        match self {
            NodeCpu::InProcess => CpuReading {
                node: Some(split.node_secs),
                client: split.other_secs,
            },
            NodeCpu::Pids(pids) => {
                let node = pids
                    .iter()
                    .map(|p| process_cpu_secs(*p))
                    .sum::<Option<f64>>();
                CpuReading {
                    node,
                    client: split.other_secs + split.node_secs,
                }
            }
            NodeCpu::Unknown => CpuReading {
                node: None,
                client: split.other_secs + split.node_secs,
            },
        }
    }
}

impl CpuReading {
    /// (node seconds, client seconds) used between `self` and `later`.
    pub(crate) fn until(&self, later: &CpuReading) -> (Option<f64>, f64) {
        let node = match (self.node, later.node) {
            (Some(a), Some(b)) => Some(b - a),
            _ => None,
        };
        (node, later.client - self.client)
    }
}

/// `VmRSS` and `VmHWM` (peak) of a process, in MiB.
pub(crate) fn rss_mib(pid: u32) -> Option<(f64, f64)> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let field = |name: &str| -> Option<f64> {
        let line = text.lines().find(|l| l.starts_with(name))?;
        let kb: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
        Some(kb / 1024.0)
    };
    Some((field("VmRSS:")?, field("VmHWM:")?))
}

/// Total size of the regular files under `dir` (what sled's `size_on_disk` counts: its data
/// file, blobs and config), in bytes.
pub(crate) fn dir_bytes(dir: &Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    entries
        .flatten()
        .map(|e| match e.metadata() {
            Ok(m) if m.is_dir() => dir_bytes(&e.path()),
            Ok(m) => m.len(),
            Err(_) => 0,
        })
        .sum()
}

/// Median of a sample (sorted in place), in the sample's unit.
pub(crate) fn median(v: &mut [f64]) -> f64 {
    if v.is_empty() {
        return 0.0;
    }
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// Runs `f` `reps` times and returns the median duration in milliseconds.
pub(crate) fn time_median_ms(reps: usize, mut f: impl FnMut()) -> f64 {
    let mut v: Vec<f64> = (0..reps.max(1))
        .map(|_| {
            let t = std::time::Instant::now();
            f();
            t.elapsed().as_secs_f64() * 1000.0
        })
        .collect();
    median(&mut v)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_stat_with_spaces_in_the_name() {
        let line = "1234 (tokio runtime w) S 1 2 3 4 5 6 7 8 9 10 250 50 0 0 20 0 4 0 100 0 0";
        assert_eq!(stat_cpu_secs(line), Some(3.0));
        assert_eq!(stat_cpu_secs("garbage"), None);
        assert_eq!(stat_cpu_secs("1 (x) S 1"), None);
    }

    #[test]
    fn own_process_is_readable() {
        let pid = std::process::id();
        assert!(process_cpu_secs(pid).is_some());
        assert!(rss_mib(pid).is_some_and(|(rss, peak)| rss > 0.0 && peak >= rss));
        let split = self_cpu_split();
        assert!(split.node_secs >= 0.0 && split.other_secs >= 0.0);
    }

    #[test]
    fn percentiles() {
        let mut l = Latencies::new();
        for ms in 1..=100u64 {
            l.record(Duration::from_millis(ms));
        }
        l.error("boom");
        let s = l.summary("x", Duration::from_secs(10));
        assert_eq!(s.count, 100);
        assert_eq!(s.errors, 1);
        assert!((s.p50_ms - 50.0).abs() < 0.1, "{}", s.p50_ms);
        assert!((s.p99_ms - 99.0).abs() < 0.2, "{}", s.p99_ms);
        assert!((s.throughput_per_s - 10.0).abs() < 1e-9);
        assert_eq!(median(&mut [3.0, 1.0, 2.0]), 2.0);
    }
}
