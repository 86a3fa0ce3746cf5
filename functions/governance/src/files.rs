//! Files attached to issues and comments (screenshots, PDFs, small CSVs): kept in the dataset's
//! `info/files/` in object storage, content-addressed (SHA3-256 of the bytes, so an upload twice
//! is stored once), their media type checked from the bytes themselves and required to agree
//! with the declared one, and served back with headers that keep a browser from running them.

use sha3::{Digest, Sha3_256};

use crate::error::GovernanceError;

/// Types a file may have: `(media type, extension)`. No HTML, SVG or scripts.
const TYPES: &[(&str, &str)] = &[
    ("image/png", "png"),
    ("image/jpeg", "jpg"),
    ("image/gif", "gif"),
    ("image/webp", "webp"),
    ("application/pdf", "pdf"),
    ("text/plain", "txt"),
    ("text/csv", "csv"),
    ("text/markdown", "md"),
    ("application/json", "json"),
];

/// What the bytes are, from their first bytes (text: valid UTF-8 without NUL).
fn sniff(bytes: &[u8]) -> Option<&'static str> {
    if bytes.starts_with(b"\x89PNG\r\n\x1a\n") {
        Some("image/png")
    } else if bytes.starts_with(&[0xff, 0xd8, 0xff]) {
        Some("image/jpeg")
    } else if bytes.starts_with(b"GIF87a") || bytes.starts_with(b"GIF89a") {
        Some("image/gif")
    } else if bytes.len() >= 12 && &bytes[..4] == b"RIFF" && &bytes[8..12] == b"WEBP" {
        Some("image/webp")
    } else if bytes.starts_with(b"%PDF-") {
        Some("application/pdf")
    } else if std::str::from_utf8(bytes).is_ok_and(|text| !text.contains('\0')) {
        Some("text/plain")
    } else {
        None
    }
}

/// A stored file's name: `<sha3 hex>.<extension>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileName {
    pub digest: String,
    pub extension: &'static str,
}

impl FileName {
    pub fn parse(text: &str) -> Option<Self> {
        let (digest, extension) = text.split_once('.')?;
        if digest.len() != 64
            || !digest
                .bytes()
                .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
        {
            return None;
        }
        let (_, extension) = TYPES.iter().find(|(_, known)| *known == extension)?;
        Some(Self {
            digest: digest.to_string(),
            extension,
        })
    }

    pub fn media_type(&self) -> &'static str {
        TYPES
            .iter()
            .find(|(_, extension)| *extension == self.extension)
            .map_or("application/octet-stream", |(media_type, _)| media_type)
    }

    /// Where it lives under the dataset's `info/`.
    pub fn info_key(&self) -> String {
        format!("files/{}.{}", self.digest, self.extension)
    }

    pub fn to_name(&self) -> String {
        format!("{}.{}", self.digest, self.extension)
    }
}

/// Checks an upload: size, and that its bytes are what the request's `Content-Type` says.
pub fn check_upload(
    bytes: &[u8],
    declared: Option<&str>,
    max_bytes: usize,
) -> Result<FileName, GovernanceError> {
    if bytes.is_empty() {
        return Err(GovernanceError::invalid("body", "the file is empty"));
    }
    if bytes.len() > max_bytes {
        return Err(GovernanceError::too_large(
            "body",
            format!(
                "the file is {} bytes; at most {max_bytes} are allowed",
                bytes.len()
            ),
        ));
    }
    let declared = declared
        .map(|value| {
            value
                .split(';')
                .next()
                .unwrap_or_default()
                .trim()
                .to_ascii_lowercase()
        })
        .ok_or_else(|| {
            GovernanceError::UnsupportedMediaType(format!(
                "send the file's Content-Type: one of {}",
                TYPES
                    .iter()
                    .map(|(media_type, _)| *media_type)
                    .collect::<Vec<_>>()
                    .join(", ")
            ))
        })?;
    let Some((media_type, extension)) =
        TYPES.iter().find(|(media_type, _)| *media_type == declared)
    else {
        return Err(GovernanceError::UnsupportedMediaType(format!(
            "`{declared}` files are not accepted; send one of {}",
            TYPES
                .iter()
                .map(|(media_type, _)| *media_type)
                .collect::<Vec<_>>()
                .join(", ")
        )));
    };
    let sniffed = sniff(bytes);
    let agrees = match sniffed {
        Some("text/plain") => media_type.starts_with("text/") || *media_type == "application/json",
        Some(found) => found == *media_type,
        None => false,
    };
    if !agrees {
        return Err(GovernanceError::UnsupportedMediaType(format!(
            "the bytes are {}, not the declared {media_type}",
            sniffed.unwrap_or("of no accepted type")
        )));
    }
    Ok(FileName {
        digest: format!("{:x}", Sha3_256::digest(bytes)),
        extension,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn declared_types_must_match_the_bytes() {
        let png = b"\x89PNG\r\n\x1a\nrest";
        let name = check_upload(png, Some("image/png"), 100).unwrap();
        assert_eq!(name.extension, "png");
        assert_eq!(FileName::parse(&name.to_name()), Some(name.clone()));
        assert!(check_upload(png, Some("image/jpeg"), 100).is_err());
        assert!(check_upload(b"<svg onload=alert(1)>", Some("image/svg+xml"), 100).is_err());
        assert!(check_upload(b"<html>", Some("text/html"), 100).is_err());
        assert!(
            check_upload(b"%PDF-1.7", Some("text/plain"), 100).is_err(),
            "a PDF declared as text is refused"
        );
        assert!(check_upload(b"%PDF-1.7", Some("application/pdf"), 100).is_ok());
        assert!(check_upload(&[0, 1, 2], Some("text/plain"), 100).is_err());
        assert!(check_upload(b"a,b\n1,2\n", Some("text/csv; charset=utf-8"), 100).is_ok());
        assert!(matches!(
            check_upload(&[b'a'; 101], Some("text/plain"), 100),
            Err(GovernanceError::TooLarge { .. })
        ));
        assert!(check_upload(b"x", None, 100).is_err());
        assert!(check_upload(b"", Some("text/plain"), 100).is_err());
    }

    #[test]
    fn names_are_digests_with_known_extensions() {
        let digest = "a".repeat(64);
        assert!(FileName::parse(&format!("{digest}.png")).is_some());
        for bad in [
            format!("{digest}.html"),
            format!("{}.png", "A".repeat(64)),
            format!("{}.png", "a".repeat(63)),
            "../../blocks/x.png".to_string(),
            digest.to_string(),
        ] {
            assert!(FileName::parse(&bad).is_none(), "{bad}");
        }
    }
}
