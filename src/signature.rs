//! Standard Webhooks signatures (standardwebhooks.com): `whsec_` keys, signing and
//! verifying `v1,<base64 HMAC-SHA256(key, "<id>.<timestamp>.<body>")>`.
//!
//! Pure functions over bytes, shared by the dispatcher (signs) and `listen` (verifies).

#[derive(Debug, PartialEq, Eq)]
pub enum SignatureError {
    /// The secret is not `whsec_<base64>` (or plain base64) of a non-empty key.
    BadSecret(String),
}

pub struct SigningKey {}

impl SigningKey {
    pub fn parse(secret: &str) -> Result<SigningKey, SignatureError> {
        let _ = secret;
        todo!()
    }

    /// The value of the `webhook-signature` header: `v1,<base64>`.
    pub fn sign(&self, msg_id: &str, timestamp: i64, body: &[u8]) -> String {
        let _ = (msg_id, timestamp, body);
        todo!()
    }

    /// True when any `v1,` signature in the space-separated `header` matches.
    pub fn verify(&self, msg_id: &str, timestamp: i64, body: &[u8], header: &str) -> bool {
        let _ = (msg_id, timestamp, body, header);
        todo!()
    }
}
