//! Route policy: (method, path) -> the scopes a key must hold. Parsed from config/policy.json
//! (bundled at build) once per isolate; matching allocates nothing.

use serde::Deserialize;
use std::collections::BTreeMap;

use super::scope::{Catalog, ScopeSet};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PolicyFile {
    realm: String,
    resources: BTreeMap<String, Vec<String>>,
    presets: BTreeMap<String, PresetDef>,
    routes: Vec<RouteDef>,
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
    pub public: bool,
    /// Precomputed `scope="..."` value for the 403 challenge.
    pub scope_attr: String,
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
}

/// Why a request path is refused before matching.
#[derive(Debug, PartialEq, Eq)]
pub enum PathError {
    /// Encoded slashes/backslashes or dot segments: an origin that decodes or normalises them
    /// differently from us could serve a route other than the one we authorised.
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
        let catalog = Catalog::new(file.resources).map_err(|e| format!("policy: {e}"))?;
        let mut presets = Vec::new();
        for (name, def) in file.presets {
            let scopes = ScopeSet::parse(&def.scopes).map_err(|e| format!("policy preset {name}: {e}"))?;
            catalog
                .check_all(&scopes)
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
            let scopes = ScopeSet::parse(&def.scopes).map_err(|e| ctx(e.0))?;
            catalog.check_all(&scopes).map_err(|e| ctx(e.0))?;
            let scope_attr = scopes.joined();
            routes.push(Route {
                method,
                segs,
                public: false,
                scopes,
                scope_attr,
            });
        }
        Ok(Policy {
            realm: file.realm,
            catalog,
            presets,
            routes,
        })
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
            lit => Seg::Lit(lit.into()),
        });
    }
    Ok(segs)
}

fn check_path(path: &str) -> Result<(), PathError> {
    let lower_has = |needle: &str| {
        path.as_bytes()
            .windows(needle.len())
            .any(|w| w.eq_ignore_ascii_case(needle.as_bytes()))
    };
    if path.contains('\\') || lower_has("%2f") || lower_has("%5c") || lower_has("%2e") {
        return Err(PathError::Ambiguous);
    }
    if path.split('/').any(|s| s == "." || s == "..") {
        return Err(PathError::Ambiguous);
    }
    Ok(())
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
            ("POST", "/agents//run", None),
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
    fn ambiguous_paths_are_refused() {
        let p = policy();
        for bad in [
            "/echo/..%2Fprojects",
            "/echo/%2e%2e/projects",
            "/echo/a\\b",
            "/echo/../projects",
            "/echo/./x",
            "/echo/%5C",
        ] {
            assert_eq!(p.route("GET", bad).err(), Some(PathError::Ambiguous), "{bad}");
        }
        assert!(p.route("GET", "/echo/a%20b").is_ok());
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
            (
                r#"{"method":"GET","path":"/x","scopes":["b:viewer"]}"#,
                "unknown resource",
            ),
            (r#"{"method":"GET","path":"/x","scopes":[],"extra":1}"#, "unknown field"),
        ] {
            let err = Policy::from_json(&base.replace("ROUTE", route)).unwrap_err();
            assert!(err.contains(why), "{route}: {err}");
        }
    }
}
