//! Exporter versions as `MAJOR.MINOR[.PATCH]`. Names change in patch
//! releases too (KEDA 2.9.1 fixed a misnamed counter), so the catalog's
//! windows carry the patch of the release that made each change. A version
//! written without a patch means the newest patch of that minor: it sorts
//! after every `MAJOR.MINOR.N`.

use std::cmp::Ordering;
use std::fmt;
use std::hash::{Hash, Hasher};
use std::str::FromStr;

#[derive(Debug, Clone, Copy)]
pub struct Version {
    pub major: u32,
    pub minor: u32,
    /// None: the newest patch of `major.minor`.
    pub patch: Option<u32>,
}

#[derive(Debug, thiserror::Error)]
#[error("`{0}` is not a version: write it as MAJOR.MINOR or MAJOR.MINOR.PATCH, for example \"2.16\" or \"2.9.2\"")]
pub struct VersionError(pub String);

impl Version {
    /// The first release of a minor, `major.minor.0`: the threshold to
    /// compare a deployed version against ("KEDA 2.14 or newer").
    pub const fn new(major: u32, minor: u32) -> Self {
        Version::with_patch(major, minor, 0)
    }

    pub const fn with_patch(major: u32, minor: u32, patch: u32) -> Self {
        Version {
            major,
            minor,
            patch: Some(patch),
        }
    }

    /// The newest patch of a minor, as a user writes `2.16`.
    pub const fn minor_only(major: u32, minor: u32) -> Self {
        Version {
            major,
            minor,
            patch: None,
        }
    }

    fn key(&self) -> (u32, u32, u32) {
        (self.major, self.minor, self.patch.unwrap_or(u32::MAX))
    }
}

impl PartialEq for Version {
    fn eq(&self, other: &Self) -> bool {
        self.key() == other.key()
    }
}

impl Eq for Version {}

impl Hash for Version {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.key().hash(state);
    }
}

impl PartialOrd for Version {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Version {
    fn cmp(&self, other: &Self) -> Ordering {
        self.key().cmp(&other.key())
    }
}

impl FromStr for Version {
    type Err = VersionError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let err = || VersionError(s.to_string());
        let trimmed = s.trim().trim_start_matches('v');
        let number = |p: Option<&str>| -> Result<u32, VersionError> {
            let p = p.ok_or_else(err)?;
            if p.is_empty() || !p.bytes().all(|b| b.is_ascii_digit()) {
                return Err(err());
            }
            p.parse().map_err(|_| err())
        };
        let mut parts = trimmed.split('.');
        let major = number(parts.next())?;
        let minor = number(parts.next())?;
        let patch = match parts.next() {
            Some(p) => Some(number(Some(p))?),
            None => None,
        };
        if parts.next().is_some() {
            return Err(err());
        }
        Ok(Version {
            major,
            minor,
            patch,
        })
    }
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.patch {
            Some(p) => write!(f, "{}.{}.{p}", self.major, self.minor),
            None => write!(f, "{}.{}", self.major, self.minor),
        }
    }
}

impl<'de> serde::Deserialize<'de> for Version {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        // YAML reads `2.16` as a float and `"2.16"` as a string; accept both.
        struct V;
        impl serde::de::Visitor<'_> for V {
            type Value = Version;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a version string such as \"2.16\" or \"2.9.2\"")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Version, E> {
                v.parse().map_err(E::custom)
            }
            fn visit_f64<E: serde::de::Error>(self, v: f64) -> Result<Version, E> {
                // Unquoted `2.10` arrives as 2.1; the catalog rejects versions it
                // does not know, so that mistake cannot pass silently.
                v.to_string().parse().map_err(E::custom)
            }
        }
        d.deserialize_any(V)
    }
}

impl serde::Serialize for Version {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl schemars::JsonSchema for Version {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Version".into()
    }

    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "description": "An exporter version, MAJOR.MINOR or MAJOR.MINOR.PATCH. Without a patch it means the newest patch of that minor. Quote it: \"2.16\".",
            "anyOf": [
                {"type": "string", "pattern": "^v?[0-9]+\\.[0-9]+(\\.[0-9]+)?$"},
                {"type": "number"}
            ]
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_major_minor_and_patch() {
        assert_eq!(
            "2.16".parse::<Version>().unwrap(),
            Version::minor_only(2, 16)
        );
        assert_eq!(
            "v2.16.1".parse::<Version>().unwrap(),
            Version::with_patch(2, 16, 1)
        );
        assert_eq!("v2.16.1".parse::<Version>().unwrap().to_string(), "2.16.1");
        assert_eq!("2.16".parse::<Version>().unwrap().to_string(), "2.16");
        for bad in ["2", "2.x", "1.2.3.4", "2.", "2.+1", "2.16.", ""] {
            assert!(bad.parse::<Version>().is_err(), "{bad}");
        }
    }

    #[test]
    fn a_minor_alone_is_its_newest_patch() {
        let minor = Version::minor_only(2, 9);
        assert!(Version::with_patch(2, 9, 0) < minor);
        assert!(Version::with_patch(2, 9, 1000) < minor);
        assert!(minor < Version::new(2, 10));
        assert!(Version::new(2, 9) < Version::with_patch(2, 9, 1));
    }

    #[test]
    fn orders_numerically() {
        assert!(Version::new(2, 9) < Version::new(2, 14));
    }
}
