//! A CSV table streamed to disk, hashed and counted as it is written.

use std::fs::File;
use std::io::{self, Write};
use std::path::Path;

use super::{FileEntry, OutputDir, OutputError, io_at};

/// Size of each table's write buffer.
const BUFFER: usize = 1 << 20;

/// Passes bytes through to a file while hashing and counting them.
struct Hashing {
    file: File,
    hasher: blake3::Hasher,
    bytes: u64,
}

impl Write for Hashing {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.file.write(buf)?;
        self.hasher.update(&buf[..n]);
        self.bytes += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.file.flush()
    }
}

/// One CSV table being written.
pub struct Table {
    name: String,
    writer: csv::Writer<Hashing>,
    rows: u64,
}

impl Table {
    /// Creates `name` in the output folder and writes its header.
    pub fn create(dir: &OutputDir, name: &str, header: &[&str]) -> Result<Self, OutputError> {
        let path = dir.path(name);
        let file = File::create(&path).map_err(io_at(&path))?;
        let mut writer = csv::WriterBuilder::new()
            .buffer_capacity(BUFFER)
            .from_writer(Hashing {
                file,
                hasher: blake3::Hasher::new(),
                bytes: 0,
            });
        writer
            .write_record(header)
            .map_err(|e| csv_err(&path, e))?;
        Ok(Self {
            name: name.to_owned(),
            writer,
            rows: 0,
        })
    }

    /// Writes one row of already-formatted fields.
    #[inline]
    pub fn row<I, T>(&mut self, fields: I) -> io::Result<()>
    where
        I: IntoIterator<Item = T>,
        T: AsRef<[u8]>,
    {
        self.rows += 1;
        self.writer.write_record(fields).map_err(io::Error::other)
    }

    /// Rows written so far.
    pub fn rows(&self) -> u64 {
        self.rows
    }

    /// Flushes, closes and records the table in the folder's manifest.
    pub fn finish(self, dir: &mut OutputDir) -> Result<(), OutputError> {
        let path = dir.path(&self.name);
        let hashing = self
            .writer
            .into_inner()
            .map_err(|e| io_at(&path)(io::Error::other(e.to_string())))?;
        hashing.file.sync_all().map_err(io_at(&path))?;
        dir.add(FileEntry {
            name: self.name,
            rows: self.rows,
            bytes: hashing.bytes,
            blake3: hashing.hasher.finalize().to_hex().to_string(),
        });
        Ok(())
    }
}

fn csv_err(path: &Path, e: csv::Error) -> OutputError {
    io_at(path)(io::Error::other(e))
}

/// Reusable formatting buffers for one row's numeric fields.
#[derive(Default)]
pub struct Fields {
    bufs: Vec<Vec<u8>>,
}

impl Fields {
    /// Clears and returns `n` field buffers.
    #[inline]
    pub fn take(&mut self, n: usize) -> &mut [Vec<u8>] {
        if self.bufs.len() < n {
            self.bufs.resize_with(n, Vec::new);
        }
        for b in &mut self.bufs[..n] {
            b.clear();
        }
        &mut self.bufs[..n]
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
