//! The SQLite backend's read path for file databases. Reads run on blocking threads over
//! read-only rusqlite connections to the same file (WAL lets them read while sqlx writes),
//! decoding each value straight into an Arrow builder.
//!
//! sqlx's SQLite driver hands every row across a channel from its worker thread and copies
//! its values (about 2 µs a row for four columns); this path reads the same rows in a tenth
//! of that, which is what a 230k-row window in well under 100 ms needs. Writes, migrations
//! and in-memory databases (one private connection) stay on sqlx.

use std::path::PathBuf;
use std::sync::Mutex;
use std::time::Duration;

use arrow_array::RecordBatch;
use rusqlite::types::ValueRef;
use rusqlite::{Connection, OpenFlags};

use crate::error::{Result, StoreError};
use crate::sql::{ColumnBuilder, ReadPlan};

/// Idle read connections kept for reuse.
const MAX_IDLE: usize = 8;

/// Read-only connections to one SQLite file.
pub(crate) struct Readers {
    path: PathBuf,
    idle: Mutex<Vec<Connection>>,
}

impl std::fmt::Debug for Readers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Readers").field("path", &self.path).finish()
    }
}

impl Readers {
    pub(crate) fn new(path: PathBuf) -> Readers {
        Readers {
            path,
            idle: Mutex::new(Vec::new()),
        }
    }

    fn take(&self) -> Result<Connection> {
        if let Some(c) = self.idle.lock().ok().and_then(|mut v| v.pop()) {
            return Ok(c);
        }
        let conn = Connection::open_with_flags(
            &self.path,
            OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )?;
        conn.busy_timeout(Duration::from_secs(30))?;
        // A 64 MiB page cache and memory-mapped reads: a window's pages are read without
        // copying them through the page cache.
        conn.execute_batch("PRAGMA cache_size = -65536; PRAGMA mmap_size = 1073741824;")?;
        Ok(conn)
    }

    fn give(&self, conn: Connection) {
        if let Ok(mut idle) = self.idle.lock()
            && idle.len() < MAX_IDLE
        {
            idle.push(conn);
        }
    }

    /// Runs `f` on a read connection of the pool.
    pub(crate) fn with<T>(&self, f: impl FnOnce(&Connection) -> Result<T>) -> Result<T> {
        let conn = self.take()?;
        let got = f(&conn);
        self.give(conn);
        got
    }

    /// Runs `sql` with `binds` and hands the rows to `sink` as batches of at most `cap` rows
    /// (`usize::MAX`: one batch), in the query's order; `sink` returns `false` to stop early.
    pub(crate) fn read(
        &self,
        sql: &str,
        binds: &[i64],
        plan: &ReadPlan,
        cap: usize,
        mut sink: impl FnMut(RecordBatch) -> bool,
    ) -> Result<()> {
        self.read_sized(
            sql,
            binds,
            plan,
            cap,
            cap.min(crate::READ_BATCH_ROWS),
            &mut sink,
        )
    }

    /// [`Readers::read`] with builders sized for `capacity` rows up front: a caller that
    /// knows the row count spares the reallocations (and fresh pages) of growing them.
    pub(crate) fn read_sized(
        &self,
        sql: &str,
        binds: &[i64],
        plan: &ReadPlan,
        cap: usize,
        capacity: usize,
        sink: &mut dyn FnMut(RecordBatch) -> bool,
    ) -> Result<()> {
        let conn = self.take()?;
        let outcome = (|| -> Result<()> {
            let mut stmt = conn.prepare(sql)?;
            let mut rows = stmt.query(rusqlite::params_from_iter(binds.iter()))?;
            let mut builders = plan.builders(capacity);
            let mut n = 0;
            while let Some(row) = rows.next()? {
                for (i, b) in builders.iter_mut().enumerate() {
                    append(b, row.get_ref(i)?, plan, i)?;
                }
                n += 1;
                if n == cap {
                    n = 0;
                    if !sink(plan.finish(&mut builders, cap)?) {
                        return Ok(());
                    }
                }
            }
            if n > 0 {
                sink(plan.finish(&mut builders, n)?);
            }
            Ok(())
        })();
        self.give(conn);
        outcome
    }
}

fn append(b: &mut ColumnBuilder, v: ValueRef<'_>, plan: &ReadPlan, i: usize) -> Result<()> {
    match (b, v) {
        (ColumnBuilder::Int(b), ValueRef::Integer(x)) => b.append_value(x),
        (ColumnBuilder::Float(b), ValueRef::Real(x)) => b.append_value(x),
        (ColumnBuilder::Float(b), ValueRef::Integer(x)) => b.append_value(x as f64),
        (ColumnBuilder::Bool(b), ValueRef::Integer(x)) => b.append_value(x != 0),
        (ColumnBuilder::Str(b), ValueRef::Text(x)) => {
            b.append_value(std::str::from_utf8(x).map_err(|_| mismatch(plan, i, "invalid UTF-8"))?)
        }
        (ColumnBuilder::Int(b), ValueRef::Null) => b.append_null(),
        (ColumnBuilder::Float(b), ValueRef::Null) => b.append_null(),
        (ColumnBuilder::Bool(b), ValueRef::Null) => b.append_null(),
        (ColumnBuilder::Str(b), ValueRef::Null) => b.append_null(),
        (_, other) => {
            return Err(mismatch(
                plan,
                i,
                &format!("a stored {:?} value", other.data_type()),
            ));
        }
    }
    Ok(())
}

fn mismatch(plan: &ReadPlan, i: usize, what: &str) -> StoreError {
    let (name, ty) = plan
        .columns
        .get(i)
        .map(|(n, t)| (n.as_str(), t.name()))
        .unwrap_or(("?", "?"));
    StoreError::CorruptSchema {
        component: plan.table.clone(),
        reason: format!("column `{name}` is declared `{ty}` but holds {what}"),
    }
}
