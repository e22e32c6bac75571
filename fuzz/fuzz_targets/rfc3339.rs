//! `parse_rfc3339` on arbitrary text: whatever it accepts, `format_rfc3339` writes back in a form
//! it accepts again, at the same instant (millisecond precision).
#![no_main]

use keyward::core::time::{format_rfc3339, parse_rfc3339};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(s) = std::str::from_utf8(data) else { return };
    let Some(ms) = parse_rfc3339(s) else { return };
    let formatted = format_rfc3339(ms);
    assert_eq!(
        parse_rfc3339(&formatted),
        Some(ms),
        "{s:?} parses to {ms} ms, formatted as {formatted:?}, which does not parse back"
    );
    // The canonical form: `YYYY-MM-DDTHH:MM:SS.mmmZ`, 24 characters, and a fixed point.
    assert_eq!(formatted.len(), 24, "{formatted:?}");
    assert_eq!(format_rfc3339(parse_rfc3339(&formatted).unwrap_or(ms)), formatted);
});
