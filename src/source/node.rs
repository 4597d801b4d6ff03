use std::fmt;

/// A 1-based line and column. `0:0` means "no position" (a value the validator made up).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Pos {
    pub line: u32,
    pub column: u32,
}

impl fmt::Display for Pos {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.line, self.column)
    }
}

/// One value of a config file together with where it was written.
#[derive(Clone, Debug, PartialEq)]
pub struct Node {
    pub value: Value,
    pub pos: Pos,
}

/// The data model the Supervisor validates (a Python value from a YAML or JSON loader).
#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    Null,
    Bool(bool),
    Int(i128),
    Float(f64),
    Str(String),
    /// A YAML timestamp (`2024-01-02`), which PyYAML turns into a `date` or `datetime`; held as
    /// Python's `str()` of that object. The schema rejects it where it wants a string.
    Timestamp(String),
    Seq(Vec<Node>),
    /// Entries in file order; duplicate keys are kept here and resolved (last wins, like
    /// Python's dict) by [`Node::get`], with a warning from the validator.
    Map(Vec<(Node, Node)>),
}

impl Node {
    pub fn new(value: Value, pos: Pos) -> Node {
        Node { value, pos }
    }

    pub fn as_str(&self) -> Option<&str> {
        match &self.value {
            Value::Str(s) => Some(s),
            _ => None,
        }
    }

    pub fn as_map(&self) -> Option<&[(Node, Node)]> {
        match &self.value {
            Value::Map(entries) => Some(entries),
            _ => None,
        }
    }

    pub fn as_seq(&self) -> Option<&[Node]> {
        match &self.value {
            Value::Seq(items) => Some(items),
            _ => None,
        }
    }

    /// The value of a string key in a map (the last one, as in a Python dict).
    pub fn get(&self, key: &str) -> Option<&Node> {
        self.get_entry(key).map(|(_, v)| v)
    }

    /// The key node and value node of a string key in a map (the last one).
    pub fn get_entry(&self, key: &str) -> Option<(&Node, &Node)> {
        self.as_map()?
            .iter()
            .rev()
            .find(|(k, _)| k.as_str() == Some(key))
            .map(|(k, v)| (k, v))
    }

    /// Python's truthiness of the value (`if config.get(...)`).
    pub fn truthy(&self) -> bool {
        match &self.value {
            Value::Null => false,
            Value::Bool(b) => *b,
            Value::Int(i) => *i != 0,
            Value::Float(f) => *f != 0.0,
            Value::Str(s) => !s.is_empty(),
            Value::Timestamp(_) => true,
            Value::Seq(items) => !items.is_empty(),
            Value::Map(entries) => !entries.is_empty(),
        }
    }

    /// Python's `value == 0`: also true for `False` and `0.0`.
    pub fn equals_zero(&self) -> bool {
        match self.value {
            Value::Int(i) => i == 0,
            Value::Bool(b) => !b,
            Value::Float(f) => f == 0.0,
            _ => false,
        }
    }

    /// A short name of the value's type, as a person reading the config would say it.
    pub fn kind(&self) -> &'static str {
        match &self.value {
            Value::Null => "null",
            Value::Bool(_) => "a boolean",
            Value::Int(_) => "an integer",
            Value::Float(_) => "a float",
            Value::Str(_) => "a string",
            Value::Timestamp(_) => "a date",
            Value::Seq(_) => "a list",
            Value::Map(_) => "a mapping",
        }
    }

    /// The value written as Python's `str()` would write it (used where the Supervisor
    /// formats a value, such as a version number).
    pub fn python_str(&self) -> Option<String> {
        Some(match &self.value {
            Value::Null => "None".to_owned(),
            Value::Bool(true) => "True".to_owned(),
            Value::Bool(false) => "False".to_owned(),
            Value::Int(i) => i.to_string(),
            Value::Float(f) => python_float(*f),
            Value::Str(s) | Value::Timestamp(s) => s.clone(),
            Value::Seq(_) | Value::Map(_) => return None,
        })
    }

    /// A compact rendering of the value for messages.
    pub fn display(&self) -> String {
        match &self.value {
            Value::Str(s) => format!("'{s}'"),
            Value::Seq(_) => "[...]".to_owned(),
            Value::Map(_) => "{...}".to_owned(),
            _ => self.python_str().unwrap_or_default(),
        }
    }
}

/// Python's `repr(float)`: the shortest digits that round-trip, with `.0` on integral values
/// and an exponent outside `1e-4 <= |x| < 1e16`.
pub fn python_float(f: f64) -> String {
    if f.is_nan() {
        return "nan".to_owned();
    }
    if f.is_infinite() {
        return if f > 0.0 { "inf" } else { "-inf" }.to_owned();
    }
    let abs = f.abs();
    if abs == 0.0 || (1e-4..1e16).contains(&abs) {
        let s = format!("{f}");
        if s.contains('.') { s } else { format!("{s}.0") }
    } else {
        // Rust writes `1e16` / `1.5e-5`; Python writes `1e+16` / `1.5e-05`.
        let s = format!("{f:e}");
        let (mantissa, exp) = s.split_once('e').unwrap_or((&s, "0"));
        let (sign, digits) = match exp.strip_prefix('-') {
            Some(d) => ('-', d),
            None => ('+', exp),
        };
        format!("{mantissa}e{sign}{digits:0>2}")
    }
}

#[cfg(test)]
mod tests {
    use super::python_float;

    #[test]
    fn floats_print_like_python() {
        assert_eq!(python_float(1.1), "1.1");
        assert_eq!(python_float(1.10), "1.1");
        assert_eq!(python_float(2023.10), "2023.1");
        assert_eq!(python_float(3.0), "3.0");
        assert_eq!(python_float(1e16), "1e+16");
        assert_eq!(python_float(1.5e-5), "1.5e-05");
        assert_eq!(python_float(0.0001), "0.0001");
        assert_eq!(python_float(-2.5), "-2.5");
    }
}
