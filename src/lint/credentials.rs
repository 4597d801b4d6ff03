//! Credentials in the options: a secret typed `str` (shown in clear text), and a
//! username/password pair the add-on checks itself instead of `auth_api`.

use crate::config::AddonConfig;
use crate::rating::ApparmorMode;
use crate::source::{Node, Value};

use super::rules::{CREDENTIAL_PLAINTEXT, OWN_LOGIN};
use super::{Ctx, fix};

/// Words in an option name that say it holds a secret.
const SECRET_WORDS: [&str; 10] = [
    "password",
    "passwd",
    "passphrase",
    "secret",
    "token",
    "api_key",
    "apikey",
    "access_key",
    "private_key",
    "pwd",
];

/// Whether an option name says it holds a secret (`mqtt_password`, `apiToken`, `pass`).
pub fn secret_name(name: &str) -> bool {
    let lower = name.to_ascii_lowercase().replace('-', "_");
    let not_secret = ["_file", "_path", "_url", "_type", "_length", "_expiry"];
    if not_secret.iter().any(|s| lower.ends_with(s)) {
        return false;
    }
    lower == "pass" || lower.ends_with("_pass") || SECRET_WORDS.iter().any(|w| lower.contains(w))
}

fn user_name(name: &str) -> bool {
    matches!(
        name.to_ascii_lowercase().as_str(),
        "username" | "user" | "login" | "user_name"
    )
}

pub(super) fn check(ctx: &mut Ctx) {
    let Some((schema_key, schema)) = ctx.entry("schema") else {
        return;
    };
    walk(ctx, schema, "");
    own_login(ctx, schema_key, schema);
}

/// Every `str` option with a secret's name, at any depth (nested mappings, lists of one).
fn walk(ctx: &mut Ctx, node: &Node, prefix: &str) {
    let Some(entries) = node.as_map() else {
        return;
    };
    for (key, value) in entries {
        let Some(name) = key.as_str() else { continue };
        let path = format!("{prefix}{name}");
        let element = match &value.value {
            Value::Seq(items) if items.len() == 1 => &items[0],
            _ => value,
        };
        match &element.value {
            Value::Map(_) => walk(ctx, element, &format!("{path}.")),
            Value::Str(t) if secret_name(name) && t.starts_with("str") => {
                let typed = format!("password{}", &t["str".len()..]);
                let edit = ctx.text.replace_word(element, t, &typed);
                ctx.fix_unchanged(
                    &CREDENTIAL_PLAINTEXT,
                    element.pos,
                    format!("option {path} is typed `{t}`: the secret is shown in clear text in the add-on's configuration page"),
                    fix(format!("type it `{typed}`"), edit),
                );
            }
            _ => {}
        }
    }
}

/// A top-level username and password the add-on checks itself, without `auth_api`.
fn own_login(ctx: &mut Ctx, schema_key: &Node, schema: &Node) {
    if ctx.config.auth_api || ctx.config.ingress && ctx.config.webui.is_none() {
        return;
    }
    let Some(entries) = schema.as_map() else {
        return;
    };
    let has_user = entries
        .iter()
        .any(|(k, _)| k.as_str().is_some_and(user_name));
    let Some((password, _)) = entries.iter().find(|(k, _)| {
        k.as_str()
            .is_some_and(|n| n.eq_ignore_ascii_case("password"))
    }) else {
        return;
    };
    if !has_user || ctx.entry("auth_api").is_some() {
        return;
    }
    let edit = ctx.text.insert_before(schema_key, "auth_api: true");
    ctx.fix(
        &OWN_LOGIN,
        password.pos,
        "a username and password in the options: a login the add-on checks itself, stored in plain text".into(),
        fix(
            "set `auth_api: true` and check users against Home Assistant (`/auth`), then drop the two options",
            edit,
        ),
        |c: &mut AddonConfig, _: &mut ApparmorMode| c.auth_api = true,
    );
}

#[cfg(test)]
mod tests {
    use super::secret_name;

    #[test]
    fn secret_names() {
        for yes in [
            "password",
            "mqtt_password",
            "apiToken",
            "api_key",
            "pass",
            "client_secret",
        ] {
            assert!(secret_name(yes), "{yes}");
        }
        for no in [
            "username",
            "passive",
            "token_file",
            "port",
            "compass",
            "auth_url",
        ] {
            assert!(!secret_name(no), "{no}");
        }
    }
}
