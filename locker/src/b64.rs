//! Base64url without padding (RFC 4648 §5), as RFC 7515 §2 requires for every JWS part.
//!
//! Decoding is strict: no padding, no whitespace, no characters outside the URL-safe alphabet,
//! and no non-zero trailing bits in the last character. A value therefore has exactly one
//! encoding, so a flipped character can never decode to the same bytes.

use crate::error::FormatError;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

/// Encodes `bytes` as base64url without padding.
pub fn encode(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

/// Decodes base64url without padding, refusing every non-canonical form.
pub fn decode(what: &'static str, s: &str) -> Result<Vec<u8>, FormatError> {
    let bytes = URL_SAFE_NO_PAD
        .decode(s.as_bytes())
        .map_err(|_| FormatError::Base64(what))?;
    // The engine already refuses padding and trailing bits; re-encoding is a cheap belt to those
    // braces (a future engine default must not make two encodings acceptable).
    if encode(&bytes) != s {
        return Err(FormatError::Base64(what));
    }
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strict() {
        assert_eq!(encode(b"\xfb\xff"), "-_8");
        assert_eq!(decode("x", "-_8").expect("ok"), b"\xfb\xff");
        // Padding, the standard alphabet, whitespace and non-zero trailing bits are refused.
        for bad in ["-_8=", "+/8", " -_8", "-_9", "A"] {
            assert!(decode("x", bad).is_err(), "{bad}");
        }
        assert_eq!(decode("x", "").expect("empty"), b"");
    }
}
