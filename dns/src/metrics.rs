//! Prometheus text exposition (format 0.0.4) of a [`Status`]: served on
//! `GET /metrics` by the control endpoint and by the opt-in `[metrics]`
//! listener (see [`crate::control`]).
//!
//! Metric families:
//! - `hadns_dns_queries_total{qtype}`, `hadns_dns_responses_total{rcode}`,
//!   `hadns_dns_transport_queries_total{transport}`,
//!   `hadns_pool_member_answers_total{pool,member}` (from [`crate::stats`])
//! - `hadns_pool_member_up{pool,member}`, `hadns_pool_member_weight{pool,member}`
//! - `hadns_vrrp_state{instance,state}` (1 for the current state),
//!   `hadns_vrrp_priority{instance}`, `hadns_vrrp_vips_held{instance}`,
//!   `hadns_vrrp_transitions_total{instance}`,
//!   `hadns_vrrp_became_master_total{instance}`,
//!   `hadns_vrrp_adverts_received_total{instance}`,
//!   `hadns_vrrp_adverts_sent_total{instance}`,
//!   `hadns_vrrp_gratuitous_sent_total{instance}`,
//!   `hadns_vrrp_rx_dropped_total{instance,reason}`,
//!   `hadns_vrrp_errors_total{instance,kind}` (send, recv, netlink)
//! - `hadns_check_up{check,target}`
//! - `hadns_uptime_seconds`, `hadns_build_info{version}`

use std::fmt::Write as _;

use crate::control::{Status, VrrpView};
use crate::stats::escape_label as esc;

const STATES: [&str; 4] = ["INIT", "BACKUP", "MASTER", "FAULT"];

/// (metric name, help, value of one instance)
type VrrpSeries = (&'static str, &'static str, fn(&VrrpView) -> u64);

fn family(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} {kind}");
}

/// The whole `/metrics` page.
pub fn render(s: &Status) -> String {
    let mut out = String::with_capacity(4096);
    family(&mut out, "hadns_build_info", "gauge", "hadns version.");
    let _ = writeln!(out, "hadns_build_info{{version=\"{}\"}} 1", esc(s.version));
    family(
        &mut out,
        "hadns_uptime_seconds",
        "gauge",
        "Seconds since start.",
    );
    let _ = writeln!(out, "hadns_uptime_seconds {}", s.uptime.as_secs());

    s.queries.render_prometheus(&mut out);

    family(
        &mut out,
        "hadns_pool_member_up",
        "gauge",
        "1 if the pool member is healthy (VIP held and checks pass).",
    );
    for p in &s.pools {
        for m in &p.members {
            let _ = writeln!(
                out,
                "hadns_pool_member_up{{pool=\"{}\",member=\"{}\"}} {}",
                esc(&p.name),
                m.address,
                u8::from(m.healthy)
            );
        }
    }
    family(
        &mut out,
        "hadns_pool_member_weight",
        "gauge",
        "Configured weight of the pool member.",
    );
    for p in &s.pools {
        for m in &p.members {
            let _ = writeln!(
                out,
                "hadns_pool_member_weight{{pool=\"{}\",member=\"{}\"}} {}",
                esc(&p.name),
                m.address,
                m.weight
            );
        }
    }

    family(
        &mut out,
        "hadns_vrrp_state",
        "gauge",
        "1 for the instance's current VRRP state.",
    );
    for v in &s.vrrp {
        for st in STATES {
            let _ = writeln!(
                out,
                "hadns_vrrp_state{{instance=\"{}\",state=\"{st}\"}} {}",
                esc(&v.name),
                u8::from(v.state == st)
            );
        }
    }
    let gauges: [VrrpSeries; 2] = [
        (
            "hadns_vrrp_priority",
            "Current (effective) priority.",
            |v| u64::from(v.priority),
        ),
        (
            "hadns_vrrp_vips_held",
            "1 if the VIPs are on this host's interface.",
            |v| u64::from(v.vips_held),
        ),
    ];
    for (name, help, f) in gauges {
        family(&mut out, name, "gauge", help);
        for v in &s.vrrp {
            let _ = writeln!(out, "{name}{{instance=\"{}\"}} {}", esc(&v.name), f(v));
        }
    }
    let counters: [VrrpSeries; 5] = [
        (
            "hadns_vrrp_transitions_total",
            "VRRP state changes observed.",
            |v| v.transitions,
        ),
        (
            "hadns_vrrp_became_master_total",
            "Times the instance became MASTER.",
            |v| v.counters.became_master,
        ),
        (
            "hadns_vrrp_adverts_received_total",
            "Valid adverts received for this VRID.",
            |v| v.counters.adverts_rx,
        ),
        ("hadns_vrrp_adverts_sent_total", "Adverts sent.", |v| {
            v.counters.adverts_tx
        }),
        (
            "hadns_vrrp_gratuitous_sent_total",
            "Gratuitous ARP / unsolicited NA frames sent.",
            |v| v.counters.gratuitous_tx,
        ),
    ];
    for (name, help, f) in counters {
        family(&mut out, name, "counter", help);
        for v in &s.vrrp {
            let _ = writeln!(out, "{name}{{instance=\"{}\"}} {}", esc(&v.name), f(v));
        }
    }
    family(
        &mut out,
        "hadns_vrrp_rx_dropped_total",
        "counter",
        "Received VRRP packets dropped (addr_list: accepted but mismatching), by reason.",
    );
    for v in &s.vrrp {
        for (ctr, n) in v.counters.rx.iter() {
            let _ = writeln!(
                out,
                "hadns_vrrp_rx_dropped_total{{instance=\"{}\",reason=\"{}\"}} {n}",
                esc(&v.name),
                ctr.name()
            );
        }
    }
    family(
        &mut out,
        "hadns_vrrp_errors_total",
        "counter",
        "VRRP I/O errors, by kind.",
    );
    for v in &s.vrrp {
        let c = &v.counters;
        for (kind, n) in [
            ("send", c.send_errors),
            ("recv", c.recv_errors),
            ("netlink", c.netlink_errors),
        ] {
            let _ = writeln!(
                out,
                "hadns_vrrp_errors_total{{instance=\"{}\",kind=\"{kind}\"}} {n}",
                esc(&v.name)
            );
        }
    }

    family(
        &mut out,
        "hadns_check_up",
        "gauge",
        "1 if the probe is up (after rise/fall).",
    );
    for c in &s.checks {
        let _ = writeln!(
            out,
            "hadns_check_up{{check=\"{}\",target=\"{}\"}} {}",
            esc(&c.name),
            esc(&c.target),
            u8::from(c.up)
        );
    }
    out
}
