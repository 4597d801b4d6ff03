//! The Supervisor API role against what the add-on's scripts call: the lowest role whose
//! access table (the gateway's, `crate::gateway::roles`) lets every endpoint through.

use std::sync::LazyLock;

use crate::config::{AddonConfig, Role};
use crate::gateway::roles::RoleTables;
use crate::rating::ApparmorMode;

use super::rules::{API_ROLE_BROAD, API_UNUSED};
use super::{Ctx, fix, scripts};

static TABLES: LazyLock<RoleTables> = LazyLock::new(RoleTables::new);

/// The lowest role that reaches every path, and whether any path needs the API token at all.
pub fn needed_role(paths: &[String]) -> (Role, bool) {
    let t = &*TABLES;
    let guarded: Vec<&String> = paths
        .iter()
        .filter(|p| {
            let tables = t.for_path(p);
            !(tables.api_bypass.matches(p) || tables.no_security_check.matches(p))
        })
        .collect();
    let role = Role::ALL
        .into_iter()
        .find(|r| guarded.iter().all(|p| t.for_path(p).role(*r).matches(p)))
        .unwrap_or(Role::Admin);
    (role, !guarded.is_empty())
}

pub(super) fn check(ctx: &mut Ctx) {
    let config = ctx.config;
    if !config.hassio_api && config.hassio_role == Role::Default {
        return;
    }
    let Some(calls) = scripts::scan(&ctx.addon.dir) else {
        return;
    };
    let (needed, uses_api) = needed_role(&calls.paths);
    let shown = shown(&calls.paths);
    if config.hassio_api
        && !uses_api
        && let Some((key, value)) = ctx.entry("hassio_api")
    {
        let edit = ctx.text.delete_key(key, value);
        ctx.fix(
            &API_UNUSED,
            key.pos,
            format!(
                "hassio_api: true, but no script under rootfs/ ({} read) calls an endpoint that needs the token{shown}{UNSEEN}",
                calls.files
            ),
            fix("delete `hassio_api: true`", edit),
            |c: &mut AddonConfig, _: &mut ApparmorMode| c.hassio_api = false,
        );
    }
    let admin_said = config.hassio_role == Role::Admin && needed == Role::Manager;
    if config.hassio_role > needed
        && !admin_said
        && let Some((key, value)) = ctx.entry("hassio_role")
    {
        let edit = if needed == Role::Default {
            ctx.text.delete_key(key, value)
        } else {
            ctx.text.set_value(key, value, needed.name())
        };
        let how = if needed == Role::Default {
            "delete `hassio_role` (the default role)".to_owned()
        } else {
            format!("use `hassio_role: {}`", needed.name())
        };
        ctx.fix(
            &API_ROLE_BROAD,
            key.pos,
            format!(
                "hassio_role: {}, but the scripts under rootfs/ need no more than `{}`{shown}{UNSEEN}",
                config.hassio_role.name(),
                needed.name()
            ),
            fix(how, edit),
            move |c: &mut AddonConfig, _: &mut ApparmorMode| c.hassio_role = needed,
        );
    }
}

/// The endpoints found, for the message (at most six).
fn shown(paths: &[String]) -> String {
    if paths.is_empty() {
        return String::new();
    }
    let mut list: Vec<&str> = paths.iter().take(6).map(String::as_str).collect();
    if paths.len() > 6 {
        list.push("...");
    }
    format!(" (they call {})", list.join(", "))
}

/// What the scan cannot see, said with every finding.
const UNSEEN: &str =
    "; only rootfs/ is read, so check that a program installed in the image calls no more";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_lowest_role_that_reaches_every_path() {
        let p = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(needed_role(&[]), (Role::Default, false));
        assert_eq!(
            needed_role(&p(&["/addons/self/info", "/services/mqtt"])),
            (Role::Default, false)
        );
        assert_eq!(needed_role(&p(&["/core/info"])), (Role::Default, true));
        assert_eq!(
            needed_role(&p(&["/core/restart"])),
            (Role::Homeassistant, true)
        );
        assert_eq!(
            needed_role(&p(&["/backups/new/full"])),
            (Role::Backup, true)
        );
        assert_eq!(
            needed_role(&p(&["/addons/other/stop"])),
            (Role::Manager, true)
        );
    }
}
