//! The command line's `replay`: files and directories in order through the engine, alerts to
//! stdout, dead letters and the store as asked, a summary on stderr. A module of the
//! `auditwatch` binary, not of the library.

use std::fs::File;
use std::io::{self, BufRead, BufReader, BufWriter, IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{anyhow, bail, Context as _};

use auditwatch::detection::alert::Alert;
use auditwatch::detection::definition::{Category, Detector};
use auditwatch::detection::engine::{Engine, EngineOptions};
use auditwatch::input::enrich::{Enricher, Provider};
use auditwatch::replay::{self, CountOnly, DeadLetterSink, Decoding, JsonLinesDeadLetter, ReplaySummary};
use auditwatch::store::{Store, StoreOptions};

/// `replay`'s enrichment options: the files of the service's `[enrichment]`.
#[derive(clap::Args, Debug)]
pub(crate) struct EnrichmentArgs {
    /// A MaxMind-format database (GeoLite2-ASN, -Country, -City, ipinfo's ip-to-asn) that fills
    /// in `source.asn`, `source.as_org` and `source.country` where an event lacks them; repeat
    /// it for several, asked in the order given.
    #[arg(long = "ip-database", value_name = "FILE")]
    databases: Vec<PathBuf>,
    /// AWS `ip-ranges.json`: its addresses get `source.provider = "aws"`.
    #[arg(long, value_name = "FILE")]
    aws_ranges: Option<PathBuf>,
    /// GCP `cloud.json`: its addresses get `source.provider = "gcp"`.
    #[arg(long, value_name = "FILE")]
    gcp_ranges: Option<PathBuf>,
    /// Azure Service Tags JSON: its addresses get `source.provider = "azure"`.
    #[arg(long, value_name = "FILE")]
    azure_ranges: Option<PathBuf>,
}

impl EnrichmentArgs {
    /// Reads every file given; `None` when none is. Each unusable file is named with its option.
    pub(crate) fn open(&self) -> anyhow::Result<Option<Arc<Enricher>>> {
        let ranges = [
            (Provider::Aws, "--aws-ranges", &self.aws_ranges),
            (Provider::Gcp, "--gcp-ranges", &self.gcp_ranges),
            (Provider::Azure, "--azure-ranges", &self.azure_ranges),
        ];
        if self.databases.is_empty() && ranges.iter().all(|(_, _, path)| path.is_none()) {
            return Ok(None);
        }
        let mut builder = Enricher::builder();
        for path in &self.databases {
            builder.database("--ip-database", path);
        }
        for (provider, option, path) in ranges {
            if let Some(path) = path {
                builder.provider_ranges(provider, option, path);
            }
        }
        builder.build().map(|enricher| Some(Arc::new(enricher))).map_err(|problems| {
            let lines: Vec<String> = problems.iter().map(ToString::to_string).collect();
            anyhow!("cannot use the enrichment files:\n{}", lines.join("\n"))
        })
    }
}

pub(crate) fn replay_files(
    files: &[PathBuf],
    detectors: Vec<Detector>,
    options: EngineOptions,
    dead_letter: Option<&Path>,
    store_dir: Option<&Path>,
    decoding: Decoding<'_>,
) -> anyhow::Result<()> {
    let mut engine = Engine::new(detectors, options);
    let mut store = match store_dir {
        Some(dir) => Some(
            Store::open(dir, StoreOptions::default())
                .with_context(|| format!("opening the store {}", dir.display()))?,
        ),
        None => None,
    };
    let mut dead: Box<dyn DeadLetterSink> = match dead_letter {
        Some(path) => Box::new(JsonLinesDeadLetter(BufWriter::new(
            File::create(path).with_context(|| format!("creating {}", path.display()))?,
        ))),
        None => Box::new(CountOnly),
    };
    let stdout = io::stdout();
    let mut out = BufWriter::new(stdout.lock());
    let mut on_alert = |alert: Alert| -> io::Result<()> {
        out.write_all(&auditwatch::sinks::alert_body(&alert))?;
        out.write_all(b"\n")
    };
    let inputs = replay_inputs(files)?;
    let mut total = ReplaySummary::default();
    let mut undecoded = Vec::new();
    for path in &inputs {
        let (name, mut input, size): (String, Box<dyn BufRead>, Option<u64>) = if path.as_os_str() == "-" {
            ("-".into(), Box::new(BufReader::with_capacity(1 << 20, io::stdin())), None)
        } else {
            let file = File::open(path).with_context(|| format!("opening {}", path.display()))?;
            let size = file.metadata().ok().map(|m| m.len());
            (path.display().to_string(), Box::new(BufReader::with_capacity(1 << 20, file)), size)
        };
        let bar = progress_bar(&name, size);
        let summary = replay::replay_reader(
            &mut engine,
            &name,
            &mut input,
            decoding,
            dead.as_mut(),
            store.as_mut(),
            &mut on_alert,
            &mut |bytes| {
                if let Some(bar) = &bar {
                    bar.set_position(bytes)
                }
            },
        )
        .with_context(|| format!("replaying {name}"))?;
        if let Some(bar) = bar {
            bar.finish_and_clear();
        }
        if let Some(problem) = summary.nothing_decoded() {
            undecoded.push(replay::no_event_message(&name, problem, decoding.format));
        }
        total.add(&summary);
    }
    out.flush()?;
    drop(dead);
    let stats = engine.stats();
    let mut err = io::stderr().lock();
    writeln!(
        err,
        "replayed {} events from {} file(s); {} bad line(s) or record(s){}",
        total.events,
        inputs.len(),
        total.rejected,
        if dead_letter.is_some() { " written to the dead-letter file" } else { "" }
    )?;
    if let Some(dir) = store_dir {
        writeln!(err, "events, dead letters and alerts retained as Parquet in {}", dir.display())?;
    }
    writeln!(
        err,
        "{} alert(s) ({} repeats folded into open incidents); {} accounts tracked",
        stats.alerts,
        stats.folded_repeats,
        engine.accounts_tracked()
    )?;
    for category in Category::ALL {
        writeln!(err, "  {:<18} {}", category.as_str(), stats.alerts_by_category[category.index()])?;
    }
    if stats.provider_service_events > 0 {
        writeln!(
            err,
            "{} event(s) made by a provider's service on its own, retained, not judged",
            stats.provider_service_events
        )?;
    }
    match undecoded.as_slice() {
        [] => Ok(()),
        [one] => bail!("{one}"),
        many => {
            for message in many {
                writeln!(err, "{message}")?;
            }
            bail!("no event decoded from {} of {} input(s)", many.len(), inputs.len())
        }
    }
}

/// The files to replay: each argument, a directory replaced by its files in name order.
fn replay_inputs(args: &[PathBuf]) -> anyhow::Result<Vec<PathBuf>> {
    let mut inputs = Vec::new();
    for arg in args {
        if arg.as_os_str() == "-" || !arg.is_dir() {
            inputs.push(arg.clone());
            continue;
        }
        let mut files = Vec::new();
        for entry in std::fs::read_dir(arg).with_context(|| format!("reading directory {}", arg.display()))? {
            let entry = entry.with_context(|| format!("reading directory {}", arg.display()))?;
            // Files only (symlinks to files too); subdirectories are not descended into.
            if entry.path().is_file() {
                files.push(entry.path());
            }
        }
        files.sort();
        inputs.extend(files);
    }
    Ok(inputs)
}

fn progress_bar(name: &str, size: Option<u64>) -> Option<indicatif::ProgressBar> {
    if !io::stderr().is_terminal() {
        return None;
    }
    let bar = match size {
        Some(size) => indicatif::ProgressBar::new(size).with_style(
            indicatif::ProgressStyle::with_template("{msg} [{bar:40}] {bytes}/{total_bytes} ({bytes_per_sec}, {eta})")
                .ok()?
                .progress_chars("=> "),
        ),
        None => indicatif::ProgressBar::new_spinner()
            .with_style(indicatif::ProgressStyle::with_template("{msg} {spinner} {bytes} ({bytes_per_sec})").ok()?),
    };
    bar.set_draw_target(indicatif::ProgressDrawTarget::stderr());
    bar.set_message(name.to_string());
    Some(bar)
}
