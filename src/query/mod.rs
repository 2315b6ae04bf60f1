//! SQL over the store, on DataFusion: `auditwatch query`, `auditwatch review` and the admin
//! server's `POST /query`.
//!
//! Tables:
//! - `events`, `alerts`, `dead_letters`: the store's Parquet files (columns in
//!   [`crate::store::schema`]), partitioned by `dt` (a date), so a filter on `dt` skips whole
//!   directories; the files' statistics let a filter on `time` skip files and row groups.
//! - `accounts`, `credentials`: views over `events` ([`views`]).
//!
//! JSON in `attributes`, `evidence` and `raw` is read with datafusion-functions-json
//! (`json_get_str(attributes, 'region')`, `raw->>'eventName'`).
//!
//! Only queries run: a statement is parsed first, and anything but a `SELECT` (or `WITH`,
//! `VALUES`, `EXPLAIN` of those) is refused before it is planned, so nothing here writes.

pub mod functions;
pub mod output;
pub mod review;
pub mod views;

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use arrow::array::RecordBatch;
use arrow::datatypes::{DataType, SchemaRef};
use datafusion::common::config::Dialect;
use datafusion::datasource::file_format::parquet::ParquetFormat;
use datafusion::datasource::listing::{ListingOptions, ListingTable, ListingTableConfig, ListingTableUrl};
use datafusion::datasource::view::ViewTable;
use datafusion::error::DataFusionError;
use datafusion::execution::cache::cache_manager::CacheManagerConfig;
use datafusion::execution::memory_pool::{FairSpillPool, MemoryPool};
use datafusion::execution::runtime_env::RuntimeEnvBuilder;
use datafusion::logical_expr::LogicalPlan;
use datafusion::prelude::{SessionConfig, SessionContext};
use datafusion::sql::parser::Statement as DfStatement;
use datafusion::sql::sqlparser::ast::Statement;

use crate::store::{schema, Table};

/// Bounds for a query someone else sends (`POST /query`); the command line sets none.
#[derive(Clone, Copy, Debug, Default)]
pub struct Limits {
    /// At most this many rows come back; more are reported as truncated.
    pub rows: Option<usize>,
    pub timeout: Option<Duration>,
    /// DataFusion's memory pool: operators that would exceed it fail (or spill, where they can).
    pub memory_bytes: Option<usize>,
}

#[derive(Debug, thiserror::Error)]
pub enum QueryError {
    #[error("only queries can run (SELECT, WITH, VALUES, EXPLAIN): {0}")]
    NotReadOnly(String),
    #[error("{0}")]
    Sql(String),
    #[error("the query took longer than {0:?}")]
    Timeout(Duration),
    #[error("writing the answer: {0}")]
    Output(String),
    #[error("store {path}: {reason}")]
    Store { path: String, reason: String },
}

impl From<DataFusionError> for QueryError {
    /// DataFusion's messages may span lines (and carry a backtrace when built to): the first
    /// error's text on one line is what a user needs, position included.
    fn from(e: DataFusionError) -> Self {
        let mut text = match e.find_root() {
            DataFusionError::SQL(parser, _) => parser.to_string(),
            root => root.to_string(),
        };
        if text.ends_with("found: EOF") {
            text.push_str(" (the query ends too soon)");
        }
        QueryError::Sql(text.split_whitespace().collect::<Vec<_>>().join(" "))
    }
}

/// The rows of a query.
pub struct Answer {
    pub schema: SchemaRef,
    pub batches: Vec<RecordBatch>,
    /// Rows were left out at the row limit.
    pub truncated: bool,
}

impl Answer {
    pub fn rows(&self) -> usize {
        self.batches.iter().map(RecordBatch::num_rows).sum()
    }
}

/// A session over one store.
pub struct Catalog {
    ctx: SessionContext,
    limits: Limits,
}

impl Catalog {
    /// Register the store's tables. A table with no files yet is empty, not an error.
    pub async fn open(store: &Path, limits: Limits) -> Result<Catalog, QueryError> {
        let store_error = |reason: String| QueryError::Store { path: store.display().to_string(), reason };
        if !store.is_dir() {
            return Err(store_error("not a directory (give the store's directory: --store DIR)".into()));
        }
        let store = store.canonicalize().map_err(|e| store_error(e.to_string()))?;
        // Timestamps written without a zone (`TIMESTAMP '2026-11-30 10:00:00'`) are UTC, as the
        // store's are; `information_schema` lets users list tables and columns.
        let config = SessionConfig::new()
            .with_information_schema(true)
            .set_str("datafusion.execution.time_zone", "UTC")
            .set_bool("datafusion.execution.parquet.pushdown_filters", true);
        // No cached file lists: a long-lived catalog (`POST /query`) must see the files each
        // checkpoint adds, and those `forget` and the retention limit take away.
        let mut runtime =
            RuntimeEnvBuilder::new().with_cache_manager(CacheManagerConfig::default().with_list_files_cache_limit(0));
        if let Some(bytes) = limits.memory_bytes {
            runtime = runtime.with_memory_pool(Arc::new(FairSpillPool::new(bytes)) as Arc<dyn MemoryPool>);
        }
        let runtime = runtime.build_arc()?;
        let mut ctx = SessionContext::new_with_config_rt(config, runtime);
        datafusion_functions_json::register_all(&mut ctx)?;
        for udf in functions::all() {
            ctx.register_udf(udf);
        }
        for table in Table::ALL {
            let dir = store.join(table.dir_name());
            std::fs::create_dir_all(&dir).map_err(|e| store_error(format!("{}: {e}", dir.display())))?;
            let url = ListingTableUrl::parse(format!("{}/", dir.display()))?;
            let options = ListingOptions::new(Arc::new(ParquetFormat::default()))
                .with_file_extension(".parquet")
                .with_table_partition_cols(vec![("dt".to_string(), DataType::Date32)]);
            let config = ListingTableConfig::new(url).with_listing_options(options).with_schema(schema::of(table));
            ctx.register_table(table.dir_name(), Arc::new(ListingTable::try_new(config)?))?;
        }
        let catalog = Catalog { ctx, limits };
        for (name, sql) in [("accounts", views::ACCOUNTS), ("credentials", views::CREDENTIALS)] {
            let plan = catalog.plan(sql).await?;
            catalog.ctx.register_table(name, Arc::new(ViewTable::new(plan, Some(sql.into()))))?;
        }
        Ok(catalog)
    }

    /// Plan and run one query.
    pub async fn run(&self, sql: &str) -> Result<Answer, QueryError> {
        let plan = self.plan(sql).await?;
        let mut frame = self.ctx.execute_logical_plan(plan).await?;
        if let Some(rows) = self.limits.rows {
            // One more than allowed tells a full answer from a cut one.
            frame = frame.limit(0, Some(rows + 1))?;
        }
        let schema: SchemaRef = Arc::new(frame.schema().as_arrow().clone());
        let collect = frame.collect();
        let mut batches = match self.limits.timeout {
            Some(limit) => tokio::time::timeout(limit, collect).await.map_err(|_| QueryError::Timeout(limit))??,
            None => collect.await?,
        };
        let truncated = self.limits.rows.is_some_and(|rows| cut(&mut batches, rows));
        Ok(Answer { schema, batches, truncated })
    }

    /// `EXPLAIN ANALYZE` of a query: the plan as it ran, with the files and row groups that
    /// statistics pruned.
    pub async fn explain(&self, sql: &str) -> Result<Answer, QueryError> {
        read_only(&self.ctx, sql)?;
        self.run(&format!("EXPLAIN ANALYZE {sql}")).await
    }

    async fn plan(&self, sql: &str) -> Result<LogicalPlan, QueryError> {
        let statement = read_only(&self.ctx, sql)?;
        Ok(self.ctx.state().statement_to_plan(statement).await?)
    }
}

/// Parse `sql` as one statement and refuse anything that is not a query.
pub fn read_only(ctx: &SessionContext, sql: &str) -> Result<DfStatement, QueryError> {
    let statement = ctx.state().sql_to_statement(sql, &Dialect::Generic)?;
    let is_query = |s: &Statement| matches!(s, Statement::Query(_));
    let allowed = match &statement {
        DfStatement::Statement(s) => match s.as_ref() {
            Statement::Explain { statement, .. } => is_query(statement),
            s => is_query(s),
        },
        DfStatement::Explain(explain) => {
            matches!(explain.statement.as_ref(), DfStatement::Statement(s) if is_query(s))
        }
        DfStatement::CreateExternalTable(_) | DfStatement::CopyTo(_) | DfStatement::Reset(_) => false,
    };
    if !allowed {
        let first_word = sql.split_whitespace().next().unwrap_or("").to_ascii_uppercase();
        return Err(QueryError::NotReadOnly(format!("`{first_word}` statements are refused")));
    }
    Ok(statement)
}

/// Keep the first `rows` rows; true when some were dropped.
fn cut(batches: &mut Vec<RecordBatch>, rows: usize) -> bool {
    let mut left = rows;
    let mut kept = Vec::with_capacity(batches.len());
    let mut truncated = false;
    for batch in batches.drain(..) {
        if left == 0 {
            truncated |= batch.num_rows() > 0;
            continue;
        }
        if batch.num_rows() > left {
            truncated = true;
            kept.push(batch.slice(0, left));
            left = 0;
        } else {
            left -= batch.num_rows();
            kept.push(batch);
        }
    }
    *batches = kept;
    truncated
}

#[cfg(test)]
mod tests;
