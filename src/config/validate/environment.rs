//! `environment`, and the scalar `options` a legacy add-on also gets as environment variables.

use crate::source::Value;

use super::super::{rules, scalar_text};
use super::Validator;

impl Validator<'_, '_> {
    pub(super) fn environment(&mut self) -> Vec<(String, String)> {
        let Some(node) = self.get("environment") else {
            return Vec::new();
        };
        let Some(entries) = node.as_map() else {
            self.fail(
                node.pos,
                "environment",
                format!(
                    "expected a mapping of names to strings, got {}",
                    node.kind()
                ),
            );
            return Vec::new();
        };
        let mut out: Vec<(String, String)> = Vec::new();
        for (k, v) in entries {
            let Some(name) = k.as_str().filter(|k| rules::environment_key_ok(k)) else {
                self.fail(
                    k.pos,
                    "environment",
                    format!("variable name {} must be a string", k.display()),
                );
                continue;
            };
            match v.as_str() {
                Some(value) => {
                    out.retain(|(n, _)| n != name);
                    out.push((name.to_owned(), value.to_owned()));
                }
                None => self.fail(
                    v.pos,
                    &format!("environment.{name}"),
                    format!("expected str, got {} (quote the value)", v.display()),
                ),
            }
        }
        out
    }

    pub(super) fn options(&mut self) -> Vec<(String, String)> {
        let Some(node) = self.get("options") else {
            return Vec::new();
        };
        let Some(entries) = node.as_map() else {
            self.fail(
                node.pos,
                "options",
                format!("expected a mapping, got {}", node.kind()),
            );
            return Vec::new();
        };
        entries
            .iter()
            .filter_map(|(k, v)| {
                let key = k.as_str()?;
                // DockerApp: legacy add-ons get int and str options (bool is an int) as env.
                match v.value {
                    Value::Int(_) | Value::Bool(_) | Value::Str(_) => {
                        Some((key.to_owned(), scalar_text(v)?))
                    }
                    _ => None,
                }
            })
            .collect()
    }
}
