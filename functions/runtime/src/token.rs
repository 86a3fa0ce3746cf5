//! Verifying Weir's JSON Web Tokens: Ed25519 signatures (`alg: EdDSA`, RFC 8037) checked
//! offline against the control plane's public key, so a function needs no database round trip
//! to know who calls it. Signing lives in the control plane, which alone holds the private key.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ed25519_dalek::{Signature, Verifier, VerifyingKey};
use serde::{Deserialize, Serialize};

use crate::error::ApiError;

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

impl TokenError {
    /// What a caller presenting such a token is told (401).
    pub fn to_api_error(&self) -> ApiError {
        ApiError::unauthenticated(match self {
            Self::Expired => "token expired: log in again".to_string(),
            other => format!("invalid token: {other}"),
        })
    }
}

/// The token in an `Authorization` header value: `None` without a header, an error for any
/// scheme but `Bearer`.
pub fn bearer_token(authorization: Option<&str>) -> Result<Option<&str>, ApiError> {
    let Some(value) = authorization else {
        return Ok(None);
    };
    value
        .strip_prefix("Bearer ")
        .or_else(|| value.strip_prefix("bearer "))
        .map(|token| Some(token.trim()))
        .ok_or_else(|| ApiError::unauthenticated("expected `Authorization: Bearer <token>`"))
}

/// An Ed25519 public key from 64 hex characters.
pub fn parse_verifying_key_hex(hex: &str) -> Result<VerifyingKey, String> {
    let hex = hex.trim();
    let bytes: Option<Vec<u8>> = (0..hex.len())
        .step_by(2)
        .map(|index| {
            hex.get(index..index + 2)
                .and_then(|pair| u8::from_str_radix(pair, 16).ok())
        })
        .collect();
    let bytes: [u8; 32] = bytes
        .and_then(|bytes| bytes.try_into().ok())
        .ok_or("expected 64 hex characters")?;
    VerifyingKey::from_bytes(&bytes).map_err(|_| "not an Ed25519 public key".to_string())
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

    #[test]
    fn bearer_header_forms() {
        assert_eq!(bearer_token(None), Ok(None));
        assert_eq!(bearer_token(Some("Bearer abc ")), Ok(Some("abc")));
        assert_eq!(bearer_token(Some("bearer abc")), Ok(Some("abc")));
        let error = bearer_token(Some("Basic abc")).unwrap_err();
        assert_eq!(error.kind, crate::ErrorKind::Unauthenticated);
    }

    #[test]
    fn public_keys_parse_from_hex() {
        let key = ed25519_dalek::SigningKey::from_bytes(&[3; 32]).verifying_key();
        let hex: String = key
            .as_bytes()
            .iter()
            .map(|byte| format!("{byte:02x}"))
            .collect();
        assert_eq!(parse_verifying_key_hex(&hex), Ok(key));
        assert!(parse_verifying_key_hex("abc").is_err());
        assert!(parse_verifying_key_hex(&"zz".repeat(32)).is_err());
    }
}
