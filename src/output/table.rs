//! A CSV table streamed to disk, hashed and counted as it is written.
//!
//! Formatting is done by hand into one reusable buffer (integers with `itoa`, money as exact
//! paise): the CSV writer is on the hot path of every run, and text fields are few and
//! escaped once.

use std::io::{self, Write};
use std::sync::Mutex;
use std::sync::mpsc::{Receiver, channel};

use super::file::Hashing;
use super::worker::Worker;
use super::{FileEntry, OutputDir, OutputError, io_at};

/// Size of each table's write buffer.
const BUFFER: usize = 1 << 20;

/// Full blocks queued for a table's writer thread before the simulation waits for it.
const QUEUED_BLOCKS: usize = 4;

/// A file written, hashed and counted by its own thread: blocks of bytes are queued to it in
/// order and come back empty for reuse, so the simulation never waits on the disk or the hash
/// unless the queue is full.
struct Background {
    writer: Worker<Vec<u8>, Hashing>,
    /// Emptied blocks coming back (in a mutex only so that a table can live in a resource).
    spare: Mutex<Receiver<Vec<u8>>>,
}

impl Background {
    /// Starts the writer thread of `out`.
    fn start(out: Hashing, name: &str, timings: &crate::timings::Timings) -> io::Result<Self> {
        let (give_back, spare) = channel();
        let (part, recorder) = (name.to_owned(), timings.clone());
        let writer = Worker::start(
            name,
            format!("csv:{name}"),
            QUEUED_BLOCKS,
            timings.clone(),
            move |blocks: Receiver<Vec<u8>>| {
                let mut out = out;
                for mut block in blocks {
                    recorder.time(&part, "write", || out.write_all(&block))?;
                    block.clear();
                    let _ = give_back.send(block); // the table may be finishing
                }
                Ok(out)
            },
        )?;
        Ok(Self {
            writer,
            spare: Mutex::new(spare),
        })
    }

    /// Queues `block` to be written and returns an empty buffer to fill next.
    fn write(&mut self, block: Vec<u8>) -> io::Result<Vec<u8>> {
        self.writer.send(block)?;
        let spare = self.spare.get_mut().unwrap_or_else(|e| e.into_inner());
        Ok(spare
            .try_recv()
            .unwrap_or_else(|_| Vec::with_capacity(BUFFER + BUFFER / 4)))
    }

    /// Waits until every queued block is written; returns the file.
    fn join(&mut self) -> io::Result<Hashing> {
        self.writer.join()
    }
}

/// Where a table stood at a checkpoint ([`Table::save`]).
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct TableMark {
    name: String,
    rows: u64,
    mark: super::file::Mark,
}

/// One CSV table being written. Rows are appended to a byte buffer; each full buffer goes to
/// the table's writer thread. Text fields are escaped by [`escape`] before they get here.
pub struct Table {
    name: String,
    out: Background,
    buf: Vec<u8>,
    rows: u64,
    /// Where its writer records its time.
    timings: crate::timings::Timings,
}

impl Table {
    /// Creates the CSV file of a declared table: `{stem}.csv`, its header the declared
    /// column names.
    pub fn of(dir: &OutputDir, table: &super::schema::Table) -> Result<Self, OutputError> {
        Self::create(dir, &format!("{}.csv", table.stem), &table.names())
    }

    /// Creates `name` in the output folder with `header` as its first row.
    pub fn create(dir: &OutputDir, name: &str, header: &[&str]) -> Result<Self, OutputError> {
        let path = dir.path(name);
        let file = dir.create_file(name).map_err(io_at(&path))?;
        let timings = dir.timings();
        let mut t = Self {
            name: name.to_owned(),
            out: Background::start(file, name, &timings).map_err(io_at(&path))?,
            buf: Vec::with_capacity(BUFFER + BUFFER / 4),
            rows: 0,
            timings,
        };
        let header: Vec<Vec<u8>> = header.iter().map(|h| escape(h)).collect();
        t.write_fields(header.iter().map(Vec::as_slice));
        t.rows = 0;
        Ok(t)
    }

    /// Writes one row of already-formatted, already-escaped fields.
    #[inline]
    pub fn row<I, T>(&mut self, fields: I) -> io::Result<()>
    where
        I: IntoIterator<Item = T>,
        T: AsRef<[u8]>,
    {
        self.write_fields(fields);
        if self.buf.len() >= BUFFER {
            self.flush_buf()?;
        }
        Ok(())
    }

    /// Writes one row field by field, straight into the table's buffer.
    #[inline]
    pub fn row_with(&mut self, fill: impl FnOnce(&mut Row<'_>)) -> io::Result<()> {
        Self::encode_row(&mut self.buf, fill);
        self.rows += 1;
        if self.buf.len() >= BUFFER {
            self.flush_buf()?;
        }
        Ok(())
    }

    /// Encodes one row into any buffer (for encoding in parallel, then [`Table::append_block`]).
    #[inline]
    pub fn encode_row(buf: &mut Vec<u8>, fill: impl FnOnce(&mut Row<'_>)) {
        let mut row = Row { buf, first: true };
        fill(&mut row);
        buf.push(b'\n');
    }

    /// Appends `rows` complete rows encoded with [`Table::encode_row`]. A large block goes to
    /// the writer thread as it is, and `bytes` is handed back as an empty buffer to fill next:
    /// the rows are not copied on the calling thread (the one between the simulation's hours).
    /// A small block is copied into the table's buffer, so writes stay large.
    pub fn append_block(&mut self, bytes: &mut Vec<u8>, rows: u64) -> io::Result<()> {
        self.rows += rows;
        if bytes.len() < BUFFER / 8 {
            self.buf.extend_from_slice(bytes);
            if self.buf.len() >= BUFFER {
                self.flush_buf()?;
            }
            return Ok(());
        }
        self.flush_buf()?;
        *bytes = self.out.write(std::mem::take(bytes))?;
        Ok(())
    }

    #[inline]
    fn write_fields<I, T>(&mut self, fields: I)
    where
        I: IntoIterator<Item = T>,
        T: AsRef<[u8]>,
    {
        let mut first = true;
        for f in fields {
            if !first {
                self.buf.push(b',');
            }
            first = false;
            self.buf.extend_from_slice(f.as_ref());
        }
        self.buf.push(b'\n');
        self.rows += 1;
    }

    fn flush_buf(&mut self) -> io::Result<()> {
        if !self.buf.is_empty() {
            let block = std::mem::take(&mut self.buf);
            self.buf = self.out.write(block)?;
        }
        Ok(())
    }

    /// Puts every row written so far on disk and returns where the table stands, for a
    /// checkpoint; rows go on after it as before.
    pub fn save(&mut self) -> io::Result<TableMark> {
        self.flush_buf()?;
        let mut out = self.out.join()?;
        let mark = out.persist()?;
        self.out = Background::start(out, &self.name, &self.timings)?;
        Ok(TableMark {
            name: self.name.clone(),
            rows: self.rows,
            mark,
        })
    }

    /// Takes up a table of the folder being resumed where `mark` left it.
    pub fn resume(dir: &OutputDir, mark: &TableMark) -> Result<Self, OutputError> {
        let path = dir.path(&mark.name);
        let file = dir
            .resume_file(&mark.name, &mark.mark)
            .map_err(io_at(&path))?;
        let timings = dir.timings();
        Ok(Self {
            name: mark.name.clone(),
            out: Background::start(file, &mark.name, &timings).map_err(io_at(&path))?,
            buf: Vec::with_capacity(BUFFER + BUFFER / 4),
            rows: mark.rows,
            timings,
        })
    }

    /// Rows written so far.
    pub fn rows(&self) -> u64 {
        self.rows
    }

    /// Flushes and closes the table without listing it in the manifest (a work file).
    pub fn finish_unlisted(mut self) -> io::Result<()> {
        self.flush_buf()?;
        self.out.join()?.complete()
    }

    /// Flushes, closes and records the table in the folder's manifest.
    pub fn finish(mut self, dir: &mut OutputDir) -> Result<(), OutputError> {
        let path = dir.path(&self.name);
        self.flush_buf().map_err(io_at(&path))?;
        let mut out = self.out.join().map_err(io_at(&path))?;
        out.sync().map_err(io_at(&path))?;
        dir.add(FileEntry {
            name: self.name,
            rows: self.rows,
            bytes: out.bytes(),
            blake3: out.hash().to_hex().to_string(),
        });
        Ok(())
    }
}

/// Escapes a text field for CSV (RFC 4180): quoted when it holds a comma, quote or line
/// break, with quotes doubled.
pub fn escape(s: &str) -> Vec<u8> {
    let mut v = Vec::with_capacity(s.len() + 2);
    escape_into(&mut v, s);
    v
}

/// [`escape`] into a reused buffer, which is cleared first.
pub fn escape_into(out: &mut Vec<u8>, s: &str) {
    out.clear();
    if !s.contains([',', '"', '\n', '\r']) {
        out.extend_from_slice(s.as_bytes());
        return;
    }
    out.push(b'"');
    for b in s.bytes() {
        if b == b'"' {
            out.push(b'"');
        }
        out.push(b);
    }
    out.push(b'"');
}

/// Appends a declared value (a plugin's table or daily column) as its CSV field, money with
/// `minor_units` places.
pub fn value(r: &mut Row<'_>, v: &crate::tables::Value, minor_units: u8) {
    use crate::tables::Value;
    match v {
        Value::U(n) => r.int(*n),
        Value::Paise(p) => r.money(*p, minor_units),
        Value::F(x) => r.float(*x),
        Value::B(b) => r.flag(*b),
        Value::S(s) => r.text(&escape(s)),
        Value::D(d) => r.text(d.format("%Y-%m-%d").to_string().as_bytes()),
        Value::Null => r.empty(),
    };
}

/// One row being written: each call appends a field, commas are added between them.
pub struct Row<'a> {
    buf: &'a mut Vec<u8>,
    first: bool,
}

impl Row<'_> {
    #[inline]
    fn sep(&mut self) {
        if !self.first {
            self.buf.push(b',');
        }
        self.first = false;
    }

    /// An integer field.
    #[inline]
    pub fn int(&mut self, n: impl itoa::Integer) -> &mut Self {
        self.sep();
        push_int(self.buf, n);
        self
    }

    /// A money field: minor units as an exact decimal with `minor_units` places.
    #[inline]
    pub fn money(&mut self, minor: i64, minor_units: u8) -> &mut Self {
        self.sep();
        crate::money::push_plain(self.buf, minor, minor_units);
        self
    }

    /// A float field, shortest round-trip form.
    #[inline]
    pub fn float(&mut self, x: f64) -> &mut Self {
        self.sep();
        push_float(self.buf, x);
        self
    }

    /// A 32-bit float field, shortest form that reads back to the same `f32`.
    #[inline]
    pub fn float32(&mut self, x: f32) -> &mut Self {
        self.sep();
        self.buf
            .extend_from_slice(ryu::Buffer::new().format(x).as_bytes());
        self
    }

    /// A text field, already escaped with [`escape`] (or known not to need it).
    #[inline]
    pub fn text(&mut self, escaped: &[u8]) -> &mut Self {
        self.sep();
        self.buf.extend_from_slice(escaped);
        self
    }

    /// A boolean field, `true` or `false`.
    #[inline]
    pub fn flag(&mut self, b: bool) -> &mut Self {
        self.text(if b { b"true" } else { b"false" })
    }

    /// Appends bytes to the current field (no separator).
    #[inline]
    pub fn buf_extend(&mut self, bytes: &[u8]) -> &mut Self {
        self.buf.extend_from_slice(bytes);
        self
    }

    /// An empty field.
    #[inline]
    pub fn empty(&mut self) -> &mut Self {
        self.sep();
        self
    }
}

/// Appends an integer.
#[inline]
pub fn push_int(out: &mut Vec<u8>, n: impl itoa::Integer) {
    out.extend_from_slice(itoa::Buffer::new().format(n).as_bytes());
}

/// Appends a float in its shortest round-trip form.
#[inline]
pub fn push_float(out: &mut Vec<u8>, x: f64) {
    out.extend_from_slice(ryu::Buffer::new().format(x).as_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs::File;

    #[test]
    fn the_writer_thread_writes_blocks_in_order_and_hashes_them() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.csv");
        let mut out = Background::start(
            Hashing::new(File::create(&path).unwrap()),
            "t",
            &Default::default(),
        )
        .unwrap();
        let mut expected = Vec::new();
        let mut block = Vec::new();
        for i in 0..50u32 {
            block.extend_from_slice(format!("{i},{}\n", "x".repeat(i as usize * 1000)).as_bytes());
            expected.extend_from_slice(&block);
            block = out.write(block).unwrap();
            assert!(block.is_empty(), "the next block to fill starts empty");
        }
        let written = out.join().unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), expected);
        assert_eq!(written.bytes(), expected.len() as u64);
        assert_eq!(written.hash(), blake3::hash(&expected));
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn a_write_error_on_the_writer_thread_reaches_the_table() {
        // /dev/full fails every write with ENOSPC.
        let full = std::fs::OpenOptions::new()
            .write(true)
            .open("/dev/full")
            .unwrap();
        let mut out = Background::start(Hashing::new(full), "full", &Default::default()).unwrap();
        let mut error = None;
        for _ in 0..2 * QUEUED_BLOCKS + 2 {
            match out.write(vec![b'x'; 4096]) {
                Ok(_) => {}
                Err(e) => {
                    error = Some(e);
                    break;
                }
            }
        }
        let error = error
            .or_else(|| out.join().err())
            .expect("the error is reported");
        assert_eq!(error.raw_os_error(), Some(libc::ENOSPC), "{error}");
    }

    #[test]
    fn escaping_matches_the_csv_crate() {
        for s in ["plain", "a,b", "say \"hi\"", "two\nlines", ""] {
            let mut w = csv::Writer::from_writer(Vec::new());
            w.write_record([s, "x"]).unwrap();
            let expected = w.into_inner().unwrap();
            let mut ours = escape(s);
            ours.extend_from_slice(b",x\n");
            assert_eq!(
                String::from_utf8(ours).unwrap(),
                String::from_utf8(expected).unwrap()
            );
        }
    }
}
