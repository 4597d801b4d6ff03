//! AppArmor: `apparmor: false`, an author's profile with bare catch-all rules, no profile.

use crate::apparmor::catch_all;
use crate::diag::display_path;
use crate::rating::ApparmorMode;
use crate::source::Pos;

use super::rules::{APPARMOR_DISABLED, APPARMOR_MISSING, APPARMOR_PERMISSIVE};
use super::{Ctx, advice, fix};

pub(super) fn check(ctx: &mut Ctx) {
    if !ctx.config.apparmor {
        let ships = ctx.addon.apparmor_profile.is_some();
        if let Some((key, value)) = ctx.entry("apparmor") {
            let edit = ctx.text.delete_key(key, value);
            ctx.fix(
                &APPARMOR_DISABLED,
                key.pos,
                "apparmor: false: no AppArmor profile at all, so an attacker in the add-on meets nothing but the container's own walls (no path, mount or signal rule)".into(),
                fix(
                    "delete `apparmor: false` (Docker's default profile applies), then ship an apparmor.txt",
                    edit,
                ),
                move |c, m| {
                    c.apparmor = true;
                    *m = ApparmorMode::of(c, ships);
                },
            );
        }
        return;
    }
    if let Some(text) = ctx.addon.apparmor_text.as_deref() {
        let file = display_path(&ctx.addon.dir.join("apparmor.txt"));
        for found in catch_all::find(text) {
            ctx.fix_unchanged_in(
                &APPARMOR_PERMISSIVE,
                file.clone(),
                Pos {
                    line: found.line,
                    column: found.column,
                },
                format!(
                    "`{},` allows every {} access: the profile confines nothing there",
                    found.word,
                    kind(found.word)
                ),
                advice(
                    "replace it with the accesses the add-on needs: `addon-sandbox profile DIR` writes a least-privilege profile from the config, `addon-sandbox compare DIR` shows what this one lets through",
                ),
            );
        }
    } else if !ctx.addon.has_apparmor_txt {
        ctx.fix(
            &APPARMOR_MISSING,
            Pos::default(),
            "the add-on ships no apparmor.txt".into(),
            advice("ship one: `addon-sandbox profile -o DIR/apparmor.txt DIR` writes a least-privilege profile from the config"),
            |_, m| *m = ApparmorMode::Profile,
        );
    }
}

/// What a catch-all word covers, in words.
fn kind(word: &str) -> &'static str {
    match word {
        "file" => "file",
        "capability" => "capability",
        "network" => "socket",
        "mount" => "mount",
        "signal" => "signal",
        "ptrace" => "ptrace",
        "unix" => "unix socket",
        "dbus" => "D-Bus",
        "pivot_root" => "pivot_root",
        _ => "profile change",
    }
}
