//! Where polling sources may fetch from: the operator's policy, checked when a dataset is
//! created (a 400 naming the field) and again by the ingest function on every fetch (the
//! resolved addresses of every request and redirect, the real path of every file).
//!
//! ```yaml
//! polling:
//!   allow_private_networks: false   # loopback, private, link-local, CGNAT, unique-local
//!   file_roots: [/srv/inbox]        # FilesGlob over local files only below these
//!   s3_buckets: [landing-zone]      # FilesGlob over s3://BUCKET/... only for these
//!   s3: { endpoint: http://..., region: us-east-1 }  # how to reach them; default: AWS_* env
//! ```

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::{Component, Path, PathBuf};

use serde::Deserialize;
use url::{Host, Url};
use weir_odf::FetchStep;

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PollingPolicy {
    /// Fetch from loopback and private addresses. Off by default: a dataset's URL must not
    /// reach the node's own network (cloud metadata endpoints, internal services).
    #[serde(default)]
    pub allow_private_networks: bool,
    /// Directories that FilesGlob sources may read below; none by default.
    #[serde(default)]
    pub file_roots: Vec<PathBuf>,
    /// Buckets that FilesGlob sources may list and read (`s3://BUCKET/...`); none by default.
    #[serde(default)]
    pub s3_buckets: Vec<String>,
    /// How the ingest function reaches those buckets; from the `AWS_*` environment when absent.
    #[serde(default)]
    pub s3: Option<S3Access>,
}

/// Endpoint and credentials for reading source buckets.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct S3Access {
    pub endpoint: Option<String>,
    pub region: Option<String>,
    pub access_key_id: Option<String>,
    pub secret_access_key: Option<String>,
    #[serde(default)]
    pub allow_http: bool,
}

/// A polling source the policy refuses, or cannot understand.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct PolicyViolation {
    /// Where in `SetPollingSource` the problem is, e.g. `fetch.url`.
    pub field: &'static str,
    pub message: String,
}

/// What a FilesGlob path names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GlobTarget {
    /// An absolute local path with a glob pattern.
    Local { pattern: String },
    /// Keys of `bucket` matching `key_pattern`.
    S3 { bucket: String, key_pattern: String },
}

fn violation(field: &'static str, message: impl Into<String>) -> PolicyViolation {
    PolicyViolation {
        field,
        message: message.into(),
    }
}

impl PollingPolicy {
    /// A local node (`weir up`): its user owns the machine and its network.
    pub fn local() -> Self {
        Self {
            allow_private_networks: true,
            file_roots: vec![PathBuf::from("/")],
            s3_buckets: Vec::new(),
            s3: None,
        }
    }

    /// Checks a fetch step as written; addresses behind host names are checked when fetching.
    pub fn check_fetch(&self, fetch: &FetchStep) -> Result<(), PolicyViolation> {
        match fetch {
            FetchStep::Url(step) => {
                let url = Url::parse(&step.url)
                    .map_err(|error| violation("fetch.url", format!("not a URL: {error}")))?;
                self.check_url(&url)
            }
            FetchStep::FilesGlob(step) => self.glob_target(&step.path).map(|_| ()),
            FetchStep::Mqtt(_) => Err(violation(
                "fetch.kind",
                "Mqtt polling sources are not supported: devices send over MQTT to the device \
                 bridge instead",
            )),
            FetchStep::Container(_) => Err(violation(
                "fetch.kind",
                "Container polling sources are not supported: this node runs no containers",
            )),
            FetchStep::EthereumLogs(_) => Err(violation(
                "fetch.kind",
                "EthereumLogs polling sources are not supported",
            )),
        }
    }

    /// The scheme must be http(s); a host written as an address (or `localhost`) must be public
    /// unless private networks are allowed.
    pub fn check_url(&self, url: &Url) -> Result<(), PolicyViolation> {
        if !matches!(url.scheme(), "http" | "https") {
            return Err(violation(
                "fetch.url",
                format!(
                    "scheme `{}` is not allowed: use http or https",
                    url.scheme()
                ),
            ));
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err(violation(
                "fetch.url",
                "credentials in the URL are not allowed: pass them in `fetch.headers`",
            ));
        }
        let address = match url.host() {
            None => return Err(violation("fetch.url", "the URL has no host")),
            Some(Host::Ipv4(address)) => IpAddr::V4(address),
            Some(Host::Ipv6(address)) => IpAddr::V6(address),
            Some(Host::Domain(name)) => {
                let name = name.trim_end_matches('.').to_ascii_lowercase();
                if name == "localhost" || name.ends_with(".localhost") {
                    IpAddr::V4(Ipv4Addr::LOCALHOST)
                } else {
                    return Ok(());
                }
            }
        };
        if self.allows_address(address) {
            Ok(())
        } else {
            Err(violation(
                "fetch.url",
                format!(
                    "`{address}` is a loopback or private address, which this node does not \
                     fetch from (the operator may allow it with `polling.allow_private_networks`)"
                ),
            ))
        }
    }

    /// Whether a request may go to `address`.
    pub fn allows_address(&self, address: IpAddr) -> bool {
        self.allow_private_networks || is_public(address)
    }

    /// Where a FilesGlob path points, if the policy lets sources read there.
    pub fn glob_target(&self, path: &str) -> Result<GlobTarget, PolicyViolation> {
        if let Some(rest) = path.strip_prefix("s3://") {
            let (bucket, key_pattern) = rest.split_once('/').unwrap_or((rest, ""));
            if bucket.is_empty() || key_pattern.is_empty() {
                return Err(violation(
                    "fetch.path",
                    "an S3 path is `s3://BUCKET/KEY-PATTERN`",
                ));
            }
            if !self.s3_buckets.iter().any(|allowed| allowed == bucket) {
                return Err(violation(
                    "fetch.path",
                    format!(
                        "bucket `{bucket}` is not one that polling sources may read (the \
                         operator lists them in `polling.s3_buckets`)"
                    ),
                ));
            }
            check_pattern(key_pattern)?;
            return Ok(GlobTarget::S3 {
                bucket: bucket.to_string(),
                key_pattern: key_pattern.to_string(),
            });
        }
        if path.contains("://") {
            return Err(violation(
                "fetch.path",
                "FilesGlob takes an absolute local path or `s3://BUCKET/KEY-PATTERN`",
            ));
        }
        let local = Path::new(path);
        if !local.is_absolute() {
            return Err(violation("fetch.path", "a local path must be absolute"));
        }
        if local
            .components()
            .any(|component| matches!(component, Component::ParentDir))
        {
            return Err(violation("fetch.path", "`..` is not allowed in the path"));
        }
        if !self.under_file_root(local) {
            return Err(violation(
                "fetch.path",
                format!(
                    "`{path}` is not below a directory that polling sources may read (the \
                     operator lists them in `polling.file_roots`)"
                ),
            ));
        }
        check_pattern(path)?;
        Ok(GlobTarget::Local {
            pattern: path.to_string(),
        })
    }

    /// Whether a real (symlink-resolved) file path lies below a file root.
    pub fn under_file_root(&self, path: &Path) -> bool {
        under(path, &self.real_file_roots())
    }

    /// The file roots with their symlinks resolved (resolve once, check many paths with
    /// [`under`]).
    pub fn real_file_roots(&self) -> Vec<PathBuf> {
        self.file_roots
            .iter()
            .map(|root| std::fs::canonicalize(root).unwrap_or_else(|_| root.clone()))
            .collect()
    }
}

/// Whether `path` lies below one of `roots`.
pub fn under(path: &Path, roots: &[PathBuf]) -> bool {
    roots.iter().any(|root| path.starts_with(root))
}

fn check_pattern(pattern: &str) -> Result<(), PolicyViolation> {
    if pattern.len() > 1024 {
        return Err(violation(
            "fetch.path",
            "the pattern is longer than 1024 bytes",
        ));
    }
    glob::Pattern::new(pattern)
        .map(|_| ())
        .map_err(|error| violation("fetch.path", format!("not a glob pattern: {error}")))
}

/// Addresses on the public internet: not loopback, private, link-local (cloud metadata),
/// shared (CGNAT), documentation, multicast, broadcast or unspecified.
pub fn is_public(address: IpAddr) -> bool {
    match address {
        IpAddr::V4(v4) => is_public_v4(v4),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => is_public_v4(v4),
            None => is_public_v6(v6),
        },
    }
}

fn is_public_v4(address: Ipv4Addr) -> bool {
    let [a, b, c, _] = address.octets();
    !(address.is_loopback()
        || address.is_private()
        || address.is_link_local()
        || address.is_unspecified()
        || address.is_broadcast()
        || address.is_multicast()
        || address.is_documentation()
        || a == 0
        || (a == 100 && (64..128).contains(&b))
        || (a == 192 && b == 0 && c == 0)
        || (a == 198 && (b == 18 || b == 19))
        || a >= 240)
}

fn is_public_v6(address: Ipv6Addr) -> bool {
    let first = address.segments()[0];
    !(address.is_loopback()
        || address.is_unspecified()
        || address.is_multicast()
        || (first & 0xfe00) == 0xfc00
        || (first & 0xffc0) == 0xfe80
        || first == 0x2001 && address.segments()[1] == 0x0db8
        || address.to_ipv4().is_some_and(|v4| !is_public_v4(v4)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use weir_odf::{FetchStepFilesGlob, FetchStepUrl};

    fn url(text: &str) -> FetchStep {
        FetchStep::Url(FetchStepUrl {
            url: text.to_string(),
            event_time: None,
            cache: None,
            headers: None,
        })
    }

    fn glob(path: &str) -> FetchStep {
        FetchStep::FilesGlob(FetchStepFilesGlob {
            path: path.to_string(),
            event_time: None,
            cache: None,
            order: None,
        })
    }

    #[test]
    fn urls_need_http_and_a_public_host() {
        let policy = PollingPolicy::default();
        assert!(
            policy
                .check_fetch(&url("https://example.org/data.csv"))
                .is_ok()
        );
        for refused in [
            "file:///etc/passwd",
            "ftp://example.org/x",
            "gopher://example.org/",
            "http://127.0.0.1:8080/",
            "http://localhost/",
            "http://api.localhost/",
            "http://10.1.2.3/",
            "http://172.20.0.1/",
            "http://192.168.1.1/",
            "http://169.254.169.254/latest/meta-data/",
            "http://100.64.0.1/",
            "http://0.0.0.0/",
            "http://[::1]/",
            "http://[fd00::1]/",
            "http://[fe80::1]/",
            "http://[::ffff:127.0.0.1]/",
            "http://user:secret@example.org/",
            "not a url",
        ] {
            let error = policy.check_fetch(&url(refused)).unwrap_err();
            assert_eq!(error.field, "fetch.url", "{refused}");
        }
        let open = PollingPolicy {
            allow_private_networks: true,
            ..PollingPolicy::default()
        };
        assert!(open.check_fetch(&url("http://127.0.0.1:8080/")).is_ok());
        assert!(open.check_fetch(&url("file:///etc/passwd")).is_err());
    }

    #[test]
    fn globs_stay_below_the_roots_and_buckets_the_operator_named() {
        let policy = PollingPolicy {
            file_roots: vec![PathBuf::from("/srv/inbox")],
            s3_buckets: vec!["landing".to_string()],
            ..PollingPolicy::default()
        };
        assert_eq!(
            policy.glob_target("/srv/inbox/*.csv").unwrap(),
            GlobTarget::Local {
                pattern: "/srv/inbox/*.csv".to_string()
            }
        );
        assert_eq!(
            policy.glob_target("s3://landing/sensors/*.json").unwrap(),
            GlobTarget::S3 {
                bucket: "landing".to_string(),
                key_pattern: "sensors/*.json".to_string()
            }
        );
        for refused in [
            "/etc/*",
            "/srv/inbox/../../etc/passwd",
            "relative/*.csv",
            "s3://other/x/*.csv",
            "s3://landing",
            "http://example.org/*.csv",
            "/srv/inbox/[",
        ] {
            let error = policy.check_fetch(&glob(refused)).unwrap_err();
            assert_eq!(error.field, "fetch.path", "{refused}");
        }
    }

    #[test]
    fn public_addresses_are_told_from_the_rest() {
        assert!(is_public("93.184.216.34".parse().unwrap()));
        assert!(is_public("2606:2800:220:1::1".parse().unwrap()));
        assert!(!is_public("::ffff:10.0.0.1".parse().unwrap()));
        assert!(!is_public("198.18.0.1".parse().unwrap()));
        assert!(!is_public("255.255.255.255".parse().unwrap()));
    }
}
