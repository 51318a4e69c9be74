//! The `poolc` binary: parse arguments, call the library, map the outcome to
//! an exit code (0 ok, 1 findings or stale output, 2 bad input or usage).

mod cli;

use std::process::ExitCode;

use clap::{CommandFactory, Parser};
use cli::{Cli, Command};
use poolc::pipeline::{self, Failure};

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Generate(paths) => generate(&paths),
        Command::Check(paths) => check(&paths),
        Command::Plan {
            paths,
            format,
            detailed_exitcode,
            simulate,
            baseline_specs,
        } => plan(
            &paths,
            format,
            detailed_exitcode,
            simulate.as_deref().map(|s| (s, baseline_specs.as_deref())),
        ),
        Command::Schema => {
            print!("{}", poolc::spec::json_schema());
            ExitCode::SUCCESS
        }
        Command::Explain { what, specs } => explain(&what, &specs),
        Command::Init { cluster, specs } => init(&cluster, &specs),
        Command::Catalog(cli::CatalogCommand::Import(args)) => catalog_import(args),
        Command::Completions { shell } => {
            let mut command = Cli::command();
            clap_complete::generate(shell, &mut command, "poolc", &mut std::io::stdout());
            ExitCode::SUCCESS
        }
        Command::Man { dir } => man(dir.as_deref()),
        Command::Simulate(args) => simulate(&args),
        Command::Lint {
            paths,
            catalog,
            format,
            deny,
        } => lint(&paths, catalog.as_deref(), format, deny.is_some()),
    }
}

fn lint(
    paths: &[std::path::PathBuf],
    catalog: Option<&std::path::Path>,
    format: cli::LintFormat,
    deny_warnings: bool,
) -> ExitCode {
    let diagnostics = match poolc::lint::lint_paths(paths, catalog) {
        Ok(d) => d,
        Err(message) => {
            eprintln!("error: {message}");
            return ExitCode::from(2);
        }
    };
    let format = match format {
        cli::LintFormat::Human => poolc::report::Format::Human,
        cli::LintFormat::Json => poolc::report::Format::Json,
        cli::LintFormat::Github => poolc::report::Format::Github,
        cli::LintFormat::Sarif => poolc::report::Format::Sarif,
    };
    print!("{}", poolc::report::render(format, &diagnostics));
    let failing = diagnostics
        .iter()
        .any(|d| d.severity == poolc::diagnostic::Severity::Error || deny_warnings);
    if failing {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    }
}

fn plan(
    paths: &cli::Paths,
    format: cli::PlanFormat,
    detailed: bool,
    simulate: Option<(&str, Option<&std::path::Path>)>,
) -> ExitCode {
    warn(&paths.specs);
    let error_code = if detailed { 1 } else { 2 };
    let planned = pipeline::compile(&paths.specs)
        .map_err(|f| f.to_string())
        .and_then(|set| poolc::plan::plan(&set, &paths.out).map_err(|e| format!("error: {e}")));
    let plan = match planned {
        Ok(plan) => plan,
        Err(message) => {
            eprintln!("{message}");
            return ExitCode::from(error_code);
        }
    };
    let mut text = match format {
        cli::PlanFormat::Text => poolc::plan::render_text(&plan),
        cli::PlanFormat::Markdown => poolc::plan::render_markdown(&plan),
        cli::PlanFormat::Json => poolc::plan::render_json(&plan),
    };
    if let Some((scenario, baseline)) = simulate {
        match plan_simulation(paths, scenario, baseline, format, &text) {
            Ok(with_runs) => text = with_runs,
            Err(message) => {
                eprintln!("{message}");
                return ExitCode::from(error_code);
            }
        }
    }
    print!("{text}");
    if detailed && !plan.is_empty() {
        ExitCode::from(2)
    } else {
        ExitCode::SUCCESS
    }
}

/// The plan with `--simulate`'s before → after runs added. The base specs
/// default to the `specs` directory beside the compared tree, as the README's
/// CI workflow lays out the base branch (`../base/{specs,generated}`).
fn plan_simulation(
    paths: &cli::Paths,
    scenario: &str,
    baseline: Option<&std::path::Path>,
    format: cli::PlanFormat,
    plan_text: &str,
) -> Result<String, String> {
    let sibling = paths
        .out
        .parent()
        .map(|p| p.join("specs"))
        .filter(|dir| dir.is_dir())
        .filter(|dir| {
            let canonical = |p: &std::path::Path| p.canonicalize().ok();
            canonical(dir) != canonical(&paths.specs)
        });
    let baseline = baseline.map(std::path::Path::to_path_buf).or(sibling);
    let (after, before) = poolc::simulate::plan_runs(&paths.specs, baseline.as_deref(), scenario)?;
    Ok(match format {
        cli::PlanFormat::Json => {
            let mut plan: serde_json::Value =
                serde_json::from_str(plan_text).map_err(|e| format!("error: {e}"))?;
            if let Some(object) = plan.as_object_mut() {
                object.insert(
                    "simulate".to_string(),
                    serde_json::json!({ "after": after, "before": before }),
                );
            }
            serde_json::to_string_pretty(&plan).map_err(|e| format!("error: {e}"))? + "\n"
        }
        _ => {
            let note = match &baseline {
                Some(dir) if before.is_some() => format!("before: {}", dir.display()),
                _ => "no base specs to compare with (--baseline-specs DIR)".to_string(),
            };
            format!(
                "{plan_text}\n{}\n_{note}_\n",
                poolc::simulate::report::markdown(&after, before.as_ref())
            )
        }
    })
}

fn explain(what: &[String], specs: &std::path::Path) -> ExitCode {
    match what {
        [kind, target] if kind == "pool" => explain_pool(target, specs),
        [code] => match poolc::lint::checks::find(code) {
            Some(check) => {
                print!("{}", poolc::lint::checks::explain(check));
                ExitCode::SUCCESS
            }
            None if poolc::render::alerts::find(code).is_some() => {
                if let Some(alert) = poolc::render::alerts::find(code) {
                    print!("{}", poolc::render::alerts::explain(alert));
                }
                ExitCode::SUCCESS
            }
            None => {
                eprintln!("error: unknown lint code or alert `{code}`: `poolc lint` prints the code of each finding, and the README lists the alerts");
                ExitCode::from(2)
            }
        },
        _ => {
            eprintln!("error: use `poolc explain pool <cluster>/<pool>` or `poolc explain <CODE>`");
            ExitCode::from(2)
        }
    }
}

fn explain_pool(target: &str, specs: &std::path::Path) -> ExitCode {
    let Some((cluster_name, pool_name)) = target.split_once('/') else {
        eprintln!("error: name the pool as <cluster>/<pool>, for example production/amd64");
        return ExitCode::from(2);
    };
    let model = match pipeline::load_model(specs) {
        Ok(model) => model,
        Err(failure) => return fail(failure),
    };
    let found = model
        .clusters
        .iter()
        .find(|c| c.name == cluster_name)
        .and_then(|c| c.pools.iter().find(|p| p.name == pool_name).map(|p| (c, p)));
    match found {
        Some((cluster, pool)) => {
            print!("{}", poolc::capacity::explain(cluster, pool));
            ExitCode::SUCCESS
        }
        None => {
            let known: Vec<String> = model
                .clusters
                .iter()
                .flat_map(|c| {
                    c.pools
                        .iter()
                        .map(move |p| format!("{}/{}", c.name, p.name))
                })
                .collect();
            eprintln!(
                "error: no pool {target}; the specs define {}",
                known.join(", ")
            );
            ExitCode::from(2)
        }
    }
}

/// Without a directory, the top page on stdout; with one, a page per
/// command (poolc.1, poolc-generate.1, ...) as `man poolc-generate` expects.
fn man(dir: Option<&std::path::Path>) -> ExitCode {
    // `poolc help` is --help in another form; it gets no page of its own.
    let command = Cli::command().disable_help_subcommand(true);
    let written = match dir {
        Some(dir) => std::fs::create_dir_all(dir)
            .and_then(|()| clap_mangen::generate_to(command, dir))
            .map(|()| println!("poolc: wrote man pages to {}", dir.display())),
        None => clap_mangen::Man::new(command).render(&mut std::io::stdout()),
    };
    match written {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: cannot write the man pages: {e}");
            ExitCode::from(2)
        }
    }
}

/// The catalog on stdout (ready to redirect and commit); what was left out on stderr.
fn catalog_import(args: cli::ImportArgs) -> ExitCode {
    let sources = poolc::catalog::import::Sources {
        metadata: args.metadata,
        series: args.series,
        exposition: args.exposition,
        target_labels: args.target_labels,
    };
    match poolc::catalog::import::import(&sources) {
        Ok(imported) => {
            print!("{}", imported.text);
            for note in &imported.notes {
                eprintln!("note: {note}");
            }
            eprintln!("poolc: imported {} metrics", imported.rows);
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(2)
        }
    }
}

fn init(cluster: &str, specs: &std::path::Path) -> ExitCode {
    let text = match poolc::starter::starter_spec(cluster) {
        Ok(text) => text,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    let path = specs.join(format!("{cluster}.yaml"));
    let name = format!("{cluster}.yaml");
    // Through the door: no link in specs/ is followed, and O_EXCL never
    // writes through anything already at the name, not even a dangling link.
    let written = poolc::door::Dir::open_or_create(specs).and_then(|(dir, _)| {
        if dir.kind(&name)?.is_some() {
            return Ok(false);
        }
        dir.create_new(&name, text.as_bytes()).map(|()| true)
    });
    match written {
        Ok(true) => {
            println!("poolc: wrote {}; run `poolc generate` next", path.display());
            ExitCode::SUCCESS
        }
        Ok(false) => {
            eprintln!(
                "error: {} exists; poolc init never overwrites a spec",
                path.display()
            );
            ExitCode::from(2)
        }
        Err(e) => {
            eprintln!("error: cannot write {}: {e}", path.display());
            ExitCode::from(2)
        }
    }
}

fn generate(paths: &cli::Paths) -> ExitCode {
    warn(&paths.specs);
    let set = match pipeline::compile(&paths.specs) {
        Ok(set) => set,
        Err(failure) => return fail(failure),
    };
    match set.write(&paths.out) {
        Ok(changes) => {
            println!(
                "poolc: {} files in {}, {} changed",
                set.len(),
                paths.out.display(),
                changes.len()
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(2)
        }
    }
}

fn check(paths: &cli::Paths) -> ExitCode {
    warn(&paths.specs);
    let set = match pipeline::compile(&paths.specs) {
        Ok(set) => set,
        Err(failure) => return fail(failure),
    };
    match set.diff(&paths.out) {
        Ok(diff) if diff.is_empty() => {
            println!("poolc: {} is current", paths.out.display());
            ExitCode::SUCCESS
        }
        Ok(diff) => {
            print!("{diff}");
            eprintln!(
                "poolc: {} is stale: run `just generate` (or `poolc generate`) and commit the result",
                paths.out.display()
            );
            ExitCode::from(1)
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(2)
        }
    }
}

/// Hazards the specs accept but the team must see on every run.
fn warn(specs: &std::path::Path) {
    if let Ok(model) = pipeline::load_model(specs) {
        for warning in &model.warnings {
            eprintln!(
                "{}\n",
                warning.to_string().replacen(": error: ", ": warning: ", 1)
            );
        }
    }
}

fn fail(failure: Failure) -> ExitCode {
    eprintln!("{failure}");
    ExitCode::from(failure.exit_code())
}

fn simulate(args: &cli::Simulate) -> ExitCode {
    match simulate_report(args) {
        Ok(text) => {
            print!("{text}");
            ExitCode::SUCCESS
        }
        Err(message) => {
            eprintln!("{message}");
            ExitCode::from(2)
        }
    }
}

fn simulate_report(args: &cli::Simulate) -> Result<String, String> {
    use poolc::simulate::{self, workload::Durations, Choice};
    let ms = |flag: &str, text: &str| {
        simulate::params::Millis::parse(text)
            .map(|m| m.0)
            .map_err(|e| format!("error: {flag}: {e}"))
    };
    let generator = simulate::parse_generator(
        args.poisson,
        args.bursts.as_deref(),
        args.diurnal.as_deref(),
    )?;
    let workload = match (&args.scenario, &args.trace, generator) {
        (Some(name), _, _) => Choice::Scenario(name.clone()),
        (_, Some(path), _) => Choice::Trace(path.clone()),
        (_, _, Some(g)) => Choice::Generator(g),
        _ => {
            return Err("error: give a workload: --scenario NAME, --trace FILE, --poisson, --bursts or --diurnal".to_string())
        }
    };
    let request = simulate::Request {
        target: args.target.clone(),
        workload,
        seed: args.seed,
        horizon: args
            .horizon
            .as_deref()
            .map(|h| ms("--horizon", h))
            .transpose()?,
        durations: args
            .durations
            .as_deref()
            .map(|d| Durations::parse(d).map_err(|e| format!("error: {e}")))
            .transpose()?,
        alerts: !args.no_alerts,
    };
    let report = simulate::simulate_specs(&args.specs, &request)?;
    let baseline = match &args.baseline {
        Some(dir) => Some(simulate::simulate_specs(dir, &request)?),
        None => None,
    };
    if let Some(dir) = &args.svg {
        simulate::svg_files(&report)?
            .write(dir)
            .map_err(|e| format!("error: {e}"))?;
    }
    Ok(match args.format {
        cli::SimulateFormat::Text => simulate::report::text(&report),
        cli::SimulateFormat::Json => simulate::report::json(&report),
        cli::SimulateFormat::Markdown => simulate::report::markdown(&report, baseline.as_ref()),
    })
}
