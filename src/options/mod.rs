//! Add-on options as the Supervisor validates them before a start (`AppOptions` in
//! `supervisor/apps/options.py`, over voluptuous): the user's options merged over the
//! config's defaults, checked against the config's `schema`, and the result that becomes
//! `/data/options.json`. The error texts are the Supervisor's, to the character.

pub mod addon;
mod convert;
pub mod devices;
mod element;
mod pyregex;
pub mod pyrepr;
mod url;
pub mod write;

use serde::Serialize;
use serde_json::{Map, Value};

pub use addon::{AddonOptions, read_user_options, validate_addon};
pub use convert::{Secrets, node_to_json};
pub use devices::{Device, DeviceTable};

#[derive(Debug, thiserror::Error)]
pub enum OptionsError {
    /// The Supervisor's refusal: `App <slug> has invalid options: <this>`.
    #[error("{0}")]
    Invalid(String),
    /// A `match(...)` pattern Python's `re` would also refuse to compile (the Supervisor fails
    /// with an internal error there); refused here too, never treated as a match.
    #[error("the schema's pattern {0} is not a valid regular expression")]
    BadPattern(String),
    #[error("{0}")]
    Unsupported(String),
    #[error("the secrets file {0}: {1}")]
    Secrets(String, String),
    #[error("the options {0}: {1}")]
    Input(String, String),
    #[error("writing options.json: {0}")]
    Write(#[from] std::io::Error),
}

/// What a validation gave: the options to write, the dropped keys, the devices named.
#[derive(Debug, Serialize)]
pub struct Validated {
    pub options: Value,
    pub warnings: Vec<String>,
    pub devices: Vec<String>,
}

/// Why one element failed, before the `. Got <repr>` suffix is added.
#[derive(Debug)]
pub(crate) enum Fail {
    Invalid(String),
    /// `IndexError`/`KeyError` inside the walk (an empty list schema): the Supervisor names
    /// the top-level key.
    TypeError,
    BadPattern(String),
}

impl Fail {
    fn invalid(message: String) -> Fail {
        Fail::Invalid(message)
    }
}

/// One validation: the schema, the add-on's name and full slug (they appear in the texts),
/// the host's devices and the secrets.
pub struct AppOptions<'a> {
    pub schema: &'a Map<String, Value>,
    pub name: &'a str,
    pub slug: &'a str,
    pub devices: &'a DeviceTable,
    pub secrets: &'a Secrets,
    warnings: Vec<String>,
    matched_devices: Vec<String>,
}

impl<'a> AppOptions<'a> {
    pub fn new(
        schema: &'a Map<String, Value>,
        name: &'a str,
        slug: &'a str,
        devices: &'a DeviceTable,
        secrets: &'a Secrets,
    ) -> Self {
        AppOptions {
            schema,
            name,
            slug,
            devices,
            secrets,
            warnings: Vec::new(),
            matched_devices: Vec::new(),
        }
    }

    /// `vol.Schema(vol.All(dict, AppOptions))(data)` with the error humanized as the
    /// Supervisor logs it (`<message>. Got <repr(data)>`, cut at 500 characters).
    pub fn validate(mut self, data: &Value) -> Result<Validated, OptionsError> {
        let got = || pyrepr::got(data);
        let Some(map) = data.as_object() else {
            return Err(OptionsError::Invalid(format!(
                "expected dict. Got {}",
                got()
            )));
        };
        match self.walk_root(map) {
            Ok(options) => Ok(Validated {
                options: Value::Object(options),
                warnings: self.warnings,
                devices: self.matched_devices,
            }),
            Err(Fail::Invalid(message)) => {
                Err(OptionsError::Invalid(format!("{message}. Got {}", got())))
            }
            Err(Fail::BadPattern(why)) => Err(OptionsError::BadPattern(why)),
            // walk_root names the key of a type error; none reaches here.
            Err(Fail::TypeError) => Err(OptionsError::Unsupported(
                "a type error in the schema".to_owned(),
            )),
        }
    }

    fn walk_root(&mut self, map: &Map<String, Value>) -> Result<Map<String, Value>, Fail> {
        let mut options = Map::new();
        for (key, value) in map {
            let Some(typ) = self.schema.get(key) else {
                let (name, slug) = (self.name, self.slug);
                self.warnings.push(format!(
                    "Option '{key}' does not exist in the schema for {name} ({slug})"
                ));
                continue;
            };
            match self.element(typ, value, key) {
                Ok(v) => {
                    options.insert(key.clone(), v);
                }
                Err(Fail::TypeError) => {
                    return Err(self.named(format!("Type error for option '{key}'")));
                }
                Err(other) => return Err(other),
            }
        }
        self.check_missing(self.schema, &options, "root")?;
        Ok(options)
    }

    fn element(&mut self, typ: &Value, value: &Value, key: &str) -> Result<Value, Fail> {
        match typ {
            Value::Array(items) => {
                let item = items.first().ok_or(Fail::TypeError)?;
                let Some(list) = value.as_array() else {
                    return Err(self.named(format!("Invalid list for option '{key}'")));
                };
                let out: Result<Vec<Value>, Fail> =
                    list.iter().map(|v| self.element(item, v, key)).collect();
                out.map(Value::Array)
            }
            Value::Object(schema) => self.nested_dict(schema, value, key),
            _ => self.single(typ, value, key),
        }
    }

    fn nested_dict(
        &mut self,
        schema: &Map<String, Value>,
        value: &Value,
        key: &str,
    ) -> Result<Value, Fail> {
        let Some(map) = value.as_object() else {
            return Err(self.named(format!("Invalid dict for option '{key}'")));
        };
        let mut options = Map::new();
        for (c_key, c_value) in map {
            let Some(typ) = schema.get(c_key) else {
                let (name, slug) = (self.name, self.slug);
                self.warnings
                    .push(format!("Unknown option '{c_key}' for {name} ({slug})"));
                continue;
            };
            let v = self.element(typ, c_value, c_key)?;
            options.insert(c_key.clone(), v);
        }
        self.check_missing(schema, &options, key)?;
        Ok(Value::Object(options))
    }

    /// `_check_missing_options`: a missing key is an error unless its type (or its list's
    /// element type) is a string ending in `?`. Python walks a set here, so which missing key
    /// is named varies between processes; this names the first in schema order.
    fn check_missing(
        &self,
        schema: &Map<String, Value>,
        exists: &Map<String, Value>,
        root: &str,
    ) -> Result<(), Fail> {
        for (key, typ) in schema {
            if exists.contains_key(key) {
                continue;
            }
            let typ = match typ {
                Value::Array(items) if !items.is_empty() => &items[0],
                other => other,
            };
            if typ.as_str().is_some_and(|t| t.ends_with('?')) {
                continue;
            }
            return Err(self.named(format!("Missing option '{key}' in {root}")));
        }
        Ok(())
    }

    /// The Supervisor's own messages end with the add-on's name and slug.
    fn named(&self, message: String) -> Fail {
        Fail::Invalid(format!("{message} in {} ({})", self.name, self.slug))
    }
}

/// `deepmerge(defaults, user)` as the Supervisor's `App.options`: dicts merged key by key
/// (the defaults' order first, new keys after), anything else replaced by the user's value.
pub fn deepmerge(defaults: &Value, user: &Value) -> Value {
    match (defaults, user) {
        (Value::Object(base), Value::Object(over)) => {
            let mut out = base.clone();
            for (k, v) in over {
                let merged = match base.get(k) {
                    Some(old) => deepmerge(old, v),
                    None => v.clone(),
                };
                out.insert(k.clone(), merged);
            }
            Value::Object(out)
        }
        (_, other) => other.clone(),
    }
}
