//! The config reference, rendered as the hadns.toml(5) man page
//! (`hadns generate man DIR`). One table, next to the code, so the page and
//! `crate::config` move together: a test checks every section here exists
//! in the config structs and the other way round.

/// (section, key, default, meaning).
pub const KEYS: &[(&str, &str, &str, &str)] = &[
    ("dns", "listen", "[\"127.0.0.1:5353\"]", "Addresses DNS is served on, UDP and TCP. Use each VIP with port 53, or 0.0.0.0:53 / [::]:53 (answers come from the address queried)."),
    ("dns", "zones", "\"zones\"", "Folder of *.zone files (RFC 1035), relative to the config file."),
    ("dns", "max_udp_size", "1232", "Largest UDP response to EDNS clients."),
    ("dns", "tcp_timeout", "\"10s\"", "100ms-1h: a whole TCP message must arrive within it (a trickle of bytes does not reset it); also the limit for a write to drain."),
    ("dns", "fast_path", "true", "Batched UDP/TCP fast path; false = hickory's own listener."),
    ("dns", "workers", "0", "Fast-path threads per listen address; 0 = one per core; at most 256."),
    ("dns", "tcp_max_connections", "", "Concurrent TCP connections; default half the open-file limit (raised to the hard limit at start), never leaving fewer than 256 descriptors."),
    ("dns", "tcp_max_per_client", "128", "Concurrent TCP connections from one client address."),
    ("dns", "identity", "", "Which host answered: CH TXT id.server. / hostname.bind. and the NSID text; default the host name."),
    ("dns", "version", "", "CH TXT version.bind. / version.server.; absent = hidden (REFUSED), like NSD's hide-version."),
    ("dns", "nsid", "false", "NSID (RFC 5001): false, true (= identity) or a text; `dig +nsid` shows it."),
    ("dns", "ecs", "false", "Take the client's line from EDNS Client Subnet (RFC 7871) when a query carries it; the reply echoes it with the scope of the answer."),
    ("dns", "state_dir", "", "Folder of the `hadns pause` state file (hadns.state.json) and its control socket (hadns.sock, mode 0600); relative to the config file; default the config file's folder (the package sets /var/lib/hadns)."),
    ("pool", "name", "", "The pool's name, e.g. \"ha.com.\"; must be inside a zone."),
    ("pool", "type", "\"A\"", "A, AAAA or CNAME (one target per answer, for every query type at the name, chased inside our zones; the name may have no other records or pools)."),
    ("pool", "mode", "\"equal\"", "equal (every healthy member, rotated) or weighted (smooth weighted round robin)."),
    ("pool", "ttl", "60", "TTL of the answers."),
    ("pool", "answers", "1", "weighted: members per answer."),
    ("pool", "when_all_down", "\"all\"", "all (fail open), none (NODATA) or servfail."),
    ("pool", "members", "", "[{ address (A/AAAA) or target (CNAME: a domain name), weight = 1 (0-100), check = \"NAME\", vrrp = \"INSTANCE\", paused = false }]; a paused member is never answered and leaves the weights (`hadns pause` / `resume` change it at run time)."),
    ("pool", "line", "", "The [[line]] whose clients this pool answers; absent = the default line. Several pools may share a name and type on different lines; one of them must be on the default line."),
    ("line", "name", "", "A line (DNSPod custom line): clients by network. \"default\" is reserved."),
    ("line", "networks", "[]", "Client networks, e.g. [\"10.0.0.0/8\", \"fd00::/8\"]; the longest prefix over all lines decides; a network may be in one line only."),
    ("line", "include", "[]", "A line group instead: the union of these lines; a line without its own pool gets the most specific group's pool, else the default line's."),
    ("check.NAME", "type", "", "tcp, http or exec."),
    ("check.NAME", "port", "", "tcp/http: probe each member's address on this port."),
    ("check.NAME", "target", "", "tcp/http: probe this fixed \"host:port\" (or an IP address with port) instead; required for a check of a CNAME member (a name has no address to probe)."),
    ("check.NAME", "command", "", "exec: argv, healthy on exit 0 within timeout; runs as [process] script_user without capabilities."),
    ("check.NAME", "path", "\"/\"", "http: request path."),
    ("check.NAME", "host", "", "http: Host header."),
    ("check.NAME", "expect_status", "200", "http: expected status."),
    ("check.NAME", "interval", "\"1s\"", "Time between probes."),
    ("check.NAME", "timeout", "\"500ms\"", "Probe timeout. A check starts unknown: DNS answers once its first probe finished."),
    ("check.NAME", "rise", "2", "Successes in a row to go up."),
    ("check.NAME", "fall", "2", "Failures in a row to go down."),
    ("vrrp", "name", "", "Instance name (keepalived vrrp_instance)."),
    ("vrrp", "interface", "", "Interface for adverts and VIPs."),
    ("vrrp", "vrid", "", "virtual_router_id, 1-255."),
    ("vrrp", "priority", "100", "1-254; 255 = address owner."),
    ("vrrp", "version", "3", "VRRP version, 3 or 2."),
    ("vrrp", "advert_interval", "\"1s\"", "v3: 10ms steps; v2: whole seconds."),
    ("vrrp", "preempt", "true", "false = keepalived nopreempt."),
    ("vrrp", "preempt_delay", "0", "Wait before preempting."),
    ("vrrp", "accept", "true", "Accept mode: services on the VIP answer."),
    ("vrrp", "addresses", "", "VIPs with prefix, e.g. [\"192.168.56.100/24\"]."),
    ("vrrp", "unicast_peers", "[]", "Unicast instead of multicast."),
    ("vrrp", "source_address", "", "Advert source (keepalived unicast_src_ip)."),
    ("vrrp", "auth_pass", "", "v2 only: simple password."),
    ("vrrp", "v3_checksum", "\"pseudo-header\"", "pseudo-header (keepalived, FRR) or rfc9568."),
    ("vrrp", "track", "[]", "[{ check = \"NAME\", weight }]: keepalived track_script semantics."),
    ("vrrp", "track_interface", "[]", "[{ interface, weight }]."),
    ("vrrp", "notify", "", "Script called as: notify INSTANCE NAME STATE PRIORITY. A string split at spaces or an argv array; runs as script_user."),
    ("vrrp", "notify_master", "", "Script run on entering MASTER (after notify), keepalived semantics."),
    ("vrrp", "notify_backup", "", "Script run on entering BACKUP."),
    ("vrrp", "notify_fault", "", "Script run on entering FAULT (failed track, or a VIP that could not be added)."),
    ("vrrp", "notify_stop", "", "Script run when the instance stops."),
    ("vrrp", "garp_refresh", "0", "Re-send gratuitous ARP while master."),
    ("vrrp", "vip_lifetime", "\"auto\"", "Netlink lifetime of the VIPs, renewed while master, outlasting the peer's takeover; 0 = permanent (keepalived)."),
    ("control", "enabled", "true", "The `hadns status` endpoint."),
    ("control", "listen", "\"127.0.0.1:5380\"", "Loopback only."),
    ("metrics", "listen", "", "Prometheus /metrics; absent = off."),
    ("process", "user", "", "Started as root: switch to this user after binding, keeping only CAP_NET_RAW + CAP_NET_ADMIN (with [[vrrp]]) or nothing."),
    ("process", "group", "", "Group for user (default: its primary group)."),
    ("process", "script_user", "", "User of exec checks and notify scripts (default: user); they never get capabilities."),
    ("log", "level", "\"info,hickory_server=warn\"", "A level or tracing filter. RUST_LOG overrides it, -v / -vv override both."),
    ("log", "format", "\"text\"", "text, or json (one object per line). Under systemd (JOURNAL_STREAM) text lines carry no timestamp."),
    ("rrl", "enabled", "true", "Response rate limiting of UDP answers (BIND/Knot/NSD RRL semantics)."),
    ("rrl", "rate", "200", "Responses per second per (client prefix, answer class)."),
    ("rrl", "slip", "2", "Every slip-th limited response goes out truncated (TC, the client retries over TCP); 0 = drop all."),
    ("rrl", "ipv4_prefix", "24", "IPv4 clients are grouped by this prefix."),
    ("rrl", "ipv6_prefix", "56", "IPv6 clients are grouped by this prefix."),
    ("rrl", "table_size", "65536", "Buckets per UDP worker, rounded up to a power of two (memory is bounded by it)."),
    ("rrl", "whitelist", "[\"127.0.0.0/8\", \"::1/128\"]", "Client networks never limited."),
];

fn esc(s: &str) -> String {
    s.replace('\\', "\\\\").replace('-', "\\-")
}

/// hadns.toml(5) in roff.
pub fn config_man_page() -> String {
    let mut out = String::new();
    out.push_str(&format!(
        ".TH HADNS.TOML 5 \"\" \"hadns {}\" \"File Formats\"\n",
        env!("CARGO_PKG_VERSION")
    ));
    out.push_str(".SH NAME\nhadns.toml \\- configuration of hadns(8)\n");
    out.push_str(".SH SYNOPSIS\n/etc/hadns/hadns.toml\n");
    out.push_str(".SH DESCRIPTION\nOne TOML file. Unknown keys are errors; `hadns check` names the file, the key and what was expected. Durations are \"500ms\", \"1s\", \"2m\" or whole seconds. SIGHUP reloads the file and the zones.\n");
    let mut section = "";
    for (sec, key, default, text) in KEYS {
        if *sec != section {
            section = sec;
            let head = match *sec {
                "pool" | "vrrp" | "line" => format!("[[{sec}]]"),
                s => format!("[{s}]"),
            };
            out.push_str(&format!(".SH {}\n", esc(&head)));
        }
        out.push_str(&format!(".TP\n.B {}", esc(key)));
        if !default.is_empty() {
            out.push_str(&format!(" \" = {}\"", esc(default).replace('"', "\\(dq")));
        }
        out.push('\n');
        out.push_str(&esc(text));
        out.push('\n');
    }
    out.push_str(".SH FILES\n/etc/hadns/hadns.toml, /etc/hadns/zones/*.zone, /lib/systemd/system/hadns.service, /usr/lib/sysctl.d/60\\-hadns.conf\n");
    out.push_str(".SH SEE ALSO\nhadns(8), keepalived.conf(5)\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_key_of_the_table_parses_as_a_config_key() {
        // Each documented scalar key is accepted in its section (deny_unknown_fields
        // would reject a renamed one).
        for (sec, key, default, _) in KEYS {
            if default.is_empty() || sec.contains('.') || matches!(*sec, "pool" | "vrrp" | "line") {
                continue;
            }
            let text = format!("[{sec}]\n{key} = {default}\n");
            let r = crate::config::Config::from_toml(&text, std::path::Path::new("t.toml"));
            assert!(r.is_ok(), "{sec}.{key}: {:?}", r.err());
        }
    }

    #[test]
    fn page_has_every_section() {
        let page = config_man_page();
        for s in [
            "[dns]",
            "[[pool]]",
            "[[vrrp]]",
            "[[line]]",
            "[process]",
            "[log]",
            "[rrl]",
            "[control]",
        ] {
            assert!(page.contains(&format!(".SH {s}")), "{s}");
        }
    }
}
