//! HTTP Message Signatures (RFC 9421) for webhook deliveries, with HMAC-SHA256 over:
//!
//! ```text
//! "@method": POST
//! "@target-uri": https://example.com/hook
//! "content-type": application/json
//! "content-digest": sha-256=:<base64 of SHA-256 of the body>:
//! "webhook-id": dlv_…
//! "@signature-params": ("@method" "@target-uri" "content-type" "content-digest" "webhook-id");created=…;keyid="whk_…";alg="hmac-sha256"
//! ```
//!
//! sent as `Signature-Input: sig1=<params>` and `Signature: sig1=:<base64>:`, with the body's
//! `Content-Digest` (RFC 9530). Receivers rebuild the base from the request they got, check the
//! digest against the body and `created` against their clock.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};

/// Header values to send with a signed delivery.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedHeaders {
    pub content_digest: String,
    pub signature_input: String,
    pub signature: String,
}

pub const COMPONENTS: &str =
    r#"("@method" "@target-uri" "content-type" "content-digest" "webhook-id")"#;

/// A new secret: 32 random bytes from the OS, base64 (shown once to the subscriber).
pub fn new_secret() -> String {
    use rand::RngCore;
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    format!("whsec_{}", STANDARD.encode(bytes))
}

pub fn content_digest(body: &[u8]) -> String {
    format!("sha-256=:{}:", STANDARD.encode(Sha256::digest(body)))
}

/// The signature base of RFC 9421 §2.5 for our components.
pub fn signature_base(
    target_uri: &str,
    content_digest: &str,
    delivery_id: &str,
    params: &str,
) -> String {
    format!(
        "\"@method\": POST\n\"@target-uri\": {target_uri}\n\"content-type\": application/json\n\
         \"content-digest\": {content_digest}\n\"webhook-id\": {delivery_id}\n\
         \"@signature-params\": {params}"
    )
}

pub fn sign(
    secret: &str,
    key_id: &str,
    target_uri: &str,
    delivery_id: &str,
    body: &[u8],
    created: i64,
) -> SignedHeaders {
    let content_digest = content_digest(body);
    let params = format!("{COMPONENTS};created={created};keyid=\"{key_id}\";alg=\"hmac-sha256\"");
    let base = signature_base(target_uri, &content_digest, delivery_id, &params);
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes())
        .unwrap_or_else(|_| unreachable!("HMAC takes keys of any length"));
    mac.update(base.as_bytes());
    let signature = STANDARD.encode(mac.finalize().into_bytes());
    SignedHeaders {
        content_digest,
        signature_input: format!("sig1={params}"),
        signature: format!("sig1=:{signature}:"),
    }
}
