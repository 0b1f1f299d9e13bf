//! Standard Webhooks signatures (standardwebhooks.com): `whsec_` keys, signing and
//! verifying `v1,<base64 HMAC-SHA256(key, "<id>.<timestamp>.<body>")>`.
//!
//! Pure functions over bytes, shared by the dispatcher (signs) and `listen` (verifies).
//! It owns the key material and must never reveal it: not in errors, not in `Debug`,
//! not in logs. Timestamp tolerance (replay protection) is the receiver's policy and
//! lives with the receiver, not here.

use std::fmt;

use base64::alphabet;
use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig, STANDARD};
use base64::engine::DecodePaddingMode;
use base64::Engine as _;
use ring::hmac;

/// The prefix of a Standard Webhooks secret; the rest is the base64 of the key.
const SECRET_PREFIX: &str = "whsec_";

/// The signature scheme this module produces and accepts (HMAC-SHA256).
const SCHEME_V1: &str = "v1,";

/// Standard base64 that accepts the key with or without `=` padding: secrets are often
/// copied by hand, and a missing `=` must not make an otherwise good key unusable.
const LENIENT_BASE64: GeneralPurpose = GeneralPurpose::new(
    &alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    /// The secret is not `whsec_<base64>` (or plain base64) of a non-empty key.
    /// The message says what is wrong and never contains the secret itself.
    #[error("invalid webhook secret: {0}")]
    BadSecret(String),
}

/// An HMAC-SHA256 key for Standard Webhooks signatures.
#[derive(Clone)]
pub struct SigningKey {
    key: hmac::Key,
}

/// Redacted: a key must not end up in a log line through `{:?}`.
impl fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SigningKey(<redacted>)")
    }
}

impl SigningKey {
    /// Parses `whsec_<base64 key>`, or the bare base64 key, as the reference
    /// libraries do. Surrounding whitespace is ignored (a secret read from a file or an
    /// environment variable often ends with a newline).
    pub fn parse(secret: &str) -> Result<SigningKey, SignatureError> {
        let trimmed = secret.trim();
        let encoded = trimmed.strip_prefix(SECRET_PREFIX).unwrap_or(trimmed);
        if encoded.is_empty() {
            return Err(SignatureError::BadSecret(
                "it is empty; expected `whsec_` followed by the base64 of the key".into(),
            ));
        }
        // The decode error itself is not shown: it quotes offsets and bytes of the
        // secret. Length and the expected shape are enough to fix it.
        let bytes = LENIENT_BASE64.decode(encoded).map_err(|_| {
            SignatureError::BadSecret(format!(
                "the {}-character key is not valid standard base64; expected `whsec_` \
                 followed by the base64 of the key (e.g. `whsec_` + `openssl rand -base64 32`)",
                encoded.chars().count()
            ))
        })?;
        if bytes.is_empty() {
            return Err(SignatureError::BadSecret(
                "the key decodes to zero bytes; expected `whsec_` followed by the base64 of \
                 a non-empty key"
                    .into(),
            ));
        }
        Ok(SigningKey {
            key: hmac::Key::new(hmac::HMAC_SHA256, &bytes),
        })
    }

    /// The value of the `webhook-signature` header: `v1,<base64>`.
    pub fn sign(&self, msg_id: &str, timestamp: i64, body: &[u8]) -> String {
        let tag = hmac::sign(&self.key, &signed_content(msg_id, timestamp, body));
        let mut out = String::with_capacity(SCHEME_V1.len() + 44);
        out.push_str(SCHEME_V1);
        STANDARD.encode_string(tag.as_ref(), &mut out);
        out
    }

    /// True when any `v1,` signature in the space-separated `header` matches.
    ///
    /// Entries of other schemes (`v1a,` …) and malformed entries are skipped, not errors:
    /// a sender may list several signatures during a key rotation. The comparison is
    /// constant-time (`ring::hmac::verify`).
    pub fn verify(&self, msg_id: &str, timestamp: i64, body: &[u8], header: &str) -> bool {
        let content = signed_content(msg_id, timestamp, body);
        header
            .split_ascii_whitespace()
            .filter_map(|entry| entry.strip_prefix(SCHEME_V1))
            .filter_map(|sig| LENIENT_BASE64.decode(sig).ok())
            .any(|sig| hmac::verify(&self.key, &content, &sig).is_ok())
    }
}

/// `"{msg_id}.{timestamp}.{body}"`, the bytes that are signed.
fn signed_content(msg_id: &str, timestamp: i64, body: &[u8]) -> Vec<u8> {
    let ts = timestamp.to_string();
    let mut content = Vec::with_capacity(msg_id.len() + ts.len() + body.len() + 2);
    content.extend_from_slice(msg_id.as_bytes());
    content.push(b'.');
    content.extend_from_slice(ts.as_bytes());
    content.push(b'.');
    content.extend_from_slice(body);
    content
}

#[cfg(test)]
mod tests {
    use super::*;

    // The test vector published with the Standard Webhooks reference libraries
    // (also used by Svix's): a receiver's library must accept what we send, and only
    // reproducing a signature computed elsewhere proves that.
    const VECTOR_SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    const VECTOR_ID: &str = "msg_p5jXN8AQM9LWM0D4loKWxJek";
    const VECTOR_TS: i64 = 1614265330;
    const VECTOR_BODY: &[u8] = br#"{"test": 2432232314}"#;
    const VECTOR_SIG: &str = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=";

    fn vector_key() -> SigningKey {
        SigningKey::parse(VECTOR_SECRET).expect("the published secret parses")
    }

    #[test]
    fn signature_matches_the_standard_webhooks_test_vector() {
        assert_eq!(
            vector_key().sign(VECTOR_ID, VECTOR_TS, VECTOR_BODY),
            VECTOR_SIG
        );
    }

    #[test]
    fn the_test_vector_verifies() {
        assert!(vector_key().verify(VECTOR_ID, VECTOR_TS, VECTOR_BODY, VECTOR_SIG));
    }

    #[test]
    fn the_whsec_prefix_is_optional() {
        let bare = SigningKey::parse("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").expect("bare key");
        assert_eq!(bare.sign(VECTOR_ID, VECTOR_TS, VECTOR_BODY), VECTOR_SIG);
    }

    #[test]
    fn surrounding_whitespace_and_missing_padding_are_accepted() {
        let key = SigningKey::parse(&format!(" {VECTOR_SECRET}\n")).expect("trimmed");
        assert_eq!(key.sign(VECTOR_ID, VECTOR_TS, VECTOR_BODY), VECTOR_SIG);
        // "a2V5" is "key"; "a2V5MQ" without its "==" is "key1".
        let padded = SigningKey::parse("whsec_a2V5MQ==").expect("padded");
        let unpadded = SigningKey::parse("whsec_a2V5MQ").expect("unpadded");
        assert_eq!(padded.sign("m", 1, b"x"), unpadded.sign("m", 1, b"x"));
    }

    #[test]
    fn round_trip_with_a_fresh_key() {
        let key = SigningKey::parse("whsec_c2VjcmV0LWtleS1mb3ItdGVzdHMtMDEyMzQ1Njc4OQ==").unwrap();
        let body = br#"{"id":"mysql-bin.000003:18825:0","event":"insert"}"#;
        let header = key.sign("mysql-bin.000003:18825:0", 1_700_000_000, body);
        assert!(header.starts_with("v1,"));
        assert!(key.verify("mysql-bin.000003:18825:0", 1_700_000_000, body, &header));
    }

    #[test]
    fn tampering_with_body_id_timestamp_or_key_fails() {
        let key = vector_key();
        assert!(!key.verify(VECTOR_ID, VECTOR_TS, br#"{"test": 2432232315}"#, VECTOR_SIG));
        assert!(!key.verify("msg_other", VECTOR_TS, VECTOR_BODY, VECTOR_SIG));
        assert!(!key.verify(VECTOR_ID, VECTOR_TS + 1, VECTOR_BODY, VECTOR_SIG));
        let other = SigningKey::parse("whsec_b3RoZXIta2V5").unwrap();
        assert!(!other.verify(VECTOR_ID, VECTOR_TS, VECTOR_BODY, VECTOR_SIG));
    }

    #[test]
    fn any_matching_signature_in_a_space_separated_list_is_accepted() {
        let key = vector_key();
        let list = format!("v1,bm9wZQ== v1a,c29tZXRoaW5n garbage v1,%%% {VECTOR_SIG}");
        assert!(key.verify(VECTOR_ID, VECTOR_TS, VECTOR_BODY, &list));
        assert!(!key.verify(VECTOR_ID, VECTOR_TS, VECTOR_BODY, "v1,bm9wZQ== v1a,x"));
        assert!(!key.verify(VECTOR_ID, VECTOR_TS, VECTOR_BODY, ""));
        // Only the v1 scheme counts: the right bytes under another scheme do not.
        let other_scheme = VECTOR_SIG.replacen("v1,", "v2,", 1);
        assert!(!key.verify(VECTOR_ID, VECTOR_TS, VECTOR_BODY, &other_scheme));
    }

    #[test]
    fn empty_or_invalid_secrets_are_rejected_without_echoing_them() {
        for secret in [
            "",
            "whsec_",
            "   ",
            "whsec_not base64!!",
            "sup3r$ecret#value",
        ] {
            let err = SigningKey::parse(secret).expect_err(secret);
            let SignatureError::BadSecret(msg) = &err;
            let shown = err.to_string();
            let body = secret.trim().trim_start_matches("whsec_");
            if !body.is_empty() {
                assert!(!msg.contains(body), "{msg:?} leaks {body:?}");
                assert!(!shown.contains(body), "{shown:?} leaks {body:?}");
            }
            assert!(
                shown.contains("whsec_"),
                "message says what is expected: {shown}"
            );
        }
    }

    #[test]
    fn debug_output_hides_the_key() {
        let shown = format!("{:?}", vector_key());
        assert_eq!(shown, "SigningKey(<redacted>)");
    }
}
