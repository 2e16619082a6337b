//! The `hadns status` client: finds the control endpoint (`--addr`, the
//! `[control] listen` of `--config`, or the default), fetches the status,
//! and with `--config` makes sure the process answering runs that config.

use std::io::{Read, Write};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::config::{default_control_listen, Config, ConfigError};

/// How long `hadns status` waits for the endpoint.
const TIMEOUT: Duration = Duration::from_secs(3);
/// Largest response read (a status of many pools is well below this).
const MAX_RESPONSE: u64 = 64 << 20;

#[derive(Debug, thiserror::Error)]
pub enum StatusError {
    /// Boxed: config errors are large.
    #[error(transparent)]
    Config(Box<ConfigError>),
    #[error("{0} has no fixed control address ([control] {1}); use --addr")]
    NoAddress(PathBuf, &'static str),
    #[error(transparent)]
    Fetch(#[from] FetchError),
    #[error("the control endpoint at {addr} is hadns pid {pid} running {running}, not {wanted}")]
    OtherConfig {
        addr: SocketAddr,
        pid: String,
        running: String,
        wanted: String,
    },
}

/// What `hadns status [--config F] [--addr A] [--json]` prints.
pub fn status(
    config: Option<&Path>,
    addr: Option<SocketAddr>,
    json: bool,
) -> Result<String, StatusError> {
    let path = if json { "/status.json" } else { "/status" };
    let (addr, wanted) = match (addr, config) {
        (Some(a), _) => return Ok(fetch(a, path, TIMEOUT)?),
        (None, None) => return Ok(fetch(default_control_listen(), path, TIMEOUT)?),
        (None, Some(f)) => (control_addr(f)?, f),
    };
    let body = fetch(addr, "/status.json", TIMEOUT)?;
    let v: serde_json::Value = serde_json::from_str(&body)
        .map_err(|e| FetchError::Response(format!("status is not JSON: {e}")))?;
    let running = v["config"].as_str().unwrap_or("?");
    let wanted = std::fs::canonicalize(wanted).unwrap_or_else(|_| wanted.to_path_buf());
    if Path::new(running) != wanted {
        return Err(StatusError::OtherConfig {
            addr,
            pid: v["pid"].to_string(),
            running: running.to_string(),
            wanted: wanted.display().to_string(),
        });
    }
    if json {
        Ok(body)
    } else {
        Ok(fetch(addr, path, TIMEOUT)?)
    }
}

/// The `[control] listen` of config file `f`.
fn control_addr(f: &Path) -> Result<SocketAddr, StatusError> {
    let cfg = Config::load(f).map_err(|e| StatusError::Config(Box::new(e)))?;
    let control = cfg.control.unwrap_or_default();
    if !control.enabled {
        return Err(StatusError::NoAddress(f.into(), "enabled = false"));
    }
    if control.listen.port() == 0 {
        return Err(StatusError::NoAddress(f.into(), "listen has port 0"));
    }
    Ok(control.listen)
}

/// Fetches `path` from a control endpoint: blocking, one request, the body
/// if the status is 200.
pub fn fetch(addr: SocketAddr, path: &str, timeout: Duration) -> Result<String, FetchError> {
    let mut s = std::net::TcpStream::connect_timeout(&addr, timeout)
        .map_err(|e| FetchError::Connect(addr, e))?;
    s.set_read_timeout(Some(timeout)).map_err(FetchError::Io)?;
    s.set_write_timeout(Some(timeout)).map_err(FetchError::Io)?;
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .map_err(FetchError::Io)?;
    let mut raw = Vec::new();
    s.take(MAX_RESPONSE)
        .read_to_end(&mut raw)
        .map_err(FetchError::Io)?;
    let text = String::from_utf8_lossy(&raw);
    let (head, body) = text
        .split_once("\r\n\r\n")
        .ok_or_else(|| FetchError::Response(format!("no HTTP response from {addr}")))?;
    let status = head.lines().next().unwrap_or("");
    if status.split_whitespace().nth(1) != Some("200") {
        return Err(FetchError::Response(format!("{status}: {}", body.trim())));
    }
    Ok(body.to_string())
}

#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    #[error("cannot reach the hadns control endpoint at {0} (is hadns running with [control] there?): {1}")]
    Connect(SocketAddr, std::io::Error),
    #[error("control endpoint: {0}")]
    Io(std::io::Error),
    #[error("control endpoint answered: {0}")]
    Response(String),
}
