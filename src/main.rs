//! The `auditwatch` command line. Arguments are parsed and validated here; everything else
//! lives in the library. `anyhow` is used only in this file.

use std::fs::File;
use std::io::{self, BufRead, BufReader, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{bail, Context as _};
use clap::{Parser, Subcommand};

use auditwatch::admin::metrics::Metrics;
use auditwatch::config;
use auditwatch::detection::definition::{Category, Detector};
use auditwatch::detection::engine::EngineOptions;
use auditwatch::detection::pack;
use auditwatch::input::event::DEFAULT_MAX_EVENT_BYTES;
use auditwatch::input::formats::InputFormat;
use auditwatch::pipeline::{Control, Pipeline};
use auditwatch::query::output::OutputFormat;
use auditwatch::query::{Catalog, Limits};
use auditwatch::replay::Decoding;
use auditwatch::synthetic::{demo, eval, gen};

mod replay_command;
mod store_commands;
use replay_command::{replay_files, EnrichmentArgs};
use store_commands::{forget, query, review, StoreAt};

#[derive(Parser)]
#[command(
    name = "auditwatch",
    version,
    about = "Streaming anomaly detection for the audit logs of automation credentials"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// The service: Kafka in, detection, alerts out, checkpoints, admin HTTP.
    Run {
        #[arg(long)]
        config: PathBuf,
    },
    /// The main job end to end on this machine with nothing installed (in-process Kafka).
    Demo {
        #[arg(long, default_value_t = 7)]
        seed: u64,
        #[arg(long, default_value_t = 60)]
        accounts: usize,
        #[arg(long, default_value_t = 21)]
        days: u32,
    },
    /// Send a sample alert through a route's outputs and print what each answered.
    Alert {
        #[command(subcommand)]
        action: AlertAction,
    },
    /// Silence alerts for a while (maintenance windows), list and expire silences.
    Silence {
        #[command(subcommand)]
        action: SilenceAction,
    },
    /// Check a config file, or print the config JSON Schema.
    Config {
        #[command(subcommand)]
        action: ConfigAction,
    },
    /// Run the engine over history, in order; alerts go to stdout as JSON lines.
    ///
    /// Each input is JSON lines, or a whole JSON document (a CloudTrail log file
    /// `{"Records": [...]}`, a JSON array, a pretty-printed record), either of them possibly
    /// gzip-compressed.
    Replay {
        /// Input files or directories (every file in it, in name order), `-` for standard input;
        /// read in the order given.
        #[arg(default_value = "-")]
        files: Vec<PathBuf>,
        /// Detector definitions directory (default: the built-in pack).
        #[arg(long)]
        detectors: Option<PathBuf>,
        /// Write each rejected line or record here as a JSON object with reason, source and raw text.
        #[arg(long)]
        dead_letter: Option<PathBuf>,
        /// Retain every event and dead letter as Parquet files in this store directory (the
        /// layout of the service's `[store]`); replaying an input again replaces its files.
        #[arg(long)]
        store: Option<PathBuf>,
        /// Format of every line or record: native, cloudtrail (CloudTrail records), ocsf, okta
        /// (Okta System Log events), or auto (each record in the format its fields show).
        #[arg(long, default_value = "native")]
        format: InputFormat,
        /// Largest accepted line or record, in bytes.
        #[arg(long, default_value_t = DEFAULT_MAX_EVENT_BYTES)]
        max_event_bytes: usize,
        /// Allowed lateness of an event behind the newest one (e.g. "1h").
        #[arg(long, default_value = "1h")]
        allowed_lateness: auditwatch::detection::time::Duration,
        #[command(flatten)]
        enrichment: EnrichmentArgs,
    },
    /// Run SQL over the store. Tables: events, alerts, dead_letters (partitioned by `dt`),
    /// accounts and credentials (views over events). Only queries run.
    ///
    /// Output: an aligned table on a terminal, CSV otherwise, or as --format says.
    Query {
        #[command(flatten)]
        at: StoreAt,
        #[arg(long)]
        format: Option<OutputFormat>,
        /// Run the query and print its plan with what it read and what statistics pruned
        /// (EXPLAIN ANALYZE), instead of its rows.
        #[arg(long)]
        explain: bool,
        /// One SQL query (SELECT or WITH).
        sql: String,
    },
    /// The access review over the store: keys unused for 30 days, keys not rotated for 90
    /// days, keys used from more than one network, accounts that never write. "Now" is the
    /// newest event in the store.
    Review {
        #[command(flatten)]
        at: StoreAt,
        #[arg(long)]
        format: Option<OutputFormat>,
    },
    /// Erase one account: its rows in the store, its name in other alerts' evidence, and its
    /// learned state and its keys' state in the checkpoint. Run it while the service is
    /// stopped; it refuses when the admin server answers. Files are replaced whole, so a crash
    /// leaves each one old or new; run it again to finish.
    Forget {
        #[command(flatten)]
        at: StoreAt,
        #[arg(long)]
        account: String,
        /// Only in this tenant (default: the account name in every tenant).
        #[arg(long)]
        tenant: Option<String>,
    },
    /// Score a `timestamp,value` time series (CSV) with the volume model.
    ///
    /// Reads a header row `timestamp,value`, then rows like `2014-04-01 00:00:00,20.5`
    /// (timestamps in UTC, or RFC 3339; in time order; values ≥ 0), the form of the Numenta
    /// Anomaly Benchmark's data files, and writes `timestamp,value,anomaly_score`.
    ///
    /// The model is the one the volume detectors keep per account: values are summed per clock
    /// hour into 168 hour-of-week buckets (Monday 00:00 UTC to Sunday 23:00 UTC) on a log scale
    /// (6 levels per doubling); each bucket follows new weeks with an EWMA that moves half-way
    /// to the new hour (at most one doubling up), so slow change is followed within weeks.
    /// Each row is scored on the sliding hour ending at it against the usual hour at this time
    /// of week (the largest of it and its neighbours), before the row is learned:
    /// z = log2(observed / usual) / max(σ, 0.5), σ the series' own spread of log2 deviations
    /// (an EWMA with weight 0.05 per hour), and anomaly_score = erf(z/√2) for z > 0, else 0:
    /// in [0, 1], 0.68 at one σ above the usual level, 0.95 at two. Only excess scores.
    /// Warm-up: every score is 0 until a whole calendar week with data has closed.
    #[command(verbatim_doc_comment)]
    Series {
        /// The CSV to score.
        #[arg(long)]
        input: PathBuf,
        /// Where to write the scored rows (default: standard output).
        #[arg(long)]
        output: Option<PathBuf>,
    },
    /// Validate or test detector definitions.
    Detectors {
        #[command(subcommand)]
        action: DetectorsAction,
    },
    /// Generate deterministic synthetic traffic with labelled incidents.
    Gen {
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// Default 100 (80 with --hard).
        #[arg(long)]
        accounts: Option<usize>,
        /// Days of traffic; the last 7 are judged. Default 21 (52 with --hard).
        #[arg(long)]
        days: Option<u32>,
        /// The hard set: low-and-slow attacks, an outage across accounts, monthly jobs, a
        /// shared key and daylight-saving changes, from 2026-02-09.
        #[arg(long)]
        hard: bool,
        /// Output directory for events.jsonl and labels.json.
        #[arg(long, default_value = "out")]
        out: PathBuf,
    },
    /// Score alerts (JSON lines) against the labels written by `gen`.
    Eval {
        #[arg(long)]
        labels: PathBuf,
        #[arg(long)]
        alerts: PathBuf,
        /// Print the report as JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Subcommand)]
enum AlertAction {
    /// Exits non-zero if any output failed.
    Test {
        #[arg(long)]
        config: PathBuf,
        /// The route to test (`default` is every output).
        #[arg(long)]
        route: String,
    },
}

/// Where the silences file is: from the service config, or given directly.
#[derive(clap::Args)]
#[group(required = true, multiple = false)]
struct SilencesAt {
    /// The service config; its silences file is used.
    #[arg(long)]
    config: Option<PathBuf>,
    /// The silences file itself.
    #[arg(long)]
    file: Option<PathBuf>,
}

// Parsed once per run: the size of its largest variant does not matter.
#[allow(clippy::large_enum_variant)]
#[derive(Subcommand)]
enum SilenceAction {
    /// Add a silence. Every given matcher must match; repeat one to allow several values.
    Add {
        #[command(flatten)]
        at: SilencesAt,
        /// Account glob (`ci-*`).
        #[arg(long)]
        account: Vec<String>,
        #[arg(long)]
        detector: Vec<String>,
        #[arg(long)]
        severity: Vec<auditwatch::detection::definition::Severity>,
        #[arg(long)]
        category: Vec<Category>,
        #[arg(long)]
        tenant: Vec<String>,
        /// Why (shown in `silence list` and in the logs).
        #[arg(long)]
        reason: String,
        /// Who (default: $USER).
        #[arg(long)]
        by: Option<String>,
        /// When it starts (RFC 3339; default: now).
        #[arg(long)]
        starts: Option<String>,
        /// How long it lasts from its start (`2h`, `30m`, `1d`).
        #[arg(long = "for", conflicts_with = "until")]
        duration: Option<auditwatch::detection::time::Duration>,
        /// When it ends (RFC 3339).
        #[arg(long)]
        until: Option<String>,
    },
    /// List silences: active and pending ones, and with --all the expired ones too.
    List {
        #[command(flatten)]
        at: SilencesAt,
        #[arg(long)]
        all: bool,
    },
    /// End a silence now (it stays in the file, expired, for the record).
    Expire {
        #[command(flatten)]
        at: SilencesAt,
        id: String,
    },
}

#[derive(Subcommand)]
enum ConfigAction {
    /// Report every problem in a config file at once (secrets are resolved, never printed).
    Check { file: PathBuf },
    /// Print the JSON Schema of the config (schemas/config.schema.json).
    Schema,
}

#[derive(Subcommand)]
enum DetectorsAction {
    /// Validate every definition and report all problems with file and field.
    Check { dir: Option<PathBuf> },
    /// Run every inline test of every definition.
    Test { dir: Option<PathBuf> },
}

fn alert_test(config: &Path, route: &str) -> anyhow::Result<()> {
    init_tracing("warn");
    let config = config::load(config)?;
    let results = auditwatch::alerting::probe::probe_route(&config, route).map_err(anyhow::Error::msg)?;
    let mut failed = 0;
    for result in &results {
        match &result.outcome {
            Ok(answer) => println!("{:<24} ok: {answer}", result.output),
            Err(reason) => {
                failed += 1;
                println!("{:<24} FAILED: {reason}", result.output);
            }
        }
    }
    if failed > 0 {
        bail!("{failed} of {} output(s) of route `{route}` failed", results.len());
    }
    Ok(())
}

fn silence(action: SilenceAction) -> anyhow::Result<()> {
    use auditwatch::alerting::silence::SilenceFile;
    use chrono::{DateTime, Utc};
    let path = |at: &SilencesAt| -> anyhow::Result<PathBuf> {
        match (&at.config, &at.file) {
            (_, Some(file)) => Ok(file.clone()),
            (Some(config), None) => Ok(config::load(config)?.silences_file()),
            (None, None) => bail!("give --config or --file"),
        }
    };
    let time = |field: &str, text: &str| -> anyhow::Result<DateTime<Utc>> {
        DateTime::parse_from_rfc3339(text)
            .map(|t| t.with_timezone(&Utc))
            .with_context(|| format!("--{field} {text:?} is not an RFC 3339 time (2026-12-01T18:00:00Z)"))
    };
    let now = Utc::now();
    match action {
        SilenceAction::Add {
            at,
            account,
            detector,
            severity,
            category,
            tenant,
            reason,
            by,
            starts,
            duration,
            until,
        } => {
            let path = path(&at)?;
            let matcher = config::AlertMatcher { category, severity, detector, account, tenant };
            if matcher == config::AlertMatcher::default() {
                bail!("a silence needs at least one matcher (--account, --detector, --severity, --category, --tenant)");
            }
            auditwatch::alerting::route::Matcher::new(&matcher).map_err(anyhow::Error::msg)?;
            let starts = starts.map(|s| time("starts", &s)).transpose()?.unwrap_or(now);
            let ends = match (duration, until) {
                (Some(d), _) => starts + chrono::Duration::milliseconds(d.millis()),
                (None, Some(u)) => time("until", &u)?,
                (None, None) => bail!("say how long: --for 2h or --until 2026-12-01T18:00:00Z"),
            };
            if ends <= starts {
                bail!("the silence would end before it starts");
            }
            let by = by.or_else(|| std::env::var("USER").ok()).unwrap_or_else(|| "unknown".to_string());
            let mut file = SilenceFile::read(&path).map_err(anyhow::Error::msg)?;
            let id = file.add(matcher, reason, by, starts, ends).id.clone();
            file.write(&path).map_err(anyhow::Error::msg)?;
            println!("{id}");
            Ok(())
        }
        SilenceAction::List { at, all } => {
            let file = SilenceFile::read(&path(&at)?).map_err(anyhow::Error::msg)?;
            println!("{:<16} {:<8} {:<21} {:<21} {:<12} {:<30} REASON", "ID", "STATE", "STARTS", "ENDS", "BY", "MATCH");
            for s in &file.silences {
                let state = match s.window() {
                    Ok((_, end)) if end <= now => "expired",
                    Ok((start, _)) if start > now => "pending",
                    Ok(_) => "active",
                    Err(_) => "invalid",
                };
                if state == "expired" && !all {
                    continue;
                }
                let matcher = serde_json::to_string(&s.matcher).unwrap_or_default();
                println!(
                    "{:<16} {:<8} {:<21} {:<21} {:<12} {:<30} {}",
                    s.id, state, s.starts_at, s.ends_at, s.created_by, matcher, s.reason
                );
            }
            Ok(())
        }
        SilenceAction::Expire { at, id } => {
            let path = path(&at)?;
            let mut file = SilenceFile::read(&path).map_err(anyhow::Error::msg)?;
            if !file.expire(&id, now) {
                bail!("no silence has id {id}");
            }
            file.write(&path).map_err(anyhow::Error::msg)?;
            println!("expired {id}");
            Ok(())
        }
    }
}

/// A failed command prints its error chain on one line and exits with 1. Returning
/// `anyhow::Result` from `main` would print the `Debug` form, which adds a stack backtrace
/// when `RUST_BACKTRACE` is set: noise for a user's mistake such as a missing config file.
fn main() -> ExitCode {
    match run(Cli::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {}", error_chain(&error));
            ExitCode::FAILURE
        }
    }
}

/// The error and its causes as `anyhow`'s `{:#}` writes them (`outer: cause: root`), except
/// that a cause is left out when the text before it already ends with it: most of the crate's
/// errors include their source's message, and `{:#}` would print that message twice.
fn error_chain(error: &anyhow::Error) -> String {
    let mut line = String::new();
    for cause in error.chain() {
        let text = cause.to_string();
        if line.is_empty() {
            line = text;
        } else if !line.ends_with(&text) {
            line.push_str(": ");
            line.push_str(&text);
        }
    }
    line
}

fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Run { config } => run_service(&config),
        Command::Demo { seed, accounts, days } => {
            init_tracing("warn");
            let report = demo::run(&demo::DemoOptions { seed, accounts, days })?;
            report.print();
            Ok(())
        }
        Command::Alert { action: AlertAction::Test { config, route } } => alert_test(&config, &route),
        Command::Silence { action } => silence(action),
        Command::Config { action: ConfigAction::Check { file } } => {
            print!("{}", config::check_report(&file)?);
            Ok(())
        }
        Command::Config { action: ConfigAction::Schema } => {
            print!("{}", config::schema_json());
            Ok(())
        }
        Command::Replay {
            files,
            detectors,
            dead_letter,
            store,
            format,
            max_event_bytes,
            allowed_lateness,
            enrichment,
        } => {
            let enricher = enrichment.open()?;
            let provider_ranges = enricher.as_ref().is_some_and(|e| e.has_provider_ranges());
            let options = EngineOptions { allowed_lateness, provider_ranges, ..EngineOptions::default() };
            replay_files(
                &files,
                load_detectors(detectors.as_deref())?,
                options,
                dead_letter.as_deref(),
                store.as_deref(),
                Decoding { format, max_event_bytes, enricher: enricher.as_ref() },
            )
        }
        Command::Query { at, format, explain, sql } => query(&at, format, explain, &sql),
        Command::Review { at, format } => review(&at, format),
        Command::Forget { at, account, tenant } => forget(&at, &account, tenant.as_deref()),
        Command::Series { input, output } => score_series(&input, output.as_deref()),
        Command::Detectors { action: DetectorsAction::Check { dir } } => {
            let detectors = load_detectors(dir.as_deref())?;
            println!("{} detector definition(s) are valid:", detectors.len());
            for d in &detectors {
                println!(
                    "  {:<22} {:<18} {:<9} {} test(s)",
                    d.name,
                    d.category.as_str(),
                    d.severity.as_str(),
                    d.tests.len()
                );
            }
            Ok(())
        }
        Command::Detectors { action: DetectorsAction::Test { dir } } => {
            test_detectors(&load_detectors(dir.as_deref())?)
        }
        Command::Gen { seed, accounts, days, hard, out } => {
            std::fs::create_dir_all(&out).with_context(|| format!("creating {}", out.display()))?;
            let events_path = out.join("events.jsonl");
            let mut events = BufWriter::with_capacity(
                1 << 20,
                File::create(&events_path).with_context(|| format!("creating {}", events_path.display()))?,
            );
            let base = if hard { gen::GenOptions::hard(seed) } else { gen::GenOptions { seed, ..Default::default() } };
            let days = days.unwrap_or(base.days);
            let options = gen::GenOptions {
                accounts: accounts.unwrap_or(base.accounts),
                days,
                warmup_days: days.saturating_sub(7),
                ..base
            };
            let labels = gen::generate(&options, &mut events)?;
            events.flush()?;
            let labels_path = out.join("labels.json");
            std::fs::write(&labels_path, serde_json::to_vec_pretty(&labels)?)?;
            eprintln!(
                "wrote {} and {} ({} incidents, {} benign behaviours labelled)",
                events_path.display(),
                labels_path.display(),
                labels.incidents.len(),
                labels.benign.len()
            );
            Ok(())
        }
        Command::Eval { labels, alerts, json } => {
            let labels: gen::Labels = serde_json::from_slice(
                &std::fs::read(&labels).with_context(|| format!("reading {}", labels.display()))?,
            )
            .with_context(|| format!("parsing {}", labels.display()))?;
            let mut parsed = Vec::new();
            for (n, line) in
                BufReader::new(File::open(&alerts).with_context(|| format!("opening {}", alerts.display()))?)
                    .lines()
                    .enumerate()
            {
                let line = line?;
                if !line.trim().is_empty() {
                    parsed.push(
                        serde_json::from_str(&line)
                            .with_context(|| format!("{}:{}: not an alert", alerts.display(), n + 1))?,
                    );
                }
            }
            let report = eval::evaluate(&parsed, &labels);
            if json {
                println!("{}", serde_json::to_string_pretty(&report)?);
            } else {
                print!("{report}");
            }
            Ok(())
        }
    }
}

fn score_series(input: &Path, output: Option<&Path>) -> anyhow::Result<()> {
    let reader = BufReader::new(File::open(input).with_context(|| format!("opening {}", input.display()))?);
    let summary = match output {
        Some(path) => {
            let file = File::create(path).with_context(|| format!("creating {}", path.display()))?;
            auditwatch::series::score_csv(reader, BufWriter::new(file))
        }
        None => auditwatch::series::score_csv(reader, BufWriter::new(io::stdout().lock())),
    }
    .with_context(|| format!("scoring {}", input.display()))?;
    eprintln!("scored {} row(s) of {}", summary.rows, input.display());
    Ok(())
}

fn load_detectors(dir: Option<&Path>) -> anyhow::Result<Vec<Detector>> {
    let loaded = match dir {
        Some(dir) => config::detectors::load_dir(dir),
        None => pack::load(),
    };
    loaded.map_err(|problems| anyhow::anyhow!("{problems}"))
}

fn test_detectors(detectors: &[Detector]) -> anyhow::Result<()> {
    let (mut passed, mut failed) = (0, 0);
    for d in detectors {
        for t in &d.tests {
            match t.run(d) {
                Ok(_) => {
                    passed += 1;
                    println!("ok    {} / {}", d.name, t.name);
                }
                Err(why) => {
                    failed += 1;
                    println!("FAIL  {} / {}\n      {}", d.name, t.name, why.replace('\n', "\n      "));
                }
            }
        }
    }
    println!("{passed} passed, {failed} failed");
    if failed > 0 {
        bail!("{failed} detector test(s) failed");
    }
    Ok(())
}

fn init_tracing(default: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    tracing_subscriber::fmt().with_env_filter(filter).with_writer(io::stderr).init();
}

fn run_service(path: &Path) -> anyhow::Result<()> {
    init_tracing("info");
    let config = config::load(path)?;
    let detectors = load_detectors(config.detectors.dir.as_deref())?;
    let topics: Vec<String> = config.topics.iter().map(|t| t.name.clone()).collect();
    let metrics = Arc::new(Metrics::new(&topics));
    let control = Control::default();
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build()?;
    // Queries of `POST /query` run here, apart from the admin server's own thread.
    let sql_runtime =
        tokio::runtime::Builder::new_multi_thread().worker_threads(1).thread_name("query").enable_all().build()?;
    // A handle only: the runtime itself must be dropped outside `block_on`.
    let sql_handle = sql_runtime.handle().clone();
    runtime.block_on(async move {
        let listener = tokio::net::TcpListener::bind(config.admin.listen)
            .await
            .with_context(|| format!("binding the admin server to {}", config.admin.listen))?;
        tracing::info!(address = %listener.local_addr()?, "admin server listening");
        let (stop_admin, admin_stopped) = tokio::sync::oneshot::channel::<()>();
        let query_endpoint = match (&config.admin.query, &config.store.dir) {
            (Some(q), Some(dir)) => {
                let token = q.token.resolve(&|name| std::env::var(name).ok()).map_err(anyhow::Error::msg)?;
                let limits = Limits {
                    rows: Some(q.max_rows),
                    timeout: Some(std::time::Duration::from_millis(q.timeout.millis() as u64)),
                    memory_bytes: Some(q.memory_bytes),
                };
                // The pipeline creates the store too, but it starts after the admin server.
                std::fs::create_dir_all(dir).with_context(|| format!("creating the store {}", dir.display()))?;
                let catalog = Catalog::open(dir, limits).await?;
                Some(auditwatch::admin::http::QueryEndpoint::new(catalog, &token, sql_handle))
            }
            _ => None,
        };
        let admin =
            tokio::spawn(auditwatch::admin::http::serve(listener, metrics.clone(), query_endpoint, async move {
                let _ = admin_stopped.await;
            }));
        let shutdown = control.shutdown.clone();
        let grace = std::time::Duration::from_millis(config.state.shutdown_timeout.millis() as u64);
        tokio::spawn(async move {
            wait_for_signal().await;
            tracing::info!("signal received: stopping intake");
            shutdown.store(true, std::sync::atomic::Ordering::Relaxed);
            tokio::time::sleep(grace).await;
            tracing::error!(?grace, "graceful shutdown took too long; exiting without the final checkpoint");
            std::process::exit(2);
        });
        let summary =
            tokio::task::spawn_blocking(move || Pipeline::start(&config, detectors, metrics, control)?.run()).await??;
        let _ = stop_admin.send(());
        let _ = admin.await;
        tracing::info!(events = summary.events, alerts = summary.alerts, "exiting");
        Ok(())
    })
}

async fn wait_for_signal() {
    let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
        Ok(s) => s,
        Err(error) => {
            tracing::warn!(%error, "cannot listen for SIGTERM; only Ctrl-C stops gracefully");
            let _ = tokio::signal::ctrl_c().await;
            return;
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
}
