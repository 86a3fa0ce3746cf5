//! JSON Web Tokens signed with the control plane's Ed25519 key (`alg: EdDSA`, RFC 8037).
//! Anyone holding the public key can verify a token offline, which is how functions stay
//! stateless. Personal access tokens carry their id in `jti` so they can be revoked.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ed25519_dalek::{Signature, Signer, SigningKey, Verifier, VerifyingKey};
use serde::{Deserialize, Serialize};

const HEADER: &str = r#"{"alg":"EdDSA","typ":"JWT"}"#;
pub const ISSUER: &str = "weir";

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    pub iss: String,
    /// Account id.
    pub sub: String,
    /// Account name at issue time (display only; permissions use `sub`).
    pub name: String,
    pub iat: i64,
    /// Expiry (seconds since the epoch); personal access tokens have none.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub exp: Option<i64>,
    /// Whether the account is an administrator (at issue time).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub adm: bool,
    /// Personal access token id.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub jti: Option<String>,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum TokenError {
    #[error("malformed token")]
    Malformed,
    #[error("token signature is invalid")]
    BadSignature,
    #[error("token expired")]
    Expired,
}

#[derive(Clone)]
pub struct TokenSigner {
    key: SigningKey,
}

impl TokenSigner {
    pub fn new(key: SigningKey) -> Self {
        Self { key }
    }

    pub fn verifying_key(&self) -> VerifyingKey {
        self.key.verifying_key()
    }

    pub fn sign(&self, claims: &Claims) -> String {
        let header = URL_SAFE_NO_PAD.encode(HEADER);
        let payload = URL_SAFE_NO_PAD.encode(serde_json::to_vec(claims).expect("claims serialize"));
        let signing_input = format!("{header}.{payload}");
        let signature = self.key.sign(signing_input.as_bytes());
        format!(
            "{signing_input}.{}",
            URL_SAFE_NO_PAD.encode(signature.to_bytes())
        )
    }
}

/// Checks the signature and expiry of `token` against `key`, at `now` (seconds).
pub fn verify(key: &VerifyingKey, token: &str, now: i64) -> Result<Claims, TokenError> {
    let mut parts = token.split('.');
    let (Some(header), Some(payload), Some(signature), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(TokenError::Malformed);
    };
    let header_json = URL_SAFE_NO_PAD
        .decode(header)
        .map_err(|_| TokenError::Malformed)?;
    let header_value: serde_json::Value =
        serde_json::from_slice(&header_json).map_err(|_| TokenError::Malformed)?;
    if header_value.get("alg").and_then(|alg| alg.as_str()) != Some("EdDSA") {
        return Err(TokenError::Malformed);
    }
    let signature_bytes: [u8; 64] = URL_SAFE_NO_PAD
        .decode(signature)
        .map_err(|_| TokenError::Malformed)?
        .try_into()
        .map_err(|_| TokenError::Malformed)?;
    let signing_input = &token[..header.len() + 1 + payload.len()];
    key.verify(
        signing_input.as_bytes(),
        &Signature::from_bytes(&signature_bytes),
    )
    .map_err(|_| TokenError::BadSignature)?;
    let claims: Claims = URL_SAFE_NO_PAD
        .decode(payload)
        .ok()
        .and_then(|json| serde_json::from_slice(&json).ok())
        .ok_or(TokenError::Malformed)?;
    if claims.iss != ISSUER {
        return Err(TokenError::Malformed);
    }
    if claims.exp.is_some_and(|exp| exp <= now) {
        return Err(TokenError::Expired);
    }
    Ok(claims)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claims(exp: Option<i64>) -> Claims {
        Claims {
            iss: ISSUER.to_string(),
            sub: "acc-1".to_string(),
            name: "alice".to_string(),
            iat: 100,
            exp,
            adm: false,
            jti: None,
        }
    }

    #[test]
    fn signed_tokens_verify_and_tampering_is_caught() {
        let signer = TokenSigner::new(SigningKey::from_bytes(&[7; 32]));
        let token = signer.sign(&claims(Some(200)));
        let key = signer.verifying_key();
        assert_eq!(verify(&key, &token, 150), Ok(claims(Some(200))));
        assert_eq!(verify(&key, &token, 200), Err(TokenError::Expired));

        let other = TokenSigner::new(SigningKey::from_bytes(&[8; 32])).verifying_key();
        assert_eq!(verify(&other, &token, 150), Err(TokenError::BadSignature));

        let mut parts: Vec<&str> = token.split('.').collect();
        let forged = URL_SAFE_NO_PAD.encode(
            serde_json::to_vec(&Claims {
                sub: "acc-admin".to_string(),
                ..claims(Some(200))
            })
            .unwrap(),
        );
        parts[1] = &forged;
        assert_eq!(
            verify(&key, &parts.join("."), 150),
            Err(TokenError::BadSignature)
        );
        assert_eq!(verify(&key, "abc", 150), Err(TokenError::Malformed));
        assert_eq!(verify(&key, "a.b.c", 150), Err(TokenError::Malformed));
    }
}
