//! The output tables, declared once: each table is a list of columns (name, type,
//! nullability, encoding, meaning), and everything that depends on its shape is derived from
//! that list — the CSV header, the Arrow/Parquet schema and its per-column encodings, the
//! columns `bazaar check` expects and which of them may be empty, and the column reference in
//! docs/outputs.md (`bazaar tables`; a test keeps the file equal to it). A misspelt or missing
//! column therefore cannot drift between the writers, the checks and the docs.
//!
//! The writers still fill each row by position, in this order: their tests read every table
//! back through the declared schema.

use std::fmt::Write as _;
use std::sync::Arc;

use arrow_schema::{DataType, Field, Schema, SchemaRef, TimeUnit};

/// A column's type: what it holds in CSV, and its Arrow type in Parquet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Kind {
    /// Unsigned integer of 8, 16, 32 or 64 bits.
    U8,
    /// Unsigned 16-bit integer.
    U16,
    /// Unsigned 32-bit integer.
    U32,
    /// Unsigned 64-bit integer.
    U64,
    /// Rupees with two decimals (exact paise): `decimal(18, 2)`.
    Money,
    /// A real number (probabilities, loyalty), rounded as documented.
    Float,
    /// `true` / `false`.
    Bool,
    /// Free text.
    Text,
    /// A name from a short list (persona, category, event list), at most 255 distinct:
    /// dictionary-encoded string with 8-bit keys.
    Name8,
    /// As [`Kind::Name8`], at most 65,535 distinct: 16-bit keys.
    Name16,
    /// A calendar date, `YYYY-MM-DD`: `date32`.
    Date,
    /// Local date and time to the minute, `YYYY-MM-DDTHH:MM`: timezone-less
    /// `timestamp[ms]`.
    Timestamp,
}

impl Kind {
    /// The Arrow type the Parquet writer uses, money with `minor_units` decimal places.
    pub fn arrow(self, minor_units: u8) -> DataType {
        let dict = |key: DataType| DataType::Dictionary(Box::new(key), Box::new(DataType::Utf8));
        match self {
            Kind::U8 => DataType::UInt8,
            Kind::U16 => DataType::UInt16,
            Kind::U32 => DataType::UInt32,
            Kind::U64 => DataType::UInt64,
            Kind::Money => DataType::Decimal128(18, minor_units as i8),
            Kind::Float => DataType::Float64,
            Kind::Bool => DataType::Boolean,
            Kind::Text => DataType::Utf8,
            Kind::Name8 => dict(DataType::UInt8),
            Kind::Name16 => dict(DataType::UInt16),
            Kind::Date => DataType::Date32,
            Kind::Timestamp => DataType::Timestamp(TimeUnit::Millisecond, None),
        }
    }

    /// How the docs name the type.
    pub fn describe(self) -> &'static str {
        match self {
            Kind::U8 | Kind::U16 | Kind::U32 | Kind::U64 => "integer",
            Kind::Money => "money",
            Kind::Float => "number",
            Kind::Bool => "true/false",
            Kind::Text => "text",
            Kind::Name8 | Kind::Name16 => "name",
            Kind::Date => "date",
            Kind::Timestamp => "timestamp",
        }
    }
}

/// Whether a column may lack a value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Null {
    /// Always has a value.
    Never,
    /// Always has a value, which may be empty text (an event list on a day without events):
    /// an empty CSV field, an empty string in Parquet, never a null.
    EmptyText,
    /// May have none: an empty CSV field, a null in Parquet.
    Allowed,
}

/// How a Parquet column is encoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoding {
    /// Plain values compressed with zstd (probabilities, rare strings, flags); also names,
    /// which are always dictionary-encoded from their keys.
    Plain,
    /// Dictionary, uncompressed: low-cardinality columns other than names (minutes, dates,
    /// ages).
    Dictionary,
    /// Delta-binary-packed, uncompressed: ids, money, counts.
    Delta,
}

/// One column of an output table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Column {
    /// Name, in the CSV header and the Parquet schema.
    pub name: &'static str,
    /// Type.
    pub kind: Kind,
    /// Whether it may lack a value.
    pub null: Null,
    /// Parquet encoding.
    pub encoding: Encoding,
    /// What it means, for the docs.
    pub doc: &'static str,
}

impl Column {
    /// A column that always has a value, encoded plainly: what most plugin columns are.
    pub const fn new(name: &'static str, kind: Kind, doc: &'static str) -> Self {
        col(name, kind, Null::Never, Encoding::Plain, doc)
    }

    /// The same column, allowed to lack a value (an empty CSV field, a Parquet null).
    pub const fn nullable(self) -> Self {
        Self {
            null: Null::Allowed,
            ..self
        }
    }
}

/// Shorthand for the declarations below.
const fn col(
    name: &'static str,
    kind: Kind,
    null: Null,
    encoding: Encoding,
    doc: &'static str,
) -> Column {
    Column {
        name,
        kind,
        null,
        encoding,
        doc,
    }
}

/// An output table: a file per format (`{stem}.csv`, `{stem}.parquet`) with these columns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Table {
    /// File name without extension.
    pub stem: &'static str,
    /// What one row is.
    pub row: &'static str,
    /// The columns, in order.
    pub columns: Vec<Column>,
}

impl Table {
    /// A table of `columns`.
    pub fn new(stem: &'static str, row: &'static str, columns: &[Column]) -> Self {
        Self {
            stem,
            row,
            columns: columns.to_vec(),
        }
    }

    /// The column names, in order: the CSV header.
    pub fn names(&self) -> Vec<&'static str> {
        self.columns.iter().map(|c| c.name).collect()
    }

    /// The Arrow schema of the Parquet file, money with `minor_units` decimal places.
    pub fn arrow_schema(&self, minor_units: u8) -> SchemaRef {
        Arc::new(Schema::new(
            self.columns
                .iter()
                .map(|c| Field::new(c.name, c.kind.arrow(minor_units), c.null == Null::Allowed))
                .collect::<Vec<_>>(),
        ))
    }

    /// The columns encoded as `encoding`.
    pub fn encoded(&self, encoding: Encoding) -> Vec<&'static str> {
        self.columns
            .iter()
            .filter(|c| c.encoding == encoding)
            .map(|c| c.name)
            .collect()
    }

    /// The columns that must have a non-empty value in every row.
    pub fn required(&self) -> Vec<&'static str> {
        self.columns
            .iter()
            .filter(|c| c.null == Null::Never)
            .map(|c| c.name)
            .collect()
    }

    /// Whether column `i` must have a non-empty value.
    pub fn is_required(&self, i: usize) -> bool {
        self.columns.get(i).is_some_and(|c| c.null == Null::Never)
    }

    /// The table's column reference in Markdown.
    pub fn markdown(&self) -> String {
        let mut s = format!(
            "### `{stem}`\n\nOne row per {row}. Written as `{stem}.csv` and/or `{stem}.parquet`.\n\n\
             | column | type | empty | meaning |\n|---|---|---|---|\n",
            stem = self.stem,
            row = self.row
        );
        for c in &self.columns {
            let empty = match c.null {
                Null::Never => "",
                Null::EmptyText => "may be empty",
                Null::Allowed => "may be empty (null)",
            };
            let _ = writeln!(
                s,
                "| `{}` | {} | {} | {} |",
                c.name,
                c.kind.describe(),
                empty,
                c.doc
            );
        }
        s
    }
}

/// A table's shape as `tables.json` records it for `bazaar check`: the tables plugins added,
/// and `daily_metrics` when plugins added columns to it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Declared {
    /// File name without extension.
    pub stem: String,
    /// Columns: name, type, whether it may lack a value.
    pub columns: Vec<(String, Kind, Null)>,
}

impl Declared {
    /// The column names, in order.
    pub fn names(&self) -> Vec<&str> {
        self.columns.iter().map(|c| c.0.as_str()).collect()
    }
}

impl Table {
    /// The shape recorded in `tables.json`.
    pub fn declared(&self) -> Declared {
        Declared {
            stem: self.stem.to_owned(),
            columns: self
                .columns
                .iter()
                .map(|c| (c.name.to_owned(), c.kind, c.null))
                .collect(),
        }
    }
}

/// The file that records plugin-declared shapes in an output folder.
pub const DECLARED_FILE: &str = "tables.json";

use Encoding::{Delta, Dictionary, Plain};
use Kind::*;
use Null::{Allowed, EmptyText, Never};

/// The day's calendar columns, shared by transactions and daily metrics.
const FESTIVAL: Column = col(
    "festival",
    Bool,
    Never,
    Plain,
    "Whether the day is one of a festival's full-effect days.",
);
const WEEKEND: Column = col(
    "weekend",
    Bool,
    Never,
    Plain,
    "Whether the day is a Saturday or Sunday.",
);
const EVENTS: Column = col(
    "events",
    Name16,
    EmptyText,
    Plain,
    "The calendar events active that day, `+`-joined.",
);
const PERSONA: Column = col("persona", Name8, Never, Plain, "The customer's persona.");

/// `transactions`: one row per basket paid for.
pub fn transactions() -> Table {
    Table::new(
        "transactions",
        "basket paid for",
        &[
            col(
                "transaction_id",
                U64,
                Never,
                Delta,
                "Day index × 10¹⁰ + customer id: unique, as a customer shops at most once a day.",
            ),
            col(
                "timestamp",
                Timestamp,
                Never,
                Dictionary,
                "Local time of the visit, to the minute.",
            ),
            col("customer_id", U32, Never, Delta, "The customer."),
            PERSONA,
            col("total", Money, Never, Delta, "Paid for the basket."),
            col(
                "lines",
                U16,
                Never,
                Delta,
                "Lines (categories) in the basket.",
            ),
            col(
                "units",
                U32,
                Never,
                Delta,
                "Units bought, all lines together.",
            ),
            FESTIVAL,
            WEEKEND,
            EVENTS,
            col(
                "budget_trimmed",
                Bool,
                Never,
                Plain,
                "Whether the budget trimmed the basket: the money ran short, or wants were paced.",
            ),
        ],
    )
}

/// `line_items`: one row per category bought in a basket.
pub fn line_items() -> Table {
    Table::new(
        "line_items",
        "category bought in a basket",
        &[
            col(
                "transaction_id",
                U64,
                Never,
                Delta,
                "The basket's transaction.",
            ),
            col(
                "line",
                U16,
                Never,
                Delta,
                "Position of the line in the basket, from 1.",
            ),
            col("category", Name16, Never, Plain, "The catalog category."),
            col("quantity", U32, Never, Delta, "Units bought."),
            col("unit_price", Money, Never, Delta, "Price of one unit."),
            col("line_total", Money, Never, Delta, "quantity × unit_price."),
        ],
    )
}

/// `daily_metrics`: one row per day and persona.
pub fn daily_metrics() -> Table {
    let count = |name, doc| col(name, U64, Never, Plain, doc);
    Table::new(
        "daily_metrics",
        "day and persona",
        &[
            col("date", Date, Allowed, Dictionary, "The day."),
            PERSONA,
            count(
                "active_customers",
                "Customers of the persona not churned at the end of the day.",
            ),
            count("acquired", "Customers who joined that day."),
            count("churned", "Customers who left that day."),
            count("visits", "Visits, with or without a purchase."),
            count("empty_visits", "Visits that bought nothing."),
            count("transactions", "Baskets paid for."),
            col(
                "revenue",
                Money,
                Never,
                Plain,
                "Paid, all baskets together.",
            ),
            count("units", "Units bought."),
            col(
                "mean_basket",
                Money,
                Never,
                Plain,
                "revenue / transactions, rounded to the paisa half away from zero (0 without transactions).",
            ),
            count(
                "budget_trimmed",
                "Baskets the budget trimmed (money short, or wants paced).",
            ),
            count(
                "retention_offers",
                "Retention offers sent (with a churn model).",
            ),
            col(
                "retention_cost",
                Money,
                Never,
                Plain,
                "What the retention offers cost.",
            ),
            FESTIVAL,
            WEEKEND,
            EVENTS,
        ],
    )
}

/// `churn_events`: one row per customer who left.
pub fn churn_events() -> Table {
    Table::new(
        "churn_events",
        "customer who left",
        &[
            col("customer_id", U32, Never, Delta, "The customer."),
            col(
                "date",
                Date,
                Allowed,
                Dictionary,
                "The day the customer left.",
            ),
            PERSONA,
            col(
                "probability",
                Float,
                Never,
                Plain,
                "The daily churn probability drawn against, rounded to 4 decimals.",
            ),
            col(
                "cause",
                Text,
                Never,
                Plain,
                "The largest term of the hazard (`loyalty`, `unmet_visits`, `budget`, `lapse`, \
                 `base`), or `model` when a churn model drives churn.",
            ),
            col(
                "loyalty",
                Float,
                Never,
                Plain,
                "Loyalty when leaving, rounded to 4 decimals.",
            ),
            col(
                "days_since_last_purchase",
                U32,
                Allowed,
                Plain,
                "Days since the last purchase; empty if the customer never bought.",
            ),
        ],
    )
}

/// `customers`: one row per customer, the final state.
pub fn customers() -> Table {
    Table::new(
        "customers",
        "customer (the state at the end of the run)",
        &[
            col("customer_id", U32, Never, Delta, "The customer."),
            PERSONA,
            col("age", U8, Never, Dictionary, "Age in years."),
            col(
                "income",
                U32,
                Never,
                Delta,
                "Monthly income, whole units of the currency.",
            ),
            col(
                "monthly_budget",
                Money,
                Allowed,
                Plain,
                "Monthly budget; empty when the persona has no budget.",
            ),
            col(
                "budget_left",
                Money,
                Allowed,
                Plain,
                "What is left of the budget (this month's and up to a month saved); empty when unlimited.",
            ),
            col(
                "loyalty",
                Float,
                Never,
                Plain,
                "Loyalty, rounded to 4 decimals.",
            ),
            col("visits", U32, Never, Delta, "Visits made."),
            col("purchases", U32, Never, Delta, "Baskets paid for."),
            col("total_spent", Money, Never, Delta, "Paid over the run."),
            col(
                "last_purchase",
                Date,
                Allowed,
                Dictionary,
                "Day of the last purchase; empty if none.",
            ),
            col(
                "joined_on",
                Date,
                Never,
                Dictionary,
                "Day the customer joined (the start for the starting population).",
            ),
            col(
                "churned_on",
                Date,
                Allowed,
                Plain,
                "Day the customer left; empty if still active.",
            ),
        ],
    )
}

/// Every built-in table, in the order the docs list them.
pub fn builtin() -> Vec<Table> {
    vec![
        transactions(),
        line_items(),
        daily_metrics(),
        churn_events(),
        customers(),
    ]
}

/// The column reference of docs/outputs.md: the built-in tables, generated.
pub fn reference() -> String {
    let mut s = String::from(
        "# Output tables\n\n\
         Generated by `bazaar tables` from the tables' declarations (`src/output/schema.rs`):\n\
         the CSV headers, the Parquet schemas and the checks of `bazaar check` come from the\n\
         same lists. Money is in the scenario's currency (`money:`, Indian rupees by default)\n\
         with its minor units' decimal places (`1234.56` for rupees or dollars, `1234` for\n\
         yen); `summary.json` names the currency when it is not rupees. In Parquet, integers\n\
         are unsigned of the width the CSV values need, money is `decimal(18, minor units)`,\n\
         dates are `date32`, timestamps timezone-less `timestamp[ms]`\n\
         (local time), names dictionary-encoded strings, and an empty CSV field is a null.\n\
         Behaviours enabled in a scenario may add tables of their own and columns at the end of\n\
         `daily_metrics`; a folder that has them describes them in `tables.json`.\n",
    );
    for t in builtin() {
        s.push('\n');
        s.push_str(&t.markdown());
    }
    s.push_str(
        "\n## Rollups\n\n\
         Every run also writes two small tables rolled up from the baskets as they are made\n\
         (`src/analytics/rollup.rs`), for slicing a run by date, hour, persona and category\n\
         without joining the line items to their baskets (the dashboard's filtered views\n\
         read them). Each is a grouping set: a row with an empty `category` covers whole\n\
         baskets, a row with one covers the baskets holding that category and only its\n\
         lines; sum one kind of row or the other, never both.\n",
    );
    for t in [
        crate::analytics::rollup::sales_table(),
        crate::analytics::rollup::basket_values_table(),
    ] {
        s.push('\n');
        s.push_str(&t.markdown());
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_within_each_table() {
        for t in builtin() {
            let mut names = t.names();
            names.sort_unstable();
            let before = names.len();
            names.dedup();
            assert_eq!(names.len(), before, "{}", t.stem);
        }
    }

    #[test]
    fn nullability_reaches_the_arrow_schema_and_the_checks() {
        let t = customers();
        let schema = t.arrow_schema(2);
        assert!(schema.field_with_name("churned_on").unwrap().is_nullable());
        assert!(!schema.field_with_name("customer_id").unwrap().is_nullable());
        assert!(!t.required().contains(&"budget_left"));
        // An event list may be empty but is never null.
        let tx = transactions();
        assert!(
            !tx.arrow_schema(2)
                .field_with_name("events")
                .unwrap()
                .is_nullable()
        );
        assert!(!tx.required().contains(&"events"));
        assert_eq!(tx.encoded(Encoding::Dictionary), ["timestamp"]);
    }
}
