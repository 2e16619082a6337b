//! Loads a zones folder the way `hadns run` does and prints where time and
//! memory go: per zone file the read, parse and build times (debug log),
//! then the wall time, resident memory (VmRSS) and peak (VmHWM) after the
//! load and after handing freed memory back. Used by `bench/udp-bench.sh`
//! and for profiling (`heaptrack`, `perf`).
//!
//!     cargo run --release -p hadns --example zone_load -- ZONES_DIR [RELOADS]

use std::path::PathBuf;
use std::time::Instant;

fn status(key: &str) -> String {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with(key))
                .map(|l| l[key.len()..].trim().to_string())
        })
        .unwrap_or_else(|| "?".into())
}

fn trim() {
    // SAFETY: malloc_trim has no preconditions; it only returns free heap
    // memory to the kernel.
    #[cfg(target_env = "gnu")]
    unsafe {
        libc::malloc_trim(0);
    }
}

fn main() {
    tracing_subscriber::fmt()
        .with_env_filter(std::env::var("RUST_LOG").unwrap_or_else(|_| "hadns=debug".into()))
        .with_writer(std::io::stderr)
        .init();
    let mut args = std::env::args().skip(1);
    let Some(dir) = args.next().map(PathBuf::from) else {
        eprintln!("usage: zone_load ZONES_DIR [RELOADS]");
        std::process::exit(2);
    };
    let reloads: usize = args.next().and_then(|n| n.parse().ok()).unwrap_or(0);
    let t = Instant::now();
    let mut zones = match hadns::zone::Zones::load_each(&dir, None) {
        Ok(z) => z,
        Err(e) => {
            eprintln!("{e}");
            std::process::exit(1);
        }
    };
    let names: usize = zones.iter().map(|z| z.nodes.len()).sum();
    println!(
        "load {:.2} s: {} zones ({} failed), {names} names; VmRSS {}, VmHWM {}",
        t.elapsed().as_secs_f64(),
        zones.len(),
        zones.failed().len(),
        status("VmRSS:"),
        status("VmHWM:")
    );
    trim();
    println!("after malloc_trim: VmRSS {}", status("VmRSS:"));
    // Every name looked up once, in the store's order: the cost the fast
    // path's precompilation pays per name.
    let t = Instant::now();
    let mut found = 0usize;
    for z in zones.iter() {
        for n in z.nodes.iter() {
            let lower = n.wire().to_ascii_lowercase();
            found += usize::from(std::hint::black_box(z.nodes.get_wire(&lower)).is_some());
        }
    }
    println!(
        "lookups: {found} names in {:.0} ms",
        t.elapsed().as_secs_f64() * 1e3
    );
    for i in 0..reloads {
        let t = Instant::now();
        let new = match hadns::zone::Zones::load_each(&dir, Some(&zones)) {
            Ok(z) => z,
            Err(e) => {
                eprintln!("{e}");
                std::process::exit(1);
            }
        };
        let old = std::mem::replace(&mut zones, new);
        drop(old);
        trim();
        println!(
            "reload {} {:.2} s: VmRSS {}, VmHWM {}",
            i + 1,
            t.elapsed().as_secs_f64(),
            status("VmRSS:"),
            status("VmHWM:")
        );
    }
}
