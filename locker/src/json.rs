//! Strict JSON for JOSE: objects whose members are unique at every depth.
//!
//! RFC 7515 §4 lets a JWS parser either reject duplicate header members or take the last one;
//! two parsers taking different ones is how signature confusion happens, so this profile rejects
//! them everywhere (header and payload).

use crate::error::FormatError;
use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Number, Value};

struct Strict(Value);

impl<'de> Deserialize<'de> for Strict {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(StrictVisitor)
    }
}

struct StrictVisitor;

impl<'de> Visitor<'de> for StrictVisitor {
    type Value = Strict;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a JSON value")
    }
    fn visit_bool<E>(self, v: bool) -> Result<Strict, E> {
        Ok(Strict(Value::Bool(v)))
    }
    fn visit_i64<E>(self, v: i64) -> Result<Strict, E> {
        Ok(Strict(Value::Number(v.into())))
    }
    fn visit_u64<E>(self, v: u64) -> Result<Strict, E> {
        Ok(Strict(Value::Number(v.into())))
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Strict, E> {
        Number::from_f64(v)
            .map(|n| Strict(Value::Number(n)))
            .ok_or_else(|| E::custom("number out of range"))
    }
    fn visit_str<E>(self, v: &str) -> Result<Strict, E> {
        Ok(Strict(Value::String(v.to_owned())))
    }
    fn visit_string<E>(self, v: String) -> Result<Strict, E> {
        Ok(Strict(Value::String(v)))
    }
    fn visit_unit<E>(self) -> Result<Strict, E> {
        Ok(Strict(Value::Null))
    }
    fn visit_none<E>(self) -> Result<Strict, E> {
        Ok(Strict(Value::Null))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Strict, A::Error> {
        let mut out = Vec::new();
        while let Some(Strict(v)) = seq.next_element()? {
            out.push(v);
        }
        Ok(Strict(Value::Array(out)))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Strict, A::Error> {
        let mut out = Map::new();
        while let Some(k) = map.next_key::<String>()? {
            if out.contains_key(&k) {
                return Err(de::Error::custom(format!("duplicate member {k:?}")));
            }
            let Strict(v) = map.next_value()?;
            out.insert(k, v);
        }
        Ok(Strict(Value::Object(out)))
    }
}

/// Parses `bytes` as one JSON object with unique member names at every depth (and nothing after
/// it but whitespace).
pub fn parse_object(what: &'static str, bytes: &[u8]) -> Result<Map<String, Value>, FormatError> {
    let json = |reason: String| FormatError::Json { what, reason };
    let Strict(v) = serde_json::from_slice::<Strict>(bytes).map_err(|e| json(e.to_string()))?;
    match v {
        Value::Object(m) => Ok(m),
        _ => Err(json("not an object".into())),
    }
}

/// A required string member.
pub fn str_member<'a>(
    obj: &'a Map<String, Value>,
    key: &str,
    field: &'static str,
) -> Result<&'a str, FormatError> {
    match obj.get(key) {
        Some(Value::String(s)) => Ok(s),
        Some(_) => Err(FormatError::field(field, "must be a string")),
        None => Err(FormatError::field(field, "is missing")),
    }
}

/// An optional string member.
pub fn opt_str_member<'a>(
    obj: &'a Map<String, Value>,
    key: &str,
    field: &'static str,
) -> Result<Option<&'a str>, FormatError> {
    match obj.get(key) {
        Some(Value::String(s)) => Ok(Some(s)),
        Some(_) => Err(FormatError::field(field, "must be a string")),
        None => Ok(None),
    }
}

/// An optional non-negative integer member (NumericDate and the like).
pub fn opt_u64_member(
    obj: &Map<String, Value>,
    key: &str,
    field: &'static str,
) -> Result<Option<u64>, FormatError> {
    match obj.get(key) {
        Some(v) => v
            .as_u64()
            .map(Some)
            .ok_or_else(|| FormatError::field(field, "must be a non-negative integer")),
        None => Ok(None),
    }
}

/// A required object member.
pub fn obj_member<'a>(
    obj: &'a Map<String, Value>,
    key: &str,
    field: &'static str,
) -> Result<&'a Map<String, Value>, FormatError> {
    match obj.get(key) {
        Some(Value::Object(m)) => Ok(m),
        Some(_) => Err(FormatError::field(field, "must be an object")),
        None => Err(FormatError::field(field, "is missing")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn duplicates_refused_at_any_depth() {
        assert!(parse_object("x", br#"{"a":1,"b":{"c":[1,{"d":2}]}}"#).is_ok());
        assert!(parse_object("x", br#"{"a":1,"a":2}"#).is_err());
        assert!(parse_object("x", br#"{"a":{"b":1,"b":1}}"#).is_err());
        assert!(parse_object("x", br#"{"a":[{"b":1,"b":1}]}"#).is_err());
        assert!(parse_object("x", br#"[1]"#).is_err());
        assert!(parse_object("x", br#"{"a":1} x"#).is_err());
        assert!(parse_object("x", b"\xff").is_err());
    }
}
