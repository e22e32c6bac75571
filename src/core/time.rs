//! Time as unix milliseconds inside, RFC 3339 on the wire. Pure calendar arithmetic: the core
//! never reads a clock (`SystemTime::now()` panics on wasm32; the glue passes `now` in).

pub type Millis = i64;

pub const SECOND: Millis = 1000;
pub const DAY: Millis = 86_400 * SECOND;

// Howard Hinnant's civil-date algorithms (public domain), proleptic Gregorian calendar.
fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (i64::from(m) + 9) % 12;
    let doy = (153 * mp + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

fn days_in_month(y: i64, m: u32) -> u32 {
    match m {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        _ if (y % 4 == 0 && y % 100 != 0) || y % 400 == 0 => 29,
        _ => 28,
    }
}

/// `2026-11-23T10:00:00.000Z`
pub fn format_rfc3339(ms: Millis) -> String {
    let days = ms.div_euclid(DAY);
    let rem = ms.rem_euclid(DAY);
    let (y, m, d) = civil_from_days(days);
    let secs = rem / 1000;
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{:03}Z",
        secs / 3600,
        (secs / 60) % 60,
        secs % 60,
        rem % 1000
    )
}

/// Accepts `YYYY-MM-DDTHH:MM:SS[.frac](Z|+HH:MM|-HH:MM)` (`t`/`z`/space allowed per RFC 3339).
pub fn parse_rfc3339(s: &str) -> Option<Millis> {
    let b = s.as_bytes();
    if b.len() < 20 || b.len() > 40 {
        return None;
    }
    let num = |r: std::ops::Range<usize>| -> Option<i64> {
        let part = b.get(r)?;
        if !part.iter().all(u8::is_ascii_digit) {
            return None;
        }
        std::str::from_utf8(part).ok()?.parse().ok()
    };
    if b[4] != b'-' || b[7] != b'-' || !matches!(b[10], b'T' | b't' | b' ') || b[13] != b':' || b[16] != b':' {
        return None;
    }
    let (y, mo, d) = (num(0..4)?, num(5..7)? as u32, num(8..10)? as u32);
    let (h, mi, sec) = (num(11..13)?, num(14..16)?, num(17..19)?);
    if !(1..=12).contains(&mo) || d == 0 || d > days_in_month(y, mo) || h > 23 || mi > 59 || sec > 59 {
        return None;
    }
    let mut i = 19;
    let mut frac_ms = 0i64;
    if b[i] == b'.' {
        let start = i + 1;
        i = start;
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
        }
        if i == start {
            return None;
        }
        // Keep millisecond precision; further digits are truncated.
        let digits = &s[start..i.min(start + 3)];
        frac_ms = digits.parse::<i64>().ok()? * 10i64.pow(3 - digits.len() as u32);
    }
    let offset_min = match b.get(i)? {
        b'Z' | b'z' if i + 1 == b.len() => 0,
        sign @ (b'+' | b'-') if i + 6 == b.len() && b[i + 3] == b':' => {
            let (oh, om) = (num(i + 1..i + 3)?, num(i + 4..i + 6)?);
            if oh > 23 || om > 59 {
                return None;
            }
            let off = oh * 60 + om;
            if *sign == b'+' {
                off
            } else {
                -off
            }
        }
        _ => return None,
    };
    let days = days_from_civil(y, mo, d);
    let ms = ((days * 86_400 + h * 3600 + mi * 60 + sec - offset_min * 60) * 1000) + frac_ms;
    // An offset can carry 9999-12-31 into year 10000 (or 0000-01-01 into year -1) in UTC, which
    // RFC 3339's four-digit years cannot write back: such an instant is refused, so every
    // accepted time formats and parses to itself (found by the rfc3339 fuzz target).
    (MIN_RFC3339_MS..MAX_RFC3339_MS).contains(&ms).then_some(ms)
}

/// 0000-01-01T00:00:00Z and 10000-01-01T00:00:00Z.
const MIN_RFC3339_MS: Millis = -62_167_219_200_000;
const MAX_RFC3339_MS: Millis = 253_402_300_800_000;

/// Adds calendar months, clamping the day (Jan 31 + 1 month = Feb 28/29).
pub fn add_months(ms: Millis, months: u32) -> Millis {
    let days = ms.div_euclid(DAY);
    let rem = ms.rem_euclid(DAY);
    let (y, m, d) = civil_from_days(days);
    let total = y * 12 + i64::from(m - 1) + i64::from(months);
    let (ny, nm) = (total.div_euclid(12), (total.rem_euclid(12) + 1) as u32);
    let nd = d.min(days_in_month(ny, nm));
    days_from_civil(ny, nm, nd) * DAY + rem
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn format_and_parse_round_trip() {
        for ms in [
            0,
            1_795_000_000_123,
            951_782_400_000, /* 2000-02-29 */
            -1000,
            253_402_300_799_999,
        ] {
            assert_eq!(parse_rfc3339(&format_rfc3339(ms)), Some(ms), "{}", format_rfc3339(ms));
        }
        assert_eq!(format_rfc3339(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(format_rfc3339(951_782_400_000), "2000-02-29T00:00:00.000Z");
    }

    #[test]
    fn parse_accepts_offsets_and_fractions() {
        let base = parse_rfc3339("2026-11-23T10:00:00Z").unwrap();
        assert_eq!(parse_rfc3339("2026-11-23T11:30:00+01:30"), Some(base));
        assert_eq!(parse_rfc3339("2026-11-23T08:00:00-02:00"), Some(base));
        assert_eq!(parse_rfc3339("2026-11-23t10:00:00z"), Some(base));
        assert_eq!(parse_rfc3339("2026-11-23T10:00:00.5Z"), Some(base + 500));
        assert_eq!(parse_rfc3339("2026-11-23T10:00:00.123456789Z"), Some(base + 123));
        for edge in ["9999-12-31T23:59:59.999Z", "0000-01-01T00:00:00Z"] {
            let ms = parse_rfc3339(edge).unwrap();
            assert_eq!(parse_rfc3339(&format_rfc3339(ms)), Some(ms), "{edge}");
        }
    }

    #[test]
    fn parse_rejects_invalid_dates_and_shapes() {
        for bad in [
            "",
            "2026-11-23",
            "2026-11-23T10:00:00",
            "2026-13-01T00:00:00Z",
            "2026-02-29T00:00:00Z",
            "2026-04-31T00:00:00Z",
            "2026-11-23T24:00:00Z",
            "2026-11-23T10:60:00Z",
            "2026-11-23T10:00:00.Z",
            "2026-11-23T10:00:00+0100",
            "2026-11-23T10:00:00+24:00",
            "2026-11-23T10:00:00Zjunk",
            "+2026-11-23T10:00:00Z",
            "2026-1a-23T10:00:00Z",
            "in 3 days",
            // Valid text, but in UTC a year RFC 3339 cannot write (fuzz/regressions/rfc3339).
            "9999-12-31T23:30:00-01:00",
            "0000-01-01T00:30:00+01:00",
        ] {
            assert_eq!(parse_rfc3339(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn add_months_clamps_day_and_crosses_years() {
        let t = |s| parse_rfc3339(s).unwrap();
        assert_eq!(add_months(t("2026-01-31T12:00:00Z"), 1), t("2026-02-28T12:00:00Z"));
        assert_eq!(add_months(t("2024-01-31T12:00:00Z"), 1), t("2024-02-29T12:00:00Z"));
        assert_eq!(add_months(t("2026-11-23T10:00:00Z"), 6), t("2027-05-23T10:00:00Z"));
        assert_eq!(add_months(t("2026-11-23T10:00:00Z"), 12), t("2027-11-23T10:00:00Z"));
        assert_eq!(add_months(t("2024-02-29T00:00:00Z"), 12), t("2025-02-28T00:00:00Z"));
    }
}
