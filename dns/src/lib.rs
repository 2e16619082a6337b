//! hadns: an authoritative DNS server with health-aware weighted pools, plus
//! (through `hadns-vrrp`) the VRRP engine that keeps the pool's VIPs alive.

pub mod app;

// Deployment: systemd readiness and logs, privileges, the config man
// page, keepalived.conf import.
pub mod keepalived_import;
pub mod manual;
pub mod privs;
pub mod service;

pub mod config;
pub mod control;
pub mod fastpath;
pub mod handler;
pub mod health;
pub mod metrics;
pub mod pool;
pub mod server;
pub mod stats;
pub mod vrrp_glue;
pub mod zones;
