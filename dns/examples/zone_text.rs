//! Times reading and parsing a big zone's text, the fast reader against
//! hickory's parser alone (the reader before it): writes the zone of
//! `bench/udp-bench.sh`'s "bigzone" part (`h123 IN A 10.0.0.123`, NAMES
//! names, 1,000,000 by default) into a temporary folder and prints the read
//! (splice + rewrite) and parse times of each path, ROUNDS rounds
//! interleaved. A figure, not a test. With SHAPE `mixed`, each name has
//! an A record, a CAA record (left to hickory's parser) and a DS record
//! (rewritten to a placeholder first): the fast reader's worst case.
//!
//!     cargo run --release -p hadns --example zone_text -- [NAMES] [ROUNDS] [fast|hickory|both] [bigzone|mixed]

use std::fmt::Write as _;
use std::time::Duration;

fn main() {
    let mut args = std::env::args().skip(1);
    let names: usize = args
        .next()
        .and_then(|n| n.parse().ok())
        .unwrap_or(1_000_000);
    let rounds: usize = args.next().and_then(|n| n.parse().ok()).unwrap_or(3);
    // "fast" or "hickory": only that path (for a profiler).
    let only = args.next().filter(|o| o != "both");
    let mixed = args.next().is_some_and(|s| s == "mixed");
    let dir = std::env::temp_dir().join(format!("hadns-zone-text-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temporary folder");
    let path = dir.join("big.test.zone");
    let mut text = String::with_capacity(names * 28 + 256);
    text.push_str(
        "$ORIGIN big.test.\n$TTL 300\n@ IN SOA ns1 hostmaster 1 3600 600 604800 60\n\
         @ IN NS ns1\nns1 IN A 10.255.255.1\nha IN A 192.168.56.100\nha IN A 192.168.56.200\n",
    );
    for i in 0..names {
        let _ = writeln!(
            text,
            "h{i} IN A 10.{}.{}.{}",
            i / 65536 % 256,
            i / 256 % 256,
            i % 256
        );
        if mixed {
            let _ = writeln!(
                text,
                "h{i} CAA 0 issue \"ca.example\"\nh{i} DS 60485 5 1 2BB183AF5F22588179A53B0A98631FAD1A292118"
            );
        }
    }
    std::fs::write(&path, &text).expect("write the zone");
    println!(
        "{} names, {} MB, {} cores",
        names,
        text.len() >> 20,
        std::thread::available_parallelism().map_or(1, |n| n.get())
    );
    drop(text);
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    let mut best = [(f64::MAX, f64::MAX); 2];
    for round in 0..rounds {
        for (k, fast) in [(0, false), (1, true)] {
            if only.as_deref().is_some_and(|o| (o == "fast") != fast) {
                continue;
            }
            match hadns::zone::file::read_and_parse(&path, fast) {
                Ok((read, parse, records)) => {
                    println!(
                        "round {round} {:>7}: read {:6.0} ms, parse {:6.0} ms, total {:6.0} ms, {records} records",
                        if fast { "fast" } else { "hickory" },
                        ms(read),
                        ms(parse),
                        ms(read + parse)
                    );
                    best[k].0 = best[k].0.min(ms(read));
                    best[k].1 = best[k].1.min(ms(parse));
                }
                Err(e) => {
                    eprintln!("{e}");
                    let _ = std::fs::remove_dir_all(&dir);
                    std::process::exit(1);
                }
            }
        }
    }
    for (k, what) in [(0, "hickory"), (1, "fast")] {
        if best[k].0 == f64::MAX {
            continue;
        }
        println!(
            "best {what:>7}: read {:.0} ms + parse {:.0} ms",
            best[k].0, best[k].1
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
}
