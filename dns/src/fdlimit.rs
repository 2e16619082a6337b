//! Open-file limit: raised to the hard limit at start (as NSD, Knot and
//! nginx do), and the share of it that TCP clients may take.

use tracing::{info, warn};

/// Descriptors always kept for everything but TCP clients: UDP sockets,
/// listeners, health probes, exec checks, zone reloads, the control
/// endpoint, VRRP sockets and netlink.
pub const RESERVE: u64 = 256;

/// Raises the soft RLIMIT_NOFILE to the hard limit and returns the limit
/// now in force.
pub fn raise() -> u64 {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes into a valid rlimit.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) } != 0 {
        return 1024;
    }
    if lim.rlim_cur < lim.rlim_max {
        let raised = libc::rlimit {
            rlim_cur: lim.rlim_max,
            rlim_max: lim.rlim_max,
        };
        // SAFETY: setrlimit reads a valid rlimit.
        if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &raised) } == 0 {
            info!(
                from = lim.rlim_cur,
                to = lim.rlim_max,
                "open-file limit raised"
            );
            return lim.rlim_max;
        }
        warn!(
            soft = lim.rlim_cur,
            hard = lim.rlim_max,
            "cannot raise the open-file limit"
        );
    }
    lim.rlim_cur
}

/// Concurrent TCP connections allowed: `configured`, or half the open-file
/// limit (Knot's default), and never so many that fewer than [`RESERVE`]
/// descriptors (half the limit, if that is less) are left for the rest of
/// hadns.
pub fn tcp_connections(configured: Option<usize>, nofile: u64) -> usize {
    let ceiling = nofile.saturating_sub(RESERVE.min(nofile / 2)).max(1);
    let want = configured.map_or(nofile / 2, |c| c as u64);
    if want > ceiling {
        warn!(
            configured = want,
            allowed = ceiling,
            "dns.tcp_max_connections above the open-file limit less {RESERVE} in reserve; using {ceiling}"
        );
    }
    usize::try_from(want.clamp(1, ceiling)).unwrap_or(usize::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tcp_share_keeps_a_reserve() {
        assert_eq!(tcp_connections(None, 1024), 512);
        assert_eq!(tcp_connections(Some(5000), 1024), 1024 - RESERVE as usize);
        assert_eq!(tcp_connections(Some(10), 1024), 10);
        assert_eq!(tcp_connections(None, 100), 50);
        assert_eq!(tcp_connections(None, 10), 5);
        assert_eq!(tcp_connections(Some(7), 10), 5, "the reserve wins");
    }
}
