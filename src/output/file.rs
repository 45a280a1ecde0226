//! An output file streamed to disk, hashed and counted as it is written, without filling
//! the page cache.
//!
//! A 10M-customer run writes 2.5 GB. Through the page cache every page of it is fresh memory
//! for the kernel to find, fill and write back: on the benchmark machine, a virtual machine
//! whose idle memory the host takes back, new page-cache pages were written at 149 MB/s
//! against 1.9 GB/s for pages in use a moment before, and the kernel's share of the parity
//! run's time was a third. So on Linux the file is opened with `O_DIRECT`: bytes gather in
//! one aligned block that goes to disk in whole blocks, the last one padded and the file
//! cut back to its length. Where the file system refuses `O_DIRECT` (at the open or at the
//! first write), the file is written through the page cache instead, starting the writeback
//! of every few megabytes and dropping the few before from the cache once on disk, so its
//! pages are recycled.

use std::fs::File;
use std::io::{self, Write};
use std::path::Path;

/// Bytes gathered before each direct write: large enough to keep the disk streaming.
const BLOCK: usize = 1 << 20;

/// Alignment of a direct write's memory, offset and length (the largest logical block size
/// of common disks).
const ALIGN: usize = 4096;

/// Bytes written through the page cache between requests to start writing them back.
const WRITEBACK_EVERY: u64 = 8 << 20;

/// Passes bytes through to a file while hashing and counting them; see the module.
///
/// Bytes reach the file in whole blocks as they come, and the last part only at
/// [`Hashing::complete`] (or [`Hashing::sync`]): [`Write::flush`] writes nothing out early.
pub(crate) struct Hashing {
    file: File,
    hasher: blake3::Hasher,
    bytes: u64,
    mode: Mode,
    /// Writing to the null device: nothing to cut to length or put on disk.
    null: bool,
}

/// Where a file stood when it was put on disk for a checkpoint ([`Hashing::persist`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub(crate) struct Mark {
    /// Its length.
    pub(crate) bytes: u64,
    /// The BLAKE3 hash of those bytes.
    pub(crate) blake3: [u8; 32],
}

/// How bytes reach the disk.
enum Mode {
    /// Straight to disk (`O_DIRECT`), a block at a time (Linux only).
    #[cfg_attr(not(target_os = "linux"), allow(dead_code))]
    Direct(Staging),
    /// Through the page cache.
    Cached {
        /// Bytes before this offset have had their writeback started.
        written_back: u64,
        /// Bytes before this offset are on disk and out of the page cache.
        dropped: u64,
    },
}

/// The aligned block that bytes gather in before a direct write.
struct Staging {
    /// Room for a block at an aligned address, starting at `at`.
    buf: Vec<u8>,
    at: usize,
    /// Bytes gathered.
    len: usize,
}

#[cfg_attr(not(target_os = "linux"), allow(dead_code))]
impl Staging {
    fn new() -> Self {
        let buf = vec![0u8; BLOCK + ALIGN];
        let at = buf.as_ptr().align_offset(ALIGN);
        Self { buf, at, len: 0 }
    }

    /// A block one byte off the alignment, which the kernel refuses for a direct write.
    #[cfg(test)]
    fn misaligned() -> Self {
        let mut staging = Self::new();
        staging.buf.push(0);
        staging.at += 1;
        staging
    }

    fn block(&mut self) -> &mut [u8] {
        &mut self.buf[self.at..self.at + BLOCK]
    }
}

impl Hashing {
    /// Creates (or truncates) the file at `path`, straight to disk where the file system
    /// allows it.
    pub(crate) fn create(path: &Path) -> io::Result<Self> {
        #[cfg(target_os = "linux")]
        {
            use std::os::unix::fs::OpenOptionsExt;
            if let Ok(file) = File::options()
                .write(true)
                .create(true)
                .truncate(true)
                .custom_flags(libc::O_DIRECT)
                .open(path)
            {
                let mut out = Self::new(file);
                out.mode = Mode::Direct(Staging::new());
                return Ok(out);
            }
        }
        Ok(Self::new(File::create(path)?))
    }

    /// Wraps a new, empty file opened without `O_DIRECT`: written through the page cache.
    pub(crate) fn new(file: File) -> Self {
        Self {
            file,
            hasher: blake3::Hasher::new(),
            bytes: 0,
            mode: Mode::Cached {
                written_back: 0,
                dropped: 0,
            },
            null: false,
        }
    }

    /// Opens the null device: what a resumed run's tables write until they take up their
    /// files from the checkpoint ([`super::OutputDir::create_file`]), so a table built and
    /// then replaced writes nothing into the file it is about to take up; and what a
    /// sharded run's other ranks write the tables only rank 0 writes into.
    pub(crate) fn null() -> io::Result<Self> {
        let device = if cfg!(windows) { "NUL" } else { "/dev/null" };
        Ok(Self {
            null: true,
            ..Self::new(File::options().write(true).open(device)?)
        })
    }

    /// [`Hashing::null`] as if `mark`'s bytes had been written to it: a table a sharded
    /// run's other rank wrote nowhere, going on from its checkpoint (its writer counts
    /// from there).
    pub(crate) fn null_at(mark: &Mark) -> io::Result<Self> {
        let mut null = Self::null()?;
        null.bytes = mark.bytes;
        null.mode = Mode::Cached {
            written_back: mark.bytes,
            dropped: mark.bytes,
        };
        Ok(null)
    }

    /// Puts every byte written so far on disk, the last part too, and returns where the file
    /// stands: its length and the hash of those bytes. Writing goes on after it as if it
    /// had not happened (a direct file's last part stays gathered, and is written again, whole,
    /// when its block fills).
    pub(crate) fn persist(&mut self) -> io::Result<Mark> {
        if let Mode::Direct(staging) = &mut self.mode {
            let len = staging.len;
            if len > 0 {
                let padded = len.next_multiple_of(ALIGN);
                staging.block()[len..padded].fill(0);
                let block = &staging.buf[staging.at..staging.at + padded];
                // Blocks before it were whole, so the gathered part starts at an aligned
                // offset; a positioned write leaves the file's offset where the next whole
                // block goes.
                let offset = self.bytes - len as u64;
                match write_direct_at(&self.file, block, offset) {
                    Ok(()) => {}
                    Err(e) if e.kind() == io::ErrorKind::InvalidInput => {
                        clear_direct(&self.file)?;
                        let rest = staging.buf[staging.at..staging.at + len].to_vec();
                        self.file.write_all(&rest)?;
                        self.cached();
                    }
                    Err(e) => return Err(e),
                }
            }
        }
        if !self.null {
            self.file.set_len(self.bytes)?;
            self.file.sync_all()?;
        }
        Ok(Mark {
            bytes: self.bytes,
            blake3: *self.hasher.finalize().as_bytes(),
        })
    }

    /// Takes up the file at `path` where `mark` left it: checks that its first
    /// `mark.bytes` bytes are the ones hashed then, cuts off whatever was written after, and
    /// goes on writing from there (straight to disk where the file system allows it).
    pub(crate) fn resume(path: &Path, mark: &Mark) -> io::Result<Self> {
        use std::io::{Read, Seek, SeekFrom};
        let mut hasher = blake3::Hasher::new();
        let mut plain = File::open(path)?;
        let len = plain.metadata()?.len();
        if len < mark.bytes {
            return Err(io::Error::other(format!(
                "it holds {len} bytes, fewer than the {} it held at the checkpoint",
                mark.bytes
            )));
        }
        let mut buf = vec![0u8; BLOCK];
        let mut left = mark.bytes;
        while left > 0 {
            let n = (left as usize).min(BLOCK);
            plain.read_exact(&mut buf[..n])?;
            hasher.update(&buf[..n]);
            left -= n as u64;
        }
        if *hasher.finalize().as_bytes() != mark.blake3 {
            return Err(io::Error::other(
                "its contents changed since the checkpoint was taken",
            ));
        }
        let tail = (mark.bytes % BLOCK as u64) as usize;
        let block_start = mark.bytes - tail as u64;
        let mut out = None;
        #[cfg(target_os = "linux")]
        {
            use std::os::unix::fs::OpenOptionsExt;
            if let Ok(file) = File::options()
                .write(true)
                .custom_flags(libc::O_DIRECT)
                .open(path)
            {
                let mut staging = Staging::new();
                plain.seek(SeekFrom::Start(block_start))?;
                plain.read_exact(&mut staging.block()[..tail])?;
                staging.len = tail;
                let mut h = Self::new(file);
                h.mode = Mode::Direct(staging);
                h.file.seek(SeekFrom::Start(block_start))?;
                out = Some(h);
            }
        }
        let mut out = match out {
            Some(out) => out,
            None => {
                let mut h = Self::new(File::options().write(true).open(path)?);
                h.file.seek(SeekFrom::Start(mark.bytes))?;
                h
            }
        };
        out.file.set_len(mark.bytes)?;
        out.hasher = hasher;
        out.bytes = mark.bytes;
        if let Mode::Cached {
            written_back,
            dropped,
        } = &mut out.mode
        {
            (*written_back, *dropped) = (mark.bytes, mark.bytes);
        }
        Ok(out)
    }

    /// Goes on through the page cache (the file system refused a direct write, and
    /// [`write_direct`] took the flag off the file).
    fn cached(&mut self) {
        self.mode = Mode::Cached {
            written_back: self.bytes,
            dropped: self.bytes,
        };
    }

    /// Whether bytes go straight to disk.
    #[cfg(all(test, target_os = "linux"))]
    pub(crate) fn is_direct(&self) -> bool {
        matches!(self.mode, Mode::Direct(_))
    }

    /// Writes the bytes still gathered (the last part of the file) out.
    pub(crate) fn complete(&mut self) -> io::Result<()> {
        let Mode::Direct(staging) = &mut self.mode else {
            return Ok(());
        };
        let len = staging.len;
        if len == 0 {
            return Ok(());
        }
        // A whole number of aligned blocks, zero-padded; the padding is cut off after.
        let padded = len.next_multiple_of(ALIGN);
        staging.block()[len..padded].fill(0);
        staging.len = 0;
        let block = &staging.buf[staging.at..staging.at + padded];
        if !write_direct(&mut self.file, block)? {
            self.cached();
        }
        if self.null {
            return Ok(());
        }
        self.file.set_len(self.bytes)
    }

    /// Writes the last part out and flushes the file to disk.
    pub(crate) fn sync(&mut self) -> io::Result<()> {
        self.complete()?;
        if self.null {
            return Ok(());
        }
        self.file.sync_all()
    }

    /// Bytes written.
    pub(crate) fn bytes(&self) -> u64 {
        self.bytes
    }

    /// Hash of the bytes written.
    pub(crate) fn hash(&self) -> blake3::Hash {
        self.hasher.finalize()
    }

    /// Starts writing back what was written since the last call, then waits for the range
    /// started last time and drops it from the page cache (Linux; elsewhere the final
    /// `fsync` does it all). The wait is for writes started a few megabytes ago, so it is
    /// short unless the disk is slower than the run.
    fn start_writeback(&mut self) {
        let Mode::Cached {
            written_back,
            dropped,
        } = &mut self.mode
        else {
            return;
        };
        #[cfg(target_os = "linux")]
        {
            use std::os::fd::AsRawFd;
            let fd = self.file.as_raw_fd();
            let (from, len) = (*written_back, self.bytes - *written_back);
            let (old, old_len) = (*dropped, *written_back - *dropped);
            // SAFETY: plain system calls on a file descriptor this struct owns; they only
            // ask the kernel to write the ranges out, wait for it and forget clean pages,
            // and touch no memory of ours. A failure (a file system without them) is
            // harmless: `sync` still flushes everything, and pages kept cost only memory.
            #[allow(unsafe_code)]
            unsafe {
                libc::sync_file_range(
                    fd,
                    from as libc::off64_t,
                    len as libc::off64_t,
                    libc::SYNC_FILE_RANGE_WRITE,
                );
                if old_len > 0
                    && libc::sync_file_range(
                        fd,
                        old as libc::off64_t,
                        old_len as libc::off64_t,
                        libc::SYNC_FILE_RANGE_WAIT_BEFORE
                            | libc::SYNC_FILE_RANGE_WRITE
                            | libc::SYNC_FILE_RANGE_WAIT_AFTER,
                    ) == 0
                {
                    libc::posix_fadvise(
                        fd,
                        old as libc::off_t,
                        old_len as libc::off_t,
                        libc::POSIX_FADV_DONTNEED,
                    );
                }
            }
            *dropped = *written_back;
        }
        #[cfg(not(target_os = "linux"))]
        let _ = dropped;
        *written_back = self.bytes;
    }
}

/// Writes an aligned `block` whole to a file opened with `O_DIRECT`. If the file system
/// refuses direct writes (`EINVAL`), the flag is taken off the file and the rest of the block
/// goes through the page cache; returns whether the file is still direct.
fn write_direct(file: &mut File, block: &[u8]) -> io::Result<bool> {
    let mut done = 0;
    while done < block.len() {
        match file.write(&block[done..]) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(n) => done += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            // EINVAL: the file system takes no direct writes.
            Err(e) if e.kind() == io::ErrorKind::InvalidInput => {
                clear_direct(file)?;
                file.write_all(&block[done..])?;
                return Ok(false);
            }
            Err(e) => return Err(e),
        }
    }
    Ok(true)
}

/// Writes an aligned `block` whole at `offset` of a file opened with `O_DIRECT`, leaving
/// the file's own offset where it was; `InvalidInput` where the file system refuses it.
fn write_direct_at(file: &File, block: &[u8], offset: u64) -> io::Result<()> {
    #[cfg(unix)]
    {
        std::os::unix::fs::FileExt::write_all_at(file, block, offset)
    }
    #[cfg(not(unix))]
    {
        let _ = (file, block, offset);
        Err(io::ErrorKind::InvalidInput.into())
    }
}

/// Takes `O_DIRECT` off an open file.
fn clear_direct(file: &File) -> io::Result<()> {
    #[cfg(target_os = "linux")]
    {
        use std::os::fd::AsRawFd;
        let fd = file.as_raw_fd();
        // SAFETY: `fcntl` reads and sets the status flags of a descriptor this process owns;
        // no memory is passed.
        #[allow(unsafe_code)]
        let ok = unsafe {
            let flags = libc::fcntl(fd, libc::F_GETFL);
            flags >= 0 && libc::fcntl(fd, libc::F_SETFL, flags & !libc::O_DIRECT) == 0
        };
        if !ok {
            return Err(io::Error::last_os_error());
        }
    }
    #[cfg(not(target_os = "linux"))]
    let _ = file;
    Ok(())
}

impl Write for Hashing {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = match &mut self.mode {
            Mode::Direct(staging) => {
                // Up to the block's room, into the block; a full block goes to disk.
                let n = buf.len().min(BLOCK - staging.len);
                let from = staging.len;
                staging.block()[from..from + n].copy_from_slice(&buf[..n]);
                staging.len += n;
                if staging.len == BLOCK {
                    staging.len = 0;
                    let block = &staging.buf[staging.at..staging.at + BLOCK];
                    if !write_direct(&mut self.file, block)? {
                        self.cached();
                    }
                }
                n
            }
            Mode::Cached { .. } => self.file.write(buf)?,
        };
        self.hasher.update(&buf[..n]);
        self.bytes += n as u64;
        if let Mode::Cached { written_back, .. } = self.mode
            && self.bytes - written_back >= WRITEBACK_EVERY
        {
            self.start_writeback();
        }
        Ok(n)
    }

    /// Writes nothing out early: see [`Hashing`].
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Which pages of the file's first `len` bytes are in the page cache.
    #[cfg(target_os = "linux")]
    fn cached_pages(path: &Path, len: usize) -> Vec<bool> {
        use std::os::fd::AsRawFd;
        let file = File::open(path).unwrap();
        // SAFETY: a read-only shared mapping of a file the test owns, only passed to
        // `mincore` (never read), then unmapped.
        #[allow(unsafe_code)]
        unsafe {
            let map = libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ,
                libc::MAP_SHARED,
                file.as_raw_fd(),
                0,
            );
            assert_ne!(map, libc::MAP_FAILED);
            let mut pages = vec![0u8; len.div_ceil(4096)];
            assert_eq!(libc::mincore(map, len, pages.as_mut_ptr()), 0);
            libc::munmap(map, len);
            pages.iter().map(|&p| p & 1 == 1).collect()
        }
    }

    /// A folder on the project's file system: a real disk (a tmpfs keeps every page).
    fn disk_dir() -> tempfile::TempDir {
        tempfile::tempdir_in(env!("CARGO_MANIFEST_DIR")).unwrap()
    }

    /// Writes `data` through `out` in pieces (the `k`th of `piece(k)` bytes), finishes the
    /// file, and checks that the file at `path` holds exactly `data`, counted and hashed.
    fn write_and_check(
        mut out: Hashing,
        path: &Path,
        data: &[u8],
        piece: impl Fn(usize) -> usize,
    ) -> Hashing {
        let (mut at, mut k) = (0, 0);
        while at < data.len() {
            let n = piece(k).min(data.len() - at);
            out.write_all(&data[at..at + n]).unwrap();
            (at, k) = (at + n, k + 1);
        }
        out.sync().unwrap();
        assert_eq!(out.bytes(), data.len() as u64);
        assert_eq!(out.hash(), blake3::hash(data));
        assert!(
            std::fs::read(path).unwrap() == data,
            "length {}",
            data.len()
        );
        out
    }

    #[test]
    fn files_of_any_length_are_written_whole_and_hashed() {
        let dir = disk_dir();
        for len in [
            0,
            1,
            ALIGN - 1,
            ALIGN,
            BLOCK - 1,
            BLOCK,
            BLOCK + 1,
            3 * BLOCK + 17,
        ] {
            let path = dir.path().join(format!("{len}.bin"));
            let data: Vec<u8> = (0..len).map(|i| (i * 31 % 251) as u8).collect();
            let out = Hashing::create(&path).unwrap();
            #[cfg(target_os = "linux")]
            assert!(out.is_direct(), "the project's file system takes O_DIRECT");
            // Pieces of odd sizes, as a Parquet or CSV writer hands them over.
            write_and_check(out, &path, &data, |k| k * 7919 % 300_000 + 1);
        }
    }

    #[test]
    fn a_persisted_file_goes_on_or_is_taken_up_as_if_written_whole() {
        let dir = disk_dir();
        for (len, at) in [
            (3 * BLOCK + 17, 0),
            (3 * BLOCK + 17, 5),
            (3 * BLOCK + 17, BLOCK),
            (3 * BLOCK + 17, 2 * BLOCK + 4097),
            (BLOCK + 1, BLOCK + 1),
        ] {
            let data: Vec<u8> = (0..len).map(|i| (i * 13 % 247) as u8).collect();
            let path = dir.path().join(format!("{len}-{at}.bin"));
            // Persisted mid-way, then written on: the same file as written whole.
            let mut out = Hashing::create(&path).unwrap();
            out.write_all(&data[..at]).unwrap();
            let mark = out.persist().unwrap();
            assert_eq!(mark.bytes, at as u64);
            assert_eq!(mark.blake3, *blake3::hash(&data[..at]).as_bytes());
            assert_eq!(
                std::fs::read(&path).unwrap(),
                &data[..at],
                "on disk at once"
            );
            // Bytes written after the mark, as by a run killed later.
            out.write_all(&data[at..]).unwrap();
            out.write_all(b"written after the checkpoint").unwrap();
            out.sync().unwrap();
            drop(out);
            // Taken up at the mark: the rest written again gives the whole file.
            let mut resumed = Hashing::resume(&path, &mark).unwrap();
            #[cfg(target_os = "linux")]
            assert!(resumed.is_direct());
            for piece in data[at..].chunks(4093) {
                resumed.write_all(piece).unwrap();
            }
            resumed.sync().unwrap();
            assert_eq!(resumed.bytes(), len as u64);
            assert_eq!(resumed.hash(), blake3::hash(&data));
            assert!(std::fs::read(&path).unwrap() == data);
            // A file changed since is refused.
            std::fs::write(&path, vec![1u8; at + 1]).unwrap();
            if at > 0 {
                let err = Hashing::resume(&path, &mark).err().unwrap();
                assert!(err.to_string().contains("changed"), "{err}");
            }
        }
        let path = dir.path().join("short.bin");
        std::fs::write(&path, b"abc").unwrap();
        let mark = Mark {
            bytes: 10,
            blake3: [0; 32],
        };
        let err = Hashing::resume(&path, &mark).err().unwrap();
        assert!(err.to_string().contains("fewer than"), "{err}");
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn direct_writes_leave_nothing_in_the_page_cache() {
        let dir = disk_dir();
        let path = dir.path().join("t.bin");
        let total = 5 * BLOCK + 1000;
        let mut out = Hashing::create(&path).unwrap();
        out.write_all(&vec![7u8; total]).unwrap();
        out.complete().unwrap();
        assert_eq!(std::fs::metadata(&path).unwrap().len(), total as u64);
        assert!(cached_pages(&path, total).iter().all(|&c| !c));
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn a_refused_direct_write_goes_on_through_the_page_cache() {
        use std::os::unix::fs::OpenOptionsExt;
        let dir = disk_dir();
        let path = dir.path().join("t.bin");
        let mut file = File::options()
            .write(true)
            .create(true)
            .truncate(true)
            .custom_flags(libc::O_DIRECT)
            .open(&path)
            .unwrap();
        // Memory off the alignment: the kernel refuses it for a direct write.
        let buf = vec![5u8; 2 * ALIGN + 1];
        let at = buf.as_ptr().align_offset(ALIGN) + 1;
        let block = &buf[at..at + ALIGN];
        assert!(
            !write_direct(&mut file, block).unwrap(),
            "refused, no longer direct"
        );
        drop(file);
        assert_eq!(std::fs::read(&path).unwrap(), block);
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn a_file_whose_direct_writes_are_refused_is_written_whole_through_the_cache() {
        let dir = disk_dir();
        // Refused at a full block (in `write`) and at the last part (in `complete`).
        for len in [100, 3 * BLOCK + 100] {
            let path = dir.path().join(format!("{len}.bin"));
            let data: Vec<u8> = (0..len).map(|i| (i * 7 % 253) as u8).collect();
            let mut out = Hashing::create(&path).unwrap();
            assert!(out.is_direct());
            out.mode = Mode::Direct(Staging::misaligned());
            let out = write_and_check(out, &path, &data, |_| 70_001);
            assert!(!out.is_direct(), "went on through the page cache");
        }
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn cached_writes_leave_the_page_cache_a_few_megabytes_behind() {
        let dir = disk_dir();
        let path = dir.path().join("t.bin");
        let mut out = Hashing::new(File::create(&path).unwrap());
        let chunk = vec![7u8; 1 << 20];
        let total = 5 * WRITEBACK_EVERY as usize;
        for _ in 0..total / chunk.len() {
            out.write_all(&chunk).unwrap();
        }
        assert_eq!(out.bytes(), total as u64);
        // The first three of five 8 MiB stretches are on disk and dropped; the last two may
        // still be cached (one dropped only at the next stretch, one still being written).
        let dropped = 3 * WRITEBACK_EVERY as usize / 4096;
        let cached = cached_pages(&path, total);
        assert_eq!(cached[..dropped].iter().filter(|&&c| c).count(), 0);
        assert_eq!(std::fs::read(&path).unwrap().len(), total);
    }
}
