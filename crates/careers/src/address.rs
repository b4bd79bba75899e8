//! Where a company's career page may point: http(s), and not this machine or its private
//! network unless the deployment allows it (`CAREERS_ALLOW_PRIVATE`), so a company URL cannot
//! aim trawl's fetchers at internal services.
use std::net::IpAddr;

use url::Url;

use crate::CareersError;

/// Checks a career page URL: http(s) with a host, and unless `allow_private`, not an address
/// of this machine or its private network (a literal address, `localhost`, or a name that
/// resolves to one), so a company's URL cannot point trawl at internal services.
pub async fn check_url(text: &str, allow_private: bool) -> Result<Url, CareersError> {
    let invalid = |why: String| CareersError::Invalid(format!("url {text:?}: {why}"));
    let url = Url::parse(text.trim()).map_err(|e| invalid(e.to_string()))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(invalid(format!(
            "must be http or https, not {}",
            url.scheme()
        )));
    }
    let host = url
        .host_str()
        .ok_or_else(|| invalid("has no host".into()))?;
    if allow_private {
        return Ok(url);
    }
    let refused = |address: IpAddr| {
        invalid(format!(
            "points at the private address {address} (set CAREERS_ALLOW_PRIVATE=true to allow)"
        ))
    };
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    if let Ok(address) = bare.parse::<IpAddr>() {
        return if is_private(address) {
            Err(refused(address))
        } else {
            Ok(url)
        };
    }
    if bare == "localhost" || bare.ends_with(".localhost") {
        return Err(refused(IpAddr::from([127, 0, 0, 1])));
    }
    // A name that does not resolve now is kept (its checks will fail with the reason); one
    // that resolves to a private address is refused.
    let port = url.port_or_known_default().unwrap_or(80);
    if let Ok(addresses) = tokio::net::lookup_host((bare, port)).await {
        for address in addresses {
            if is_private(address.ip()) {
                return Err(refused(address.ip()));
            }
        }
    }
    Ok(url)
}

fn is_private(address: IpAddr) -> bool {
    match address {
        IpAddr::V4(v4) => {
            v4.is_private()
                || v4.is_loopback()
                || v4.is_link_local()
                || v4.is_unspecified()
                || v4.is_broadcast()
                || v4.octets()[0] == 100 && (64..128).contains(&v4.octets()[1])
        }
        IpAddr::V6(v6) => {
            v6.is_loopback()
                || v6.is_unspecified()
                || (v6.segments()[0] & 0xfe00) == 0xfc00
                || (v6.segments()[0] & 0xffc0) == 0xfe80
                || v6
                    .to_ipv4_mapped()
                    .is_some_and(|v4| is_private(IpAddr::V4(v4)))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn private_and_non_http_urls_are_refused() {
        for bad in [
            "ftp://acme.example/jobs",
            "http://127.0.0.1:8080/careers",
            "http://10.1.2.3/careers",
            "http://192.168.0.10/jobs",
            "http://[::1]/jobs",
            "http://169.254.169.254/latest/meta-data",
            "http://localhost/careers",
            "not a url",
        ] {
            let err = check_url(bad, false).await.unwrap_err().to_string();
            assert!(err.contains(bad.trim()), "{bad}: {err}");
        }
        assert!(
            check_url("https://93.184.215.14/careers", false)
                .await
                .is_ok()
        );
        assert!(
            check_url("http://127.0.0.1:8080/careers", true)
                .await
                .is_ok()
        );
    }
}
