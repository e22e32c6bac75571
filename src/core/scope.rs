//! Scopes: `resource:permission`, `resource:*`, `*`; a role ladder shared by every resource;
//! legacy aliases normalised at parse time. See docs/scopes.md.

use std::collections::BTreeMap;
use std::fmt;

/// The role ladder: a higher role implies every lower one on the same resource.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Role {
    Discoverer,
    Viewer,
    Editor,
    Owner,
    Admin,
}

impl Role {
    pub const ALL: [Role; 5] = [Role::Discoverer, Role::Viewer, Role::Editor, Role::Owner, Role::Admin];

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Discoverer => "discoverer",
            Role::Viewer => "viewer",
            Role::Editor => "editor",
            Role::Owner => "owner",
            Role::Admin => "admin",
        }
    }

    fn from_name(s: &str) -> Option<Role> {
        Role::ALL.into_iter().find(|r| r.as_str() == s).or(match s {
            // Legacy alias kept so keys issued by the previous system keep their meaning.
            "executor" => Some(Role::Viewer),
            _ => None,
        })
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Perm {
    Any,
    Role(Role),
    Named(Box<str>),
}

/// One scope. `resource == None` is the global wildcard `*`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Scope {
    resource: Option<Box<str>>,
    perm: Perm,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScopeError(pub String);

impl fmt::Display for ScopeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

fn valid_ident(s: &str) -> bool {
    let b = s.as_bytes();
    !b.is_empty()
        && b.len() <= 64
        && b[0].is_ascii_lowercase()
        && b.iter()
            .all(|&c| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, b'_' | b'-' | b'.'))
}

impl Scope {
    pub fn parse(s: &str) -> Result<Scope, ScopeError> {
        if s == "*" {
            return Ok(Scope {
                resource: None,
                perm: Perm::Any,
            });
        }
        let (res, perm) = s.split_once(':').ok_or_else(|| {
            ScopeError(format!(
                "scope '{}' is not of the form resource:permission",
                printable(s)
            ))
        })?;
        if !valid_ident(res) {
            return Err(ScopeError(format!(
                "scope '{}' has an invalid resource name",
                printable(s)
            )));
        }
        let perm = if perm == "*" {
            Perm::Any
        } else if let Some(role) = Role::from_name(perm) {
            Perm::Role(role)
        } else if valid_ident(perm) {
            Perm::Named(perm.into())
        } else {
            return Err(ScopeError(format!(
                "scope '{}' has an invalid permission",
                printable(s)
            )));
        };
        Ok(Scope {
            resource: Some(res.into()),
            perm,
        })
    }

    pub fn resource(&self) -> Option<&str> {
        self.resource.as_deref()
    }

    /// Does holding `self` satisfy a requirement of `required`?
    pub fn implies(&self, required: &Scope) -> bool {
        let Some(held_res) = &self.resource else { return true };
        let Some(req_res) = &required.resource else {
            return false;
        };
        if held_res != req_res {
            return false;
        }
        match (&self.perm, &required.perm) {
            (Perm::Any, _) => true,
            (_, Perm::Any) => false,
            (Perm::Role(h), Perm::Role(r)) => h >= r,
            (Perm::Named(h), Perm::Named(r)) => h == r,
            _ => false,
        }
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let Some(res) = &self.resource else {
            return f.write_str("*");
        };
        match &self.perm {
            Perm::Any => write!(f, "{res}:*"),
            Perm::Role(r) => write!(f, "{res}:{}", r.as_str()),
            Perm::Named(n) => write!(f, "{res}:{n}"),
        }
    }
}

/// Input echoed into an error message: printable ASCII only and bounded, so a hostile value
/// cannot inject control characters or bloat the response.
pub fn printable(s: &str) -> String {
    s.chars()
        .take(80)
        .map(|c| if c.is_ascii_graphic() || c == ' ' { c } else { '?' })
        .collect()
}

/// A set of scopes, kept in canonical order without duplicates.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ScopeSet(Vec<Scope>);

impl ScopeSet {
    pub fn parse<S: AsRef<str>>(items: &[S]) -> Result<ScopeSet, ScopeError> {
        let scopes = items
            .iter()
            .map(|s| Scope::parse(s.as_ref()))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(ScopeSet::from_scopes(scopes))
    }

    pub fn from_scopes(mut scopes: Vec<Scope>) -> ScopeSet {
        scopes.sort_by_cached_key(|s| s.to_string());
        scopes.dedup();
        ScopeSet(scopes)
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn iter(&self) -> impl Iterator<Item = &Scope> {
        self.0.iter()
    }

    pub fn holds(&self, required: &Scope) -> bool {
        self.0.iter().any(|h| h.implies(required))
    }

    pub fn covers(&self, required: &ScopeSet) -> bool {
        required.0.iter().all(|r| self.holds(r))
    }

    /// The scopes of `required` this set does not satisfy.
    pub fn missing<'r>(&self, required: &'r ScopeSet) -> Vec<&'r Scope> {
        required.0.iter().filter(|r| !self.holds(r)).collect()
    }

    /// What both sets grant: each scope of one set that the other set also holds. A scope held
    /// by both implies only what both grant, so the result never grants more than either set.
    pub fn meet(&self, other: &ScopeSet) -> ScopeSet {
        let a = self.0.iter().filter(|s| other.holds(s));
        let b = other.0.iter().filter(|s| self.holds(s));
        ScopeSet::from_scopes(a.chain(b).cloned().collect())
    }

    pub fn union(&self, other: &ScopeSet) -> ScopeSet {
        ScopeSet::from_scopes(self.0.iter().chain(other.0.iter()).cloned().collect())
    }

    pub fn to_strings(&self) -> Vec<String> {
        self.0.iter().map(Scope::to_string).collect()
    }

    /// Space separated, as in RFC 6750's `scope` attribute and the X-Keyward-Scopes header.
    pub fn joined(&self) -> String {
        self.to_strings().join(" ")
    }
}

/// The scopes an admin may grant: known resources, each with the role ladder plus its own
/// extra permissions. Keys stored before a catalogue change keep working at the edge
/// (the edge only compares); only issuing and editing consult the catalogue.
#[derive(Debug, Clone, Default)]
pub struct Catalog {
    resources: BTreeMap<String, Vec<String>>,
}

impl Catalog {
    pub fn new(resources: BTreeMap<String, Vec<String>>) -> Result<Catalog, ScopeError> {
        for (res, perms) in &resources {
            if !valid_ident(res) {
                return Err(ScopeError(format!(
                    "catalogue resource '{}' is not a valid name",
                    printable(res)
                )));
            }
            if let Some(bad) = perms.iter().find(|p| !valid_ident(p) || Role::from_name(p).is_some()) {
                return Err(ScopeError(format!(
                    "catalogue permission '{res}:{}' is invalid",
                    printable(bad)
                )));
            }
        }
        Ok(Catalog { resources })
    }

    pub fn check(&self, scope: &Scope) -> Result<(), ScopeError> {
        let Some(res) = scope.resource() else { return Ok(()) };
        let Some(extra) = self.resources.get(res) else {
            return Err(ScopeError(format!("unknown resource in scope '{scope}'")));
        };
        match &scope.perm {
            Perm::Any | Perm::Role(_) => Ok(()),
            Perm::Named(n) if extra.iter().any(|e| **e == **n) => Ok(()),
            Perm::Named(_) => Err(ScopeError(format!("unknown permission in scope '{scope}'"))),
        }
    }

    pub fn check_all(&self, set: &ScopeSet) -> Result<(), ScopeError> {
        set.iter().try_for_each(|s| self.check(s))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(x: &str) -> Scope {
        Scope::parse(x).unwrap()
    }

    #[test]
    fn implies_table() {
        // (held, required, expected)
        let table = [
            ("*", "projects:viewer", true),
            ("*", "*", true),
            ("*", "deploy:trigger", true),
            ("projects:*", "projects:owner", true),
            ("projects:*", "projects:anything", true),
            ("projects:*", "deployments:viewer", false),
            ("projects:*", "*", false),
            ("projects:viewer", "*", false),
            ("projects:viewer", "projects:*", false),
            ("projects:admin", "projects:*", false),
            ("projects:viewer", "projects:discoverer", true),
            ("projects:viewer", "projects:viewer", true),
            ("projects:viewer", "projects:editor", false),
            ("projects:editor", "projects:viewer", true),
            ("projects:owner", "projects:editor", true),
            ("projects:owner", "projects:admin", false),
            ("projects:admin", "projects:owner", true),
            ("projects:admin", "projects:discoverer", true),
            ("projects:discoverer", "projects:viewer", false),
            ("projects:owner", "deployments:viewer", false),
            ("projects:executor", "projects:viewer", true),
            ("projects:executor", "projects:editor", false),
            ("projects:viewer", "projects:executor", true),
            ("deploy:trigger", "deploy:trigger", true),
            ("deploy:trigger", "deploy:other", false),
            ("deploy:admin", "deploy:trigger", false),
            ("deploy:trigger", "deploy:viewer", false),
            ("deploy:*", "deploy:trigger", true),
        ];
        for (held, req, want) in table {
            assert_eq!(s(held).implies(&s(req)), want, "{held} implies {req}");
        }
    }

    #[test]
    fn parse_canonicalises_and_rejects_garbage() {
        assert_eq!(s("projects:executor").to_string(), "projects:viewer");
        assert_eq!(s("projects:*").to_string(), "projects:*");
        assert_eq!(s("*").to_string(), "*");
        assert_eq!(s("a.b-c_d:x.y").to_string(), "a.b-c_d:x.y");
        for bad in [
            "",
            ":",
            "projects",
            "projects:",
            ":viewer",
            "Projects:viewer",
            "projects:Viewer",
            "*:viewer",
            "pro jects:viewer",
            "projects:view er",
            "projects:viewer:x",
            "1abc:viewer",
            "**",
            "projects:**",
            "\u{7}:viewer",
        ] {
            assert!(Scope::parse(bad).is_err(), "{bad:?} should be rejected");
        }
        let long = format!("{}:viewer", "a".repeat(65));
        assert!(Scope::parse(&long).is_err());
    }

    #[test]
    fn printable_masks_everything_but_ascii_graphic_and_space() {
        assert_eq!(printable("a b~"), "a b~");
        assert_eq!(printable("a\u{7F}b"), "a?b", "DEL");
        assert_eq!(printable("a\u{85}b"), "a?b", "NEL, a C1 line break");
        assert_eq!(printable("evil\u{202E}txt.exe"), "evil?txt.exe", "bidi override");
        assert_eq!(printable("\u{0}\t\n\r\u{1b}[31m"), "?????[31m");
        assert_eq!(printable("\u{2028}\u{200B}\u{FEFF}é"), "????");
        let long = "\u{202E}".repeat(200);
        assert_eq!(printable(&long), "?".repeat(80), "80 characters, not 80 bytes");
    }

    #[test]
    fn sets_dedupe_sort_and_report_missing() {
        let held = ScopeSet::parse(&["projects:editor", "events:write", "projects:editor"]).unwrap();
        assert_eq!(held.to_strings(), vec!["events:write", "projects:editor"]);
        assert_eq!(held.joined(), "events:write projects:editor");
        let need = ScopeSet::parse(&["projects:viewer", "deploy:trigger", "events:write"]).unwrap();
        assert!(!held.covers(&need));
        let missing: Vec<String> = held.missing(&need).iter().map(|s| s.to_string()).collect();
        assert_eq!(missing, vec!["deploy:trigger"]);
        assert!(held.covers(&ScopeSet::default()), "an empty requirement is always met");
        assert!(ScopeSet::default().covers(&ScopeSet::default()));
        assert!(!ScopeSet::default().covers(&need));
    }

    #[test]
    fn catalogue_accepts_ladder_wildcards_and_listed_permissions_only() {
        let mut m = BTreeMap::new();
        m.insert("projects".to_string(), vec![]);
        m.insert("deploy".to_string(), vec!["trigger".to_string()]);
        let cat = Catalog::new(m).unwrap();
        for ok in [
            "*",
            "projects:viewer",
            "projects:*",
            "projects:admin",
            "deploy:trigger",
            "deploy:owner",
        ] {
            assert!(cat.check(&s(ok)).is_ok(), "{ok}");
        }
        for bad in ["projects:trigger", "billing:viewer", "deploy:launch"] {
            assert!(cat.check(&s(bad)).is_err(), "{bad}");
        }
        let mut m = BTreeMap::new();
        m.insert("x".to_string(), vec!["viewer".to_string()]);
        assert!(
            Catalog::new(m).is_err(),
            "a role cannot be redeclared as an extra permission"
        );
    }
}
