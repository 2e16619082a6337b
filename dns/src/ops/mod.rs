//! Operating a running hadns: what `hadns status` and Prometheus see.
//!
//! - [`status`]: [`status::StatusSource`] reads the live process into one
//!   [`status::Status`] (serde JSON for `--json`, text for `hadns status`);
//! - [`metrics`]: the Prometheus text of a `Status` (one writer);
//! - [`control`]: the HTTP endpoints serving both;
//! - [`client`]: the `hadns status` command's side.
//!
//! Imports go one way: control -> metrics -> status.

pub mod client;
pub mod control;
pub mod metrics;
pub mod status;
