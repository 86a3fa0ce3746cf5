//! Text attachments embedded in the chain (`SetAttachments`): where they may live, what they may
//! be, and how they are served back. ODF keeps only a path and the content as a string, so the
//! media type follows from the path's extension, and content is UTF-8 text stored as given.

use crate::error::GovernanceError;

/// The readme: `PATCH …/docs {"readme": …}` writes this attachment.
pub const README_PATH: &str = "README.md";

const MAX_PATH_BYTES: usize = 255;

/// Extensions attachments may have, with the media type each is served as. Only text that no
/// browser runs: no HTML, SVG or scripts.
const MEDIA_TYPES: &[(&str, &str)] = &[
    ("md", "text/markdown"),
    ("markdown", "text/markdown"),
    ("txt", "text/plain"),
    ("csv", "text/csv"),
    ("tsv", "text/tab-separated-values"),
    ("json", "application/json"),
    ("yaml", "application/yaml"),
    ("yml", "application/yaml"),
    ("sql", "application/sql"),
    ("ipynb", "application/x-ipynb+json"),
];

/// The media type of an attachment at `path`, after checking the path: relative, `/`-separated
/// segments of letters, digits, `.`, `_` and `-`, none of them `.` or `..`, with a known
/// extension.
pub fn check_path(path: &str) -> Result<&'static str, GovernanceError> {
    let field = "path";
    if path.is_empty() || path.len() > MAX_PATH_BYTES {
        return Err(GovernanceError::invalid(
            field,
            format!("must be 1 to {MAX_PATH_BYTES} bytes"),
        ));
    }
    for segment in path.split('/') {
        if segment.is_empty() || segment == "." || segment == ".." {
            return Err(GovernanceError::invalid(
                field,
                format!("`{path}` must be relative, with no empty, `.` or `..` segments"),
            ));
        }
        if let Some(bad) = segment
            .chars()
            .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-')))
        {
            return Err(GovernanceError::invalid(
                field,
                format!(
                    "`{}` may hold only letters, digits, `.`, `_`, `-` and `/` (found {bad:?})",
                    path.escape_debug()
                ),
            ));
        }
    }
    let extension = path
        .rsplit_once('.')
        .map(|(_, extension)| extension.to_ascii_lowercase())
        .unwrap_or_default();
    MEDIA_TYPES
        .iter()
        .find(|(known, _)| *known == extension)
        .map(|(_, media_type)| *media_type)
        .ok_or_else(|| {
            GovernanceError::UnsupportedMediaType(format!(
                "`{path}`: attachments are text files ending in {}",
                MEDIA_TYPES
                    .iter()
                    .map(|(extension, _)| format!(".{extension}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ))
        })
}

/// Checks the `Content-Type` a caller declared for an attachment at `path` (absent is fine):
/// it must be the type the path implies, or `text/plain` / `application/octet-stream` from
/// tools that know no better.
pub fn check_declared_type(path: &str, declared: Option<&str>) -> Result<(), GovernanceError> {
    let expected = check_path(path)?;
    let Some(declared) = declared else {
        return Ok(());
    };
    let essence = declared
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    if essence == expected || essence == "text/plain" || essence == "application/octet-stream" {
        return Ok(());
    }
    // Accept the common aliases of YAML and markdown.
    let alias = matches!(
        (expected, essence.as_str()),
        (
            "application/yaml",
            "text/yaml" | "application/x-yaml" | "text/x-yaml"
        ) | ("text/markdown", "text/x-markdown")
    );
    if alias {
        return Ok(());
    }
    Err(GovernanceError::UnsupportedMediaType(format!(
        "`{path}` is {expected}, but the request's Content-Type is `{}`",
        declared.escape_debug()
    )))
}

/// The content of an upload as stored: UTF-8 text, as given.
pub fn check_content(
    path: &str,
    bytes: &[u8],
    max_bytes: usize,
) -> Result<String, GovernanceError> {
    if bytes.len() > max_bytes {
        return Err(GovernanceError::too_large(
            path,
            format!(
                "is {} bytes; an attachment may hold at most {max_bytes}",
                bytes.len()
            ),
        ));
    }
    let text = std::str::from_utf8(bytes).map_err(|error| {
        GovernanceError::invalid(
            path,
            format!(
                "attachments are UTF-8 text; byte {} is not",
                error.valid_up_to()
            ),
        )
    })?;
    if text.contains('\0') {
        return Err(GovernanceError::invalid(path, "text must not contain NUL"));
    }
    Ok(text.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_are_relative_safe_and_typed() {
        assert_eq!(check_path("README.md").unwrap(), "text/markdown");
        assert_eq!(check_path("docs/schema.YAML").unwrap(), "application/yaml");
        for bad in [
            "",
            "/etc/passwd.txt",
            "../x.md",
            "a//b.md",
            "a/./b.md",
            "a b.md",
            "a\\b.md",
            "naïve.md",
            "x.md/",
        ] {
            assert!(
                matches!(check_path(bad), Err(GovernanceError::Invalid { .. })),
                "{bad}"
            );
        }
        for untyped in ["index.html", "logo.svg", "run.sh", "Makefile"] {
            assert!(
                matches!(
                    check_path(untyped),
                    Err(GovernanceError::UnsupportedMediaType(_))
                ),
                "{untyped}"
            );
        }
        assert!(check_path(&"a".repeat(300)).is_err());
    }

    #[test]
    fn declared_types_must_agree_with_the_path() {
        assert!(check_declared_type("README.md", None).is_ok());
        assert!(check_declared_type("README.md", Some("text/markdown; charset=utf-8")).is_ok());
        assert!(check_declared_type("a.yml", Some("text/yaml")).is_ok());
        assert!(check_declared_type("README.md", Some("text/plain")).is_ok());
        assert!(check_declared_type("README.md", Some("text/html")).is_err());
        assert!(check_declared_type("data.json", Some("image/png")).is_err());
    }

    #[test]
    fn content_is_bounded_utf8_text() {
        assert_eq!(check_content("a.md", b"# Hi\n", 10).unwrap(), "# Hi\n");
        assert!(matches!(
            check_content("a.md", b"12345678901", 10),
            Err(GovernanceError::TooLarge { .. })
        ));
        assert!(check_content("a.md", &[0xff, 0xfe], 10).is_err());
        assert!(check_content("a.md", b"a\0b", 10).is_err());
    }
}
