//! Parsed config values ([`Node`]s, PyYAML-typed) and `secrets.yaml` as the JSON values the
//! validator works on.

use std::path::Path;

use serde_json::{Map, Number, Value};

use super::OptionsError;
use crate::source::{self, Format, Node, Value as NodeValue};

/// A config value as JSON. PyYAML's types map one to one, except: an integer past 64 bits
/// and a non-finite float have no JSON form and are refused, and a timestamp (a Python
/// `date`) becomes its text.
pub fn node_to_json(node: &Node) -> Result<Value, OptionsError> {
    Ok(match &node.value {
        NodeValue::Null => Value::Null,
        NodeValue::Bool(b) => Value::Bool(*b),
        NodeValue::Int(i) => int(*i).ok_or_else(|| unsupported(node))?,
        NodeValue::Float(f) => Number::from_f64(*f)
            .map(Value::Number)
            .ok_or_else(|| unsupported(node))?,
        NodeValue::Str(s) | NodeValue::Timestamp(s) => Value::String(s.clone()),
        NodeValue::Seq(items) => {
            Value::Array(items.iter().map(node_to_json).collect::<Result<_, _>>()?)
        }
        NodeValue::Map(entries) => {
            let mut map = Map::new();
            for (k, v) in entries {
                // Python's dict keeps the last of duplicate keys, at the first one's place.
                let key = k.python_str().ok_or_else(|| unsupported(k))?;
                map.insert(key, node_to_json(v)?);
            }
            Value::Object(map)
        }
    })
}

/// An integer as JSON, when it fits 64 bits.
pub fn int(i: i128) -> Option<Value> {
    if let Ok(u) = u64::try_from(i) {
        Some(Value::Number(u.into()))
    } else {
        i64::try_from(i).ok().map(|s| Value::Number(s.into()))
    }
}

fn unsupported(node: &Node) -> OptionsError {
    OptionsError::Unsupported(format!(
        "{} has no JSON form (line {})",
        node.display(),
        node.pos.line
    ))
}

/// Home Assistant's `secrets.yaml`: the scalar values by name (`!secret NAME` looks here).
#[derive(Clone, Debug, Default)]
pub struct Secrets {
    pub values: Map<String, Value>,
}

impl Secrets {
    pub fn load(path: &Path) -> Result<Secrets, OptionsError> {
        let bad = |why: String| OptionsError::Secrets(path.display().to_string(), why);
        let (node, _) = source::load(path, Format::Yaml).map_err(|(e, _)| bad(e.to_string()))?;
        let mut values = Map::new();
        match &node.value {
            NodeValue::Map(entries) => {
                for (k, v) in entries {
                    if let (Some(name), Ok(value)) = (k.python_str(), node_to_json(v)) {
                        values.insert(name, value);
                    }
                }
            }
            NodeValue::Null => {}
            _ => return Err(bad("not a mapping of names to values".to_owned())),
        }
        Ok(Secrets { values })
    }

    /// The secret's value; `None` (an unknown secret) for a missing or null one.
    pub fn get(&self, name: &str) -> Option<&Value> {
        self.values.get(name).filter(|v| !v.is_null())
    }
}
