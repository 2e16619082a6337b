//! hadns: an authoritative DNS server with health-aware weighted pools, plus
//! (through `hadns-vrrp`) the VRRP engine that keeps the pool's VIPs alive.

pub mod config;
pub mod zones;
pub mod pool;
pub mod health;
pub mod handler;
pub mod server;
pub mod app;
pub mod vrrp_glue;
pub mod stats;
pub mod fastpath;
pub mod control;
pub mod metrics;
