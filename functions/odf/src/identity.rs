//! Dataset identity (`did:odf:` from Ed25519 public keys) and human-friendly names, aliases and
//! references with the grammar of the spec. Names compare case-insensitively.

use std::fmt;
use std::hash::{Hash, Hasher};
use std::str::FromStr;

use ed25519_dalek::SigningKey;

use crate::hash::{MULTICODEC_ED25519_PUB, read_varint, write_varint};

pub const DID_ODF_PREFIX: &str = "did:odf:";

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdentityParseError {
    #[error("invalid dataset id `{value}`: {reason}")]
    DatasetId { value: String, reason: String },
    #[error("invalid {kind} `{value}`: {reason}")]
    Name {
        kind: &'static str,
        value: String,
        reason: String,
    },
    #[error("invalid dataset reference `{value}`: {reason}")]
    Reference { value: String, reason: String },
}

/// Unique dataset identifier: an Ed25519 public key as a `did:odf:` DID.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct DatasetId {
    public_key: [u8; 32],
}

impl DatasetId {
    pub fn from_public_key(public_key: [u8; 32]) -> Self {
        Self { public_key }
    }

    /// Generates a fresh key pair; the signing key proves ownership of the dataset.
    pub fn new_generated() -> (SigningKey, Self) {
        let signing_key = SigningKey::generate(&mut rand::rngs::OsRng);
        let id = Self::from_public_key(signing_key.verifying_key().to_bytes());
        (signing_key, id)
    }

    pub fn public_key(&self) -> &[u8; 32] {
        &self.public_key
    }

    /// Canonical binary form: multicodec `ed25519-pub` varint followed by the key.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(34);
        write_varint(MULTICODEC_ED25519_PUB, &mut out);
        out.extend_from_slice(&self.public_key);
        out
    }

    pub fn from_bytes(bytes: &[u8]) -> Result<Self, String> {
        let (code, len) = read_varint(bytes).ok_or("truncated multicodec")?;
        if code != MULTICODEC_ED25519_PUB {
            return Err(format!("unsupported key type multicodec {code:#x}"));
        }
        let key: [u8; 32] = bytes[len..].try_into().map_err(|_| {
            format!(
                "ed25519 public key must be 32 bytes, got {}",
                bytes.len() - len
            )
        })?;
        Ok(Self::from_public_key(key))
    }

    /// `did:odf:` followed by the base16 multibase of the binary form.
    pub fn to_did_string(&self) -> String {
        format!(
            "{DID_ODF_PREFIX}{}",
            multibase::encode(multibase::Base::Base16Lower, self.to_bytes())
        )
    }

    /// Lowercase hex of the binary form: used as the dataset's storage folder name.
    pub fn as_storage_key(&self) -> String {
        self.to_did_string()
    }
}

impl FromStr for DatasetId {
    type Err = IdentityParseError;

    fn from_str(value: &str) -> Result<Self, Self::Err> {
        let error = |reason: String| IdentityParseError::DatasetId {
            value: value.to_string(),
            reason,
        };
        let encoded = value
            .strip_prefix(DID_ODF_PREFIX)
            .ok_or_else(|| error(format!("must start with `{DID_ODF_PREFIX}`")))?;
        let (_, bytes) = multibase::decode(encoded).map_err(|e| error(e.to_string()))?;
        Self::from_bytes(&bytes).map_err(error)
    }
}

impl fmt::Display for DatasetId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_did_string())
    }
}

impl fmt::Debug for DatasetId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "DatasetId({self})")
    }
}

impl serde::Serialize for DatasetId {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.to_did_string())
    }
}

impl<'de> serde::Deserialize<'de> for DatasetId {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        String::deserialize(deserializer)?
            .parse()
            .map_err(serde::de::Error::custom)
    }
}

mod fb {
    use super::DatasetId;
    use crate::flatbuffers::builder::{Builder, RevPos};
    use crate::flatbuffers::codec::{FbField, missing};
    use crate::flatbuffers::reader::{DecodeError, Table};

    impl FbField for DatasetId {
        type Prepared = RevPos;

        fn prepare(&self, builder: &mut Builder) -> RevPos {
            builder.create_byte_vector(&self.to_bytes())
        }

        fn push(prepared: &RevPos, builder: &mut Builder, slot: u16) {
            builder.push_slot_offset(slot, *prepared);
        }

        fn read(table: &Table<'_>, slot: u16, name: &str) -> Result<Self, DecodeError> {
            let bytes = table.bytes(slot)?.ok_or_else(|| missing(name))?;
            DatasetId::from_bytes(bytes).map_err(|reason| DecodeError::invalid(name, reason))
        }
    }
}

/// Checks the `Hostname` rule: `Subdomain ("." Subdomain)*`, `Subdomain = [a-zA-Z0-9]+ ("-" [a-zA-Z0-9]+)*`.
fn validate_hostname(kind: &'static str, value: &str) -> Result<(), IdentityParseError> {
    let error = |reason: &str| IdentityParseError::Name {
        kind,
        value: value.to_string(),
        reason: reason.to_string(),
    };
    if value.is_empty() {
        return Err(error("must not be empty"));
    }
    if value.len() > 253 {
        return Err(error("must be at most 253 characters"));
    }
    for subdomain in value.split('.') {
        if subdomain.is_empty() {
            return Err(error("must not have empty segments between dots"));
        }
        for part in subdomain.split('-') {
            if part.is_empty() {
                return Err(error("dashes must separate letters or digits"));
            }
            if let Some(bad) = part.chars().find(|c| !c.is_ascii_alphanumeric()) {
                return Err(error(&format!(
                    "character `{bad}` is not allowed (letters, digits, `-` and `.` only)"
                )));
            }
        }
    }
    Ok(())
}

macro_rules! hostname_type {
    ($(#[$meta:meta])* $name:ident, $kind:literal) => {
        $(#[$meta])*
        #[derive(Clone)]
        pub struct $name(String);

        impl $name {
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl FromStr for $name {
            type Err = IdentityParseError;

            fn from_str(value: &str) -> Result<Self, Self::Err> {
                validate_hostname($kind, value)?;
                Ok(Self(value.to_string()))
            }
        }

        impl TryFrom<&str> for $name {
            type Error = IdentityParseError;

            fn try_from(value: &str) -> Result<Self, Self::Error> {
                value.parse()
            }
        }

        /// Names are case-insensitive: `ny-newyork` equals `NY-NewYork`.
        impl PartialEq for $name {
            fn eq(&self, other: &Self) -> bool {
                self.0.eq_ignore_ascii_case(&other.0)
            }
        }

        impl Eq for $name {}

        impl Hash for $name {
            fn hash<H: Hasher>(&self, state: &mut H) {
                self.0.to_ascii_lowercase().hash(state);
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({:?})", stringify!($name), self.0)
            }
        }

        impl serde::Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.serialize_str(&self.0)
            }
        }

        impl<'de> serde::Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                String::deserialize(deserializer)?.parse().map_err(serde::de::Error::custom)
            }
        }
    };
}

hostname_type!(
    /// Name of a dataset within an account, e.g. `property.parcel-polygons`.
    DatasetName,
    "dataset name"
);
hostname_type!(
    /// Name of an account (user or organisation).
    AccountName,
    "account name"
);
hostname_type!(
    /// Name of a repository a remote dataset lives in.
    RepoName,
    "repository name"
);

/// `(AccountName "/")? DatasetName`
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct DatasetAlias {
    pub account_name: Option<AccountName>,
    pub dataset_name: DatasetName,
}

impl DatasetAlias {
    pub fn new(account_name: Option<AccountName>, dataset_name: DatasetName) -> Self {
        Self {
            account_name,
            dataset_name,
        }
    }
}

impl FromStr for DatasetAlias {
    type Err = IdentityParseError;

    fn from_str(value: &str) -> Result<Self, Self::Err> {
        match value.split_once('/') {
            None => Ok(Self::new(None, value.parse()?)),
            Some((account, dataset)) => {
                if dataset.contains('/') {
                    return Err(IdentityParseError::Reference {
                        value: value.to_string(),
                        reason: "an alias has at most one `/` (account/dataset)".to_string(),
                    });
                }
                Ok(Self::new(Some(account.parse()?), dataset.parse()?))
            }
        }
    }
}

impl fmt::Display for DatasetAlias {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.account_name {
            Some(account) => write!(f, "{account}/{}", self.dataset_name),
            None => write!(f, "{}", self.dataset_name),
        }
    }
}

/// `RepoName "/" (AccountName "/")? DatasetName`
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct DatasetAliasRemote {
    pub repo_name: RepoName,
    pub account_name: Option<AccountName>,
    pub dataset_name: DatasetName,
}

impl fmt::Display for DatasetAliasRemote {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/", self.repo_name)?;
        if let Some(account) = &self.account_name {
            write!(f, "{account}/")?;
        }
        write!(f, "{}", self.dataset_name)
    }
}

/// `DatasetId / DatasetAlias`: a reference to a dataset in the local node.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum DatasetRef {
    Id(DatasetId),
    Alias(DatasetAlias),
}

impl FromStr for DatasetRef {
    type Err = IdentityParseError;

    fn from_str(value: &str) -> Result<Self, Self::Err> {
        if value.starts_with(DID_ODF_PREFIX) {
            return Ok(Self::Id(value.parse()?));
        }
        Ok(Self::Alias(value.parse()?))
    }
}

impl fmt::Display for DatasetRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Id(id) => write!(f, "{id}"),
            Self::Alias(alias) => write!(f, "{alias}"),
        }
    }
}

/// Any reference: local, remote (`repo/[account/]name`, `repo/did:odf:...`) or a URL.
///
/// `a/b` is ambiguous between `account/name` and `repo/name`; it parses as the local alias,
/// as the multi-tenant local format is what a node resolves first.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum DatasetRefAny {
    Local(DatasetRef),
    RemoteId(Option<RepoName>, DatasetId),
    RemoteAlias(DatasetAliasRemote),
    Url(String),
}

fn is_url(value: &str) -> bool {
    let Some((scheme, rest)) = value.split_once("://") else {
        return false;
    };
    !scheme.is_empty()
        && !rest.is_empty()
        && !rest.contains('\n')
        && scheme
            .split('+')
            .all(|part| !part.is_empty() && part.chars().all(|c| c.is_ascii_alphanumeric()))
}

impl FromStr for DatasetRefAny {
    type Err = IdentityParseError;

    fn from_str(value: &str) -> Result<Self, Self::Err> {
        if is_url(value) {
            return Ok(Self::Url(value.to_string()));
        }
        let parts: Vec<&str> = value.split('/').collect();
        match parts.as_slice() {
            [single] => Ok(Self::Local(single.parse()?)),
            [repo, id] if id.starts_with(DID_ODF_PREFIX) => {
                Ok(Self::RemoteId(Some(repo.parse()?), id.parse()?))
            }
            [_, _] => Ok(Self::Local(value.parse()?)),
            [repo, account, dataset] => Ok(Self::RemoteAlias(DatasetAliasRemote {
                repo_name: repo.parse()?,
                account_name: Some(account.parse()?),
                dataset_name: dataset.parse()?,
            })),
            _ => Err(IdentityParseError::Reference {
                value: value.to_string(),
                reason:
                    "expected `name`, `account/name`, `repo/account/name`, a did:odf id or a URL"
                        .to_string(),
            }),
        }
    }
}

impl serde::Serialize for DatasetAlias {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.to_string())
    }
}

impl<'de> serde::Deserialize<'de> for DatasetAlias {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        String::deserialize(deserializer)?
            .parse()
            .map_err(serde::de::Error::custom)
    }
}
