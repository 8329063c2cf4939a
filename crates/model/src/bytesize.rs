//! Byte quantities that users may write as `536870912`, `"512MiB"`, `"2G"`.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A size in bytes. It deserialises from an integer or from a string with
/// a binary (`KiB`, `MiB`, `GiB`, `TiB`, or `K`/`M`/`G`/`T`) or decimal
/// (`kB`, `MB`, `GB`, `TB`) unit, and serialises as an integer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ByteSize(pub u64);

/// Why a text is not a size.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ByteSizeError {
    #[error("`{text}` is not a size: write bytes as an integer or a number with a unit, like \"512MiB\"")]
    NotANumber { text: String },
    #[error("unknown size unit `{unit}` in `{text}`: use B, KiB, MiB, GiB or TiB")]
    UnknownUnit { unit: String, text: String },
    #[error("`{text}` is too large")]
    TooLarge { text: String },
}

impl ByteSize {
    /// Parses `text` such as `"512MiB"`.
    pub fn parse(text: &str) -> Result<Self, ByteSizeError> {
        let text = text.trim();
        let split = text.find(|c: char| !c.is_ascii_digit()).unwrap_or(text.len());
        let (digits, unit) = text.split_at(split);
        let value: u64 = digits.parse().map_err(|_| ByteSizeError::NotANumber { text: text.to_string() })?;
        let factor: u64 = match unit.trim() {
            "" | "B" => 1,
            "K" | "KiB" | "k" => 1 << 10,
            "M" | "MiB" | "m" => 1 << 20,
            "G" | "GiB" | "g" => 1 << 30,
            "T" | "TiB" | "t" => 1 << 40,
            "kB" | "KB" => 1_000,
            "MB" => 1_000_000,
            "GB" => 1_000_000_000,
            "TB" => 1_000_000_000_000,
            other => {
                return Err(ByteSizeError::UnknownUnit { unit: other.to_string(), text: text.to_string() });
            }
        };
        value.checked_mul(factor).map(Self).ok_or_else(|| ByteSizeError::TooLarge { text: text.to_string() })
    }
}

impl fmt::Display for ByteSize {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const UNITS: [(&str, u64); 4] = [("TiB", 1 << 40), ("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)];
        for (unit, factor) in UNITS {
            if self.0 >= factor && self.0.is_multiple_of(factor) {
                return write!(f, "{}{unit}", self.0 / factor);
            }
        }
        write!(f, "{}B", self.0)
    }
}

impl Serialize for ByteSize {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_u64(self.0)
    }
}

impl<'de> Deserialize<'de> for ByteSize {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Int(u64),
            Text(String),
        }
        match Raw::deserialize(deserializer)
            .map_err(|_| serde::de::Error::custom("expected a size: an integer of bytes or a string like \"512MiB\""))?
        {
            Raw::Int(n) => Ok(Self(n)),
            Raw::Text(t) => Self::parse(&t).map_err(serde::de::Error::custom),
        }
    }
}

#[cfg(feature = "openapi")]
impl utoipa::PartialSchema for ByteSize {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        use utoipa::openapi::schema::{ObjectBuilder, OneOfBuilder, SchemaType, Type};
        OneOfBuilder::new()
            .item(ObjectBuilder::new().schema_type(SchemaType::Type(Type::Integer)).minimum(Some(0)))
            .item(
                ObjectBuilder::new()
                    .schema_type(SchemaType::Type(Type::String))
                    .pattern(Some(r"^[0-9]+\s*(B|K|M|G|T|KiB|MiB|GiB|TiB|kB|KB|MB|GB|TB)?$")),
            )
            .description(Some("Bytes, as an integer or a string with a unit such as \"512MiB\"."))
            .into()
    }
}

#[cfg(feature = "openapi")]
impl utoipa::ToSchema for ByteSize {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_units() {
        assert_eq!(ByteSize::parse("512MiB").unwrap().0, 512 << 20);
        assert_eq!(ByteSize::parse("2G").unwrap().0, 2 << 30);
        assert_eq!(ByteSize::parse("1000").unwrap().0, 1000);
        assert_eq!(ByteSize::parse("3 MB").unwrap().0, 3_000_000);
        assert!(ByteSize::parse("12 parsecs").is_err());
        assert!(ByteSize::parse("MiB").is_err());
        assert!(ByteSize::parse("99999999999999999999").is_err());
    }

    #[test]
    fn json_accepts_int_or_string() {
        let a: ByteSize = serde_json::from_str("1048576").unwrap();
        let b: ByteSize = serde_json::from_str("\"1MiB\"").unwrap();
        assert_eq!(a, b);
        assert_eq!(serde_json::to_string(&a).unwrap(), "1048576");
        assert_eq!(a.to_string(), "1MiB");
        assert!(serde_json::from_str::<ByteSize>("true").is_err());
    }
}
