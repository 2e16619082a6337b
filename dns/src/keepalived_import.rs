//! `hadns import-keepalived FILE`: a keepalived.conf read and printed as the
//! equivalent hadns TOML (`[[vrrp]]` and `[check.NAME]` sections), with a
//! comment for every keepalived key it cannot map.
//!
//! Two steps: [`parse`] reads keepalived's block syntax (comments `#` and
//! `!`, quoted strings, `include` with `*`/`?` patterns, relative to the
//! including file) into a tree of [`Stmt`]s; [`convert`] maps the tree.
//! keepalived defaults that differ from hadns's are written out: VRRP
//! version 2, script rise/fall 1, script timeout = its interval.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

/// Why a keepalived.conf cannot be read or converted; names file and line.
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    #[error("{path}: cannot read: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}:{line}: {message}")]
    Syntax {
        path: PathBuf,
        line: usize,
        message: String,
    },
    #[error("{path}:{line}: {key}: expected {expected}")]
    Invalid {
        path: PathBuf,
        line: usize,
        key: String,
        expected: String,
    },
}

/// One statement: its words (`virtual_router_id 51`) and, for a block
/// (`vrrp_instance VI_1 { ... }`), its children; with where it was read.
#[derive(Debug, Clone, PartialEq)]
pub struct Stmt {
    pub words: Vec<String>,
    pub block: Option<Vec<Stmt>>,
    pub file: PathBuf,
    pub line: usize,
}

impl Stmt {
    fn key(&self) -> &str {
        self.words.first().map(String::as_str).unwrap_or("")
    }
    fn arg(&self, i: usize) -> Option<&str> {
        self.words.get(i).map(String::as_str)
    }
    fn children(&self) -> &[Stmt] {
        self.block.as_deref().unwrap_or(&[])
    }
    fn at(&self) -> String {
        format!("{}:{}", self.file.display(), self.line)
    }
}

/// Nested includes deeper than this are a loop.
const MAX_INCLUDE_DEPTH: usize = 16;

/// Reads `path` (and its includes) into statements.
pub fn parse(path: &Path) -> Result<Vec<Stmt>, ImportError> {
    parse_file(path, 0)
}

fn parse_file(path: &Path, depth: usize) -> Result<Vec<Stmt>, ImportError> {
    let text = std::fs::read_to_string(path).map_err(|source| ImportError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    parse_text(&text, path, depth)
}

/// A token and its line.
#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Word(String, usize),
    Open(usize),
    Close(usize),
    Eol,
}

fn tokenize(text: &str, path: &Path) -> Result<Vec<Tok>, ImportError> {
    let mut out = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        let line = i + 1;
        if let Some(id) = raw.trim_start().strip_prefix('@') {
            let id = id.split_whitespace().next().unwrap_or("");
            return Err(ImportError::Syntax {
                path: path.to_path_buf(),
                line,
                message: format!("conditional line (@{id}) for `keepalived -i {id}`: not supported; keep the lines of this host (without the @ prefix) and drop the others, then import again"),
            });
        }
        let mut chars = raw.chars().peekable();
        let mut word = String::new();
        let mut quoted = false;
        let flush = |w: &mut String, out: &mut Vec<Tok>| {
            if !w.is_empty() {
                out.push(Tok::Word(std::mem::take(w), line));
            }
        };
        while let Some(c) = chars.next() {
            if quoted {
                match c {
                    '"' => {
                        quoted = false;
                        out.push(Tok::Word(std::mem::take(&mut word), line));
                    }
                    '\\' => {
                        if let Some(n) = chars.next() {
                            word.push(n);
                        }
                    }
                    c => word.push(c),
                }
                continue;
            }
            match c {
                '#' | '!' if word.is_empty() => break,
                '"' => {
                    flush(&mut word, &mut out);
                    quoted = true;
                }
                '{' => {
                    flush(&mut word, &mut out);
                    out.push(Tok::Open(line));
                }
                '}' => {
                    flush(&mut word, &mut out);
                    out.push(Tok::Close(line));
                }
                c if c.is_whitespace() => flush(&mut word, &mut out),
                c => word.push(c),
            }
        }
        if quoted {
            return Err(ImportError::Syntax {
                path: path.to_path_buf(),
                line,
                message: "unterminated quoted string".into(),
            });
        }
        flush(&mut word, &mut out);
        out.push(Tok::Eol);
    }
    Ok(out)
}

fn parse_text(text: &str, path: &Path, depth: usize) -> Result<Vec<Stmt>, ImportError> {
    let toks = tokenize(text, path)?;
    let mut pos = 0;
    let stmts = parse_block(&toks, &mut pos, path, depth, None)?;
    Ok(stmts)
}

/// Statements until the matching `}` (`open` = the line of `{`) or the end.
fn parse_block(
    toks: &[Tok],
    pos: &mut usize,
    path: &Path,
    depth: usize,
    open: Option<usize>,
) -> Result<Vec<Stmt>, ImportError> {
    let syntax = |line: usize, message: String| ImportError::Syntax {
        path: path.to_path_buf(),
        line,
        message,
    };
    let mut out = Vec::new();
    let mut words: Vec<String> = Vec::new();
    let mut first_line = 0;
    let finish = |words: &mut Vec<String>,
                  block: Option<Vec<Stmt>>,
                  line: usize,
                  out: &mut Vec<Stmt>|
     -> Result<(), ImportError> {
        if words.is_empty() && block.is_none() {
            return Ok(());
        }
        let stmt = Stmt {
            words: std::mem::take(words),
            block,
            file: path.to_path_buf(),
            line,
        };
        if stmt.key() == "include" && stmt.block.is_none() {
            out.extend(include(&stmt, depth)?);
        } else {
            out.push(stmt);
        }
        Ok(())
    };
    while let Some(t) = toks.get(*pos) {
        *pos += 1;
        match t {
            Tok::Word(w, line) => {
                if words.is_empty() {
                    first_line = *line;
                }
                words.push(w.clone());
            }
            Tok::Eol => {
                // A block's `{` may follow on the next line.
                let next_opens = toks[*pos..]
                    .iter()
                    .find(|t| !matches!(t, Tok::Eol))
                    .is_some_and(|t| matches!(t, Tok::Open(_)));
                if !next_opens {
                    finish(&mut words, None, first_line, &mut out)?;
                }
            }
            Tok::Open(line) => {
                if words.is_empty() {
                    first_line = *line;
                }
                let children = parse_block(toks, pos, path, depth, Some(*line))?;
                finish(&mut words, Some(children), first_line, &mut out)?;
            }
            Tok::Close(line) => {
                if open.is_none() {
                    return Err(syntax(*line, "'}' without a matching '{'".into()));
                }
                finish(&mut words, None, first_line, &mut out)?;
                return Ok(out);
            }
        }
    }
    if let Some(line) = open {
        return Err(syntax(line, "'{' is never closed".into()));
    }
    finish(&mut words, None, first_line, &mut out)?;
    Ok(out)
}

/// `include PATTERN`: every file matching, in name order, relative to the
/// including file's folder.
fn include(stmt: &Stmt, depth: usize) -> Result<Vec<Stmt>, ImportError> {
    let invalid = |expected: &str| ImportError::Invalid {
        path: stmt.file.clone(),
        line: stmt.line,
        key: "include".into(),
        expected: expected.into(),
    };
    if depth >= MAX_INCLUDE_DEPTH {
        return Err(invalid(
            "includes nested at most 16 deep (is there a loop?)",
        ));
    }
    let pattern = stmt.arg(1).ok_or_else(|| invalid("a file or pattern"))?;
    let base = stmt.file.parent().unwrap_or_else(|| Path::new("."));
    let full = base.join(pattern);
    let dir = full.parent().unwrap_or(base).to_path_buf();
    let name = full
        .file_name()
        .and_then(|n| n.to_str())
        .ok_or_else(|| invalid("a file or pattern"))?
        .to_string();
    let mut files = Vec::new();
    if name.contains(['*', '?']) {
        let entries = std::fs::read_dir(&dir).map_err(|source| ImportError::Read {
            path: dir.clone(),
            source,
        })?;
        for e in entries.flatten() {
            if let Some(n) = e.file_name().to_str() {
                if wildcard(&name, n) && e.path().is_file() {
                    files.push(e.path());
                }
            }
        }
        files.sort();
    } else {
        files.push(full);
    }
    let mut out = Vec::new();
    for f in files {
        out.extend(parse_file(&f, depth + 1)?);
    }
    Ok(out)
}

/// Shell-style `*` and `?` over one file name.
fn wildcard(pattern: &str, name: &str) -> bool {
    let (p, n): (Vec<char>, Vec<char>) = (pattern.chars().collect(), name.chars().collect());
    let (mut pi, mut ni, mut star, mut mark) = (0, 0, None, 0);
    while ni < n.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == n[ni]) {
            pi += 1;
            ni += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some(pi);
            mark = ni;
            pi += 1;
        } else if let Some(s) = star {
            pi = s + 1;
            mark += 1;
            ni = mark;
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|&c| c == '*')
}

/// A TOML table key: bare when it can be.
fn key(s: &str) -> String {
    if !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
    {
        s.to_string()
    } else {
        q(s)
    }
}

/// A TOML string literal.
fn q(s: &str) -> String {
    toml::Value::String(s.to_string()).to_string()
}

fn invalid(stmt: &Stmt, expected: &str) -> ImportError {
    ImportError::Invalid {
        path: stmt.file.clone(),
        line: stmt.line,
        key: stmt.key().to_string(),
        expected: expected.to_string(),
    }
}

fn num<T: std::str::FromStr>(stmt: &Stmt, expected: &str) -> Result<T, ImportError> {
    stmt.arg(1)
        .and_then(|v| v.parse().ok())
        .ok_or_else(|| invalid(stmt, expected))
}

/// Seconds (keepalived allows fractions: `advert_int 0.1`) as a hadns duration.
fn secs(stmt: &Stmt) -> Result<String, ImportError> {
    let v: f64 = num(stmt, "a number of seconds")?;
    if !(v.is_finite() && v >= 0.0) {
        return Err(invalid(stmt, "a number of seconds"));
    }
    let ms = (v * 1000.0).round() as u64;
    Ok(if ms % 1000 == 0 {
        format!("{}s", ms / 1000)
    } else {
        format!("{ms}ms")
    })
}

/// A keepalived vrrp_script, kept for the tracks that use it.
struct Script {
    name: String,
    weight: i32,
}

/// What [`convert`] produced: the TOML text and how many keys it could not map.
#[derive(Debug)]
pub struct Converted {
    pub toml: String,
    pub unmapped: usize,
}

/// Maps keepalived statements to hadns TOML.
pub fn convert(stmts: &[Stmt], source: &Path) -> Result<Converted, ImportError> {
    let mut out = String::new();
    let mut notes = Vec::new();
    let _ = writeln!(
        out,
        "# Converted from {} by `hadns import-keepalived`.\n# Review the comments below: each names a keepalived key hadns does not map.",
        source.display()
    );
    // global_defs first: vrrp_version and script_user apply everywhere.
    let mut version: u8 = 2; // keepalived's default
    let mut process = String::new();
    for g in stmts.iter().filter(|s| s.key() == "global_defs") {
        for s in g.children() {
            match s.key() {
                "vrrp_version" => version = num(s, "2 or 3")?,
                "script_user" => {
                    let user = s.arg(1).ok_or_else(|| invalid(s, "a user name"))?;
                    let _ = writeln!(process, "script_user = {}", q(user));
                }
                "router_id" | "enable_script_security" => notes.push(format!(
                    "{}: global_defs.{}: not needed by hadns",
                    s.at(),
                    s.key()
                )),
                _ => notes.push(unmapped(s, "global_defs.")),
            }
        }
    }
    if !process.is_empty() {
        let _ = writeln!(out, "\n[process]\n{process}");
    }
    let mut scripts = Vec::new();
    let mut checks = String::new();
    for s in stmts.iter().filter(|s| s.key() == "vrrp_script") {
        let name = s.arg(1).ok_or_else(|| invalid(s, "a script name"))?;
        let (mut interval, mut timeout, mut rise, mut fall, mut weight) =
            ("1s".to_string(), None, 1u32, 1u32, 0i32);
        let mut command = None;
        for c in s.children() {
            match c.key() {
                "script" => {
                    // keepalived runs the script's words directly (no shell).
                    let argv: Vec<String> = if c.words.len() == 2 {
                        c.words[1].split_whitespace().map(str::to_string).collect()
                    } else {
                        c.words[1..].to_vec()
                    };
                    if argv.is_empty() {
                        return Err(invalid(c, "a command"));
                    }
                    command = Some(argv);
                }
                "interval" => interval = secs(c)?,
                "timeout" => timeout = Some(secs(c)?),
                "rise" => rise = num(c, "a positive count")?,
                "fall" => fall = num(c, "a positive count")?,
                "weight" => weight = num(c, "a weight -253..253")?,
                _ => notes.push(unmapped(c, &format!("vrrp_script {name}: "))),
            }
        }
        let command = command.ok_or_else(|| invalid(s, "a `script` inside vrrp_script"))?;
        let argv: Vec<String> = command.iter().map(|a| q(a)).collect();
        let _ = writeln!(
            checks,
            "\n# vrrp_script {name} ({})\n[check.{}]\ntype = \"exec\"\ncommand = [{}]\ninterval = {}\ntimeout = {}\nrise = {rise}\nfall = {fall}",
            s.at(),
            key(name),
            argv.join(", "),
            q(&interval),
            // keepalived's default timeout is the interval
            q(timeout.as_deref().unwrap_or(&interval)),
        );
        scripts.push(Script {
            name: name.to_string(),
            weight,
        });
    }
    out.push_str(&checks);
    for s in stmts.iter().filter(|s| s.key() == "vrrp_instance") {
        out.push_str(&instance(s, version, &scripts, &mut notes)?);
    }
    for s in stmts {
        if !matches!(s.key(), "global_defs" | "vrrp_script" | "vrrp_instance") {
            notes.push(unmapped(s, ""));
        }
    }
    let unmapped_count = notes.len();
    if !notes.is_empty() {
        out.push_str("\n# Not converted:\n");
        for n in notes {
            let _ = writeln!(out, "# - {n}");
        }
    }
    Ok(Converted {
        toml: out,
        unmapped: unmapped_count,
    })
}

fn unmapped(s: &Stmt, prefix: &str) -> String {
    let what = match s.key() {
        "virtual_server" | "virtual_server_group" => {
            "hadns has no load balancer (IPVS); serve the VIPs with your web server"
        }
        "vrrp_sync_group" => "hadns has no sync groups; track the same checks in each instance",
        "static_ipaddress" | "static_routes" | "static_rules" => {
            "configure it with the host's network setup"
        }
        "use_vmac" | "vmac_xmit_base" => "hadns has no VMAC mode",
        _ => "no hadns equivalent",
    };
    let words = s.words.join(" ");
    format!(
        "{}: {prefix}{words}{}: {what}",
        s.at(),
        if s.block.is_some() { " {...}" } else { "" }
    )
}

fn instance(
    s: &Stmt,
    global_version: u8,
    scripts: &[Script],
    notes: &mut Vec<String>,
) -> Result<String, ImportError> {
    let name = s.arg(1).ok_or_else(|| invalid(s, "an instance name"))?;
    let mut keys: Vec<(String, String)> = Vec::new();
    let mut version = global_version;
    let mut state_backup = false;
    let mut nopreempt = false;
    let mut interface = None;
    let mut addresses = Vec::new();
    let mut peers = Vec::new();
    let mut tracks = Vec::new();
    let mut track_ifs = Vec::new();
    let prefix = format!("vrrp_instance {name}: ");
    for c in s.children() {
        match c.key() {
            "interface" => {
                interface = Some(
                    c.arg(1)
                        .ok_or_else(|| invalid(c, "an interface"))?
                        .to_string(),
                )
            }
            "state" => match c.arg(1) {
                Some("MASTER") => {}
                Some("BACKUP") => state_backup = true,
                _ => return Err(invalid(c, "MASTER or BACKUP")),
            },
            "virtual_router_id" => keys.push(("vrid".into(), num::<u16>(c, "1-255")?.to_string())),
            "priority" => keys.push(("priority".into(), num::<u16>(c, "1-255")?.to_string())),
            "advert_int" => keys.push(("advert_interval".into(), q(&secs(c)?))),
            "version" => version = num(c, "2 or 3")?,
            "nopreempt" => nopreempt = true,
            "preempt" => {}
            "preempt_delay" => keys.push(("preempt_delay".into(), q(&secs(c)?))),
            "accept" => keys.push(("accept".into(), "true".into())),
            "no_accept" => keys.push(("accept".into(), "false".into())),
            "garp_master_refresh" => keys.push(("garp_refresh".into(), q(&secs(c)?))),
            "unicast_src_ip" => keys.push((
                "source_address".into(),
                q(c.arg(1).ok_or_else(|| invalid(c, "an address"))?),
            )),
            "unicast_peer" => {
                for p in c.children() {
                    let a = p.key();
                    if a.parse::<std::net::IpAddr>().is_err() {
                        return Err(invalid(p, "an IP address"));
                    }
                    peers.push(q(a));
                    if p.words.len() > 1 {
                        notes.push(unmapped(p, &format!("{prefix}unicast_peer ")));
                    }
                }
            }
            "virtual_ipaddress" => {
                for a in c.children() {
                    addresses.push(q(a.key()));
                    // `dev X` other than the instance's interface, `label`,
                    // `scope`, ...: hadns puts every VIP on `interface`.
                    let extra: Vec<&str> = a.words[1..].iter().map(String::as_str).collect();
                    let same_dev =
                        matches!(extra.as_slice(), ["dev", d] if Some(*d) == interface.as_deref());
                    if !extra.is_empty() && !same_dev {
                        notes.push(format!(
                            "{}: {prefix}virtual_ipaddress {}: hadns adds each VIP to `interface` without {}",
                            a.at(),
                            a.words.join(" "),
                            extra.join(" ")
                        ));
                    }
                }
            }
            "authentication" => {
                let mut kind = "PASS";
                for a in c.children() {
                    match a.key() {
                        "auth_type" => kind = if a.arg(1) == Some("AH") { "AH" } else { "PASS" },
                        "auth_pass" => keys.push((
                            "auth_pass".into(),
                            q(a.arg(1).ok_or_else(|| invalid(a, "a password"))?),
                        )),
                        _ => notes.push(unmapped(a, &prefix)),
                    }
                }
                if kind == "AH" {
                    notes.push(format!(
                        "{}: {prefix}auth_type AH: hadns supports PASS only",
                        c.at()
                    ));
                }
            }
            "track_script" => {
                for t in c.children() {
                    let script = t.key();
                    let weight = match (t.arg(1), t.arg(2)) {
                        (Some("weight"), Some(w)) => {
                            w.parse().map_err(|_| invalid(t, "weight N"))?
                        }
                        _ => scripts
                            .iter()
                            .find(|sc| sc.name == script)
                            .map(|sc| sc.weight)
                            .ok_or_else(|| invalid(t, "the name of a vrrp_script"))?,
                    };
                    tracks.push(format!("{{ check = {}, weight = {weight} }}", q(script)));
                }
            }
            "track_interface" => {
                for t in c.children() {
                    let weight = match (t.arg(1), t.arg(2)) {
                        (Some("weight"), Some(w)) => {
                            w.parse().map_err(|_| invalid(t, "weight N"))?
                        }
                        _ => 0,
                    };
                    track_ifs.push(format!(
                        "{{ interface = {}, weight = {weight} }}",
                        q(t.key())
                    ));
                }
            }
            // Same names and calling convention in hadns.
            key @ ("notify" | "notify_master" | "notify_backup" | "notify_fault"
            | "notify_stop") => {
                let cmd = c.words[1..].join(" ");
                keys.push((key.into(), q(&cmd)));
            }
            _ => notes.push(unmapped(c, &prefix)),
        }
    }
    let interface = interface.ok_or_else(|| invalid(s, "an `interface` inside vrrp_instance"))?;
    if addresses.is_empty() {
        return Err(invalid(s, "a virtual_ipaddress block"));
    }
    let mut out = format!(
        "\n# vrrp_instance {name} ({}){}\n[[vrrp]]\nname = {}\ninterface = {}\nversion = {version}\n",
        s.at(),
        if state_backup { ", state BACKUP" } else { ", state MASTER (hadns elects by priority)" },
        q(name),
        q(&interface)
    );
    for (k, v) in keys {
        let _ = writeln!(out, "{k} = {v}");
    }
    if nopreempt {
        out.push_str("preempt = false\n");
    }
    let _ = writeln!(out, "addresses = [{}]", addresses.join(", "));
    if !peers.is_empty() {
        let _ = writeln!(out, "unicast_peers = [{}]", peers.join(", "));
    }
    if !tracks.is_empty() {
        let _ = writeln!(out, "track = [{}]", tracks.join(", "));
    }
    if !track_ifs.is_empty() {
        let _ = writeln!(out, "track_interface = [{}]", track_ifs.join(", "));
    }
    Ok(out)
}

/// Reads `path` and returns the hadns TOML.
pub fn import(path: &Path) -> Result<Converted, ImportError> {
    let stmts = parse(path)?;
    convert(&stmts, path)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;

    fn conv(text: &str) -> (Converted, Config) {
        let stmts = parse_text(text, Path::new("keepalived.conf"), 0).expect("parses");
        let c = convert(&stmts, Path::new("keepalived.conf")).expect("converts");
        let cfg = Config::from_toml(&c.toml, Path::new("out.toml"))
            .unwrap_or_else(|e| panic!("{e}\n{}", c.toml));
        (c, cfg)
    }

    /// keepalived 2.2 multicast v3 with a tracked script, as Debian ships it.
    const V3: &str = r#"
! Configuration File for keepalived
global_defs {
   router_id LVS_A
   vrrp_version 3
   script_user nobody
   enable_script_security
}

vrrp_script chk_nginx {
    script "/usr/bin/pgrep -x nginx"   # nginx alive?
    interval 2
    timeout 1
    weight -60
    rise 2
    fall 3
}

vrrp_instance VI_1 {
    state MASTER
    interface eth0
    virtual_router_id 51
    priority 150
    advert_int 0.1
    virtual_ipaddress {
        192.168.56.100/24 dev eth0
    }
    track_script {
        chk_nginx
    }
    notify /usr/local/bin/vrrp-notify.sh
}

vrrp_instance VI_2
{
    state BACKUP
    interface eth0
    virtual_router_id 52
    priority 100
    nopreempt
    preempt_delay 5
    advert_int 1
    virtual_ipaddress {
        192.168.56.200/24 label eth0:vip2
    }
    track_script {
        chk_nginx weight -20
    }
    track_interface {
        eth1 weight -10
    }
}
"#;

    #[test]
    fn v3_multicast_with_tracked_script() {
        let (c, cfg) = conv(V3);
        assert_eq!(cfg.vrrp.len(), 2);
        let a = &cfg.vrrp[0];
        assert_eq!(
            (
                a.name.as_str(),
                a.interface.as_str(),
                a.vrid,
                a.priority,
                a.version
            ),
            ("VI_1", "eth0", 51, 150, 3)
        );
        assert_eq!(a.advert_interval, std::time::Duration::from_millis(100));
        assert!(a.preempt);
        assert_eq!(a.addresses, vec!["192.168.56.100/24"]);
        assert_eq!(a.track[0].check, "chk_nginx");
        assert_eq!(a.track[0].weight, -60, "the vrrp_script's weight");
        assert_eq!(
            a.notify.as_ref().and_then(|c| c.program()),
            Some("/usr/local/bin/vrrp-notify.sh")
        );
        let b = &cfg.vrrp[1];
        assert!(!b.preempt, "nopreempt");
        assert_eq!(b.preempt_delay, std::time::Duration::from_secs(5));
        assert_eq!(b.track[0].weight, -20, "track_script's own weight wins");
        assert_eq!(b.track_interface[0].interface, "eth1");
        assert_eq!(b.track_interface[0].weight, -10);
        let chk = &cfg.checks["chk_nginx"];
        assert_eq!(
            chk.command.as_deref(),
            Some(&["/usr/bin/pgrep".to_string(), "-x".into(), "nginx".into()][..])
        );
        assert_eq!(
            (chk.interval, chk.timeout, chk.rise, chk.fall),
            (
                std::time::Duration::from_secs(2),
                std::time::Duration::from_secs(1),
                2,
                3
            )
        );
        assert_eq!(cfg.process.script_user.as_deref(), Some("nobody"));
        // The label cannot be mapped: a comment says so, with file and line.
        assert!(c.toml.contains("# - keepalived.conf:44: vrrp_instance VI_2: virtual_ipaddress 192.168.56.200/24 label eth0:vip2"), "{}", c.toml);
        assert_eq!(
            c.unmapped, 3,
            "router_id, enable_script_security, label:\n{}",
            c.toml
        );
    }

    #[test]
    fn v2_unicast_auth_and_keepalived_defaults() {
        let (c, cfg) = conv(
            r#"
vrrp_script chk { script "/bin/true" }
vrrp_instance VI_1 {
  interface eth0
  virtual_router_id 7
  priority 200
  advert_int 1
  unicast_src_ip 10.0.0.1
  unicast_peer {
    10.0.0.2
  }
  authentication {
    auth_type PASS
    auth_pass secret1
  }
  virtual_ipaddress { 10.0.0.100/24 }
  track_script { chk }
}
"#,
        );
        let v = &cfg.vrrp[0];
        assert_eq!(v.version, 2, "keepalived's default version is 2");
        assert_eq!(v.auth_pass.as_deref(), Some("secret1"));
        assert_eq!(v.source_address, Some("10.0.0.1".parse().unwrap()));
        assert_eq!(
            v.unicast_peers,
            vec!["10.0.0.2".parse::<std::net::IpAddr>().unwrap()]
        );
        assert_eq!(
            v.track[0].weight, 0,
            "weight 0: FAULT while down, as in keepalived"
        );
        let chk = &cfg.checks["chk"];
        assert_eq!(
            (chk.rise, chk.fall),
            (1, 1),
            "keepalived's rise/fall default"
        );
        assert_eq!(chk.timeout, chk.interval, "keepalived's timeout default");
        assert_eq!(c.unmapped, 0, "{}", c.toml);
    }

    #[test]
    fn unmappable_sections_become_comments() {
        let (c, _) = conv(
            r#"
vrrp_sync_group G1 {
  group {
    VI_1
  }
}
virtual_server 192.168.56.100 80 {
  delay_loop 6
  real_server 192.168.56.101 80 { weight 1 }
}
vrrp_instance VI_1 {
  interface eth0
  virtual_router_id 51
  use_vmac
  notify_master "/bin/echo master"
  authentication { auth_type AH
    auth_pass x }
  virtual_ipaddress { 10.1.1.1 }
}
"#,
        );
        for want in [
            "keepalived.conf:2: vrrp_sync_group G1 {...}: hadns has no sync groups",
            "keepalived.conf:7: virtual_server 192.168.56.100 80 {...}: hadns has no load balancer",
            "vrrp_instance VI_1: use_vmac: hadns has no VMAC mode",
            "notify_master = \"/bin/echo master\"",
            "auth_type AH: hadns supports PASS only",
        ] {
            assert!(c.toml.contains(want), "{want:?} in\n{}", c.toml);
        }
        assert_eq!(c.unmapped, 4);
    }

    #[test]
    fn include_with_pattern_and_errors_name_file_and_line() {
        let dir = std::env::temp_dir().join(format!("hadns-kimport-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("conf.d")).unwrap();
        std::fs::write(
            dir.join("keepalived.conf"),
            "global_defs {\n vrrp_version 3\n}\ninclude conf.d/*.conf\n",
        )
        .unwrap();
        std::fs::write(dir.join("conf.d/b.conf"), "vrrp_instance VI_2 {\n interface eth0\n virtual_router_id 52\n virtual_ipaddress {\n 10.0.0.2/24\n }\n}\n").unwrap();
        std::fs::write(dir.join("conf.d/a.conf"), "vrrp_instance VI_1 {\n interface eth0\n virtual_router_id 51\n virtual_ipaddress {\n 10.0.0.1/24\n }\n}\n").unwrap();
        std::fs::write(dir.join("conf.d/skip.txt"), "garbage {").unwrap();
        let c = import(&dir.join("keepalived.conf")).expect("imports");
        let cfg = Config::from_toml(&c.toml, Path::new("x.toml")).expect("valid");
        let names: Vec<&str> = cfg.vrrp.iter().map(|v| v.name.as_str()).collect();
        assert_eq!(names, vec!["VI_1", "VI_2"], "included in name order");
        assert!(cfg.vrrp.iter().all(|v| v.version == 3));

        std::fs::write(
            dir.join("conf.d/c.conf"),
            "vrrp_instance VI_3 {\n interface eth0\n virtual_router_id many\n}\n",
        )
        .unwrap();
        let e = import(&dir.join("keepalived.conf"))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("conf.d/c.conf:3: virtual_router_id: expected 1-255"),
            "{e}"
        );
        std::fs::write(
            dir.join("conf.d/c.conf"),
            "vrrp_instance VI_3 {\n interface eth0\n",
        )
        .unwrap();
        let e = import(&dir.join("keepalived.conf"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("conf.d/c.conf:1: '{' is never closed"), "{e}");
        std::fs::write(dir.join("conf.d/c.conf"), "include ../keepalived.conf\n").unwrap();
        let e = import(&dir.join("keepalived.conf"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("loop"), "{e}");
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn wildcards() {
        assert!(wildcard("*.conf", "a.conf"));
        assert!(!wildcard("*.conf", "a.conf.bak"));
        assert!(wildcard("vi_?.conf", "vi_1.conf"));
        assert!(wildcard("*", "x"));
    }
}
