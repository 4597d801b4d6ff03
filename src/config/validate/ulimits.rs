//! `ulimits`: a limit name to one number, or to a mapping with soft and hard.

use crate::source::{Node, Value};

use super::super::{Ulimit, rules};
use super::Validator;

impl Validator<'_, '_> {
    pub(super) fn ulimits(&mut self) -> Vec<Ulimit> {
        let Some(node) = self.get("ulimits") else {
            return Vec::new();
        };
        let Some(entries) = node.as_map() else {
            self.fail(
                node.pos,
                "ulimits",
                format!("expected a mapping of limit names, got {}", node.kind()),
            );
            return Vec::new();
        };
        let mut out: Vec<Ulimit> = Vec::new();
        for (k, v) in entries {
            let Some(name) = k.as_str() else {
                self.fail(
                    k.pos,
                    "ulimits",
                    format!("limit name {} must be a string", k.display()),
                );
                continue;
            };
            let path = format!("ulimits.{name}");
            let limit = self.limit(v, &path);
            if let Some((soft, hard)) = limit {
                let clamp = |x: i128| x.clamp(i64::MIN as i128, i64::MAX as i128) as i64;
                out.retain(|u| u.name != name);
                out.push(Ulimit {
                    name: name.to_owned(),
                    soft: clamp(soft),
                    hard: clamp(hard),
                });
            }
        }
        out
    }

    /// One limit: a number for both, or a mapping with both `soft` and `hard`.
    fn limit(&mut self, v: &Node, path: &str) -> Option<(i128, i128)> {
        match &v.value {
            Value::Map(fields) => {
                let mut soft = None;
                let mut hard = None;
                let mut ok = true;
                for (fk, fv) in fields {
                    let slot = match fk.as_str() {
                        Some("soft") => &mut soft,
                        Some("hard") => &mut hard,
                        _ => {
                            ok = false;
                            self.fail(
                                fk.pos,
                                path,
                                format!(
                                    "extra key {} not allowed (expected soft and hard)",
                                    fk.display()
                                ),
                            );
                            continue;
                        }
                    };
                    match rules::coerce_int(fv) {
                        Ok(i) => *slot = Some(i),
                        Err(e) => {
                            ok = false;
                            self.fail(fv.pos, path, e);
                        }
                    }
                }
                match (ok, soft, hard) {
                    (true, Some(soft), Some(hard)) => Some((soft, hard)),
                    (true, _, _) => {
                        self.fail(v.pos, path, "both 'soft' and 'hard' are required");
                        None
                    }
                    _ => None,
                }
            }
            _ => match rules::coerce_int(v) {
                Ok(i) => Some((i, i)),
                Err(e) => {
                    self.fail(
                        v.pos,
                        path,
                        format!("{e} (or a mapping with soft and hard)"),
                    );
                    None
                }
            },
        }
    }
}
