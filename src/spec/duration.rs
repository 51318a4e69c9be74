//! Durations as people write them in specs (`90s`, `15m`, `2h`, or a bare
//! number of seconds), normalised to whole seconds.

use std::fmt;

/// A duration in whole seconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Seconds(pub u64);

impl Seconds {
    pub fn parse(text: &str) -> Result<Seconds, String> {
        let text = text.trim();
        let split = text
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(text.len());
        let (digits, unit) = text.split_at(split);
        let value: u64 = digits.parse().map_err(|_| {
            format!("`{text}` is not a duration: write a whole number with s, m, h or d, such as 90s or 15m")
        })?;
        let factor = match unit {
            "" | "s" => 1,
            "m" => 60,
            "h" => 3600,
            "d" => 86400,
            _ => {
                return Err(format!(
                    "`{text}` has unit `{unit}`: use s, m, h or d, such as 90s or 15m"
                ))
            }
        };
        value
            .checked_mul(factor)
            .filter(|s| *s <= MAX_SECONDS)
            .map(Seconds)
            .ok_or_else(|| format!("`{text}` is longer than the 365 days poolc accepts"))
    }

    /// The shortest exact rendering: `2h`, `15m`, `90s`. Used in HAProxy
    /// config, PromQL ranges and Karpenter durations, which all read it.
    pub fn compact(self) -> String {
        let s = self.0;
        if s == 0 {
            "0s".to_string()
        } else if s.is_multiple_of(3600) {
            format!("{}h", s / 3600)
        } else if s.is_multiple_of(60) {
            format!("{}m", s / 60)
        } else {
            format!("{s}s")
        }
    }
}

/// A year: longer durations are typos, and the bound keeps every product of
/// durations far from overflow.
const MAX_SECONDS: u64 = 365 * 86400;

impl fmt::Display for Seconds {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.compact())
    }
}

impl<'de> serde::Deserialize<'de> for Seconds {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl serde::de::Visitor<'_> for V {
            type Value = Seconds;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a duration such as 90s, 15m or 2h")
            }
            fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<Seconds, E> {
                Seconds::parse(&v.to_string()).map_err(E::custom)
            }
            fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<Seconds, E> {
                Err(E::custom(format!(
                    "{v} is negative: a duration must be 0 or more"
                )))
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Seconds, E> {
                Seconds::parse(v).map_err(E::custom)
            }
        }
        d.deserialize_any(V)
    }
}

impl schemars::JsonSchema for Seconds {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Duration".into()
    }

    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "description": "A duration: whole seconds, or a number with s, m, h or d (90s, 15m, 2h).",
            "anyOf": [
                {"type": "integer", "minimum": 0},
                {"type": "string", "pattern": "^[0-9]+[smhd]?$"}
            ]
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_units_and_renders_compactly() {
        assert_eq!(Seconds::parse("120m").unwrap(), Seconds(7200));
        assert_eq!(Seconds::parse("90").unwrap(), Seconds(90));
        assert_eq!(Seconds(7200).compact(), "2h");
        assert_eq!(Seconds(900).compact(), "15m");
        assert_eq!(Seconds(90).compact(), "90s");
        assert!(Seconds::parse("5 min").is_err());
        assert!(Seconds::parse("99999999999999999999d").is_err());
        assert!(Seconds::parse("400d").is_err());
    }
}
