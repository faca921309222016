//! What a process and the machine use and have, read from /proc: CPU seconds of a process
//! (a worker, or the broker), this process's resident memory, the timing of a worker's
//! measured work, and the one-line machine description of the report.

use std::time::Instant;

/// What [`timed`] measured of a piece of work in this process.
pub struct Usage {
    pub seconds: f64,
    pub cpu_seconds: f64,
    /// Resident memory just before the work began (KiB): the worker's idle figure.
    pub idle_rss_kb: u64,
}

/// Wall and CPU seconds of `work`, and the resident memory before it.
///
/// With `SLUICE_BENCH_PERF_CONTROL` naming the control FIFO of a `perf record --control
/// fifo:… -D -1`, the profile covers the measured work only, not the payloads made before it.
pub fn timed(work: impl FnOnce()) -> Usage {
    let idle_rss_kb = status_kb("VmRSS:");
    let cpu_before = own_cpu_seconds();
    perf_control("enable");
    let started = Instant::now();
    work();
    let seconds = started.elapsed().as_secs_f64();
    perf_control("disable");
    Usage {
        seconds,
        cpu_seconds: own_cpu_seconds() - cpu_before,
        idle_rss_kb,
    }
}

/// Tells a `perf record` waiting on its control FIFO to start or stop sampling.
fn perf_control(command: &str) {
    if let Some(fifo) = std::env::var_os("SLUICE_BENCH_PERF_CONTROL") {
        std::fs::write(fifo, format!("{command}\n")).expect("perf's control FIFO");
    }
}

/// CPU seconds (user + system) this process has used, to the microsecond: /proc counts in
/// hundredths, too coarse for a run of a few tenths of a second.
fn own_cpu_seconds() -> f64 {
    rusage(libc::RUSAGE_SELF).0
}

/// CPU seconds and peak RSS (KiB) of this process's waited-for children (all of them
/// together; the peak is the largest child's).
pub fn children_usage() -> (f64, u64) {
    rusage(libc::RUSAGE_CHILDREN)
}

/// CPU seconds (user + system) and peak resident memory (KiB) from getrusage(`who`).
fn rusage(who: libc::c_int) -> (f64, u64) {
    let mut usage = std::mem::MaybeUninit::<libc::rusage>::zeroed();
    // SAFETY: getrusage writes a whole `rusage` into the pointer it is given, which points to
    // one; with RUSAGE_SELF or RUSAGE_CHILDREN it cannot fail.
    #[allow(unsafe_code)]
    let usage = unsafe {
        libc::getrusage(who, usage.as_mut_ptr());
        usage.assume_init()
    };
    let seconds = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    (
        seconds(usage.ru_utime) + seconds(usage.ru_stime),
        // Linux counts ru_maxrss in KiB.
        u64::try_from(usage.ru_maxrss).unwrap_or(0),
    )
}

/// CPU seconds (user + system) a process has used, from /proc.
pub fn process_cpu_seconds(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the command name (which may hold spaces), which ends with ')'.
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map(|(_, rest)| rest.split_whitespace().collect())
        .unwrap_or_default();
    // utime and stime are fields 14 and 15 of the line, 12 and 13 after the name.
    let ticks: f64 = fields
        .get(11..13)
        .map(|t| t.iter().filter_map(|v| v.parse::<f64>().ok()).sum())
        .unwrap_or(0.0);
    ticks / clock_ticks_per_second()
}

fn clock_ticks_per_second() -> f64 {
    // Linux reports /proc times in USER_HZ, 100 on every architecture Debian ships.
    100.0
}

/// This process's peak resident memory, in KiB.
pub fn peak_rss_kb() -> u64 {
    status_kb("VmHWM:")
}

/// A KiB figure of /proc/self/status (`VmRSS:`, `VmHWM:`).
fn status_kb(field: &str) -> u64 {
    proc_kb("/proc/self/status", field).unwrap_or(0)
}

/// The number after `field` in a /proc file of `Name:  1234 kB` lines.
fn proc_kb(path: &str, field: &str) -> Option<u64> {
    std::fs::read_to_string(path)
        .ok()?
        .lines()
        .find(|l| l.starts_with(field))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

/// `AMD EPYC, 2 cores, 24 GiB`: the CPU model, cores and memory, for the report.
pub fn machine() -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|t| {
            t.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split_once(':'))
                .map(|(_, v)| v.trim().to_string())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let memory = proc_kb("/proc/meminfo", "MemTotal").map_or_else(String::new, |kb| {
        format!(", {:.0} GiB", kb as f64 / 1024.0 / 1024.0)
    });
    format!("{cpu}, {cores} cores{memory}")
}
