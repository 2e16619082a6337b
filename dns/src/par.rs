//! Work spread over the machine's cores (loading a zones folder, parsing
//! a big zone's pieces, building the fast path's table): one place that
//! knows how many cores there are and how the work is shared.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::OnceLock;

/// The cores this process may use (asked once: the answer reads cgroup
/// files, too slow to ask per zone file).
pub fn cores() -> usize {
    static CORES: OnceLock<usize> = OnceLock::new();
    *CORES.get_or_init(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
}

/// `f` on every item, on up to [`cores`] threads (this one among them),
/// each taking the next item not yet taken, so uneven items still share
/// the cores; the results in the order of `items`. A call that panics is
/// `Err` with its payload (a bug in one zone's parse must fail that zone,
/// not the server); the other items still run.
pub fn map<T: Sync, R: Send>(
    items: &[T],
    f: impl Fn(&T) -> R + Sync,
) -> Vec<std::thread::Result<R>> {
    let call = |item: &T| catch_unwind(AssertUnwindSafe(|| f(item)));
    let threads = cores().min(items.len());
    if threads <= 1 {
        return items.iter().map(call).collect();
    }
    let next = AtomicUsize::new(0);
    let work = || {
        let mut done = Vec::new();
        loop {
            let i = next.fetch_add(1, Ordering::Relaxed);
            let Some(item) = items.get(i) else {
                return done;
            };
            done.push((i, call(item)));
        }
    };
    let mut all = std::thread::scope(|s| {
        let others: Vec<_> = (1..threads).map(|_| s.spawn(work)).collect();
        let mut all = work();
        for h in others {
            // `work` itself does not panic: every call is caught.
            all.extend(h.join().unwrap_or_default());
        }
        all
    });
    all.sort_by_key(|(i, _)| *i);
    all.into_iter().map(|(_, r)| r).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn results_keep_the_order_and_a_panic_stays_with_its_item() {
        let items: Vec<u32> = (0..500).collect();
        let out = map(&items, |&i| {
            if i == 77 {
                panic!("item 77");
            }
            i * 2
        });
        assert_eq!(out.len(), 500);
        for (i, r) in out.into_iter().enumerate() {
            match r {
                Ok(v) => assert_eq!(v, i as u32 * 2),
                Err(_) => assert_eq!(i, 77),
            }
        }
        assert!(map(&[] as &[u32], |&i| i).is_empty());
        assert!(cores() >= 1);
    }
}
