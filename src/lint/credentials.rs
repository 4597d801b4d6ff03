//! Credentials in the options: a secret typed `str` (shown in clear text), and a
//! username/password pair the add-on checks itself instead of `auth_api`.

use crate::config::AddonConfig;
use crate::rating::ApparmorMode;
use crate::source::{Node, Value};

use super::rules::{CREDENTIAL_PLAINTEXT, OWN_LOGIN};
use super::{Ctx, fix};

/// Whether an option name says it holds a secret: its last word is one (`DB_PASSWORD`,
/// `cifspassword`, `webhook_token`, `JWT_SECRET`, `apiKey`, `IPINFO_APIKEY`), or it ends in a
/// kind of key (`api_key`, `secret_key`, `password_encryption_key`, `secret_key_base`). A
/// secret word inside a longer name (`OAUTHLIB_RELAX_TOKEN_SCOPE`, `AGENT_SECRET_TIMEOUT`,
/// `tokensave_project_paths`) is not one.
pub fn secret_name(name: &str) -> bool {
    let words = words(name);
    let Some(last) = words.last().map(String::as_str) else {
        return false;
    };
    const LAST: [&str; 6] = [
        "password",
        "passwd",
        "passphrase",
        "secret",
        "token",
        "apikey",
    ];
    const KEYS: [&str; 6] = [
        "api",
        "access",
        "private",
        "secret",
        "encryption",
        "signing",
    ];
    let before = |n: usize| words.len().checked_sub(n + 1).map(|i| words[i].as_str());
    LAST.iter().any(|w| last.ends_with(w))
        || matches!(last, "pwd" | "pass")
        || (last == "key" && before(1).is_some_and(|w| KEYS.contains(&w)))
        || (last == "base" && before(1) == Some("key") && before(2) == Some("secret"))
}

/// The lowercase words of a name: split at `_`, `-`, `.` and where a lowercase letter or digit
/// meets an uppercase one (`WeatherApiKey` is weather, api, key).
fn words(name: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let mut word = String::new();
    let mut prev_lower = false;
    for c in name.chars() {
        if matches!(c, '_' | '-' | '.' | ' ') {
            if !word.is_empty() {
                out.push(std::mem::take(&mut word));
            }
            prev_lower = false;
            continue;
        }
        if c.is_uppercase() && prev_lower && !word.is_empty() {
            out.push(std::mem::take(&mut word));
        }
        prev_lower = c.is_lowercase() || c.is_ascii_digit();
        word.extend(c.to_lowercase());
    }
    if !word.is_empty() {
        out.push(word);
    }
    out
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
            "cifspassword",
            "JWT_SECRET",
            "WeatherApiKey",
            "IPINFO_APIKEY",
            "password_encryption_key",
            "secret_key_base",
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
            "OAUTHLIB_RELAX_TOKEN_SCOPE",
            "AGENT_SECRET_TIMEOUT",
            "tokensave_project_paths",
            "allowed_secrets",
            "keyboard",
        ] {
            assert!(!secret_name(no), "{no}");
        }
    }
}
