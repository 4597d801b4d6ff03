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
        Value::Map(entries) => {
            for (key, value) in entries {
                match key.as_str() {
                    Some(name) => element(value, &format!("schema.{name}"), errors),
                    None => errors.push((
                        key.pos,
                        format!("schema keys must be strings, got {}", key.kind()),
                    )),
                }
            }
        }
        _ => errors.push((
            node.pos,
            format!(
                "schema must be a mapping of option types or false, got {}",
                node.kind()
            ),
        )),
    }
}

fn element(node: &Node, path: &str, errors: &mut Vec<(Pos, String)>) {
    match &node.value {
        Value::Str(s) => type_string(node, s, path, errors),
        Value::Map(entries) => nested_map(entries, path, errors),
        Value::Seq(items) => {
            for (i, item) in items.iter().enumerate() {
                let item_path = format!("{path}[{i}]");
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

fn nested_map(entries: &[(Node, Node)], path: &str, errors: &mut Vec<(Pos, String)>) {
    for (key, value) in entries {
        match key.as_str() {
            Some(name) => element(value, &format!("{path}.{name}"), errors),
            None => errors.push((
                key.pos,
                format!("{path}: keys must be strings, got {}", key.kind()),
            )),
        }
    }
}

fn type_string(node: &Node, s: &str, path: &str, errors: &mut Vec<(Pos, String)>) {
    if !RE_SCHEMA_ELEMENT.is_match(s) {
        errors.push((
            node.pos,
            format!(
                "{path}: '{s}' is not an option type (expected bool, email, url, port, device, str, password, int, float with optional (min,max), match(regex), list(a|b), each optionally ending in '?')"
            ),
        ));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
