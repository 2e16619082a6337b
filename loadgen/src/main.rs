//! hadns-loadgen: a batched UDP DNS load generator.
//!
//! One thread (pin it with `taskset`), several connected UDP sockets, many
//! queries in flight, `sendmmsg` / `recvmmsg` batches, for a fixed
//! duration. Queries come from a file in dnsperf format (`name type` per
//! line, `#` comments), sent in order and round robin. Prints the achieved
//! queries per second (replies received / duration), latency percentiles,
//! lost queries (no reply within `--timeout`) and reply codes; the last
//! line is machine-readable:
//!
//! ```text
//! RESULT qps=231000 p50_us=410 p99_us=900 p999_us=1500 sent=... received=... lost=0
//! ```

use std::io::{self, BufRead};
use std::mem;
use std::net::{SocketAddr, UdpSocket};
use std::os::fd::AsRawFd;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use clap::Parser;

#[derive(Parser, Debug)]
#[command(version, about)]
struct Args {
    /// Server address.
    #[arg(short, long, default_value = "127.0.0.1:53")]
    server: SocketAddr,
    /// Query file, dnsperf format: `name type` per line.
    #[arg(short = 'd', long)]
    queries: PathBuf,
    /// Run time in seconds.
    #[arg(short = 'l', long, default_value_t = 10.0)]
    duration: f64,
    /// Queries in flight (over all sockets).
    #[arg(short = 'q', long, default_value_t = 512)]
    inflight: usize,
    /// UDP sockets (source ports); more spreads the load over SO_REUSEPORT workers.
    #[arg(short = 'c', long, default_value_t = 8)]
    sockets: usize,
    /// Datagrams per sendmmsg / recvmmsg call.
    #[arg(short, long, default_value_t = 64)]
    batch: usize,
    /// A query without a reply after this many ms is lost.
    #[arg(short, long, default_value_t = 1000)]
    timeout: u64,
    /// Add an EDNS OPT record with this UDP size.
    #[arg(short, long)]
    edns: Option<u16>,
    /// Clear the RD bit (dnsperf sets it).
    #[arg(long)]
    no_rd: bool,
}

/// One query template.
struct Template {
    bytes: Vec<u8>,
}

fn qtype_code(s: &str) -> Option<u16> {
    Some(match s.to_ascii_uppercase().as_str() {
        "A" => 1,
        "NS" => 2,
        "CNAME" => 5,
        "SOA" => 6,
        "PTR" => 12,
        "MX" => 15,
        "TXT" => 16,
        "AAAA" => 28,
        "SRV" => 33,
        "DS" => 43,
        "DNSKEY" => 48,
        "HTTPS" => 65,
        "CAA" => 257,
        "ANY" => 255,
        other => other.strip_prefix("TYPE")?.parse().ok()?,
    })
}

fn template(name: &str, qtype: u16, rd: bool, edns: Option<u16>) -> Option<Template> {
    let mut b = vec![0, 0, if rd { 1 } else { 0 }, 0, 0, 1, 0, 0, 0, 0, 0];
    b.push(u8::from(edns.is_some()));
    for label in name
        .trim_end_matches('.')
        .split('.')
        .filter(|l| !l.is_empty())
    {
        if label.len() > 63 {
            return None;
        }
        b.push(label.len() as u8);
        b.extend_from_slice(label.as_bytes());
    }
    b.push(0);
    b.extend_from_slice(&qtype.to_be_bytes());
    b.extend_from_slice(&[0, 1]);
    if let Some(size) = edns {
        b.extend_from_slice(&[0, 0, 41]);
        b.extend_from_slice(&size.to_be_bytes());
        b.extend_from_slice(&[0, 0, 0, 0, 0, 0]);
    }
    Some(Template { bytes: b })
}

fn read_queries(args: &Args) -> io::Result<Vec<Template>> {
    let f = std::fs::File::open(&args.queries)?;
    let mut out = Vec::new();
    for (i, line) in io::BufReader::new(f).lines().enumerate() {
        let line = line?;
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let mut it = line.split_whitespace();
        let (Some(name), Some(t)) = (it.next(), it.next()) else {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("{}:{}: expected `name type`", args.queries.display(), i + 1),
            ));
        };
        let q = qtype_code(t)
            .and_then(|t| template(name, t, !args.no_rd, args.edns))
            .ok_or_else(|| {
                io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!("{}:{}: bad name or type", args.queries.display(), i + 1),
                )
            })?;
        out.push(q);
    }
    if out.is_empty() {
        return Err(io::Error::new(io::ErrorKind::InvalidData, "no queries"));
    }
    Ok(out)
}

/// Latency histogram: 1 µs buckets up to 100 ms, then one overflow bucket.
struct Histogram {
    buckets: Vec<u64>,
    count: u64,
}

impl Histogram {
    const MAX_US: usize = 100_000;
    fn new() -> Histogram {
        Histogram {
            buckets: vec![0; Self::MAX_US + 1],
            count: 0,
        }
    }
    fn record(&mut self, us: u64) {
        let i = (us as usize).min(Self::MAX_US);
        self.buckets[i] += 1;
        self.count += 1;
    }
    fn percentile(&self, p: f64) -> u64 {
        if self.count == 0 {
            return 0;
        }
        let want = ((self.count as f64) * p / 100.0).ceil().max(1.0) as u64;
        let mut seen = 0;
        for (i, c) in self.buckets.iter().enumerate() {
            seen += c;
            if seen >= want {
                return i as u64;
            }
        }
        Self::MAX_US as u64
    }
}

/// Per-socket state: which IDs are in flight and since when.
struct Conn {
    sock: UdpSocket,
    /// Send time (ns since start) + 1 per ID; 0 = free.
    sent_at: Vec<u64>,
    free: Vec<u16>,
    /// (id, send time) in send order, for timeouts.
    fifo: std::collections::VecDeque<(u16, u64)>,
    inflight: usize,
}

struct Stats {
    sent: u64,
    received: u64,
    lost: u64,
    unexpected: u64,
    rcodes: [u64; 16],
    hist: Histogram,
}

const BUF: usize = 4096;

fn run(args: &Args) -> io::Result<Stats> {
    let queries = read_queries(args)?;
    let nsock = args.sockets.max(1);
    let per_sock = (args.inflight / nsock).clamp(1, 65535);
    let batch = args.batch.clamp(1, 1024);
    let local = if args.server.is_ipv6() {
        "[::1]:0"
    } else {
        "127.0.0.1:0"
    };
    let mut conns = Vec::with_capacity(nsock);
    for _ in 0..nsock {
        let s = UdpSocket::bind(local)?;
        s.connect(args.server)?;
        s.set_nonblocking(true)?;
        // Room for bursts of replies.
        let fd = s.as_raw_fd();
        let size: libc::c_int = 4 << 20;
        for opt in [libc::SO_RCVBUFFORCE, libc::SO_RCVBUF] {
            // SAFETY: setsockopt with a valid fd and an int option value.
            let r = unsafe {
                libc::setsockopt(
                    fd,
                    libc::SOL_SOCKET,
                    opt,
                    (&size as *const libc::c_int).cast(),
                    mem::size_of::<libc::c_int>() as libc::socklen_t,
                )
            };
            if r == 0 {
                break;
            }
        }
        let mut free: Vec<u16> = (0..=u16::MAX).collect();
        // IDs handed out from the end: shuffle-free but spread.
        free.reverse();
        conns.push(Conn {
            sock: s,
            sent_at: vec![0; 65536],
            free,
            fifo: std::collections::VecDeque::new(),
            inflight: 0,
        });
    }

    let mut tx = vec![[0u8; 512]; batch];
    let mut tx_iov: Vec<libc::iovec> = vec![
        libc::iovec {
            iov_base: std::ptr::null_mut(),
            iov_len: 0
        };
        batch
    ];
    // SAFETY: all-zero mmsghdr is valid.
    let mut tx_hdr: Vec<libc::mmsghdr> = vec![unsafe { mem::zeroed() }; batch];
    let mut rx = vec![[0u8; BUF]; batch];
    let mut rx_iov: Vec<libc::iovec> = rx
        .iter_mut()
        .map(|b| libc::iovec {
            iov_base: b.as_mut_ptr().cast(),
            iov_len: BUF,
        })
        .collect();
    // SAFETY: as above.
    let mut rx_hdr: Vec<libc::mmsghdr> = vec![unsafe { mem::zeroed() }; batch];
    for (h, iov) in rx_hdr.iter_mut().zip(rx_iov.iter_mut()) {
        h.msg_hdr.msg_iov = iov;
        h.msg_hdr.msg_iovlen = 1;
    }

    let mut st = Stats {
        sent: 0,
        received: 0,
        lost: 0,
        unexpected: 0,
        rcodes: [0; 16],
        hist: Histogram::new(),
    };
    let start = Instant::now();
    let run_for = Duration::from_secs_f64(args.duration);
    let timeout_ns = args.timeout * 1_000_000;
    let mut next_q = 0usize;
    let mut polls: Vec<libc::pollfd> = conns
        .iter()
        .map(|c| libc::pollfd {
            fd: c.sock.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        })
        .collect();
    loop {
        let now = start.elapsed();
        let sending = now < run_for;
        let now_ns = now.as_nanos() as u64;
        if !sending && conns.iter().all(|c| c.inflight == 0) {
            break;
        }
        if !sending && now_ns > run_for.as_nanos() as u64 + timeout_ns {
            break;
        }
        let mut progress = false;
        for c in conns.iter_mut() {
            let fd = c.sock.as_raw_fd();
            // Expire lost queries.
            while let Some(&(id, t)) = c.fifo.front() {
                if c.sent_at[id as usize] != t + 1 {
                    c.fifo.pop_front(); // answered (or reused)
                    continue;
                }
                if now_ns.saturating_sub(t) < timeout_ns {
                    break;
                }
                c.fifo.pop_front();
                c.sent_at[id as usize] = 0;
                c.free.push(id);
                c.inflight -= 1;
                st.lost += 1;
            }
            // Send.
            if sending && c.inflight < per_sock {
                let n = (per_sock - c.inflight).min(batch);
                let mut k = 0;
                while k < n {
                    let Some(id) = c.free.pop() else { break };
                    let q = &queries[next_q];
                    next_q += 1;
                    if next_q == queries.len() {
                        next_q = 0;
                    }
                    let len = q.bytes.len().min(512);
                    tx[k][..len].copy_from_slice(&q.bytes[..len]);
                    tx[k][..2].copy_from_slice(&id.to_be_bytes());
                    tx_iov[k] = libc::iovec {
                        iov_base: tx[k].as_mut_ptr().cast(),
                        iov_len: len,
                    };
                    tx_hdr[k].msg_hdr.msg_iov = &mut tx_iov[k];
                    tx_hdr[k].msg_hdr.msg_iovlen = 1;
                    c.sent_at[id as usize] = now_ns + 1;
                    c.fifo.push_back((id, now_ns));
                    k += 1;
                }
                // SAFETY: the first k headers point at live buffers.
                let r = unsafe { libc::sendmmsg(fd, tx_hdr.as_mut_ptr(), k as libc::c_uint, 0) };
                let done = if r < 0 { 0 } else { r as usize };
                // Unsent ones go back (the socket buffer is full).
                for h in tx[done..k].iter() {
                    let id = u16::from_be_bytes([h[0], h[1]]);
                    c.sent_at[id as usize] = 0;
                    c.free.push(id);
                }
                c.inflight += done;
                st.sent += done as u64;
                progress |= done > 0;
            }
            // Receive.
            loop {
                for h in rx_hdr.iter_mut() {
                    h.msg_len = 0;
                }
                // SAFETY: headers point at live buffers of BUF bytes.
                let r = unsafe {
                    libc::recvmmsg(
                        fd,
                        rx_hdr.as_mut_ptr(),
                        batch as libc::c_uint,
                        libc::MSG_DONTWAIT,
                        std::ptr::null_mut(),
                    )
                };
                if r <= 0 {
                    break;
                }
                progress = true;
                let t = start.elapsed().as_nanos() as u64;
                for i in 0..r as usize {
                    let len = rx_hdr[i].msg_len as usize;
                    if len < 12 {
                        st.unexpected += 1;
                        continue;
                    }
                    let b = &rx[i];
                    let id = u16::from_be_bytes([b[0], b[1]]) as usize;
                    let at = c.sent_at[id];
                    if at == 0 {
                        st.unexpected += 1; // late (already lost) or duplicate
                        continue;
                    }
                    c.sent_at[id] = 0;
                    c.free.push(id as u16);
                    c.inflight -= 1;
                    st.received += 1;
                    st.rcodes[(b[3] & 0x0f) as usize] += 1;
                    st.hist.record((t - (at - 1)) / 1000);
                }
                if (r as usize) < batch {
                    break;
                }
            }
        }
        if !progress {
            // SAFETY: polls holds valid fds.
            unsafe {
                libc::poll(polls.as_mut_ptr(), polls.len() as libc::nfds_t, 1);
            }
        }
    }
    // Whatever is still in flight after the grace period is lost.
    st.lost += conns.iter().map(|c| c.inflight as u64).sum::<u64>();
    Ok(st)
}

const RCODES: [&str; 16] = [
    "NOERROR", "FORMERR", "SERVFAIL", "NXDOMAIN", "NOTIMP", "REFUSED", "YXDOMAIN", "YXRRSET",
    "NXRRSET", "NOTAUTH", "NOTZONE", "RCODE11", "RCODE12", "RCODE13", "RCODE14", "RCODE15",
];

fn main() -> ExitCode {
    let args = Args::parse();
    let st = match run(&args) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("hadns-loadgen: {e}");
            return ExitCode::FAILURE;
        }
    };
    let qps = st.received as f64 / args.duration;
    let (p50, p99, p999) = (
        st.hist.percentile(50.0),
        st.hist.percentile(99.0),
        st.hist.percentile(99.9),
    );
    println!(
        "server {} for {}s, {} in flight over {} sockets, batch {}",
        args.server, args.duration, args.inflight, args.sockets, args.batch
    );
    println!(
        "sent {}  received {}  lost {}  unexpected {}",
        st.sent, st.received, st.lost, st.unexpected
    );
    println!("queries per second: {qps:.0}");
    println!("latency p50 {p50} us, p99 {p99} us, p99.9 {p999} us");
    let codes: Vec<String> = st
        .rcodes
        .iter()
        .enumerate()
        .filter(|(_, &c)| c > 0)
        .map(|(i, c)| format!("{} {}", RCODES[i], c))
        .collect();
    println!("reply codes: {}", codes.join(", "));
    println!(
        "RESULT qps={qps:.0} p50_us={p50} p99_us={p99} p999_us={p999} sent={} received={} lost={}",
        st.sent, st.received, st.lost
    );
    if st.received == 0 {
        return ExitCode::FAILURE;
    }
    ExitCode::SUCCESS
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn template_is_a_plain_query() {
        let t = template("Ha.com.", 28, true, None).expect("template");
        assert_eq!(&t.bytes[2..12], &[1, 0, 0, 1, 0, 0, 0, 0, 0, 0]);
        assert_eq!(&t.bytes[12..], b"\x02Ha\x03com\x00\x00\x1c\x00\x01");
        let e = template("ha.com", 1, false, Some(1232)).expect("template");
        assert_eq!(e.bytes[2], 0);
        assert_eq!(e.bytes[11], 1);
        assert_eq!(
            &e.bytes[e.bytes.len() - 11..],
            &[0, 0, 41, 4, 208, 0, 0, 0, 0, 0, 0]
        );
        assert!(template(&"x".repeat(64), 1, true, None).is_none());
        assert_eq!(qtype_code("aaaa"), Some(28));
        assert_eq!(qtype_code("TYPE65"), Some(65));
        assert_eq!(qtype_code("BOGUS"), None);
    }

    #[test]
    fn percentiles() {
        let mut h = Histogram::new();
        for us in 1..=100 {
            h.record(us);
        }
        assert_eq!(h.percentile(50.0), 50);
        assert_eq!(h.percentile(99.0), 99);
        h.record(1_000_000);
        assert_eq!(h.percentile(100.0), Histogram::MAX_US as u64);
    }
}
