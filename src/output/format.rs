//! Number formatting for outputs and the console: paise as rupees, Indian digit grouping.

/// Appends paise as rupees with two decimals (`123456` -> `1234.56`) to `out`.
#[inline]
pub fn push_rupees(out: &mut Vec<u8>, paise: i64) {
    if paise < 0 {
        out.push(b'-');
    }
    let abs = paise.unsigned_abs();
    let mut b = itoa::Buffer::new();
    out.extend_from_slice(b.format(abs / 100).as_bytes());
    let cents = (abs % 100) as u8;
    out.extend_from_slice(&[b'.', b'0' + cents / 10, b'0' + cents % 10]);
}

/// The ISO dates (`2026-10-20`) of day indices counted from a start date, each formatted once:
/// the customer table names three days a row.
#[derive(Debug, Clone)]
pub struct DayNames {
    start: chrono::NaiveDate,
    names: Vec<String>,
}

impl DayNames {
    /// Dates of days counted from `start` (day 0).
    pub fn new(start: chrono::NaiveDate) -> Self {
        Self {
            start,
            names: Vec::new(),
        }
    }

    /// Makes days `0..=day` ready for [`DayNames::get`].
    pub fn prepare(&mut self, day: i32) {
        while self.names.len() as i64 <= i64::from(day) {
            let d = self.names.len() as i64;
            self.names.push(Self::format(self.start, d));
        }
    }

    /// The date of `day`: prepared days are looked up, others formatted.
    pub fn get(&self, day: i32) -> std::borrow::Cow<'_, str> {
        match usize::try_from(day).ok().and_then(|d| self.names.get(d)) {
            Some(name) => name.as_str().into(),
            None => Self::format(self.start, i64::from(day)).into(),
        }
    }

    fn format(start: chrono::NaiveDate, day: i64) -> String {
        (start + chrono::Duration::days(day))
            .format("%Y-%m-%d")
            .to_string()
    }
}

/// Paise as a rupee string with two decimals, no grouping (`1234.56`).
pub fn rupees(paise: i64) -> String {
    let mut v = Vec::with_capacity(16);
    push_rupees(&mut v, paise);
    String::from_utf8(v).unwrap_or_default()
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

/// A rupee amount for people: `Rs 4,54,71,690.10 (4.55 crore)`.
pub fn rupees_human(paise: i64) -> String {
    let sign = if paise < 0 { "-" } else { "" };
    let abs = paise.unsigned_abs();
    let whole = group_indian(abs / 100);
    let base = format!("{sign}Rs {whole}.{:02}", abs % 100);
    let rs = abs as f64 / 100.0;
    if rs >= 1e7 {
        format!("{base} ({:.2} crore)", rs / 1e7)
    } else if rs >= 1e5 {
        format!("{base} ({:.2} lakh)", rs / 1e5)
    } else {
        base
    }
}

/// A short rupee amount for sentences: `Rs 4.55 crore`, `Rs 1.23 lakh`, `Rs 2,304`.
pub fn rupees_short(paise: i64) -> String {
    let rs = paise as f64 / 100.0;
    let sign = if rs < 0.0 { "-" } else { "" };
    let a = rs.abs();
    if a >= 1e7 {
        format!("{sign}Rs {:.2} crore", a / 1e7)
    } else if a >= 1e5 {
        format!("{sign}Rs {:.2} lakh", a / 1e5)
    } else {
        format!("{sign}Rs {}", group_indian(a.round() as u64))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rupees_have_two_decimals() {
        assert_eq!(rupees(123_456), "1234.56");
        assert_eq!(rupees(5), "0.05");
        assert_eq!(rupees(-250), "-2.50");
    }

    #[test]
    fn day_names_are_iso_dates_prepared_or_not() {
        let start = chrono::NaiveDate::from_ymd_opt(2026, 12, 30).unwrap();
        let mut names = DayNames::new(start);
        assert_eq!(names.get(3), "2027-01-02", "not prepared: formatted");
        names.prepare(40);
        assert_eq!(names.get(0), "2026-12-30");
        assert_eq!(names.get(3), "2027-01-02");
        assert_eq!(names.get(40), "2027-02-08");
        assert_eq!(names.get(-1), "2026-12-29");
    }

    #[test]
    fn indian_grouping() {
        assert_eq!(group_indian(999), "999");
        assert_eq!(group_indian(1_000), "1,000");
        assert_eq!(group_indian(100_000), "1,00,000");
        assert_eq!(group_indian(45_471_690), "4,54,71,690");
        assert_eq!(
            rupees_human(4_547_169_010),
            "Rs 4,54,71,690.10 (4.55 crore)"
        );
        assert_eq!(rupees_human(12_345_600), "Rs 1,23,456.00 (1.23 lakh)");
        assert_eq!(rupees_short(4_547_169_010), "Rs 4.55 crore");
        assert_eq!(rupees_short(12_345_600), "Rs 1.23 lakh");
        assert_eq!(rupees_short(230_418), "Rs 2,304");
    }
}
