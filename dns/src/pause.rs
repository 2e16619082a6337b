//! Paused records (DNSPod 暂停) at run time: `hadns pause` / `hadns resume`
//! and the state file that keeps them across SIGHUP and restarts.
//!
//! - A member's pause lives in its [`Pool`] ([`Pool::set_paused`]); this
//!   module decides which members a request names ([`PauseState::change`],
//!   pure) and keeps the state: `<state_dir>/hadns.state.json`, written
//!   whole (temporary file + rename) before a change is applied, so what
//!   is served never runs ahead of what a restart would restore.
//! - The state file's entry wins over the config's `paused = true` (a
//!   member resumed at run time stays resumed after a restart).
//! - Changing state is privileged: requests come over a Unix socket
//!   (`<state_dir>/hadns.sock`, mode 0600, owned by the user hadns runs
//!   as; root or that user can connect), never over the network; each
//!   change is logged with the caller's uid (SO_PEERCRED).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tracing::{debug, info, warn};

use crate::config::Config;
use crate::pool::{MemberValue, Pool};

/// The state file's name inside the state directory.
pub const STATE_FILE: &str = "hadns.state.json";
/// The control socket's name inside the state directory.
pub const SOCKET: &str = "hadns.sock";
/// Largest state file read, and largest request line.
const MAX_STATE: u64 = 16 << 20;
const MAX_REQUEST: usize = 4096;
/// A request must arrive, and the reply leave, within this.
const IO_TIMEOUT: Duration = Duration::from_secs(2);

#[derive(Debug, thiserror::Error)]
pub enum PauseError {
    #[error("{path}: cannot read the pause state: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: not a hadns pause state file: {message}")]
    Parse { path: PathBuf, message: String },
    #[error("{path}: cannot write the pause state: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: control socket: {source}")]
    Socket {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: another hadns serves this control socket")]
    InUse { path: PathBuf },
    #[error("no member {address} in a pool {name}{filter}")]
    NoSuchMember {
        name: String,
        /// The member as asked for (an address or a CNAME target).
        address: String,
        filter: String,
    },
    #[error("bad request: {0}")]
    Request(String),
    /// The server's answer to a refused request.
    #[error("{0}")]
    Refused(String),
}

/// The state directory: `[dns] state_dir` (relative to the config file),
/// default the config file's folder.
pub fn state_dir(cfg: &Config) -> PathBuf {
    let base = cfg.path.parent().unwrap_or_else(|| Path::new("."));
    match &cfg.dns.state_dir {
        Some(d) if d.is_absolute() => d.clone(),
        Some(d) => base.join(d),
        None => base.to_path_buf(),
    }
}

/// One member of one pool: (owner name, type, line, address or target).
type Key = (String, String, String, MemberValue);

fn pool_key(pool: &Pool) -> (String, String, String) {
    let s = pool.spec();
    let line = s.line.as_deref().unwrap_or(crate::line::DEFAULT_NAME);
    (norm_name(&s.name), s.rtype.to_string(), line.to_string())
}

/// "HA.com" and "ha.com." name the same pool.
fn norm_name(n: &str) -> String {
    let n = n.trim().to_ascii_lowercase();
    if n.ends_with('.') {
        n
    } else {
        n + "."
    }
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Entry {
    pool: String,
    #[serde(rename = "type")]
    rtype: String,
    line: String,
    address: MemberValue,
    paused: bool,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    members: Vec<Entry>,
}

/// What `hadns pause` / `resume` ask for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Change {
    pub pause: bool,
    pub name: String,
    /// The member's address, or its target in a CNAME pool.
    pub address: MemberValue,
    /// Only pools of this type (A, AAAA, CNAME); None = any.
    #[serde(default)]
    pub rtype: Option<String>,
    /// Only the pool of this line ("default" = the default line); None = any.
    #[serde(default)]
    pub line: Option<String>,
}

/// The server's reply, one JSON line.
#[derive(Debug, Serialize, Deserialize)]
struct Reply {
    ok: bool,
    message: String,
}

/// The pause state of members, by (pool, type, line, address).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PauseState {
    entries: BTreeMap<Key, bool>,
}

impl PauseState {
    /// Reads a state file; a missing file is an empty state.
    pub fn load(path: &Path) -> Result<PauseState, PauseError> {
        let text = match crate::config::read_bounded(path, MAX_STATE) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Self::default()),
            Err(source) => {
                return Err(PauseError::Read {
                    path: path.into(),
                    source,
                })
            }
        };
        let f: File = serde_json::from_str(&text).map_err(|e| PauseError::Parse {
            path: path.into(),
            message: e.to_string(),
        })?;
        let entries = f
            .members
            .into_iter()
            .map(|e| ((norm_name(&e.pool), e.rtype, e.line, e.address), e.paused))
            .collect();
        Ok(PauseState { entries })
    }

    /// Writes the state file whole: a temporary file, then a rename.
    pub fn save(&self, path: &Path) -> Result<(), PauseError> {
        let f = File {
            members: self
                .entries
                .iter()
                .map(|((pool, rtype, line, address), &paused)| Entry {
                    pool: pool.clone(),
                    rtype: rtype.clone(),
                    line: line.clone(),
                    address: address.clone(),
                    paused,
                })
                .collect(),
        };
        let text = serde_json::to_string_pretty(&f).unwrap_or_default() + "\n";
        let err = |source| PauseError::Write {
            path: path.into(),
            source,
        };
        let tmp = path.with_extension("json.tmp");
        std::fs::write(&tmp, text).map_err(err)?;
        std::fs::rename(&tmp, path).map_err(err)
    }

    /// Sets every member with an entry to its state (others keep the
    /// config's `paused`).
    pub fn apply(&self, pools: &[Arc<Pool>]) {
        for pool in pools {
            let (name, rtype, line) = pool_key(pool);
            for (j, m) in pool.spec().members.iter().enumerate() {
                let key = (name.clone(), rtype.clone(), line.clone(), m.value.clone());
                if let Some(&p) = self.entries.get(&key) {
                    pool.set_paused(j, p);
                }
            }
            pool.settle();
        }
    }

    /// Records `change` for every member of `pools` it names; returns
    /// (pool index, member index) of each. Pure: the pools are not touched.
    pub fn change(
        &mut self,
        pools: &[Arc<Pool>],
        change: &Change,
    ) -> Result<Vec<(usize, usize)>, PauseError> {
        let name = norm_name(&change.name);
        let rtype = change.rtype.as_ref().map(|t| t.to_ascii_uppercase());
        let mut hits = Vec::new();
        for (i, pool) in pools.iter().enumerate() {
            let (n, t, l) = pool_key(pool);
            if n != name
                || rtype.as_ref().is_some_and(|r| *r != t)
                || change.line.as_ref().is_some_and(|x| *x != l)
            {
                continue;
            }
            for (j, m) in pool.spec().members.iter().enumerate() {
                if m.value == change.address {
                    self.entries.insert(
                        (n.clone(), t.clone(), l.clone(), m.value.clone()),
                        change.pause,
                    );
                    hits.push((i, j));
                }
            }
        }
        if hits.is_empty() {
            let mut filter = String::new();
            if let Some(t) = &rtype {
                filter += &format!(" of type {t}");
            }
            if let Some(l) = &change.line {
                filter += &format!(" on line {l:?}");
            }
            return Err(PauseError::NoSuchMember {
                name,
                address: change.address.to_string(),
                filter,
            });
        }
        Ok(hits)
    }
}

/// The running server's side: the state, its file, and the lock that
/// orders changes and reloads.
#[derive(Debug)]
pub struct PauseCtl {
    state: Mutex<PauseState>,
    path: PathBuf,
}

impl PauseCtl {
    /// The state of `cfg`'s state directory.
    pub fn open(cfg: &Config) -> Result<PauseCtl, PauseError> {
        let path = state_dir(cfg).join(STATE_FILE);
        Ok(PauseCtl {
            state: Mutex::new(PauseState::load(&path)?),
            path,
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, PauseState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Applies the state to `pools` (a reloaded snapshot's).
    pub fn apply(&self, pools: &[Arc<Pool>]) {
        self.lock().apply(pools);
    }

    /// Carries out a request from `uid` against the pools served now:
    /// persisted first, then applied, then logged.
    pub fn request(
        &self,
        pools: impl Fn() -> Vec<Arc<Pool>>,
        change: &Change,
        uid: Option<u32>,
    ) -> Result<String, PauseError> {
        let mut state = self.lock();
        let now = pools();
        let mut next = state.clone();
        let hits = next.change(&now, change)?;
        if next != *state {
            next.save(&self.path)?;
            *state = next;
        }
        let verb = if change.pause { "paused" } else { "resumed" };
        let who = uid.map_or("unknown".to_string(), |u| u.to_string());
        let mut out = Vec::new();
        for (i, j) in hits {
            let pool = &now[i];
            let changed = pool.set_paused(j, change.pause);
            // Answered only once no answer serves a paused member.
            pool.settle();
            let (name, rtype, line) = pool_key(pool);
            let what = format!("{name} {rtype} line {line} member {}", change.address);
            if changed {
                info!(uid = %who, pool = %name, %rtype, %line, member = %change.address, "pool member {verb}");
                out.push(format!("{verb} {what}"));
            } else {
                out.push(format!("{what} was already {verb}"));
            }
        }
        // a reload may have swapped the pools meanwhile: apply to the new ones
        let after = pools();
        if !after.iter().zip(&now).all(|(a, b)| Arc::ptr_eq(a, b)) || after.len() != now.len() {
            state.apply(&after);
        }
        Ok(out.join("\n"))
    }
}

/// Binds the control socket at `path` (mode 0600). A socket file left by a
/// hadns that is gone is replaced; one that answers is an error.
pub fn bind(path: &Path) -> Result<tokio::net::UnixListener, PauseError> {
    use std::os::unix::fs::{FileTypeExt, PermissionsExt};
    let err = |source| PauseError::Socket {
        path: path.into(),
        source,
    };
    if let Ok(meta) = std::fs::symlink_metadata(path) {
        if meta.file_type().is_socket() {
            if std::os::unix::net::UnixStream::connect(path).is_ok() {
                return Err(PauseError::InUse { path: path.into() });
            }
            std::fs::remove_file(path).map_err(err)?;
        }
    }
    // Bound inside a private (0700) directory, made 0600, then moved into
    // place: no moment where another user may connect.
    use std::os::unix::fs::DirBuilderExt;
    let dir = path.with_extension(format!("new.{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::DirBuilder::new()
        .mode(0o700)
        .create(&dir)
        .map_err(err)?;
    let tmp = dir.join(SOCKET);
    let bound = std::os::unix::net::UnixListener::bind(&tmp).and_then(|l| {
        std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o600))?;
        std::fs::rename(&tmp, path)?;
        Ok(l)
    });
    let _ = std::fs::remove_dir_all(&dir);
    let l = bound.map_err(err)?;
    l.set_nonblocking(true).map_err(err)?;
    tokio::net::UnixListener::from_std(l).map_err(err)
}

/// Serves pause/resume requests on `listener` until dropped: one JSON line
/// in, one JSON line out per connection.
pub async fn serve(
    listener: tokio::net::UnixListener,
    ctl: Arc<PauseCtl>,
    pools: impl Fn() -> Vec<Arc<Pool>> + Clone + Send + Sync + 'static,
) {
    if let Ok(a) = listener.local_addr() {
        if let Some(p) = a.as_pathname() {
            info!("pause control socket on {}", p.display());
        }
    }
    loop {
        let (stream, _) = match listener.accept().await {
            Ok(s) => s,
            Err(e) => {
                warn!(error = %e, "pause control socket: accept failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let (ctl, pools) = (Arc::clone(&ctl), pools.clone());
        tokio::spawn(async move {
            if let Err(e) = connection(stream, &ctl, pools).await {
                debug!(error = %e, "pause control connection");
            }
        });
    }
}

async fn connection(
    mut stream: tokio::net::UnixStream,
    ctl: &PauseCtl,
    pools: impl Fn() -> Vec<Arc<Pool>>,
) -> std::io::Result<()> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let uid = stream.peer_cred().ok().map(|c| c.uid());
    let mut buf = Vec::with_capacity(256);
    let read = async {
        let mut chunk = [0u8; 512];
        while !buf.contains(&b'\n') && buf.len() <= MAX_REQUEST {
            let n = stream.read(&mut chunk).await?;
            if n == 0 {
                break;
            }
            buf.extend_from_slice(&chunk[..n]);
        }
        Ok::<_, std::io::Error>(())
    };
    let reply = match tokio::time::timeout(IO_TIMEOUT, read).await {
        Err(_) => Err(PauseError::Request("request too slow".into())),
        Ok(Err(e)) => return Err(e),
        Ok(Ok(())) if buf.len() > MAX_REQUEST => {
            Err(PauseError::Request("request too long".into()))
        }
        Ok(Ok(())) => serde_json::from_slice::<Change>(buf.trim_ascii())
            .map_err(|e| PauseError::Request(e.to_string()))
            .and_then(|c| ctl.request(&pools, &c, uid)),
    };
    if let Err(e) = &reply {
        let who = uid.map_or("unknown".to_string(), |u| u.to_string());
        warn!(uid = %who, "pause request refused: {e}");
    }
    let reply = match reply {
        Ok(message) => Reply { ok: true, message },
        Err(e) => Reply {
            ok: false,
            message: e.to_string(),
        },
    };
    let line = serde_json::to_string(&reply).unwrap_or_default() + "\n";
    tokio::time::timeout(IO_TIMEOUT, stream.write_all(line.as_bytes()))
        .await
        .unwrap_or_else(|_| Err(std::io::ErrorKind::TimedOut.into()))
}

/// The client side (`hadns pause` / `resume`): sends `change` to the
/// socket of `cfg`'s state directory, returns the server's message.
pub fn send(socket: &Path, change: &Change) -> Result<String, PauseError> {
    use std::io::{Read, Write};
    let err = |source| PauseError::Socket {
        path: socket.into(),
        source,
    };
    let mut s = std::os::unix::net::UnixStream::connect(socket).map_err(err)?;
    s.set_read_timeout(Some(IO_TIMEOUT * 2)).map_err(err)?;
    s.set_write_timeout(Some(IO_TIMEOUT)).map_err(err)?;
    let line = serde_json::to_string(change).unwrap_or_default() + "\n";
    s.write_all(line.as_bytes()).map_err(err)?;
    let mut out = Vec::new();
    s.take(MAX_STATE).read_to_end(&mut out).map_err(err)?;
    let reply: Reply = serde_json::from_slice(out.trim_ascii())
        .map_err(|e| PauseError::Request(format!("unreadable reply: {e}")))?;
    if reply.ok {
        Ok(reply.message)
    } else {
        Err(PauseError::Refused(reply.message))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pool::test_pool as pool;
    use crate::pool::Selection;

    fn change(pause: bool, name: &str, addr: &str, line: Option<&str>) -> Change {
        Change {
            pause,
            name: name.into(),
            address: addr.parse().unwrap(),
            rtype: None,
            line: line.map(String::from),
        }
    }

    #[test]
    fn change_names_members_by_pool_type_line_and_address() {
        let pools = vec![
            pool("ha.com.", None, &["10.0.0.1", "10.0.0.2"]),
            pool("ha.com.", Some("internal"), &["10.0.0.2"]),
            pool("other.com.", None, &["10.0.0.2"]),
        ];
        let mut s = PauseState::default();
        let hits = s
            .change(&pools, &change(true, "HA.com", "10.0.0.2", None))
            .unwrap();
        assert_eq!(hits, vec![(0, 1), (1, 0)], "every line unless one is named");
        let mut s = PauseState::default();
        let hits = s
            .change(
                &pools,
                &change(true, "ha.com.", "10.0.0.2", Some("internal")),
            )
            .unwrap();
        assert_eq!(hits, vec![(1, 0)]);
        let e = s
            .change(&pools, &change(true, "ha.com.", "10.0.0.9", None))
            .unwrap_err();
        assert!(
            e.to_string()
                .contains("no member 10.0.0.9 in a pool ha.com."),
            "{e}"
        );
        let mut c = change(true, "ha.com.", "10.0.0.1", None);
        c.rtype = Some("aaaa".into());
        assert!(s.change(&pools, &c).is_err(), "type filter");
    }

    #[test]
    fn state_file_round_trip_and_apply() {
        let dir = std::env::temp_dir().join(format!("hadns-pause-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join(STATE_FILE);
        let _ = std::fs::remove_file(&path);
        assert_eq!(PauseState::load(&path).unwrap(), PauseState::default());
        let pools = vec![pool("ha.com.", None, &["10.0.0.1", "10.0.0.2"])];
        let mut s = PauseState::default();
        s.change(&pools, &change(true, "ha.com.", "10.0.0.2", None))
            .unwrap();
        s.save(&path).unwrap();
        let back = PauseState::load(&path).unwrap();
        assert_eq!(back, s);
        // a fresh pool (a restart) gets the pause back
        let fresh = vec![pool("ha.com.", None, &["10.0.0.1", "10.0.0.2"])];
        back.apply(&fresh);
        assert_eq!(fresh[0].paused(), vec![false, true]);
        assert_eq!(fresh[0].schedule().answer(0), Selection::Members(&[0]));
        // a broken file is an error naming it
        std::fs::write(&path, "{\"members\": 3}").unwrap();
        let e = PauseState::load(&path).unwrap_err();
        assert!(e.to_string().contains(STATE_FILE), "{e}");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
