//! Environment knobs and their parsing rules.
//!
//! Invariant defended: numeric variables are parsed exactly like JavaScript's
//! `Number()` (the original's rule), so the same environment configures a Node
//! peer and a Rust peer identically; anything that is not a positive finite
//! number falls back to the documented default; numbers we write are printed
//! the way JavaScript prints them (integral values without `.0`).

/// Parse like JavaScript `Number(text)`; `None` stands for NaN.
pub fn js_number(text: &str) -> Option<f64> {
    let t = text.trim_matches(|c: char| c.is_whitespace() || c == '\u{feff}');
    if t.is_empty() {
        return Some(0.0);
    }
    for (prefix, radix) in [
        ("0x", 16),
        ("0X", 16),
        ("0o", 8),
        ("0O", 8),
        ("0b", 2),
        ("0B", 2),
    ] {
        if let Some(digits) = t.strip_prefix(prefix) {
            if digits.is_empty() || !digits.chars().all(|c| c.is_digit(radix)) {
                return None;
            }
            return Some(digits.chars().fold(0f64, |acc, c| {
                acc * radix as f64 + c.to_digit(radix).unwrap_or(0) as f64
            }));
        }
    }
    let unsigned = t.strip_prefix(['+', '-']).unwrap_or(t);
    if unsigned == "Infinity" {
        return Some(if t.starts_with('-') {
            f64::NEG_INFINITY
        } else {
            f64::INFINITY
        });
    }
    // Only decimal literals: digits, one dot, optional exponent. Rust's parser
    // would also take "inf"/"nan", which JavaScript rejects.
    let valid = {
        let (mantissa, exponent) = match unsigned.find(['e', 'E']) {
            Some(i) => (&unsigned[..i], Some(&unsigned[i + 1..])),
            None => (unsigned, None),
        };
        let mantissa_ok = mantissa.chars().filter(|&c| c == '.').count() <= 1
            && mantissa.chars().all(|c| c.is_ascii_digit() || c == '.')
            && mantissa.chars().any(|c| c.is_ascii_digit());
        let exponent_ok = exponent.is_none_or(|e| {
            let e = e.strip_prefix(['+', '-']).unwrap_or(e);
            !e.is_empty() && e.chars().all(|c| c.is_ascii_digit())
        });
        mantissa_ok && exponent_ok
    };
    if !valid {
        return None;
    }
    t.parse::<f64>().ok()
}

/// `x` as JSON the way JavaScript prints it: an integral value below 2^53 in
/// magnitude becomes an integer (`45000`, not `45000.0`).
pub fn js_number_value(x: f64) -> serde_json::Value {
    if x.fract() == 0.0 && x.abs() < 9.007_199_254_740_992e15 {
        serde_json::Value::from(x as i64)
    } else {
        serde_json::Value::from(x)
    }
}

/// A positive finite number from the environment variable `name`, else `default`.
pub fn positive_env(name: &str, default: f64) -> f64 {
    std::env::var(name)
        .ok()
        .and_then(|v| js_number(&v))
        .filter(|n| n.is_finite() && *n > 0.0)
        .unwrap_or(default)
}

/// A program to run: the path in env `var` when set and non-empty, else the
/// first regular file `name` in a `PATH` directory.
pub fn find_program(var: &str, name: &str) -> Option<std::path::PathBuf> {
    if let Some(p) = std::env::var_os(var).filter(|p| !p.is_empty()) {
        return Some(p.into());
    }
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join(name))
        .find(|p| p.is_file())
}

#[cfg(test)]
mod tests {
    use super::{js_number, js_number_value};

    #[test]
    fn prints_like_javascript() {
        assert_eq!(
            serde_json::to_string(&js_number_value(45_000.0)).unwrap(),
            "45000"
        );
        assert_eq!(
            serde_json::to_string(&js_number_value(700.5)).unwrap(),
            "700.5"
        );
        assert_eq!(serde_json::to_string(&js_number_value(-3.0)).unwrap(), "-3");
        assert_eq!(
            serde_json::to_string(&js_number_value(1e300)).unwrap(),
            "1e+300"
        );
    }

    #[test]
    fn follows_javascript_number() {
        assert_eq!(js_number(""), Some(0.0));
        assert_eq!(js_number("  "), Some(0.0));
        assert_eq!(js_number(" 42 "), Some(42.0));
        assert_eq!(js_number(".5"), Some(0.5));
        assert_eq!(js_number("5."), Some(5.0));
        assert_eq!(js_number("+7"), Some(7.0));
        assert_eq!(js_number("-7"), Some(-7.0));
        assert_eq!(js_number("1e3"), Some(1000.0));
        assert_eq!(js_number("0x10"), Some(16.0));
        assert_eq!(js_number("0b11"), Some(3.0));
        assert_eq!(js_number("Infinity"), Some(f64::INFINITY));
        assert_eq!(js_number("inf"), None);
        assert_eq!(js_number("nan"), None);
        assert_eq!(js_number("1_000"), None);
        assert_eq!(js_number("12px"), None);
        assert_eq!(js_number("-0x10"), None);
        assert_eq!(js_number("."), None);
    }
}
