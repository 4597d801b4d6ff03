//! YAML through serde-saphyr, with budgets sized for add-on configs.

use std::fmt;

use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_saphyr::options::AliasLimits;
use serde_saphyr::{Budget, DuplicateKeyPolicy, Options, Spanned};

use super::{MAX_DEPTH, Node, Pos, SourceError, Value};

/// Budgets against resource exhaustion. A real config has a few hundred events and no aliases
/// worth counting; these limits are two orders of magnitude above the largest corpus file and
/// make a billion-laughs document fail after a few thousand replayed events.
fn options() -> Options {
    let mut budget = Budget::default();
    budget.max_events = 200_000;
    budget.max_aliases = 1_000;
    budget.max_anchors = 1_000;
    budget.max_depth = MAX_DEPTH;
    budget.max_nodes = 100_000;
    budget.max_documents = 1;
    budget.max_total_scalar_bytes = super::MAX_CONFIG_BYTES;
    budget.max_recorded_anchor_events = 20_000;
    budget.max_recorded_anchor_bytes = super::MAX_CONFIG_BYTES;
    budget.max_merge_keys = 1_000;

    let mut alias_limits = AliasLimits::default();
    alias_limits.max_total_replayed_events = 20_000;
    alias_limits.max_replay_stack_depth = 16;
    alias_limits.max_alias_expansions_per_anchor = 1_000;

    let mut options = Options::default();
    options.budget = Some(budget);
    options.alias_limits = alias_limits;
    // PyYAML keeps the last of repeated keys; the validator warns about them.
    options.duplicate_keys = DuplicateKeyPolicy::PassThrough;
    options.with_snippet = false;
    options
}

pub fn parse(text: &str) -> Result<Node, SourceError> {
    serde_saphyr::from_str_with_options::<Node>(text, options()).map_err(|err| {
        let pos = err
            .location()
            .map(|loc| Pos {
                line: loc.line() as u32,
                column: loc.column() as u32,
            })
            .unwrap_or_default();
        let message = err.to_string();
        // The rendered message repeats the position; keep the first line, which says what.
        let message = message
            .lines()
            .next()
            .unwrap_or("invalid YAML")
            .trim()
            .to_owned();
        SourceError::Syntax {
            message: format!("invalid YAML: {message}"),
            pos,
        }
    })
}

impl<'de> Deserialize<'de> for Node {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let spanned = Spanned::<RawValue>::deserialize(deserializer)?;
        Ok(Node {
            value: spanned.value.0,
            pos: Pos {
                line: spanned.referenced.line() as u32,
                column: spanned.referenced.column() as u32,
            },
        })
    }
}

struct RawValue(Value);

impl<'de> Deserialize<'de> for RawValue {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(RawVisitor).map(RawValue)
    }
}

struct RawVisitor;

impl<'de> Visitor<'de> for RawVisitor {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any YAML value")
    }
    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }
    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::Int(v.into()))
    }
    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(Value::Int(v.into()))
    }
    fn visit_i128<E>(self, v: i128) -> Result<Value, E> {
        Ok(Value::Int(v))
    }
    fn visit_u128<E: de::Error>(self, v: u128) -> Result<Value, E> {
        i128::try_from(v)
            .map(Value::Int)
            .map_err(|_| E::custom("integer too large"))
    }
    fn visit_f64<E>(self, v: f64) -> Result<Value, E> {
        Ok(Value::Float(v))
    }
    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::Str(v.to_owned()))
    }
    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(Value::Str(v))
    }
    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_none<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        RawValue::deserialize(d).map(|v| v.0)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element::<Node>()? {
            items.push(item);
        }
        Ok(Value::Seq(items))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut entries = Vec::new();
        while let Some((k, v)) = map.next_entry::<Node, Node>()? {
            entries.push((k, v));
        }
        Ok(Value::Map(entries))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_and_types() {
        let node = parse("name: x\nversion: 1.10\nflag: yes\nq: 'yes'\nlist:\n  - 1\n").unwrap();
        let version = node.get("version").unwrap();
        assert_eq!(version.value, Value::Float(1.1));
        assert_eq!(
            version.pos,
            Pos {
                line: 2,
                column: 10
            }
        );
        assert_eq!(node.get("flag").unwrap().value, Value::Bool(true));
        assert_eq!(node.get("q").unwrap().value, Value::Str("yes".into()));
        let list = node.get("list").unwrap().as_seq().unwrap();
        assert_eq!(list[0].pos.line, 6);
    }

    #[test]
    fn duplicate_keys_are_kept_and_last_wins() {
        let node = parse("a: 1\na: 2\n").unwrap();
        assert_eq!(node.as_map().unwrap().len(), 2);
        assert_eq!(node.get("a").unwrap().value, Value::Int(2));
    }

    #[test]
    fn syntax_error_has_position() {
        let err = parse("a: [1, 2\nb: 3\n").unwrap_err();
        assert!(err.pos().is_some_and(|p| p.line >= 1), "{err:?}");
    }
}
