//! Plain YAML scalars typed the way PyYAML's `SafeLoader` types them.
//!
//! The Supervisor reads configs with PyYAML (`yaml.load(text, Loader=SafeLoader)`), which
//! follows YAML 1.1: `yes`/`on` are booleans, `0755` is octal, `1:30` is 90, `2024-01-02` is a
//! date, and `1e5` (no sign in the exponent) stays a string. What a value *is* decides whether
//! the schema accepts it, so the resolver here is PyYAML's, rule for rule: its implicit resolver
//! regexes (written out as matchers, because they run for every scalar of every file) and its
//! constructors (`construct_yaml_int`, `_float`, `_bool`, `_timestamp`).

mod timestamp;

use super::Value;
pub use timestamp::construct_timestamp;
use timestamp::{python_str, timestamp_parts};

/// What a plain (unquoted, untagged) scalar resolves to.
#[derive(Debug, PartialEq)]
pub enum Plain {
    Value(Value),
    /// `<<`: a merge key (only meaningful as a mapping key).
    Merge,
    /// `=`: PyYAML's "value" key (a string as a mapping key, unconstructible elsewhere).
    ValueKey,
}

/// Resolve a plain scalar. `Err` carries what PyYAML fails with (a value its resolver matched
/// but its constructor cannot build, such as `0b_` or `2024-02-30`).
pub fn plain(text: &str) -> Result<Plain, String> {
    let Some(&first) = text.as_bytes().first() else {
        return Ok(Plain::Value(Value::Null));
    };
    // PyYAML picks resolvers by the first character, in registration order: bool, float, int,
    // merge, null, timestamp, value.
    match first {
        b'y' | b'Y' | b'n' | b'N' | b't' | b'T' | b'f' | b'F' | b'o' | b'O' => {
            if let Some(b) = bool_word(text) {
                return Ok(Plain::Value(Value::Bool(b)));
            }
            if matches!(text, "null" | "Null" | "NULL") {
                return Ok(Plain::Value(Value::Null));
            }
        }
        b'-' | b'+' | b'0'..=b'9' | b'.' => {
            if is_float(text) {
                return construct_float(text).map(|f| Plain::Value(Value::Float(f)));
            }
            if first != b'.' && is_int(text) {
                return construct_int(text).map(|i| Plain::Value(Value::Int(i)));
            }
            if first.is_ascii_digit()
                && let Some(parts) = timestamp_parts(text, true)
            {
                return python_str(parts, text).map(|t| Plain::Value(Value::Timestamp(t)));
            }
        }
        b'<' if text == "<<" => return Ok(Plain::Merge),
        b'~' if text == "~" => return Ok(Plain::Value(Value::Null)),
        b'=' if text == "=" => return Ok(Plain::ValueKey),
        _ => {}
    }
    Ok(Plain::Value(Value::Str(text.to_owned())))
}

fn bool_word(text: &str) -> Option<bool> {
    match text {
        "yes" | "Yes" | "YES" | "true" | "True" | "TRUE" | "on" | "On" | "ON" => Some(true),
        "no" | "No" | "NO" | "false" | "False" | "FALSE" | "off" | "Off" | "OFF" => Some(false),
        _ => None,
    }
}

/// A small cursor over ASCII bytes for the resolver patterns.
struct Scan<'a> {
    s: &'a [u8],
    i: usize,
}

impl<'a> Scan<'a> {
    fn new(s: &'a str) -> Self {
        Scan {
            s: s.as_bytes(),
            i: 0,
        }
    }
    fn done(&self) -> bool {
        self.i == self.s.len()
    }
    fn peek(&self) -> Option<u8> {
        self.s.get(self.i).copied()
    }
    fn eat(&mut self, b: u8) -> bool {
        if self.peek() == Some(b) {
            self.i += 1;
            true
        } else {
            false
        }
    }
    fn eat_if(&mut self, f: impl Fn(u8) -> bool) -> bool {
        match self.peek() {
            Some(b) if f(b) => {
                self.i += 1;
                true
            }
            _ => false,
        }
    }
    /// Zero or more bytes matching `f`; how many.
    fn eat_while(&mut self, f: impl Fn(u8) -> bool) -> usize {
        let start = self.i;
        while self.eat_if(&f) {}
        self.i - start
    }
    fn sign(&mut self) {
        let _ = self.eat(b'-') || self.eat(b'+');
    }
    fn rest_is(&self, s: &str) -> bool {
        &self.s[self.i..] == s.as_bytes()
    }
}

fn digit_(b: u8) -> bool {
    b.is_ascii_digit() || b == b'_'
}

/// `(?::[0-5]?[0-9])+`
fn sexagesimal_parts(s: &mut Scan) -> bool {
    let mut any = false;
    loop {
        let save = s.i;
        if !s.eat(b':') {
            break;
        }
        // `[0-5]?[0-9]`: one digit, or two with the first in 0-5 (regex backtracking).
        let a = s.peek();
        let b = s.s.get(s.i + 1).copied();
        match (a, b) {
            (Some(x @ b'0'..=b'5'), Some(y)) if y.is_ascii_digit() && x.is_ascii_digit() => {
                s.i += 2
            }
            (Some(x), _) if x.is_ascii_digit() => s.i += 1,
            _ => {
                s.i = save;
                break;
            }
        }
        any = true;
    }
    any
}

/// `(?:[eE][-+][0-9]+)?` then end of input.
fn exponent_then_end(s: &mut Scan) -> bool {
    if s.eat(b'e') || s.eat(b'E') {
        if !(s.eat(b'-') || s.eat(b'+')) {
            return false;
        }
        if s.eat_while(|b| b.is_ascii_digit()) == 0 {
            return false;
        }
    }
    s.done()
}

/// PyYAML's float resolver:
/// `[-+]?[0-9][0-9_]*\.[0-9_]*([eE][-+][0-9]+)?` | `\.[0-9][0-9_]*([eE][-+][0-9]+)?` |
/// `[-+]?[0-9][0-9_]*(:[0-5]?[0-9])+\.[0-9_]*` | `[-+]?\.(inf|Inf|INF)` | `\.(nan|NaN|NAN)`
fn is_float(text: &str) -> bool {
    let mut s = Scan::new(text);
    if s.eat(b'.') {
        if matches!(&text[1..], "inf" | "Inf" | "INF" | "nan" | "NaN" | "NAN") {
            return true;
        }
        return s.eat_if(|b| b.is_ascii_digit()) && {
            s.eat_while(digit_);
            exponent_then_end(&mut s)
        };
    }
    s.sign();
    if s.eat(b'.') {
        return s.rest_is("inf") || s.rest_is("Inf") || s.rest_is("INF");
    }
    if !s.eat_if(|b| b.is_ascii_digit()) {
        return false;
    }
    s.eat_while(digit_);
    if s.eat(b'.') {
        s.eat_while(digit_);
        return exponent_then_end(&mut s);
    }
    // The sexagesimal form: `[0-9_]*` cannot hold ':', so the parts follow directly.
    if !sexagesimal_parts(&mut s) {
        return false;
    }
    if !s.eat(b'.') {
        return false;
    }
    s.eat_while(digit_);
    s.done()
}

/// PyYAML's int resolver: `[-+]?0b[0-1_]+` | `[-+]?0[0-7_]+` | `[-+]?(0|[1-9][0-9_]*)` |
/// `[-+]?0x[0-9a-fA-F_]+` | `[-+]?[1-9][0-9_]*(:[0-5]?[0-9])+`
fn is_int(text: &str) -> bool {
    let mut s = Scan::new(text);
    s.sign();
    if s.eat(b'0') {
        if s.done() {
            return true;
        }
        if s.eat(b'b') {
            return s.eat_while(|b| matches!(b, b'0' | b'1' | b'_')) > 0 && s.done();
        }
        if s.eat(b'x') {
            return s.eat_while(|b| b.is_ascii_hexdigit() || b == b'_') > 0 && s.done();
        }
        return s.eat_while(|b| matches!(b, b'0'..=b'7' | b'_')) > 0 && s.done();
    }
    if !s.eat_if(|b| matches!(b, b'1'..=b'9')) {
        return false;
    }
    s.eat_while(digit_);
    if s.done() {
        return true;
    }
    sexagesimal_parts(&mut s) && s.done()
}

/// `construct_yaml_int`.
pub fn construct_int(text: &str) -> Result<i128, String> {
    let cleaned: String = text.chars().filter(|c| *c != '_').collect();
    let (negative, body) = match cleaned.as_bytes().first() {
        Some(b'-') => (true, &cleaned[1..]),
        Some(b'+') => (false, &cleaned[1..]),
        _ => (false, &cleaned[..]),
    };
    let too_big = || format!("integer '{text}' is too large");
    let magnitude: i128 = if body == "0" {
        0
    } else if let Some(bin) = body.strip_prefix("0b") {
        parse_radix(bin, 2).ok_or_else(too_big)?
    } else if let Some(hex) = body.strip_prefix("0x") {
        parse_radix(hex, 16).ok_or_else(too_big)?
    } else if body.starts_with('0') {
        parse_radix(body, 8).ok_or_else(too_big)?
    } else if body.contains(':') {
        let mut value: i128 = 0;
        for part in body.split(':') {
            let digit = parse_radix(part, 10).ok_or_else(too_big)?;
            value = value
                .checked_mul(60)
                .and_then(|v| v.checked_add(digit))
                .ok_or_else(too_big)?;
        }
        value
    } else {
        parse_radix(body, 10).ok_or_else(too_big)?
    };
    Ok(if negative { -magnitude } else { magnitude })
}

/// Python's `int(s, radix)` for the digits the resolver let through; `None` when empty (PyYAML
/// fails on `0b_`) or beyond i128.
fn parse_radix(digits: &str, radix: u32) -> Option<i128> {
    if digits.is_empty() {
        return None;
    }
    i128::from_str_radix(digits, radix).ok()
}

/// `construct_yaml_float`.
pub fn construct_float(text: &str) -> Result<f64, String> {
    let cleaned: String = text
        .chars()
        .filter(|c| *c != '_')
        .map(|c| c.to_ascii_lowercase())
        .collect();
    let (sign, body) = match cleaned.as_bytes().first() {
        Some(b'-') => (-1.0, &cleaned[1..]),
        Some(b'+') => (1.0, &cleaned[1..]),
        _ => (1.0, &cleaned[..]),
    };
    let bad = || format!("'{text}' is not a float");
    if body == ".inf" {
        return Ok(sign * f64::INFINITY);
    }
    if body == ".nan" {
        return Ok(f64::NAN);
    }
    if body.contains(':') {
        let mut value = 0.0;
        for part in body.split(':') {
            value = value * 60.0 + parse_python_float(part).ok_or_else(bad)?;
        }
        return Ok(sign * value);
    }
    parse_python_float(body).map(|f| sign * f).ok_or_else(bad)
}

/// Python's `float(s)` for the shapes the resolver admits (`1.`, `.5`, `1.e+3`).
fn parse_python_float(s: &str) -> Option<f64> {
    if s.is_empty() {
        return None;
    }
    match s.split_once('e') {
        Some((mantissa, exp)) if mantissa.ends_with('.') => format!("{mantissa}0e{exp}").parse(),
        _ if s.ends_with('.') => format!("{s}0").parse(),
        _ => s.parse(),
    }
    .ok()
}

/// A scalar with an explicit core tag (`!!int "5"`), constructed as PyYAML would.
pub fn tagged(tag: &str, text: &str) -> Result<Value, String> {
    Ok(match tag {
        "str" => Value::Str(text.to_owned()),
        "null" => Value::Null,
        "bool" => Value::Bool(
            bool_word(&text.to_ascii_lowercase())
                .ok_or_else(|| format!("'{text}' is not a boolean"))?,
        ),
        "int" => Value::Int(if is_int(text) {
            construct_int(text)?
        } else {
            return Err(format!("'{text}' is not an integer"));
        }),
        "float" => Value::Float(construct_float(text)?),
        "timestamp" => Value::Timestamp(construct_timestamp(text)?),
        other => return Err(format!("the YAML tag !!{other} is not supported here")),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(text: &str) -> Value {
        match plain(text).unwrap() {
            Plain::Value(v) => v,
            other => panic!("{text}: {other:?}"),
        }
    }

    #[test]
    fn yaml_1_1_booleans_and_nulls() {
        for t in [
            "yes", "Yes", "YES", "on", "On", "ON", "true", "True", "TRUE",
        ] {
            assert_eq!(v(t), Value::Bool(true), "{t}");
        }
        for t in ["no", "NO", "off", "Off", "false", "FALSE"] {
            assert_eq!(v(t), Value::Bool(false), "{t}");
        }
        for t in ["y", "n", "yEs", "tRUE", "oN"] {
            assert_eq!(v(t), Value::Str(t.into()), "{t}");
        }
        for t in ["", "~", "null", "Null", "NULL"] {
            assert_eq!(v(t), Value::Null, "{t}");
        }
        assert_eq!(v("nULL"), Value::Str("nULL".into()));
    }

    #[test]
    fn integers_in_every_base() {
        let cases = [
            ("0", 0),
            ("-0", 0),
            ("+12", 12),
            ("1_000", 1000),
            ("0755", 493),
            ("0_7", 7),
            ("1_000_", 1000),
            ("0x_1", 1),
            ("0b101", 5),
            ("-0b1_0", -2),
            ("0x1F", 31),
            ("0xff_ff", 65535),
            ("1:30", 90),
            ("-1:00:01", -3601),
            ("190:20:30", 685230),
        ];
        for (t, want) in cases {
            assert_eq!(v(t), Value::Int(want), "{t}");
        }
        for t in [
            "08", "0o17", "0:30", "0x", "1e5", "12a", "1:60", "--1", "0B1",
        ] {
            assert!(!matches!(v(t), Value::Int(_)), "{t} -> {:?}", v(t));
        }
        assert_eq!(v("1:60"), Value::Str("1:60".into()));
        assert!(plain("0b_").is_err());
        assert!(plain("0x_").is_err());
        assert!(plain("99999999999999999999999999999999999999999").is_err());
    }

    #[test]
    fn floats_as_pyyaml_writes_them() {
        let cases = [
            ("1.0", 1.0),
            ("1.", 1.0),
            (".5", 0.5),
            ("+1.5", 1.5),
            ("-2.5", -2.5),
            ("1_0.2_5", 10.25),
            ("1.0e+3", 1000.0),
            ("1.E-2", 0.01),
            ("1:30.5", 90.5),
            ("-.inf", f64::NEG_INFINITY),
            (".Inf", f64::INFINITY),
        ];
        for (t, want) in cases {
            assert_eq!(v(t), Value::Float(want), "{t}");
        }
        assert!(matches!(v(".NaN"), Value::Float(f) if f.is_nan()));
        // An exponent needs a sign and a dot before it; a signed dot-number is a string.
        for t in ["1e5", "1.0e5", "1E+5", "-.5", ".", "-.nan", "1.2.3", "._5"] {
            assert_eq!(v(t), Value::Str(t.into()), "{t}");
        }
    }

    #[test]
    fn timestamps_become_python_str_of_the_date() {
        assert_eq!(v("2024-01-02"), Value::Timestamp("2024-01-02".into()));
        assert_eq!(
            v("2001-12-14t21:59:43.10-05:00"),
            Value::Timestamp("2001-12-14 21:59:43.100000-05:00".into())
        );
        assert_eq!(
            v("2001-12-14 21:59:43.10 -5"),
            Value::Timestamp("2001-12-14 21:59:43.100000-05:00".into())
        );
        assert_eq!(
            v("2001-1-2 1:02:03Z"),
            Value::Timestamp("2001-01-02 01:02:03+00:00".into())
        );
        assert_eq!(
            v("2002-12-14T01:02:03"),
            Value::Timestamp("2002-12-14 01:02:03".into())
        );
        // Implicit dates need two-digit month and day.
        assert_eq!(v("2024-1-2"), Value::Str("2024-1-2".into()));
        assert!(plain("2023-02-29").is_err());
        assert_eq!(v("2024-02-29"), Value::Timestamp("2024-02-29".into()));
        assert!(plain("2024-13-01").is_err());
        assert!(plain("2024-01-01 25:00:00").is_err());
    }

    #[test]
    fn keys_of_merge_and_value() {
        assert_eq!(plain("<<").unwrap(), Plain::Merge);
        assert_eq!(plain("=").unwrap(), Plain::ValueKey);
        assert_eq!(v("<<<"), Value::Str("<<<".into()));
    }

    #[test]
    fn explicit_tags() {
        assert_eq!(tagged("int", "0x10").unwrap(), Value::Int(16));
        assert_eq!(tagged("str", "5").unwrap(), Value::Str("5".into()));
        assert_eq!(tagged("bool", "ON").unwrap(), Value::Bool(true));
        assert!(tagged("int", "abc").is_err());
        assert!(tagged("binary", "AAAA").is_err());
    }
}
