//! The shapes of a schema entry, as voluptuous writes them: a coerced value with a default,
//! a required key, a boolean, a list of one validator, one of a set of words. Each reports
//! its error under the key's name and falls back to the default, so one run names every bad key.

use crate::source::{Node, Pos};

use super::super::rules::{self, Check};
use super::Validator;

impl<'a> Validator<'a, '_> {
    pub(super) fn get(&self, key: &str) -> Option<&'a Node> {
        self.index.get(key)
    }

    pub(super) fn fail(&mut self, pos: Pos, key: &str, message: impl AsRef<str>) {
        self.sink
            .error(pos, format!("'{key}': {}", message.as_ref()));
    }

    /// A key with a validator: the coerced value, or the default when absent or invalid.
    pub(super) fn field<T>(
        &mut self,
        key: &str,
        default: T,
        check: impl Fn(&'a Node) -> Check<T>,
    ) -> T {
        match self.get(key) {
            None => default,
            Some(node) => match check(node) {
                Ok(v) => v,
                Err(msg) => {
                    self.fail(node.pos, key, msg);
                    default
                }
            },
        }
    }

    pub(super) fn required<T: Default>(
        &mut self,
        key: &str,
        check: impl Fn(&'a Node) -> Check<T>,
    ) -> T {
        if self.get(key).is_none() {
            let pos = self.root.pos;
            self.fail(pos, key, "required key is missing");
            return T::default();
        }
        self.field(key, T::default(), check)
    }

    pub(super) fn boolean(&mut self, key: &str, default: bool) -> bool {
        self.field(key, default, rules::boolean)
    }

    pub(super) fn optional_str(&mut self, key: &str) -> Option<String> {
        self.field(key, None, |n| rules::string(n).map(|s| Some(s.to_owned())))
    }

    /// `[validator]`: a list whose every element passes; each bad element is reported.
    pub(super) fn list<T>(&mut self, key: &str, check: impl Fn(&'a Node) -> Check<T>) -> Vec<T> {
        let Some(node) = self.get(key) else {
            return Vec::new();
        };
        let Some(items) = node.as_seq() else {
            self.fail(
                node.pos,
                key,
                format!("expected a list, got {}", node.kind()),
            );
            return Vec::new();
        };
        let mut out = Vec::new();
        for (i, item) in items.iter().enumerate() {
            match check(item) {
                Ok(v) => out.push(v),
                Err(msg) => self.fail(item.pos, &format!("{key}[{i}]"), msg),
            }
        }
        out
    }

    pub(super) fn one_of<T: Copy>(&mut self, key: &str, default: T, options: &[(&str, T)]) -> T {
        let names: Vec<&str> = options.iter().map(|(n, _)| *n).collect();
        self.field(key, default, |node| {
            node.as_str()
                .and_then(|s| options.iter().find(|(n, _)| *n == s).map(|(_, v)| *v))
                .ok_or_else(|| {
                    format!(
                        "expected one of {}, got {}",
                        names.join(", "),
                        node.display()
                    )
                })
        })
    }
}
