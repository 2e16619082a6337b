//! hadns: an authoritative DNS server with health-aware weighted pools, plus
//! (through `hadns-vrrp`) the VRRP engine that keeps the pool's VIPs alive.
//!
//! # Module map
//!
//! How a query is answered, from the data to the wire:
//! - [`zone`]: zone files ([`zone::file`]: reading, `$INCLUDE`, error lines)
//!   into an immutable lookup structure in wire form ([`zone::store`],
//!   [`zone::nodes`]); knows no pools.
//! - [`pool`] (pure): members + weights + health → the answer order or
//!   choice, one atomic counter per query; the pool's domain types.
//! - [`snapshot`]: the zones with the pools overlaid, swapped whole on reload.
//! - [`resolve`] (pure): question + snapshot → an answer plan (CNAME chain,
//!   wildcard, referral, negative answer, the pool to expand). The only walk
//!   of the zone data; both encoders below use it.
//! - [`identity`] (pure): CHAOS TXT `id.server.` & co. and the NSID
//!   payload; [`ede`]: the Extended DNS Errors both encoders send;
//!   [`tsig`] (pure): BADKEY / FORMERR for signed queries (no keys held).
//! - [`handler`]: the full path: hickory's `RequestHandler`, EDNS and
//!   truncation around the plan, the pool expanded per query.
//! - [`fastpath`]: the same plans precompiled into wire bytes (plain names’
//!   RRsets copied from the zone store), served by
//!   batched UDP workers and a bounded TCP server; anything unusual goes to
//!   the handler.
//! - [`par`]: the core count, and work spread over the cores (a zones
//!   folder, a big zone's pieces, the fast path's table).
//! - [`rrl`] (pure): response rate limiting — answer class, fixed-size
//!   bucket table, answer / drop / slip on a passed-in clock;
//!   [`ratelimit`] wires it to both paths (a table per fast-path worker,
//!   one behind a mutex for the full path's UDP answers).
//! - [`server`]: binding (one port-0 rule for UDP+TCP) and hickory's
//!   `Server` when the fast path is off.
//!
//! Around it:
//! - [`config`]: the one TOML file (serde, `deny_unknown_fields`,
//!   `validate()` naming the key and the valid range).
//! - [`health`]: probes (tcp, http, exec) with rise/fall → watch channels.
//! - [`vrrp_glue`]: the `[[vrrp]]` instances with their tracks.
//! - [`wiring`]: each pool member's health from its named sources (probe
//!   by check name, VIP by instance name), one follow task per member,
//!   rebuilt by diff on reload.
//! - [`ops`] (status, control endpoint, metrics), [`stats`]: `hadns status` and Prometheus.
//! - [`fdlimit`]: the open-file limit and the share TCP clients may take.
//! - [`line`](mod@line): DNSPod lines: client network (or ECS) -> line -> that line's pool.
//! - [`pause`]: `hadns pause` / `resume`: the state file and the private Unix socket.
//! - [`privs`], [`service`]: least privilege (users, capabilities) and systemd.
//! - [`keepalived_import`], [`manual`]: `hadns import-keepalived` and the man pages.
//! - [`app`]: the composition root: load, bind (port 0), serve with a
//!   shutdown future, reload (built off the query threads), stop; `run`
//!   adds the process signals.

pub mod app;

// Deployment: systemd readiness and logs, privileges, the config man
// page, keepalived.conf import.
pub mod keepalived_import;
pub mod manual;
pub mod privs;
pub mod service;

pub mod config;
pub mod ede;
pub mod fastpath;
pub mod fdlimit;
pub mod handler;
pub mod health;
pub mod identity;
pub mod line;
pub mod ops;
pub mod par;
pub mod pause;
pub mod pool;
pub mod ratelimit;
pub mod resolve;
pub mod rrl;
pub mod server;
pub mod snapshot;
pub mod stats;
pub mod tsig;
pub mod vrrp_glue;
pub mod wiring;
pub mod zone;

#[cfg(test)]
mod test_rng;
