//! An add-on folder's `schema` and default `options`, read from its config file with
//! PyYAML's typing, and the user's options (a file or inline JSON).

use std::path::Path;

use serde_json::{Map, Value};

use super::{OptionsError, node_to_json};
use crate::addon::Addon;
use crate::source::{self, Format};

/// What validating an add-on's options needs from its config.
#[derive(Debug)]
pub struct AddonOptions {
    /// `schema`; `false` (no schema) is an empty one, as the Supervisor takes it.
    pub schema: Map<String, Value>,
    /// `options`: the defaults the user's options are merged over.
    pub defaults: Value,
}

impl AddonOptions {
    /// Read `schema` and `options` from the add-on's config file (the one `check` read).
    pub fn of(addon: &Addon) -> Result<AddonOptions, OptionsError> {
        let file = addon
            .config_file
            .as_deref()
            .ok_or_else(|| OptionsError::Unsupported("the add-on has no config file".into()))?;
        let format = Format::from_path(file).unwrap_or(Format::Yaml);
        let (node, _) = source::load(file, format)
            .map_err(|(e, _)| OptionsError::Input(file.display().to_string(), e.to_string()))?;
        let defaults = match node.get("options") {
            Some(n) => node_to_json(n)?,
            None => Value::Object(Map::new()),
        };
        let schema = match node.get("schema").map(node_to_json).transpose()? {
            Some(Value::Object(map)) => map,
            _ => Map::new(),
        };
        Ok(AddonOptions { schema, defaults })
    }
}

/// The user's options: `-` or a path to a JSON file, or inline JSON (text starting with
/// `{`); YAML files (`.yaml`/`.yml`) are read with PyYAML's typing.
pub fn read_user_options(arg: &str) -> Result<Value, OptionsError> {
    let bad = |why: String| OptionsError::Input(arg.to_owned(), why);
    if arg.trim_start().starts_with('{') {
        return serde_json::from_str(arg).map_err(|e| bad(e.to_string()));
    }
    let path = Path::new(arg);
    if matches!(Format::from_path(path), Some(Format::Yaml)) {
        let (node, _) = source::load(path, Format::Yaml).map_err(|(e, _)| bad(e.to_string()))?;
        return node_to_json(&node);
    }
    let text = std::fs::read_to_string(path).map_err(|e| bad(e.to_string()))?;
    serde_json::from_str(&text).map_err(|e| bad(e.to_string()))
}

/// What the Supervisor validates for an add-on: `deepmerge(defaults, user)` at a start, or,
/// `as_given`, the user's dict alone (`POST /addons/<slug>/options/validate`).
pub fn validate_addon(
    addon: &Addon,
    full_slug: &str,
    user: Option<Value>,
    as_given: bool,
    devices: &super::DeviceTable,
    secrets: &super::Secrets,
) -> Result<super::Validated, OptionsError> {
    let config = AddonOptions::of(addon)?;
    let name = addon.config.as_ref().map_or(full_slug, |c| c.name.as_str());
    let data = match (user, as_given) {
        (Some(user), true) => user,
        (Some(user), false) => super::deepmerge(&config.defaults, &user),
        (None, _) => config.defaults.clone(),
    };
    super::AppOptions::new(&config.schema, name, full_slug, devices, secrets).validate(&data)
}
