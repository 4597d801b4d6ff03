//! The Supervisor's API access tables (`supervisor/api/middleware/security.py`), v1 and `/v2`.
//!
//! The Supervisor writes them as anchored Python regexes with negative lookaheads, which the
//! `regex` crate does not have. Each lookahead here sits at a position the pattern pins down
//! (right after `/addons/<slug>/`, `/addons/self/` or `/os/`, and a slug cannot hold a `/`), so
//! an alternative with a lookahead becomes "matches the pattern without it, unless the path
//! starts with the forbidden prefix". `tests/gateway_roles.rs` checks that translation against
//! the verbatim Supervisor regexes on thousands of generated paths.

use regex::{Regex, RegexSet};

use crate::config::Role;

/// `RE_SLUG` of the Supervisor.
const SLUG: &str = "[-_.A-Za-z0-9]+";

/// One alternative of a Supervisor pattern: a full match of `pattern`, unless the path starts
/// with `unless` (the translated lookahead).
struct Alternative {
    pattern: String,
    unless: Option<String>,
}

fn alt(pattern: &str) -> Alternative {
    Alternative {
        pattern: pattern.replace("SLUG", SLUG),
        unless: None,
    }
}

fn alt_unless(pattern: &str, unless: &str) -> Alternative {
    Alternative {
        pattern: pattern.replace("SLUG", SLUG),
        unless: Some(unless.replace("SLUG", SLUG)),
    }
}

/// A set of alternatives matched in one pass; the lookahead checks run only on the hits.
pub struct PatternSet {
    set: RegexSet,
    unless: Vec<Option<Regex>>,
}

impl PatternSet {
    fn new(prefix: &str, alternatives: Vec<Alternative>) -> PatternSet {
        let set = RegexSet::new(
            alternatives
                .iter()
                .map(|a| format!("^{prefix}(?:{})$", a.pattern)),
        )
        .expect("the role tables are valid regexes");
        let unless = alternatives
            .iter()
            .map(|a| {
                a.unless.as_ref().map(|u| {
                    Regex::new(&format!("^{prefix}(?:{u})")).expect("valid lookahead prefix")
                })
            })
            .collect();
        PatternSet { set, unless }
    }

    pub fn matches(&self, path: &str) -> bool {
        self.set
            .matches(path)
            .iter()
            .any(|i| self.unless[i].as_ref().is_none_or(|u| !u.is_match(path)))
    }
}

/// The access sets of one API version.
pub struct Tables {
    pub api_bypass: PatternSet,
    pub core_only: PatternSet,
    pub no_security_check: PatternSet,
    roles: [PatternSet; 5],
}

impl Tables {
    pub fn role(&self, role: Role) -> &PatternSet {
        &self.roles[role as usize]
    }
}

/// Both versions, built once.
pub struct RoleTables {
    pub v1: Tables,
    pub v2: Tables,
    /// Always 403, for every caller, on both versions.
    pub blacklist: PatternSet,
}

impl RoleTables {
    /// The tables that govern `path`: `/v2` and below are the v2 sub-application.
    pub fn for_path(&self, path: &str) -> &Tables {
        if path == "/v2" || path.starts_with("/v2/") {
            &self.v2
        } else {
            &self.v1
        }
    }
}

fn info() -> Vec<Alternative> {
    vec![alt(""), alt("/.+/info")]
}

fn with(mut base: Vec<Alternative>, more: Vec<Alternative>) -> Vec<Alternative> {
    base.extend(more);
    base
}

/// The manager list, shared by both versions but for the items that differ.
fn manager(v2: bool) -> Vec<Alternative> {
    let mut alts = info();
    if v2 {
        alts.push(alt("/apps"));
        alts.push(alt_unless("/apps/SLUG/.+", "/apps/SLUG/security"));
    } else {
        alts.push(alt("/addons"));
        alts.push(alt_unless("/addons/SLUG/.+", "/addons/SLUG/security"));
        alts.push(alt("/addons/reload"));
    }
    alts.extend(
        ["/audio/.+", "/auth/cache"]
            .into_iter()
            .chain((!v2).then_some("/available_updates"))
            .chain([
                "/backups.*",
                "/cli/.+",
                "/core/.+",
                "/dns/.+",
                "/docker/.+",
                "/jobs/.+",
                "/hardware/.+",
                "/homeassistant/.+",
                "/host/.+",
                "/mounts.*",
                "/multicast/.+",
                "/network/.+",
                "/observer/.+",
            ])
            .map(alt),
    );
    alts.push(alt_unless("/os/.+", "/os/datadisk/wipe"));
    alts.push(alt(if v2 {
        "/reload_updates"
    } else {
        "/refresh_updates"
    }));
    alts.extend(
        ["/resolution/.+", "/security/.+"]
            .into_iter()
            .chain((!v2).then_some("/snapshots.*"))
            .chain(["/store.*", "/supervisor/.+"])
            .map(alt),
    );
    alts
}

fn tables(v2: bool) -> Tables {
    let (prefix, apps) = if v2 { ("/v2", "apps") } else { ("", "addons") };
    let set = |alts| PatternSet::new(prefix, alts);
    let frontend = if v2 {
        vec![alt("/store/apps/SLUG/(logo|icon)")]
    } else {
        vec![
            alt(r"/app/.*\.(?:js|gz|json|map|woff2)"),
            alt("/(store/)?addons/SLUG/(logo|icon)"),
        ]
    };
    let mut no_check = vec![alt("")];
    if !v2 {
        no_check.extend(
            [
                "/homeassistant/api/.*",
                "/homeassistant/websocket",
                "/core/api/.*",
                "/core/websocket",
                "/supervisor/ping",
            ]
            .map(alt),
        );
    }
    no_check.push(alt("/ingress/[-_A-Za-z0-9]+/.*"));
    no_check.extend(frontend);
    Tables {
        api_bypass: set(vec![
            alt(""),
            alt_unless(
                &format!("/{apps}/self/[^/]+"),
                &format!("/{apps}/self/(?:security|update)"),
            ),
            alt(&format!("/{apps}/self/options/config")),
            alt("/info"),
            alt("/services.*"),
            alt("/discovery.*"),
            alt("/auth"),
        ]),
        core_only: set(vec![alt(&format!("/{apps}/SLUG/sys_options"))]),
        no_security_check: set(no_check),
        roles: [
            set(info()),
            set(with(
                info(),
                vec![alt("/core/.+"), alt("/homeassistant/.+")],
            )),
            set(with(info(), vec![alt("/backups.*")])),
            set(manager(v2)),
            set(vec![alt(".*")]),
        ],
    }
}

impl RoleTables {
    pub fn new() -> RoleTables {
        RoleTables {
            v1: tables(false),
            v2: tables(true),
            blacklist: PatternSet::new(
                "(?:/v2)?",
                vec![
                    alt(""),
                    alt("/homeassistant/api/hassio(?:/|_).*"),
                    alt("/core/api/hassio(?:/|_).*"),
                ],
            ),
        }
    }
}

impl Default for RoleTables {
    fn default() -> Self {
        RoleTables::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_lookaheads_hold_at_their_pinned_positions() {
        let t = RoleTables::new();
        let manager = t.v1.role(Role::Manager);
        assert!(manager.matches("/addons/other/options"));
        assert!(!manager.matches("/addons/other/security"));
        assert!(!manager.matches("/addons/other/securityx"));
        assert!(manager.matches("/addons/other/x/security"));
        assert!(!manager.matches("/os/datadisk/wipe"));
        assert!(manager.matches("/os/datadisk/move"));
        let bypass = &t.v1.api_bypass;
        assert!(bypass.matches("/addons/self/options"));
        assert!(!bypass.matches("/addons/self/update"));
        assert!(!bypass.matches("/addons/self/securityfoo"));
        assert!(!bypass.matches("/addons/self/a/b"));
        assert!(t.v2.api_bypass.matches("/v2/apps/self/logs"));
        assert!(!t.v2.api_bypass.matches("/v2/addons/self/logs"));
    }

    #[test]
    fn roles_grow_from_default_to_admin() {
        let t = RoleTables::new();
        for path in ["/host/info", "/v2/host/info"] {
            let tables = t.for_path(path);
            for role in Role::ALL {
                assert!(tables.role(role).matches(path), "{role:?} {path}");
            }
        }
        assert!(!t.v1.role(Role::Default).matches("/backups/new/full"));
        assert!(t.v1.role(Role::Backup).matches("/backups/new/full"));
        assert!(!t.v1.role(Role::Backup).matches("/core/restart"));
        assert!(t.v1.role(Role::Homeassistant).matches("/core/restart"));
        assert!(t.v1.role(Role::Admin).matches("/addons/x/security"));
        assert!(t.blacklist.matches("/core/api/hassio_auth"));
        assert!(t.blacklist.matches("/v2"));
    }
}
