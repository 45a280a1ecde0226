//! Outputs a plugin declares: tables of its own, written in every configured format and
//! listed, hashed and checked like the built-in ones, and per-persona columns added to
//! `daily_metrics` (what Mesa's DataCollector calls model reporters).
//!
//! Both are declared in [`crate::plugin::Plugin::build`] — [`crate::plugin::SimBuilder::add_table`],
//! [`crate::plugin::SimBuilder::daily_column`] — before the sinks are built, which the
//! scenario's `systems` always are. Rows go into [`PluginTables`] from any system; they are
//! written at the end of each hour, in the order pushed. Daily values go into [`DailyReport`]
//! during the day (from a system ordered `.before(close_day)` if it runs in
//! `SimSet::Observe`) and are written with the day's row, then reset to zero.

use bevy_ecs::prelude::*;
use chrono::NaiveDate;

use crate::output::schema::{Column, Kind, Null, Table};

/// One value of a plugin's row.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub enum Value {
    /// An unsigned integer (`U8` to `U64` columns).
    U(u64),
    /// Paise (`Money` columns).
    Paise(i64),
    /// A real number (`Float` columns).
    F(f64),
    /// `Bool` columns.
    B(bool),
    /// `Text` and `Name8`/`Name16` columns.
    S(String),
    /// `Date` columns.
    D(NaiveDate),
    /// No value, where the column allows it.
    Null,
}

impl Value {
    /// The value as a real number: counts and paise as they are, `true` as 1, and
    /// 0 for text, dates and nulls.
    pub fn as_f64(&self) -> f64 {
        match *self {
            Value::U(u) => u as f64,
            Value::Paise(p) => p as f64,
            Value::F(f) => f,
            Value::B(b) => f64::from(u8::from(b)),
            Value::S(_) | Value::D(_) | Value::Null => 0.0,
        }
    }

    /// Whether this value fits a column: its kind, its range and its nullability.
    pub fn fits(&self, c: &Column) -> bool {
        match (self, c.kind) {
            (Value::Null, _) => c.null == Null::Allowed,
            (Value::U(v), Kind::U8) => *v <= u64::from(u8::MAX),
            (Value::U(v), Kind::U16) => *v <= u64::from(u16::MAX),
            (Value::U(v), Kind::U32) => *v <= u64::from(u32::MAX),
            (Value::U(_), Kind::U64) => true,
            (Value::Paise(_), Kind::Money) => true,
            (Value::F(v), Kind::Float) => v.is_finite(),
            (Value::B(_), Kind::Bool) => true,
            (Value::S(s), Kind::Text | Kind::Name8 | Kind::Name16) => {
                !s.is_empty() || c.null != Null::Never
            }
            (Value::D(_), Kind::Date) => true,
            _ => false,
        }
    }
}

/// A plugin table's handle, from [`crate::plugin::SimBuilder::add_table`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TableId(pub(crate) usize);

/// The set of the systems that push rows into their plugin's own tables. Each writes only
/// its own table, so they may run in any order among themselves: a system in this set is
/// declared `.ambiguous_with(TableRows)`, and two plugins with tables can be enabled
/// together.
#[derive(SystemSet, Debug, Clone, PartialEq, Eq, Hash)]
pub struct TableRows;

/// The plugins' tables and the rows pushed since the last write.
#[derive(Resource, Default)]
pub struct PluginTables {
    pub(crate) tables: Vec<Table>,
    pub(crate) pending: Vec<Vec<Vec<Value>>>,
    /// Set once the sinks are built: no table can be added after.
    pub(crate) closed: bool,
}

impl PluginTables {
    /// Declares a table; an error if its name is taken (by a built-in table or another
    /// plugin's) or its columns are not unique.
    pub fn add(&mut self, table: Table) -> Result<TableId, String> {
        if self.closed {
            return Err(format!(
                "the table `{}` is declared after the sinks were built: declare tables in a \
                 plugin added before them (a scenario's `systems` always are)",
                table.stem
            ));
        }
        let taken = crate::output::schema::builtin()
            .iter()
            .chain(&self.tables)
            .any(|t| t.stem == table.stem)
            || [
                "features",
                "aggregates",
                "summary",
                "data_quality",
                "manifest",
            ]
            .contains(&table.stem);
        if taken {
            return Err(format!("the table name `{}` is already taken", table.stem));
        }
        if !table
            .stem
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
            || table.stem.is_empty()
        {
            return Err(format!(
                "the table name `{}` is not snake_case (a-z, 0-9, _)",
                table.stem
            ));
        }
        let mut names = table.names();
        names.sort_unstable();
        if let Some(w) = names.windows(2).find(|w| w[0] == w[1]) {
            return Err(format!(
                "the table `{}` has two columns named `{}`",
                table.stem, w[0]
            ));
        }
        self.tables.push(table);
        self.pending.push(Vec::new());
        Ok(TableId(self.tables.len() - 1))
    }

    /// Appends a row to `table`: one value a column, each fitting its column.
    pub fn push(&mut self, table: TableId, row: Vec<Value>) -> Result<(), String> {
        let t = &self.tables[table.0];
        if row.len() != t.columns.len() {
            return Err(format!(
                "a row of `{}` has {} values for {} columns",
                t.stem,
                row.len(),
                t.columns.len()
            ));
        }
        if let Some((c, v)) = t.columns.iter().zip(&row).find(|(c, v)| !v.fits(c)) {
            return Err(format!(
                "`{}.{}` cannot hold {v:?} (a {:?} column{})",
                t.stem,
                c.name,
                c.kind,
                if c.null == Null::Allowed {
                    ", nulls allowed"
                } else {
                    ""
                }
            ));
        }
        self.pending[table.0].push(row);
        Ok(())
    }

    /// The declared tables, in declaration order.
    pub fn tables(&self) -> &[Table] {
        &self.tables
    }

    /// Takes the rows pushed since the last call, table by table.
    pub(crate) fn take(&mut self) -> Vec<Vec<Vec<Value>>> {
        self.pending.iter_mut().map(std::mem::take).collect()
    }
}

/// A column added to `daily_metrics`, from [`crate::plugin::SimBuilder::daily_column`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DailyColumn(pub(crate) usize);

/// Columns plugins add to `daily_metrics`, and today's values by column and persona.
#[derive(Resource, Default)]
pub struct DailyReport {
    pub(crate) columns: Vec<Column>,
    /// By column, by persona: integers (counts, paise) or reals.
    pub(crate) today: Vec<Vec<f64>>,
    pub(crate) ints: Vec<Vec<i64>>,
    personas: usize,
    pub(crate) closed: bool,
}

impl DailyReport {
    pub(crate) fn new(personas: usize) -> Self {
        Self {
            personas,
            ..Self::default()
        }
    }

    /// Declares a column: `U64` (a count), `Money` (paise) or `Float`, never empty.
    pub fn add(&mut self, column: Column) -> Result<DailyColumn, String> {
        if self.closed {
            return Err(format!(
                "the daily column `{}` is declared after the sinks were built",
                column.name
            ));
        }
        if !matches!(column.kind, Kind::U64 | Kind::Money | Kind::Float) {
            return Err(format!(
                "the daily column `{}` is a {:?}: daily columns are U64, Money or Float",
                column.name, column.kind
            ));
        }
        let builtin = crate::output::schema::daily_metrics();
        if builtin
            .columns
            .iter()
            .chain(&self.columns)
            .any(|c| c.name == column.name)
        {
            return Err(format!(
                "`daily_metrics` already has a column `{}`",
                column.name
            ));
        }
        self.columns.push(Column {
            null: Null::Never,
            ..column
        });
        self.today.push(vec![0.0; self.personas]);
        self.ints.push(vec![0; self.personas]);
        Ok(DailyColumn(self.columns.len() - 1))
    }

    /// The personas, one row each a day.
    pub fn personas(&self) -> usize {
        self.personas
    }

    /// Adds `n` to today's count (or paise) of `persona` in `column`.
    pub fn add_to(&mut self, column: DailyColumn, persona: usize, n: i64) {
        self.ints[column.0][persona] += n;
    }

    /// Sets today's real value of `persona` in `column`.
    pub fn set(&mut self, column: DailyColumn, persona: usize, v: f64) {
        self.today[column.0][persona] = v;
    }

    /// The added columns, in order.
    pub fn columns(&self) -> &[Column] {
        &self.columns
    }

    /// Today's values of `persona`, one a column, as written.
    pub fn values(&self, persona: usize) -> Vec<Value> {
        self.columns
            .iter()
            .enumerate()
            .map(|(i, c)| match c.kind {
                Kind::Money => Value::Paise(self.ints[i][persona]),
                Kind::Float => Value::F(self.today[i][persona]),
                _ => Value::U(self.ints[i][persona].max(0) as u64),
            })
            .collect()
    }

    /// Zeroes today's values, for the next day.
    pub(crate) fn reset(&mut self) {
        for v in &mut self.ints {
            v.fill(0);
        }
        for v in &mut self.today {
            v.fill(0.0);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::output::schema::Encoding;

    fn column(name: &'static str, kind: Kind, null: Null) -> Column {
        Column {
            name,
            kind,
            null,
            encoding: Encoding::Plain,
            doc: "",
        }
    }

    #[test]
    fn rows_are_checked_against_the_declaration() {
        let mut t = PluginTables::default();
        let id = t
            .add(Table::new(
                "stores",
                "store and day",
                &[
                    column("store", Kind::U16, Null::Never),
                    column("revenue", Kind::Money, Null::Never),
                    column("note", Kind::Text, Null::Allowed),
                ],
            ))
            .unwrap();
        t.push(id, vec![Value::U(3), Value::Paise(100), Value::Null])
            .unwrap();
        let e = t
            .push(id, vec![Value::U(70_000), Value::Paise(1), Value::Null])
            .unwrap_err();
        assert!(e.contains("`stores.store`"), "{e}");
        assert!(
            t.push(id, vec![Value::U(1)])
                .unwrap_err()
                .contains("1 values")
        );
        assert!(
            t.add(Table::new("transactions", "x", &[]))
                .unwrap_err()
                .contains("taken")
        );
        assert_eq!(t.take()[0].len(), 1);
        assert!(t.take()[0].is_empty(), "taken rows are gone");
    }

    #[test]
    fn daily_columns_sum_by_persona_and_reset() {
        let mut d = DailyReport::new(2);
        let c = d.add(column("referrals", Kind::U64, Null::Never)).unwrap();
        assert!(
            d.add(column("revenue", Kind::U64, Null::Never))
                .unwrap_err()
                .contains("already")
        );
        assert!(d.add(column("x", Kind::Text, Null::Never)).is_err());
        d.add_to(c, 1, 2);
        d.add_to(c, 1, 3);
        assert_eq!(d.values(1), [Value::U(5)]);
        d.reset();
        assert_eq!(d.values(1), [Value::U(0)]);
    }
}
