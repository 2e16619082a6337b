//! The Debian package built by scripts/package.sh, extracted with
//! `dpkg-deb -x` (never installed): its files, the unit (`systemd-analyze
//! verify`), the man pages, the completions, and the shipped default config
//! passing `hadns check`.

mod dns_common;

use std::path::{Path, PathBuf};
use std::process::Command;

use dns_common::TempDir;

/// The newest target/debian/hadns_*.deb.
fn package() -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/debian");
    let dir = std::env::var_os("CARGO_TARGET_DIR")
        .map(|t| PathBuf::from(t).join("debian"))
        .filter(|d| d.is_dir())
        .unwrap_or(dir);
    let mut debs: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}; run scripts/package.sh first", dir.display()))
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.extension().is_some_and(|x| x == "deb")
                && p.file_name()
                    .and_then(|n| n.to_str())
                    .is_some_and(|n| n.starts_with("hadns_"))
        })
        .collect();
    debs.sort_by_key(|p| std::fs::metadata(p).and_then(|m| m.modified()).ok());
    debs.pop().unwrap_or_else(|| {
        panic!(
            "no hadns_*.deb in {}; run scripts/package.sh",
            dir.display()
        )
    })
}

fn run(cmd: &mut Command) -> (bool, String, String) {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn gunzip(path: &Path) -> String {
    let (ok, text, err) = run(Command::new("gzip").arg("-dc").arg(path));
    assert!(ok, "{}: {err}", path.display());
    text
}

fn extract() -> (TempDir, PathBuf) {
    let deb = package();
    let dir = TempDir::new("package");
    let root = dir.path().join("root");
    let (ok, _, err) = run(Command::new("dpkg-deb").arg("-x").arg(&deb).arg(&root));
    assert!(ok, "dpkg-deb -x {}: {err}", deb.display());
    (dir, root)
}

#[test]
#[ignore = "needs target/debian/hadns_*.deb from scripts/package.sh"]
fn package_has_every_file_and_matching_metadata() {
    let deb = package();
    let (_dir, root) = extract();
    for f in [
        "usr/sbin/hadns",
        "lib/systemd/system/hadns.service",
        "usr/lib/sysctl.d/60-hadns.conf",
        "etc/hadns/hadns.toml",
        "etc/hadns/zones/example.test.zone",
        "usr/share/man/man8/hadns.8.gz",
        "usr/share/man/man5/hadns.toml.5.gz",
        "usr/share/bash-completion/completions/hadns",
        "usr/share/zsh/vendor-completions/_hadns",
        "usr/share/fish/vendor_completions.d/hadns.fish",
        "usr/share/doc/hadns/copyright",
        "usr/share/doc/hadns/LICENSE-MIT",
        "usr/share/doc/hadns/LICENSE-APACHE",
    ] {
        assert!(root.join(f).is_file(), "{f} missing from {}", deb.display());
    }
    // Control fields match the binary inside.
    let field = |f: &str| {
        let (ok, out, err) = run(Command::new("dpkg-deb").args(["-f"]).arg(&deb).arg(f));
        assert!(ok, "dpkg-deb -f {f}: {err}");
        out.trim().to_string()
    };
    assert_eq!(field("Package"), "hadns");
    let (ok, version, _) = run(Command::new(root.join("usr/sbin/hadns")).arg("--version"));
    assert!(ok);
    assert_eq!(version.trim(), format!("hadns {}", field("Version")));
    assert_eq!(
        version.trim(),
        format!("hadns {}", env!("CARGO_PKG_VERSION"))
    );
    let name = deb.file_name().unwrap().to_str().unwrap().to_string();
    assert_eq!(
        name,
        format!("hadns_{}_{}.deb", field("Version"), field("Architecture"))
    );
    // The config is a conffile (an upgrade keeps the user's edits).
    let dir = TempDir::new("package-ctrl");
    let (ok, _, err) = run(Command::new("dpkg-deb")
        .arg("-e")
        .arg(&deb)
        .arg(dir.path().join("c")));
    assert!(ok, "{err}");
    let conffiles = std::fs::read_to_string(dir.path().join("c/conffiles")).unwrap();
    assert!(
        conffiles.lines().any(|l| l == "/etc/hadns/hadns.toml"),
        "{conffiles}"
    );
    let postinst = std::fs::read_to_string(dir.path().join("c/postinst")).unwrap();
    assert!(
        postinst.contains("adduser --system"),
        "postinst creates the hadns user"
    );
    let commands: Vec<&str> = postinst
        .lines()
        .filter(|l| !l.trim_start().starts_with('#'))
        .collect();
    assert!(
        !commands
            .iter()
            .any(|l| l.contains("systemctl start") || l.contains("systemctl enable")),
        "the package never starts or enables hadns by itself: {postinst}"
    );

    let sysctl = std::fs::read_to_string(root.join("usr/lib/sysctl.d/60-hadns.conf")).unwrap();
    for key in [
        "net.ipv4.ip_nonlocal_bind = 1",
        "net.ipv6.ip_nonlocal_bind = 1",
    ] {
        assert!(sysctl.lines().any(|l| l.trim() == key), "{key} in {sysctl}");
    }
}

#[test]
#[ignore = "needs target/debian/hadns_*.deb from scripts/package.sh"]
fn shipped_config_passes_check() {
    let (_dir, root) = extract();
    let cfg = root.join("etc/hadns/hadns.toml");
    let (ok, out, err) = run(Command::new(root.join("usr/sbin/hadns"))
        .args(["check", "--config"])
        .arg(&cfg));
    assert!(ok, "hadns check {}: {out}{err}", cfg.display());
    assert!(out.contains(": OK"), "{out}");
    let text = std::fs::read_to_string(&cfg).unwrap();
    assert!(
        text.contains("user = \"hadns\""),
        "runs as the hadns user by default"
    );
}

#[test]
#[ignore = "needs target/debian/hadns_*.deb from scripts/package.sh"]
fn unit_verifies_and_is_least_privilege() {
    let (dir, root) = extract();
    let unit = std::fs::read_to_string(root.join("lib/systemd/system/hadns.service")).unwrap();
    for line in [
        "Type=notify",
        "After=network-online.target",
        "Restart=on-failure",
        "ExecReload=/bin/kill -HUP $MAINPID",
        "User=hadns",
        "AmbientCapabilities=CAP_NET_BIND_SERVICE CAP_NET_RAW CAP_NET_ADMIN",
        "CapabilityBoundingSet=CAP_NET_BIND_SERVICE CAP_NET_RAW CAP_NET_ADMIN",
        "ProtectSystem=strict",
        "ProtectHome=yes",
        "PrivateTmp=yes",
        "NoNewPrivileges=yes",
        "RuntimeDirectory=hadns",
        "ExecStart=/usr/sbin/hadns run --config /etc/hadns/hadns.toml",
    ] {
        assert!(
            unit.lines().any(|l| l == line),
            "{line:?} missing from the unit"
        );
    }
    if Command::new("systemd-analyze")
        .arg("--version")
        .output()
        .is_err()
    {
        eprintln!("systemd-analyze not installed: skipping `systemd-analyze verify`");
        return;
    }
    // verify checks that ExecStart's binary exists: point it at the
    // extracted one (the package is never installed here).
    let bin = root.join("usr/sbin/hadns");
    let copy = dir.path().join("hadns.service");
    std::fs::write(
        &copy,
        unit.replace("/usr/sbin/hadns", bin.to_str().unwrap()),
    )
    .unwrap();
    let (ok, out, err) = run(Command::new("systemd-analyze")
        .args(["verify", "--man=no"])
        .arg(&copy));
    assert!(
        ok && err.trim().is_empty(),
        "systemd-analyze verify: {out}{err}"
    );
}

#[test]
#[ignore = "needs target/debian/hadns_*.deb from scripts/package.sh"]
fn man_pages_and_completions_describe_the_cli() {
    let (_dir, root) = extract();
    let man8 = gunzip(&root.join("usr/share/man/man8/hadns.8.gz"));
    assert!(
        man8.starts_with(".ie") || man8.contains(".TH hadns 8"),
        "{man8}"
    );
    for sub in ["run", "check", "status"] {
        assert!(man8.contains(sub), "hadns(8) lists {sub}");
    }
    assert!(
        !man8.contains("generate"),
        "the hidden subcommand stays hidden"
    );
    let man5 = gunzip(&root.join("usr/share/man/man5/hadns.toml.5.gz"));
    assert!(man5.contains(".TH HADNS.TOML 5"), "{man5}");
    for key in ["listen", "script_user", "advert_interval", "format"] {
        assert!(man5.contains(key), "hadns.toml(5) documents {key}");
    }
    if let Ok(out) = Command::new("man")
        .args(["-l", "-P", "cat"])
        .arg(root.join("usr/share/man/man5/hadns.toml.5.gz"))
        .env("MANWIDTH", "80")
        .output()
    {
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success() && text.contains("hadns.toml - configuration of hadns(8)"),
            "{text}"
        );
    }
    let bash =
        std::fs::read_to_string(root.join("usr/share/bash-completion/completions/hadns")).unwrap();
    assert!(
        bash.contains("complete -F _hadns") && bash.contains("--config"),
        "bash completion"
    );
    let zsh =
        std::fs::read_to_string(root.join("usr/share/zsh/vendor-completions/_hadns")).unwrap();
    assert!(zsh.starts_with("#compdef hadns"), "zsh completion");
    let fish = std::fs::read_to_string(root.join("usr/share/fish/vendor_completions.d/hadns.fish"))
        .unwrap();
    assert!(fish.contains("complete -c hadns"), "fish completion");
    if Command::new("bash").arg("--version").output().is_ok() {
        let (ok, _, err) = run(Command::new("bash")
            .arg("-n")
            .arg(root.join("usr/share/bash-completion/completions/hadns")));
        assert!(ok, "bash completion parses: {err}");
    }
}

#[test]
fn check_and_run_default_to_etc_hadns() {
    // Whether or not this machine has the file, `check` names the path it
    // read; `run` (only tried when the file is absent: it would serve)
    // fails naming it.
    let (_, out, err) = run(Command::new(dns_common::BIN).arg("check"));
    assert!(
        format!("{out}{err}").contains("/etc/hadns/hadns.toml"),
        "check: {out}{err}"
    );
    if !Path::new("/etc/hadns/hadns.toml").exists() {
        let (ok, out, err) = run(Command::new(dns_common::BIN)
            .arg("run")
            .env_remove("NOTIFY_SOCKET"));
        assert!(
            !ok && err.contains("/etc/hadns/hadns.toml"),
            "run: {out}{err}"
        );
    }
}
