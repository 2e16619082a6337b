//! Operating a running hadns: what `hadns status` and Prometheus see.
//!
//! - [`status`]: [`status::StatusSource`] reads the live process into one
//!   [`status::Status`] (serde JSON for `--json`, text for `hadns status`);
//! - [`metrics`]: the Prometheus text of a `Status` (one writer);
//! - [`control`]: the HTTP endpoints serving both, and the `hadns status`
//!   client.
//!
//! Imports go one way: control -> metrics -> status.

pub mod control;
pub mod metrics;
pub mod status;
