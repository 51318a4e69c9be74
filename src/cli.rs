//! Command-line types only. The library never sees clap.

use std::path::PathBuf;

use clap::{Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(
    name = "poolc",
    version,
    propagate_version = true,
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
    /// Show what `generate` would change, object by object and field by field.
    #[command(
        after_help = "Examples:\n  poolc plan\n  poolc plan --format markdown > plan.md   # a PR comment\n  poolc plan --detailed-exitcode           # 0 no changes, 2 changes, 1 error\n  poolc plan --format markdown --out ../base/generated --simulate seed000"
    )]
    Plan {
        #[command(flatten)]
        paths: Paths,
        #[arg(long, value_enum, default_value_t = PlanFormat::Text)]
        format: PlanFormat,
        /// Exit 0 when nothing changes, 2 when something does, 1 on error.
        #[arg(long)]
        detailed_exitcode: bool,
        /// Also run a built-in `poolc simulate` scenario (seed000,
        /// seed001-burst, seed001-overload, diurnal) on the specs and on the
        /// base specs, and add the before → after table.
        #[arg(long, value_name = "SCENARIO")]
        simulate: Option<String>,
        /// The base branch's specs for --simulate's "before"; default: the
        /// `specs` directory beside the --out tree (`../base/specs` for
        /// `--out ../base/generated`).
        #[arg(long, value_name = "DIR", requires = "simulate")]
        baseline_specs: Option<PathBuf>,
    },
    /// Print the spec's JSON Schema (also written to generated/poolc.schema.json).
    #[command(after_help = "Example:\n  poolc schema > poolc.schema.json")]
    Schema,
    /// Explain a pool's capacity (`explain pool <cluster>/<pool>`) or a lint code.
    #[command(
        after_help = "Examples:\n  poolc explain pool production/amd64\n  poolc explain P002"
    )]
    Explain {
        /// `pool <cluster>/<pool>`, or a lint code.
        #[arg(required = true, num_args = 1..=2)]
        what: Vec<String>,
        #[arg(long, default_value = "specs")]
        specs: PathBuf,
    },
    /// Check PromQL in rule files, dashboards, KEDA objects and ServiceMonitors
    /// against the metric catalog. Exit 0 clean, 1 findings, 2 bad input.
    #[command(
        after_help = "Examples:\n  poolc lint generated/\n  poolc lint --catalog catalog.yaml --format github rules/ dashboards/"
    )]
    Lint {
        /// Files or directories (*.yaml, *.yml, *.json, *.cfg).
        #[arg(required = true)]
        paths: Vec<PathBuf>,
        /// Exporter versions, own metrics, scrape mapping; default: newest versions.
        #[arg(long)]
        catalog: Option<PathBuf>,
        #[arg(long, value_enum, default_value_t = LintFormat::Human)]
        format: LintFormat,
        /// `--deny warnings`: warnings also exit 1.
        #[arg(long, value_parser = ["warnings"])]
        deny: Option<String>,
    },
    /// Print a shell completion script.
    #[command(
        after_help = "Examples:\n  poolc completions bash > /etc/bash_completion.d/poolc\n  poolc completions zsh > \"${fpath[1]}/_poolc\""
    )]
    Completions {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Print the man page (roff), or write one page per command to a directory.
    #[command(
        after_help = "Examples:\n  poolc man | man -l -\n  poolc man --dir /usr/local/share/man/man1 && man poolc-plan"
    )]
    Man {
        /// Write poolc.1 and poolc-<command>.1 here instead of printing poolc.1.
        #[arg(long)]
        dir: Option<PathBuf>,
    },
    /// Build a metric catalog for `lint --catalog` from a real Prometheus or exporter.
    #[command(
        subcommand,
        after_help = "Examples:\n  poolc catalog import --metadata metadata.json --series series.json > catalog.yaml\n  poolc catalog import --exposition node.txt > catalog.yaml"
    )]
    Catalog(CatalogCommand),
    /// Predict queue waits, failed builds, cold boots, pod- and node-hours and
    /// alerts for a workload, by simulating the LB, KEDA, the HPA and Karpenter.
    #[command(
        after_help = "Examples:\n  poolc simulate staging/amd64 --scenario seed000\n  poolc simulate production --trace builds.csv --format json\n  poolc simulate staging --poisson 30 --durations exp:10m --horizon 1d --seed 7\n  poolc simulate staging --scenario diurnal --format markdown --baseline ../main/specs\n\nScenarios: seed000, seed001-burst, seed001-overload, diurnal.\nExit codes: 0 ok, 2 bad input (a trace error names file:line)."
    )]
    Simulate(Simulate),
    /// Write a commented starter spec for a new cluster to specs/<cluster>.yaml.
    #[command(after_help = "Example:\n  poolc init staging-eu && poolc generate")]
    Init {
        cluster: String,
        #[arg(long, default_value = "specs")]
        specs: PathBuf,
    },
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum LintFormat {
    Human,
    Json,
    Github,
    Sarif,
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum PlanFormat {
    Text,
    Markdown,
    Json,
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

#[derive(Debug, Subcommand)]
pub enum CatalogCommand {
    /// Print a catalog file of the metrics a Prometheus stores or an exporter serves.
    #[command(
        after_help = "Examples:\n  curl -s http://prometheus:9090/api/v1/metadata > metadata.json\n  curl -s http://prometheus:9090/api/v1/series --data-urlencode 'match[]={job=\"node\"}' > series.json\n  poolc catalog import --metadata metadata.json --series series.json > catalog.yaml\n  curl -s http://node-exporter:9100/metrics > node.txt\n  poolc catalog import --exposition node.txt > node-catalog.yaml"
    )]
    Import(ImportArgs),
}

#[derive(Debug, clap::Args)]
pub struct ImportArgs {
    /// The JSON of Prometheus' /api/v1/metadata (types), with --series.
    #[arg(long, requires = "series", value_name = "FILE")]
    pub metadata: Option<PathBuf>,
    /// The JSON of /api/v1/series (names and labels as stored), or of
    /// /api/v1/label/__name__/values (names only: any label is accepted).
    #[arg(long, requires = "metadata", value_name = "FILE")]
    pub series: Option<PathBuf>,
    /// An exporter's /metrics text; repeat for several exporters.
    #[arg(long, value_name = "FILE")]
    pub exposition: Vec<PathBuf>,
    /// Labels Prometheus adds to every series it scrapes, for --exposition rows.
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "job,instance",
        value_name = "LABELS"
    )]
    pub target_labels: Vec<String>,
}

#[derive(Debug, clap::Args)]
pub struct Simulate {
    /// `<cluster>` (all its pools) or `<cluster>/<pool>`.
    pub target: String,
    #[arg(long, default_value = "specs")]
    pub specs: PathBuf,
    /// A built-in scenario: seed000, seed001-burst, seed001-overload, diurnal.
    #[arg(long, group = "workload")]
    pub scenario: Option<String>,
    /// CSV `arrival,duration[,pool]` (seconds or RFC 3339), or GitHub jobs JSON (*.json).
    #[arg(long, group = "workload")]
    pub trace: Option<PathBuf>,
    /// Poisson arrivals, builds per hour.
    #[arg(long, group = "workload")]
    pub poisson: Option<f64>,
    /// Compound-Poisson bursts: `PER_HOUR:MEAN_SIZE`.
    #[arg(long, group = "workload", value_name = "PER_HOUR:SIZE")]
    pub bursts: Option<String>,
    /// A sinusoidal day: `TROUGH:PEAK` builds per hour (midnight, noon).
    #[arg(long, group = "workload", value_name = "TROUGH:PEAK")]
    pub diurnal: Option<String>,
    /// Build durations of generated builds: fixed:10m, exp:10m, lognormal:20m:60m.
    /// Default: the spec's simulate.builds (lognormal, median 20m, p95 60m).
    #[arg(long)]
    pub durations: Option<String>,
    /// How long to simulate (generators: default 1d; at least the workload).
    #[arg(long)]
    pub horizon: Option<String>,
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    #[arg(long, value_enum, default_value_t = SimulateFormat::Text)]
    pub format: SimulateFormat,
    /// Write a timeline per pool to DIR/<cluster>-<pool>.svg.
    #[arg(long, value_name = "DIR")]
    pub svg: Option<PathBuf>,
    /// Skip evaluating the generated alerts (faster on long runs).
    #[arg(long)]
    pub no_alerts: bool,
    /// Base specs to compare against (markdown shows before → after).
    #[arg(long, value_name = "SPECS_DIR")]
    pub baseline: Option<PathBuf>,
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum SimulateFormat {
    Text,
    Markdown,
    Json,
}
