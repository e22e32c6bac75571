//! RFC 6750 §2.1: credentials come only from `Authorization: Bearer <token>`.

use super::problem::ApiError;

pub fn bearer<'a>(header: Option<&'a str>, url: &str) -> Result<&'a str, ApiError> {
    // Tokens in URLs end up in logs and Referer headers; refuse rather than ignore, so the
    // client learns it leaked one (RFC 6750 §2.3 is a MAY we deliberately do not offer).
    let in_query = url
        .split_once('?')
        .is_some_and(|(_, q)| q.split('&').any(|p| p.starts_with("access_token=")));
    if in_query {
        return Err(ApiError::InvalidAuthRequest(
            "Tokens in the query string are not accepted",
        ));
    }
    let Some(value) = header else {
        return Err(ApiError::MissingCredentials(
            "An Authorization: Bearer header is required.",
        ));
    };
    // Fetch joins repeated headers with ", "; no single Bearer token contains a comma.
    if value.contains(',') {
        return Err(ApiError::InvalidAuthRequest("Only one Authorization value is allowed"));
    }
    let value = value.trim();
    let (scheme, token) = value.split_once(' ').unwrap_or((value, ""));
    if !scheme.eq_ignore_ascii_case("bearer") {
        return Err(ApiError::MissingCredentials(
            "Only the Bearer authorization scheme is accepted.",
        ));
    }
    let token = token.trim();
    if token.is_empty() {
        return Err(ApiError::InvalidAuthRequest("The bearer token is empty"));
    }
    Ok(token)
}

#[cfg(test)]
mod tests {
    use super::*;

    const U: &str = "https://x.test/projects/1";

    #[test]
    fn bearer_table() {
        assert_eq!(bearer(Some("Bearer abc"), U), Ok("abc"));
        assert_eq!(bearer(Some("bearer abc"), U), Ok("abc"));
        assert_eq!(bearer(Some("BEARER   abc  "), U), Ok("abc"));
        assert!(matches!(bearer(None, U), Err(ApiError::MissingCredentials(_))));
        assert!(matches!(
            bearer(Some("Basic dXNlcjpwYXNz"), U),
            Err(ApiError::MissingCredentials(_))
        ));
        assert!(matches!(
            bearer(Some("Bearer"), U),
            Err(ApiError::InvalidAuthRequest(_))
        ));
        assert!(matches!(
            bearer(Some("Bearer a, Bearer b"), U),
            Err(ApiError::InvalidAuthRequest(_))
        ));
        assert!(matches!(
            bearer(Some("Bearer abc"), "https://x.test/p?x=1&access_token=abc"),
            Err(ApiError::InvalidAuthRequest(_))
        ));
        assert!(matches!(
            bearer(None, "https://x.test/p?access_token=abc"),
            Err(ApiError::InvalidAuthRequest(_))
        ));
        assert_eq!(
            bearer(Some("Bearer abc"), "https://x.test/p?my_access_token=1"),
            Ok("abc")
        );
    }
}
