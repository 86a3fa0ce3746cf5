//! Licenses: an SPDX license list id (resolved to its full name and page), or a custom license
//! that names itself and where its terms are.

use serde::Deserialize;
use weir_odf::SetLicense;

use crate::error::GovernanceError;

/// A license as a caller gives it: `{"spdxId": "CC-BY-4.0"}`, or
/// `{"shortName", "name", "websiteUrl"}` for a license outside the SPDX list.
#[derive(Debug, Clone, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct LicenseInput {
    pub spdx_id: Option<String>,
    pub short_name: Option<String>,
    pub name: Option<String>,
    pub website_url: Option<String>,
}

const MAX_NAME_CHARS: usize = 200;

/// The `SetLicense` event for `input`, or why it is not a license.
pub fn resolve(input: &LicenseInput) -> Result<SetLicense, GovernanceError> {
    if let Some(id) = &input.spdx_id {
        let Some(license) = spdx::license_id(id) else {
            let hint = spdx::imprecise_license_id(id)
                .map(|(license, _)| format!(" (did you mean `{}`?)", license.name))
                .unwrap_or_default();
            return Err(GovernanceError::invalid(
                "license.spdxId",
                format!(
                    "`{}` is not an SPDX license list id{hint}; give `shortName`, `name` and `websiteUrl` for a custom license",
                    clip(id)
                ),
            ));
        };
        let website_url = match &input.website_url {
            Some(url) => check_url(url)?,
            None => format!("https://spdx.org/licenses/{}.html", license.name),
        };
        return Ok(SetLicense {
            short_name: input
                .short_name
                .as_deref()
                .map(|name| check_name("license.shortName", name))
                .transpose()?
                .unwrap_or_else(|| license.name.to_string()),
            name: input
                .name
                .as_deref()
                .map(|name| check_name("license.name", name))
                .transpose()?
                .unwrap_or_else(|| license.full_name.to_string()),
            spdx_id: Some(license.name.to_string()),
            website_url,
        });
    }
    let missing: Vec<&str> = [
        ("shortName", input.short_name.is_none()),
        ("name", input.name.is_none()),
        ("websiteUrl", input.website_url.is_none()),
    ]
    .into_iter()
    .filter(|(_, missing)| *missing)
    .map(|(field, _)| field)
    .collect();
    if !missing.is_empty() {
        return Err(GovernanceError::invalid(
            "license",
            format!(
                "give `spdxId`, or name a custom license with `shortName`, `name` and `websiteUrl` (missing: {})",
                missing.join(", ")
            ),
        ));
    }
    Ok(SetLicense {
        short_name: check_name(
            "license.shortName",
            input.short_name.as_deref().unwrap_or(""),
        )?,
        name: check_name("license.name", input.name.as_deref().unwrap_or(""))?,
        spdx_id: None,
        website_url: check_url(input.website_url.as_deref().unwrap_or(""))?,
    })
}

fn check_name(field: &str, name: &str) -> Result<String, GovernanceError> {
    let name = name.trim();
    if name.is_empty() || name.chars().count() > MAX_NAME_CHARS {
        return Err(GovernanceError::invalid(
            field,
            format!("must be 1 to {MAX_NAME_CHARS} characters"),
        ));
    }
    if name.chars().any(char::is_control) {
        return Err(GovernanceError::invalid(
            field,
            "must not contain control characters",
        ));
    }
    Ok(name.to_string())
}

/// An absolute http(s) URL, as ODF's `websiteUrl` format requires.
fn check_url(text: &str) -> Result<String, GovernanceError> {
    let field = "license.websiteUrl";
    let url = url::Url::parse(text.trim()).map_err(|error| {
        GovernanceError::invalid(field, format!("`{}` is not a URL: {error}", clip(text)))
    })?;
    if !matches!(url.scheme(), "http" | "https") || url.host().is_none() {
        return Err(GovernanceError::invalid(
            field,
            "must be an http or https URL with a host",
        ));
    }
    if text.len() > 2_000 {
        return Err(GovernanceError::invalid(field, "is longer than 2000 bytes"));
    }
    Ok(url.to_string())
}

/// At most 60 characters of a caller's text, for messages.
fn clip(text: &str) -> String {
    let clipped: String = text.chars().take(60).collect();
    if clipped.len() < text.len() {
        format!("{clipped}…")
    } else {
        clipped
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spdx(id: &str) -> LicenseInput {
        LicenseInput {
            spdx_id: Some(id.to_string()),
            ..LicenseInput::default()
        }
    }

    #[test]
    fn spdx_ids_resolve_to_their_names_and_pages() {
        let license = resolve(&spdx("CC-BY-4.0")).unwrap();
        assert_eq!(license.short_name, "CC-BY-4.0");
        assert_eq!(
            license.name,
            "Creative Commons Attribution 4.0 International"
        );
        assert_eq!(license.spdx_id.as_deref(), Some("CC-BY-4.0"));
        assert_eq!(
            license.website_url,
            "https://spdx.org/licenses/CC-BY-4.0.html"
        );
    }

    #[test]
    fn unknown_ids_are_refused_with_a_hint() {
        let error = resolve(&spdx("Apache 2")).unwrap_err().to_string();
        assert!(error.starts_with("license.spdxId"), "{error}");
        assert!(error.contains("Apache-2.0"), "{error}");
        assert!(resolve(&spdx("MIT OR Apache-2.0")).is_err());
        assert!(resolve(&spdx("")).is_err());
    }

    #[test]
    fn custom_licenses_need_a_name_and_an_http_page() {
        let custom = LicenseInput {
            short_name: Some("OGL-Ontario".into()),
            name: Some("Open Government Licence – Ontario".into()),
            website_url: Some("https://www.ontario.ca/page/open-government-licence-ontario".into()),
            spdx_id: None,
        };
        let license = resolve(&custom).unwrap();
        assert_eq!(license.spdx_id, None);
        assert_eq!(license.short_name, "OGL-Ontario");
        let missing = resolve(&LicenseInput {
            website_url: None,
            ..custom.clone()
        })
        .unwrap_err()
        .to_string();
        assert!(missing.contains("websiteUrl"), "{missing}");
        for url in ["javascript:alert(1)", "file:///etc/passwd", "not a url"] {
            let error = resolve(&LicenseInput {
                website_url: Some(url.into()),
                ..custom.clone()
            })
            .unwrap_err()
            .to_string();
            assert!(error.starts_with("license.websiteUrl"), "{url}: {error}");
        }
        let control = resolve(&LicenseInput {
            name: Some("bad\u{0}name".into()),
            ..custom
        });
        assert!(control.is_err());
    }
}
