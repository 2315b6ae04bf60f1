//! The command line's store commands: `query`, `review` and `forget`, and where they find
//! the store. A module of the `auditwatch` binary, not of the library.

use std::io::{self, BufWriter, IsTerminal, Write};
use std::path::PathBuf;

use anyhow::{bail, Context as _};

use auditwatch::config;
use auditwatch::query::output::OutputFormat;
use auditwatch::query::{self, Catalog, Limits};

use crate::load_detectors;

/// Where the store is: from the service config, or given directly.
#[derive(clap::Args)]
#[group(required = true, multiple = false)]
pub(crate) struct StoreAt {
    /// The store directory (what `[store] dir` or `replay --store` names).
    #[arg(long)]
    pub(crate) store: Option<PathBuf>,
    /// The service config; its `[store] dir` is used.
    #[arg(long)]
    pub(crate) config: Option<PathBuf>,
}

impl StoreAt {
    pub(crate) fn dir(&self) -> anyhow::Result<PathBuf> {
        match (&self.store, &self.config) {
            (Some(dir), _) => Ok(dir.clone()),
            (None, Some(file)) => match config::load(file)?.store.dir {
                Some(dir) => Ok(dir),
                None => bail!("{} has no store: set `[store] dir`", file.display()),
            },
            (None, None) => bail!("give --store or --config"),
        }
    }
}

/// The output format asked for, or the default for where stdout goes; Parquet never to a
/// terminal.
fn answer_format(asked: Option<OutputFormat>) -> anyhow::Result<OutputFormat> {
    let terminal = io::stdout().is_terminal();
    let format = asked.unwrap_or(OutputFormat::default_for(terminal));
    if format == OutputFormat::Parquet && terminal {
        bail!("--format parquet writes a binary file: redirect it (> answer.parquet)");
    }
    Ok(format)
}

fn query_runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_multi_thread().enable_all().build()?)
}

pub(crate) fn query(at: &StoreAt, format: Option<OutputFormat>, explain: bool, sql: &str) -> anyhow::Result<()> {
    let dir = at.dir()?;
    let format = answer_format(format)?;
    query_runtime()?.block_on(async {
        let catalog = Catalog::open(&dir, Limits::default()).await?;
        let mut out = BufWriter::new(io::stdout());
        if explain {
            // The plan is text: its rows are printed as they are, whatever the format.
            let answer = catalog.explain(sql).await?;
            for batch in &answer.batches {
                let plans = batch.column(batch.num_columns() - 1);
                let plans = arrow::array::cast::AsArray::as_string::<i32>(plans);
                for plan in plans.iter().flatten() {
                    writeln!(out, "{plan}")?;
                }
            }
        } else {
            let answer = catalog.run(sql).await?;
            query::output::write(&answer, format, &mut out)?;
        }
        out.flush()?;
        Ok(())
    })
}

pub(crate) fn review(at: &StoreAt, format: Option<OutputFormat>) -> anyhow::Result<()> {
    let dir = at.dir()?;
    let format = answer_format(format)?;
    query_runtime()?.block_on(async {
        let catalog = Catalog::open(&dir, Limits::default()).await?;
        let mut out = BufWriter::new(io::stdout());
        query::review::report(&catalog, format, &mut out).await?;
        out.flush()?;
        Ok(())
    })
}

pub(crate) fn forget(at: &StoreAt, account: &str, tenant: Option<&str>) -> anyhow::Result<()> {
    use auditwatch::state::{checkpoint, engine_state};
    use auditwatch::store::forget::{self, Subject};
    let config = at.config.as_deref().map(config::load).transpose()?;
    if let Some(config) = &config {
        let admin = config.admin.listen;
        if std::net::TcpStream::connect_timeout(&admin, std::time::Duration::from_millis(500)).is_ok() {
            bail!("the service answers on {admin}: stop it first, or its next checkpoint brings the state back");
        }
    }
    let dir = at.dir()?;
    let removed = forget::forget(&dir, &Subject { account, tenant })
        .with_context(|| format!("forgetting {account} in the store {}", dir.display()))?;
    println!(
        "store {}: {} event(s), {} dead letter(s), {} alert(s) removed; {} other alert(s) redacted; {} file(s) rewritten, {} removed",
        dir.display(),
        removed.events,
        removed.dead_letters,
        removed.alerts,
        removed.alerts_redacted,
        removed.files_rewritten,
        removed.files_removed
    );
    let Some(config) = config else {
        println!("no --config: the service's checkpoint was not touched");
        return Ok(());
    };
    let state = &config.state.dir;
    let Some(mut cp) = checkpoint::read(state)? else {
        println!("state {}: no checkpoint", state.display());
        return Ok(());
    };
    // Without --tenant, the name in every tenant the store shows it in, and in none.
    let mut tenants: Vec<String> = match tenant {
        Some(t) => vec![t.to_string()],
        None => removed.tenants.clone(),
    };
    if tenant.is_none() && !tenants.iter().any(String::is_empty) {
        tenants.push(String::new());
    }
    let detectors = load_detectors(config.detectors.dir.as_deref())?;
    let forgotten =
        engine_state::forget_in(&mut cp, detectors, config.engine.options(), &tenants, account, &removed.keys)?;
    checkpoint::write(state, &cp)?;
    println!(
        "checkpoint {}: account state {}; {} key(s) dropped; {} other key(s) no longer list it; {} other account(s) no longer remember creating a credential for it; {} spray entr(ies), {} open incident(s) removed",
        state.display(),
        if forgotten.account { "dropped" } else { "not found" },
        forgotten.keys,
        forgotten.key_references,
        forgotten.creator_references,
        forgotten.spray_entries,
        forgotten.incidents
    );
    Ok(())
}
