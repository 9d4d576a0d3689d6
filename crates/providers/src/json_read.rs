//! Pieces for reading an upstream's JSON answer straight from its bytes, keeping only the
//! members a translation reads: the answer's `serde_json::Value` tree would be built only to be
//! taken apart. A reader must accept and refuse exactly what the tree's reader does, so that the
//! translation of any body is the tree path's: [`Skip`] checks a value the tree would hold and
//! drops it (strings decoded, numbers parsed, nesting counted by the same deserializer), [`Name`]
//! decodes a member name as the tree does, and [`other_shapes!`] gives a reader the visits of
//! the shapes it does not want (each taken, checked, and counted as absent).

use serde::de::{Deserialize, Deserializer, Visitor};
use std::borrow::Cow;
use std::fmt;

/// The visits of a value whose shape is not the one wanted: scalars are taken as they come, and
/// an array or object (those named: `seq`, `map`) is crossed item by item with [`Skip`]; `$out`
/// is the result.
macro_rules! other_shapes {
    ($out:expr, $($skip:ident),*) => {
        fn visit_bool<E>(self, _: bool) -> Result<Self::Value, E> {
            Ok($out)
        }
        fn visit_i64<E>(self, _: i64) -> Result<Self::Value, E> {
            Ok($out)
        }
        fn visit_u64<E>(self, _: u64) -> Result<Self::Value, E> {
            Ok($out)
        }
        fn visit_f64<E>(self, _: f64) -> Result<Self::Value, E> {
            Ok($out)
        }
        fn visit_str<E>(self, _: &str) -> Result<Self::Value, E> {
            Ok($out)
        }
        fn visit_unit<E>(self) -> Result<Self::Value, E> {
            Ok($out)
        }
        $($crate::json_read::other_shapes!(@$skip $out);)*
    };
    (@seq $out:expr) => {
        fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
            while seq.next_element::<$crate::json_read::Skip>()?.is_some() {}
            Ok($out)
        }
    };
    (@map $out:expr) => {
        fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
            while map.next_key::<$crate::json_read::Name<'de>>()?.is_some() {
                map.next_value::<$crate::json_read::Skip>()?;
            }
            Ok($out)
        }
    };
}
pub(crate) use other_shapes;

/// A value read only to be checked as the tree's reader checks it, and dropped.
pub(crate) struct Skip;

impl<'de> Deserialize<'de> for Skip {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Skip;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("any JSON value")
            }
            other_shapes!(Skip, seq, map);
        }
        d.deserialize_any(V)
    }
}

/// A member's name, decoded as the tree decodes it.
pub(crate) struct Name<'a>(pub Cow<'a, str>);

impl<'de> Deserialize<'de> for Name<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Name<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a member name")
            }
            fn visit_borrowed_str<E>(self, s: &'de str) -> Result<Self::Value, E> {
                Ok(Name(Cow::Borrowed(s)))
            }
            fn visit_str<E>(self, s: &str) -> Result<Self::Value, E> {
                Ok(Name(Cow::Owned(s.to_string())))
            }
            fn visit_string<E>(self, s: String) -> Result<Self::Value, E> {
                Ok(Name(Cow::Owned(s)))
            }
        }
        d.deserialize_str(V)
    }
}
