//! The base URL's rules: http(s) only, no credentials, query or fragment in it, and plain http
//! only to a loopback host unless `--allow-insecure-http` says otherwise. Checked once, when the
//! client is built. URLs in messages never show a user name, a password, a query or a fragment:
//! any of them may hold a secret (`?api_key=…`).

use reqwest::Url;

/// A base URL that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UrlError {
    #[error("`{0}` is not a valid URL: {1}")]
    Invalid(String, String),
    #[error("`{0}` must start with https:// (or http://)")]
    Scheme(String),
    #[error(
        "`{0}` contains a user name or password; pass credentials through the environment instead"
    )]
    Credentials(String),
    #[error(
        "`{0}` uses plain http:// to a host that is not loopback; use https://, or pass --allow-insecure-http"
    )]
    Insecure(String),
    #[error(
        "`{0}` has a query or a fragment (?…, #…); a base URL has neither, and credentials go in \
         the environment"
    )]
    Query(String),
}

/// Checks a base URL: http(s) only, no credentials, query or fragment in it, plain http only to
/// loopback unless allowed. Returns it without a trailing slash.
pub fn check_base_url(url: &str, allow_insecure_http: bool) -> Result<String, UrlError> {
    let parsed = Url::parse(url).map_err(|e| UrlError::Invalid(scrubbed(url), e.to_string()))?;
    if !parsed.username().is_empty() || parsed.password().is_some() {
        return Err(UrlError::Credentials(shown(&parsed)));
    }
    match parsed.scheme() {
        "https" => {}
        "http" if allow_insecure_http || is_loopback(&parsed) => {}
        "http" => return Err(UrlError::Insecure(shown(&parsed))),
        // Not http(s): its parts may not mean what they would in one.
        _ => return Err(UrlError::Scheme(scrubbed(url))),
    }
    if parsed.query().is_some() || parsed.fragment().is_some() {
        return Err(UrlError::Query(shown(&parsed)));
    }
    Ok(url.trim_end_matches('/').to_string())
}

/// Text that should have been a URL, as messages show it: cut at `?` or `#`, and without what
/// comes before an `@` in its host part.
fn scrubbed(text: &str) -> String {
    let text = &text[..text.find(['?', '#']).unwrap_or(text.len())];
    let host_start = text.find("//").map_or(0, |i| i + 2);
    let host_end = text[host_start..]
        .find('/')
        .map_or(text.len(), |i| host_start + i);
    match text[host_start..host_end].rfind('@') {
        Some(at) => format!("{}{}", &text[..host_start], &text[host_start + at + 1..]),
        None => text.to_string(),
    }
}

/// A URL as messages show it: no user name or password, no query, no fragment (any of them
/// may hold a secret, e.g. `?api_key=…`).
pub(super) fn shown(url: &Url) -> String {
    let mut shown = url.clone();
    let _ = shown.set_username("");
    let _ = shown.set_password(None);
    shown.set_query(None);
    shown.set_fragment(None);
    shown.to_string()
}

/// Why a redirect was not followed, naming where it pointed (as [`shown`]). `location` is the
/// header's value, relative to `request` when it is not absolute.
pub(super) fn redirect_message(request: &Url, location: Option<&str>) -> String {
    let target = location.map(|l| request.join(l.trim()));
    let pointed = match target {
        Some(Ok(url)) => format!("redirected to {}", shown(&url)),
        Some(Err(_)) => "redirected to an invalid Location".to_string(),
        None => "redirected without a Location".to_string(),
    };
    format!(
        "{pointed}, not followed: credentials go nowhere but --url; if the API has moved, \
         point --url at its new address"
    )
}

fn is_loopback(url: &Url) -> bool {
    let host = url.host_str().unwrap_or("");
    host.eq_ignore_ascii_case("localhost")
        || host
            .trim_matches(['[', ']'])
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base_urls_are_checked() {
        assert_eq!(
            check_base_url("http://127.0.0.1:8006/v1/", false),
            Ok("http://127.0.0.1:8006/v1".into())
        );
        assert!(check_base_url("http://localhost:8000/api/public/v1", false).is_ok());
        assert!(check_base_url("https://api.airbyte.com/v1", false).is_ok());
        assert!(matches!(
            check_base_url("http://airbyte.internal/v1", false),
            Err(UrlError::Insecure(_))
        ));
        assert!(check_base_url("http://airbyte.internal/v1", true).is_ok());
        assert!(matches!(
            check_base_url("ftp://x/v1", false),
            Err(UrlError::Scheme(_))
        ));
        for (url, want) in [
            (
                "https://me:hunter2@api.airbyte.com/v1?k=hunter2",
                "https://api.airbyte.com/v1",
            ),
            (
                "https://api.airbyte.com/v1?api_key=hunter2",
                "https://api.airbyte.com/v1",
            ),
            (
                "https://api.airbyte.com/v1#hunter2",
                "https://api.airbyte.com/v1",
            ),
            ("ftp://me:hunter2@x/v1?k=hunter2", "ftp://x/v1"),
            (
                "http://airbyte.internal/v1?k=hunter2",
                "http://airbyte.internal/v1",
            ),
            ("http//me:hunter2@x/v1?k=hunter2", "http//x/v1"),
            ("me:hunter2@x", "x"),
        ] {
            let err = check_base_url(url, false).unwrap_err().to_string();
            assert!(!err.contains("hunter2"), "{err}");
            assert!(err.starts_with(&format!("`{want}`")), "{url}: {err}");
        }
    }

    #[test]
    fn redirects_name_where_they_pointed_without_secrets() {
        let request = Url::parse("https://api.example.com/v1/connections/x").unwrap();
        let message = redirect_message(&request, Some("https://u:p@evil.example:8443/a?k=s#f"));
        assert!(
            message.starts_with("redirected to https://evil.example:8443/a, not followed"),
            "{message}"
        );
        let message = redirect_message(&request, Some("/v2/x?token=s"));
        assert!(message.starts_with("redirected to https://api.example.com/v2/x,"));
        assert!(redirect_message(&request, None).starts_with("redirected without a Location"));
        assert!(redirect_message(&request, Some("http://[::1")).contains("invalid Location"));
    }
}
