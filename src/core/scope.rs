//! Scopes: `resource:permission`, `resource:*`, `*`; a role ladder shared by every resource;
//! legacy aliases normalised at parse time. See docs/scopes.md.

use std::collections::BTreeMap;
use std::fmt;

use serde::Deserialize;

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

    /// The role or permission name (None for a wildcard).
    pub fn perm_name(&self) -> Option<&str> {
        match &self.perm {
            Perm::Any => None,
            Perm::Role(r) => Some(r.as_str()),
            Perm::Named(n) => Some(n),
        }
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

/// How one resource is declared in config/policy.json: either a list of extra permissions (and
/// the default role ladder), or an object that also names the resource's own roles and legacy
/// aliases.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum ResourceDecl {
    Permissions(Vec<String>),
    Detailed(ResourceDetail),
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ResourceDetail {
    /// The roles this resource accepts, lowest first; a higher role implies every lower one.
    /// Absent: the default ladder (discoverer, viewer, editor, owner, admin).
    #[serde(default)]
    pub roles: Option<Vec<String>>,
    /// Permissions outside the ladder (`run`, `trigger`).
    #[serde(default)]
    pub permissions: Vec<String>,
    /// Legacy names and what each grants: roles or permissions of this resource
    /// (`"executor": ["viewer", "run"]`). Expanded when a key or preset is written.
    #[serde(default)]
    pub aliases: BTreeMap<String, Vec<String>>,
}

#[derive(Debug, Clone)]
struct Resource {
    /// None: the default ladder.
    roles: Option<Vec<String>>,
    permissions: Vec<String>,
    aliases: BTreeMap<String, Vec<Scope>>,
}

impl Resource {
    fn has_role(&self, name: &str) -> bool {
        match &self.roles {
            None => Role::from_name(name).is_some(),
            Some(roles) => roles.iter().any(|r| r == name),
        }
    }

    /// Roles of a custom ladder strictly below `name`, that the built-in ladder does not already
    /// imply: a key holding `org:admin` is stored with `org:member` too, so every comparison (at
    /// the edge, in narrowing checks, in grants) stays a plain set comparison.
    fn implied_below(&self, name: &str) -> Vec<&str> {
        let Some(roles) = &self.roles else { return Vec::new() };
        let Some(at) = roles.iter().position(|r| r == name) else {
            return Vec::new();
        };
        let held_builtin = Role::from_name(name);
        roles[..at]
            .iter()
            .filter(|lower| !(held_builtin.is_some() && Role::from_name(lower).is_some()))
            .map(String::as_str)
            .collect()
    }
}

/// The scope grammar and catalogue of a deployment: the separator (`resource:permission`, or
/// `resource.permission` for an API that names its permissions so), the known resources with
/// their roles, permissions and legacy aliases.
///
/// Scopes are stored and compared in one canonical form (`resource:permission`, built-in roles as
/// the ladder); the separator only applies where scopes cross the API: parsing input, and
/// rendering them in responses and forwarded headers. Keys stored before a catalogue change keep
/// working at the edge (the edge only compares); issuing and editing consult the catalogue.
#[derive(Debug, Clone)]
pub struct Catalog {
    sep: char,
    resources: BTreeMap<String, Resource>,
}

impl Default for Catalog {
    fn default() -> Catalog {
        Catalog {
            sep: ':',
            resources: BTreeMap::new(),
        }
    }
}

fn declared_error(res: &str, what: &str, name: &str) -> ScopeError {
    ScopeError(format!(
        "catalogue resource '{}': {what} '{}' is invalid",
        printable(res),
        printable(name)
    ))
}

impl Catalog {
    /// `format`: `resource:permission` (the default) or `resource.permission`.
    pub fn new(format: Option<&str>, decls: BTreeMap<String, ResourceDecl>) -> Result<Catalog, ScopeError> {
        let sep = match format.unwrap_or("resource:permission") {
            "resource:permission" => ':',
            "resource.permission" => '.',
            other => {
                return Err(ScopeError(format!(
                    "scope_format must be \"resource:permission\" or \"resource.permission\", got \"{}\"",
                    printable(other)
                )))
            }
        };
        let ident = |s: &str| valid_ident(s) && !s.contains(sep);
        let mut resources = BTreeMap::new();
        for (res, decl) in decls {
            if !ident(&res) {
                return Err(ScopeError(format!(
                    "catalogue resource '{}' is not a valid name",
                    printable(&res)
                )));
            }
            let detail = match decl {
                ResourceDecl::Permissions(permissions) => ResourceDetail {
                    permissions,
                    ..ResourceDetail::default()
                },
                ResourceDecl::Detailed(d) => d,
            };
            if let Some(roles) = &detail.roles {
                if roles.is_empty() {
                    return Err(ScopeError(format!(
                        "catalogue resource '{res}': roles must not be empty"
                    )));
                }
                let mut last_builtin: Option<Role> = None;
                for (i, r) in roles.iter().enumerate() {
                    if !ident(r) || r == "executor" || roles[..i].contains(r) {
                        return Err(declared_error(&res, "role", r));
                    }
                    // Built-in role names keep their built-in order, so the ladder's comparison and
                    // this resource's order never disagree.
                    if let Some(b) = Role::from_name(r) {
                        if last_builtin.is_some_and(|l| l > b) {
                            return Err(ScopeError(format!(
                                "catalogue resource '{res}': role '{r}' must come before the higher built-in roles"
                            )));
                        }
                        last_builtin = Some(b);
                    }
                }
            }
            let mut resource = Resource {
                roles: detail.roles,
                permissions: Vec::new(),
                aliases: BTreeMap::new(),
            };
            for p in &detail.permissions {
                if !ident(p) || Role::from_name(p).is_some() || resource.has_role(p) {
                    return Err(declared_error(&res, "permission", p));
                }
            }
            resource.permissions = detail.permissions;
            for (alias, grants) in detail.aliases {
                if !ident(&alias)
                    || resource.has_role(&alias)
                    || resource.permissions.contains(&alias)
                    || grants.is_empty()
                {
                    return Err(declared_error(&res, "alias", &alias));
                }
                let mut scopes = Vec::new();
                for g in &grants {
                    if !(resource.has_role(g) || resource.permissions.contains(g)) || g == "executor" {
                        return Err(declared_error(&res, &format!("alias '{alias}' grant"), g));
                    }
                    scopes.push(Scope::parse(&format!("{res}:{g}"))?);
                }
                resource.aliases.insert(alias, scopes);
            }
            resources.insert(res, resource);
        }
        Ok(Catalog { sep, resources })
    }

    pub fn separator(&self) -> char {
        self.sep
    }

    /// One scope in the configured form, with no catalogue check (required scopes of the verify
    /// API, which may name anything).
    pub fn parse_scope(&self, s: &str) -> Result<Scope, ScopeError> {
        if self.sep == ':' || s == "*" {
            return Scope::parse(s);
        }
        match s.split_once(self.sep) {
            Some((res, perm)) if !res.contains(':') && !perm.contains(':') && !perm.contains(self.sep) => {
                Scope::parse(&format!("{res}:{perm}")).map_err(|_| {
                    ScopeError(format!(
                        "scope '{}' is not of the form resource.permission",
                        printable(s)
                    ))
                })
            }
            _ => Err(ScopeError(format!(
                "scope '{}' is not of the form resource.permission",
                printable(s)
            ))),
        }
    }

    /// Required scopes (routes, the verify API): the configured form, no expansion.
    pub fn parse_required<S: AsRef<str>>(&self, items: &[S]) -> Result<ScopeSet, ScopeError> {
        let scopes = items
            .iter()
            .map(|s| self.parse_scope(s.as_ref()))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(ScopeSet::from_scopes(scopes))
    }

    /// Scopes to grant (keys, presets): the configured form; each one checked against the
    /// catalogue (an unknown resource, a role its resource does not have, an unknown permission
    /// -> error); legacy aliases expanded to what they grant, and custom-ladder roles to the
    /// roles they imply.
    pub fn parse_grant<S: AsRef<str>>(&self, items: &[S]) -> Result<ScopeSet, ScopeError> {
        let mut out = Vec::new();
        for item in items {
            let raw = item.as_ref();
            let alias = raw
                .split_once(self.sep)
                .and_then(|(res, name)| self.resources.get(res)?.aliases.get(name));
            if let Some(grants) = alias {
                out.extend(grants.iter().cloned());
                continue;
            }
            let scope = self.parse_scope(raw)?;
            self.check_named(&scope, raw)?;
            out.push(scope);
        }
        let mut implied = Vec::new();
        for scope in &out {
            if let (Some(res), Some(role)) = (scope.resource(), scope.perm_name()) {
                if let Some(r) = self.resources.get(res) {
                    for lower in r.implied_below(role) {
                        implied.push(Scope::parse(&format!("{res}:{lower}"))?);
                    }
                }
            }
        }
        out.extend(implied);
        Ok(ScopeSet::from_scopes(out))
    }

    fn check_named(&self, scope: &Scope, raw: &str) -> Result<(), ScopeError> {
        let Some(res) = scope.resource() else { return Ok(()) };
        let shown = printable(raw);
        let Some(r) = self.resources.get(res) else {
            return Err(ScopeError(format!("unknown resource in scope '{shown}'")));
        };
        let known = match &scope.perm {
            Perm::Any => true,
            Perm::Role(role) => r.has_role(role.as_str()),
            Perm::Named(n) => r.has_role(n) || r.permissions.iter().any(|p| **p == **n),
        };
        if known {
            return Ok(());
        }
        let roles = match &r.roles {
            None => Role::ALL.iter().map(|r| r.as_str()).collect::<Vec<_>>().join(", "),
            Some(roles) => roles.join(", "),
        };
        let mut accepted = format!("roles: {roles}");
        if !r.permissions.is_empty() {
            accepted.push_str("; permissions: ");
            accepted.push_str(&r.permissions.join(", "));
        }
        Err(ScopeError(format!(
            "scope '{shown}': resource '{res}' has no role or permission '{}' ({accepted})",
            printable(raw_perm(raw, self.sep))
        )))
    }

    /// Checks scopes already in canonical form (presets and routes read from the policy file).
    pub fn check_all(&self, set: &ScopeSet) -> Result<(), ScopeError> {
        set.iter().try_for_each(|s| self.check_named(s, &self.show(s)))
    }

    /// One scope in the configured form.
    pub fn show(&self, scope: &Scope) -> String {
        let s = scope.to_string();
        if self.sep == ':' {
            s
        } else {
            s.replacen(':', ".", 1)
        }
    }

    pub fn strings(&self, set: &ScopeSet) -> Vec<String> {
        set.iter().map(|s| self.show(s)).collect()
    }

    /// Space separated, in the configured form: RFC 6750's `scope` attribute, X-Keyward-Scopes.
    pub fn joined(&self, set: &ScopeSet) -> String {
        self.strings(set).join(" ")
    }
}

fn raw_perm(raw: &str, sep: char) -> &str {
    raw.split_once(sep).map_or("", |(_, p)| p)
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

    fn catalog(format: Option<&str>, json: &str) -> Result<Catalog, ScopeError> {
        // A declaration serde refuses (an unknown member) is refused like any other.
        let decls = serde_json::from_str(json).map_err(|e| ScopeError(e.to_string()))?;
        Catalog::new(format, decls)
    }

    fn granted(cat: &Catalog, items: &[&str]) -> Result<Vec<String>, String> {
        cat.parse_grant(items).map(|set| cat.strings(&set)).map_err(|e| e.0)
    }

    #[test]
    fn catalogue_accepts_ladder_wildcards_and_listed_permissions_only() {
        let cat = catalog(None, r#"{"projects": [], "deploy": ["trigger"]}"#).unwrap();
        for ok in [
            "*",
            "projects:viewer",
            "projects:*",
            "projects:admin",
            "deploy:trigger",
            "deploy:owner",
        ] {
            assert!(cat.parse_grant(&[ok]).is_ok(), "{ok}");
        }
        for bad in ["projects:trigger", "billing:viewer", "deploy:launch", "projects.viewer"] {
            assert!(cat.parse_grant(&[bad]).is_err(), "{bad}");
        }
        assert!(
            catalog(None, r#"{"x": ["viewer"]}"#).is_err(),
            "a role cannot be redeclared as an extra permission"
        );
        assert_eq!(
            granted(&cat, &["projects:executor"]).unwrap(),
            ["projects:viewer"],
            "global legacy alias"
        );
    }

    /// The catalogue from a product's own docs: `org` admin|member, `namespace` admin, `project`
    /// discoverer..owner, `agent` discoverer..owner plus the legacy `executor`, read as viewer
    /// but still granting `agent:run`.
    const PRODUCT: &str = r#"{
        "org": {"roles": ["member", "admin"]},
        "namespace": {"roles": ["admin"]},
        "project": {"roles": ["discoverer", "viewer", "editor", "owner"]},
        "agent": {"roles": ["discoverer", "viewer", "editor", "owner"], "permissions": ["run"],
                  "aliases": {"executor": ["viewer", "run"]}},
        "trace": ["read", "write"]
    }"#;

    #[test]
    fn per_resource_roles_refuse_roles_their_resource_does_not_have() {
        let cat = catalog(None, PRODUCT).unwrap();
        for ok in [
            "org:member",
            "org:admin",
            "namespace:admin",
            "project:owner",
            "agent:run",
            "org:*",
            "*",
        ] {
            assert!(cat.parse_grant(&[ok]).is_ok(), "{ok}");
        }
        for (bad, says) in [
            ("org:viewer", "(roles: member, admin)"),
            ("org:owner", "has no role or permission 'owner'"),
            ("org:executor", "has no role or permission 'executor'"),
            ("namespace:member", "(roles: admin)"),
            ("project:admin", "(roles: discoverer, viewer, editor, owner)"),
            ("agent:admin", "permissions: run"),
            ("trace:viewer2", "unknown permission"),
        ] {
            let e = cat.parse_grant(&[bad]).unwrap_err().0;
            if says == "unknown permission" {
                assert!(e.contains("has no role or permission 'viewer2'"), "{bad}: {e}");
            } else {
                assert!(e.contains(says), "{bad}: {e}");
            }
        }
    }

    #[test]
    fn custom_ladders_are_stored_with_the_roles_they_imply_and_aliases_expanded() {
        let cat = catalog(None, PRODUCT).unwrap();
        assert_eq!(granted(&cat, &["org:admin"]).unwrap(), ["org:admin", "org:member"]);
        assert_eq!(granted(&cat, &["org:member"]).unwrap(), ["org:member"]);
        // Built-in names on a custom ladder: the built-in comparison already covers them.
        assert_eq!(granted(&cat, &["project:owner"]).unwrap(), ["project:owner"]);
        assert_eq!(
            granted(&cat, &["agent:executor"]).unwrap(),
            ["agent:run", "agent:viewer"]
        );
        let held = cat.parse_grant(&["agent:executor", "org:admin"]).unwrap();
        let need = |s: &str| cat.parse_required(&[s]).unwrap();
        for (req, want) in [
            ("agent:run", true),
            ("agent:viewer", true),
            ("agent:discoverer", true),
            ("agent:editor", false),
            ("org:member", true),
            ("org:admin", true),
            ("namespace:admin", false),
        ] {
            assert_eq!(held.covers(&need(req)), want, "{req}");
        }
        // Narrowing org:admin -> org:member is a plain subset, so the write protocol sees it.
        let member = cat.parse_grant(&["org:member"]).unwrap();
        let admin = cat.parse_grant(&["org:admin"]).unwrap();
        assert!(admin.covers(&member) && !member.covers(&admin));
        assert_eq!(cat.strings(&admin.meet(&member)), ["org:member"]);
    }

    #[test]
    fn catalogue_declarations_are_validated() {
        for bad in [
            r#"{"org": {"roles": []}}"#,
            r#"{"org": {"roles": ["member", "member"]}}"#,
            r#"{"org": {"roles": ["Member"]}}"#,
            r#"{"org": {"roles": ["executor"]}}"#,
            r#"{"org": {"roles": ["admin", "viewer"]}}"#,
            r#"{"org": {"roles": ["member"], "permissions": ["member"]}}"#,
            r#"{"org": {"roles": ["member"], "aliases": {"boss": ["admin"]}}}"#,
            r#"{"org": {"roles": ["member"], "aliases": {"member": ["member"]}}}"#,
            r#"{"org": {"roles": ["member"], "aliases": {"x": []}}}"#,
            r#"{"org": {"roles": ["member"], "colour": "red"}}"#,
        ] {
            assert!(catalog(None, bad).is_err(), "{bad}");
        }
        assert!(catalog(Some("resource/permission"), "{}").is_err());
        assert!(
            catalog(Some("resource.permission"), r#"{"a.b": []}"#).is_err(),
            "the separator cannot be in a name"
        );
        assert!(catalog(Some("resource.permission"), r#"{"ab": ["x.y"]}"#).is_err());
    }

    #[test]
    fn dotted_form_parses_grants_and_renders_with_the_same_rules() {
        let cat = catalog(Some("resource.permission"), PRODUCT).unwrap();
        assert_eq!(cat.separator(), '.');
        assert_eq!(
            granted(&cat, &["trace.read", "org.admin"]).unwrap(),
            ["org.admin", "org.member", "trace.read"]
        );
        assert_eq!(
            granted(&cat, &["agent.executor"]).unwrap(),
            ["agent.run", "agent.viewer"]
        );
        assert_eq!(granted(&cat, &["trace.*", "*"]).unwrap(), ["*", "trace.*"]);
        for bad in [
            "trace:read",
            "trace.read.x",
            "trace",
            "trace.",
            ".read",
            "org.viewer",
            "tr:ace.read",
        ] {
            assert!(cat.parse_grant(&[bad]).is_err(), "{bad}");
        }
        let held = cat.parse_grant(&["trace.*"]).unwrap();
        assert!(held.covers(&cat.parse_required(&["trace.write"]).unwrap()));
        assert_eq!(cat.joined(&held), "trace.*");
        // Stored form stays canonical, so switching the format never strands a stored key.
        assert_eq!(held.to_strings(), ["trace:*"]);
    }
}
