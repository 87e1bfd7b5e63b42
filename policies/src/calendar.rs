//! UTC calendar arithmetic for quota periods, from Unix seconds (Howard Hinnant's
//! days-from-civil algorithms), so no date library is needed.

use crate::spec::QuotaPeriod;

const SECS_PER_DAY: u64 = 86_400;

/// `(year, month 1..=12, day 1..=31)` of the day `days` after 1970-01-01.
pub fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    // Both are in range by construction (1..=31, 1..=12).
    (year, month as u32, day as u32)
}

/// Days from 1970-01-01 to `year-month-day` (month 1..=12).
pub fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let (month, day) = (i64::from(month), i64::from(day));
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let yoe = year - era * 400;
    let mp = if month > 2 { month - 3 } else { month + 9 };
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The index of the period holding `unix_secs`: days since the epoch for `Day`, months since
/// January 1970 for `Month`.
pub fn period_index(per: QuotaPeriod, unix_secs: u64) -> u32 {
    let days = unix_secs / SECS_PER_DAY;
    match per {
        QuotaPeriod::Day => u32::try_from(days).unwrap_or(u32::MAX),
        QuotaPeriod::Month => {
            let (y, m, _) = civil_from_days(days as i64);
            u32::try_from((y - 1970) * 12 + i64::from(m) - 1).unwrap_or(u32::MAX)
        }
    }
}

/// Unix seconds at which period `index` ends (the next period starts).
pub fn period_end(per: QuotaPeriod, index: u32) -> u64 {
    match per {
        QuotaPeriod::Day => (u64::from(index) + 1) * SECS_PER_DAY,
        QuotaPeriod::Month => {
            let next = i64::from(index) + 1;
            let (y, m) = (1970 + next.div_euclid(12), next.rem_euclid(12) as u32 + 1);
            days_from_civil(y, m, 1).max(0) as u64 * SECS_PER_DAY
        }
    }
}

/// `day:2026-11-27` or `month:2026-11`.
pub fn period_name(per: QuotaPeriod, index: u32) -> String {
    match per {
        QuotaPeriod::Day => {
            let (y, m, d) = civil_from_days(i64::from(index));
            format!("day:{y:04}-{m:02}-{d:02}")
        }
        QuotaPeriod::Month => {
            let i = i64::from(index);
            format!("month:{:04}-{:02}", 1970 + i / 12, i % 12 + 1)
        }
    }
}

/// The inverse of [`period_name`]; `None` for anything else.
pub fn parse_period_name(s: &str) -> Option<(QuotaPeriod, u32)> {
    let num = |s: &str, len: usize| -> Option<u32> {
        (s.len() == len && s.bytes().all(|b| b.is_ascii_digit()))
            .then(|| s.parse().ok())
            .flatten()
    };
    if let Some(date) = s.strip_prefix("day:") {
        let mut parts = date.split('-');
        let (y, m, d) = (
            num(parts.next()?, 4)?,
            num(parts.next()?, 2)?,
            num(parts.next()?, 2)?,
        );
        if parts.next().is_some() || y < 1970 || !(1..=12).contains(&m) || !(1..=31).contains(&d) {
            return None;
        }
        let days = days_from_civil(i64::from(y), m, d);
        // Reject dates like 02-31 that roll into the next month.
        (civil_from_days(days) == (i64::from(y), m, d))
            .then(|| u32::try_from(days).ok())
            .flatten()
            .map(|i| (QuotaPeriod::Day, i))
    } else if let Some(month) = s.strip_prefix("month:") {
        let (y, m) = month.split_once('-')?;
        let (y, m) = (num(y, 4)?, num(m, 2)?);
        if y < 1970 || !(1..=12).contains(&m) {
            return None;
        }
        Some((QuotaPeriod::Month, (y - 1970) * 12 + m - 1))
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn converts_known_dates() {
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        // 2026-11-27 is day 20_784.
        assert_eq!(days_from_civil(2026, 11, 27), 20_784);
        assert_eq!(civil_from_days(20_784), (2026, 11, 27));
        assert_eq!(civil_from_days(days_from_civil(2024, 2, 29)), (2024, 2, 29));
        assert_eq!(
            days_from_civil(2000, 3, 1) - days_from_civil(2000, 2, 28),
            2
        );
    }

    #[test]
    fn round_trips_every_day_for_three_centuries() {
        for days in -1000..110_000 {
            let (y, m, d) = civil_from_days(days);
            assert_eq!(days_from_civil(y, m, d), days);
        }
    }

    #[test]
    fn names_and_parses_periods() {
        let t = 20_784 * 86_400 + 3_600; // 2026-11-27T01:00:00Z
        let day = period_index(QuotaPeriod::Day, t);
        let month = period_index(QuotaPeriod::Month, t);
        assert_eq!(period_name(QuotaPeriod::Day, day), "day:2026-11-27");
        assert_eq!(period_name(QuotaPeriod::Month, month), "month:2026-11");
        assert_eq!(
            parse_period_name("day:2026-11-27"),
            Some((QuotaPeriod::Day, day))
        );
        assert_eq!(
            parse_period_name("month:2026-11"),
            Some((QuotaPeriod::Month, month))
        );
        assert_eq!(parse_period_name("day:2026-02-31"), None);
        assert_eq!(parse_period_name("week:2026-11"), None);
        assert_eq!(period_end(QuotaPeriod::Day, day), 20_785 * 86_400);
        assert_eq!(
            period_end(QuotaPeriod::Month, month),
            days_from_civil(2026, 12, 1) as u64 * 86_400
        );
        let december = period_index(
            QuotaPeriod::Month,
            days_from_civil(2026, 12, 5) as u64 * 86_400,
        );
        assert_eq!(
            period_end(QuotaPeriod::Month, december),
            days_from_civil(2027, 1, 1) as u64 * 86_400
        );
    }
}
