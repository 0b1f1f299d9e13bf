//! The Go tool's value encoding (`values: go`): how Go's `encoding/json` wrote numbers,
//! strings and `time.Time`, and the process's local time zone as Go's `time.Local`
//! saw it. Pure functions plus one zone loaded once; used by `encode` (the envelope)
//! and the row decoder (TIMESTAMP columns are local time in go-mysql's output).
//!
//! The time zone: Go reads `TZ` (unset: `/etc/localtime`; empty or `UTC`: UTC;
//! `:Name` or `Name`: the zoneinfo file of that name; `/path`: that file; anything it
//! cannot load: UTC) and looks each instant up in the file's transitions, and after the
//! last transition in the POSIX TZ rule of the file's footer (Go's `tzset`; "slim"
//! zoneinfo files rely on it). pikachu does the same in safe Rust, once at first use,
//! instead of asking libc (`localtime_r` is not safe to call from a multithreaded
//! program, which is why the `time` crate refuses it).

use std::sync::OnceLock;

/// Offsets of a time zone: sorted transition instants and the UTC offset from each.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Zone {
    /// (unix seconds, offset in seconds east of UTC in effect from then on).
    transitions: Vec<(i64, i32)>,
    /// The offset before the first transition (or always, without transitions).
    initial: i32,
    /// The footer's rule, for instants from the last transition on.
    rule: Option<Rule>,
}

/// A POSIX TZ rule (`CET-1CEST,M3.5.0,M10.5.0/3`): standard offset, and daylight
/// saving time between two yearly dates.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Rule {
    std: i32,
    /// (offset, start, end) of daylight saving time.
    dst: Option<(i32, RuleDate, RuleDate)>,
}

/// When a rule's daylight saving time starts or ends: a day and a local time (seconds).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum RuleDate {
    /// `Jn`: day 1-365, February 29 never counted.
    Julian(u16, i32),
    /// `n`: day 0-365, February 29 counted.
    Zero(u16, i32),
    /// `Mm.w.d`: month, week 1-5 (5: the last), weekday 0-6 (Sunday 0).
    Month(u8, u8, u8, i32),
}

impl RuleDate {
    /// Seconds from the start of `year` (local time) to this date and time.
    fn seconds_into(self, year: i32) -> i64 {
        let leap = time::util::is_leap_year(year);
        let (day0, secs) = match self {
            RuleDate::Julian(n, t) => {
                let n = i64::from(n.clamp(1, 365));
                (if leap && n >= 60 { n } else { n - 1 }, t)
            }
            RuleDate::Zero(n, t) => (i64::from(n.min(365)), t),
            RuleDate::Month(m, w, d, t) => {
                let month = time::Month::try_from(m.clamp(1, 12)).unwrap_or(time::Month::January);
                let Ok(first) = time::Date::from_calendar_date(year, month, 1) else {
                    return 0;
                };
                let wday = i64::from(first.weekday().number_days_from_sunday());
                let mut day =
                    (i64::from(d) - wday).rem_euclid(7) + 7 * (i64::from(w.clamp(1, 5)) - 1);
                let len = i64::from(time::util::days_in_month(month, year));
                while day >= len {
                    day -= 7;
                }
                (i64::from(first.ordinal()) - 1 + day, t)
            }
        };
        day0 * 86_400 + i64::from(secs)
    }
}

impl Rule {
    fn offset_at(&self, unix_seconds: i64) -> i32 {
        let Some((dst, start, end)) = self.dst else {
            return self.std;
        };
        let year = crate::clock::utc(unix_seconds.saturating_add(i64::from(self.std))).year();
        let Ok(jan1) = time::Date::from_calendar_date(year, time::Month::January, 1) else {
            return self.std;
        };
        let year_start = jan1.midnight().assume_utc().unix_timestamp();
        // Start is given in standard time, end in daylight time.
        let s = year_start + start.seconds_into(year) - i64::from(self.std);
        let e = year_start + end.seconds_into(year) - i64::from(dst);
        let in_dst = if s < e {
            (s..e).contains(&unix_seconds)
        } else {
            !(e..s).contains(&unix_seconds)
        };
        if in_dst {
            dst
        } else {
            self.std
        }
    }

    /// Parses a POSIX TZ string; `None` for what it cannot read.
    fn parse(text: &str) -> Option<Rule> {
        let mut p = text.as_bytes();
        name(&mut p)?;
        let std = -offset(&mut p)?;
        if p.is_empty() {
            return Some(Rule { std, dst: None });
        }
        name(&mut p)?;
        let dst_off = if p.first().is_some_and(|&c| c != b',') {
            -offset(&mut p)?
        } else {
            std + 3600
        };
        let (start, end) = if p.is_empty() {
            // Go's default when the rule has none: the US rule.
            (
                RuleDate::Month(3, 2, 0, 7200),
                RuleDate::Month(11, 1, 0, 7200),
            )
        } else {
            p = p.strip_prefix(b",")?;
            let start = rule_date(&mut p)?;
            p = p.strip_prefix(b",")?;
            (start, rule_date(&mut p)?)
        };
        p.is_empty().then_some(Rule {
            std,
            dst: Some((dst_off, start, end)),
        })
    }
}

fn name(p: &mut &[u8]) -> Option<()> {
    if let Some(rest) = p.strip_prefix(b"<") {
        let end = rest.iter().position(|&c| c == b'>')?;
        *p = &rest[end + 1..];
    } else {
        let n = p.iter().take_while(|c| c.is_ascii_alphabetic()).count();
        if n < 3 {
            return None;
        }
        *p = &p[n..];
    }
    Some(())
}

fn number(p: &mut &[u8]) -> Option<i32> {
    let n = p.iter().take_while(|c| c.is_ascii_digit()).count();
    let v = std::str::from_utf8(p.get(..n)?).ok()?.parse().ok()?;
    *p = &p[n..];
    Some(v)
}

/// `[+-]hh[:mm[:ss]]` in seconds.
fn offset(p: &mut &[u8]) -> Option<i32> {
    let sign = match p.first() {
        Some(b'-') => {
            *p = &p[1..];
            -1
        }
        Some(b'+') => {
            *p = &p[1..];
            1
        }
        _ => 1,
    };
    let mut secs = number(p)? * 3600;
    for unit in [60, 1] {
        match p.strip_prefix(b":") {
            Some(rest) => {
                *p = rest;
                secs += number(p)? * unit;
            }
            None => break,
        }
    }
    Some(sign * secs)
}

fn rule_date(p: &mut &[u8]) -> Option<RuleDate> {
    let date = |p: &mut &[u8]| -> Option<(u8, [i32; 3])> {
        match p.first()? {
            b'J' => {
                *p = &p[1..];
                Some((b'J', [number(p)?, 0, 0]))
            }
            b'M' => {
                *p = &p[1..];
                let m = number(p)?;
                *p = p.strip_prefix(b".")?;
                let w = number(p)?;
                *p = p.strip_prefix(b".")?;
                Some((b'M', [m, w, number(p)?]))
            }
            _ => Some((b'n', [number(p)?, 0, 0])),
        }
    };
    let (kind, v) = date(p)?;
    let t = match p.strip_prefix(b"/") {
        Some(rest) => {
            *p = rest;
            offset(p)?
        }
        None => 7200,
    };
    Some(match kind {
        b'J' => RuleDate::Julian(u16::try_from(v[0]).ok()?, t),
        b'M' => RuleDate::Month(
            u8::try_from(v[0]).ok()?,
            u8::try_from(v[1]).ok()?,
            u8::try_from(v[2]).ok()?,
            t,
        ),
        _ => RuleDate::Zero(u16::try_from(v[0]).ok()?, t),
    })
}

impl Zone {
    pub const UTC: Zone = Zone {
        transitions: Vec::new(),
        initial: 0,
        rule: None,
    };

    /// A zone with one offset for all time.
    pub fn fixed(offset_seconds: i32) -> Zone {
        Zone {
            transitions: Vec::new(),
            initial: offset_seconds,
            rule: None,
        }
    }

    /// The offset (seconds east of UTC) in effect at `unix_seconds`.
    pub fn offset_at(&self, unix_seconds: i64) -> i32 {
        let n = self
            .transitions
            .partition_point(|&(at, _)| at <= unix_seconds);
        match (n, &self.rule) {
            (_, Some(rule)) if n == self.transitions.len() => rule.offset_at(unix_seconds),
            (0, _) => self.initial,
            (n, _) => self.transitions[n - 1].1,
        }
    }

    /// Parses a TZif file (RFC 8536, versions 1 to 4); `None` when it is not one.
    pub fn from_tzif(data: &[u8]) -> Option<Zone> {
        let (v1, rest) = tzif_block(data, 4)?;
        // Version 2+ repeats the data with 64-bit times after the version 1 block.
        if data.get(4).is_some_and(|&v| v >= b'2') {
            if let Some((mut zone, footer)) = tzif_block(rest, 8) {
                // The footer: "\n<POSIX TZ>\n".
                zone.rule = footer
                    .strip_prefix(b"\n")
                    .and_then(|f| f.split(|&c| c == b'\n').next())
                    .and_then(|f| std::str::from_utf8(f).ok())
                    .filter(|f| !f.is_empty())
                    .and_then(Rule::parse);
                return Some(zone);
            }
        }
        Some(v1)
    }
}

fn be(b: &[u8]) -> u64 {
    b.iter().fold(0u64, |acc, &x| (acc << 8) | u64::from(x))
}

/// One TZif header and data block with `time_size`-byte times; the zone and what
/// follows the block.
fn tzif_block(data: &[u8], time_size: usize) -> Option<(Zone, &[u8])> {
    if data.get(..4)? != b"TZif" {
        return None;
    }
    let count =
        |i: usize| -> Option<usize> { Some(be(data.get(20 + 4 * i..24 + 4 * i)?) as usize) };
    let (isutcnt, isstdcnt, leapcnt, timecnt, typecnt, charcnt) = (
        count(0)?,
        count(1)?,
        count(2)?,
        count(3)?,
        count(4)?,
        count(5)?,
    );
    let body = data.get(44..)?;
    let times = body.get(..timecnt * time_size)?;
    let idx = body.get(timecnt * time_size..timecnt * (time_size + 1))?;
    let types_at = timecnt * (time_size + 1);
    let types = body.get(types_at..types_at + typecnt * 6)?;
    let len = types_at + typecnt * 6 + charcnt + leapcnt * (time_size + 4) + isstdcnt + isutcnt;
    let rest = body.get(len..)?;
    let utoff = |t: usize| -> Option<i32> {
        let b = types.get(t * 6..t * 6 + 4)?;
        Some(i32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    };
    let is_dst = |t: usize| types.get(t * 6 + 4).is_some_and(|&d| d != 0);
    let mut transitions = Vec::with_capacity(timecnt);
    for i in 0..timecnt {
        let raw = be(&times[i * time_size..(i + 1) * time_size]);
        let at = if time_size == 4 {
            i64::from(raw as u32 as i32)
        } else {
            raw as i64
        };
        transitions.push((at, utoff(usize::from(idx[i]))?));
    }
    // Go's lookupFirstZone: before the first transition, the first standard-time type
    // (type 0 unless it is daylight time and a standard one exists).
    let first = if typecnt > 0 && is_dst(0) {
        (0..typecnt).find(|&t| !is_dst(t)).unwrap_or(0)
    } else {
        0
    };
    let initial = if typecnt > 0 { utoff(first)? } else { 0 };
    Some((
        Zone {
            transitions,
            initial,
            rule: None,
        },
        rest,
    ))
}

/// The zone Go's `time.Local` would be for this process's environment.
pub fn load_local_zone(tz: Option<&str>) -> Zone {
    let read = |path: &str| std::fs::read(path).ok().and_then(|d| Zone::from_tzif(&d));
    let zone = match tz {
        None => read("/etc/localtime"),
        Some(tz) => {
            let tz = tz.strip_prefix(':').unwrap_or(tz);
            if tz.is_empty() || tz == "UTC" {
                None
            } else if tz.starts_with('/') {
                read(tz)
            } else if tz.split('/').any(|part| part == "..") {
                None
            } else {
                let zoneinfo = std::env::var("ZONEINFO").ok();
                let found = zoneinfo
                    .iter()
                    .map(String::as_str)
                    .chain([
                        "/usr/share/zoneinfo",
                        "/usr/share/lib/zoneinfo",
                        "/usr/lib/locale/TZ",
                        "/etc/zoneinfo",
                    ])
                    .find_map(|dir| read(&format!("{dir}/{tz}")));
                found
            }
        }
    };
    zone.unwrap_or(Zone::UTC)
}

/// The process's local zone (`TZ`), loaded on first use.
pub fn local_zone() -> &'static Zone {
    static ZONE: OnceLock<Zone> = OnceLock::new();
    ZONE.get_or_init(|| load_local_zone(std::env::var("TZ").ok().as_deref()))
}

/// Civil date and time of `unix_seconds` shifted by `offset` seconds:
/// (year, month, day, hour, minute, second).
fn civil(unix_seconds: i64, offset: i32) -> (i32, u8, u8, u8, u8, u8) {
    let t = crate::clock::utc(unix_seconds.saturating_add(i64::from(offset)));
    (
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second(),
    )
}

fn push_num(out: &mut Vec<u8>, v: u32, width: usize) {
    let s = v.to_string();
    for _ in s.len()..width {
        out.push(b'0');
    }
    out.extend_from_slice(s.as_bytes());
}

/// go-mysql's TIMESTAMP column text: `time.Unix(secs, micros*1000)` in `time.Local`,
/// formatted `2006-01-02 15:04:05` plus `fsp` fraction digits (truncated, as Go's
/// `.000` layout does).
pub fn local_timestamp_text(zone: &Zone, secs: i64, micros: u32, fsp: u8) -> String {
    let (y, mo, d, h, mi, s) = civil(secs, zone.offset_at(secs));
    let mut out = Vec::with_capacity(26);
    push_num(&mut out, y.max(0) as u32, 4);
    out.push(b'-');
    push_num(&mut out, u32::from(mo), 2);
    out.push(b'-');
    push_num(&mut out, u32::from(d), 2);
    out.push(b' ');
    push_num(&mut out, u32::from(h), 2);
    out.push(b':');
    push_num(&mut out, u32::from(mi), 2);
    out.push(b':');
    push_num(&mut out, u32::from(s), 2);
    if fsp > 0 {
        out.push(b'.');
        let mut frac = Vec::with_capacity(6);
        push_num(&mut frac, micros, 6);
        out.extend_from_slice(&frac[..usize::from(fsp.min(6))]);
    }
    String::from_utf8(out).unwrap_or_default()
}

/// A `time.Time` in `time.Local` as Go's `MarshalJSON` writes it (RFC 3339 with the
/// nanoseconds trimmed of trailing zeros, `Z` or `±hh:mm`), with the quotes.
pub fn write_time_json(out: &mut Vec<u8>, zone: &Zone, secs: i64, nanos: u32) {
    let offset = zone.offset_at(secs);
    let (y, mo, d, h, mi, s) = civil(secs, offset);
    out.push(b'"');
    push_num(out, y.max(0) as u32, 4);
    out.push(b'-');
    push_num(out, u32::from(mo), 2);
    out.push(b'-');
    push_num(out, u32::from(d), 2);
    out.push(b'T');
    push_num(out, u32::from(h), 2);
    out.push(b':');
    push_num(out, u32::from(mi), 2);
    out.push(b':');
    push_num(out, u32::from(s), 2);
    if nanos > 0 {
        let mut frac = Vec::with_capacity(9);
        push_num(&mut frac, nanos, 9);
        while frac.last() == Some(&b'0') {
            frac.pop();
        }
        out.push(b'.');
        out.extend_from_slice(&frac);
    }
    if offset == 0 {
        out.push(b'Z');
    } else {
        out.push(if offset < 0 { b'-' } else { b'+' });
        let minutes = offset.unsigned_abs() / 60;
        push_num(out, minutes / 60, 2);
        out.push(b':');
        push_num(out, minutes % 60, 2);
    }
    out.push(b'"');
}

/// A float as Go's `encoding/json` writes it: the shortest digits that read back as
/// the same float32 (`single`) or float64, in `%f` form, or `%e` form (`1e+21`,
/// `1e-7`) below 1e-6 and from 1e21 on. Non-finite values (which Go refuses to
/// marshal and no column holds) are written as `null`.
pub fn write_float(out: &mut Vec<u8>, v: f64, single: bool) {
    if !v.is_finite() {
        out.extend_from_slice(b"null");
        return;
    }
    let abs = v.abs();
    let exponent_form = abs != 0.0
        && if single {
            let a = abs as f32;
            !(1e-6..1e21).contains(&a)
        } else {
            !(1e-6..1e21).contains(&abs)
        };
    let text = match (exponent_form, single) {
        (false, true) => format!("{}", v as f32),
        (false, false) => format!("{v}"),
        (true, true) => format!("{:e}", v as f32),
        (true, false) => format!("{v:e}"),
    };
    if exponent_form {
        // Rust writes `1e21` / `1.5e-7`; Go `1e+21` / `1.5e-7` (after its cleanup of
        // a one-digit negative exponent).
        match text.split_once('e') {
            Some((mantissa, exp)) => {
                out.extend_from_slice(mantissa.as_bytes());
                out.push(b'e');
                if !exp.starts_with('-') {
                    out.push(b'+');
                    if exp.len() < 2 {
                        out.push(b'0');
                    }
                }
                out.extend_from_slice(exp.as_bytes());
            }
            None => out.extend_from_slice(text.as_bytes()),
        }
    } else {
        out.extend_from_slice(text.as_bytes());
    }
}

const HEX: &[u8; 16] = b"0123456789abcdef";

/// Bytes as the JSON string Go's `encoding/json` writes for a `string` holding them:
/// `<`, `>`, `&`, U+2028 and U+2029 escaped (`json.Marshal`'s HTML escaping), control
/// characters escaped, and each byte that is not part of valid UTF-8 as `\ufffd`.
pub fn write_str(out: &mut Vec<u8>, bytes: &[u8]) {
    out.push(b'"');
    for chunk in bytes.utf8_chunks() {
        for c in chunk.valid().chars() {
            match c {
                '"' => out.extend_from_slice(b"\\\""),
                '\\' => out.extend_from_slice(b"\\\\"),
                '\n' => out.extend_from_slice(b"\\n"),
                '\r' => out.extend_from_slice(b"\\r"),
                '\t' => out.extend_from_slice(b"\\t"),
                '\u{8}' => out.extend_from_slice(b"\\b"),
                '\u{c}' => out.extend_from_slice(b"\\f"),
                '\u{2028}' => out.extend_from_slice(b"\\u2028"),
                '\u{2029}' => out.extend_from_slice(b"\\u2029"),
                c if (c as u32) < 0x20 || c == '<' || c == '>' || c == '&' => {
                    let b = c as u32 as u8;
                    out.extend_from_slice(b"\\u00");
                    out.push(HEX[usize::from(b >> 4)]);
                    out.push(HEX[usize::from(b & 15)]);
                }
                c => {
                    let mut buf = [0u8; 4];
                    out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
                }
            }
        }
        for _ in chunk.invalid() {
            out.extend_from_slice(b"\\ufffd");
        }
    }
    out.push(b'"');
}

/// A JSON value as Go's `json.Marshal` of the equivalent `any` writes it: object keys
/// sorted, Go's float and string forms. For MySQL JSON columns, whose text go-mysql
/// produced this way.
pub fn write_json(out: &mut Vec<u8>, value: &serde_json::Value) {
    use serde_json::Value as J;
    match value {
        J::Null => out.extend_from_slice(b"null"),
        J::Bool(b) => out.extend_from_slice(if *b { b"true" } else { b"false" }),
        J::Number(n) => {
            if let Some(i) = n.as_i64() {
                out.extend_from_slice(i.to_string().as_bytes());
            } else if let Some(u) = n.as_u64() {
                out.extend_from_slice(u.to_string().as_bytes());
            } else {
                write_float(out, n.as_f64().unwrap_or(f64::NAN), false);
            }
        }
        J::String(s) => write_str(out, s.as_bytes()),
        J::Array(items) => {
            out.push(b'[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_json(out, item);
            }
            out.push(b']');
        }
        J::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort_unstable();
            out.push(b'{');
            for (i, key) in keys.into_iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_str(out, key.as_bytes());
                out.push(b':');
                if let Some(v) = map.get(key) {
                    write_json(out, v);
                }
            }
            out.push(b'}');
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn float(v: f64, single: bool) -> String {
        let mut out = Vec::new();
        write_float(&mut out, v, single);
        String::from_utf8(out).unwrap()
    }

    fn s(bytes: &[u8]) -> String {
        let mut out = Vec::new();
        write_str(&mut out, bytes);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn floats_as_go_encoding_json() {
        // Go: json.Marshal(float64(x)) / json.Marshal(float32(x)).
        assert_eq!(float(1.0, false), "1");
        assert_eq!(float(1234.5, false), "1234.5");
        assert_eq!(float(0.1, false), "0.1");
        assert_eq!(float(-0.0, false), "-0");
        assert_eq!(float(1e21, false), "1e+21");
        assert_eq!(float(1e20, false), "100000000000000000000");
        assert_eq!(float(1.5e-7, false), "1.5e-7");
        assert_eq!(float(1e-6, false), "0.000001");
        assert_eq!(
            float(1.2345678901234567e-10, false),
            "1.2345678901234568e-10"
        );
        assert_eq!(float(f64::from(1.1f32), true), "1.1");
        assert_eq!(float(f64::from(3.4028235e38f32), true), "3.4028235e+38");
        assert_eq!(float(f64::NAN, false), "null");
    }

    #[test]
    fn strings_as_go_encoding_json() {
        assert_eq!(s(b"a<b>&c"), r#""a\u003cb\u003e\u0026c""#);
        assert_eq!(s("\u{2028}\u{2029}é😀".as_bytes()), "\"\\u2028\\u2029é😀\"");
        assert_eq!(
            s(b"q\"\\\n\r\t\x08\x0c\x00\x1f\x7f"),
            r#""q\"\\\n\r\t\b\f\u0000\u001f"#.to_owned() + "\u{7f}\""
        );
        // Each byte outside valid UTF-8 is one U+FFFD (Go's utf8.DecodeRune gives width 1).
        assert_eq!(s(b"\xe9t\xe9"), r#""\ufffdt\ufffd""#);
        assert_eq!(s(b"\xf0\x9f\x98A"), r#""\ufffd\ufffd\ufffdA""#);
    }

    #[test]
    fn json_keys_sorted_and_go_numbers() {
        let v: serde_json::Value =
            serde_json::from_str(r#"{"b":1.0,"a":[true,null,"<x>"],"aa":18446744073709551615}"#)
                .unwrap();
        let mut out = Vec::new();
        write_json(&mut out, &v);
        assert_eq!(
            String::from_utf8(out).unwrap(),
            r#"{"a":[true,null,"\u003cx\u003e"],"aa":18446744073709551615,"b":1}"#
        );
    }

    /// A TZif version 2 file with the given (time, type) transitions and types.
    fn tzif(transitions: &[(i64, u8)], types: &[(i32, bool)]) -> Vec<u8> {
        let header = |time_size: usize| {
            let mut h = b"TZif2".to_vec();
            h.extend_from_slice(&[0; 15]);
            for n in [0, 0, 0, transitions.len(), types.len(), 4] {
                h.extend_from_slice(&(n as u32).to_be_bytes());
            }
            let _ = time_size;
            h
        };
        let block = |time_size: usize| {
            let mut b = header(time_size);
            for (at, _) in transitions {
                if time_size == 4 {
                    b.extend_from_slice(&(*at as i32).to_be_bytes());
                } else {
                    b.extend_from_slice(&at.to_be_bytes());
                }
            }
            b.extend(transitions.iter().map(|(_, t)| *t));
            for (off, dst) in types {
                b.extend_from_slice(&off.to_be_bytes());
                b.push(u8::from(*dst));
                b.push(0);
            }
            b.extend_from_slice(b"XYZ\0");
            b
        };
        let mut file = block(4);
        file.extend(block(8));
        file.extend_from_slice(b"\nXYZ-1\n");
        file
    }

    #[test]
    fn tzif_transitions_give_the_offset_of_each_instant() {
        // Standard +1h, daylight +2h from t=1000 to t=2000.
        let z = Zone::from_tzif(&tzif(
            &[(1000, 1), (2000, 0)],
            &[(3600, false), (7200, true)],
        ))
        .unwrap();
        assert_eq!(z.offset_at(0), 3600);
        assert_eq!(z.offset_at(999), 3600);
        assert_eq!(z.offset_at(1000), 7200);
        assert_eq!(z.offset_at(1999), 7200);
        assert_eq!(z.offset_at(5000), 3600);
        assert_eq!(
            z.rule,
            Some(Rule {
                std: 3600,
                dst: None
            })
        );
        assert!(Zone::from_tzif(b"not a tzif file").is_none());
        assert_eq!(load_local_zone(Some("")), Zone::UTC);
        assert_eq!(load_local_zone(Some("No/Such_Zone")), Zone::UTC);
        assert_eq!(load_local_zone(Some("../../etc/passwd")), Zone::UTC);
    }

    #[test]
    fn times_as_go_marshal_json() {
        let mut out = Vec::new();
        // 2026-11-23T10:15:00Z
        write_time_json(&mut out, &Zone::UTC, 1_795_428_900, 120_000_000);
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "\"2026-11-23T10:15:00.12Z\""
        );
        let mut out = Vec::new();
        write_time_json(&mut out, &Zone::fixed(19800), 1_795_428_900, 0);
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "\"2026-11-23T15:45:00+05:30\""
        );
        let mut out = Vec::new();
        write_time_json(&mut out, &Zone::fixed(-3600), 1_795_428_900, 1);
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "\"2026-11-23T09:15:00.000000001-01:00\""
        );
        assert_eq!(
            local_timestamp_text(&Zone::fixed(19800), 1_795_428_900, 120_000, 3),
            "2026-11-23 15:45:00.120"
        );
        assert_eq!(
            local_timestamp_text(&Zone::UTC, 1_795_428_900, 0, 0),
            "2026-11-23 10:15:00"
        );
    }

    #[test]
    fn posix_rules_after_the_last_transition() {
        // Central Europe: +1, +2 from the last Sunday of March 01:00 UTC to the last
        // Sunday of October 01:00 UTC.
        let cet = Rule::parse("CET-1CEST,M3.5.0,M10.5.0/3").unwrap();
        let at = |y: i32, m: u8, d: u8, h: u8, mi: u8| {
            time::Date::from_calendar_date(y, time::Month::try_from(m).unwrap(), d)
                .unwrap()
                .with_hms(h, mi, 0)
                .unwrap()
                .assume_utc()
                .unix_timestamp()
        };
        assert_eq!(cet.offset_at(at(2026, 3, 29, 0, 59)), 3600);
        assert_eq!(cet.offset_at(at(2026, 3, 29, 1, 0)), 7200);
        assert_eq!(cet.offset_at(at(2026, 10, 25, 0, 59)), 7200);
        assert_eq!(cet.offset_at(at(2026, 10, 25, 1, 0)), 3600);
        assert_eq!(cet.offset_at(at(2026, 12, 5, 12, 0)), 3600);
        // Southern hemisphere (DST across the new year), angle-bracket names.
        let nz = Rule::parse("NZST-12NZDT,M9.5.0,M4.1.0/3").unwrap();
        assert_eq!(nz.offset_at(at(2026, 1, 15, 0, 0)), 13 * 3600);
        assert_eq!(nz.offset_at(at(2026, 6, 15, 0, 0)), 12 * 3600);
        let fixed = Rule::parse("<+0530>-5:30").unwrap();
        assert_eq!(fixed.offset_at(0), 19800);
        assert_eq!(
            Rule::parse("EST5EDT")
                .unwrap()
                .offset_at(at(2026, 7, 1, 12, 0)),
            -4 * 3600
        );
        assert!(Rule::parse("X").is_none());
        // A zone file whose transitions end uses its footer rule afterwards.
        let mut z = Zone::fixed(3600);
        z.transitions = vec![(0, 3600)];
        z.rule = Some(cet);
        assert_eq!(z.offset_at(at(2030, 7, 1, 0, 0)), 7200);
        // The system's zone files, where installed, say the same.
        if std::path::Path::new("/usr/share/zoneinfo/Europe/Berlin").exists() {
            let berlin = load_local_zone(Some("Europe/Berlin"));
            assert_eq!(berlin.offset_at(at(1995, 7, 1, 0, 0)), 7200);
            assert_eq!(berlin.offset_at(at(2040, 7, 1, 0, 0)), 7200);
            assert_eq!(berlin.offset_at(at(2040, 12, 1, 0, 0)), 3600);
            let kolkata = load_local_zone(Some(":Asia/Kolkata"));
            assert_eq!(kolkata.offset_at(at(2026, 12, 5, 0, 0)), 19800);
        }
    }
}
