//! Command-line types only. The library never sees clap.

use std::path::PathBuf;

use clap::{Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(
    name = "poolc",
    version,
    about = "Compile autoscaled CI build-worker pool specs into KEDA, HAProxy, Karpenter and monitoring artifacts",
    after_help = "Exit codes: 0 ok, 1 findings or stale generated/, 2 bad input or usage."
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Compile specs/ into generated/. Nothing is written if anything fails.
    #[command(after_help = "Example:\n  poolc generate --specs specs --out generated")]
    Generate(Paths),
    /// Exit 1 and print a unified diff if generated/ is not what generate would write.
    #[command(after_help = "Example:\n  poolc check || echo 'run just generate and commit'")]
    Check(Paths),
    /// Explain a pool's capacity (`explain pool <cluster>/<pool>`) or a lint code.
    #[command(
        after_help = "Examples:\n  poolc explain pool production/amd64\n  poolc explain PC001"
    )]
    Explain {
        /// `pool <cluster>/<pool>`, or a lint code.
        #[arg(required = true, num_args = 1..=2)]
        what: Vec<String>,
        #[arg(long, default_value = "specs")]
        specs: PathBuf,
    },
    /// Write a commented starter spec for a new cluster to specs/<cluster>.yaml.
    #[command(after_help = "Example:\n  poolc init staging-eu && poolc generate")]
    Init {
        cluster: String,
        #[arg(long, default_value = "specs")]
        specs: PathBuf,
    },
}

#[derive(Debug, clap::Args)]
pub struct Paths {
    /// Directory of cluster specs, one YAML file per cluster.
    #[arg(long, default_value = "specs")]
    pub specs: PathBuf,
    /// Output directory.
    #[arg(long, default_value = "generated")]
    pub out: PathBuf,
}
