//! hadns: an authoritative DNS server with health-aware weighted pools, plus
//! (through `hadns-vrrp`) the VRRP engine that keeps the pool's VIPs alive.

pub mod app;
pub mod config;
pub mod control;
pub mod fastpath;
pub mod handler;
pub mod health;
pub mod keepalived_import;
pub mod manual;
pub mod metrics;
pub mod pool;
pub mod privs;
pub mod server;
pub mod service;
pub mod stats;
pub mod vrrp_glue;
pub mod zones;
