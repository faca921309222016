//! Keeping a long-running host's resident memory at the level of what it holds.
//!
//! The soak (docs/SOAK.md) found `sluice serve` growing in steps at broker restarts and
//! listener restarts: 26 → 30 MB over 25 minutes, while a heap profile (heaptrack) showed what
//! the program held level (librdkafka 2.4 MB throughout; SQLite's page cache up to its 2 MB
//! bound; 3–5.5 MB in all). The rest was free memory glibc's allocator kept: it gives threads
//! up to eight arenas per core (15 on these 2 cores), librdkafka's many threads spread their
//! buffers over them, and what a torn-down client or a reconnect frees stays with its arena.
//! [`release_free_memory`] hands the allocator's whole free pages back to the system every
//! minute while the host serves (about 0.4 MB and 150 µs a time on an idle host). The same
//! 25-minute soak then grew 25.0 → 27.2 MB (+9 %), the rest still in steps where all
//! listeners restarted: freed memory scattered over partly used pages, which no call returns.
//!
//! Two arenas (`MALLOC_ARENA_MAX=2`) took most of that too (arenas 1.2 → 2.1 MB over a
//! 10-minute soak, against 2.4 → 6.7 MB with neither), but cost CPU where it matters most:
//! the benchmark's produce cells at 100 documents per execution used 10–35 % more CPU per
//! message with two arenas on these 2 cores (noisy figures, but all four cells the same way).
//! So the host leaves the number of arenas to glibc, and to an operator who sets
//! `MALLOC_ARENA_MAX` for a host with many cores.
//!
//! Other C libraries (musl) have no such call; there this is a no-op.

use std::time::Duration;

use tokio_util::sync::CancellationToken;

/// How often [`release_free_memory`] runs: often enough that a restart's freed buffers do
/// not stay resident for long, rarely enough to cost nothing measurable (one pass over the
/// allocator's free lists: 120–170 µs on an idle host).
pub const RELEASE_EVERY: Duration = Duration::from_secs(60);

/// Returns the allocator's free pages to the system every [`RELEASE_EVERY`] until
/// `shutdown`. The resident memory before and after, and how long it took, are logged at
/// debug.
pub async fn release_free_memory(shutdown: CancellationToken) {
    let mut ticks = tokio::time::interval(RELEASE_EVERY);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    // The first tick is at once: nothing to give back yet.
    ticks.tick().await;
    loop {
        tokio::select! {
            () = shutdown.cancelled() => return,
            _ = ticks.tick() => {}
        }
        let before = resident_kib();
        let started = std::time::Instant::now();
        glibc::trim();
        tracing::debug!(
            took_us = started.elapsed().as_micros() as u64,
            rss_before_kib = before,
            rss_after_kib = resident_kib(),
            "gave the allocator's free pages back to the system"
        );
    }
}

/// This process's resident memory in KiB, from /proc (0 where there is none).
fn resident_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find_map(|l| l.strip_prefix("VmRSS:"))
                .and_then(|v| v.split_whitespace().next()?.parse().ok())
        })
        .unwrap_or(0)
}

#[cfg(all(target_os = "linux", target_env = "gnu"))]
#[allow(unsafe_code)] // glibc's malloc_trim has no safe wrapper.
mod glibc {
    pub fn trim() {
        // SAFETY: malloc_trim takes the allocator's own locks; 0 keeps no padding at the top.
        unsafe {
            libc::malloc_trim(0);
        }
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
mod glibc {
    pub fn trim() {}
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resident_memory_is_read_from_proc() {
        // A running test process holds at least a megabyte (its code alone).
        assert!(resident_kib() > 1024, "{}", resident_kib());
    }
}
