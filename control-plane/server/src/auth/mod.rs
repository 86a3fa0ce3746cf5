//! Credentials: Ed25519-signed JWTs (sessions and personal access tokens) and Argon2 password
//! hashes.

pub mod jwt;
pub mod password;

pub use jwt::{Claims, TokenSigner};
