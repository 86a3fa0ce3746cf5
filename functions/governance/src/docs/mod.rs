//! A dataset's documentation as its chain holds it (the newest `SetInfo`, `SetLicense` and
//! `SetAttachments` win), and changes to it turned into those events (`change`), committed by
//! `writer` through the shared pipeline.

pub mod attachments;
pub mod change;
pub mod license;
pub mod writer;

use serde::Serialize;
use weir_dataset::ChainSnapshot;
use weir_odf::{AttachmentEmbedded, Attachments, MetadataEvent, SetInfo, SetLicense};

/// What readers see of a dataset's documentation.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Documentation {
    pub description: Option<String>,
    pub keywords: Vec<String>,
    pub license: Option<LicenseView>,
    pub attachments: Vec<AttachmentInfo>,
    /// The chain's head these were read at.
    pub head: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct LicenseView {
    pub short_name: String,
    pub name: String,
    pub spdx_id: Option<String>,
    pub website_url: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AttachmentInfo {
    pub path: String,
    /// From the path's extension; `application/octet-stream` for paths another tool wrote.
    pub media_type: String,
    pub size: usize,
}

/// The documentation events in force at a chain's head.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CurrentDocs {
    pub info: Option<SetInfo>,
    pub license: Option<SetLicense>,
    pub attachments: Vec<AttachmentEmbedded>,
}

impl CurrentDocs {
    pub fn of(chain: &ChainSnapshot) -> Self {
        let mut docs = Self::default();
        let mut attachments_seen = false;
        // Blocks are newest first: the first of each kind is the one in force.
        for (_, block) in &chain.blocks {
            match &block.event {
                MetadataEvent::SetInfo(info) if docs.info.is_none() => {
                    docs.info = Some(info.clone())
                }
                MetadataEvent::SetLicense(license) if docs.license.is_none() => {
                    docs.license = Some(license.clone())
                }
                MetadataEvent::SetAttachments(set) if !attachments_seen => {
                    attachments_seen = true;
                    let Attachments::Embedded(embedded) = &set.attachments;
                    docs.attachments = embedded.items.clone();
                }
                _ => {}
            }
        }
        docs
    }

    pub fn attachment(&self, path: &str) -> Option<&AttachmentEmbedded> {
        self.attachments.iter().find(|item| item.path == path)
    }

    pub fn view(&self, chain: &ChainSnapshot) -> Documentation {
        let info = self.info.clone().unwrap_or(SetInfo {
            description: None,
            keywords: None,
        });
        Documentation {
            description: info.description,
            keywords: info.keywords.unwrap_or_default(),
            license: self.license.as_ref().map(|license| LicenseView {
                short_name: license.short_name.clone(),
                name: license.name.clone(),
                spdx_id: license.spdx_id.clone(),
                website_url: license.website_url.clone(),
            }),
            attachments: self
                .attachments
                .iter()
                .map(|item| AttachmentInfo {
                    path: item.path.clone(),
                    media_type: attachments::check_path(&item.path)
                        .unwrap_or("application/octet-stream")
                        .to_string(),
                    size: item.content.len(),
                })
                .collect(),
            head: chain.head.as_ref().map(|head| head.hash.to_string()),
        }
    }
}
