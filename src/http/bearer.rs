//! RFC 6750 §2.1: credentials come only from `Authorization: Bearer <token>`.

use super::problem::ApiError;

pub fn bearer<'a>(header: Option<&'a str>, url: &str) -> Result<&'a str, ApiError> {
    // Tokens in URLs end up in logs and Referer headers; refuse rather than ignore, so the
    // client learns it leaked one (RFC 6750 §2.3 is a MAY we deliberately do not offer).
    if url
        .split_once('?')
        .is_some_and(|(_, q)| names_param(q, b"access_token"))
    {
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

/// Whether any parameter is named `name` as a form decoder would read it: percent escapes and
/// `+` decoded, any case, split on `&` or on `;` (which some origins also accept).
/// Allocation-free: runs on every request with a query string.
fn names_param(query: &str, name: &[u8]) -> bool {
    let query = query.split_once('#').map_or(query, |(q, _)| q);
    query.split(['&', ';']).any(|param| {
        let n = param.split_once('=').map_or(param, |(n, _)| n);
        decodes_to_ignoring_case(n.as_bytes(), name)
    })
}

/// A `_method` query parameter: Symfony and Laravel origins run the method it names instead of
/// the request's (for POST), so a key allowed to POST could DELETE. Refused at the gateway.
pub fn overrides_method(url: &str) -> bool {
    url.split_once('?').is_some_and(|(_, q)| names_param(q, b"_method"))
}

fn decodes_to_ignoring_case(raw: &[u8], want: &[u8]) -> bool {
    let hex = |i: usize| raw.get(i).and_then(|&b| (b as char).to_digit(16));
    let (mut i, mut matched) = (0, 0);
    while i < raw.len() {
        let mut b = raw[i];
        i += 1;
        if b == b'+' {
            b = b' ';
        } else if let (b'%', Some(hi), Some(lo)) = (b, hex(i), hex(i + 1)) {
            b = (hi * 16 + lo) as u8;
            i += 2;
        }
        match want.get(matched) {
            Some(w) if w.eq_ignore_ascii_case(&b) => matched += 1,
            _ => return false,
        }
    }
    matched == want.len()
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

    #[test]
    fn any_spelling_of_an_access_token_parameter_is_refused() {
        let refused = [
            "access_token=x",
            "ACCESS_TOKEN=x",
            "Access_Token=x",
            "access%5Ftoken=x",
            "access%5ftoken=x",
            "%61ccess_token=x",
            "%41CCESS%5FTOKEN=x",
            "x=1;access_token=y",
            "x=1&access_token=y",
            "x=1&&access_token",
            "access_token",
            "access_token=",
            "a=1;b=2;ACCESS_TOKEN",
            "access_token=x#frag",
        ];
        for q in refused {
            let url = format!("https://x.test/p?{q}");
            assert!(
                matches!(bearer(Some("Bearer abc"), &url), Err(ApiError::InvalidAuthRequest(_))),
                "{q}"
            );
        }
        let allowed = [
            "my_access_token=1",
            "access_token_x=1",
            "access_tokens=1",
            "x=access_token",
            "q=a%26access_token%3Dy",
            "access+token=1",
            "access%20token=1",
            "access-token=1",
            "access_toke=1",
            "access_token%=1",
            "",
            "x#access_token=1",
        ];
        for q in allowed {
            let url = format!("https://x.test/p?{q}");
            assert_eq!(bearer(Some("Bearer abc"), &url), Ok("abc"), "{q}");
        }
        assert_eq!(
            bearer(Some("Bearer abc"), "https://x.test/access_token=1"),
            Ok("abc"),
            "a path is no query"
        );
    }
}
