//! `map`: the host folders mounted into the add-on, each entry a type, a path and read_only.

use crate::source::{Node, Value};

use super::super::rules;
use super::super::{MapEntry, MapType};
use super::Validator;

impl Validator<'_, '_> {
    pub(super) fn map(&mut self) -> Vec<MapEntry> {
        let Some(items) = self.get("map").and_then(Node::as_seq) else {
            return Vec::new();
        };
        let mut out = Vec::new();
        for item in items {
            let Some(entries) = item.as_map() else {
                continue;
            };
            let mut kind = None;
            let mut read_only = true;
            let mut path = None;
            let mut ok = true;
            for (k, v) in entries {
                match k.as_str() {
                    Some("type") => match v.as_str().and_then(MapType::parse) {
                        Some(t) => kind = Some(t),
                        None => {
                            ok = false;
                            let names: Vec<&str> = MapType::ALL.iter().map(|t| t.name()).collect();
                            self.fail(
                                v.pos,
                                "map.type",
                                format!(
                                    "expected one of {}, got {}",
                                    names.join(", "),
                                    v.display()
                                ),
                            );
                        }
                    },
                    Some("read_only") => match v.value {
                        Value::Bool(b) => read_only = b,
                        _ => {
                            ok = false;
                            self.fail(
                                v.pos,
                                "map.read_only",
                                format!("expected true or false (unquoted), got {}", v.display()),
                            );
                        }
                    },
                    Some("path") => match rules::string(v) {
                        Ok(s) => path = Some(s.to_owned()),
                        Err(e) => {
                            ok = false;
                            self.fail(v.pos, "map.path", e);
                        }
                    },
                    _ => {
                        ok = false;
                        self.fail(k.pos, "map", format!("extra key {} not allowed in a map entry (allowed: type, read_only, path)", k.display()));
                    }
                }
            }
            if let (true, Some(kind)) = (ok, kind) {
                out.push(MapEntry {
                    kind,
                    read_only,
                    path,
                });
            }
        }
        out
    }
}
