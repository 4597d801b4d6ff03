//! One option value against one type string (`AppOptions._single_validate`): the voluptuous
//! validator each type stands for, with voluptuous' own messages.

use std::sync::LazyLock;

use regex::{Captures, Regex};
use serde_json::{Number, Value};

use super::convert::int;
use super::pyrepr::{repr_str, str_of};
use super::{AppOptions, Fail, pyregex, url};
use crate::config::options_schema::RE_SCHEMA_ELEMENT;
use crate::source::python_float;

/// `vol.Range` / `vol.Length` bounds, from the type's `(min,max)`; `float(group)`.
#[derive(Default)]
struct Bounds {
    min: Option<f64>,
    max: Option<f64>,
}

impl Bounds {
    fn of(caps: &Captures, min: &str, max: &str) -> Bounds {
        let bound = |name: &str| {
            caps.name(name)
                .map(|m| m.as_str())
                .filter(|s| !s.is_empty())
                .and_then(|s| s.parse::<f64>().ok())
        };
        Bounds {
            min: bound(min),
            max: bound(max),
        }
    }

    /// `vol.Range(min, max)`: `not v >= min` fails, so NaN fails whichever bound is there.
    fn range(&self, v: f64, shown: impl Fn(f64) -> String) -> Result<(), Fail> {
        if let Some(min) = self.min.filter(|min| v.is_nan() || v < *min) {
            return Err(Fail::invalid(format!(
                "value must be at least {}",
                shown(min)
            )));
        }
        if let Some(max) = self.max.filter(|max| v.is_nan() || v > *max) {
            return Err(Fail::invalid(format!(
                "value must be at most {}",
                shown(max)
            )));
        }
        Ok(())
    }
}

impl AppOptions<'_> {
    pub(super) fn single(&mut self, typ: &Value, value: &Value, key: &str) -> Result<Value, Fail> {
        if value.is_null() {
            return Err(self.named(format!("Missing required option '{key}'")));
        }
        let resolved;
        let mut value = value;
        if let Some(name) = value.as_str().and_then(|s| s.strip_prefix("!secret ")) {
            resolved = self
                .secrets
                .get(name)
                .cloned()
                .ok_or_else(|| self.named(format!("Unknown secret '{name}'")))?;
            value = &resolved;
        }
        let typ_text = typ.as_str().unwrap_or_default();
        let caps = match typ.as_str().and_then(|t| RE_SCHEMA_ELEMENT.captures(t)) {
            Some(caps) => caps,
            None => {
                let shown = super::pyrepr::str_of(typ);
                return Err(self.named(format!("Unknown type '{shown}'")));
            }
        };
        self.typed(typ_text, &caps, value, key)
    }

    fn typed(
        &mut self,
        typ: &str,
        caps: &Captures,
        value: &Value,
        key: &str,
    ) -> Result<Value, Fail> {
        let group = |name: &str| caps.name(name).map_or("", |m| m.as_str());
        if typ.starts_with("str") || typ.starts_with("password") {
            let (min, max) = if typ.starts_with("str") {
                ("s_min", "s_max")
            } else {
                ("p_min", "p_max")
            };
            return string(value, &Bounds::of(caps, min, max));
        }
        if typ.starts_with("int") {
            let v = coerce_int(value)?;
            Bounds::of(caps, "i_min", "i_max").range(v as f64, python_float)?;
            return int(v).ok_or_else(|| Fail::invalid("expected int".to_owned()));
        }
        if typ.starts_with("float") {
            let v = coerce_float(value)?;
            Bounds::of(caps, "f_min", "f_max").range(v, python_float)?;
            // NaN and infinity have no JSON form: the Supervisor's writer puts `null`.
            return Ok(Number::from_f64(v).map_or(Value::Null, Value::Number));
        }
        if typ.starts_with("bool") {
            return boolean(value).map(Value::Bool);
        }
        if typ.starts_with("email") {
            return match value.as_str().filter(|s| email(s)) {
                Some(_) => Ok(value.clone()),
                None => Err(Fail::invalid("expected an email address".to_owned())),
            };
        }
        if typ.starts_with("url") {
            return match value.as_str().filter(|s| url::is_url(s)) {
                Some(_) => Ok(value.clone()),
                None => Err(Fail::invalid("expected a URL".to_owned())),
            };
        }
        if typ.starts_with("port") {
            let v = coerce_int(value)?;
            let port = Bounds {
                min: Some(1.0),
                max: Some(65535.0),
            };
            port.range(v as f64, |b| format!("{b:.0}"))?;
            return int(v).ok_or_else(|| Fail::invalid("expected int".to_owned()));
        }
        if typ.starts_with("match") {
            return self.matches(group("match"), value);
        }
        if typ.starts_with("list") {
            return one_of(group("list"), value);
        }
        if typ.starts_with("device") {
            return self.device(group("filter"), value, key);
        }
        Err(self.named(format!("Fatal error for option '{key}' with type '{typ}'")))
    }

    fn matches(&self, pattern: &str, value: &Value) -> Result<Value, Fail> {
        let text = str_of(value);
        match pyregex::python_match(pattern, &text) {
            Ok(true) => Ok(Value::String(text)),
            Ok(false) => Err(Fail::invalid(format!(
                "does not match regular expression {pattern}"
            ))),
            Err(why) => Err(Fail::BadPattern(why)),
        }
    }

    fn device(&mut self, filter: &str, value: &Value, key: &str) -> Result<Value, Fail> {
        let Some(text) = value.as_str() else {
            return Err(self.named(format!("Expected a string for option '{key}'")));
        };
        let Some(device) = self.devices.get_by_path(text) else {
            return Err(self.named(format!("Device '{text}' does not exist")));
        };
        if let Some(subsystem) = filter.strip_prefix("subsystem=")
            && device.subsystem != subsystem
        {
            return Err(self.named(format!("Device '{text}' don't match the filter {filter}!")));
        }
        let path = device.path.to_string_lossy().into_owned();
        if !self.matched_devices.contains(&path) {
            self.matched_devices.push(path);
        }
        Ok(value.clone())
    }
}

/// `vol.All(str, vol.Length(min, max))`: no coercion; the length in characters.
fn string(value: &Value, bounds: &Bounds) -> Result<Value, Fail> {
    let Some(s) = value.as_str() else {
        return Err(Fail::invalid("expected str".to_owned()));
    };
    let len = s.chars().count() as f64;
    if let Some(min) = bounds.min.filter(|min| len < *min) {
        let min = python_float(min);
        return Err(Fail::invalid(format!(
            "length of value must be at least {min}"
        )));
    }
    if let Some(max) = bounds.max.filter(|max| len > *max) {
        let max = python_float(max);
        return Err(Fail::invalid(format!(
            "length of value must be at most {max}"
        )));
    }
    Ok(value.clone())
}

/// `vol.In(choices)(str(value))`: the text of the value must be one of the choices.
fn one_of(choices: &str, value: &Value) -> Result<Value, Fail> {
    let text = str_of(value);
    let mut options: Vec<&str> = choices.split('|').collect();
    if options.contains(&text.as_str()) {
        return Ok(Value::String(text));
    }
    options.sort_unstable();
    let shown: Vec<String> = options.iter().map(|o| repr_str(o)).collect();
    Err(Fail::invalid(format!(
        "value must be one of [{}]",
        shown.join(", ")
    )))
}

/// Python's `int(value)` (`vol.Coerce(int)`).
fn coerce_int(value: &Value) -> Result<i128, Fail> {
    let fail = || Fail::invalid("expected int".to_owned());
    match value {
        Value::Bool(b) => Ok(i128::from(*b)),
        Value::Number(n) => match (n.as_i64(), n.as_u64(), n.as_f64()) {
            (Some(i), _, _) => Ok(i128::from(i)),
            (_, Some(u), _) => Ok(i128::from(u)),
            (_, _, Some(f)) if f.is_finite() && f.abs() < 1e38 => Ok(f.trunc() as i128),
            _ => Err(fail()),
        },
        Value::String(s) => {
            let t = digits_of(s.trim()).ok_or_else(fail)?;
            t.parse::<i128>().map_err(|_| fail())
        }
        _ => Err(fail()),
    }
}

/// A Python numeric literal's text without its underscores, which may only sit between two
/// digits; `None` when an underscore is misplaced.
fn digits_of(s: &str) -> Option<String> {
    let b = s.as_bytes();
    for (i, c) in b.iter().enumerate() {
        if *c == b'_' {
            let digit = |j: Option<&u8>| j.is_some_and(|c| c.is_ascii_digit());
            if !digit(i.checked_sub(1).and_then(|j| b.get(j))) || !digit(b.get(i + 1)) {
                return None;
            }
        }
    }
    Some(s.replace('_', ""))
}

/// Python's `float(value)` (`vol.Coerce(float)`): also `nan`, `inf`, `infinity`.
fn coerce_float(value: &Value) -> Result<f64, Fail> {
    let fail = || Fail::invalid("expected float".to_owned());
    match value {
        Value::Bool(b) => Ok(if *b { 1.0 } else { 0.0 }),
        Value::Number(n) => n.as_f64().ok_or_else(fail),
        Value::String(s) => {
            let t = digits_of(s.trim()).ok_or_else(fail)?;
            let lower = t.to_ascii_lowercase();
            let body = lower.trim_start_matches(['+', '-']);
            let named = matches!(body, "nan" | "inf" | "infinity");
            let numeric = !body.is_empty()
                && body
                    .bytes()
                    .all(|c| c.is_ascii_digit() || b".e+-".contains(&c));
            if !(named || numeric) || lower.len() - body.len() > 1 {
                return Err(fail());
            }
            t.parse::<f64>().map_err(|_| fail())
        }
        _ => Err(fail()),
    }
}

/// `vol.Boolean()`.
fn boolean(value: &Value) -> Result<bool, Fail> {
    Ok(match value {
        Value::String(s) => match s.to_lowercase().as_str() {
            "1" | "true" | "yes" | "on" | "enable" => true,
            "0" | "false" | "no" | "off" | "disable" => false,
            _ => return Err(Fail::invalid("expected boolean".to_owned())),
        },
        Value::Null => false,
        Value::Bool(b) => *b,
        Value::Number(n) => n.as_f64().is_some_and(|f| f != 0.0),
        Value::Array(a) => !a.is_empty(),
        Value::Object(o) => !o.is_empty(),
    })
}

static USER: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(concat!(
        r"(?i)\A(?:[-!#$%&'*+/=?^_`{}|~0-9A-Z]+(?:\.[-!#$%&'*+/=?^_`{}|~0-9A-Z]+)*",
        r#"|"(?:[\x01-\x08\x0b\x0c\x0e-\x1f!#-\[\]-\x7f]|\\[\x01-\x09\x0b\x0c\x0e-\x7f])*")\z"#,
    ))
    .expect("static regex")
});

static DOMAIN: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(concat!(
        r"(?i)\A(?:(?:[A-Z0-9](?:[A-Z0-9-]{0,61}[A-Z0-9])?\.)+(?:[A-Z]{2,6}\.?|[A-Z0-9-]{2,}\.?)",
        r"|\[(?:25[0-5]|2[0-4]\d|[0-1]?\d?\d)(?:\.(?:25[0-5]|2[0-4]\d|[0-1]?\d?\d)){3}\])\z",
    ))
    .expect("static regex")
});

/// `vol.Email()`: a user part and a domain (or `[ipv4]`) split at the last `@`.
fn email(s: &str) -> bool {
    match s.rsplit_once('@') {
        Some((user, domain)) => USER.is_match(user) && DOMAIN.is_match(domain),
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn coercions_follow_python() {
        assert_eq!(coerce_int(&json!(12.9)).unwrap(), 12);
        assert_eq!(coerce_int(&json!(" 1_2 ")).unwrap(), 12);
        assert_eq!(coerce_int(&json!(true)).unwrap(), 1);
        assert!(coerce_int(&json!("12.0")).is_err());
        assert!(coerce_int(&json!("1__2")).is_err());
        assert!(coerce_float(&json!("nan")).unwrap().is_nan());
        assert_eq!(
            coerce_float(&json!("-Infinity")).unwrap(),
            f64::NEG_INFINITY
        );
        assert_eq!(coerce_float(&json!(" 1e3 ")).unwrap(), 1000.0);
        assert!(coerce_float(&json!("1e")).is_err());
        assert!(coerce_float(&json!("0x10")).is_err());
        assert!(boolean(&json!("maybe")).is_err());
        assert!(boolean(&json!("ON")).unwrap());
        assert!(!boolean(&json!([])).unwrap());
    }

    #[test]
    fn emails_like_voluptuous() {
        for ok in [
            "a@b.cc",
            "x.y+z@example.com",
            "\"q.u\"@h.de",
            "u@[10.0.0.1]",
            "a@b.c0m",
        ] {
            assert!(email(ok), "{ok}");
        }
        for bad in [
            "", "user@", "@b.cc", "a@b", "a@.com", "a b@c.de", "a@b.cc\n",
        ] {
            assert!(!email(bad), "{bad}");
        }
    }
}
