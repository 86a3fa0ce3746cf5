//! A change to a dataset's documentation as a caller asks for it, checked against the limits,
//! and the events that bring a chain's documentation to it (none when it is there already, so
//! a repeated request commits nothing).

use serde::{Deserialize, Deserializer};
use weir_odf::{
    AttachmentEmbedded, Attachments, AttachmentsEmbedded, MetadataEvent, SetAttachments, SetInfo,
};

use super::CurrentDocs;
use super::attachments::{README_PATH, check_content, check_path};
use super::license::{LicenseInput, resolve};
use crate::config::DocsLimits;
use crate::error::GovernanceError;

/// `PATCH …/docs`: fields left out stay as they are; `null` clears a description, keywords or
/// the readme.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct DocsPatch {
    #[serde(default, deserialize_with = "present")]
    pub description: Option<Option<String>>,
    #[serde(default, deserialize_with = "present")]
    pub keywords: Option<Option<Vec<String>>>,
    #[serde(default, deserialize_with = "present")]
    pub license: Option<Option<LicenseInput>>,
    #[serde(default, deserialize_with = "present")]
    pub readme: Option<Option<String>>,
}

/// Tells a field given as `null` (`Some(None)`) from one left out (`None`).
fn present<'de, D, T>(deserializer: D) -> Result<Option<Option<T>>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<T>::deserialize(deserializer).map(Some)
}

/// One checked change.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DocsChange {
    pub description: Option<Option<String>>,
    pub keywords: Option<Vec<String>>,
    pub license: Option<weir_odf::SetLicense>,
    /// Attachments to put (`Some`) or remove (`None`), by path.
    pub attachments: Vec<(String, Option<String>)>,
}

impl DocsChange {
    pub fn from_patch(patch: DocsPatch, limits: &DocsLimits) -> Result<Self, GovernanceError> {
        let mut change = Self::default();
        if let Some(description) = patch.description {
            change.description = Some(match description {
                None => None,
                Some(text) => check_description(&text, limits)?,
            });
        }
        if let Some(keywords) = patch.keywords {
            change.keywords = Some(check_keywords(keywords.unwrap_or_default(), limits)?);
        }
        match patch.license {
            None => {}
            Some(None) => {
                return Err(GovernanceError::invalid(
                    "license",
                    "an ODF chain cannot drop its license; set another one instead",
                ));
            }
            Some(Some(input)) => change.license = Some(resolve(&input)?),
        }
        if let Some(readme) = patch.readme {
            let content = readme
                .map(|text| {
                    check_content(README_PATH, text.as_bytes(), limits.max_attachment_bytes)
                })
                .transpose()?;
            change.attachments.push((README_PATH.to_string(), content));
        }
        if change == Self::default() {
            return Err(GovernanceError::invalid(
                "body",
                "give at least one of `description`, `keywords`, `license`, `readme`",
            ));
        }
        Ok(change)
    }

    pub fn put_attachment(path: &str, content: String) -> Self {
        Self {
            attachments: vec![(path.to_string(), Some(content))],
            ..Self::default()
        }
    }

    pub fn remove_attachment(path: &str) -> Self {
        Self {
            attachments: vec![(path.to_string(), None)],
            ..Self::default()
        }
    }

    /// The events that make `current` what this change asks for; empty when it is already.
    pub fn events(
        &self,
        current: &CurrentDocs,
        limits: &DocsLimits,
    ) -> Result<Vec<MetadataEvent>, GovernanceError> {
        let mut events = Vec::new();
        let old_info = current.info.clone().unwrap_or(SetInfo {
            description: None,
            keywords: None,
        });
        let mut info = old_info.clone();
        if let Some(description) = &self.description {
            info.description = description.clone();
        }
        if let Some(keywords) = &self.keywords {
            info.keywords = (!keywords.is_empty()).then(|| keywords.clone());
        }
        if info != old_info {
            events.push(MetadataEvent::SetInfo(info));
        }
        if let Some(license) = &self.license
            && current.license.as_ref() != Some(license)
        {
            events.push(MetadataEvent::SetLicense(license.clone()));
        }
        let mut items = current.attachments.clone();
        for (path, content) in &self.attachments {
            let position = items.iter().position(|item| &item.path == path);
            match (position, content) {
                (Some(index), Some(content)) => items[index].content = content.clone(),
                (None, Some(content)) => items.push(AttachmentEmbedded {
                    path: path.clone(),
                    content: content.clone(),
                }),
                (Some(index), None) => {
                    items.remove(index);
                }
                (None, None) if path != README_PATH => {
                    return Err(GovernanceError::NotFound {
                        what: format!("attachment `{path}`"),
                    });
                }
                (None, None) => {}
            }
        }
        if items != current.attachments {
            if items.len() > limits.max_attachments {
                return Err(GovernanceError::too_large(
                    "attachments",
                    format!(
                        "a dataset may have at most {} attachments",
                        limits.max_attachments
                    ),
                ));
            }
            let total: usize = items.iter().map(|item| item.content.len()).sum();
            if total > limits.max_attachments_total_bytes {
                return Err(GovernanceError::too_large(
                    "attachments",
                    format!(
                        "all attachments together would be {total} bytes; at most {} are allowed",
                        limits.max_attachments_total_bytes
                    ),
                ));
            }
            items.sort_by(|a, b| a.path.cmp(&b.path));
            events.push(MetadataEvent::SetAttachments(SetAttachments {
                attachments: Attachments::Embedded(AttachmentsEmbedded { items }),
            }));
        }
        Ok(events)
    }
}

fn check_description(text: &str, limits: &DocsLimits) -> Result<Option<String>, GovernanceError> {
    let text = text.trim();
    if text.chars().count() > limits.max_description_chars {
        return Err(GovernanceError::too_large(
            "description",
            format!("is longer than {} characters", limits.max_description_chars),
        ));
    }
    if text
        .chars()
        .any(|c| c.is_control() && c != '\n' && c != '\t')
    {
        return Err(GovernanceError::invalid(
            "description",
            "must not contain control characters",
        ));
    }
    Ok((!text.is_empty()).then(|| text.to_string()))
}

/// Trimmed, each once (the first spelling kept, compared case-insensitively), within limits.
fn check_keywords(
    keywords: Vec<String>,
    limits: &DocsLimits,
) -> Result<Vec<String>, GovernanceError> {
    let mut kept: Vec<String> = Vec::new();
    for (index, keyword) in keywords.iter().enumerate() {
        let keyword = keyword.trim();
        let field = format!("keywords[{index}]");
        if keyword.is_empty() || keyword.chars().count() > limits.max_keyword_chars {
            return Err(GovernanceError::invalid(
                field,
                format!("must be 1 to {} characters", limits.max_keyword_chars),
            ));
        }
        if keyword.chars().any(char::is_control) {
            return Err(GovernanceError::invalid(
                field,
                "must not contain control characters",
            ));
        }
        if !kept
            .iter()
            .any(|k| k.to_lowercase() == keyword.to_lowercase())
        {
            kept.push(keyword.to_string());
        }
    }
    if kept.len() > limits.max_keywords {
        return Err(GovernanceError::invalid(
            "keywords",
            format!("at most {} keywords", limits.max_keywords),
        ));
    }
    Ok(kept)
}

/// Checks a path for `PUT`/`DELETE …/docs/attachments/{path}`.
pub fn checked_path(path: &str) -> Result<&str, GovernanceError> {
    check_path(path).map(|_| path)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn patch(json: &str) -> Result<DocsChange, GovernanceError> {
        let patch: DocsPatch = serde_json::from_str(json).unwrap();
        DocsChange::from_patch(patch, &DocsLimits::default())
    }

    #[test]
    fn an_unchanged_request_yields_no_event() {
        let change = patch(r#"{"description": "Rain", "keywords": ["a", "A", " b "]}"#).unwrap();
        assert_eq!(
            change.keywords,
            Some(vec!["a".to_string(), "b".to_string()])
        );
        let events = change
            .events(&CurrentDocs::default(), &DocsLimits::default())
            .unwrap();
        assert_eq!(events.len(), 1);
        let MetadataEvent::SetInfo(info) = &events[0] else {
            panic!("{events:?}")
        };
        let current = CurrentDocs {
            info: Some(info.clone()),
            ..CurrentDocs::default()
        };
        assert!(
            change
                .events(&current, &DocsLimits::default())
                .unwrap()
                .is_empty()
        );
    }

    #[test]
    fn keywords_alone_keep_the_description() {
        let current = CurrentDocs {
            info: Some(SetInfo {
                description: Some("Rain".into()),
                keywords: None,
            }),
            ..CurrentDocs::default()
        };
        let events = patch(r#"{"keywords": ["weather"]}"#)
            .unwrap()
            .events(&current, &DocsLimits::default())
            .unwrap();
        assert_eq!(
            events,
            vec![MetadataEvent::SetInfo(SetInfo {
                description: Some("Rain".into()),
                keywords: Some(vec!["weather".into()]),
            })]
        );
    }

    #[test]
    fn bad_patches_name_their_field() {
        for (body, field) in [
            (r#"{}"#, "body"),
            (r#"{"license": null}"#, "license"),
            (r#"{"keywords": [""]}"#, "keywords[0]"),
            (r#"{"description": "a\u0007b"}"#, "description"),
            (r#"{"license": {"spdxId": "nope"}}"#, "license.spdxId"),
        ] {
            let error = patch(body).unwrap_err().to_string();
            assert!(error.starts_with(field), "{body}: {error}");
        }
        let long = format!(r#"{{"description": "{}"}}"#, "x".repeat(2001));
        assert!(matches!(
            patch(&long),
            Err(GovernanceError::TooLarge { .. })
        ));
    }

    #[test]
    fn attachments_stay_within_their_total() {
        let limits = DocsLimits {
            max_attachments_total_bytes: 10,
            ..DocsLimits::default()
        };
        let current = CurrentDocs {
            attachments: vec![AttachmentEmbedded {
                path: "a.md".into(),
                content: "12345678".into(),
            }],
            ..CurrentDocs::default()
        };
        let put = DocsChange::put_attachment("b.md", "123".into());
        assert!(matches!(
            put.events(&current, &limits),
            Err(GovernanceError::TooLarge { .. })
        ));
        let remove = DocsChange::remove_attachment("a.md");
        assert_eq!(remove.events(&current, &limits).unwrap().len(), 1);
        let missing = DocsChange::remove_attachment("c.md");
        assert!(matches!(
            missing.events(&current, &limits),
            Err(GovernanceError::NotFound { .. })
        ));
    }
}
