//! The output tables are declared once (`output::schema`): the files a run writes, the column
//! reference in docs/outputs.md and the README's table of outputs all agree with the
//! declarations.

use crate::common;

use std::fs::File;

use bazaar::output::schema;
use common::{bazaar, root, text};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

#[test]
fn written_headers_and_parquet_schemas_are_the_declared_ones() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let o = bazaar(&[
        "run",
        "scenarios/quick.ron",
        "--format",
        "csv,parquet",
        "--no-report",
        "--quiet",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{:?}", text(&o));
    for table in schema::builtin() {
        let csv = out.join(format!("{}.csv", table.stem));
        let header: Vec<String> = csv::Reader::from_path(&csv)
            .unwrap()
            .headers()
            .unwrap()
            .iter()
            .map(String::from)
            .collect();
        assert_eq!(header, table.names(), "{}", csv.display());
        let parquet = out.join(format!("{}.parquet", table.stem));
        let builder =
            ParquetRecordBatchReaderBuilder::try_new(File::open(&parquet).unwrap()).unwrap();
        let declared = table.arrow_schema(2);
        let read = builder.schema();
        assert_eq!(read.fields().len(), declared.fields().len());
        for (r, d) in read.fields().iter().zip(declared.fields()) {
            assert_eq!(
                (r.name(), r.data_type(), r.is_nullable()),
                (d.name(), d.data_type(), d.is_nullable()),
                "{}",
                parquet.display()
            );
        }
    }
}

#[test]
fn the_column_reference_is_generated_from_the_declarations() {
    let o = bazaar(&["tables"]);
    assert!(o.status.success());
    let (generated, _) = text(&o);
    let committed = std::fs::read_to_string(root().join("docs/outputs.md")).unwrap();
    assert!(
        committed == generated,
        "docs/outputs.md differs from `bazaar tables`: regenerate it with \
         `cargo run --release -- tables > docs/outputs.md`"
    );
    for table in schema::builtin() {
        for c in &table.columns {
            assert!(
                generated.contains(&format!("| `{}` |", c.name)),
                "{}",
                c.name
            );
        }
    }
}

#[test]
fn the_readme_lists_every_declared_column_in_order() {
    let readme = std::fs::read_to_string(root().join("README.md")).unwrap();
    for table in schema::builtin() {
        let start = format!("| `{}.csv` |", table.stem);
        let row = readme
            .lines()
            .find(|l| l.starts_with(&start))
            .unwrap_or_else(|| panic!("README has no row for {}", table.stem));
        // Backticked names in the columns cell, in order, notes in parentheses left out.
        let mut columns = String::new();
        let mut depth = 0;
        for ch in row.rsplit('|').nth(1).unwrap().chars() {
            match ch {
                '(' => depth += 1,
                ')' => depth -= 1,
                _ if depth == 0 => columns.push(ch),
                _ => {}
            }
        }
        let listed: Vec<&str> = columns.split('`').skip(1).step_by(2).collect();
        assert_eq!(listed, table.names(), "README's row for {}", table.stem);
    }
}
