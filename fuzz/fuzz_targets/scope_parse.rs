//! `ScopeSet::parse`: canonical form is a fixed point, a set covers itself, and `meet` grants
//! exactly what both sets grant (never more, and on single scopes nothing less).
//!
//! Input: two sets separated by `|`, each a whitespace-separated list of scope strings.
#![no_main]

use keyward::core::scope::{Scope, ScopeSet};
use libfuzzer_sys::fuzz_target;

const PROBES: &[&str] = &[
    "*",
    "projects:*",
    "projects:discoverer",
    "projects:viewer",
    "projects:editor",
    "projects:owner",
    "projects:admin",
    "deploy:trigger",
    "deploy:*",
    "events:write",
    "keys:admin",
];

fn canonical(set: &ScopeSet) {
    let strings = set.to_strings();
    let again = ScopeSet::parse(&strings).unwrap_or_else(|e| panic!("canonical form {strings:?} does not parse: {e}"));
    assert_eq!(&again, set, "canonical form is not a fixed point: {strings:?}");
    assert_eq!(again.to_strings(), strings);
    // Sorted, without duplicates.
    assert!(strings.windows(2).all(|w| w[0] < w[1]), "{strings:?}");
    assert!(set.covers(set));
    assert!(set.missing(set).is_empty());
    assert_eq!(set.joined(), strings.join(" "));
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let (left, right) = text.split_once('|').unwrap_or((text, ""));
    let items_a: Vec<&str> = left.split_whitespace().collect();
    let items_b: Vec<&str> = right.split_whitespace().collect();

    // One item failing makes the whole set fail, and the message is printable and bounded.
    for items in [&items_a, &items_b] {
        let r = ScopeSet::parse(items);
        let first_bad = items.iter().find(|s| Scope::parse(s).is_err());
        assert_eq!(r.is_err(), first_bad.is_some());
        if let Err(e) = r {
            assert!(e.0.chars().all(|c| c.is_ascii_graphic() || c == ' '), "{:?}", e.0);
            assert!(e.0.len() < 200, "{} bytes", e.0.len());
        }
    }

    let (Ok(a), Ok(b)) = (ScopeSet::parse(&items_a), ScopeSet::parse(&items_b)) else {
        return;
    };
    canonical(&a);
    canonical(&b);

    let m = a.meet(&b);
    canonical(&m);
    assert!(a.covers(&m), "meet {m:?} grants more than {a:?}");
    assert!(b.covers(&m), "meet {m:?} grants more than {b:?}");
    assert_eq!(m, b.meet(&a), "meet is not commutative");

    let u = a.union(&b);
    canonical(&u);
    assert!(u.covers(&a) && u.covers(&b));

    // On any single scope, meet grants exactly what both grant; union what either grants.
    let probes = a
        .iter()
        .chain(b.iter())
        .cloned()
        .chain(PROBES.iter().filter_map(|p| Scope::parse(p).ok()));
    for s in probes {
        assert_eq!(
            m.holds(&s),
            a.holds(&s) && b.holds(&s),
            "meet of {a:?} and {b:?} on {s}"
        );
        assert_eq!(
            u.holds(&s),
            a.holds(&s) || b.holds(&s),
            "union of {a:?} and {b:?} on {s}"
        );
    }
});
