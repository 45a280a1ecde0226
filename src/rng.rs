//! Counter-based random streams: every draw is a function of (seed, agent, tick, purpose).
//!
//! No shared generator exists anywhere in Bazaar. A system that needs randomness for a
//! customer at an hour opens `Stream::new(seed, agent, tick, purpose)`; the result does not
//! depend on which thread runs it, on iteration order, or on which other customers exist. This
//! is what makes outputs byte-identical across thread counts and leaves the door open to
//! checkpointing (the tick is the only random state), common random numbers in A/B runs, and
//! sharding by customer.

use rand_core::{RngCore, SeedableRng};
use rand_xoshiro::Xoshiro256PlusPlus;

/// Why a stream is drawn: keeps the streams of different decisions independent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u64)]
pub enum Purpose {
    /// Customer attributes at spawn.
    Spawn = 1,
    /// The daily visit decision and time.
    Plan = 2,
    /// Basket contents and prices.
    Basket = 3,
    /// The daily attrition draw.
    Churn = 4,
}

/// A plugin's own purpose, named: `const REFERRAL: PluginPurpose =
/// PluginPurpose::new("word_of_mouth.referral");`, then `Streams::of(seed, tick, REFERRAL)`.
/// The name is hashed (FNV-1a) with the top bit set, so a plugin's purposes never meet the
/// built-in [`Purpose`]s (small numbers), and two names meet only by a 63-bit collision:
/// no edit to this file is needed. Prefix the name with the plugin's to keep it unique.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct PluginPurpose(u64);

impl PluginPurpose {
    /// The purpose named `name`.
    pub const fn new(name: &str) -> Self {
        let bytes = name.as_bytes();
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        let mut i = 0;
        while i < bytes.len() {
            h ^= bytes[i] as u64;
            h = h.wrapping_mul(0x0000_0100_0000_01b3);
            i += 1;
        }
        Self(h | 1 << 63)
    }

    /// The number that keys the purpose's streams.
    pub const fn value(self) -> u64 {
        self.0
    }
}

/// SplitMix64's finaliser: a strong 64-bit mixer.
#[inline]
fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// The golden-ratio increment of SplitMix64.
const PHI: u64 = 0x9e37_79b9_7f4a_7c15;

/// Xoshiro256++ seeded from `key` as `Xoshiro256PlusPlus::seed_from_u64` seeds it (four
/// SplitMix64 outputs), with the words made here: that function is not inlined into other
/// crates and goes through a byte-filling generator, which made opening a stream 5% of a
/// 10M run's CPU (every visit opens one). `from_seed` is inlined, its byte round trip
/// compiled away.
#[inline]
fn seeded(key: u64) -> Xoshiro256PlusPlus {
    let mut seed = [0u8; 32];
    for (i, word) in (1u64..).zip(seed.chunks_exact_mut(8)) {
        word.copy_from_slice(&mix(key.wrapping_add(PHI.wrapping_mul(i))).to_le_bytes());
    }
    Xoshiro256PlusPlus::from_seed(seed)
}

/// The streams of one (seed, tick, purpose): one per customer. The part of the key they
/// share is hashed once, so a customer's key costs two mixes instead of four; a daily pass
/// over every customer opens one such stream per customer.
///
/// The agent is mixed on its own before it meets the shared part, so no two keys are related
/// by anything simpler than a 64-bit hash collision.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Streams(u64);

impl Streams {
    /// The streams of (seed, tick, purpose).
    #[inline]
    pub fn new(seed: u64, tick: u64, purpose: u64) -> Self {
        let h = mix(mix(seed ^ PHI) ^ tick.wrapping_mul(0x2545_f491_4f6c_dd1d));
        Self(mix(h ^ purpose.wrapping_mul(PHI)))
    }

    /// The streams of a purpose at an hour.
    #[inline]
    pub fn at(seed: u64, tick: u32, purpose: Purpose) -> Self {
        Self::new(seed, u64::from(tick), purpose as u64)
    }

    /// The streams of a plugin's purpose at an hour.
    #[inline]
    pub fn of(seed: u64, tick: u32, purpose: PluginPurpose) -> Self {
        Self::new(seed, u64::from(tick), purpose.value())
    }

    /// The 64-bit key of an agent's stream.
    #[inline]
    pub fn key(self, agent: u64) -> u64 {
        mix(self.0 ^ mix(agent ^ 0xd1b5_4a32_d192_ed03))
    }

    /// Opens an agent's stream.
    #[inline]
    pub fn stream(self, agent: u32) -> Stream {
        Stream(seeded(self.key(u64::from(agent))))
    }

    /// The first `unit_f32` of an agent's stream, without opening it: Xoshiro256++'s first
    /// output needs only the first and last of the four SplitMix64 words that seed it, so
    /// this costs half the hashing. Used where a stream gives a single draw (a daily yes/no);
    /// equal to `self.stream(agent).unit_f32()`.
    #[inline]
    pub fn first_unit_f32(self, agent: u32) -> f32 {
        let k = self.key(u64::from(agent));
        let s0 = mix(k.wrapping_add(PHI));
        let s3 = mix(k.wrapping_add(PHI.wrapping_mul(4)));
        let first = s0.wrapping_add(s3).rotate_left(23).wrapping_add(s0);
        (first >> 40) as f32 * (1.0 / (1u32 << 24) as f32)
    }
}

/// A random stream for one (seed, agent, tick, purpose).
pub struct Stream(Xoshiro256PlusPlus);

impl Stream {
    /// Opens the stream for a key.
    #[inline]
    pub fn new(seed: u64, agent: u64, tick: u64, purpose: u64) -> Self {
        Self(seeded(Streams::new(seed, tick, purpose).key(agent)))
    }

    /// Opens the stream for a customer, an hour and a purpose; see [`Streams::stream`], which
    /// a pass over many customers should use instead.
    #[inline]
    pub fn for_agent(seed: u64, agent: u32, tick: u32, purpose: Purpose) -> Self {
        Streams::at(seed, tick, purpose).stream(agent)
    }

    /// 64 random bits.
    #[inline]
    pub fn next_u64(&mut self) -> u64 {
        self.0.next_u64()
    }

    /// Uniform on `[0, 1)` with 53 bits.
    #[inline]
    pub fn unit_f64(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }

    /// Uniform on `[0, 1)` with 24 bits.
    #[inline]
    pub fn unit_f32(&mut self) -> f32 {
        (self.next_u64() >> 40) as f32 * (1.0 / (1u32 << 24) as f32)
    }

    /// Uniform integer on `[0, n)` (multiply-shift; `n` must be at least 1).
    #[inline]
    pub fn below(&mut self, n: u64) -> u64 {
        ((u128::from(self.next_u64()) * u128::from(n)) >> 64) as u64
    }

    /// True with probability `p`.
    #[inline]
    pub fn chance(&mut self, p: f32) -> bool {
        self.unit_f32() < p
    }

    /// A standard normal draw (Box-Muller).
    #[inline]
    pub fn standard_normal(&mut self) -> f64 {
        let u1 = 1.0 - self.unit_f64();
        let u2 = self.unit_f64();
        (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plugin_purposes_are_apart_from_the_built_in_ones_and_each_other() {
        const A: PluginPurpose = PluginPurpose::new("word_of_mouth.referral");
        let b = PluginPurpose::new("stores.restock");
        assert_ne!(A, b);
        assert_eq!(A, PluginPurpose::new("word_of_mouth.referral"));
        for p in [
            Purpose::Spawn,
            Purpose::Plan,
            Purpose::Basket,
            Purpose::Churn,
        ] {
            assert_ne!(A.value(), p as u64);
        }
        let (x, y) = (Streams::of(7, 3, A), Streams::of(7, 3, b));
        assert_ne!(x.stream(1).next_u64(), y.stream(1).next_u64());
        assert_eq!(
            x.stream(1).next_u64(),
            Streams::of(7, 3, A).stream(1).next_u64()
        );
    }

    #[test]
    fn same_key_same_stream_and_keys_differ() {
        let a: Vec<u64> = (0..4)
            .map(|_| 0)
            .scan(Stream::new(1, 2, 3, 4), |s, _| Some(s.next_u64()))
            .collect();
        let b: Vec<u64> = (0..4)
            .map(|_| 0)
            .scan(Stream::new(1, 2, 3, 4), |s, _| Some(s.next_u64()))
            .collect();
        assert_eq!(a, b);
        let mut seen = std::collections::HashSet::new();
        for seed in 0..4 {
            for agent in 0..50 {
                for tick in 0..50 {
                    for purpose in 1..4 {
                        assert!(seen.insert(Streams::new(seed, tick, purpose).key(agent)));
                    }
                }
            }
        }
    }

    #[test]
    fn the_first_draw_shortcut_equals_the_stream() {
        for seed in [0u64, 1, 42, u64::MAX] {
            for agent in (0..2_000u32).chain([u32::MAX]) {
                for purpose in [Purpose::Plan, Purpose::Churn] {
                    let tick = agent.wrapping_mul(7) % 720;
                    assert_eq!(
                        Streams::at(seed, tick, purpose)
                            .first_unit_f32(agent)
                            .to_bits(),
                        Stream::for_agent(seed, agent, tick, purpose)
                            .unit_f32()
                            .to_bits()
                    );
                }
            }
        }
    }

    #[test]
    fn streams_are_seeded_as_the_crate_seeds_them() {
        let keys = (0..10_000u64)
            .map(|k| k.wrapping_mul(0x2545_f491_4f6c_dd1d))
            .chain([0, 1, u64::MAX, PHI.wrapping_neg()]);
        for key in keys {
            assert_eq!(seeded(key), Xoshiro256PlusPlus::seed_from_u64(key), "{key}");
        }
    }

    #[test]
    fn below_is_uniform() {
        let mut s = Stream::new(5, 0, 0, 0);
        let mut counts = [0u32; 6];
        for _ in 0..60_000 {
            counts[s.below(6) as usize] += 1;
        }
        for c in counts {
            assert!((9_500..10_500).contains(&c), "{counts:?}");
        }
    }

    #[test]
    fn unit_draws_have_mean_one_half() {
        let mut s = Stream::new(6, 0, 0, 0);
        let n = 100_000;
        let mean: f64 = (0..n).map(|_| s.unit_f64()).sum::<f64>() / f64::from(n);
        assert!((mean - 0.5).abs() < 0.005, "{mean}");
        let normal_mean: f64 = (0..n).map(|_| s.standard_normal()).sum::<f64>() / f64::from(n);
        assert!(normal_mean.abs() < 0.02, "{normal_mean}");
    }
}
