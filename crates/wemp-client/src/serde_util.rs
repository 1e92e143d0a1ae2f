//! Serde helpers for the shapes WeChat's answers take.

use serde::{Deserialize, Deserializer};
use serde_json::Value;

/// A list WeChat sends as `null` (or leaves out, with `#[serde(default)]`) when empty.
pub(crate) fn null_as_empty<'de, D, T>(d: D) -> Result<Vec<T>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    Ok(Option::<Vec<T>>::deserialize(d)?.unwrap_or_default())
}

/// An optional id WeChat sends as a string in some answers and as a number in others.
pub(crate) fn string_or_number<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    Ok(match Option::<Value>::deserialize(d)? {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => Some(s),
        Some(Value::Number(n)) => Some(n.to_string()),
        Some(other) => {
            return Err(serde::de::Error::custom(format!("expected a string or a number, found {other}")));
        }
    })
}
