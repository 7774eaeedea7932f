//! A server process's memory and CPU time, read from /proc (Linux).

/// RSS and user+system CPU time of one process.
#[derive(Debug, Clone)]
pub struct ProcessStats {
    pub rss_bytes: u64,
    pub cpu_seconds: f64,
}

/// Clock ticks per second for /proc/<pid>/stat times; 100 on every Linux we run on.
const CLOCK_TICKS: f64 = 100.0;

impl ProcessStats {
    pub fn read(pid: u32) -> anyhow::Result<Self> {
        let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
        let rss_kib: u64 = status
            .lines()
            .find_map(|line| line.strip_prefix("VmRSS:"))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse().ok())
            .ok_or_else(|| anyhow::anyhow!("no VmRSS for pid {pid}"))?;
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
        // Fields after the parenthesised command name; utime and stime are fields 14 and 15.
        let after_name = stat.rsplit_once(')').map(|(_, rest)| rest).unwrap_or("");
        let fields: Vec<&str> = after_name.split_whitespace().collect();
        let ticks = |i: usize| fields.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
        // after_name starts at field 3 (state), so field N is at index N - 3.
        let cpu_seconds = (ticks(14 - 3) + ticks(15 - 3)) / CLOCK_TICKS;
        Ok(Self { rss_bytes: rss_kib * 1024, cpu_seconds })
    }
}
