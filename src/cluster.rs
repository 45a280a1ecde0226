//! One run across several processes: a [`Cluster`] is the set of processes a run is
//! sharded over (MPI ranks under `mpirun`, or this process alone), and the few collective
//! operations the simulation couples its customers through.
//!
//! A sharded run keeps the single-process run's answer by construction: every customer
//! keeps its global id (its random streams are keyed by it), each rank simulates the ids it
//! owns ([`Shard`]), and whatever sums over customers (the day's tallies, the rollups, the
//! aggregates) is summed exactly, in integers, over the ranks before anything is written.
//! Only the main thread calls a collective (MPI's "funneled" threading): systems run on the
//! thread that steps the schedule.
//!
//! Without the `mpi` cargo feature, or outside `mpirun`, the cluster is [`Cluster::solo`]:
//! every operation is the identity and costs nothing.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use bevy_ecs::prelude::Resource;

/// The collective operations a sharded run needs. Each is called by every rank, in the
/// same order, from the main thread.
pub trait Collective: Send + Sync + 'static {
    /// This process's rank, from 0.
    fn rank(&self) -> usize;
    /// How many processes the run is sharded over.
    fn ranks(&self) -> usize;
    /// Sums `values` element-wise over every rank; every rank receives the sums.
    fn sum(&self, values: &mut [i64]);
    /// Every rank's `bytes`, in rank order, at rank 0 (`None` elsewhere).
    fn gather(&self, bytes: &[u8]) -> Option<Vec<Vec<u8>>>;
    /// Every rank's `bytes`, in rank order, on every rank.
    fn all_gather(&self, bytes: &[u8]) -> Vec<Vec<u8>>;
    /// Rank 0's `bytes` on every rank (the argument is ignored elsewhere).
    fn broadcast(&self, bytes: Vec<u8>) -> Vec<u8>;
    /// Ends every rank of the run with `code`, at once.
    fn abort(&self, code: i32) -> !;
}

/// The processes a run is sharded over, a resource of every simulation (this process
/// alone unless a sharded run inserts another).
#[derive(Resource, Clone)]
pub struct Cluster {
    inner: Arc<dyn Collective>,
    /// Bytes this rank has sent to collectives, for the run's report.
    sent: Arc<AtomicU64>,
}

impl std::fmt::Debug for Cluster {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Cluster(rank {} of {})", self.rank(), self.ranks())
    }
}

impl Default for Cluster {
    fn default() -> Self {
        Self::solo()
    }
}

/// This process alone.
struct Solo;

impl Collective for Solo {
    fn rank(&self) -> usize {
        0
    }
    fn ranks(&self) -> usize {
        1
    }
    fn sum(&self, _values: &mut [i64]) {}
    fn gather(&self, bytes: &[u8]) -> Option<Vec<Vec<u8>>> {
        Some(vec![bytes.to_vec()])
    }
    fn all_gather(&self, bytes: &[u8]) -> Vec<Vec<u8>> {
        vec![bytes.to_vec()]
    }
    fn broadcast(&self, bytes: Vec<u8>) -> Vec<u8> {
        bytes
    }
    fn abort(&self, code: i32) -> ! {
        std::process::exit(code)
    }
}

impl Cluster {
    /// This process alone: every collective is the identity.
    pub fn solo() -> Self {
        Self::of(Arc::new(Solo))
    }

    /// A cluster over any implementation of the collectives (MPI's, or a test's).
    pub fn of(inner: Arc<dyn Collective>) -> Self {
        Self {
            inner,
            sent: Arc::new(AtomicU64::new(0)),
        }
    }

    /// This process's rank, from 0.
    pub fn rank(&self) -> usize {
        self.inner.rank()
    }

    /// How many processes the run is sharded over.
    pub fn ranks(&self) -> usize {
        self.inner.ranks()
    }

    /// Whether this is rank 0, the one that writes what is not per customer.
    pub fn is_root(&self) -> bool {
        self.rank() == 0
    }

    /// Whether the run is sharded over more than one process.
    pub fn sharded(&self) -> bool {
        self.ranks() > 1
    }

    /// The ids of `first..first + n` that this rank holds: the `rank`-th of `ranks`
    /// nearly equal blocks, in order. The same split for the starting population and for
    /// each group of customers acquired during the run.
    pub fn share(&self, first: u32, n: u32) -> std::ops::Range<u32> {
        share(first, n, self.rank(), self.ranks())
    }

    /// This rank's share of each persona's starting ids ([`starting_shares`]).
    pub fn starting_shares(&self, counts: &[u64]) -> Vec<std::ops::Range<u32>> {
        starting_shares(counts, self.rank(), self.ranks())
    }

    /// Sums `values` element-wise over every rank (a no-op alone).
    pub fn sum(&self, values: &mut [i64]) {
        if self.sharded() {
            self.sent
                .fetch_add(8 * values.len() as u64, Ordering::Relaxed);
            self.inner.sum(values);
        }
    }

    /// Sums counts element-wise over every rank (a no-op alone).
    pub fn sum_u64(&self, values: &mut [u64]) {
        if self.sharded() {
            let mut words: Vec<i64> = values.iter().map(|&v| v as i64).collect();
            self.sum(&mut words);
            for (v, w) in values.iter_mut().zip(words) {
                *v = w as u64;
            }
        }
    }

    /// How many ranks pass `true` (this process alone: its own flag): one all-reduce, by
    /// which the ranks agree on whether a step went well everywhere.
    pub fn count(&self, flag: bool) -> i64 {
        let mut n = [i64::from(flag)];
        self.sum(&mut n);
        n[0]
    }

    /// Every rank's `bytes`, in rank order, at rank 0; `None` elsewhere.
    pub fn gather(&self, bytes: &[u8]) -> Option<Vec<Vec<u8>>> {
        if self.sharded() {
            self.sent
                .fetch_add(bytes.len() as u64 + 4, Ordering::Relaxed);
        }
        self.inner.gather(bytes)
    }

    /// Every rank's `bytes`, in rank order, on every rank.
    pub fn all_gather(&self, bytes: &[u8]) -> Vec<Vec<u8>> {
        if self.sharded() {
            self.sent
                .fetch_add(bytes.len() as u64 + 4, Ordering::Relaxed);
        }
        self.inner.all_gather(bytes)
    }

    /// Rank 0's `bytes` on every rank.
    pub fn broadcast(&self, bytes: Vec<u8>) -> Vec<u8> {
        if self.sharded() && self.is_root() {
            self.sent
                .fetch_add(bytes.len() as u64 + 8, Ordering::Relaxed);
        }
        self.inner.broadcast(bytes)
    }

    /// Ends every rank of the run with `code`.
    pub fn abort(&self, code: i32) -> ! {
        self.inner.abort(code)
    }

    /// Bytes this rank has sent to collectives so far.
    pub fn bytes_sent(&self) -> u64 {
        self.sent.load(Ordering::Relaxed)
    }
}

/// The `rank`-th of `ranks` nearly equal blocks of `first..first + n`.
pub fn share(first: u32, n: u32, rank: usize, ranks: usize) -> std::ops::Range<u32> {
    let at = |r: usize| first + (u64::from(n) * r as u64 / ranks.max(1) as u64) as u32;
    at(rank)..at(rank + 1)
}

/// The `rank`-th of `ranks` shares of each persona's starting ids, persona by persona (ids
/// are dense from 0 in persona order, `counts` customers each): every rank gets the same
/// mix of personas, and so about the same work.
pub fn starting_shares(counts: &[u64], rank: usize, ranks: usize) -> Vec<std::ops::Range<u32>> {
    let mut first = 0u32;
    counts
        .iter()
        .map(|&count| {
            let ids = share(first, count as u32, rank, ranks);
            first += count as u32;
            ids
        })
        .collect()
}

/// A run on `ranks` processes, in words: "one process", "4 MPI ranks".
pub fn described(ranks: usize) -> String {
    match ranks {
        0 | 1 => "one process".to_owned(),
        n => format!("{n} MPI ranks"),
    }
}

/// What starts a command on `ranks` processes, before `bazaar`: nothing for one,
/// `mpirun -n N ` for several.
pub fn launcher(ranks: usize) -> String {
    match ranks {
        0 | 1 => String::new(),
        n => format!("mpirun -n {n} "),
    }
}

/// Whether this process was started by an MPI launcher (`mpirun`, `mpiexec`, `srun`) as one
/// of several ranks, and how many.
pub fn launched_ranks() -> Option<usize> {
    [
        "OMPI_COMM_WORLD_SIZE",
        "PMI_SIZE",
        "PMIX_SIZE",
        "MPI_LOCALNRANKS",
    ]
    .iter()
    .find_map(|v| std::env::var(v).ok()?.parse::<usize>().ok())
}

/// The cluster this process belongs to: MPI's world when started by an MPI launcher (and
/// built with the `mpi` feature), else this process alone. Call it once, from the main
/// thread, and keep the returned guard for the life of the process (dropping it ends MPI).
pub fn join() -> Result<(Cluster, Guard), String> {
    match launched_ranks() {
        None => Ok((Cluster::solo(), Guard(None))),
        Some(n) => mpi_world(n),
    }
}

/// Keeps MPI initialised while held; finalises it when dropped.
pub struct Guard(#[allow(dead_code)] Option<Box<dyn std::any::Any>>);

#[cfg(not(feature = "mpi"))]
fn mpi_world(n: usize) -> Result<(Cluster, Guard), String> {
    if n <= 1 {
        return Ok((Cluster::solo(), Guard(None)));
    }
    Err(format!(
        "this process is one of {n} MPI ranks, but this Bazaar was built without MPI\n\
         hint: install Open MPI (`apt-get install openmpi-bin libopenmpi-dev libclang-dev`) \
         and build with `cargo build --release --features mpi`"
    ))
}

#[cfg(feature = "mpi")]
fn mpi_world(_n: usize) -> Result<(Cluster, Guard), String> {
    use mpi::environment::Threading;
    let (universe, threading) = mpi::initialize_with_threading(Threading::Funneled)
        .ok_or("MPI was already initialised in this process")?;
    if threading == Threading::Single {
        return Err(format!(
            "the MPI library offers only {threading:?} threading; Bazaar needs Funneled (only the main thread calls MPI, others compute)"
        ));
    }
    let world = Mpi::new();
    Ok((
        Cluster::of(Arc::new(world)),
        Guard(Some(Box::new(universe))),
    ))
}

/// MPI's world communicator (`MPI_COMM_WORLD`).
#[cfg(feature = "mpi")]
struct Mpi {
    rank: usize,
    ranks: usize,
}

#[cfg(feature = "mpi")]
impl Mpi {
    fn new() -> Self {
        use mpi::traits::Communicator;
        let world = mpi::topology::SimpleCommunicator::world();
        Self {
            rank: world.rank() as usize,
            ranks: world.size() as usize,
        }
    }
}

#[cfg(feature = "mpi")]
impl Mpi {
    /// `bytes` with one byte more, which [`split`] drops: an empty Rust buffer's address
    /// is 1, which is what Open MPI's `MPI_IN_PLACE` is, so no buffer handed to a gather
    /// may be empty.
    fn padded(bytes: &[u8]) -> Vec<u8> {
        let mut padded = Vec::with_capacity(bytes.len() + 1);
        padded.extend_from_slice(bytes);
        padded.push(0);
        padded
    }

    /// `len` as an MPI count; a rank with more than MPI counts (2 GiB) to send ends the run.
    fn count(&self, len: usize) -> i32 {
        use mpi::traits::Communicator;
        i32::try_from(len).unwrap_or_else(|_| {
            eprintln!(
                "bazaar: rank {}: {len} bytes to gather is more than MPI counts (2 GiB)",
                self.rank
            );
            mpi::topology::SimpleCommunicator::world().abort(1)
        })
    }

    /// Room for every rank's bytes end to end, and where each rank's start; more than MPI
    /// counts (2 GiB) in all ends the run.
    fn room_for(&self, counts: &[i32]) -> (Vec<u8>, Vec<i32>) {
        use mpi::traits::Communicator;
        let total: usize = counts.iter().map(|&c| c as usize).sum();
        if i32::try_from(total).is_err() {
            eprintln!(
                "bazaar: rank {}: {total} bytes gathered from every rank is more than MPI counts (2 GiB)",
                self.rank
            );
            mpi::topology::SimpleCommunicator::world().abort(1)
        }
        let displs = counts
            .iter()
            .scan(0i32, |at, &c| {
                let d = *at;
                *at += c;
                Some(d)
            })
            .collect();
        (vec![0u8; total], displs)
    }
}

/// Every rank's bytes, cut out of what was gathered end to end, each without the byte
/// [`Mpi::padded`] added.
#[cfg(feature = "mpi")]
fn split(all: &[u8], counts: &[i32], displs: &[i32]) -> Vec<Vec<u8>> {
    counts
        .iter()
        .zip(displs)
        .map(|(&c, &d)| all[d as usize..(d + c - 1) as usize].to_vec())
        .collect()
}

#[cfg(feature = "mpi")]
impl Collective for Mpi {
    fn rank(&self) -> usize {
        self.rank
    }

    fn ranks(&self) -> usize {
        self.ranks
    }

    fn sum(&self, values: &mut [i64]) {
        use mpi::collective::SystemOperation;
        use mpi::traits::CommunicatorCollectives;
        let world = mpi::topology::SimpleCommunicator::world();
        let send = values.to_vec();
        world.all_reduce_into(&send[..], values, SystemOperation::sum());
    }

    fn gather(&self, bytes: &[u8]) -> Option<Vec<Vec<u8>>> {
        use mpi::datatype::PartitionMut;
        use mpi::traits::{Communicator, Root};
        let world = mpi::topology::SimpleCommunicator::world();
        let root = world.process_at_rank(0);
        let bytes = &Self::padded(bytes)[..];
        let len = self.count(bytes.len());
        if self.rank != 0 {
            root.gather_into(&len);
            root.gather_varcount_into(bytes);
            return None;
        }
        let mut counts = vec![0i32; self.ranks];
        root.gather_into_root(&len, &mut counts[..]);
        let (mut all, displs) = self.room_for(&counts);
        {
            let mut partition = PartitionMut::new(&mut all[..], &counts[..], &displs[..]);
            root.gather_varcount_into_root(bytes, &mut partition);
        }
        Some(split(&all, &counts, &displs))
    }

    fn all_gather(&self, bytes: &[u8]) -> Vec<Vec<u8>> {
        use mpi::datatype::PartitionMut;
        use mpi::traits::CommunicatorCollectives;
        let world = mpi::topology::SimpleCommunicator::world();
        let bytes = &Self::padded(bytes)[..];
        let len = self.count(bytes.len());
        let mut counts = vec![0i32; self.ranks];
        world.all_gather_into(&len, &mut counts[..]);
        let (mut all, displs) = self.room_for(&counts);
        {
            let mut partition = PartitionMut::new(&mut all[..], &counts[..], &displs[..]);
            world.all_gather_varcount_into(bytes, &mut partition);
        }
        split(&all, &counts, &displs)
    }

    fn broadcast(&self, mut bytes: Vec<u8>) -> Vec<u8> {
        use mpi::traits::{Communicator, Root};
        let world = mpi::topology::SimpleCommunicator::world();
        let root = world.process_at_rank(0);
        let mut len = bytes.len() as u64;
        root.broadcast_into(&mut len);
        bytes.resize(len as usize, 0);
        if len > 0 {
            // Not an empty buffer: its address would read as `MPI_IN_PLACE` ([`Mpi::padded`]).
            root.broadcast_into(&mut bytes[..]);
        }
        bytes
    }

    fn abort(&self, code: i32) -> ! {
        use mpi::traits::Communicator;
        mpi::topology::SimpleCommunicator::world().abort(code)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shares_cover_the_range_once_in_order() {
        for (first, n) in [(0, 10), (7, 3), (100, 0), (5, 1_000_003)] {
            for ranks in 1..=5 {
                let mut next = first;
                for r in 0..ranks {
                    let s = share(first, n, r, ranks);
                    assert_eq!(
                        s.start, next,
                        "rank {r} of {ranks} starts where {} ended",
                        r
                    );
                    assert!(s.len() as u32 <= n.div_ceil(ranks as u32));
                    next = s.end;
                }
                assert_eq!(next, first + n);
            }
        }
    }

    #[test]
    fn alone_every_collective_is_the_identity() {
        let c = Cluster::solo();
        let mut v = [3i64, -4];
        c.sum(&mut v);
        assert_eq!(v, [3, -4]);
        assert_eq!(c.gather(b"ab"), Some(vec![b"ab".to_vec()]));
        assert_eq!(c.all_gather(b"ab"), vec![b"ab".to_vec()]);
        assert_eq!(c.broadcast(b"x".to_vec()), b"x".to_vec());
        assert_eq!(c.share(10, 5), 10..15);
        assert_eq!((c.count(true), c.count(false)), (1, 0));
        assert_eq!(c.bytes_sent(), 0);
    }
}
