//! The pieces the documents are made of: objects written field by field as they are
//! serialized (no tree of values is built first), sequences written from iterators.

use std::borrow::Cow;
use std::ffi::OsStr;

use serde::ser::{Serialize, Serializer};

/// Declares `struct $name<'a>(&'a $t)`, serialized as a JSON object of the `key: value`
/// pairs given (each value an expression over `$v`, the record), in that order.
macro_rules! object {
    ($(#[$doc:meta])* $name:ident($t:ty) |$v:ident| { $($key:literal : $val:expr),* $(,)? }) => {
        $(#[$doc])*
        pub(crate) struct $name<'a>(pub(crate) &'a $t);

        impl serde::Serialize for $name<'_> {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                use serde::ser::SerializeMap;
                let $v = self.0;
                let mut m = s.serialize_map(None)?;
                $( m.serialize_entry($key, &$val)?; )*
                m.end()
            }
        }
    };
}
pub(crate) use object;

/// A sequence written from `items` mapped through `each`.
pub(crate) struct Each<'a, T, W: Serialize>(pub(crate) &'a [T], pub(crate) fn(&'a T) -> W);

impl<'a, T, W: Serialize> Serialize for Each<'a, T, W> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(self.0.iter().map(self.1))
    }
}

/// A Linux string (maybe not UTF-8) as JSON text: invalid bytes as U+FFFD.
pub(crate) fn text(o: &OsStr) -> Cow<'_, str> {
    o.to_string_lossy()
}
