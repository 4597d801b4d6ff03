//! YAML 1.1 timestamps (`2024-01-02`, `2001-12-14 21:59:43.10 -5`): PyYAML's resolver and
//! constructor patterns, and Python's `str()` of the `date` or `datetime` they build, which is
//! the text the Supervisor's `vol.Coerce(str)` sees.

use super::Scan;

/// The fields a timestamp pattern matched, before Python checks them as a date and time.
pub(super) struct Timestamp {
    year: u32,
    month: u32,
    day: u32,
    /// hour, minute, second, microsecond
    time: Option<(u32, u32, u32, u32)>,
    /// Offset in minutes; `None` for a naive time.
    zone: Option<i32>,
}

fn digits(s: &mut Scan, min: usize, max: usize) -> Option<u32> {
    let start = s.i;
    while s.i - start < max && s.eat_if(|b| b.is_ascii_digit()) {}
    let n = s.i - start;
    if n < min {
        return None;
    }
    std::str::from_utf8(&s.s[start..s.i]).ok()?.parse().ok()
}

/// Match the timestamp patterns. `implicit` is the resolver's stricter form (a date alone
/// must have two-digit month and day); the constructor's own pattern is looser.
pub(super) fn timestamp_parts(text: &str, implicit: bool) -> Option<Timestamp> {
    let mut s = Scan::new(text);
    let year = digits(&mut s, 4, 4)?;
    if !s.eat(b'-') {
        return None;
    }
    let month_at = s.i;
    let month = digits(&mut s, 1, 2)?;
    let month_len = s.i - month_at;
    if !s.eat(b'-') {
        return None;
    }
    let day_at = s.i;
    let day = digits(&mut s, 1, 2)?;
    let day_len = s.i - day_at;
    if s.done() {
        if implicit && (month_len != 2 || day_len != 2) {
            return None;
        }
        return Some(Timestamp {
            year,
            month,
            day,
            time: None,
            zone: None,
        });
    }
    if !(s.eat(b'T') || s.eat(b't')) && s.eat_while(|b| b == b' ' || b == b'\t') == 0 {
        return None;
    }
    let hour = digits(&mut s, 1, 2)?;
    if !s.eat(b':') {
        return None;
    }
    let minute = digits(&mut s, 2, 2)?;
    if !s.eat(b':') {
        return None;
    }
    let second = digits(&mut s, 2, 2)?;
    let mut micro = 0;
    if s.eat(b'.') {
        let start = s.i;
        s.eat_while(|b| b.is_ascii_digit());
        // `fraction[:6]`, padded with zeros to six digits.
        let mut frac: String = std::str::from_utf8(&s.s[start..s.i]).ok()?.to_owned();
        frac.truncate(6);
        while frac.len() < 6 {
            frac.push('0');
        }
        micro = frac.parse().ok()?;
    }
    s.eat_while(|b| b == b' ' || b == b'\t');
    let mut zone = None;
    if s.eat(b'Z') {
        zone = Some(0);
    } else if let Some(sign) = s.peek().filter(|b| *b == b'-' || *b == b'+') {
        s.i += 1;
        let h = digits(&mut s, 1, 2)? as i32;
        let m = if s.eat(b':') {
            digits(&mut s, 2, 2)? as i32
        } else {
            0
        };
        let offset = h * 60 + m;
        zone = Some(if sign == b'-' { -offset } else { offset });
    }
    if !s.done() {
        return None;
    }
    Some(Timestamp {
        year,
        month,
        day,
        time: Some((hour, minute, second, micro)),
        zone,
    })
}

fn days_in_month(year: u32, month: u32) -> u32 {
    match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if year.is_multiple_of(4) && (!year.is_multiple_of(100) || year.is_multiple_of(400)) => {
            29
        }
        2 => 28,
        _ => 0,
    }
}

/// `construct_yaml_timestamp`, then Python's `str()` of the `date` or `datetime` it builds
/// (which is what the Supervisor's `vol.Coerce(str)` sees).
pub fn construct_timestamp(text: &str) -> Result<String, String> {
    let t = timestamp_parts(text, false).ok_or_else(|| format!("'{text}' is not a timestamp"))?;
    python_str(t, text)
}

/// Python's `str()` of the `date` or `datetime` a matched timestamp builds, or what Python
/// fails with when it cannot build one.
pub(super) fn python_str(t: Timestamp, text: &str) -> Result<String, String> {
    if t.year == 0 || !(1..=12).contains(&t.month) || t.day == 0 {
        return Err(format!("'{text}' is not a valid date"));
    }
    if t.day > days_in_month(t.year, t.month) {
        return Err(format!("'{text}': day is out of range for month"));
    }
    let mut out = format!("{:04}-{:02}-{:02}", t.year, t.month, t.day);
    let Some((hour, minute, second, micro)) = t.time else {
        return Ok(out);
    };
    if hour > 23 || minute > 59 || second > 59 {
        return Err(format!("'{text}' is not a valid time"));
    }
    out.push_str(&format!(" {hour:02}:{minute:02}:{second:02}"));
    if micro != 0 {
        out.push_str(&format!(".{micro:06}"));
    }
    if let Some(offset) = t.zone {
        // `datetime.timezone` takes offsets strictly inside one day.
        if offset.abs() >= 24 * 60 {
            return Err(format!("'{text}': time zone offset out of range"));
        }
        let sign = if offset < 0 { '-' } else { '+' };
        let abs = offset.abs();
        out.push_str(&format!("{sign}{:02}:{:02}", abs / 60, abs % 60));
    }
    Ok(out)
}
