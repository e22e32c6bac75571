//! Route policy: (method, path) -> the scopes a key must hold. Parsed from config/policy.json
//! (bundled at build) once per isolate; matching allocates nothing.

use serde::Deserialize;
use std::collections::BTreeMap;

use super::key::Environment;
use super::ratelimit::{Tier, Tiers};
use super::scope::{Catalog, ResourceDecl, ScopeSet};
use super::validate::is_invisible;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PolicyFile {
    realm: String,
    /// `resource:permission` (default) or `resource.permission`.
    #[serde(default)]
    scope_format: Option<String>,
    resources: BTreeMap<String, ResourceDecl>,
    presets: BTreeMap<String, PresetDef>,
    routes: Vec<RouteDef>,
    /// Rate-limit tiers a key may carry (each a `[[ratelimits]]` binding in wrangler.toml).
    #[serde(default)]
    ratelimits: Vec<Tier>,
    /// Failed-attempt throttling per client address (a `[[ratelimits]]` binding).
    #[serde(default)]
    throttle: Option<Tier>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PresetDef {
    #[serde(default)]
    description: String,
    scopes: Vec<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RouteDef {
    method: String,
    path: String,
    scopes: Vec<String>,
    #[serde(default)]
    public: bool,
    /// Only keys of this environment may use the route (`live` or `test`).
    #[serde(default)]
    environment: Option<Environment>,
    /// Credits a forwarded request spends (0, the default: never metered, never counted).
    #[serde(default)]
    cost: i64,
}

#[derive(Debug)]
enum Seg {
    Lit(Box<str>),
    /// `*`: exactly one non-empty segment.
    One,
    /// `**` (last only): zero or more remaining segments.
    Rest,
}

#[derive(Debug)]
pub struct Route {
    /// None = any method.
    method: Option<Box<str>>,
    segs: Vec<Seg>,
    pub scopes: ScopeSet,
    /// Precomputed `scope="..."` value for the 403 challenge.
    pub scope_attr: String,
    /// No key needed at all. `scopes: []` without this still needs a valid key.
    pub public: bool,
    /// When set, a key of the other environment is refused (403) on this route.
    pub environment: Option<Environment>,
    /// Credits per forwarded request; 0 = unmetered (the counter is never asked).
    pub cost: i64,
    /// `METHOD /path/pattern` as written in the policy file (log lines name the route with it).
    pub pattern: String,
}

#[derive(Debug, Clone)]
pub struct Preset {
    pub name: String,
    pub description: String,
    pub scopes: ScopeSet,
}

#[derive(Debug)]
pub struct Policy {
    pub realm: String,
    pub catalog: Catalog,
    pub presets: Vec<Preset>,
    routes: Vec<Route>,
    pub tiers: Tiers,
    pub throttle: Option<Tier>,
}

/// Why a request path is refused before matching.
#[derive(Debug, PartialEq, Eq)]
pub enum PathError {
    /// An origin that decodes or normalises the path differently from us could serve a route
    /// other than the one we authorised (see `check_path` and docs/scopes.md).
    Ambiguous,
}

impl Policy {
    pub fn from_json(json: &str) -> Result<Policy, String> {
        let file: PolicyFile = serde_json::from_str(json).map_err(|e| format!("policy: {e}"))?;
        if file.realm.is_empty()
            || !file
                .realm
                .bytes()
                .all(|c| c.is_ascii_graphic() && c != b'"' && c != b'\\')
        {
            return Err("policy: realm must be printable ASCII without quotes or backslashes".into());
        }
        let catalog = Catalog::new(file.scope_format.as_deref(), file.resources).map_err(|e| format!("policy: {e}"))?;
        let mut presets = Vec::new();
        for (name, def) in file.presets {
            let scopes = catalog
                .parse_grant(&def.scopes)
                .map_err(|e| format!("policy preset {name}: {e}"))?;
            presets.push(Preset {
                name,
                description: def.description,
                scopes,
            });
        }
        let mut routes = Vec::new();
        for def in file.routes {
            let ctx = |e: String| format!("policy route {} {}: {e}", def.method, def.path);
            let method = match def.method.as_str() {
                "*" => None,
                m if !m.is_empty() && m.bytes().all(|c| c.is_ascii_uppercase()) => Some(m.into()),
                _ => return Err(ctx("method must be upper-case or *".into())),
            };
            let segs = compile_pattern(&def.path).map_err(ctx)?;
            // A public route never sees a key, so scopes on it could only mislead a reader.
            if def.public && (!def.scopes.is_empty() || def.environment.is_some()) {
                return Err(ctx("a public route cannot require scopes or an environment".into()));
            }
            // A public route has no key, hence no workspace whose credits it could spend.
            if def.public && def.cost != 0 {
                return Err(ctx("a public route cannot have a cost".into()));
            }
            if !(0..=super::credits::MAX_COST).contains(&def.cost) {
                return Err(ctx(format!(
                    "cost must be an integer from 0 to {}",
                    super::credits::MAX_COST
                )));
            }
            let scopes = catalog.parse_required(&def.scopes).map_err(|e| ctx(e.0))?;
            catalog.check_all(&scopes).map_err(|e| ctx(e.0))?;
            let scope_attr = catalog.joined(&scopes);
            routes.push(Route {
                method,
                segs,
                scopes,
                scope_attr,
                public: def.public,
                environment: def.environment,
                cost: def.cost,
                pattern: format!("{} {}", def.method, def.path),
            });
        }
        for t in file.ratelimits.iter().chain(file.throttle.iter()) {
            t.check().map_err(|e| format!("policy: {e}"))?;
        }
        Ok(Policy {
            realm: file.realm,
            catalog,
            presets,
            routes,
            tiers: Tiers(file.ratelimits),
            throttle: file.throttle,
        })
    }

    /// Every route, in file order.
    pub fn routes(&self) -> &[Route] {
        &self.routes
    }

    pub fn preset(&self, name: &str) -> Option<&Preset> {
        self.presets.iter().find(|p| p.name == name)
    }

    /// First route (in file order) that matches. `path` excludes the query string.
    pub fn route(&self, method: &str, path: &str) -> Result<Option<&Route>, PathError> {
        check_path(path)?;
        // HEAD is a GET without a body: it needs what GET needs.
        let method = if method == "HEAD" { "GET" } else { method };
        Ok(self
            .routes
            .iter()
            .find(|r| r.method.as_deref().is_none_or(|m| m == method) && matches(&r.segs, path)))
    }
}

fn compile_pattern(path: &str) -> Result<Vec<Seg>, String> {
    let rest = path.strip_prefix('/').ok_or("path must start with /")?;
    if rest.is_empty() {
        return Ok(Vec::new());
    }
    let parts: Vec<&str> = rest.split('/').collect();
    let mut segs = Vec::with_capacity(parts.len());
    for (i, p) in parts.iter().enumerate() {
        segs.push(match *p {
            "*" => Seg::One,
            "**" if i + 1 == parts.len() => Seg::Rest,
            "**" => return Err("** may only be the last segment".into()),
            "" => return Err("empty path segment".into()),
            lit if lit.contains('*') => return Err("* must be a whole segment".into()),
            // Requests whose segments could decode to anything else are refused by `check_path`,
            // so a literal of unreserved characters is matched exactly when the origin sees it.
            lit if !lit.bytes().all(|c| c.is_ascii_alphanumeric() || b"-._~".contains(&c)) => {
                return Err("literal segments may only use A-Z a-z 0-9 - . _ ~".into())
            }
            lit if lit.bytes().all(|c| c == b'.') => return Err("dot segments can never match".into()),
            lit => Seg::Lit(lit.into()),
        });
    }
    Ok(segs)
}

/// Refuses every path an origin could map to a route other than the one matched here. Routes are
/// matched on the raw path, byte for byte, while origins decode, collapse and normalise it in
/// their own ways (Tomcat/Spring path parameters, nginx and Spring merging `//`, IIS `%u` and
/// best-fit conversions, Python NFKC, Node double decoding). Runs on every gateway request: a
/// path without `%` or non-ASCII bytes is decided in one byte scan with no allocation.
fn check_path(path: &str) -> Result<(), PathError> {
    let bytes = path.as_bytes();
    let mut needs_decoding = false;
    let mut seg_start = 0;
    let mut dots_only = true;
    for (i, &c) in bytes.iter().enumerate() {
        match c {
            b'/' => {
                // i == 0 is the leading slash, not the end of a segment.
                if i > 0 && (i == seg_start || dots_only) {
                    return Err(PathError::Ambiguous);
                }
                seg_start = i + 1;
                dots_only = true;
                continue;
            }
            b'.' => continue,
            b'%' => needs_decoding = true,
            0x80.. => needs_decoding = true,
            // `;` starts a path parameter for Tomcat/Spring (`/a/..;/b` is `/b` there); `\` is a
            // separator on Windows and in WHATWG URLs; `?`/`#` cannot be in a parsed path at all.
            b';' | b'\\' | b'?' | b'#' => return Err(PathError::Ambiguous),
            c if c.is_ascii_control() => return Err(PathError::Ambiguous),
            _ => {}
        }
        dots_only = false;
    }
    // `...` is no dot segment for RFC 3986 or WHATWG, but Windows path APIs trim trailing dots
    // from names; no route needs a segment made only of dots, so none is allowed.
    if seg_start < bytes.len() && dots_only {
        return Err(PathError::Ambiguous);
    }
    if needs_decoding {
        check_decoded(bytes)?;
    }
    Ok(())
}

/// The slow half of `check_path`: percent-decodes and looks at what an origin would see.
fn check_decoded(bytes: &[u8]) -> Result<(), PathError> {
    let hex = |i: usize| bytes.get(i).and_then(|&b| (b as char).to_digit(16));
    let mut decoded = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let mut b = bytes[i];
        if b == b'%' {
            // Anything but two hex digits (`%u002e`, a bare `%`) is decoded by some origins
            // (IIS) and left alone by others.
            let (Some(hi), Some(lo)) = (hex(i + 1), hex(i + 2)) else {
                return Err(PathError::Ambiguous);
            };
            b = (hi * 16 + lo) as u8;
            i += 3;
            if b.is_ascii() && !encoded_ascii_is_safe(b) {
                return Err(PathError::Ambiguous);
            }
        } else {
            i += 1;
        }
        decoded.push(b);
    }
    // Overlong forms (`%c0%ae` for `.`), surrogates and stray continuation bytes are invalid
    // UTF-8; lenient decoders turn them into `.` or `/`.
    let text = std::str::from_utf8(&decoded).map_err(|_| PathError::Ambiguous)?;
    if text
        .chars()
        .any(|c| !c.is_ascii() && (c.is_control() || is_invisible(c) || folds_to_path_syntax(c)))
    {
        return Err(PathError::Ambiguous);
    }
    Ok(())
}

/// Whether a percent-encoded ASCII byte may stay encoded. Unreserved characters must not be
/// encoded: RFC 3986 §6.2.2.2 lets an origin decode them, and `%70rojects` would then be
/// `projects` there while it matches no `projects` route here. Encoded `/ \ . ; ? # %` would
/// change the path's structure for an origin that decodes before it splits (or decodes twice:
/// `%252e`). Controls, NUL included, end strings or lines in C and in logs.
fn encoded_ascii_is_safe(b: u8) -> bool {
    !(b.is_ascii_alphanumeric() || b.is_ascii_control() || b"-._~/\\;?#%".contains(&b))
}

/// Code points that some normaliser turns into path syntax (`.`, `/`, `\`, `;`, `?`, `#`, `%`).
/// NFKC (Python's unicodedata.normalize, IDNA-style folding): every code point whose NFKC form
/// contains one of those characters (Unicode 14, found by an exhaustive scan with Python), plus
/// the whole fullwidth ASCII, vertical and small form blocks, whose letters also fold to ASCII.
/// Windows best fit (IIS and other ANSI code page conversions): U+2044, U+2215, U+29F8 -> `/`;
/// U+2216, U+29F5, U+29F9 -> `\`; U+00A5 and U+20A9 -> `\` in the Japanese and Korean pages.
const PATH_SYNTAX_LOOKALIKES: [(char, char); 20] = [
    ('\u{00A5}', '\u{00A5}'),
    ('\u{037E}', '\u{037E}'),
    ('\u{2024}', '\u{2026}'),
    ('\u{2044}', '\u{2044}'),
    ('\u{2047}', '\u{2049}'),
    ('\u{20A9}', '\u{20A9}'),
    ('\u{2100}', '\u{2101}'),
    ('\u{2105}', '\u{2106}'),
    ('\u{2215}', '\u{2216}'),
    ('\u{2488}', '\u{249B}'),
    ('\u{29F5}', '\u{29F5}'),
    ('\u{29F8}', '\u{29F9}'),
    ('\u{33C2}', '\u{33C2}'),
    ('\u{33C7}', '\u{33C7}'),
    ('\u{33D8}', '\u{33D8}'),
    ('\u{FE10}', '\u{FE19}'),
    ('\u{FE30}', '\u{FE30}'),
    ('\u{FE50}', '\u{FE6B}'),
    ('\u{FF01}', '\u{FF5E}'),
    ('\u{1F100}', '\u{1F100}'),
];

fn folds_to_path_syntax(c: char) -> bool {
    PATH_SYNTAX_LOOKALIKES.iter().any(|&(lo, hi)| (lo..=hi).contains(&c))
}

fn matches(segs: &[Seg], path: &str) -> bool {
    let Some(rest) = path.strip_prefix('/') else {
        return false;
    };
    let mut parts = if rest.is_empty() { None } else { Some(rest.split('/')) };
    for seg in segs {
        let next = parts.as_mut().and_then(Iterator::next);
        match (seg, next) {
            (Seg::Rest, _) => return true,
            (Seg::One, Some(p)) if !p.is_empty() => {}
            (Seg::Lit(l), Some(p)) if **l == *p => {}
            _ => return false,
        }
    }
    parts.is_none_or(|mut p| p.next().is_none())
}

#[cfg(test)]
mod tests {
    use super::*;

    const SHIPPED: &str = include_str!("../../config/policy.json");

    fn policy() -> Policy {
        Policy::from_json(SHIPPED).expect("shipped policy must parse")
    }

    fn need(p: &Policy, m: &str, path: &str) -> Option<String> {
        p.route(m, path).unwrap().map(|r| r.scope_attr.clone())
    }

    #[test]
    fn shipped_policy_routes() {
        let p = policy();
        assert_eq!(p.realm, "keyward");
        let table = [
            ("GET", "/health", Some("")),
            ("GET", "/projects", Some("projects:discoverer")),
            ("GET", "/projects/42", Some("projects:viewer")),
            ("HEAD", "/projects/42", Some("projects:viewer")),
            ("GET", "/projects/42/files/a.txt", Some("projects:viewer")),
            ("DELETE", "/projects/42", Some("projects:owner")),
            ("DELETE", "/projects/42/x", None),
            ("POST", "/deploy", Some("deploy:trigger projects:viewer")),
            ("GET", "/deploy", None),
            ("GET", "/deployments", Some("deployments:viewer")),
            ("GET", "/deployments/a/b/c", Some("deployments:viewer")),
            ("POST", "/agents/a1/run", Some("agents:run")),
            ("PATCH", "/echo/anything/here", Some("")),
            ("GET", "/", None),
            ("GET", "/projectsX", None),
            ("GET", "/projects/", None),
        ];
        for (m, path, want) in table {
            assert_eq!(need(&p, m, path).as_deref(), want, "{m} {path}");
        }
    }

    #[test]
    fn route_costs_default_to_zero_and_are_bounded() {
        let p = policy();
        let cost = |m: &str, path: &str| p.route(m, path).unwrap().map(|r| r.cost);
        assert_eq!(cost("GET", "/projects/42"), Some(0));
        assert_eq!(cost("POST", "/metered/a/b"), Some(1));
        let with = |route: &str| {
            Policy::from_json(&format!(
                r#"{{"realm": "r", "resources": {{"p": []}}, "presets": {{}}, "routes": [{route}]}}"#
            ))
        };
        assert!(with(r#"{"method": "GET", "path": "/a", "scopes": [], "cost": 5}"#).is_ok());
        for bad in [
            r#"{"method": "GET", "path": "/a", "scopes": [], "cost": -1}"#,
            r#"{"method": "GET", "path": "/a", "scopes": [], "cost": 1000001}"#,
            r#"{"method": "GET", "path": "/a", "scopes": [], "cost": 1.5}"#,
            r#"{"method": "GET", "path": "/a", "scopes": [], "public": true, "cost": 1}"#,
        ] {
            assert!(with(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn public_routes_need_no_key_and_empty_scopes_still_do() {
        let p = policy();
        let route = |m: &str, path: &str| p.route(m, path).unwrap().expect(path);
        assert!(route("GET", "/health").public);
        assert!(route("HEAD", "/health").public);
        let echo = route("GET", "/echo/x");
        assert!(!echo.public && echo.scopes.is_empty(), "scopes: [] means any valid key");
        assert!(!route("GET", "/projects/1").public);
        let base = r#"{"realm":"r","resources":{"a":[]},"presets":{},"routes":[ROUTE]}"#;
        let ok = Policy::from_json(&base.replace(
            "ROUTE",
            r#"{"method":"GET","path":"/x","scopes":["a:viewer"],"public":false}"#,
        ))
        .unwrap();
        assert!(!ok.route("GET", "/x").unwrap().unwrap().public);
    }

    #[test]
    fn ambiguous_paths_are_refused() {
        let p = policy();
        const BAD: bool = false;
        const OK: bool = true;
        let table = [
            // Encoded separators and dots.
            ("/echo/..%2Fprojects", BAD),
            ("/echo/%2e%2e/projects", BAD),
            ("/echo/a%2Eb", BAD),
            ("/echo/%5C", BAD),
            ("/echo/a\\b", BAD),
            // Dot segments (the runtime removes literal ones first; these are belt and braces).
            ("/echo/../projects", BAD),
            ("/echo/./x", BAD),
            ("/echo/..", BAD),
            ("/echo/...", BAD),
            ("/echo/..../x", BAD),
            // Tomcat/Spring path parameters.
            ("/projects/1/..;/..;/deployments/x", BAD),
            ("/projects/1/.;/x", BAD),
            ("/projects/1;x=1/files", BAD),
            ("/echo/a;", BAD),
            ("/echo/a%3Bb", BAD),
            // Double encoding and malformed escapes.
            ("/echo/%252e%252e/projects", BAD),
            ("/echo/%252f", BAD),
            ("/echo/%25", BAD),
            ("/echo/%", BAD),
            ("/echo/%4", BAD),
            ("/echo/%zz", BAD),
            ("/echo/%u002e%u002e/x", BAD),
            ("/echo/%U002F", BAD),
            // Encoded unreserved characters: equal to their decoded form per RFC 3986.
            ("/%70rojects/1", BAD),
            ("/echo/%41", BAD),
            ("/echo/a%2Db", BAD),
            ("/echo/a%7Eb", BAD),
            // Encoded query and fragment delimiters.
            ("/echo/a%3Fb", BAD),
            ("/echo/a%23b", BAD),
            // Invalid UTF-8: overlong, surrogate, stray continuation, out of range.
            ("/echo/%c0%ae%c0%ae/x", BAD),
            ("/echo/%c0%af", BAD),
            ("/echo/%e0%80%ae", BAD),
            ("/echo/%f0%80%80%ae", BAD),
            ("/echo/%c1%9c", BAD),
            ("/echo/%ed%a0%80", BAD),
            ("/echo/%80", BAD),
            ("/echo/%f5%80%80%80", BAD),
            ("/echo/caf%C3", BAD),
            // Lookalike dots, slashes, backslashes: encoded and raw.
            ("/echo/%ef%bc%8e%ef%bc%8e/x", BAD),
            ("/echo/\u{FF0E}\u{FF0E}/x", BAD),
            ("/echo/a%EF%BC%8Fb", BAD),
            ("/echo/a\u{FF0F}b", BAD),
            ("/echo/a%E2%80%A4b", BAD),
            ("/echo/a\u{FE52}b", BAD),
            ("/echo/a%E2%88%95b", BAD),
            ("/echo/a\u{2044}b", BAD),
            ("/echo/a%EF%BC%BCb", BAD),
            ("/echo/a\u{FF1B}b", BAD),
            ("/echo/a\u{037E}b", BAD),
            ("/echo/a\u{2100}b", BAD),
            ("/echo/\u{00A5}", BAD),
            ("/echo/\u{FF41}dmin", BAD),
            // Empty segments: origins that merge `//` would see another path.
            ("//projects/1", BAD),
            ("/projects//1", BAD),
            ("/echo//", BAD),
            // Controls, NUL, invisible characters.
            ("/echo/a%00b", BAD),
            ("/echo/%0a", BAD),
            ("/echo/%0D%0A", BAD),
            ("/echo/%7F", BAD),
            ("/echo/a\tb", BAD),
            ("/echo/a%C2%85b", BAD),
            ("/echo/a%E2%80%8Bb", BAD),
            ("/echo/a\u{202E}b", BAD),
            ("/echo/a%E2%80%A8b", BAD),
            // Allowed.
            ("/echo/a%20b", OK),
            ("/echo/caf%C3%A9", OK),
            ("/echo/caf\u{E9}", OK),
            ("/echo/%E6%97%A5%E6%9C%AC", OK),
            ("/projects/1", OK),
            ("/projects/1/", OK),
            ("/", OK),
            ("/echo/a-b_c~d", OK),
            ("/echo/a.b", OK),
            ("/echo/.hidden", OK),
            ("/echo/a..b", OK),
            ("/echo/v1.2.3/", OK),
            ("/echo/a%40b.com", OK),
            ("/echo/10%3A00", OK),
            ("/echo/a+b,c=d:e@f!$&'()*", OK),
            ("/echo/%22q%22%3C%3E%7B%7D%60", OK),
            ("/echo/a%2Bb%2C%3D%26", OK),
        ];
        assert!(table.len() >= 30);
        for (path, ok) in table {
            let got = p.route("GET", path);
            if ok {
                assert!(got.is_ok(), "{path:?} should be allowed");
            } else {
                assert_eq!(got.err(), Some(PathError::Ambiguous), "{path:?} should be refused");
            }
        }
    }

    #[test]
    fn plain_paths_are_checked_without_allocating() {
        use crate::core::cache::memory::allocations_on_this_thread as allocs;
        for plain in ["/projects/42/files/a.txt", "/echo/a-b_c~d/x:y@z/", "/", "/echo/..."] {
            let before = allocs();
            let _ = check_path(plain);
            assert_eq!(allocs(), before, "{plain}");
        }
        let before = allocs();
        assert!(check_path("/echo/caf%C3%A9").is_ok());
        assert!(allocs() > before, "the counter sees the slow path's buffer");
    }

    #[test]
    fn allowed_paths_match_as_before() {
        let p = policy();
        assert_eq!(need(&p, "GET", "/projects/"), None, "an empty last segment is no `*`");
        assert_eq!(need(&p, "GET", "/projects/1/").as_deref(), Some("projects:viewer"));
        assert_eq!(p.route("POST", "/agents//run").err(), Some(PathError::Ambiguous));
        assert_eq!(need(&p, "GET", "/projects/1/a.b").as_deref(), Some("projects:viewer"));
        assert_eq!(need(&p, "GET", "/echo/caf%C3%A9").as_deref(), Some(""));
    }

    #[test]
    fn wrangler_toml_declares_every_rate_limit_binding_of_the_policy() {
        let toml = include_str!("../../wrangler.toml");
        let p = policy();
        assert!(!p.tiers.0.is_empty() && p.throttle.is_some());
        for t in p.tiers.0.iter().chain(p.throttle.iter()) {
            // Every copy: the local bindings and each environment's (wrangler does not inherit them).
            let copies: Vec<usize> = toml
                .match_indices(&format!("name = \"{}\"", t.binding))
                .map(|(at, _)| at)
                .collect();
            assert!(
                copies.len() >= 2,
                "wrangler.toml needs [[ratelimits]] {} at the top level and in [env.production]",
                t.binding
            );
            for at in copies {
                let simple = toml[at..].lines().find(|l| l.starts_with("simple")).unwrap_or("");
                assert_eq!(
                    simple.trim(),
                    format!("simple = {{ limit = {}, period = {} }}", t.limit, t.period),
                    "{}",
                    t.binding
                );
            }
        }
    }

    #[test]
    fn presets_are_loaded_and_checked_against_the_catalogue() {
        let p = policy();
        for name in ["sdk", "read-only", "deploy", "agent-runner"] {
            assert!(p.preset(name).is_some_and(|x| !x.scopes.is_empty()), "{name}");
        }
        let bad = SHIPPED.replace("\"events:write\"]", "\"billing:viewer\"]");
        assert!(Policy::from_json(&bad).unwrap_err().contains("unknown resource"));
    }

    #[test]
    fn bad_policies_are_rejected_with_a_reason() {
        let base = r#"{"realm":"r","resources":{"a":[]},"presets":{},"routes":[ROUTE]}"#;
        for (route, why) in [
            (r#"{"method":"get","path":"/x","scopes":[]}"#, "upper-case"),
            (r#"{"method":"GET","path":"x","scopes":[]}"#, "start with /"),
            (r#"{"method":"GET","path":"/**/x","scopes":[]}"#, "last segment"),
            (r#"{"method":"GET","path":"/a*","scopes":[]}"#, "whole segment"),
            (r#"{"method":"GET","path":"/a;b","scopes":[]}"#, "A-Z a-z 0-9"),
            (r#"{"method":"GET","path":"/a%2Fb","scopes":[]}"#, "A-Z a-z 0-9"),
            (r#"{"method":"GET","path":"/a:b","scopes":[]}"#, "A-Z a-z 0-9"),
            (r#"{"method":"GET","path":"/caf\u00e9","scopes":[]}"#, "A-Z a-z 0-9"),
            (r#"{"method":"GET","path":"/x/../y","scopes":[]}"#, "dot segments"),
            (
                r#"{"method":"GET","path":"/x","scopes":["b:viewer"]}"#,
                "unknown resource",
            ),
            (r#"{"method":"GET","path":"/x","scopes":[],"extra":1}"#, "unknown field"),
            (
                r#"{"method":"GET","path":"/x","scopes":["a:viewer"],"public":true}"#,
                "public route cannot require scopes",
            ),
            (
                r#"{"method":"GET","path":"/x","scopes":[],"public":"yes"}"#,
                "invalid type",
            ),
        ] {
            let err = Policy::from_json(&base.replace("ROUTE", route)).unwrap_err();
            assert!(err.contains(why), "{route}: {err}");
        }
    }
}
