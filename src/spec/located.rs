//! A spec value together with where it was written, so validation errors can
//! name the line. It wraps the YAML library's `Spanned` to also describe
//! itself in the spec's JSON Schema as the plain value it holds.

use std::borrow::Cow;
use std::ops::Deref;

use serde::{Deserialize, Deserializer};
use serde_saphyr::Spanned;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Located<T>(pub Spanned<T>);

impl<T> Deref for Located<T> {
    type Target = Spanned<T>;

    fn deref(&self) -> &Spanned<T> {
        &self.0
    }
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Located<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Spanned::deserialize(d).map(Located)
    }
}

impl<T: schemars::JsonSchema> schemars::JsonSchema for Located<T> {
    fn inline_schema() -> bool {
        true
    }

    fn schema_name() -> Cow<'static, str> {
        T::schema_name()
    }

    fn json_schema(generator: &mut schemars::SchemaGenerator) -> schemars::Schema {
        generator.subschema_for::<T>()
    }
}
