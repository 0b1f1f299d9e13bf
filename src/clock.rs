//! Wall-clock and calendar helpers shared by every part that writes a time: the
//! webhook's `timestamp`, the checkpoint's `saved_at`, dead letters, logs, `/health`.
//! Plain functions of the system clock; it knows nothing of the pipeline.

use std::time::{SystemTime, UNIX_EPOCH};

/// Seconds since the Unix epoch now (0 if the clock is before 1970).
pub fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

/// Formats unix seconds as RFC 3339 UTC (`2026-11-23T10:15:00Z`).
pub fn rfc3339_utc(unix_seconds: i64) -> String {
    let mut out = Vec::with_capacity(20);
    write_rfc3339_utc(&mut out, unix_seconds);
    // Only ASCII digits and separators were written.
    String::from_utf8(out).unwrap_or_default()
}

/// RFC 3339 in UTC: `2026-11-23T10:15:00Z`, or with `fraction` the nanoseconds without
/// trailing zeros (`…:00.123Z`), the way Go marshals a `time.Time` in UTC.
pub fn rfc3339(t: SystemTime, fraction: bool) -> String {
    // Before 1970 only with a broken clock; the epoch is a visible, harmless answer.
    let since = t.duration_since(UNIX_EPOCH).unwrap_or_default();
    let mut s = rfc3339_utc(since.as_secs() as i64);
    let nanos = since.subsec_nanos();
    if fraction && nanos != 0 {
        s.pop(); // the Z, put back after the fraction
        let frac = format!("{nanos:09}");
        s.push('.');
        s.push_str(frac.trim_end_matches('0'));
        s.push('Z');
    }
    s
}

/// A UTC calendar date and time of day.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Civil {
    pub year: i64,
    pub month: u32,
    pub day: u32,
    pub hour: u32,
    pub minute: u32,
    pub second: u32,
}

/// Unix seconds as a proleptic Gregorian UTC date and time (Howard Hinnant's
/// `civil_from_days`; exact for the whole i64 range that matters, no tables).
pub fn civil_from_unix(unix_seconds: i64) -> Civil {
    let days = unix_seconds.div_euclid(86_400);
    let secs_of_day = unix_seconds.rem_euclid(86_400) as u32;
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097); // [0, 146096]
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365; // [0, 399]
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100); // [0, 365]
    let mp = (5 * doy + 2) / 153; // [0, 11], March-based
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    Civil {
        year,
        month,
        day,
        hour: secs_of_day / 3_600,
        minute: secs_of_day / 60 % 60,
        second: secs_of_day % 60,
    }
}

pub fn write_rfc3339_utc(out: &mut Vec<u8>, unix_seconds: i64) {
    let c = civil_from_unix(unix_seconds);
    if (0..=9999).contains(&c.year) {
        push_digits(out, c.year as u32, 4);
    } else {
        // Outside RFC 3339's range; still unambiguous.
        out.extend_from_slice(c.year.to_string().as_bytes());
    }
    out.push(b'-');
    push_digits(out, c.month, 2);
    out.push(b'-');
    push_digits(out, c.day, 2);
    out.push(b'T');
    push_digits(out, c.hour, 2);
    out.push(b':');
    push_digits(out, c.minute, 2);
    out.push(b':');
    push_digits(out, c.second, 2);
    out.push(b'Z');
}

/// Appends `v` as exactly `width` zero-padded digits.
fn push_digits(out: &mut Vec<u8>, v: u32, width: usize) {
    let mut buf = [b'0'; 10];
    let mut v = v;
    for d in buf[..width].iter_mut().rev() {
        *d = b'0' + (v % 10) as u8;
        v /= 10;
    }
    out.extend_from_slice(&buf[..width]);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_formatting() {
        assert_eq!(rfc3339_utc(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339_utc(1_795_428_900), "2026-11-23T10:15:00Z");
        assert_eq!(rfc3339_utc(1_709_214_301), "2024-02-29T13:45:01Z");
        assert_eq!(rfc3339_utc(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(rfc3339_utc(4_107_542_399), "2100-02-28T23:59:59Z");
        assert_eq!(rfc3339_utc(4_294_967_295), "2106-02-07T06:28:15Z");
        assert_eq!(rfc3339_utc(-1), "1969-12-31T23:59:59Z");
        assert_eq!(rfc3339_utc(253_402_300_799), "9999-12-31T23:59:59Z");
    }
}
