//! Dead and deprecated keys and values: what the Supervisor drops (`codenotary`, `advanced`)
//! or rewrites before reading (`startup: before`, `auto_uart`, `snapshot*`, legacy map
//! names, the old `devices` and `tmpfs` forms). `check` warns about each; `lint` adds the edit.

use crate::config::{AddonConfig, MapType};
use crate::rating::ApparmorMode;
use crate::source::Value;

use super::rules::DEPRECATED_KEY;
use super::{Ctx, fix};

const DEAD: [(&str, &str); 2] = [
    (
        "codenotary",
        "Codenotary signing is gone from the Supervisor",
    ),
    ("advanced", "the Supervisor no longer reads it"),
];

const RENAMED: [(&str, &str); 5] = [
    ("auto_uart", "uart"),
    ("snapshot_exclude", "backup_exclude"),
    ("snapshot_post", "backup_post"),
    ("snapshot_pre", "backup_pre"),
    ("snapshot", "backup"),
];

const MAP_NAMES: [(&str, &str); 4] = [
    ("addons", "local_apps"),
    ("all_addon_configs", "all_app_configs"),
    ("addon_config", "app_config"),
    ("config", "homeassistant_config"),
];

pub(super) fn check(ctx: &mut Ctx) {
    for (name, why) in DEAD {
        if let Some((key, value)) = ctx.entry(name) {
            let edit = ctx.text.delete_key(key, value);
            ctx.fix_unchanged(
                &DEPRECATED_KEY,
                key.pos,
                format!("'{name}' is dead: {why}"),
                fix(format!("delete `{name}`"), edit),
            );
        }
    }
    for (old, new) in RENAMED {
        if let Some((key, _)) = ctx.entry(old) {
            let edit = if ctx.entry(new).is_none() {
                ctx.text.replace_word(key, old, new)
            } else {
                None
            };
            ctx.fix_unchanged(
                &DEPRECATED_KEY,
                key.pos,
                format!("'{old}' is deprecated: the Supervisor reads it as '{new}'"),
                fix(format!("rename `{old}` to `{new}`"), edit),
            );
        }
    }
    startup(ctx);
    maps(ctx);
    old_forms(ctx);
}

fn startup(ctx: &mut Ctx) {
    let Some((key, value)) = ctx.entry("startup") else {
        return;
    };
    let new = match value.as_str() {
        Some("before") => "services",
        Some("after") => "application",
        _ => return,
    };
    let edit = ctx.text.set_value(key, value, new);
    ctx.fix_unchanged(
        &DEPRECATED_KEY,
        value.pos,
        format!(
            "'startup: {}' is deprecated: it means '{new}'",
            value.as_str().unwrap_or_default()
        ),
        fix(format!("write `startup: {new}`"), edit),
    );
}

fn maps(ctx: &mut Ctx) {
    let Some(items) = ctx.entry("map").and_then(|(_, v)| v.as_seq()) else {
        return;
    };
    for item in items {
        let (name, at) = match &item.value {
            Value::Str(s) => (s.split(':').next().unwrap_or(s), item),
            Value::Map(_) => match item.get("type") {
                Some(t) => (t.as_str().unwrap_or_default(), t),
                None => continue,
            },
            _ => continue,
        };
        let Some((old, new)) = MAP_NAMES.into_iter().find(|(old, _)| *old == name) else {
            continue;
        };
        let moved = if old == "config" {
            " (mounted at /homeassistant instead of /config: change the add-on's paths too)"
        } else {
            ""
        };
        let edit = ctx.text.replace_word(at, old, new);
        let (from, to) = (MapType::parse(old), MapType::parse(new));
        ctx.fix(
            &DEPRECATED_KEY,
            item.pos,
            format!("map type '{old}' is a legacy name; the current one is '{new}'{moved}"),
            fix(format!("write `{new}`"), edit),
            move |c: &mut AddonConfig, _: &mut ApparmorMode| {
                for m in c.map.iter_mut().filter(|m| Some(m.kind) == from) {
                    m.kind = to.unwrap_or(m.kind);
                }
            },
        );
    }
}

/// `tmpfs: size=...` (means true) and `devices: [host:container:perms]` (only the host path
/// is used).
fn old_forms(ctx: &mut Ctx) {
    if let Some((key, value)) = ctx.entry("tmpfs")
        && !matches!(value.value, Value::Bool(_))
    {
        let edit = ctx.text.set_value(key, value, "true");
        ctx.fix_unchanged(
            &DEPRECATED_KEY,
            value.pos,
            format!("'tmpfs: {}' is an old form: it means true", value.display()),
            fix("write `tmpfs: true`", edit),
        );
    }
    let Some(items) = ctx.entry("devices").and_then(|(_, v)| v.as_seq()) else {
        return;
    };
    for item in items
        .iter()
        .filter(|i| i.as_str().is_some_and(|s| s.contains(':')))
    {
        let written = item.as_str().unwrap_or_default();
        let host = written.split(':').next().unwrap_or_default();
        let edit = ctx.text.replace_word(item, written, host);
        ctx.fix_unchanged(
            &DEPRECATED_KEY,
            item.pos,
            format!("'{written}' is the old host:container:permissions form: only {host} is used"),
            fix(format!("write `{host}`"), edit),
        );
    }
}
