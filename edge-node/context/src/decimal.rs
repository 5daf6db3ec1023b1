//! The integer text format `increment` reads and writes.
//!
//! Redis decides what counts as an integer for `INCRBY`, and a guest must not be able to tell
//! backends apart, so the in-process backends accept exactly what Redis accepts: an optional
//! `-`, then `0` alone or digits without a leading zero, no spaces, no `+`, within `i64`.

use crate::{Error, Result};

/// Parses a stored value the way Redis' `string2ll` does.
pub(crate) fn parse_decimal_i64(bytes: &[u8]) -> Result<i64> {
    let (negative, digits) = match bytes.split_first() {
        Some((b'-', rest)) => (true, rest),
        _ => (false, bytes),
    };
    let well_formed = match digits {
        [b'0'] => !negative,
        [b'1'..=b'9', rest @ ..] => rest.iter().all(u8::is_ascii_digit),
        _ => false,
    };
    if !well_formed {
        return Err(Error::NotAnInteger);
    }
    // Only ASCII digits and '-' remain, so the text is valid UTF-8 and `parse` only fails when
    // the number is out of range, which Redis also reports as "not an integer".
    std::str::from_utf8(bytes)
        .ok()
        .and_then(|text| text.parse::<i64>().ok())
        .ok_or(Error::NotAnInteger)
}

/// Adds `delta` to the stored value (missing counts as 0) and returns the new value with the
/// bytes to store.
pub(crate) fn apply_increment(current: Option<&[u8]>, delta: i64) -> Result<(i64, Vec<u8>)> {
    let base = match current {
        Some(bytes) => parse_decimal_i64(bytes)?,
        None => 0,
    };
    let sum = base.checked_add(delta).ok_or(Error::Overflow)?;
    Ok((sum, sum.to_string().into_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_what_redis_accepts() {
        assert_eq!(parse_decimal_i64(b"0").ok(), Some(0));
        assert_eq!(parse_decimal_i64(b"42").ok(), Some(42));
        assert_eq!(parse_decimal_i64(b"-42").ok(), Some(-42));
        assert_eq!(
            parse_decimal_i64(b"9223372036854775807").ok(),
            Some(i64::MAX)
        );
        assert_eq!(
            parse_decimal_i64(b"-9223372036854775808").ok(),
            Some(i64::MIN)
        );
    }

    #[test]
    fn refuses_what_redis_refuses() {
        for text in [
            &b""[..],
            b"-",
            b"-0",
            b"01",
            b"+1",
            b" 1",
            b"1 ",
            b"1.5",
            b"abc",
            b"9223372036854775808",
            b"-9223372036854775809",
            b"\xff",
        ] {
            assert!(
                matches!(parse_decimal_i64(text), Err(Error::NotAnInteger)),
                "{text:?} must not parse"
            );
        }
    }

    #[test]
    fn increment_detects_overflow() {
        assert!(matches!(
            apply_increment(Some(b"9223372036854775807"), 1),
            Err(Error::Overflow)
        ));
        assert!(matches!(
            apply_increment(Some(b"-9223372036854775808"), -1),
            Err(Error::Overflow)
        ));
        assert_eq!(apply_increment(None, 5).ok(), Some((5, b"5".to_vec())));
    }
}
