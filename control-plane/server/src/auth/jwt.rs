//! Signing JSON Web Tokens with the control plane's Ed25519 key (`alg: EdDSA`, RFC 8037).
//! Verification lives in `weir_function_runtime::token`: anyone holding the public key can
//! verify a token offline, which is how functions stay stateless. Personal access tokens carry
//! their id in `jti` so they can be revoked.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ed25519_dalek::{Signer, SigningKey, VerifyingKey};
pub use weir_function_runtime::token::{Claims, ISSUER, TokenError, verify};

const HEADER: &str = r#"{"alg":"EdDSA","typ":"JWT"}"#;

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
