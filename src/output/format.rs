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
