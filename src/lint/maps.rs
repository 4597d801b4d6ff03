//! Folders mapped read-write (`map: [share:rw]`, `{type: share, read_only: false}`).

use crate::config::{AddonConfig, MapType};
use crate::rating::ApparmorMode;
use crate::source::{Node, Value};

use super::rules::MAP_RW;
use super::{Ctx, fix};

pub(super) fn check(ctx: &mut Ctx) {
    let Some(items) = ctx.entry("map").and_then(|(_, v)| v.as_seq()) else {
        return;
    };
    for item in items {
        let Some((name, at, word)) = written_rw(item) else {
            continue;
        };
        let Some(kind) = MapType::parse(name) else {
            continue;
        };
        // The add-on's own config folder is made to be written.
        if matches!(
            kind,
            MapType::AppConfig | MapType::AddonConfig | MapType::Data
        ) {
            continue;
        }
        let (new_word, how) = if word == "rw" {
            ("ro", format!("map `{name}:ro`"))
        } else {
            ("true", "set `read_only: true`".to_owned())
        };
        let edit = ctx.text.replace_word(at, word, new_word);
        let modern = kind.modern_name().unwrap_or(kind);
        ctx.fix(
            &MAP_RW,
            item.pos,
            format!(
                "map {name} is read-write: a compromised add-on can change or delete everything there; run it under `addon-sandbox learn` to find out whether it writes there at all"
            ),
            fix(format!("{how} if it only reads"), edit),
            move |c: &mut AddonConfig, _: &mut ApparmorMode| {
                for m in c.map.iter_mut().filter(|m| m.kind == kind || m.kind == modern) {
                    m.read_only = true;
                }
            },
        );
    }
}

/// A map item written read-write: its type name, the node holding the `rw`/`false`, and that
/// word as written.
fn written_rw(item: &Node) -> Option<(&str, &Node, &'static str)> {
    match &item.value {
        Value::Str(s) => {
            let (name, mode) = s.split_once(':')?;
            (mode == "rw").then_some((name, item, "rw"))
        }
        Value::Map(_) => {
            let name = item.get("type")?.as_str()?;
            let ro = item.get("read_only")?;
            matches!(ro.value, Value::Bool(false)).then_some((name, ro, "false"))
        }
        _ => None,
    }
}
