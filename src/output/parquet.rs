//! Parquet output: every table as a zstd-compressed Parquet file, streamed in row groups.
//!
//! Rows are gathered into plain column vectors on the simulation thread (a few stores per
//! row); each full row group is handed to the table's own writer thread, which builds the
//! Arrow arrays, encodes, compresses, hashes and writes them while the simulation goes on.
//! Names (personas, categories, event lists) are dictionary columns written from their keys
//! (`keyed`), integer columns delta-encoded in one pass (`delta`); the other columns go
//! through arrow-rs's column writers.
//! Row-group boundaries depend on row counts alone, so the files are byte-identical at any
//! thread count. Columns keep the CSV names; money is `decimal(18, 2)` rupees, dates are
//! dates, timestamps are local (timezone-less), to the minute.

use std::collections::HashMap;
use std::io;
use std::sync::Arc;
use std::sync::mpsc::Receiver;

use arrow_array::types::{UInt8Type, UInt16Type};
use arrow_array::{
    ArrayRef, BooleanArray, Date32Array, Decimal128Array, DictionaryArray, Float64Array,
    RecordBatch, StringArray, TimestampMillisecondArray, UInt8Array, UInt16Array, UInt32Array,
    UInt64Array,
};
use arrow_schema::{Schema, SchemaRef};
use parquet::arrow::ArrowWriter;
use parquet::arrow::arrow_writer::{ArrowColumnChunk, ArrowRowGroupWriterFactory, compute_leaves};
use parquet::basic::{Compression, Encoding, ZstdLevel};
use parquet::file::properties::WriterProperties;
use parquet::file::writer::SerializedFileWriter;
use parquet::schema::types::ColumnPath;
use serde::{Deserialize, Serialize};

use super::file::{Hashing, Mark};
use super::schema;
use super::sinks::{CustomerRow, HourContext, Sink, round4, transaction_id};
use super::worker::Worker;
use super::{FileEntry, OutputDir, OutputError, io_at};
use super::{delta, keyed};
use crate::records::{ChurnRecord, ClosedDay, HourRecords, LineRecord, ShopBuffer, Totals};

/// Rows per row group: large enough for good compression and cheap metadata, small enough
/// that a group's column vectors stay a few tens of megabytes.
pub const ROW_GROUP_ROWS: usize = 1 << 19;
/// Row groups queued for a writer thread before the simulation waits for it.
const QUEUE: usize = 1;

fn to_io(e: impl std::error::Error + Send + Sync + 'static) -> io::Error {
    io::Error::other(e)
}

/// How a table's columns are encoded; columns named nowhere are plain values compressed with
/// zstd level 1 (probabilities, rare strings), where a dictionary would only cost time.
#[derive(Default)]
pub struct Encodings<'a> {
    /// Low-cardinality columns other than names (minutes, dates, ages): dictionary encoded,
    /// uncompressed. Names (string dictionary arrays declared without nulls) are always
    /// dictionary encoded, from their keys (`keyed`), whatever these lists say.
    pub dictionary: &'a [&'a str],
    /// Integer columns (ids, money, counts): delta-binary-packed, uncompressed. Bit-packed
    /// deltas are smaller than zstd's plain values here and several times cheaper to write.
    pub deltas: &'a [&'a str],
}

/// The writer settings of every Bazaar Parquet file: page statistics, and the per-column
/// encodings of `e`, whose every name must be a column of `schema` (a misspelt name would
/// otherwise be ignored without a word).
pub fn writer_properties(schema: &Schema, e: Encodings<'_>) -> io::Result<WriterProperties> {
    if let Some(col) = e
        .dictionary
        .iter()
        .chain(e.deltas)
        .find(|c| schema.field_with_name(c).is_err())
    {
        return Err(io::Error::other(format!(
            "the encodings name `{col}`, which is not a column"
        )));
    }
    // A column is written one way: `delta` takes every delta column, whatever else is set.
    if let Some(col) = e.dictionary.iter().find(|c| e.deltas.contains(c)) {
        return Err(io::Error::other(format!(
            "the encodings list `{col}` both as a dictionary and as deltas"
        )));
    }
    let level = ZstdLevel::try_new(1).expect("zstd level 1 exists");
    let mut b = WriterProperties::builder()
        .set_compression(Compression::ZSTD(level))
        .set_dictionary_enabled(false)
        .set_max_row_group_row_count(None)
        .set_created_by(format!("bazaar {}", env!("CARGO_PKG_VERSION")));
    // Dictionary indices and delta-packed ids are already a few bits a value: compressing
    // them again costs more time than it saves bytes.
    for col in e.dictionary {
        let path = ColumnPath::from(*col);
        b = b
            .set_column_dictionary_enabled(path.clone(), true)
            .set_column_compression(path, Compression::UNCOMPRESSED);
    }
    for col in e.deltas {
        let path = ColumnPath::from(*col);
        b = b
            .set_column_encoding(path.clone(), Encoding::DELTA_BINARY_PACKED)
            .set_column_compression(path, Compression::UNCOMPRESSED);
    }
    Ok(b.build())
}

/// Builds one row group's arrays; runs on the table's writer thread.
type Build = Box<dyn FnOnce() -> Vec<ArrayRef> + Send>;

/// What a table's writer thread is handed, in order.
enum Job {
    /// A row group to write.
    Group(Build),
    /// Put every row group so far on disk and answer where the file stands.
    Save(std::sync::mpsc::SyncSender<io::Result<Saved>>),
}

/// A file put on disk for a checkpoint: its bytes so far, and the footer that would close
/// it there, from which a writer taken up again recovers its row groups.
struct Saved {
    mark: Mark,
    footer: Vec<u8>,
}

/// Where a Parquet table stood at a checkpoint ([`ParquetTable::save`]).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ParquetMark {
    name: String,
    rows: u64,
    mark: Mark,
    footer: Vec<u8>,
}

/// What a writer thread hands back: the file's size and hash.
struct Written {
    bytes: u64,
    hash: blake3::Hash,
}

/// A row group's encoded column.
enum Chunk {
    Arrow(ArrowColumnChunk),
    /// Written by `keyed` or `delta`.
    Spliced(keyed::SplicedChunk),
}

/// The file under a Parquet writer. Bytes go to the file, except the first `skip` (a file
/// taken up at a checkpoint holds them already: its row groups are replayed through the
/// writer so it knows them, without their bytes being written again) and, while `footer`
/// gathers, a checkpoint's footer (kept in the checkpoint, never in the file).
struct Spliced {
    out: Option<Hashing>,
    skip: u64,
    footer: Option<Vec<u8>>,
}

impl io::Write for Spliced {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if let Some(footer) = &mut self.footer {
            footer.extend_from_slice(buf);
            return Ok(buf.len());
        }
        if self.skip > 0 {
            let n = buf
                .len()
                .min(usize::try_from(self.skip).unwrap_or(usize::MAX));
            self.skip -= n as u64;
            return Ok(n);
        }
        self.out
            .as_mut()
            .ok_or_else(|| io::Error::other("the Parquet file was closed"))?
            .write(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// The bytes of a file up to `at` as zeros, for replaying row groups whose bytes are not
/// written again ([`Spliced::skip`]), then `footer`: what parsing a checkpoint's footer, and
/// replaying its chunks, read.
struct Tail {
    at: u64,
    /// Shared, so each chunk's reader takes a slice of it rather than a copy.
    footer: bytes::Bytes,
}

impl parquet::file::reader::Length for Tail {
    fn len(&self) -> u64 {
        self.at + self.footer.len() as u64
    }
}

impl parquet::file::reader::ChunkReader for Tail {
    type T = io::Chain<io::Take<io::Repeat>, io::Cursor<bytes::Bytes>>;

    fn get_read(&self, start: u64) -> parquet::errors::Result<Self::T> {
        let from = start.saturating_sub(self.at).min(self.footer.len() as u64) as usize;
        Ok(io::Read::chain(
            io::Read::take(io::repeat(0), self.at.saturating_sub(start)),
            io::Cursor::new(self.footer.slice(from..)),
        ))
    }

    fn get_bytes(&self, start: u64, length: usize) -> parquet::errors::Result<bytes::Bytes> {
        let end = start + length as u64;
        if start >= self.at && end <= parquet::file::reader::Length::len(self) {
            let from = (start - self.at) as usize;
            Ok(self.footer.slice(from..from + length))
        } else if end <= self.at {
            Ok(bytes::Bytes::from(vec![0u8; length]))
        } else {
            Err(parquet::errors::ParquetError::General(format!(
                "a checkpoint's footer read at {start}..{end} across its start {}",
                self.at
            )))
        }
    }
}

/// A table's Parquet writer and its row groups' column writers.
type Writers = (SerializedFileWriter<Spliced>, ArrowRowGroupWriterFactory);

/// Starts a Parquet writer over `out`. For a file taken up at a checkpoint (`footer`:
/// what would have closed it at `out`'s length), the row groups the footer lists are
/// replayed first, so the writer goes on, and finishes, exactly as the one that wrote them.
fn open_writer(
    out: Hashing,
    schema: &SchemaRef,
    props: &WriterProperties,
    footer: Option<&[u8]>,
) -> io::Result<Writers> {
    let at = footer.map_or(0, |_| out.bytes());
    let sink = Spliced {
        out: Some(out),
        skip: at,
        footer: None,
    };
    let (mut writer, factory) = ArrowWriter::try_new(sink, schema.clone(), Some(props.clone()))
        .and_then(ArrowWriter::into_serialized_writer)
        .map_err(to_io)?;
    if let Some(footer) = footer {
        use parquet::column::writer::ColumnCloseResult;
        use parquet::file::metadata::{
            PageIndexPolicy, ParquetMetaDataOptions, ParquetMetaDataReader,
        };
        let tail = Tail {
            at,
            footer: bytes::Bytes::copy_from_slice(footer),
        };
        // Everything the footer says is read back as written (page encoding statistics
        // whole, not as the reader's default mask), so the footer written at the end is the
        // one a run without checkpoints writes.
        let options = ParquetMetaDataOptions::new().with_encoding_stats_as_mask(false);
        let metadata = ParquetMetaDataReader::new()
            .with_metadata_options(Some(options))
            .with_page_index_policy(PageIndexPolicy::Optional)
            .parse_and_finish(&tail)
            .map_err(to_io)?;
        for (g, group) in metadata.row_groups().iter().enumerate() {
            let mut out = writer.next_row_group().map_err(to_io)?;
            for (c, column) in group.columns().iter().enumerate() {
                let close = ColumnCloseResult {
                    bytes_written: column.compressed_size() as u64,
                    rows_written: group.num_rows() as u64,
                    metadata: as_written(column).map_err(to_io)?,
                    bloom_filter: None,
                    column_index: metadata
                        .column_index()
                        .and_then(|i| i.get(g)?.get(c).cloned()),
                    offset_index: metadata
                        .offset_index()
                        .and_then(|i| i.get(g)?.get(c).cloned()),
                };
                out.append_column(&tail, close).map_err(to_io)?;
            }
            out.close().map_err(to_io)?;
        }
        // The writer buffers what it is handed: what it still holds has not been skipped.
        writer.flush()?;
        if writer.inner().skip != 0 || writer.bytes_written() as u64 != at {
            return Err(io::Error::other(format!(
                "the checkpoint's footer accounts for {} of the file's {at} bytes",
                (writer.bytes_written() as u64).min(at) - writer.inner().skip
            )));
        }
    }
    Ok((writer, factory))
}

/// A column chunk's metadata read back from a footer, as its writer held it: signed
/// columns' statistics also fill the format's old `min`/`max` fields (as arrow-rs's column
/// writer and `delta` do), a choice the footer does not record.
fn as_written(
    column: &parquet::file::metadata::ColumnChunkMetaData,
) -> parquet::errors::Result<parquet::file::metadata::ColumnChunkMetaData> {
    use parquet::file::statistics::Statistics;
    let Some(statistics) = column.statistics() else {
        return Ok(column.clone());
    };
    let old = column.column_descr().sort_order().is_signed();
    let statistics = match statistics.clone() {
        Statistics::Boolean(s) => Statistics::Boolean(s.with_backwards_compatible_min_max(old)),
        Statistics::Int32(s) => Statistics::Int32(s.with_backwards_compatible_min_max(old)),
        Statistics::Int64(s) => Statistics::Int64(s.with_backwards_compatible_min_max(old)),
        Statistics::Int96(s) => Statistics::Int96(s.with_backwards_compatible_min_max(old)),
        Statistics::Float(s) => Statistics::Float(s.with_backwards_compatible_min_max(old)),
        Statistics::Double(s) => Statistics::Double(s.with_backwards_compatible_min_max(old)),
        Statistics::ByteArray(s) => Statistics::ByteArray(s.with_backwards_compatible_min_max(old)),
        Statistics::FixedLenByteArray(s) => {
            Statistics::FixedLenByteArray(s.with_backwards_compatible_min_max(old))
        }
    };
    column
        .clone()
        .into_builder()
        .set_statistics(statistics)
        .build()
}

/// Closes a writer's file for a checkpoint: the footer that would end it now is gathered
/// apart, the bytes before it put on disk, and a writer replaying its row groups
/// ([`open_writer`]) goes on from there.
fn save_writer(
    (mut writer, factory): Writers,
    schema: &SchemaRef,
    props: &WriterProperties,
) -> io::Result<(Writers, Saved)> {
    drop(factory);
    // Everything before the footer goes to the file first (the writer buffers what it is
    // handed), then the footer is gathered apart.
    writer.flush()?;
    writer.inner_mut().footer = Some(Vec::new());
    writer.finish().map_err(to_io)?;
    let footer = writer.inner_mut().footer.take().unwrap_or_default();
    let mut out = writer
        .inner_mut()
        .out
        .take()
        .ok_or_else(|| io::Error::other("the Parquet file was closed"))?;
    drop(writer);
    let mark = out.persist()?;
    let writers = open_writer(out, schema, props, Some(&footer))?;
    Ok((writers, Saved { mark, footer }))
}

/// What a row group's encoding needs besides its arrays, shared by the groups in flight.
struct Layout {
    schema: SchemaRef,
    descrs: Vec<parquet::schema::types::ColumnDescPtr>,
    /// Whether each column is written by `delta`.
    deltas: Vec<bool>,
}

/// Builds one row group's arrays and encodes its columns in parallel (on the pool this runs
/// on); runs on the pool, several groups of a table at once.
fn encode_group(
    layout: &Layout,
    build: Build,
    column_writers: Vec<parquet::arrow::arrow_writer::ArrowColumnWriter>,
    timings: &crate::timings::Timings,
    part: &str,
) -> parquet::errors::Result<Vec<Chunk>> {
    use rayon::prelude::*;
    // The batch checks the arrays against the schema (types, lengths).
    let batch = timings.time(part, "build", || {
        RecordBatch::try_new(layout.schema.clone(), build())
    })?;
    let fields = layout.schema.fields();
    timings.time(part, "encode", || {
        column_writers
            .into_par_iter()
            .zip(fields.par_iter().zip(batch.columns()).zip(&layout.descrs))
            .zip(&layout.deltas)
            .map(|((mut w, ((field, array), descr)), &is_delta)| {
                if keyed::is_keyed(field) {
                    return keyed::encode(descr.clone(), array).map(Chunk::Spliced);
                }
                if is_delta && !array.is_empty() {
                    return delta::encode(descr.clone(), array).map(Chunk::Spliced);
                }
                for leaf in compute_leaves(field, array)? {
                    w.write(&leaf)?;
                }
                w.close().map(Chunk::Arrow)
            })
            .collect()
    })
}

/// A row group being encoded on the pool: its chunks come back on this channel.
type InFlight = Receiver<parquet::errors::Result<Vec<Chunk>>>;

/// Writes every row group received, in the order received: up to `depth` groups are built
/// and encoded at once on the pool (each with its columns in parallel), and each is
/// appended to the file as soon as it and every group before it are done. Row groups are
/// cut by row counts alone and appended in order, so the file is the same bytes however
/// many are in flight. Saves the file where asked; then the footer.
#[allow(clippy::too_many_arguments)]
fn write_groups(
    writers: Writers,
    schema: &SchemaRef,
    props: &WriterProperties,
    jobs: Receiver<Job>,
    pool: &rayon::ThreadPool,
    depth: usize,
    timings: &crate::timings::Timings,
    part: &str,
) -> io::Result<Written> {
    let (mut writer, mut factory) = writers;
    let fields = schema.fields();
    // Bazaar's schemas are flat: one leaf column, and one column writer, per field.
    let descrs: Vec<_> = writer.schema_descr().columns().to_vec();
    if descrs.len() != fields.len() {
        return Err(io::Error::other("a nested column in a Parquet schema"));
    }
    let deltas: Vec<bool> = fields
        .iter()
        .zip(&descrs)
        .map(|(f, d)| delta::is_delta(f, props.encoding(d.path())))
        .collect();
    let layout = Arc::new(Layout {
        schema: schema.clone(),
        descrs,
        deltas,
    });
    let mut in_flight: std::collections::VecDeque<InFlight> = std::collections::VecDeque::new();
    // Appends the oldest group in flight once it is encoded.
    let append_next = |writer: &mut SerializedFileWriter<Spliced>,
                       in_flight: &mut std::collections::VecDeque<InFlight>|
     -> io::Result<()> {
        let Some(next) = in_flight.pop_front() else {
            return Ok(());
        };
        let chunks = next
            .recv()
            .map_err(|_| io::Error::other("encoding a row group panicked"))?
            .map_err(to_io)?;
        timings.time(part, "write", || {
            let mut group = writer.next_row_group().map_err(to_io)?;
            for chunk in chunks {
                match chunk {
                    Chunk::Arrow(c) => c.append_to_row_group(&mut group),
                    Chunk::Spliced(c) => c.append_to_row_group(&mut group),
                }
                .map_err(to_io)?;
            }
            group.close().map_err(to_io).map(drop)
        })
    };
    for job in jobs {
        let build = match job {
            Job::Group(build) => build,
            Job::Save(answer) => {
                while !in_flight.is_empty() {
                    append_next(&mut writer, &mut in_flight)?;
                }
                let (writers, saved) = save_writer((writer, factory), schema, props)?;
                (writer, factory) = writers;
                let _ = answer.send(Ok(saved));
                continue;
            }
        };
        let index = writer.flushed_row_groups().len() + in_flight.len();
        let column_writers = factory.create_column_writers(index).map_err(to_io)?;
        let (done, chunks) = std::sync::mpsc::sync_channel(1);
        let (layout, timings, part) = (layout.clone(), timings.clone(), part.to_owned());
        pool.spawn(move || {
            // A panic stays in this group (the file's writer reports it) rather than
            // ending the process, as a panic on a pool's spawned task would.
            let encoded = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                encode_group(&layout, build, column_writers, &timings, &part)
            }));
            if let Ok(encoded) = encoded {
                let _ = done.send(encoded);
            }
        });
        in_flight.push_back(chunks);
        while in_flight.len() >= depth {
            append_next(&mut writer, &mut in_flight)?;
        }
    }
    while !in_flight.is_empty() {
        append_next(&mut writer, &mut in_flight)?;
    }
    let mut out = writer
        .into_inner()
        .map_err(to_io)?
        .out
        .ok_or_else(|| io::Error::other("the Parquet file was closed"))?;
    out.sync()?;
    Ok(Written {
        bytes: out.bytes(),
        hash: out.hash(),
    })
}

/// Row groups of one table encoded at once on a pool of `threads`: enough to keep every
/// core busy when one table's groups are the run's output (a group's columns are already
/// encoded in parallel, but a table has only a dozen columns, some much slower than the
/// rest), and few enough that the groups waiting in memory stay a small part of a run's.
/// One up to four threads: there the simulation needs the cores, and a second group in
/// flight per table took a 10M run's peak past 2 GB.
fn groups_in_flight(threads: usize) -> usize {
    threads.div_ceil(4).clamp(1, 4)
}

/// One Parquet file written by its own thread, a row group per batch received.
pub struct ParquetTable {
    name: String,
    writer: Worker<Job, Written>,
    rows: u64,
    /// The closed file's size and hash, once [`ParquetTable::close`] has run.
    written: Option<Written>,
}

impl ParquetTable {
    /// Creates `name` in the output folder and starts its writer thread.
    pub fn create(
        dir: &OutputDir,
        name: &str,
        schema: SchemaRef,
        encodings: Encodings<'_>,
    ) -> Result<Self, OutputError> {
        let path = dir.path(name);
        let file = dir.create_file(name).map_err(io_at(&path))?;
        Self::start(dir, name, schema, encodings, file, None, 0)
    }

    /// Starts the writer thread of `name` over `file` (taken up at a checkpoint where
    /// `footer` is given).
    fn start(
        dir: &OutputDir,
        name: &str,
        schema: SchemaRef,
        encodings: Encodings<'_>,
        file: Hashing,
        footer: Option<&[u8]>,
        rows: u64,
    ) -> Result<Self, OutputError> {
        let path = dir.path(name);
        let props = writer_properties(&schema, encodings).map_err(io_at(&path))?;
        let writers = open_writer(file, &schema, &props, footer).map_err(|e| OutputError::Io {
            path: path.clone(),
            source: e,
        })?;
        let pool = dir.pool();
        let depth = groups_in_flight(pool.current_num_threads());
        let (timings, part) = (dir.timings(), name.to_owned());
        let writer = Worker::start(
            name,
            format!("parquet:{name}"),
            QUEUE,
            timings.clone(),
            move |jobs| {
                write_groups(
                    writers, &schema, &props, jobs, &pool, depth, &timings, &part,
                )
            },
        )
        .map_err(io_at(&path))?;
        Ok(Self {
            name: name.to_owned(),
            writer,
            rows,
            written: None,
        })
    }

    /// Creates the Parquet file of a declared table: `{stem}.parquet`, its schema (money with
    /// `minor_units` decimal places) and per-column encodings from the declaration; or,
    /// with `mark`, takes it up where a checkpoint left it.
    pub fn of(
        dir: &OutputDir,
        table: &schema::Table,
        minor_units: u8,
    ) -> Result<Self, OutputError> {
        Self::declared(dir, table, minor_units, None)
    }

    /// [`ParquetTable::of`], taken up at `mark` when given.
    fn declared(
        dir: &OutputDir,
        table: &schema::Table,
        minor_units: u8,
        mark: Option<&ParquetMark>,
    ) -> Result<Self, OutputError> {
        let dictionary = table.encoded(schema::Encoding::Dictionary);
        let deltas = table.encoded(schema::Encoding::Delta);
        let name = format!("{}.parquet", table.stem);
        let encodings = Encodings {
            dictionary: &dictionary,
            deltas: &deltas,
        };
        let schema = table.arrow_schema(minor_units);
        match mark {
            None => Self::create(dir, &name, schema, encodings),
            Some(mark) => {
                let path = dir.path(&name);
                if mark.name != name {
                    return Err(io_at(&path)(io::Error::other(format!(
                        "the checkpoint holds `{}` where this run writes `{name}`",
                        mark.name
                    ))));
                }
                let file = dir.resume_file(&name, &mark.mark).map_err(io_at(&path))?;
                Self::start(
                    dir,
                    &name,
                    schema,
                    encodings,
                    file,
                    Some(&mark.footer),
                    mark.rows,
                )
            }
        }
    }

    /// Takes up a declared table where a checkpoint left it ([`ParquetTable::save`]).
    pub fn resume(
        dir: &OutputDir,
        table: &schema::Table,
        minor_units: u8,
        mark: &ParquetMark,
    ) -> Result<Self, OutputError> {
        Self::declared(dir, table, minor_units, Some(mark))
    }

    /// Queues one row group of `rows` rows, whose arrays `build` makes on the writer thread.
    /// Blocks only when the writer is `QUEUE` groups behind.
    pub fn write(
        &mut self,
        rows: usize,
        build: impl FnOnce() -> Vec<ArrayRef> + Send + 'static,
    ) -> io::Result<()> {
        if rows == 0 {
            return Ok(());
        }
        self.rows += rows as u64;
        self.writer.send(Job::Group(Box::new(build)))
    }

    /// Waits for every row group queued to be written, puts the file on disk and returns
    /// where it stands, for a checkpoint; row groups go on after it as before.
    pub fn save(&mut self) -> io::Result<ParquetMark> {
        let (answer, saved) = std::sync::mpsc::sync_channel(1);
        self.writer.send(Job::Save(answer))?;
        let saved = match saved.recv() {
            Ok(saved) => saved?,
            Err(_) => {
                return Err(self.writer.join().err().unwrap_or_else(|| {
                    io::Error::other(format!("the writer of {} stopped", self.name))
                }));
            }
        };
        Ok(ParquetMark {
            name: self.name.clone(),
            rows: self.rows,
            mark: saved.mark,
            footer: saved.footer,
        })
    }

    /// Waits for the writer and closes the file, freeing the writer's buffers; nothing more
    /// can be written. [`ParquetTable::finish`] does it if it has not been done.
    pub fn close(&mut self) -> io::Result<()> {
        if self.written.is_none() {
            let written = self.writer.join();
            let name = &self.name;
            self.written =
                Some(written.map_err(|e| io::Error::new(e.kind(), format!("{name}: {e}")))?);
        }
        Ok(())
    }

    /// Closes the file and lists it in the manifest.
    pub fn finish(mut self, dir: &mut OutputDir) -> Result<(), OutputError> {
        let path = dir.path(&self.name);
        self.close().map_err(io_at(&path))?;
        let written = self.written.expect("closed above");
        dir.add(FileEntry {
            name: self.name,
            rows: self.rows,
            bytes: written.bytes,
            blake3: written.hash.to_hex().to_string(),
        });
        Ok(())
    }
}

/// Interns short strings (event lists) as dictionary keys.
#[derive(Default, Serialize, Deserialize)]
struct Interner {
    values: Vec<String>,
    keys: HashMap<String, u16>,
}

impl Interner {
    fn key(&mut self, s: &str) -> io::Result<u16> {
        if let Some(&k) = self.keys.get(s) {
            return Ok(k);
        }
        let k = u16::try_from(self.values.len())
            .map_err(|_| io::Error::other("more than 65,536 distinct event lists"))?;
        self.values.push(s.to_owned());
        self.keys.insert(s.to_owned(), k);
        Ok(k)
    }

    fn array(&self) -> ArrayRef {
        Arc::new(StringArray::from_iter_values(&self.values))
    }
}

fn dict8(keys: Vec<u8>, values: &ArrayRef) -> ArrayRef {
    Arc::new(DictionaryArray::<UInt8Type>::new(
        UInt8Array::from(keys),
        values.clone(),
    ))
}

fn dict16(keys: Vec<u16>, values: &ArrayRef) -> ArrayRef {
    Arc::new(DictionaryArray::<UInt16Type>::new(
        UInt16Array::from(keys),
        values.clone(),
    ))
}

/// Minor units as a `decimal(18, minor_units)` column (the integers unchanged: the scale
/// says where the point is).
fn money(minor: impl IntoIterator<Item = i64>, minor_units: u8) -> ArrayRef {
    Arc::new(
        Decimal128Array::from_iter_values(minor.into_iter().map(i128::from))
            .with_precision_and_scale(18, minor_units as i8)
            .expect("a scale of at most 4 is valid at precision 18"),
    )
}

fn money_opt(minor: impl IntoIterator<Item = Option<i64>>, minor_units: u8) -> ArrayRef {
    Arc::new(
        Decimal128Array::from_iter(minor.into_iter().map(|p| p.map(i128::from)))
            .with_precision_and_scale(18, minor_units as i8)
            .expect("a scale of at most 4 is valid at precision 18"),
    )
}

/// The Arrow array of a declared column from its values (a plugin's table or daily column),
/// the values already checked against the column ([`crate::tables::Value::fits`]).
pub fn declared_array<'a>(
    c: &schema::Column,
    values: impl Iterator<Item = &'a crate::tables::Value> + Clone,
    minor_units: u8,
) -> ArrayRef {
    use crate::tables::Value;
    use schema::Kind;
    let uint = |v: &Value| match v {
        Value::U(n) => Some(*n),
        _ => None,
    };
    let text = |v: &'a Value| match v {
        Value::S(s) => Some(s.as_str()),
        _ => None,
    };
    match c.kind {
        Kind::U8 => Arc::new(UInt8Array::from_iter(
            values.map(|v| uint(v).map(|n| n as u8)),
        )),
        Kind::U16 => Arc::new(UInt16Array::from_iter(
            values.map(|v| uint(v).map(|n| n as u16)),
        )),
        Kind::U32 => Arc::new(UInt32Array::from_iter(
            values.map(|v| uint(v).map(|n| n as u32)),
        )),
        Kind::U64 => Arc::new(UInt64Array::from_iter(values.map(uint))),
        Kind::Money => money_opt(
            values.map(|v| match v {
                Value::Paise(p) => Some(*p),
                _ => None,
            }),
            minor_units,
        ),
        Kind::Float => Arc::new(Float64Array::from_iter(values.map(|v| match v {
            Value::F(x) => Some(*x),
            _ => None,
        }))),
        Kind::Bool => Arc::new(BooleanArray::from_iter(values.map(|v| match v {
            Value::B(b) => Some(*b),
            _ => None,
        }))),
        Kind::Text => Arc::new(StringArray::from_iter(values.map(text))),
        Kind::Name8 | Kind::Name16 => {
            // Keys into the names in the order first seen.
            // A null (where the column allows one) is a null key, not an empty name.
            let mut names: Vec<&str> = Vec::new();
            let mut index = HashMap::new();
            let keys: Vec<Option<usize>> = values
                .map(|v| {
                    if *v == Value::Null {
                        return None;
                    }
                    let s = text(v).unwrap_or("");
                    Some(*index.entry(s).or_insert_with(|| {
                        names.push(s);
                        names.len() - 1
                    }))
                })
                .collect();
            let names: ArrayRef = Arc::new(StringArray::from_iter_values(names));
            if c.kind == Kind::Name8 {
                Arc::new(DictionaryArray::<UInt8Type>::new(
                    keys.into_iter().map(|k| k.map(|k| k as u8)).collect(),
                    names,
                ))
            } else {
                Arc::new(DictionaryArray::<UInt16Type>::new(
                    keys.into_iter().map(|k| k.map(|k| k as u16)).collect(),
                    names,
                ))
            }
        }
        Kind::Date => Arc::new(Date32Array::from_iter(values.map(|v| match v {
            Value::D(d) => Some(date32(*d)),
            _ => None,
        }))),
        Kind::Timestamp => Arc::new(TimestampMillisecondArray::from_iter(
            values.map(|v| uint(v).map(|n| n as i64)),
        )),
    }
}

/// Days from 1970-01-01 to `date` (Arrow's `Date32`).
fn date32(date: chrono::NaiveDate) -> i32 {
    let epoch = chrono::NaiveDate::from_ymd_opt(1970, 1, 1).expect("valid date");
    (date - epoch).num_days() as i32
}

/// The transaction columns of a row group being gathered.
#[derive(Default)]
struct TxColumns {
    id: Vec<u64>,
    timestamp: Vec<i64>,
    customer: Vec<u32>,
    persona: Vec<u8>,
    total: Vec<i64>,
    lines: Vec<u16>,
    units: Vec<u32>,
    festival: Vec<bool>,
    weekend: Vec<bool>,
    events: Vec<u16>,
    trimmed: Vec<bool>,
}

/// The customer columns of a row group being gathered (dates as Date32).
#[derive(Default)]
struct CustomerColumns {
    id: Vec<u32>,
    persona: Vec<u8>,
    age: Vec<u8>,
    income: Vec<u32>,
    monthly: Vec<Option<i64>>,
    left: Vec<Option<i64>>,
    loyalty: Vec<f64>,
    visits: Vec<u32>,
    purchases: Vec<u32>,
    spent: Vec<i64>,
    last_purchase: Vec<Option<i32>>,
    joined: Vec<i32>,
    churned: Vec<Option<i32>>,
}

impl CustomerColumns {
    fn with_capacity(n: usize) -> Self {
        Self {
            id: Vec::with_capacity(n),
            persona: Vec::with_capacity(n),
            age: Vec::with_capacity(n),
            income: Vec::with_capacity(n),
            monthly: Vec::with_capacity(n),
            left: Vec::with_capacity(n),
            loyalty: Vec::with_capacity(n),
            visits: Vec::with_capacity(n),
            purchases: Vec::with_capacity(n),
            spent: Vec::with_capacity(n),
            last_purchase: Vec::with_capacity(n),
            joined: Vec::with_capacity(n),
            churned: Vec::with_capacity(n),
        }
    }
}

/// The line-item columns of a row group being gathered.
#[derive(Default)]
struct LineColumns {
    id: Vec<u64>,
    line: Vec<u16>,
    category: Vec<u16>,
    quantity: Vec<u32>,
    unit_price: Vec<i64>,
    total: Vec<i64>,
}

/// Saves and takes up a row group's gathered columns ([`Sink::save`]), each as one column
/// of numbers.
macro_rules! gathered {
    ($t:ident { $($field:ident),* }) => {
        impl $t {
            fn save(&self, state: &mut crate::checkpoint::State, prefix: &str) {
                $(state.put_column(&format!("{prefix}.{}", stringify!($field)), &self.$field);)*
            }

            fn restore(state: &crate::checkpoint::State, prefix: &str) -> crate::plugin::Result<Self> {
                Ok(Self {
                    $($field: state.get_column(&format!("{prefix}.{}", stringify!($field)))?,)*
                })
            }
        }
    };
}

gathered!(TxColumns {
    id,
    timestamp,
    customer,
    persona,
    total,
    lines,
    units,
    festival,
    weekend,
    events,
    trimmed
});
gathered!(LineColumns {
    id,
    line,
    category,
    quantity,
    unit_price,
    total
});

/// Writes every table as Parquet.
pub struct ParquetSink {
    transactions: ParquetTable,
    lines: Option<ParquetTable>,
    daily: ParquetTable,
    churn: ParquetTable,
    customers: ParquetTable,
    tx: TxColumns,
    line: LineColumns,
    personas: ArrayRef,
    categories: ArrayRef,
    events: Interner,
    /// Date32 of day 0.
    start: i32,
    /// Customer columns gathered for the current row group.
    customer: CustomerColumns,
    /// Daily rows gathered for the current row group.
    daily_rows: Vec<DailyRow>,
    /// The columns plugins added to `daily_metrics`.
    daily_extra: Vec<schema::Column>,
    /// Churn events (with their Date32) gathered for the current row group.
    churn_rows: Vec<(Option<i32>, ChurnRecord)>,
    /// Decimal places of money.
    minor_units: u8,
}

impl ParquetSink {
    /// Creates the tables in `dir`; `start` is the date of day 0; `daily` is the
    /// `daily_metrics` table: the built-in columns ([`schema::daily_metrics`]) and those
    /// plugins added; money has `minor_units` decimal places.
    pub fn create(
        dir: &OutputDir,
        line_items: bool,
        personas: &[String],
        categories: &[String],
        start: chrono::NaiveDate,
        daily: &schema::Table,
        minor_units: u8,
    ) -> Result<Self, OutputError> {
        let builtin = schema::daily_metrics().columns.len();
        let m = minor_units;
        Ok(Self {
            minor_units,
            daily_extra: daily.columns[builtin..].to_vec(),
            transactions: ParquetTable::of(dir, &schema::transactions(), m)?,
            lines: if line_items {
                Some(ParquetTable::of(dir, &schema::line_items(), m)?)
            } else {
                None
            },
            daily: ParquetTable::of(dir, daily, m)?,
            churn: ParquetTable::of(dir, &schema::churn_events(), m)?,
            customers: ParquetTable::of(dir, &schema::customers(), m)?,
            tx: TxColumns::default(),
            line: LineColumns::default(),
            personas: Arc::new(StringArray::from_iter_values(personas)),
            categories: Arc::new(StringArray::from_iter_values(categories)),
            events: Interner::default(),
            start: date32(start),
            customer: CustomerColumns::default(),
            daily_rows: Vec::new(),
            churn_rows: Vec::new(),
        })
    }

    fn flush_transactions(&mut self) -> io::Result<()> {
        let t = std::mem::take(&mut self.tx);
        let rows = t.id.len();
        let m = self.minor_units;
        let (personas, events) = (self.personas.clone(), self.events.array());
        self.transactions.write(rows, move || {
            vec![
                Arc::new(UInt64Array::from(t.id)),
                Arc::new(TimestampMillisecondArray::from(t.timestamp)),
                Arc::new(UInt32Array::from(t.customer)),
                dict8(t.persona, &personas),
                money(t.total, m),
                Arc::new(UInt16Array::from(t.lines)),
                Arc::new(UInt32Array::from(t.units)),
                Arc::new(BooleanArray::from(t.festival)),
                Arc::new(BooleanArray::from(t.weekend)),
                dict16(t.events, &events),
                Arc::new(BooleanArray::from(t.trimmed)),
            ]
        })?;
        self.tx = TxColumns::with_capacity(rows);
        Ok(())
    }

    fn flush_lines(&mut self) -> io::Result<()> {
        let Some(table) = &mut self.lines else {
            return Ok(());
        };
        let l = std::mem::take(&mut self.line);
        let rows = l.id.len();
        let m = self.minor_units;
        let categories = self.categories.clone();
        table.write(rows, move || {
            vec![
                Arc::new(UInt64Array::from(l.id)),
                Arc::new(UInt16Array::from(l.line)),
                dict16(l.category, &categories),
                Arc::new(UInt32Array::from(l.quantity)),
                money(l.unit_price, m),
                money(l.total, m),
            ]
        })?;
        self.line = LineColumns::with_capacity(rows);
        Ok(())
    }

    fn flush_customers(&mut self) -> io::Result<()> {
        let c = std::mem::take(&mut self.customer);
        let rows = c.id.len();
        let m = self.minor_units;
        let personas = self.personas.clone();
        self.customers.write(rows, move || {
            vec![
                Arc::new(UInt32Array::from(c.id)),
                dict8(c.persona, &personas),
                Arc::new(UInt8Array::from(c.age)),
                Arc::new(UInt32Array::from(c.income)),
                money_opt(c.monthly, m),
                money_opt(c.left, m),
                Arc::new(Float64Array::from(c.loyalty)),
                Arc::new(UInt32Array::from(c.visits)),
                Arc::new(UInt32Array::from(c.purchases)),
                money(c.spent, m),
                Arc::new(Date32Array::from(c.last_purchase)),
                Arc::new(Date32Array::from(c.joined)),
                Arc::new(Date32Array::from(c.churned)),
            ]
        })?;
        self.customer = CustomerColumns::with_capacity(rows);
        Ok(())
    }
}

impl ParquetSink {
    /// Gathers the line items of one segment of the hour's records: its transactions' lines,
    /// which are the segment's lines in order.
    fn gather_lines(&mut self, day: u32, s: &ShopBuffer) -> io::Result<()> {
        debug_assert_eq!(
            s.lines.len(),
            s.txs.iter().map(|t| usize::from(t.lines)).sum::<usize>()
        );
        // The transaction of the next line, and that line's index within it.
        let (mut tx, mut k) = (0, 0);
        let mut lines = &s.lines[..];
        while !lines.is_empty() {
            let c = &mut self.line;
            let (now, rest) = lines.split_at(lines.len().min(ROW_GROUP_ROWS - c.id.len()));
            c.category.extend(now.iter().map(|l| l.category));
            c.quantity.extend(now.iter().map(|l| l.quantity));
            c.unit_price.extend(now.iter().map(|l| l.unit_price));
            c.total.extend(now.iter().map(LineRecord::total));
            // The same lines' transaction ids and line numbers (a group may end mid-basket).
            let mut left = now.len();
            while left > 0 {
                let t = &s.txs[tx];
                let take = (usize::from(t.lines) - k).min(left);
                c.id.extend(std::iter::repeat_n(transaction_id(day, t.agent), take));
                c.line.extend((k + 1..=k + take).map(|n| n as u16));
                (k, left) = (k + take, left - take);
                if k == usize::from(t.lines) {
                    (tx, k) = (tx + 1, 0);
                }
            }
            if c.id.len() == ROW_GROUP_ROWS {
                self.flush_lines()?;
            }
            lines = rest;
        }
        Ok(())
    }

    fn flush_daily(&mut self) -> io::Result<()> {
        let rows = std::mem::take(&mut self.daily_rows);
        let (personas, events) = (self.personas.clone(), self.events.array());
        let extra = self.daily_extra.clone();
        let m = self.minor_units;
        self.daily.write(rows.len(), move || {
            let count = |f: &dyn Fn(&DailyRow) -> u64| -> ArrayRef {
                Arc::new(UInt64Array::from_iter_values(rows.iter().map(f)))
            };
            let cash = |f: &dyn Fn(&DailyRow) -> i64| money(rows.iter().map(f), m);
            let flag = |f: &dyn Fn(&DailyRow) -> bool| -> ArrayRef {
                Arc::new(BooleanArray::from(rows.iter().map(f).collect::<Vec<_>>()))
            };
            let mut arrays: Vec<ArrayRef> = vec![
                Arc::new(Date32Array::from_iter(rows.iter().map(|r| r.date))),
                dict8(rows.iter().map(|r| r.persona).collect(), &personas),
                count(&|r| r.active),
                count(&|r| r.totals.acquired),
                count(&|r| r.totals.churned),
                count(&|r| r.totals.visits),
                count(&|r| r.totals.empty_visits),
                count(&|r| r.totals.transactions),
                cash(&|r| r.totals.revenue_paise),
                count(&|r| r.totals.units),
                cash(&|r| r.totals.mean_basket_paise().round() as i64),
                count(&|r| r.totals.trimmed),
                count(&|r| r.totals.offers),
                cash(&|r| r.totals.offer_cost_paise),
                flag(&|r| r.festival),
                flag(&|r| r.weekend),
                dict16(rows.iter().map(|r| r.events).collect(), &events),
            ];
            for (i, c) in extra.iter().enumerate() {
                arrays.push(declared_array(c, rows.iter().map(move |r| &r.extra[i]), m));
            }
            arrays
        })
    }

    fn flush_churn(&mut self) -> io::Result<()> {
        let c = std::mem::take(&mut self.churn_rows);
        let personas = self.personas.clone();
        self.churn.write(c.len(), move || {
            vec![
                Arc::new(UInt32Array::from_iter_values(c.iter().map(|r| r.1.agent))),
                Arc::new(Date32Array::from_iter(c.iter().map(|r| r.0))),
                dict8(c.iter().map(|r| r.1.persona).collect(), &personas),
                Arc::new(Float64Array::from_iter_values(
                    c.iter().map(|r| round4(r.1.probability)),
                )),
                Arc::new(StringArray::from_iter_values(
                    c.iter().map(|r| r.1.cause.as_str()),
                )),
                Arc::new(Float64Array::from_iter_values(
                    c.iter().map(|r| round4(r.1.loyalty)),
                )),
                Arc::new(UInt32Array::from(
                    c.iter().map(|r| r.1.days_since).collect::<Vec<_>>(),
                )),
            ]
        })
    }
}

/// One row of `daily_metrics`, kept until its row group is written.
#[derive(Serialize, Deserialize)]
struct DailyRow {
    /// The plugins' columns.
    extra: Vec<crate::tables::Value>,
    date: Option<i32>,
    persona: u8,
    active: u64,
    totals: Totals,
    festival: bool,
    weekend: bool,
    events: u16,
}

impl TxColumns {
    fn with_capacity(n: usize) -> Self {
        Self {
            id: Vec::with_capacity(n),
            timestamp: Vec::with_capacity(n),
            customer: Vec::with_capacity(n),
            persona: Vec::with_capacity(n),
            total: Vec::with_capacity(n),
            lines: Vec::with_capacity(n),
            units: Vec::with_capacity(n),
            festival: Vec::with_capacity(n),
            weekend: Vec::with_capacity(n),
            events: Vec::with_capacity(n),
            trimmed: Vec::with_capacity(n),
        }
    }
}

impl LineColumns {
    fn with_capacity(n: usize) -> Self {
        Self {
            id: Vec::with_capacity(n),
            line: Vec::with_capacity(n),
            category: Vec::with_capacity(n),
            quantity: Vec::with_capacity(n),
            unit_price: Vec::with_capacity(n),
            total: Vec::with_capacity(n),
        }
    }
}

impl Sink for ParquetSink {
    fn hour(&mut self, ctx: &HourContext<'_>, records: &HourRecords) -> io::Result<()> {
        let day = ctx.clock.day();
        let hour_start =
            i64::from(self.start + day as i32) * 86_400 + i64::from(ctx.clock.hour()) * 3_600;
        let events = self.events.key(&ctx.today.events)?;
        let (festival, weekend) = (ctx.today.festival, ctx.today.weekend);
        // Rows are gathered up to the row-group size, then the group goes to its writer;
        // a group may end mid-hour, so the boundaries depend on row counts alone. Each
        // segment's rows are gathered a column at a time.
        for s in records.segments() {
            let mut txs = &s.txs[..];
            while !txs.is_empty() {
                let t = &mut self.tx;
                let (now, rest) = txs.split_at(txs.len().min(ROW_GROUP_ROWS - t.id.len()));
                let n = now.len();
                t.id.extend(now.iter().map(|r| transaction_id(day, r.agent)));
                t.timestamp.extend(
                    now.iter()
                        .map(|r| (hour_start + i64::from(r.minute) * 60) * 1000),
                );
                t.customer.extend(now.iter().map(|r| r.agent));
                t.persona.extend(now.iter().map(|r| r.persona));
                t.total.extend(now.iter().map(|r| r.total));
                t.lines.extend(now.iter().map(|r| r.lines));
                t.units.extend(now.iter().map(|r| r.units));
                t.festival.extend(std::iter::repeat_n(festival, n));
                t.weekend.extend(std::iter::repeat_n(weekend, n));
                t.events.extend(std::iter::repeat_n(events, n));
                t.trimmed.extend(now.iter().map(|r| r.trimmed));
                if t.id.len() == ROW_GROUP_ROWS {
                    self.flush_transactions()?;
                }
                txs = rest;
            }
            if self.lines.is_some() {
                self.gather_lines(day, s)?;
            }
        }
        Ok(())
    }

    fn day(&mut self, _ctx: &HourContext<'_>, closed: &ClosedDay) -> io::Result<()> {
        let date = closed.date.map(date32);
        let events = self.events.key(&closed.events)?;
        for (p, t) in closed.by_persona.iter().enumerate() {
            self.daily_rows.push(DailyRow {
                extra: closed.extra.get(p).cloned().unwrap_or_default(),
                date,
                persona: p as u8,
                active: closed.active.get(p).copied().unwrap_or(0),
                totals: *t,
                festival: closed.festival,
                weekend: closed.weekend,
                events,
            });
        }
        self.churn_rows
            .extend(closed.churn.iter().map(|c| (date, *c)));
        if self.daily_rows.len() >= ROW_GROUP_ROWS {
            self.flush_daily()?;
        }
        if self.churn_rows.len() >= ROW_GROUP_ROWS {
            self.flush_churn()?;
        }
        Ok(())
    }

    fn events_done(&mut self) -> io::Result<()> {
        self.flush_transactions()?;
        self.flush_lines()?;
        self.flush_daily()?;
        self.flush_churn()?;
        self.tx = TxColumns::default();
        self.line = LineColumns::default();
        self.transactions.close()?;
        if let Some(lines) = &mut self.lines {
            lines.close()?;
        }
        self.daily.close()?;
        self.churn.close()
    }

    fn customer(&mut self, row: &CustomerRow) -> io::Result<()> {
        let day = |d: i32| self.start + d;
        let c = &mut self.customer;
        if c.id.capacity() == 0 {
            *c = CustomerColumns::with_capacity(ROW_GROUP_ROWS);
        }
        c.id.push(row.id);
        c.persona.push(row.persona);
        c.age.push(row.age);
        c.income.push(row.income);
        c.monthly.push(row.budget.map(|b| b.0));
        c.left.push(row.budget.map(|b| b.1));
        c.loyalty.push(f64::from(row.loyalty_rounded()));
        c.visits.push(row.visits);
        c.purchases.push(row.purchases);
        c.spent.push(row.spent);
        c.last_purchase.push(row.last_purchase.map(day));
        c.joined.push(day(row.joined));
        c.churned.push(row.churned.map(day));
        if c.id.len() == ROW_GROUP_ROWS {
            self.flush_customers()?;
        }
        Ok(())
    }

    fn save(&mut self, state: &mut crate::checkpoint::State) -> crate::plugin::Result {
        state.put("transactions", &self.transactions.save()?)?;
        let lines = self.lines.as_mut().map(ParquetTable::save).transpose()?;
        state.put("lines", &lines)?;
        state.put("daily", &self.daily.save()?)?;
        state.put("churn", &self.churn.save()?)?;
        state.put("customers", &self.customers.save()?)?;
        self.tx.save(state, "tx");
        self.line.save(state, "line");
        state.put("daily_rows", &self.daily_rows)?;
        state.put("churn_rows", &self.churn_rows)?;
        state.put("events", &self.events)?;
        if !self.customer.id.is_empty() {
            return Err("a checkpoint while the customer table is being written".into());
        }
        Ok(())
    }

    fn restore(
        &mut self,
        dir: &OutputDir,
        state: &crate::checkpoint::State,
    ) -> crate::plugin::Result {
        let m = self.minor_units;
        let mut daily = schema::daily_metrics();
        daily.columns.extend_from_slice(&self.daily_extra);
        self.transactions =
            ParquetTable::resume(dir, &schema::transactions(), m, &state.get("transactions")?)?;
        let lines: Option<ParquetMark> = state.get("lines")?;
        self.lines = match (self.lines.is_some(), lines) {
            (true, Some(mark)) => Some(ParquetTable::resume(dir, &schema::line_items(), m, &mark)?),
            (false, None) => None,
            _ => return Err("the checkpoint's run wrote line items where this one does not, or the other way round".into()),
        };
        self.daily = ParquetTable::resume(dir, &daily, m, &state.get("daily")?)?;
        self.churn = ParquetTable::resume(dir, &schema::churn_events(), m, &state.get("churn")?)?;
        self.customers =
            ParquetTable::resume(dir, &schema::customers(), m, &state.get("customers")?)?;
        self.tx = TxColumns::restore(state, "tx")?;
        self.line = LineColumns::restore(state, "line")?;
        self.daily_rows = state.get("daily_rows")?;
        self.churn_rows = state.get("churn_rows")?;
        self.events = state.get("events")?;
        Ok(())
    }

    fn finish(self: Box<Self>, dir: &mut OutputDir) -> Result<(), OutputError> {
        let mut this = *self;
        type Flush = fn(&mut ParquetSink) -> io::Result<()>;
        let flushes: [(Flush, &str); 5] = [
            (Self::flush_transactions, "transactions.parquet"),
            (Self::flush_lines, "line_items.parquet"),
            (Self::flush_customers, "customers.parquet"),
            (Self::flush_daily, "daily_metrics.parquet"),
            (Self::flush_churn, "churn_events.parquet"),
        ];
        for (flush, name) in flushes {
            flush(&mut this).map_err(io_at(&dir.path(name)))?;
        }
        this.transactions.finish(dir)?;
        if let Some(lines) = this.lines {
            lines.finish(dir)?;
        }
        this.daily.finish(dir)?;
        this.churn.finish(dir)?;
        this.customers.finish(dir)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodings_name_columns_of_the_table_each_once() {
        let schema = schema::customers().arrow_schema(2);
        let good = Encodings {
            dictionary: &["age"],
            deltas: &["customer_id", "total_spent"],
        };
        assert!(writer_properties(&schema, good).is_ok());
        let misspelt = Encodings {
            deltas: &["customer_id", "spent"],
            ..Encodings::default()
        };
        let e = writer_properties(&schema, misspelt).unwrap_err();
        assert!(e.to_string().contains("`spent`"), "{e}");
        let both = Encodings {
            dictionary: &["age", "income"],
            deltas: &["income"],
        };
        let e = writer_properties(&schema, both).unwrap_err();
        assert!(e.to_string().contains("`income` both"), "{e}");
    }

    /// Row group `g` of a test table: delta-encoded ids, dictionary-encoded names, plain
    /// floats, sizes that are no round number.
    fn group(g: u64) -> (usize, Build) {
        let rows = 3_000 + (g as usize * 7_919) % 20_000;
        let build: Build = Box::new(move || {
            let ids: Vec<u64> = (0..rows as u64).map(|i| g * 1_000_000 + i * 3).collect();
            let names: ArrayRef =
                Arc::new(StringArray::from_iter_values(["a", "b", "c", "d", "e"]));
            let keys: Vec<u8> = (0..rows).map(|i| ((i as u64 * g) % 5) as u8).collect();
            vec![
                Arc::new(UInt64Array::from(ids)) as ArrayRef,
                dict8(keys, &names),
                Arc::new(Float64Array::from_iter_values(
                    (0..rows).map(|i| (i as f64).sqrt() * g as f64),
                )),
            ]
        });
        (rows, build)
    }

    fn test_schema() -> SchemaRef {
        use arrow_schema::{DataType, Field};
        Arc::new(Schema::new(vec![
            Field::new("id", DataType::UInt64, false),
            Field::new(
                "name",
                DataType::Dictionary(Box::new(DataType::UInt8), Box::new(DataType::Utf8)),
                false,
            ),
            Field::new("x", DataType::Float64, false),
        ]))
    }

    const ENCODINGS: Encodings<'static> = Encodings {
        dictionary: &[],
        deltas: &["id"],
    };

    #[test]
    fn a_table_saved_between_row_groups_or_taken_up_from_a_save_is_the_same_file() {
        let dir = tempfile::tempdir_in(env!("CARGO_MANIFEST_DIR")).unwrap();
        let write = |name: &str, saves: &[u64]| -> Vec<u8> {
            let mut out = OutputDir::create(&dir.path().join(name)).unwrap();
            let mut table =
                ParquetTable::create(&out, "t.parquet", test_schema(), ENCODINGS).unwrap();
            for g in 0..12 {
                if saves.contains(&g) {
                    table.save().unwrap();
                }
                let (rows, build) = group(g);
                table.write(rows, build).unwrap();
            }
            table.finish(&mut out).unwrap();
            out.finish("t", 1).unwrap();
            std::fs::read(dir.path().join(name).join("t.parquet")).unwrap()
        };
        let whole = write("whole", &[]);
        assert_eq!(
            write("saved", &[0, 1, 5, 6, 11]),
            whole,
            "saves change no byte"
        );

        // Taken up from a save after row group 7, with groups written after it thrown away.
        let mut out = OutputDir::create(&dir.path().join("resumed")).unwrap();
        let mut table = ParquetTable::create(&out, "t.parquet", test_schema(), ENCODINGS).unwrap();
        let mut mark = None;
        for g in 0..10 {
            if g == 7 {
                mark = Some(table.save().unwrap());
            }
            let (rows, build) = group(g);
            table.write(rows, build).unwrap();
        }
        table.close().unwrap(); // as a killed run leaves it, footer and all
        let mark = mark.unwrap();
        let file = out.resume_file("t.parquet", &mark.mark).unwrap();
        let mut table = ParquetTable::start(
            &out,
            "t.parquet",
            test_schema(),
            ENCODINGS,
            file,
            Some(&mark.footer),
            mark.rows,
        )
        .unwrap();
        for g in 7..12 {
            let (rows, build) = group(g);
            table.write(rows, build).unwrap();
        }
        table.finish(&mut out).unwrap();
        out.finish("t", 1).unwrap();
        let resumed = std::fs::read(dir.path().join("resumed").join("t.parquet")).unwrap();
        assert!(resumed == whole, "taken up at row group 7");
    }

    #[test]
    fn row_groups_encoded_at_once_make_the_same_file_as_one_at_a_time() {
        let dir = tempfile::tempdir_in(env!("CARGO_MANIFEST_DIR")).unwrap();
        let write = |name: &str, threads: usize, saves: &[u64]| -> Vec<u8> {
            let mut out = OutputDir::create(&dir.path().join(name)).unwrap();
            out.set_threads(threads);
            let mut table =
                ParquetTable::create(&out, "t.parquet", test_schema(), ENCODINGS).unwrap();
            for g in 0..14 {
                if saves.contains(&g) {
                    table.save().unwrap();
                }
                let (rows, build) = group(g);
                table.write(rows, build).unwrap();
            }
            table.finish(&mut out).unwrap();
            let timings = out.timings().report(std::time::Duration::ZERO, threads);
            let stages = &timings.parts["t.parquet"];
            assert_eq!(stages["build"].count, 14, "{stages:?}");
            assert_eq!(stages["write"].count, 14, "{stages:?}");
            out.finish("t", 1).unwrap();
            std::fs::read(dir.path().join(name).join("t.parquet")).unwrap()
        };
        assert_eq!(groups_in_flight(1), 1);
        assert_eq!(groups_in_flight(16), 4);
        let one = write("one", 1, &[]);
        assert!(write("four", 16, &[]) == one, "four groups in flight");
        assert!(write("saved", 16, &[3, 4, 9]) == one, "saves between them");
    }

    #[test]
    fn a_row_group_that_panics_fails_its_table_with_an_error() {
        let dir = tempfile::tempdir_in(env!("CARGO_MANIFEST_DIR")).unwrap();
        let out = OutputDir::create(&dir.path().join("out")).unwrap();
        let mut table = ParquetTable::create(&out, "t.parquet", test_schema(), ENCODINGS).unwrap();
        let (rows, build) = group(0);
        table.write(rows, build).unwrap();
        table
            .write(10, || panic!("a plugin's column builder failed"))
            .unwrap();
        // The writer has failed by now or fails at the close; either way it says why.
        let e = (0..4)
            .find_map(|g| {
                let (rows, build) = group(g);
                table.write(rows, build).err()
            })
            .or_else(|| table.close().err())
            .expect("the table fails");
        assert!(e.to_string().contains("panicked"), "{e}");
    }
}
