//! Where deliveries may go: http(s) URLs only, and by default never to loopback, private,
//! link-local or other non-public addresses (server-side request forgery). The check runs when
//! a subscription is created and again before each delivery, on the addresses the name resolves
//! to then; the delivery connects to the address that was checked (no second lookup to rebind).

use std::net::{IpAddr, SocketAddr};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct TargetRefused(pub String);

/// A URL allowed as a target, with the address to connect to.
#[derive(Debug, Clone)]
pub struct CheckedTarget {
    pub url: url::Url,
    pub host: String,
    pub address: SocketAddr,
}

pub fn parse(text: &str) -> Result<url::Url, TargetRefused> {
    if text.len() > 2_000 {
        return Err(TargetRefused("url: at most 2000 bytes".into()));
    }
    let url = url::Url::parse(text)
        .map_err(|error| TargetRefused(format!("url: `{text}` is not a URL: {error}")))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(TargetRefused(format!(
            "url: only http and https targets are allowed, not `{}`",
            url.scheme()
        )));
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(TargetRefused("url: needs a host".into()));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(TargetRefused(
            "url: must not carry credentials; the signature authenticates deliveries".into(),
        ));
    }
    Ok(url)
}

/// Addresses that are not on the public internet.
pub fn is_private(address: IpAddr) -> bool {
    match address {
        IpAddr::V4(v4) => {
            let [a, b, ..] = v4.octets();
            v4.is_loopback()
                || v4.is_private()
                || v4.is_link_local()
                || v4.is_unspecified()
                || v4.is_broadcast()
                || v4.is_multicast()
                || v4.is_documentation()
                || a == 0
                || (a == 100 && (64..128).contains(&b)) // carrier-grade NAT
                || (a == 198 && (b == 18 || b == 19)) // benchmarking
                || a >= 240
        }
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return is_private(IpAddr::V4(v4));
            }
            let first = v6.segments()[0];
            v6.is_loopback()
                || v6.is_unspecified()
                || v6.is_multicast()
                || (first & 0xfe00) == 0xfc00 // unique local
                || (first & 0xffc0) == 0xfe80 // link local
                || first == 0x2001 && v6.segments()[1] == 0x0db8 // documentation
        }
    }
}

/// Resolves the URL's host and checks every address it has.
pub async fn check(text: &str, allow_private: bool) -> Result<CheckedTarget, TargetRefused> {
    let url = parse(text)?;
    let host = url.host_str().unwrap_or_default().to_string();
    let port = url.port_or_known_default().unwrap_or(443);
    let lookup_host = host
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_string();
    let addresses: Vec<SocketAddr> = tokio::net::lookup_host((lookup_host.as_str(), port))
        .await
        .map_err(|error| TargetRefused(format!("url: cannot resolve `{host}`: {error}")))?
        .collect();
    let Some(first) = addresses.first().copied() else {
        return Err(TargetRefused(format!("url: `{host}` has no address")));
    };
    if !allow_private
        && let Some(private) = addresses.iter().find(|address| is_private(address.ip()))
    {
        return Err(TargetRefused(format!(
            "url: `{host}` resolves to {}, a loopback or private address; the operator allows \
             those with `webhooks.allow_private_targets`",
            private.ip()
        )));
    }
    Ok(CheckedTarget {
        url,
        host: lookup_host,
        address: first,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn private_ranges_are_recognized() {
        for private in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "0.0.0.0",
            "100.64.0.1",
            "::1",
            "fd00::1",
            "fe80::1",
            "::ffff:127.0.0.1",
            "224.0.0.1",
        ] {
            assert!(is_private(private.parse().unwrap()), "{private}");
        }
        for public in ["93.184.216.34", "8.8.8.8", "2606:4700::1111"] {
            assert!(!is_private(public.parse().unwrap()), "{public}");
        }
    }

    #[tokio::test]
    async fn targets_are_http_and_public_unless_allowed() {
        for bad in [
            "ftp://example.com/x",
            "file:///etc/passwd",
            "not a url",
            "http://user:pw@example.com/",
        ] {
            assert!(check(bad, true).await.is_err(), "{bad}");
        }
        for internal in [
            "http://127.0.0.1:8080/hook",
            "http://localhost/hook",
            "http://[::1]/hook",
            "http://169.254.169.254/latest/meta-data",
            "http://10.0.0.5/",
        ] {
            let refused = check(internal, false).await.unwrap_err().to_string();
            assert!(
                refused.contains("private") || refused.contains("resolve"),
                "{internal}: {refused}"
            );
        }
        let allowed = check("http://127.0.0.1:9/hook", true).await.unwrap();
        assert_eq!(allowed.address.port(), 9);
    }
}
