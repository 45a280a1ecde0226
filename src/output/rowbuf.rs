//! A CSV row written in place, for the two tables written by the million (transactions and
//! line items).
//!
//! Appending field by field to a `Vec` pays, per field, a capacity check, a call to `memcpy`
//! for a copy of a few bytes and a reload of the vector's length. Here the output grows by a
//! fixed 256 bytes once per row and the row is written into that room through a plain slice,
//! its cursor in a register: integers digit pair by digit pair where they belong, names as
//! fixed 32-byte blocks ([`Short`]); the excess is cut off at the end. A row that does not fit
//! (a long events text) is reported, and the caller writes it the ordinary way; the bytes are
//! the same either way.

/// Room for one row.
const CAP: usize = 256;

/// Width of a [`Short`] text: the fixed size of its copy.
const SHORT: usize = 32;

/// `00`, `01`, … `99`: two digits at a time.
const PAIRS: &[u8; 200] = b"\
    0001020304050607080910111213141516171819\
    2021222324252627282930313233343536373839\
    4041424344454647484950515253545556575859\
    6061626364656667686970717273747576777879\
    8081828384858687888990919293949596979899";

/// `10^k` for `k` in `0..20`.
const POW10: [u64; 20] = {
    let mut p = [1u64; 20];
    let mut k = 1;
    while k < 20 {
        p[k] = p[k - 1] * 10;
        k += 1;
    }
    p
};

/// The number of decimal digits of `n` (1 for 0).
#[inline]
fn digits(n: u64) -> usize {
    let n = n | 1;
    let bits = 64 - n.leading_zeros() as usize;
    let guess = (bits * 1233) >> 12; // floor(log10(2^bits)), one too many at most
    guess + usize::from(n >= POW10[guess])
}

/// A text field and its comma, ready to be copied as one fixed-size block when it is short
/// (up to 32 bytes with the comma); longer ones are copied by length. Already escaped.
#[derive(Debug, Clone)]
pub struct Short {
    bytes: Vec<u8>,
    block: [u8; SHORT],
}

impl Default for Short {
    fn default() -> Self {
        Self::new(b"")
    }
}

impl Short {
    /// `escaped` (an escaped CSV field) followed by a comma.
    pub fn new(escaped: &[u8]) -> Self {
        let mut s = Self {
            bytes: Vec::new(),
            block: [0; SHORT],
        };
        s.set(escaped);
        s
    }

    /// The text, without its comma.
    pub fn text(&self) -> &[u8] {
        &self.bytes[..self.bytes.len() - 1]
    }

    /// Replaces the text, keeping the buffer.
    pub fn set(&mut self, escaped: &[u8]) {
        self.bytes.clear();
        self.bytes.extend_from_slice(escaped);
        self.bytes.push(b',');
        if let Some(head) = self.block.get_mut(..self.bytes.len()) {
            head.copy_from_slice(&self.bytes);
        }
    }
}

/// One row being written into the room at the end of an output buffer. Every field is
/// written with its comma after it; the last comma becomes the line break.
pub struct RowBuf<'a> {
    buf: &'a mut [u8],
    len: usize,
    fits: bool,
}

/// Appends one row built by `fill` to `out`. `false`, and `out` as it was, when the row did
/// not fit in the room: the caller writes it another way.
#[inline]
pub fn append_row(out: &mut Vec<u8>, fill: impl FnOnce(&mut RowBuf<'_>)) -> bool {
    let at = out.len();
    out.resize(at + CAP, 0);
    let mut row = RowBuf {
        buf: &mut out[at..],
        len: 0,
        fits: true,
    };
    fill(&mut row);
    let (len, fits) = (row.len, row.fits && row.len > 0);
    if fits {
        out[at + len - 1] = b'\n';
        out.truncate(at + len);
    } else {
        out.truncate(at);
    }
    fits
}

impl RowBuf<'_> {
    /// Copies a fixed block of `N` bytes of which the first `used` are the field.
    #[inline]
    fn block<const N: usize>(&mut self, block: &[u8; N], used: usize) {
        match self.buf.get_mut(self.len..self.len + N) {
            Some(dst) => {
                dst.copy_from_slice(block);
                self.len += used;
            }
            None => self.fits = false,
        }
    }

    /// Copies `bytes` as they are: the way of long texts, kept out of line so that the
    /// compiler does not merge it with the fixed-size copies into one copy of variable length.
    #[cold]
    #[inline(never)]
    fn bytes(&mut self, bytes: &[u8]) {
        match self.buf.get_mut(self.len..self.len + bytes.len()) {
            Some(dst) => {
                dst.copy_from_slice(bytes);
                self.len += bytes.len();
            }
            None => self.fits = false,
        }
    }

    /// Writes `n`'s digits, with nothing after them, straight into the row. Kept instead of
    /// `itoa` (used for the other tables): `itoa` formats into its own buffer, which then
    /// has to be copied with a length known only at run time, and the `output_encoding/csv`
    /// benchmark ran 12% slower with it (140.0 against 123.5 and 122.8 ms, alternating).
    #[inline]
    fn number(&mut self, mut n: u64) {
        let d = digits(n);
        let Some(dst) = self.buf.get_mut(self.len..self.len + 20) else {
            self.fits = false;
            return;
        };
        let mut i = d;
        while n >= 100 {
            let r = (n % 100) as usize * 2;
            n /= 100;
            i -= 2;
            dst[i..i + 2].copy_from_slice(&PAIRS[r..r + 2]);
        }
        if n >= 10 {
            let r = n as usize * 2;
            dst[..2].copy_from_slice(&PAIRS[r..r + 2]);
        } else {
            dst[0] = b'0' + n as u8;
        }
        self.len += d;
    }

    /// An unsigned integer field.
    #[inline]
    pub fn uint(&mut self, n: u64) -> &mut Self {
        self.number(n);
        self.block(b",", 1);
        self
    }

    /// A money field: minor units as an exact decimal with `minor_units` places
    /// (`123456` with 2 -> `1234.56`).
    #[inline]
    pub fn money(&mut self, minor: i64, minor_units: u8) -> &mut Self {
        if minor < 0 {
            self.block(b"-", 1);
        }
        let abs = minor.unsigned_abs();
        if minor_units == 2 {
            // Paise and cents: the last two digits as one pair.
            self.number(abs / 100);
            let r = (abs % 100) as usize * 2;
            self.block(&[b'.', PAIRS[r], PAIRS[r + 1], b','], 4);
        } else {
            self.money_other(abs, minor_units);
        }
        self
    }

    /// [`RowBuf::money`] for currencies whose minor unit is not a hundredth.
    #[cold]
    #[inline(never)]
    fn money_other(&mut self, abs: u64, minor_units: u8) {
        let per = POW10[usize::from(minor_units)];
        self.number(abs / per);
        if minor_units > 0 {
            let mut frac = [b'0'; 8];
            let mut f = abs % per;
            for k in (0..usize::from(minor_units)).rev() {
                frac[k] = b'0' + (f % 10) as u8;
                f /= 10;
            }
            self.block(b".", 1);
            self.block(&frac, usize::from(minor_units));
        }
        self.block(b",", 1);
    }

    /// A text field with its comma.
    #[inline]
    pub fn text(&mut self, s: &Short) -> &mut Self {
        if s.bytes.len() <= SHORT {
            self.block(&s.block, s.bytes.len());
        } else {
            self.bytes(&s.bytes);
        }
        self
    }

    /// Bytes written as they are, without a comma: the first part of a field.
    #[inline]
    pub fn part(&mut self, s: &Short) -> &mut Self {
        // A Short ends with its comma: copy the text before it.
        let text = s.bytes.len() - 1;
        if text < SHORT {
            self.block(&s.block, text);
        } else {
            self.bytes(&s.bytes[..text]);
        }
        self
    }

    /// The minutes of a timestamp and its seconds, `:MM:00`'s last part: `MM:00`.
    #[inline]
    pub fn minute_seconds(&mut self, minute: u8) -> &mut Self {
        let r = usize::from(minute.min(99)) * 2;
        self.block(&[PAIRS[r], PAIRS[r + 1], b':', b'0', b'0', b','], 6);
        self
    }

    /// A boolean field, `true` or `false`.
    #[inline]
    pub fn flag(&mut self, b: bool) -> &mut Self {
        if b {
            self.block(b"true,\0\0\0", 5);
        } else {
            self.block(b"false,\0\0", 6);
        }
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::money::push_plain;
    use proptest::prelude::*;

    #[test]
    fn digit_counts_at_every_power_of_ten() {
        assert_eq!(digits(0), 1);
        assert_eq!(digits(u64::MAX), 20);
        for (k, &p) in POW10.iter().enumerate().skip(1) {
            assert_eq!(digits(p - 1), k, "{}", p - 1);
            assert_eq!(digits(p), k + 1, "{p}");
        }
    }

    #[test]
    fn a_row_too_long_for_the_room_is_refused_whole() {
        let long = Short::new(&[b'x'; 300]);
        let mut out = b"kept".to_vec();
        assert!(!append_row(&mut out, |r| {
            r.uint(1).text(&long);
        }));
        assert_eq!(out, b"kept", "nothing appended");
        assert!(!append_row(&mut out, |_| {}), "an empty row is no row");
        assert_eq!(out, b"kept");
        let fits = Short::new(&[b'y'; 100]);
        assert!(append_row(&mut out, |r| {
            r.uint(1).text(&fits).flag(false);
        }));
        let expected = format!("kept1,{},false\n", "y".repeat(100));
        assert_eq!(out, expected.as_bytes());
    }

    proptest! {
        /// Every field reads as the ordinary formatting of its value.
        #[test]
        fn fields_match_ordinary_formatting(
            a in any::<u64>(),
            small in 0u64..1000,
            paise in any::<i64>(),
            units in 0u8..=4,
            minute in 0u8..60,
            name in "[a-z_]{0,40}",
            head in "[0-9T:-]{0,40}",
            flag in any::<bool>(),
        ) {
            let (name_s, head_s) = (Short::new(name.as_bytes()), Short::new(head.as_bytes()));
            let mut out = b"before\n".to_vec();
            let built = append_row(&mut out, |r| {
                r.uint(a)
                    .uint(small)
                    .money(paise, units)
                    .text(&name_s)
                    .part(&head_s)
                    .minute_seconds(minute)
                    .flag(flag);
            });
            prop_assert!(built);
            let mut money = Vec::new();
            push_plain(&mut money, paise, units);
            let expected = format!(
                "before\n{a},{small},{},{name},{head}{minute:02}:00,{flag}\n",
                String::from_utf8(money).unwrap()
            );
            prop_assert_eq!(String::from_utf8(out).unwrap(), expected);
        }
    }
}
