//! Independent work spread over the machine's cores, results in input order.
//! Clusters render and lint independently, and so do expressions: on the
//! 2-core CI machines this halves `generate` and `lint` at fleet scale.

/// The cores this process may use, found once: the standard library reads
/// the cgroup's CPU quota files on every call.
pub fn cores() -> usize {
    static CORES: std::sync::OnceLock<usize> = std::sync::OnceLock::new();
    *CORES.get_or_init(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
}

/// `items.iter().map(f).collect()`, on up to one thread per core. Small
/// inputs (under `min_chunk` items per thread) stay on the calling thread.
pub fn map<T: Sync, R: Send>(items: &[T], min_chunk: usize, f: impl Fn(&T) -> R + Sync) -> Vec<R> {
    let threads = cores();
    let chunk = items.len().div_ceil(threads).max(min_chunk.max(1));
    if items.len() <= chunk {
        return items.iter().map(f).collect();
    }
    let f = &f;
    // The calling thread maps the last chunk itself.
    let (rest, own) = items.split_at(chunk * ((items.len() - 1) / chunk));
    std::thread::scope(|scope| {
        let workers: Vec<_> = rest
            .chunks(chunk)
            .map(|part| scope.spawn(move || part.iter().map(f).collect::<Vec<R>>()))
            .collect();
        let own: Vec<R> = own.iter().map(f).collect();
        let mut out = joined(workers);
        out.extend(own);
        out
    })
}

/// Every worker's results, in the workers' order; a worker's panic goes on
/// in the caller.
fn joined<R>(workers: Vec<std::thread::ScopedJoinHandle<'_, Vec<R>>>) -> Vec<R> {
    workers
        .into_iter()
        .flat_map(|w| {
            w.join()
                .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
        })
        .collect()
}

/// `items.iter().map(f).collect()`, each item taken by the next free one of
/// up to one thread per core: at most that many items are worked on at
/// once, so memory holds that many items' working state however many items
/// there are, and one slow item does not hold up the others. Results in
/// input order.
pub fn map_each<T: Sync, R: Send>(items: &[T], f: impl Fn(&T) -> R + Sync) -> Vec<R> {
    use std::sync::atomic::{AtomicUsize, Ordering};
    let threads = cores().min(items.len());
    if threads <= 1 {
        return items.iter().map(f).collect();
    }
    let next = AtomicUsize::new(0);
    let (f, next) = (&f, &next);
    let work = move || {
        let mut out = Vec::new();
        loop {
            let i = next.fetch_add(1, Ordering::Relaxed);
            let Some(item) = items.get(i) else { break };
            out.push((i, f(item)));
        }
        out
    };
    // The calling thread is one of the workers.
    let mut done: Vec<(usize, R)> = std::thread::scope(|scope| {
        let workers: Vec<_> = (1..threads).map(|_| scope.spawn(work)).collect();
        let own = work();
        let mut out = joined(workers);
        out.extend(own);
        out
    });
    done.sort_unstable_by_key(|(i, _)| *i);
    done.into_iter().map(|(_, r)| r).collect()
}

/// `for item in items { consume(produce(item)) }`, with `produce` running
/// one item ahead on a thread of its own: the next item is produced while
/// the current one is consumed. At most two produced items are held at once
/// (the one being consumed and the next), and `consume` sees them in input
/// order on the calling thread.
pub fn pipeline<T: Sync, A: Send>(
    items: &[T],
    produce: impl Fn(&T) -> A + Sync,
    mut consume: impl FnMut(A),
) {
    if items.len() <= 1 || cores() <= 1 {
        items.iter().for_each(|item| consume(produce(item)));
        return;
    }
    let produce = &produce;
    std::thread::scope(|scope| {
        // No buffer: the producer waits with its finished item until the
        // consumer takes it.
        let (send, receive) = std::sync::mpsc::sync_channel(0);
        let producer = scope.spawn(move || {
            for item in items {
                if send.send(produce(item)).is_err() {
                    break;
                }
            }
        });
        for produced in receive {
            consume(produced);
        }
        producer
            .join()
            .unwrap_or_else(|panic| std::panic::resume_unwind(panic));
    });
}

/// Keeps the allocator's memory near what the threads hold at once. glibc
/// gives threads that allocate at the same time arenas of their own (up
/// to eight per core), and memory freed in one arena serves only that
/// arena: with files read on one thread and dropped on another, every arena
/// grows to its own peak. And a freed block larger than the mmap threshold
/// raises the threshold, so later file-sized buffers stay in the arenas
/// too. One arena per core and a fixed threshold take a lint of 100,000
/// rules from 66 MB to 45 MB at the same speed. Other allocators are left
/// as they are.
pub fn bound_allocator() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        use std::ffi::c_int;
        // From glibc's <malloc.h>.
        const M_MMAP_THRESHOLD: c_int = -3;
        const M_ARENA_MAX: c_int = -8;
        extern "C" {
            fn mallopt(param: c_int, value: c_int) -> c_int;
        }
        let arenas = cores();
        let arenas = c_int::try_from(arenas).unwrap_or(c_int::MAX);
        // SAFETY: mallopt takes two integers and only changes the
        // allocator's tuning; every value is valid (a rejected one returns 0
        // and changes nothing), and blocks already allocated are unaffected.
        unsafe {
            mallopt(M_ARENA_MAX, arenas);
            mallopt(M_MMAP_THRESHOLD, 128 * 1024);
        }
    }
}

#[cfg(test)]
mod tests {
    /// Every item is mapped once, and the results come back in input
    /// order whichever thread finished first.
    #[test]
    fn map_each_keeps_input_order() {
        let items: Vec<u64> = (0..200).collect();
        let out = super::map_each(&items, |i| {
            if i % 7 == 0 {
                std::thread::sleep(std::time::Duration::from_millis(1));
            }
            i * 3
        });
        assert_eq!(out, items.iter().map(|i| i * 3).collect::<Vec<_>>());
        assert!(super::map_each(&[] as &[u64], |i| *i).is_empty());
    }

    /// Chunks mapped on the workers and on the calling thread come back in
    /// input order, whatever the length.
    #[test]
    fn map_keeps_input_order() {
        for n in [0, 1, 2, 3, 7, 64, 1_001] {
            let items: Vec<u64> = (0..n).collect();
            let out = super::map(&items, 1, |i| i * 3);
            assert_eq!(out, items.iter().map(|i| i * 3).collect::<Vec<_>>(), "{n}");
        }
    }

    /// The consumer sees every produced item, in input order.
    #[test]
    fn pipeline_consumes_in_input_order() {
        let items: Vec<u64> = (0..50).collect();
        let mut seen = Vec::new();
        super::pipeline(&items, |i| i * 2, |v| seen.push(v));
        assert_eq!(seen, items.iter().map(|i| i * 2).collect::<Vec<_>>());
    }
}
