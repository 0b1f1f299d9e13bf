//! Certificate and key files: reading PEM files named in the configuration, and the
//! expiry date of a certificate.
//!
//! Pure file reading and parsing: no connection is opened here. The configuration
//! validates every file with it at load (so a wrong path is a config error, not a
//! failed connection an hour later), the dispatcher builds its HTTPS agents from it, and
//! `check` reads expiry dates with it. Private key bytes never leave the value returned
//! to the caller, and no error message holds file content.

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use ureq::tls::{Certificate, PemItem, PrivateKey};

/// Why a certificate or key file cannot be used. The path is shown, never the content.
#[derive(Debug, thiserror::Error)]
pub enum PemError {
    #[error("cannot read {}: {source}", .path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{} is not a PEM file ({source})", .path.display())]
    Parse {
        path: PathBuf,
        #[source]
        source: ureq::Error,
    },
    #[error("{} holds no certificate (expected -----BEGIN CERTIFICATE-----)", .path.display())]
    NoCertificate { path: PathBuf },
    #[error(
        "{} holds no private key (expected -----BEGIN PRIVATE KEY-----, RSA PRIVATE KEY or \
         EC PRIVATE KEY)",
        .path.display()
    )]
    NoKey { path: PathBuf },
}

fn items(path: &Path) -> Result<Vec<PemItem<'static>>, PemError> {
    let bytes = std::fs::read(path).map_err(|source| PemError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    ureq::tls::parse_pem(&bytes)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|source| PemError::Parse {
            path: path.to_path_buf(),
            source,
        })
}

/// Every certificate of a PEM file (a CA bundle, or a client certificate and its chain).
pub fn read_certificates(path: &Path) -> Result<Vec<Certificate<'static>>, PemError> {
    let certs: Vec<Certificate<'static>> = items(path)?
        .into_iter()
        .filter_map(|item| match item {
            PemItem::Certificate(cert) => Some(cert),
            _ => None,
        })
        .collect();
    if certs.is_empty() {
        return Err(PemError::NoCertificate {
            path: path.to_path_buf(),
        });
    }
    Ok(certs)
}

/// The first private key of a PEM file.
pub fn read_private_key(path: &Path) -> Result<PrivateKey<'static>, PemError> {
    items(path)?
        .into_iter()
        .find_map(|item| match item {
            PemItem::PrivateKey(key) => Some(key),
            _ => None,
        })
        .ok_or_else(|| PemError::NoKey {
            path: path.to_path_buf(),
        })
}

/// When a DER certificate stops being valid (its `notAfter`), or `None` when the bytes
/// are not a certificate this small reader understands.
///
/// Certificate ::= SEQUENCE { tbsCertificate SEQUENCE { [0] version OPTIONAL,
/// serialNumber, signature, issuer, validity SEQUENCE { notBefore, notAfter }, … } … }
pub fn not_after(der: &[u8]) -> Option<SystemTime> {
    let (_, cert, _) = der_item(der)?;
    let (_, tbs, _) = der_item(cert)?;
    let mut rest = tbs;
    let (tag, _, after) = der_item(rest)?;
    if tag == 0xa0 {
        rest = after; // the explicit version
    }
    for _ in 0..3 {
        // serialNumber, signature algorithm, issuer
        let (_, _, after) = der_item(rest)?;
        rest = after;
    }
    let (_, validity, _) = der_item(rest)?;
    let (_, _, after_not_before) = der_item(validity)?;
    let (tag, time, _) = der_item(after_not_before)?;
    der_time(tag, time)
}

/// One DER item: (tag, contents, what follows). Only definite lengths (DER has no others).
fn der_item(bytes: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let (&tag, rest) = bytes.split_first()?;
    let (&first, mut rest) = rest.split_first()?;
    let len = if first < 0x80 {
        usize::from(first)
    } else {
        let count = usize::from(first & 0x7f);
        if count == 0 || count > 4 || rest.len() < count {
            return None;
        }
        let (len_bytes, after) = rest.split_at(count);
        rest = after;
        len_bytes
            .iter()
            .fold(0usize, |acc, &b| (acc << 8) | usize::from(b))
    };
    if rest.len() < len {
        return None;
    }
    let (contents, after) = rest.split_at(len);
    Some((tag, contents, after))
}

/// UTCTime (`YYMMDDHHMMSSZ`, years 1950–2049) or GeneralizedTime (`YYYYMMDDHHMMSSZ`).
fn der_time(tag: u8, text: &[u8]) -> Option<SystemTime> {
    let text = std::str::from_utf8(text).ok()?.strip_suffix('Z')?;
    let (year, rest) = match tag {
        0x17 if text.len() == 12 => {
            let yy: i32 = text.get(..2)?.parse().ok()?;
            (if yy < 50 { 2000 + yy } else { 1900 + yy }, &text[2..])
        }
        0x18 if text.len() == 14 => (text.get(..4)?.parse().ok()?, &text[4..]),
        _ => return None,
    };
    let field = |i: usize| -> Option<u8> { rest.get(i..i + 2)?.parse().ok() };
    let month = time::Month::try_from(field(0)?).ok()?;
    let date = time::Date::from_calendar_date(year, month, field(2)?).ok()?;
    let at = date
        .with_hms(field(4)?, field(6)?, field(8)?)
        .ok()?
        .assume_utc();
    Some(SystemTime::UNIX_EPOCH + Duration::from_secs(u64::try_from(at.unix_timestamp()).ok()?))
}

/// The earliest `notAfter` of a PEM file's certificates (a bundle expires, for the one
/// who relies on it, when any of its certificates does; a client chain likewise).
pub fn earliest_expiry(path: &Path) -> Result<Option<SystemTime>, PemError> {
    Ok(read_certificates(path)?
        .iter()
        .filter_map(|c| not_after(c.der()))
        .min())
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A self-signed certificate made by `openssl req -x509 -days 1 -subj /CN=t
    /// -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes`, valid until 2026-12-06 12:53:27 UTC.
    pub(crate) const CERT: &str = "-----BEGIN CERTIFICATE-----
MIIBbTCCAROgAwIBAgIUcxrqWkkP6rc2U5CS5PQz4xYMX6MwCgYIKoZIzj0EAwIw
DDEKMAgGA1UEAwwBdDAeFw0yNjEyMDUxMjUzMjdaFw0yNjEyMDYxMjUzMjdaMAwx
CjAIBgNVBAMMAXQwWTATBgcqhkjOPQIBBggqhkjOPQMBBwNCAAT4jehxFfqxQdPL
HTbbOQ2qGJ0snm0SqMX6/kGSeUEgQPhnX0ZPGcPBgnJKvcZ1tgQhUbpLSpcZ7rCJ
26bjhOG9o1MwUTAdBgNVHQ4EFgQUCAmlEfiVGC8xMKc4fdrmg8KFo3QwHwYDVR0j
BBgwFoAUCAmlEfiVGC8xMKc4fdrmg8KFo3QwDwYDVR0TAQH/BAUwAwEB/zAKBggq
hkjOPQQDAgNIADBFAiAcuWr2u34LKYdDmQ9//oVigZpue5fHK8F4zoKVdVruJwIh
AIof0UHuxZ1mzqtYWJmqGjPfw3txVDT4qmARUZ7N/V7Q
-----END CERTIFICATE-----
";

    /// The key of `CERT`.
    pub(crate) const KEY: &str = "-----BEGIN PRIVATE KEY-----
MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgHLFAYmMlOq0ewjwp
ASabqASVQbyvhxC8q5QOqKEGa/KhRANCAAT4jehxFfqxQdPLHTbbOQ2qGJ0snm0S
qMX6/kGSeUEgQPhnX0ZPGcPBgnJKvcZ1tgQhUbpLSpcZ7rCJ26bjhOG9
-----END PRIVATE KEY-----
";

    #[test]
    fn not_after_is_read_from_a_certificate() {
        let cert = ureq::tls::Certificate::from_pem(CERT.as_bytes()).unwrap();
        let expires = not_after(cert.der()).unwrap();
        // `date -d '2026-12-06 12:53:27 UTC' +%s`
        assert_eq!(
            expires,
            SystemTime::UNIX_EPOCH + Duration::from_secs(1_796_561_607)
        );
    }

    #[test]
    fn both_time_forms_are_read() {
        let utc = der_time(0x17, b"491231235959Z").unwrap();
        let generalized = der_time(0x18, b"20491231235959Z").unwrap();
        assert_eq!(utc, generalized);
        assert!(
            der_time(0x17, b"991231235959Z").unwrap() < utc,
            "99 is 1999"
        );
        assert_eq!(der_time(0x17, b"4912312359Z"), None);
        assert_eq!(not_after(b"\x30\x03\x02\x01"), None, "truncated DER");
    }

    #[test]
    fn files_without_certificates_or_keys_say_so() {
        let dir = std::env::temp_dir().join(format!("pikachu-tls-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let cert = dir.join("cert.pem");
        std::fs::write(&cert, CERT).unwrap();
        assert_eq!(read_certificates(&cert).unwrap().len(), 1);
        let e = read_private_key(&cert).unwrap_err().to_string();
        assert!(e.contains("holds no private key"), "{e}");
        let text = dir.join("text.pem");
        std::fs::write(&text, "hello\n").unwrap();
        let e = read_certificates(&text).unwrap_err().to_string();
        assert!(e.contains("holds no certificate"), "{e}");
        let e = read_certificates(&dir.join("missing.pem"))
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with("cannot read ") && e.contains("missing.pem"),
            "{e}"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
