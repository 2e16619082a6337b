//! The `hadns` command: `run` serves, `check` validates (exit 0 + a summary,
//! or exit 1 + the error naming file and key/line).

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "hadns",
    version,
    about = "Authoritative DNS with health-aware pools + VRRP"
)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Serve DNS (and run checks and VRRP) until SIGINT/SIGTERM; SIGHUP reloads.
    Run {
        #[arg(short, long)]
        config: PathBuf,
    },
    /// Validate the config and every zone, print one line per zone/pool/check.
    Check {
        #[arg(short, long)]
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
        Cmd::Status { config, addr, json } => status(config, addr, json),
        Cmd::Check { config } => match hadns::app::load(&config) {
            Ok(loaded) => {
                for line in hadns::app::summary(&loaded) {
                    println!("{line}");
                }
                let failed = hadns::app::failures(&loaded);
                for line in &failed {
                    eprintln!("error: {line}");
                }
                if !failed.is_empty() {
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
            let filter = tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,hickory_server=warn"));
            tracing_subscriber::fmt()
                .with_env_filter(filter)
                .with_writer(std::io::stderr)
                .with_ansi(std::io::stderr().is_terminal())
                .init();
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
                    tracing::error!("{}", hadns::app::one_line(&e.to_string()));
                    ExitCode::FAILURE
                }
            }
        }
    }
}
