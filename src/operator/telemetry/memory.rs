//! How the operator uses glibc's allocator: one arena, and freed memory given
//! back to the system after each burst of work. (Other C libraries: nothing.)

use std::time::Duration;

/// How often to look whether a burst of work has ended.
const TRIM_INTERVAL: Duration = Duration::from_secs(2);

/// One malloc arena for all threads: memory freed by one thread is reused
/// by the others instead of sitting in a per-thread arena (about 1 MiB less
/// with 150 clusters, `make bench-operator`); the operator's few threads
/// seldom contend for it. Call before starting any thread.
pub fn single_arena() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only sets an allocator parameter; no other thread exists yet.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, 1);
    }
}

/// When a burst of work ends (`work`, a counter of it, moved in one interval
/// and then stood still for one), hands the heap's free pages back to the
/// system. glibc returns only the top of the heap by itself; after a burst of
/// reconciles the free space is scattered between the objects the caches
/// keep (about 1 MiB with 150 clusters); after a burst of deletions it is
/// what the deleted clusters held (about 9 MiB with 1000 head-only clusters,
/// tests/cluster_churn.rs). While work goes on, freed memory is soon reused,
/// so there is nothing to gain from trimming it.
pub async fn return_freed_memory(work: impl Fn() -> u64) {
    let mut seen = work();
    let mut busy = false;
    let mut tick = tokio::time::interval(TRIM_INTERVAL);
    loop {
        tick.tick().await;
        let now = work();
        if now != seen {
            seen = now;
            busy = true;
        } else if busy {
            busy = false;
            trim();
        }
    }
}

fn trim() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim is thread-safe and only releases free memory.
    unsafe {
        libc::malloc_trim(0);
    }
}
