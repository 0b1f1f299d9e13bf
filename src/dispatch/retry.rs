//! The retry policy (SPEC 4): which answers are retried, how long to wait between
//! attempts (exponential backoff with jitter, `Retry-After`), nothing else.
//!
//! Pure decisions over statuses, errors and durations: no I/O, no sleeping, no stats.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// What one attempt's outcome means for the request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Verdict {
    /// 2xx: delivered.
    Delivered,
    /// Try again later: transport errors, timeouts, 408, 429, 5xx.
    Retry,
    /// Will not get better by trying again (other 4xx, 3xx, a request we cannot build).
    Fail,
}

pub(super) fn status_verdict(status: u16) -> Verdict {
    match status {
        200..=299 => Verdict::Delivered,
        408 | 429 | 500..=599 => Verdict::Retry,
        _ => Verdict::Fail,
    }
}

/// Errors without an answer. Anything that may be the network's or the receiver's
/// passing fault is retried; only errors that say our own request is unusable fail at
/// once (they would fail the same way on every attempt).
pub(super) fn error_verdict(error: &ureq::Error) -> Verdict {
    use ureq::Error::*;
    match error {
        BadUri(_) | Http(_) | InvalidProxyUrl | RequireHttpsOnly(_) | RedirectFailed
        | TooManyRedirects | BodyExceedsLimit(_) => Verdict::Fail,
        _ => Verdict::Retry,
    }
}

/// Exponential backoff from `base`, doubling up to `max`, each delay spread by ±20 %
/// so that workers (and several pikachu instances) that failed together do not retry in
/// lockstep. A jittered delay never exceeds `max`.
pub(super) struct Backoff {
    next: Duration,
    base: Duration,
    max: Duration,
}

impl Backoff {
    pub(super) fn new(base: Duration, max: Duration) -> Backoff {
        let base = base.min(max);
        Backoff {
            next: base,
            base,
            max,
        }
    }

    /// The delay before the next retry; the one after it doubles.
    pub(super) fn next_delay(&mut self, rng: &mut XorShift) -> Duration {
        let nominal = self.next;
        self.next = nominal.saturating_mul(2).min(self.max);
        jitter(nominal, rng).min(self.max)
    }

    /// The wait a `Retry-After` asks for, within what the operator allows: at most
    /// `retry_max_delay` (a receiver must not park a key, and with it the queues and the
    /// binlog reader, for longer than configured) and at least `retry_base_delay` (no
    /// busy loop on `Retry-After: 0`). No jitter: the receiver named the time.
    /// The backoff still advances, for when the receiver stops sending the header.
    pub(super) fn honour(&mut self, retry_after: Duration) -> Duration {
        self.next = self.next.saturating_mul(2).min(self.max);
        retry_after.clamp(self.base, self.max)
    }
}

/// `d` scaled by a factor in [0.8, 1.2].
fn jitter(d: Duration, rng: &mut XorShift) -> Duration {
    let permille = 800 + (rng.next() % 401) as u128;
    let nanos = d.as_nanos() * permille / 1000;
    Duration::from_nanos(u64::try_from(nanos).unwrap_or(u64::MAX))
}

/// A tiny xorshift64 generator for jitter: not for anything that needs real randomness.
pub(super) struct XorShift(u64);

impl XorShift {
    /// Seeded from the clock and `salt` (the worker index), so workers differ.
    pub(super) fn seeded(salt: u64) -> XorShift {
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64);
        let seed = nanos ^ (salt.wrapping_add(1)).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        XorShift(if seed == 0 {
            0x2545_F491_4F6C_DD1D
        } else {
            seed
        })
    }

    pub(super) fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }
}

/// `Retry-After` as a wait from `now`: delta-seconds (`120`) or an HTTP date
/// (`Wed, 21 Oct 2015 07:28:00 GMT`, and the obsolete RFC 850 and asctime forms RFC 9110
/// asks recipients to accept; a date in the past means no wait). `None` for anything
/// else, which then falls back to the backoff.
pub(super) fn parse_retry_after(value: &str, now: SystemTime) -> Option<Duration> {
    let value = value.trim();
    if !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit()) {
        // More digits than a u64 holds is "very long": the cap applies anyway.
        return Some(Duration::from_secs(value.parse().unwrap_or(u64::MAX)));
    }
    let at = httpdate::parse_http_date(value).ok()?;
    // Before `now` is an error here, which is exactly "no wait".
    Some(at.duration_since(now).unwrap_or(Duration::ZERO))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_are_classified_as_the_spec_says() {
        for s in [200, 201, 204, 299] {
            assert_eq!(status_verdict(s), Verdict::Delivered, "{s}");
        }
        for s in [408, 429, 500, 502, 503, 504, 599] {
            assert_eq!(status_verdict(s), Verdict::Retry, "{s}");
        }
        for s in [301, 302, 307, 400, 401, 403, 404, 409, 410, 413, 422] {
            assert_eq!(status_verdict(s), Verdict::Fail, "{s}");
        }
    }

    #[test]
    fn transport_errors_are_retried_and_request_errors_are_not() {
        assert_eq!(
            error_verdict(&ureq::Error::ConnectionFailed),
            Verdict::Retry
        );
        assert_eq!(error_verdict(&ureq::Error::HostNotFound), Verdict::Retry);
        let io = std::io::Error::from(std::io::ErrorKind::ConnectionRefused);
        assert_eq!(error_verdict(&ureq::Error::Io(io)), Verdict::Retry);
        assert_eq!(
            error_verdict(&ureq::Error::BadUri("x".into())),
            Verdict::Fail
        );
    }

    #[test]
    fn backoff_doubles_up_to_the_maximum_with_bounded_jitter() {
        let base = Duration::from_millis(100);
        let max = Duration::from_millis(1000);
        let mut rng = XorShift::seeded(3);
        for _ in 0..50 {
            let mut b = Backoff::new(base, max);
            let nominal = [100u64, 200, 400, 800, 1000, 1000, 1000];
            for n in nominal {
                let d = b.next_delay(&mut rng);
                let lo = Duration::from_millis(n * 8 / 10);
                let hi = Duration::from_millis(n * 12 / 10).min(max);
                assert!(d >= lo && d <= hi, "{d:?} outside {lo:?}..={hi:?}");
            }
        }
    }

    #[test]
    fn jitter_spreads_delays() {
        let mut rng = XorShift::seeded(0);
        let mut seen = std::collections::HashSet::new();
        for _ in 0..100 {
            seen.insert(jitter(Duration::from_secs(1), &mut rng));
        }
        assert!(seen.len() > 50, "only {} distinct delays", seen.len());
    }

    #[test]
    fn retry_after_is_capped_and_floored() {
        let mut b = Backoff::new(Duration::from_millis(100), Duration::from_secs(30));
        assert_eq!(b.honour(Duration::from_secs(1)), Duration::from_secs(1));
        assert_eq!(
            b.honour(Duration::from_secs(86_400)),
            Duration::from_secs(30)
        );
        assert_eq!(b.honour(Duration::ZERO), Duration::from_millis(100));
    }

    #[test]
    fn retry_after_seconds_and_dates() {
        let now = UNIX_EPOCH + Duration::from_secs(1_445_412_480); // 2015-10-21 07:28:00
        assert_eq!(parse_retry_after("1", now), Some(Duration::from_secs(1)));
        assert_eq!(
            parse_retry_after(" 120 ", now),
            Some(Duration::from_secs(120))
        );
        assert_eq!(
            parse_retry_after("Wed, 21 Oct 2015 07:28:30 GMT", now),
            Some(Duration::from_secs(30))
        );
        assert_eq!(
            parse_retry_after("Wed, 21 Oct 2015 07:00:00 GMT", now),
            Some(Duration::ZERO),
            "a date in the past: no wait"
        );
        assert_eq!(
            parse_retry_after("Sun, 06 Nov 1994 08:49:37 GMT", UNIX_EPOCH),
            Some(Duration::from_secs(784_111_777))
        );
        for bad in [
            "",
            "soon",
            "-1",
            "1.5",
            "Wed, 21 Oct 2015 07:28:30 CET",
            "Wed 21 Oct",
        ] {
            assert_eq!(parse_retry_after(bad, now), None, "{bad:?}");
        }
        assert_eq!(
            parse_retry_after("Wednesday, 21-Oct-15 07:28:30 GMT", now),
            Some(Duration::from_secs(30)),
            "RFC 850 form"
        );
        assert_eq!(
            parse_retry_after("Wed Oct 21 07:28:30 2015", now),
            Some(Duration::from_secs(30)),
            "asctime form"
        );
        assert_eq!(
            parse_retry_after("99999999999999999999999", now),
            Some(Duration::from_secs(u64::MAX))
        );
    }
}
