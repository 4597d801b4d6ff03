//! The `schema` key: the grammar of option types (`supervisor/apps/options.py`).
//!
//! `schema` is `false` or a mapping of option names to elements; an element is a type string
//! (`str`, `int(1,10)`, `list(a|b)?`, ...), a mapping of elements, or a list holding one type
//! string or mapping (a list may not directly hold a list).

use std::sync::LazyLock;

use regex::Regex;

use crate::source::{Node, Pos, Value};

pub static RE_SCHEMA_ELEMENT: LazyLock<Regex> = LazyLock::new(|| {
    super::rules::python_regex(concat!(
        r"^(?:",
        r"|bool",
        r"|email",
        r"|url",
        r"|port",
        r"|device(?:\((?P<filter>subsystem=[a-z]+)\))?",
        r"|str(?:\((?P<s_min>\d+)?,(?P<s_max>\d+)?\))?",
        r"|password(?:\((?P<p_min>\d+)?,(?P<p_max>\d+)?\))?",
        r"|int(?:\((?P<i_min>-?\d+)?,(?P<i_max>-?\d+)?\))?",
        r"|float(?:\((?P<f_min>-?\d*\.?\d+)?,(?P<f_max>-?\d*\.?\d+)?\))?",
        r"|match\((?P<match>.*)\)",
        r"|list\((?P<list>.+)\)",
        r")\??$"
    ))
});

/// Validate the `schema` value, reporting each bad element with its path.
pub fn check(node: &Node, errors: &mut Vec<(Pos, String)>) {
    match &node.value {
        // `vol.Any(..., False)` compares with ==, so 0 is accepted too.
        Value::Bool(false) | Value::Int(0) => {}
        Value::Map(entries) => nested_map(entries, &ElementPath::Schema, errors),
        _ => errors.push((
            node.pos,
            format!(
                "schema must be a mapping of option types or false, got {}",
                node.kind()
            ),
        )),
    }
}

/// Where an element sits under `schema`, written out only for an error: most schemas have no
/// error and dozens of elements.
enum ElementPath<'a> {
    Schema,
    Key(&'a ElementPath<'a>, &'a str),
    Index(&'a ElementPath<'a>, usize),
}

impl std::fmt::Display for ElementPath<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ElementPath::Schema => f.write_str("schema"),
            ElementPath::Key(parent, name) => write!(f, "{parent}.{name}"),
            ElementPath::Index(parent, i) => write!(f, "{parent}[{i}]"),
        }
    }
}

fn element(node: &Node, path: &ElementPath, errors: &mut Vec<(Pos, String)>) {
    match &node.value {
        Value::Str(s) => type_string(node, s, path, errors),
        Value::Map(entries) => nested_map(entries, path, errors),
        Value::Seq(items) => {
            for (i, item) in items.iter().enumerate() {
                let item_path = ElementPath::Index(path, i);
                match &item.value {
                    Value::Str(s) => type_string(item, s, &item_path, errors),
                    Value::Map(entries) => nested_map(entries, &item_path, errors),
                    _ => errors.push((
                        item.pos,
                        format!(
                            "{item_path}: a list element must be a type string or a mapping, got {}",
                            item.kind()
                        ),
                    )),
                }
            }
        }
        _ => errors.push((
            node.pos,
            format!(
                "{path}: expected an option type such as 'str' or 'int(0,10)?', got {}",
                node.kind()
            ),
        )),
    }
}

fn nested_map(entries: &[(Node, Node)], path: &ElementPath, errors: &mut Vec<(Pos, String)>) {
    for (key, value) in entries {
        match key.as_str() {
            Some(name) => element(value, &ElementPath::Key(path, name), errors),
            None if matches!(path, ElementPath::Schema) => errors.push((
                key.pos,
                format!("schema keys must be strings, got {}", key.kind()),
            )),
            None => errors.push((
                key.pos,
                format!("{path}: keys must be strings, got {}", key.kind()),
            )),
        }
    }
}

/// The types written without arguments, which most elements are: each matches the grammar.
const PLAIN_TYPES: [&str; 18] = [
    "str",
    "str?",
    "bool",
    "bool?",
    "int",
    "int?",
    "float",
    "float?",
    "port",
    "port?",
    "password",
    "password?",
    "email",
    "email?",
    "url",
    "url?",
    "device",
    "device?",
];

fn type_string(node: &Node, s: &str, path: &ElementPath, errors: &mut Vec<(Pos, String)>) {
    if PLAIN_TYPES.contains(&s) || RE_SCHEMA_ELEMENT.is_match(s) {
        return;
    }
    errors.push((
        node.pos,
        format!(
            "{path}: '{s}' is not an option type (expected bool, email, url, port, device, str, password, int, float with optional (min,max), match(regex), list(a|b), each optionally ending in '?')"
        ),
    ));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_types_are_in_the_grammar() {
        for plain in PLAIN_TYPES {
            assert!(RE_SCHEMA_ELEMENT.is_match(plain), "{plain}");
        }
    }

    #[test]
    fn error_paths_name_the_element() {
        let node = crate::source::parse(
            "a: strr\nb:\n  - int\n  - c: [nope]\nd: {e: 3}\n",
            crate::source::Format::Yaml,
        )
        .unwrap();
        let mut errors = Vec::new();
        check(&node, &mut errors);
        let paths: Vec<&str> = errors
            .iter()
            .map(|(_, m)| m.split(':').next().unwrap())
            .collect();
        assert_eq!(paths, ["schema.a", "schema.b[1].c[0]", "schema.d.e"]);
    }

    #[test]
    fn element_grammar() {
        for ok in [
            "str",
            "str?",
            "int(1,10)",
            "int(-5,)",
            "float(0.5,)",
            "float(,-.5)",
            "password(8,)",
            "device(subsystem=tty)",
            "match(^a$)",
            "list(a|b|c)?",
            "",
            "?",
            "email",
            "url",
            "port",
        ] {
            assert!(RE_SCHEMA_ELEMENT.is_match(ok), "{ok}");
        }
        for bad in [
            "string",
            "int(a,b)",
            "str=default",
            "list()",
            "device(tty)",
            "bool??",
        ] {
            assert!(!RE_SCHEMA_ELEMENT.is_match(bad), "{bad}");
        }
    }
}
