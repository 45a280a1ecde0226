//! Money in the scenario's currency: which currency (code, symbol, minor units), how numbers
//! are grouped (Indian lakh/crore or Western thousands), and every conversion and format the
//! outputs, summaries, charts and report use, so none of them assumes rupees.
//!
//! Amounts are held as integers of the currency's minor unit (paise for INR, cents for USD,
//! yen for JPY): the fields named `..._paise` in the code and in `aggregates.json` hold minor
//! units of whatever the currency is. Scenario files give amounts in major units (rupees,
//! dollars). India is the default, and a scenario in rupees writes exactly what it wrote
//! before currencies were settings.

use serde::{Deserialize, Serialize};

/// How digits are grouped for reading.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
pub enum Grouping {
    /// The last three digits, then pairs: `4,54,71,690`; short forms in thousands (K), lakhs
    /// (L) and crores (Cr).
    #[default]
    Indian,
    /// Threes: `45,471,690`; short forms in thousands (K), millions (M) and billions (B).
    Western,
}

/// The currency amounts are in.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Currency {
    /// ISO 4217 code: `INR`, `USD`.
    pub code: String,
    /// Written before amounts for readers: `₹`, `$`.
    pub symbol: String,
    /// Decimal places of the minor unit (2 for paise and cents, 0 for yen).
    pub minor_units: u8,
    /// Digit grouping for readers.
    pub grouping: Grouping,
}

impl Default for Currency {
    fn default() -> Self {
        Self::india()
    }
}

/// The most minor units a currency may have: amounts are i64 minor units, and 10^4 of them a
/// major unit still leaves room for any basket.
pub const MAX_MINOR_UNITS: u8 = 4;

impl Currency {
    /// Indian rupees, grouped the Indian way, written `Rs` (which every console shows): the
    /// default.
    pub fn india() -> Self {
        Self {
            code: "INR".into(),
            symbol: "Rs".into(),
            minor_units: 2,
            grouping: Grouping::Indian,
        }
    }

    /// The ISO 4217 currency `code` with its symbol and minor units (from the ISO table), and
    /// Indian grouping for rupees, Western otherwise. None for an unknown code.
    pub fn from_code(code: &str) -> Option<Self> {
        let iso = iso_currency::Currency::from_code(&code.to_ascii_uppercase())?;
        let symbol = iso.symbol().to_string();
        Some(Self {
            code: iso.code().to_string(),
            symbol: if symbol.is_empty() {
                iso.code().to_string()
            } else {
                symbol
            },
            minor_units: iso
                .exponent()
                .map_or(2, |e| u8::try_from(e).unwrap_or(2))
                .min(MAX_MINOR_UNITS),
            grouping: if iso.code() == "INR" {
                Grouping::Indian
            } else {
                Grouping::Western
            },
        })
    }

    /// Whether this is the default (rupees as Bazaar has always written them): outputs then
    /// leave the currency out, as they did before it was a setting.
    pub fn is_default(&self) -> bool {
        *self == Self::india()
    }

    /// Minor units in one major unit: 100 for paise and cents.
    pub fn per_major(&self) -> i64 {
        10i64.pow(u32::from(self.minor_units))
    }

    /// A scenario amount in major units as minor units, rounded half away from zero.
    pub fn to_minor(&self, major: f64) -> i64 {
        round_minor(major, self.per_major() as f64)
    }

    /// Minor units as a number of major units.
    pub fn major(&self, minor: i64) -> f64 {
        minor as f64 / self.per_major() as f64
    }

    /// Minor units as an exact decimal without grouping, for machine-read outputs:
    /// `123456` is `1234.56` with two minor units, `123456` with none.
    pub fn plain(&self, minor: i64) -> String {
        let mut out = Vec::with_capacity(24);
        push_plain(&mut out, minor, self.minor_units);
        String::from_utf8(out).unwrap_or_default()
    }

    /// Groups a whole number for readers: `4,54,71,690` or `45,471,690`.
    pub fn group(&self, n: u64) -> String {
        match self.grouping {
            Grouping::Indian => group_indian(n),
            Grouping::Western => group_western(n),
        }
    }

    /// The symbol as written before a number: `Rs ` (a word takes a space), `$`, `₹`.
    pub fn prefix(&self) -> String {
        if self.symbol.chars().last().is_some_and(char::is_alphabetic) {
            format!("{} ", self.symbol)
        } else {
            self.symbol.clone()
        }
    }

    /// The large-number words of the grouping, largest first: crore and lakh, or billion
    /// and million.
    fn words(&self) -> [(f64, &'static str); 2] {
        match self.grouping {
            Grouping::Indian => [(1e7, "crore"), (1e5, "lakh")],
            Grouping::Western => [(1e9, "billion"), (1e6, "million")],
        }
    }

    /// An exact amount for readers, grouped, with the size in words when large:
    /// `Rs 4,54,71,690.10 (4.55 crore)`, `$45,471,690.10 (45.47 million)`, `¥2,304`.
    pub fn human(&self, minor: i64) -> String {
        let sign = if minor < 0 { "-" } else { "" };
        let abs = minor.unsigned_abs();
        let per = self.per_major() as u64;
        let mut base = format!("{sign}{}{}", self.prefix(), self.group(abs / per));
        if self.minor_units > 0 {
            let width = usize::from(self.minor_units);
            base.push_str(&format!(".{:0width$}", abs % per));
        }
        let major = abs as f64 / per as f64;
        match self.words().iter().find(|(scale, _)| major >= *scale) {
            Some(&(scale, word)) => format!("{base} ({:.2} {word})", major / scale),
            None => base,
        }
    }

    /// An amount for sentences: `Rs 4.55 crore`, `Rs 1.23 lakh`, `$2.30 million`, `$2,304`.
    pub fn short(&self, minor: i64) -> String {
        let major = self.major(minor);
        let sign = if major < 0.0 { "-" } else { "" };
        let a = major.abs();
        match self.words().iter().find(|(scale, _)| a >= *scale) {
            Some(&(scale, word)) => format!("{sign}{}{:.2} {word}", self.prefix(), a / scale),
            None => format!("{sign}{}{}", self.prefix(), self.group(a.round() as u64)),
        }
    }

    /// A major amount rounded to whole units, with the symbol: `Rs 2,304`, `$2,304`.
    pub fn whole(&self, major: f64) -> String {
        let sign = if major < 0.0 { "-" } else { "" };
        format!(
            "{sign}{}{}",
            self.prefix(),
            self.group(major.abs().round() as u64)
        )
    }

    /// An axis label (no symbol): `5K`, `12.5 L`, `1.2 Cr` or `12.5M`; empty if not finite.
    pub fn axis(&self, minor: f64) -> String {
        if !minor.is_finite() {
            return String::new();
        }
        let major = minor / self.per_major() as f64;
        let sign = if major < 0.0 { "-" } else { "" };
        format!("{sign}{}", self.scaled(major.abs()))
    }

    /// A non-negative major amount in short form: `850`, `5K`, `12.5 L`, `3.4M`.
    fn scaled(&self, a: f64) -> String {
        let units: &[(f64, &str)] = match self.grouping {
            Grouping::Indian => &[(1e7, " Cr"), (1e5, " L"), (1e3, "K")],
            Grouping::Western => &[(1e9, "B"), (1e6, "M"), (1e3, "K")],
        };
        let (v, unit) = units
            .iter()
            .find(|(scale, _)| a >= *scale)
            .map_or((a, ""), |&(scale, unit)| (a / scale, unit));
        format!("{}{unit}", short_number(v))
    }
}

/// `major` major units as minor units (`per_major` of them a major unit), rounded half away
/// from zero: equal to `(major * per_major).round() as i64` for every input, without the
/// call into libm that `f64::round` is on baseline x86-64 (it was 2% of a large run: every
/// drawn price passes here). The truncating cast is one instruction, and `x - t` is exact
/// for any `x` within a unit of the integer `t`. The rounding step is added without a
/// branch: whether a random price's fraction is past one half is a coin toss, and branching
/// on it mispredicted half the time (3.7% of a 10M-customer run's time).
#[inline]
pub fn round_minor(major: f64, per_major: f64) -> i64 {
    let x = major * per_major;
    let t = x as i64;
    let frac = x - t as f64;
    t.saturating_add(i64::from(frac >= 0.5) - i64::from(frac <= -0.5))
}

/// At most three significant digits, trailing zeros dropped: `12.5`, `1.25`, `150`.
pub fn short_number(v: f64) -> String {
    let s = if v >= 100.0 {
        format!("{v:.0}")
    } else if v >= 10.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.2}")
    };
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        s
    }
}

/// Appends minor units as an exact decimal with `minor_units` places (`123456` with 2 ->
/// `1234.56`) to `out`.
#[inline]
pub fn push_plain(out: &mut Vec<u8>, minor: i64, minor_units: u8) {
    if minor < 0 {
        out.push(b'-');
    }
    let abs = minor.unsigned_abs();
    let per = 10u64.pow(u32::from(minor_units));
    let mut b = itoa::Buffer::new();
    out.extend_from_slice(b.format(abs / per).as_bytes());
    if minor_units > 0 {
        out.push(b'.');
        let frac = b.format(abs % per);
        for _ in frac.len()..usize::from(minor_units) {
            out.push(b'0');
        }
        out.extend_from_slice(frac.as_bytes());
    }
}

/// Parses an exact decimal with at most `minor_units` places into minor units (`1234.5`
/// with 2 -> `123450`); None if it is not one.
pub fn parse_plain(s: &str, minor_units: u8) -> Option<i64> {
    let (neg, s) = match s.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, s),
    };
    let (whole, frac) = s.split_once('.').unwrap_or((s, ""));
    let places = usize::from(minor_units);
    if whole.is_empty()
        || frac.len() > places
        || !whole.bytes().all(|b| b.is_ascii_digit())
        || !frac.bytes().all(|b| b.is_ascii_digit())
        || (s.contains('.') && frac.is_empty())
    {
        return None;
    }
    let per = 10i64.pow(u32::from(minor_units));
    let mut v = whole.parse::<i64>().ok()?.checked_mul(per)?;
    if !frac.is_empty() {
        let f: i64 = frac.parse().ok()?;
        v = v.checked_add(f.checked_mul(10i64.pow((places - frac.len()) as u32))?)?;
    }
    Some(if neg { -v } else { v })
}

/// Groups an integer the Indian way: `45471690` -> `4,54,71,690`.
pub fn group_indian(n: u64) -> String {
    let s = n.to_string();
    if s.len() <= 3 {
        return s;
    }
    let (head, last3) = s.split_at(s.len() - 3);
    let mut parts: Vec<&str> = Vec::new();
    let mut end = head.len();
    while end > 2 {
        parts.push(&head[end - 2..end]);
        end -= 2;
    }
    parts.push(&head[..end]);
    parts.reverse();
    format!("{},{last3}", parts.join(","))
}

/// Groups an integer in threes: `45471690` -> `45,471,690`.
pub fn group_western(n: u64) -> String {
    let s = n.to_string();
    let mut out = String::with_capacity(s.len() + s.len() / 3);
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn minor_units_round_half_away_from_zero_like_f64_round() {
        let mut rng = crate::rng::Stream::new(11, 0, 0, 0);
        let special = [
            0.0,
            -0.0,
            0.005,
            -0.005,
            0.015,
            1.005,
            2.675,
            -2.675,
            0.004_999_999_999_999_999,
            0.499_999_999_999_999_94,
            1e15,
            -1e15,
            9.3e16,
            -9.3e16,
            1e300,
            -1e300,
            f64::NAN,
            f64::INFINITY,
            f64::NEG_INFINITY,
        ];
        let random = (0..200_000).map(|k| {
            let magnitude = 10f64.powi(k % 9 - 2);
            (rng.unit_f64() - 0.5) * magnitude
        });
        let halves = (-2_000..2_000).map(|k| (f64::from(k) + 0.5) / 100.0);
        for rupees in special.into_iter().chain(random).chain(halves) {
            assert_eq!(
                round_minor(rupees, 100.0),
                (rupees * 100.0).round() as i64,
                "{rupees:e}"
            );
        }
    }

    #[test]
    fn iso_codes_give_symbol_minor_units_and_grouping() {
        let inr = Currency::from_code("INR").unwrap();
        assert_eq!((inr.symbol.as_str(), inr.minor_units), ("₹", 2));
        assert_eq!(inr.grouping, Grouping::Indian);
        let usd = Currency::from_code("usd").unwrap();
        assert_eq!(
            (usd.code.as_str(), usd.symbol.as_str(), usd.minor_units),
            ("USD", "$", 2)
        );
        assert_eq!(usd.grouping, Grouping::Western);
        let jpy = Currency::from_code("JPY").unwrap();
        assert_eq!((jpy.symbol.as_str(), jpy.minor_units), ("¥", 0));
        assert_eq!(Currency::from_code("KWD").unwrap().minor_units, 3);
        assert!(Currency::from_code("XYZ").is_none());
    }

    #[test]
    fn amounts_for_machines_are_exact_in_any_minor_units() {
        let inr = Currency::india();
        assert_eq!(inr.plain(123_456), "1234.56");
        assert_eq!(inr.plain(-5), "-0.05");
        assert_eq!(inr.plain(0), "0.00");
        let jpy = Currency::from_code("JPY").unwrap();
        assert_eq!(jpy.plain(123_456), "123456");
        let kwd = Currency::from_code("KWD").unwrap();
        assert_eq!(kwd.plain(1_005), "1.005");
        for (c, minor) in [(&inr, 123_456), (&inr, -5), (&jpy, 987), (&kwd, -1_005)] {
            assert_eq!(parse_plain(&c.plain(minor), c.minor_units), Some(minor));
        }
        assert_eq!(parse_plain("12.5", 2), Some(1_250));
        assert_eq!(parse_plain("12.555", 2), None);
        assert_eq!(parse_plain("12.", 2), None);
        assert_eq!(parse_plain("1e3", 2), None);
        assert_eq!(inr.to_minor(12.345), 1_235);
        assert_eq!(jpy.to_minor(298.4), 298);
        assert_eq!(kwd.to_minor(1.0), 1_000);
    }

    #[test]
    fn amounts_for_readers_follow_the_grouping() {
        let inr = Currency::india();
        assert_eq!(inr.human(4_547_169_010), "Rs 4,54,71,690.10 (4.55 crore)");
        assert_eq!(inr.human(12_345_678), "Rs 1,23,456.78 (1.23 lakh)");
        assert_eq!(inr.human(-250), "-Rs 2.50");
        assert_eq!(inr.short(4_547_169_010), "Rs 4.55 crore");
        assert_eq!(inr.short(230_449), "Rs 2,304");
        assert_eq!(inr.whole(2_304.4), "Rs 2,304");
        assert_eq!(inr.axis(1.2e9), "1.2 Cr");
        assert_eq!(inr.axis(500_000.0), "5K");
        assert_eq!(inr.axis(-15_000_000.0), "-1.5 L");
        assert_eq!(inr.axis(f64::NAN), "");
        let usd = Currency::from_code("USD").unwrap();
        assert_eq!(usd.human(4_547_169_010), "$45,471,690.10 (45.47 million)");
        assert_eq!(usd.human(-1_200), "-$12.00");
        assert_eq!(usd.short(125_000_000), "$1.25 million");
        let jpy = Currency::from_code("JPY").unwrap();
        assert_eq!(jpy.human(2_304), "¥2,304");
        assert_eq!(usd.axis(3.4e11), "3.4B");
        assert_eq!(usd.axis(85_000.0), "850");
        assert_eq!(group_western(1_000), "1,000");
        assert_eq!(group_western(999), "999");
        assert_eq!(group_western(1_234_567), "1,234,567");
        assert_eq!(group_indian(45_471_690), "4,54,71,690");
    }
}
