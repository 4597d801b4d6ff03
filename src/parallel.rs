//! Work over many add-ons on every core.
//!
//! Reading a repository is independent per add-on and, once the files are cached, pure CPU:
//! the YAML parser alone is about half of it. So `check`, `rate` and `plan` over a repository
//! share the add-ons out to one scoped thread per core, taking the next index from a shared
//! counter (add-ons differ in size by two orders of magnitude, so fixed chunks would idle).

use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

/// Below this many items threads cost more than they save.
const MIN_PARALLEL: usize = 4;

/// `items.iter().map(f).collect()`, on up to `threads` threads (0: one per core), in order.
pub fn map<T: Sync, R: Send>(items: &[T], threads: usize, f: impl Fn(&T) -> R + Sync) -> Vec<R> {
    let threads = match threads {
        0 => std::thread::available_parallelism().map_or(1, |n| n.get()),
        n => n,
    }
    .min(items.len());
    if threads <= 1 || items.len() < MIN_PARALLEL {
        return items.iter().map(f).collect();
    }
    let next = AtomicUsize::new(0);
    let results: Mutex<Vec<Option<R>>> = Mutex::new((0..items.len()).map(|_| None).collect());
    std::thread::scope(|scope| {
        for _ in 0..threads {
            scope.spawn(|| {
                let mut done = Vec::new();
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(item) = items.get(i) else { break };
                    done.push((i, f(item)));
                }
                let mut results = results.lock().unwrap_or_else(|e| e.into_inner());
                for (i, r) in done {
                    results[i] = Some(r);
                }
            });
        }
    });
    results
        .into_inner()
        .unwrap_or_else(|e| e.into_inner())
        .into_iter()
        .map(|r| r.expect("every index is taken by exactly one thread"))
        .collect()
}

#[cfg(test)]
mod tests {
    #[test]
    fn keeps_order_on_every_thread_count() {
        let items: Vec<u64> = (0..1000).collect();
        let want: Vec<u64> = items.iter().map(|i| i * i).collect();
        for threads in [0, 1, 2, 3, 8, 2000] {
            assert_eq!(super::map(&items, threads, |i| i * i), want, "{threads}");
        }
        assert!(super::map(&[] as &[u64], 0, |i| *i).is_empty());
    }
}
