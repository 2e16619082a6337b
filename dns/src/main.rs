//! The `hadns` command: `run` serves, `check` validates (exit 0 + a summary,
//! or exit 1 + the error naming file and key/line).

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Where `run` and `check` read the config when `--config` is not given.
const DEFAULT_CONFIG: &str = "/etc/hadns/hadns.toml";

#[derive(Parser)]
#[command(
    name = "hadns",
    version,
    about = "Authoritative DNS with health-aware pools + VRRP",
    after_help = "Logging: -v (debug) and -vv (trace) override RUST_LOG, which overrides [log] level in the config.\nFiles: /etc/hadns/hadns.toml, /etc/hadns/zones/*.zone (see hadns.toml(5))."
)]
struct Cli {
    /// More log output: -v debug, -vv trace (overrides RUST_LOG and [log] level).
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    verbose: u8,
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Serve DNS (and run checks and VRRP) until SIGINT/SIGTERM; SIGHUP reloads.
    Run {
        #[arg(short, long, default_value = DEFAULT_CONFIG)]
        config: PathBuf,
    },
    /// Validate the config and every zone, print one line per zone/pool/check.
    Check {
        #[arg(short, long, default_value = DEFAULT_CONFIG)]
        config: PathBuf,
    },
    /// Show a running hadns: VRRP instances, pool members, checks, counters
    /// (from its [control] endpoint, default 127.0.0.1:5380).
    Status {
        /// Read the control address from this config's [control] listen.
        #[arg(short, long)]
        config: Option<PathBuf>,
        /// The control endpoint address (overrides --config).
        #[arg(long)]
        addr: Option<std::net::SocketAddr>,
        /// JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Pause a pool member (DNSPod 暂停): never answered, out of the weights;
    /// kept across SIGHUP and restarts (the state file beside the config, or
    /// [dns] state_dir).
    Pause(PauseArgs),
    /// Resume a paused pool member.
    Resume(PauseArgs),
    /// Print a keepalived.conf (vrrp_instance, vrrp_script, include) as hadns
    /// TOML, with a comment for each keepalived key it cannot map.
    ImportKeepalived {
        /// The keepalived configuration, e.g. /etc/keepalived/keepalived.conf.
        file: PathBuf,
    },
    /// Write the man pages (hadns.8, hadns.toml.5) or the shell completions
    /// (bash, zsh, fish) into DIR; used by scripts/package.sh.
    #[command(hide = true)]
    Generate {
        #[arg(value_enum)]
        what: Generated,
        dir: PathBuf,
    },
}

#[derive(clap::Args)]
struct PauseArgs {
    /// The pool's name, e.g. ha.com.
    name: String,
    /// The member's address (its target in a CNAME pool).
    address: hadns::pool::MemberValue,
    /// Only the pool of this type (A, AAAA); default every type.
    #[arg(long = "type")]
    rtype: Option<String>,
    /// Only the pool of this line ("default" = the default line); default every line.
    #[arg(long)]
    line: Option<String>,
    /// The running hadns's config (its state directory holds the control socket).
    #[arg(short, long, default_value = DEFAULT_CONFIG)]
    config: PathBuf,
}

/// `hadns pause` / `resume`: one request over the control socket.
fn pause(pause: bool, a: PauseArgs) -> ExitCode {
    let cfg = match hadns::config::Config::load(&a.config) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    };
    let socket = hadns::pause::state_dir(&cfg).join(hadns::pause::SOCKET);
    let change = hadns::pause::Change {
        pause,
        name: a.name,
        address: a.address,
        rtype: a.rtype,
        line: a.line,
    };
    match hadns::pause::send(&socket, &change) {
        Ok(msg) => {
            println!("{msg}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum Generated {
    Man,
    Completions,
}

fn generate(what: Generated, dir: &std::path::Path) -> std::io::Result<()> {
    use clap::CommandFactory;
    std::fs::create_dir_all(dir)?;
    let cmd = Cli::command();
    match what {
        Generated::Man => {
            let mut page = Vec::new();
            clap_mangen::Man::new(cmd.clone())
                .section("8")
                .render(&mut page)?;
            std::fs::write(dir.join("hadns.8"), page)?;
            std::fs::write(dir.join("hadns.toml.5"), hadns::manual::config_man_page())?;
        }
        Generated::Completions => {
            use clap_complete::Shell;
            for (shell, file) in [
                (Shell::Bash, "hadns"),
                (Shell::Zsh, "_hadns"),
                (Shell::Fish, "hadns.fish"),
            ] {
                let mut out = Vec::new();
                clap_complete::generate(shell, &mut cmd.clone(), "hadns", &mut out);
                std::fs::write(dir.join(file), out)?;
            }
        }
    }
    Ok(())
}

fn status(config: Option<PathBuf>, addr: Option<std::net::SocketAddr>, json: bool) -> ExitCode {
    match hadns::ops::client::status(config.as_deref(), addr, json) {
        Ok(body) => {
            print!("{body}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.cmd {
        Cmd::ImportKeepalived { file } => match hadns::keepalived_import::import(&file) {
            Ok(c) => {
                print!("{}", c.toml);
                if c.unmapped > 0 {
                    eprintln!(
                        "note: {} keepalived key(s) not converted; see the comments at the end",
                        c.unmapped
                    );
                }
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("error: {e}");
                ExitCode::FAILURE
            }
        },
        Cmd::Generate { what, dir } => match generate(what, &dir) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("error: {}: {e}", dir.display());
                ExitCode::FAILURE
            }
        },
        Cmd::Status { config, addr, json } => status(config, addr, json),
        Cmd::Pause(a) => pause(true, a),
        Cmd::Resume(a) => pause(false, a),
        Cmd::Check { config } => match hadns::app::load(&config) {
            Ok(loaded) => {
                for line in hadns::app::summary(&loaded) {
                    println!("{line}");
                }
                let findings = hadns::vrrp_glue::host_findings(&loaded.cfg);
                for f in &findings {
                    let level = match f.severity {
                        hadns_vrrp::lint::Severity::Error => "error",
                        hadns_vrrp::lint::Severity::Warning => "warning",
                    };
                    eprintln!("{level}: {}: {f}", config.display());
                }
                let failed = hadns::app::failures(&loaded);
                for line in &failed {
                    eprintln!("error: {line}");
                }
                if !failed.is_empty()
                    || findings
                        .iter()
                        .any(|f| f.severity == hadns_vrrp::lint::Severity::Error)
                {
                    return ExitCode::FAILURE;
                }
                println!("{}: OK", config.display());
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("error: {e}");
                ExitCode::FAILURE
            }
        },
        Cmd::Run { config } => {
            // Read once here for [log] and [process]; `run` loads it again.
            let cfg = match hadns::config::Config::load(&config) {
                Ok(cfg) => cfg,
                Err(e) => {
                    hadns::service::init_logging(cli.verbose, &Default::default());
                    tracing::error!("{}", hadns::app::one_line(&e.to_string()));
                    return ExitCode::FAILURE;
                }
            };
            hadns::service::init_logging(cli.verbose, &cfg.log);
            // Before any thread exists: every thread inherits the new user.
            let who = hadns::privs::process_identity(&cfg).and_then(|who| {
                hadns::privs::set_script_user(hadns::privs::script_identity(&cfg)?);
                hadns::privs::become_user(who.as_ref(), &hadns::privs::needed(&cfg, true))?;
                // Named now, not when an instance first becomes master.
                hadns::privs::preflight(&cfg)
            });
            if let Err(e) = who {
                let e = hadns::app::AppError::from(e);
                report(&e);
                return ExitCode::FAILURE;
            }
            if nix::unistd::geteuid().is_root() && cfg.process.user.is_none() {
                tracing::warn!("running as root with every capability; set [process] user = \"hadns\" (see hadns.toml(5))");
            }
            let rt = match tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()
            {
                Ok(rt) => rt,
                Err(e) => {
                    eprintln!("error: cannot start the tokio runtime: {e}");
                    return ExitCode::FAILURE;
                }
            };
            let result = rt.block_on(async {
                let stop = hadns::app::stop_signal()?;
                hadns::app::run(config, stop).await
            });
            match result {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    report(&e);
                    ExitCode::FAILURE
                }
            }
        }
    }
}

/// Logs a fatal error on one line, with the capability to grant when it is
/// a permission error.
fn report(e: &hadns::app::AppError) {
    let msg = hadns::app::one_line(&e.to_string());
    match hadns::privs::missing_capability(e) {
        Some(cap) => tracing::error!("{msg}: {}", hadns::privs::hint(cap)),
        None => tracing::error!("{msg}"),
    }
}
