//! Least privilege: `[process] user/group` and the scripts' user.
//!
//! Started as root with `[process] user = "hadns"`, [`become_user`] (called
//! in `main`, before any thread exists, so every thread inherits it) switches
//! to that user and keeps only the capabilities the start needs: binding a
//! port below 1024 (CAP_NET_BIND_SERVICE) and, with `[[vrrp]]` instances,
//! raw sockets and address changes (CAP_NET_RAW, CAP_NET_ADMIN). Once every
//! socket is bound, [`narrow`] lowers every thread to CAP_NET_RAW +
//! CAP_NET_ADMIN (VRRP) or nothing. Started by systemd as `User=hadns` with
//! `AmbientCapabilities=`, only [`narrow`] runs.
//!
//! Exec health checks and notify scripts run through [`script_command`] /
//! [`ScriptUser::apply`]: as the script user, with no capabilities (the
//! ambient set is cleared before `execve`).
//!
//! [`missing_capability`] turns a permission error into the capability to
//! grant.

use std::collections::HashSet;
use std::io;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use caps::{CapSet, Capability, CapsHashSet};
use serde::Deserialize;

use crate::config::Config;

/// `[process]`: least privilege (see `crate::privs`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProcessConfig {
    /// Started as root: switch to this user once the sockets are bound,
    /// keeping only CAP_NET_RAW + CAP_NET_ADMIN (with `[[vrrp]]`) or nothing.
    #[serde(default)]
    pub user: Option<String>,
    /// Group for `user` (default: its primary group).
    #[serde(default)]
    pub group: Option<String>,
    /// Exec checks and notify scripts run as this user, with no
    /// capabilities (keepalived's `script_user`; default: `user`).
    #[serde(default)]
    pub script_user: Option<String>,
}

/// Why the privilege change failed.
#[derive(Debug, thiserror::Error)]
pub enum PrivError {
    #[error("[process] {key}: no such {what} {name:?} on this host (create it, e.g. `useradd --system --no-create-home --shell /usr/sbin/nologin hadns`)")]
    NoSuchName {
        key: &'static str,
        what: &'static str,
        name: String,
    },
    #[error("[process] {key}: cannot look up {name:?}: {source}")]
    Lookup {
        key: &'static str,
        name: String,
        source: nix::Error,
    },
    #[error("cannot switch to user {user} ({step}): {source}")]
    Switch {
        user: String,
        step: &'static str,
        source: nix::Error,
    },
    #[error("cannot set capabilities ({step}): {source}")]
    Caps {
        step: &'static str,
        source: caps::errors::CapsError,
    },
    #[error("[[vrrp]] needs {cap} to {needed_for}, and this process does not have it")]
    Missing {
        cap: &'static str,
        needed_for: &'static str,
    },
    #[error("cannot lower the capabilities of thread {tid}: still {caps} after 2s")]
    Thread { tid: i32, caps: String },
    #[error("cannot lower the capabilities of the other threads: {0}")]
    Broadcast(io::Error),
}

/// A resolved user: uid, primary (or configured) gid, and its name for logs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    pub name: String,
    pub uid: u32,
    pub gid: u32,
}

fn lookup_user(key: &'static str, name: &str) -> Result<nix::unistd::User, PrivError> {
    nix::unistd::User::from_name(name)
        .map_err(|source| PrivError::Lookup {
            key,
            name: name.to_string(),
            source,
        })?
        .ok_or_else(|| PrivError::NoSuchName {
            key,
            what: "user",
            name: name.to_string(),
        })
}

fn lookup_group(name: &str) -> Result<u32, PrivError> {
    let g = nix::unistd::Group::from_name(name)
        .map_err(|source| PrivError::Lookup {
            key: "group",
            name: name.to_string(),
            source,
        })?
        .ok_or_else(|| PrivError::NoSuchName {
            key: "group",
            what: "group",
            name: name.to_string(),
        })?;
    Ok(g.gid.as_raw())
}

/// `[process] user` (+ `group`) resolved against this host's user database.
pub fn process_identity(cfg: &Config) -> Result<Option<Identity>, PrivError> {
    let Some(name) = &cfg.process.user else {
        return Ok(None);
    };
    let u = lookup_user("user", name)?;
    let gid = match &cfg.process.group {
        Some(g) => lookup_group(g)?,
        None => u.gid.as_raw(),
    };
    Ok(Some(Identity {
        name: name.clone(),
        uid: u.uid.as_raw(),
        gid,
    }))
}

/// The user exec checks and notify scripts run as: `[process] script_user`,
/// else `[process] user`, else whoever hadns runs as.
pub fn script_identity(cfg: &Config) -> Result<Option<Identity>, PrivError> {
    match &cfg.process.script_user {
        Some(name) => {
            let u = lookup_user("script_user", name)?;
            Ok(Some(Identity {
                name: name.clone(),
                uid: u.uid.as_raw(),
                gid: u.gid.as_raw(),
            }))
        }
        None => process_identity(cfg),
    }
}

/// The capabilities hadns needs while it binds (`start = true`) and for
/// the rest of its life (`start = false`).
pub fn needed(cfg: &Config, start: bool) -> CapsHashSet {
    let mut set = HashSet::new();
    if !cfg.vrrp.is_empty() {
        set.insert(Capability::CAP_NET_RAW);
        set.insert(Capability::CAP_NET_ADMIN);
    }
    if start {
        let mut ports: Vec<u16> = cfg.dns.listen.iter().map(|a| a.port()).collect();
        if let Some(c) = cfg.control.as_ref().filter(|c| c.enabled) {
            ports.push(c.listen.port());
        }
        if let Some(m) = &cfg.metrics {
            ports.push(m.listen.port());
        }
        if ports.iter().any(|&p| p != 0 && p < 1024) {
            set.insert(Capability::CAP_NET_BIND_SERVICE);
        }
    }
    set
}

/// Started as root with `[process] user`: switch to that user (and group)
/// keeping only `keep`. Call before any other thread exists: the uid change
/// and the capability sets are then inherited by every thread. Does nothing
/// when `who` is `None` or hadns is not root.
pub fn become_user(who: Option<&Identity>, keep: &CapsHashSet) -> Result<(), PrivError> {
    let Some(who) = who else { return Ok(()) };
    if !nix::unistd::geteuid().is_root() {
        tracing::warn!(
            user = %who.name,
            "[process] user is set but hadns was not started as root: running as uid {}",
            nix::unistd::getuid()
        );
        return Ok(());
    }
    let caps_err = |step| move |source| PrivError::Caps { step, source };
    let switch = |step| {
        let user = who.name.clone();
        move |source| PrivError::Switch { user, step, source }
    };
    // The bounding set caps what any later exec (or a bug) could regain.
    let bounding = caps::read(None, CapSet::Bounding).map_err(caps_err("bounding set"))?;
    for cap in bounding {
        if !keep.contains(&cap) {
            caps::drop(None, CapSet::Bounding, cap).map_err(caps_err("bounding set"))?;
        }
    }
    caps::securebits::set_keepcaps(true).map_err(caps_err("keepcaps"))?;
    let gid = nix::unistd::Gid::from_raw(who.gid);
    nix::unistd::setgroups(&[gid]).map_err(switch("setgroups"))?;
    nix::unistd::setgid(gid).map_err(switch("setgid"))?;
    nix::unistd::setuid(nix::unistd::Uid::from_raw(who.uid)).map_err(switch("setuid"))?;
    caps::securebits::set_keepcaps(false).map_err(caps_err("keepcaps"))?;
    caps::clear(None, CapSet::Ambient).map_err(caps_err("ambient"))?;
    caps::clear(None, CapSet::Inheritable).map_err(caps_err("inheritable"))?;
    caps::set(None, CapSet::Permitted, keep).map_err(caps_err("permitted"))?;
    caps::set(None, CapSet::Effective, keep).map_err(caps_err("effective"))?;
    Ok(())
}

/// Fails at start, before anything is bound, when `[[vrrp]]` instances
/// exist but the capabilities they need later are not effective (the VIPs
/// are only added when an instance becomes master, long after the start).
pub fn preflight(cfg: &Config) -> Result<(), PrivError> {
    if cfg.vrrp.is_empty() {
        return Ok(());
    }
    for (cap, name, needed_for) in [
        (
            Capability::CAP_NET_RAW,
            "CAP_NET_RAW",
            "send and receive adverts (raw sockets) and gratuitous ARP",
        ),
        (
            Capability::CAP_NET_ADMIN,
            "CAP_NET_ADMIN",
            "add and remove the VIPs",
        ),
    ] {
        // An unreadable set is not proof of absence: the operation itself
        // will report it.
        if let Ok(false) = caps::has_cap(None, CapSet::Effective, cap) {
            return Err(PrivError::Missing {
                cap: name,
                needed_for,
            });
        }
    }
    Ok(())
}

/// Whether [`narrow`] should run: hadns dropped to `[process] user`, or was
/// started as a non-root user (systemd `User=` with ambient capabilities).
/// Root without `[process] user` keeps everything, as before.
pub fn should_narrow(cfg: &Config) -> bool {
    cfg.process.user.is_some() || !nix::unistd::geteuid().is_root()
}

/// Lowers every thread of this process to `keep` (effective and permitted;
/// inheritable and ambient emptied). Capabilities are per thread on Linux,
/// and the tokio workers already run: each other thread gets a signal whose
/// handler lowers its own sets (what glibc does for setuid). Returns once
/// /proc shows every thread lowered.
pub fn narrow(keep: &CapsHashSet) -> Result<(), PrivError> {
    let bits = keep.iter().fold(0u64, |b, c| b | c.bitmask());
    TARGET.store(bits, std::sync::atomic::Ordering::SeqCst);
    install_handler().map_err(PrivError::Broadcast)?;
    // This thread first, the same way the others do it.
    capset_self(bits).map_err(PrivError::Broadcast)?;
    let pid = std::process::id() as i32;
    let deadline = Instant::now() + Duration::from_secs(2);
    loop {
        let mut pending = None;
        for (tid, prm, inh) in threads().map_err(PrivError::Broadcast)? {
            if prm & !bits != 0 || inh != 0 {
                pending = Some((tid, prm));
                // SAFETY: tgkill with our own pid and a tid read from
                // /proc/self/task; the signal has a handler installed above.
                unsafe {
                    libc::syscall(libc::SYS_tgkill, pid, tid, notify_signal());
                }
            }
        }
        let Some((tid, prm)) = pending else {
            return Ok(());
        };
        if Instant::now() > deadline {
            return Err(PrivError::Thread {
                tid,
                caps: format!("{prm:#x}"),
            });
        }
        std::thread::sleep(Duration::from_millis(2));
    }
}

static TARGET: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

fn notify_signal() -> libc::c_int {
    libc::SIGRTMIN() + 4
}

#[repr(C)]
struct CapHeader {
    version: u32,
    pid: i32,
}

#[repr(C)]
#[derive(Clone, Copy)]
struct CapData {
    effective: u32,
    permitted: u32,
    inheritable: u32,
}

/// capset(2) for the calling thread: effective = permitted = `bits`,
/// inheritable (and so ambient) empty. Async-signal-safe: one syscall.
fn capset_self(bits: u64) -> io::Result<()> {
    let mut hdr = CapHeader {
        version: 0x2008_0522, // _LINUX_CAPABILITY_VERSION_3
        pid: 0,
    };
    let lo = bits as u32;
    let hi = (bits >> 32) as u32;
    let data = [
        CapData {
            effective: lo,
            permitted: lo,
            inheritable: 0,
        },
        CapData {
            effective: hi,
            permitted: hi,
            inheritable: 0,
        },
    ];
    // SAFETY: header and two data structs of the v3 layout, alive for the call.
    let rc = unsafe { libc::syscall(libc::SYS_capset, &mut hdr as *mut CapHeader, data.as_ptr()) };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

extern "C" fn on_signal(_: libc::c_int) {
    let saved = io::Error::last_os_error().raw_os_error();
    let _ = capset_self(TARGET.load(std::sync::atomic::Ordering::SeqCst));
    if let Some(e) = saved {
        // SAFETY: restores errno for the interrupted code.
        unsafe { *libc::__errno_location() = e };
    }
}

fn install_handler() -> io::Result<()> {
    // SAFETY: a zeroed sigaction with a handler that only does one syscall.
    unsafe {
        let mut sa: libc::sigaction = std::mem::zeroed();
        sa.sa_sigaction = on_signal as extern "C" fn(libc::c_int) as usize;
        sa.sa_flags = libc::SA_RESTART;
        libc::sigemptyset(&mut sa.sa_mask);
        if libc::sigaction(notify_signal(), &sa, std::ptr::null_mut()) != 0 {
            return Err(io::Error::last_os_error());
        }
    }
    Ok(())
}

/// (tid, CapPrm, CapInh) of every thread of this process.
fn threads() -> io::Result<Vec<(i32, u64, u64)>> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir("/proc/self/task")? {
        let entry = entry?;
        let Some(tid) = entry.file_name().to_str().and_then(|t| t.parse().ok()) else {
            continue;
        };
        // A thread that exited between readdir and read is simply gone.
        let Ok(status) = std::fs::read_to_string(entry.path().join("status")) else {
            continue;
        };
        let field = |k: &str| {
            status
                .lines()
                .find_map(|l| l.strip_prefix(k))
                .and_then(|v| u64::from_str_radix(v.trim(), 16).ok())
                .unwrap_or(0)
        };
        out.push((tid, field("CapPrm:"), field("CapInh:")));
    }
    Ok(out)
}

/// The identity exec checks run as, set once at start (`None`: as hadns).
static SCRIPT_USER: OnceLock<Option<Identity>> = OnceLock::new();

/// Records who exec checks and notify scripts run as (first call wins).
pub fn set_script_user(who: Option<Identity>) {
    let _ = SCRIPT_USER.set(who);
}

/// How a script is started: as [`set_script_user`]'s user when hadns is
/// root, always without capabilities (ambient set cleared) and without
/// systemd's NOTIFY_SOCKET.
#[derive(Debug, Clone, Default)]
pub struct ScriptUser {
    pub who: Option<Identity>,
}

impl ScriptUser {
    /// The process-wide script user.
    pub fn current() -> ScriptUser {
        ScriptUser {
            who: SCRIPT_USER.get().cloned().flatten(),
        }
    }

    /// Applies the user and the capability reset to a tokio command.
    pub fn apply(&self, cmd: &mut tokio::process::Command) {
        self.apply_std(cmd.as_std_mut());
    }

    /// Same for a std command.
    pub fn apply_std(&self, cmd: &mut std::process::Command) {
        use std::os::unix::process::CommandExt;
        cmd.env_remove("NOTIFY_SOCKET")
            .env_remove("WATCHDOG_USEC")
            .env_remove("WATCHDOG_PID");
        if let Some(w) = self.switch_to() {
            cmd.uid(w.uid).gid(w.gid);
        }
        // SAFETY: the closure only makes syscalls (prctl, capset).
        unsafe { cmd.pre_exec(clear_caps_in_child) };
    }

    fn switch_to(&self) -> Option<&Identity> {
        let w = self.who.as_ref()?;
        let me = nix::unistd::geteuid();
        (me.is_root() && w.uid != me.as_raw()).then_some(w)
    }
}

/// Runs in the forked child before exec (after the uid switch): no ambient
/// capabilities, and none at all unless the child is root.
fn clear_caps_in_child() -> io::Result<()> {
    // SAFETY: prctl with integer arguments.
    unsafe {
        libc::prctl(
            libc::PR_CAP_AMBIENT,
            libc::PR_CAP_AMBIENT_CLEAR_ALL,
            0,
            0,
            0,
        )
    };
    if !nix::unistd::geteuid().is_root() {
        capset_self(0)?;
    }
    Ok(())
}

/// Prepares a script's command: [`ScriptUser::current`] applied.
pub fn script_command(cmd: &mut tokio::process::Command) {
    ScriptUser::current().apply(cmd);
}

/// The capability a permission error is missing, for the error message:
/// a port below 1024 → CAP_NET_BIND_SERVICE, a raw socket → CAP_NET_RAW,
/// adding an address (netlink) → CAP_NET_ADMIN.
pub fn missing_capability(err: &crate::app::AppError) -> Option<&'static str> {
    use crate::app::AppError;
    use crate::server::ServerError;
    use hadns_vrrp::net::NetError;
    use hadns_vrrp::runtime::RuntimeError;
    let denied = |e: &io::Error| {
        matches!(e.raw_os_error(), Some(libc::EPERM) | Some(libc::EACCES))
            || e.kind() == io::ErrorKind::PermissionDenied
    };
    match err {
        AppError::Server(ServerError::Bind { addr, source, .. })
            if denied(source) && addr.port() < 1024 =>
        {
            Some("CAP_NET_BIND_SERVICE")
        }
        AppError::Vrrp(g) => match &g.source {
            RuntimeError::Net {
                source: NetError::Netlink { source, .. },
                ..
            } if denied(source) => Some("CAP_NET_ADMIN"),
            RuntimeError::Net {
                source: NetError::Io { op, source },
                ..
            } if denied(source) => Some(if op.starts_with("netlink") {
                "CAP_NET_ADMIN"
            } else {
                "CAP_NET_RAW"
            }),
            _ => None,
        },
        AppError::Privileges(PrivError::Switch { .. }) => Some("root (CAP_SETUID, CAP_SETGID)"),
        AppError::Privileges(PrivError::Missing { cap, .. }) => Some(cap),
        _ => None,
    }
}

/// The hint appended to a permission error.
pub fn hint(cap: &str) -> String {
    if cap.starts_with("CAP_") {
        format!(
            "missing capability {cap}: run as root, grant it (systemd AmbientCapabilities={cap}, or `setcap {}+ep /usr/sbin/hadns`), or see the README's production guide",
            cap.to_ascii_lowercase()
        )
    } else {
        format!("needs {cap} to switch users")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn cfg(text: &str) -> Config {
        Config::from_toml(text, Path::new("t.toml")).expect("valid")
    }

    #[test]
    fn needed_caps_follow_ports_and_vrrp() {
        let dns_only = cfg("[dns]\nlisten = [\"127.0.0.1:5353\"]\n[control]\nenabled = false\n");
        assert!(needed(&dns_only, true).is_empty());
        assert!(needed(&dns_only, false).is_empty());
        let port53 = cfg("[dns]\nlisten = [\"127.0.0.1:53\"]\n");
        assert_eq!(
            needed(&port53, true),
            [Capability::CAP_NET_BIND_SERVICE].into_iter().collect()
        );
        assert!(
            needed(&port53, false).is_empty(),
            "bind service only to start"
        );
        let vrrp = cfg(
            "[dns]\nlisten = [\"127.0.0.1:53\"]\n[[vrrp]]\nname = \"VI_1\"\ninterface = \"eth0\"\nvrid = 51\naddresses = [\"192.168.56.100/24\"]\n",
        );
        assert_eq!(
            needed(&vrrp, false),
            [Capability::CAP_NET_RAW, Capability::CAP_NET_ADMIN]
                .into_iter()
                .collect()
        );
        assert_eq!(needed(&vrrp, true).len(), 3);
    }

    #[test]
    fn unknown_user_is_named() {
        let c = cfg("[process]\nuser = \"no-such-user-hadns-test\"\n");
        let e = process_identity(&c).unwrap_err().to_string();
        assert!(
            e.contains("[process] user") && e.contains("no-such-user-hadns-test"),
            "{e}"
        );
        let c = cfg("[process]\nuser = \"root\"\ngroup = \"no-such-group-hadns\"\n");
        let e = process_identity(&c).unwrap_err().to_string();
        assert!(e.contains("[process] group"), "{e}");
    }

    #[test]
    fn script_user_falls_back_to_user() {
        let c = cfg("[process]\nuser = \"root\"\n");
        assert_eq!(script_identity(&c).unwrap().map(|i| i.uid), Some(0));
        let c = cfg("[process]\nscript_user = \"root\"\n");
        assert_eq!(script_identity(&c).unwrap().map(|i| i.uid), Some(0));
        assert!(script_identity(&cfg("")).unwrap().is_none());
    }

    #[test]
    fn bind_below_1024_names_bind_service() {
        let e = crate::app::AppError::Server(crate::server::ServerError::Bind {
            proto: "udp",
            addr: "127.0.0.1:53".parse().unwrap(),
            source: io::Error::from_raw_os_error(libc::EACCES),
        });
        assert_eq!(missing_capability(&e), Some("CAP_NET_BIND_SERVICE"));
        let e = crate::app::AppError::Server(crate::server::ServerError::Bind {
            proto: "udp",
            addr: "127.0.0.1:5353".parse().unwrap(),
            source: io::Error::from_raw_os_error(libc::EADDRINUSE),
        });
        assert_eq!(missing_capability(&e), None);
        assert!(hint("CAP_NET_RAW").contains("cap_net_raw+ep"));
        let vrrp = |source| {
            crate::app::AppError::from(crate::vrrp_glue::GlueError {
                file: "c.toml".into(),
                index: 0,
                instance: "VI_1".into(),
                key: "*".into(),
                source: hadns_vrrp::runtime::RuntimeError::Net {
                    instance: "VI_1".into(),
                    source,
                },
            })
        };
        let eperm = || io::Error::from_raw_os_error(libc::EPERM);
        assert_eq!(
            missing_capability(&vrrp(hadns_vrrp::net::NetError::Io {
                op: "vrrp socket",
                source: eperm()
            })),
            Some("CAP_NET_RAW")
        );
        assert_eq!(
            missing_capability(&vrrp(hadns_vrrp::net::NetError::Netlink {
                op: "add address",
                source: eperm()
            })),
            Some("CAP_NET_ADMIN")
        );
    }
}
