//! Admin-side input rules: names, workspaces, expiry, metadata, limits. Pure; each failure is a
//! message meant for the caller (already free of control characters).

use serde_json::{Map, Value};

use super::scope::printable;
use super::time::{add_months, parse_rfc3339, Millis, DAY, SECOND};

pub const MAX_BODY_BYTES: usize = 16 * 1024;
pub const MAX_SCOPES: usize = 64;
pub const MAX_METADATA_BYTES: usize = 1024;
pub const MAX_DESCRIPTION_CHARS: usize = 500;
pub const MAX_GRACE_SECONDS: i64 = 365 * 86_400;

/// Unicode general category Cf (format characters), from the Unicode 15.1 Character Database
/// (DerivedGeneralCategory.txt). They render as nothing or reorder the text around them (U+202E
/// shows `evil\u{202E}txt.exe` as `evilexe.txt`), so a name holding one can pass for another.
const FORMAT_CHARS: [(char, char); 21] = [
    ('\u{00AD}', '\u{00AD}'),
    ('\u{0600}', '\u{0605}'),
    ('\u{061C}', '\u{061C}'),
    ('\u{06DD}', '\u{06DD}'),
    ('\u{070F}', '\u{070F}'),
    ('\u{0890}', '\u{0891}'),
    ('\u{08E2}', '\u{08E2}'),
    ('\u{180E}', '\u{180E}'),
    ('\u{200B}', '\u{200F}'),
    ('\u{202A}', '\u{202E}'),
    ('\u{2060}', '\u{2064}'),
    ('\u{2066}', '\u{206F}'),
    ('\u{FEFF}', '\u{FEFF}'),
    ('\u{FFF9}', '\u{FFFB}'),
    ('\u{110BD}', '\u{110BD}'),
    ('\u{110CD}', '\u{110CD}'),
    ('\u{13430}', '\u{1343F}'),
    ('\u{1BCA0}', '\u{1BCA3}'),
    ('\u{1D173}', '\u{1D17A}'),
    ('\u{E0001}', '\u{E0001}'),
    ('\u{E0020}', '\u{E007F}'),
];

/// Invisible or text-reordering characters: Unicode Cf, plus the line and paragraph separators
/// U+2028/U+2029, which break lines in some viewers and logs although they are not `is_control`.
pub fn is_invisible(c: char) -> bool {
    !c.is_ascii() && (c == '\u{2028}' || c == '\u{2029}' || FORMAT_CHARS.iter().any(|&(lo, hi)| (lo..=hi).contains(&c)))
}

/// Key names: 3-50 characters after trimming, no control or invisible characters.
pub fn key_name(raw: &str) -> Result<String, String> {
    let name = raw.trim();
    let n = name.chars().count();
    if !(3..=50).contains(&n) {
        return Err(format!("name must be 3 to 50 characters (got {n})"));
    }
    if name.chars().any(char::is_control) {
        return Err("name must not contain control characters".into());
    }
    if name.chars().any(is_invisible) {
        return Err("name must not contain invisible or text-direction characters".into());
    }
    Ok(name.to_owned())
}

pub fn description(raw: &str) -> Result<String, String> {
    if raw.chars().count() > MAX_DESCRIPTION_CHARS {
        return Err(format!(
            "description must be at most {MAX_DESCRIPTION_CHARS} characters"
        ));
    }
    if raw.chars().any(|c| c.is_control() && c != '\n' && c != '\t') {
        return Err("description must not contain control characters".into());
    }
    if raw.chars().any(is_invisible) {
        return Err("description must not contain invisible or text-direction characters".into());
    }
    Ok(raw.to_owned())
}

/// Workspace ids and workspace preset names share one shape: `[a-z0-9][a-z0-9_-]{1,62}`.
pub fn workspace(raw: &str) -> Result<&str, String> {
    let b = raw.as_bytes();
    let ok = (2..=63).contains(&b.len())
        && (b[0].is_ascii_lowercase() || b[0].is_ascii_digit())
        && b.iter()
            .all(|&c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'_' || c == b'-');
    if ok {
        Ok(raw)
    } else {
        Err(format!(
            "'{}' is not a valid workspace id ([a-z0-9][a-z0-9_-]{{1,62}})",
            printable(raw)
        ))
    }
}

pub fn preset_name(raw: &str) -> Result<&str, String> {
    workspace(raw).map_err(|_| {
        format!(
            "'{}' is not a valid preset name ([a-z0-9][a-z0-9_-]{{1,62}})",
            printable(raw)
        )
    })
}

pub fn group_name(raw: &str) -> Result<&str, String> {
    workspace(raw).map_err(|_| {
        format!(
            "'{}' is not a valid group name ([a-z0-9][a-z0-9_-]{{1,62}})",
            printable(raw)
        )
    })
}

/// At most this many groups per key (each is forwarded in X-Keyward-Groups).
pub const MAX_GROUPS: usize = 32;

/// A key's groups: valid names, sorted, without duplicates, at most MAX_GROUPS.
pub fn groups(raw: &[String]) -> Result<Vec<String>, String> {
    let mut out = raw
        .iter()
        .map(|g| group_name(g).map(str::to_owned))
        .collect::<Result<Vec<_>, _>>()?;
    out.sort();
    out.dedup();
    if out.len() > MAX_GROUPS {
        return Err(format!("at most {MAX_GROUPS} groups"));
    }
    Ok(out)
}

/// `expires`: one of the presets, an RFC 3339 instant in the future, or null (no expiry).
pub fn expires(value: &Value, now: Millis) -> Result<Option<Millis>, String> {
    let s = match value {
        Value::Null => return Ok(None),
        Value::String(s) => s.as_str(),
        _ => return Err("expires must be 15d, 25d, 45d, 90d, 6m, 1y, an RFC 3339 timestamp or null".into()),
    };
    let at = match s {
        "15d" => now + 15 * DAY,
        "25d" => now + 25 * DAY,
        "45d" => now + 45 * DAY,
        "90d" => now + 90 * DAY,
        "6m" => add_months(now, 6),
        "1y" => add_months(now, 12),
        other => parse_rfc3339(other).ok_or_else(|| {
            format!(
                "expires '{}' is neither a preset (15d|25d|45d|90d|6m|1y) nor an RFC 3339 timestamp",
                printable(other)
            )
        })?,
    };
    if at <= now {
        return Err("expires must be in the future".into());
    }
    Ok(Some(at))
}

pub fn metadata(value: &Value) -> Result<Map<String, Value>, String> {
    let Value::Object(map) = value else {
        return Err("metadata must be a JSON object".into());
    };
    let size = serde_json::to_string(map).map(|s| s.len()).unwrap_or(usize::MAX);
    if size > MAX_METADATA_BYTES {
        return Err(format!(
            "metadata must be at most {MAX_METADATA_BYTES} bytes as JSON (got {size})"
        ));
    }
    Ok(map.clone())
}

/// The old key's deadline after a rotation: never later than its own expiry.
pub fn grace_deadline(
    grace_until: Option<&str>,
    grace_seconds: Option<i64>,
    old_expires_at: Option<Millis>,
    now: Millis,
) -> Result<Option<Millis>, String> {
    let grace = match (grace_until, grace_seconds) {
        (Some(_), Some(_)) => return Err("give grace_until or grace_seconds, not both".into()),
        (None, None) => return Ok(old_expires_at),
        (Some(s), None) => {
            let at = parse_rfc3339(s).ok_or("grace_until must be an RFC 3339 timestamp")?;
            if at <= now {
                return Err("grace_until must be in the future".into());
            }
            at
        }
        (None, Some(secs)) => {
            if !(1..=MAX_GRACE_SECONDS).contains(&secs) {
                return Err(format!("grace_seconds must be 1 to {MAX_GRACE_SECONDS}"));
            }
            now + secs * SECOND
        }
    };
    Ok(Some(old_expires_at.map_or(grace, |exp| exp.min(grace))))
}

/// The successor's expiry when the caller does not give one: the old key's original lifetime
/// from now, so rotation never silently drops an expiry.
pub fn successor_expiry(old_created_at: Millis, old_expires_at: Option<Millis>, now: Millis) -> Option<Millis> {
    old_expires_at.map(|exp| now + (exp - old_created_at).max(DAY))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const NOW: Millis = 1_795_000_000_000;

    #[test]
    fn names() {
        assert_eq!(key_name("  ci deploy  ").unwrap(), "ci deploy");
        assert!(key_name("ab").is_err());
        assert!(key_name("   ab   ").is_err());
        assert!(key_name(&"x".repeat(50)).is_ok());
        assert!(key_name(&"x".repeat(51)).is_err());
        assert!(key_name("é€日").is_ok(), "counts characters, not bytes");
        assert!(key_name("bad\u{0}name").is_err());
        assert!(key_name("bad\nname").is_err());
    }

    #[test]
    fn names_and_descriptions_refuse_invisible_and_bidi_characters() {
        let invisible = "\u{202E}\u{200B}\u{200D}\u{200F}\u{202A}\u{2060}\u{2064}\u{2066}\u{2069}\u{FEFF}\u{00AD}\u{061C}\u{180E}\u{2028}\u{2029}\u{E0041}";
        for bad in invisible.chars() {
            let name = format!("ci{bad}deploy");
            assert!(key_name(&name).is_err(), "name {name:?}");
            let desc = format!("line one\n\tline{bad}two");
            assert!(description(&desc).is_err(), "description {desc:?}");
        }
        assert_eq!(
            key_name("ci\u{202E}exe.txt").unwrap_err(),
            "name must not contain invisible or text-direction characters"
        );
        assert!(
            description("line one\n\tline two").is_ok(),
            "newline and tab stay allowed"
        );
        assert!(description("").is_ok());
        for ok in ["café-deploy", "日本語のキー", "a\u{2010}b", "x\u{00A0}y"] {
            assert!(key_name(ok).is_ok(), "{ok:?}");
            assert!(description(ok).is_ok(), "{ok:?}");
        }
    }

    #[test]
    fn workspaces() {
        for ok in ["acme", "a1", "team-7_x", "0x"] {
            assert!(workspace(ok).is_ok(), "{ok}");
        }
        for bad in ["", "a", "-a", "_a", "Acme", "a b", "a/b", &"a".repeat(64)] {
            assert!(workspace(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn expiry_presets_timestamps_and_null() {
        assert_eq!(expires(&json!(null), NOW), Ok(None));
        assert_eq!(expires(&json!("15d"), NOW), Ok(Some(NOW + 15 * DAY)));
        assert_eq!(expires(&json!("90d"), NOW), Ok(Some(NOW + 90 * DAY)));
        assert_eq!(expires(&json!("6m"), NOW), Ok(Some(add_months(NOW, 6))));
        assert_eq!(expires(&json!("1y"), NOW), Ok(Some(add_months(NOW, 12))));
        let ts = crate::core::time::format_rfc3339(NOW + 1000);
        assert_eq!(expires(&json!(ts), NOW), Ok(Some(NOW + 1000)));
        assert!(
            expires(&json!(crate::core::time::format_rfc3339(NOW)), NOW).is_err(),
            "now is not the future"
        );
        for bad in [
            json!("30d"),
            json!("1d"),
            json!(""),
            json!(90),
            json!({}),
            json!("tomorrow"),
        ] {
            assert!(expires(&bad, NOW).is_err(), "{bad}");
        }
    }

    #[test]
    fn metadata_must_be_a_small_object() {
        assert!(metadata(&json!({"team": "x"})).is_ok());
        assert!(metadata(&json!([1])).is_err());
        assert!(metadata(&json!("x")).is_err());
        assert!(metadata(&json!({"big": "x".repeat(1100)})).is_err());
    }

    #[test]
    fn grace_never_extends_the_old_key() {
        let exp = NOW + 10 * DAY;
        assert_eq!(grace_deadline(None, None, Some(exp), NOW), Ok(Some(exp)));
        assert_eq!(grace_deadline(None, None, None, NOW), Ok(None));
        assert_eq!(grace_deadline(None, Some(3600), None, NOW), Ok(Some(NOW + 3_600_000)));
        assert_eq!(
            grace_deadline(None, Some(3600), Some(NOW + 1000), NOW),
            Ok(Some(NOW + 1000))
        );
        let far = crate::core::time::format_rfc3339(NOW + 100 * DAY);
        assert_eq!(grace_deadline(Some(&far), None, Some(exp), NOW), Ok(Some(exp)));
        assert!(grace_deadline(Some("2000-01-01T00:00:00Z"), None, None, NOW).is_err());
        assert!(grace_deadline(Some(&far), Some(1), None, NOW).is_err());
        assert!(grace_deadline(None, Some(0), None, NOW).is_err());
        assert!(grace_deadline(None, Some(MAX_GRACE_SECONDS + 1), None, NOW).is_err());
    }

    #[test]
    fn successor_keeps_an_expiry_if_the_old_key_had_one() {
        assert_eq!(successor_expiry(NOW - 5 * DAY, None, NOW), None);
        assert_eq!(
            successor_expiry(NOW - 5 * DAY, Some(NOW + 25 * DAY), NOW),
            Some(NOW + 30 * DAY)
        );
    }
}
