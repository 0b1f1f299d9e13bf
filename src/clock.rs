//! Wall-clock and calendar helpers shared by every part that writes a time: the
//! webhook's `timestamp`, the checkpoint's `saved_at`, dead letters, logs, `/health`.
//! Plain functions of the system clock on top of the `time` crate (already linked
//! through simplelog); it knows nothing of the pipeline.

use std::time::{SystemTime, UNIX_EPOCH};

use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

/// Seconds since the Unix epoch now (0 if the clock is before 1970).
pub fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

/// 0000-01-01T00:00:00Z and 9999-12-31T23:59:59Z: the range RFC 3339 can write.
const FIRST: i64 = -62_167_219_200;
const LAST: i64 = 253_402_300_799;

/// Unix seconds as a UTC date and time. Outside years 0000–9999 (which RFC 3339 cannot
/// write and no caller produces: binlog timestamps are u32, the clock is "now") it
/// saturates to the nearest end, so formatting never fails.
pub fn utc(unix_seconds: i64) -> OffsetDateTime {
    // In range after the clamp; the fallback is unreachable but keeps this panic-free.
    OffsetDateTime::from_unix_timestamp(unix_seconds.clamp(FIRST, LAST))
        .unwrap_or(OffsetDateTime::UNIX_EPOCH)
}

/// Formats unix seconds as RFC 3339 UTC (`2026-11-23T10:15:00Z`).
pub fn rfc3339_utc(unix_seconds: i64) -> String {
    let mut out = Vec::with_capacity(20);
    write_rfc3339_utc(&mut out, unix_seconds);
    // Only ASCII digits and separators were written.
    String::from_utf8(out).unwrap_or_default()
}

/// Appends unix seconds as RFC 3339 UTC (`2026-11-23T10:15:00Z`). On the hot path: the
/// webhook envelope's `timestamp` of every event.
pub fn write_rfc3339_utc(out: &mut Vec<u8>, unix_seconds: i64) {
    // Writing into a Vec cannot fail, and `utc` keeps the year in 0000–9999, the only
    // other reason Rfc3339 refuses a value.
    let _ = utc(unix_seconds).format_into(out, &Rfc3339);
}

/// RFC 3339 in UTC: `2026-11-23T10:15:00Z`, or with `fraction` the nanoseconds without
/// trailing zeros (`…:00.123Z`), the way Go marshals a `time.Time` in UTC. A time
/// before 1970 (only with a broken clock) is shown as the epoch: visible and harmless.
pub fn rfc3339(t: SystemTime, fraction: bool) -> String {
    let since = t.duration_since(UNIX_EPOCH).unwrap_or_default();
    let mut at = utc(since.as_secs().min(LAST as u64) as i64);
    if fraction {
        // Whole seconds cannot overflow a nanosecond; the fallback keeps the seconds.
        at = at.replace_nanosecond(since.subsec_nanos()).unwrap_or(at);
    }
    // Rfc3339 writes `Z` for UTC and the fraction trimmed of trailing zeros, or none.
    at.format(&Rfc3339).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

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

    #[test]
    fn out_of_range_saturates() {
        assert_eq!(rfc3339_utc(i64::MAX), "9999-12-31T23:59:59Z");
        assert_eq!(rfc3339_utc(i64::MIN), "0000-01-01T00:00:00Z");
    }

    #[test]
    fn system_time_with_and_without_fraction() {
        assert_eq!(rfc3339(UNIX_EPOCH, true), "1970-01-01T00:00:00Z");
        let t = UNIX_EPOCH + Duration::new(1_709_214_301, 120_000_000);
        assert_eq!(rfc3339(t, true), "2024-02-29T13:45:01.12Z");
        assert_eq!(rfc3339(t, false), "2024-02-29T13:45:01Z");
        let t = UNIX_EPOCH + Duration::new(1_709_214_301, 1);
        assert_eq!(rfc3339(t, true), "2024-02-29T13:45:01.000000001Z");
        assert_eq!(
            rfc3339(UNIX_EPOCH - Duration::from_secs(5), true),
            "1970-01-01T00:00:00Z"
        );
    }
}
