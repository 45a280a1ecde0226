//! Dates for outputs, formatted once per day (money is formatted by [`crate::money`]).

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

#[cfg(test)]
mod tests {
    use super::*;

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
}
