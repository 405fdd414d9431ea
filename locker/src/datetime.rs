//! XML Schema `dateTimeStamp` / RFC 3339 timestamps for `validFrom` / `validUntil`, converted to
//! and from Unix seconds (UTC; leap seconds are not represented). The calendar arithmetic is the
//! `time` crate's; this module only narrows RFC 3339 to what `dateTimeStamp` allows.

use crate::error::FormatError;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

/// The last second of year 9999, the largest a four-digit year can name.
const MAX_UNIX: u64 = 253_402_300_799;

/// `YYYY-MM-DDTHH:MM:SSZ` for Unix seconds (years up to 9999).
pub fn format(unix: u64) -> String {
    // Clamped to four-digit years, so neither conversion can fail; the fallback is unreachable.
    let t = i64::try_from(unix.min(MAX_UNIX)).unwrap_or(0);
    OffsetDateTime::from_unix_timestamp(t)
        .ok()
        .and_then(|dt| dt.format(&Rfc3339).ok())
        .unwrap_or_else(|| "9999-12-31T23:59:59Z".to_owned())
}

/// Parses `YYYY-MM-DDTHH:MM:SS[.fraction](Z|±HH:MM)` into Unix seconds (the fraction is
/// dropped). Dates before 1970 are refused: no credential here is that old.
pub fn parse(field: &'static str, s: &str) -> Result<u64, FormatError> {
    let bad = || {
        FormatError::field(
            field,
            format!("{s:?} is not an RFC 3339 date-time with a time zone"),
        )
    };
    let b = s.as_bytes();
    // RFC 3339 lets applications use another separator than `T` and allows a leap second;
    // `dateTimeStamp` allows neither, and `time` would accept both.
    if !matches!(b.get(10), Some(b'T' | b't')) || b.get(17..19) == Some(b"60".as_slice()) {
        return Err(bad());
    }
    let dt = OffsetDateTime::parse(s, &Rfc3339).map_err(|_| bad())?;
    u64::try_from(dt.unix_timestamp()).map_err(|_| bad())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_known_values() {
        assert_eq!(format(0), "1970-01-01T00:00:00Z");
        assert_eq!(format(1_735_689_600), "2025-01-01T00:00:00Z");
        assert_eq!(format(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(format(u64::MAX), "9999-12-31T23:59:59Z");
        for t in [0u64, 59, 86_399, 951_782_400, 1_735_689_600, 4_102_444_799] {
            assert_eq!(parse("t", &format(t)).expect("parses"), t);
        }
        assert_eq!(
            parse("t", "2025-01-01T05:30:00+05:30").expect("offset"),
            1_735_689_600
        );
        assert_eq!(
            parse("t", "2025-01-01t00:00:00z").expect("lower case"),
            1_735_689_600
        );
        assert_eq!(
            parse("t", "2025-01-01T00:00:00.123Z").expect("fraction"),
            1_735_689_600
        );
        for bad in [
            "2025-02-29T00:00:00Z",
            "2025-01-01 00:00:00Z",
            "2025-01-01T00:00:00",
            "2025-01-01T00:00:00.Z",
            "2025-01-01T24:00:00Z",
            "2016-12-31T23:59:60Z",
            "2025-01-01T00:00:00+24:00",
            "2025-01-01T00:00:00Zjunk",
            "1969-12-31T23:59:59Z",
            "x",
            "",
        ] {
            assert!(parse("t", bad).is_err(), "{bad}");
        }
    }
}
