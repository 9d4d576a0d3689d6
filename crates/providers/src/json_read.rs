//! Pieces for reading an upstream's JSON answer straight from its bytes, keeping only the
//! members a translation reads: the answer's `serde_json::Value` tree would be built only to be
//! taken apart. A reader must accept and refuse exactly what the tree's reader does, so that the
//! translation of any body is the tree path's: [`Skip`] checks a value the tree would hold and
//! drops it (strings decoded, numbers parsed, nesting counted by the same deserializer), [`Name`]
//! decodes a member name as the tree does, and [`other_shapes!`] gives a reader the visits of
//! the shapes it does not want (each taken, checked, and counted as absent). [`object_reader!`]
//! writes a reader of one object's members, and [`Items`] reads an array of such objects.

use serde::de::{Deserialize, Deserializer, SeqAccess, Visitor};
use std::borrow::Cow;
use std::fmt;
use std::marker::PhantomData;

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

/// A reader of an object's members: `$start` when the value is an object, each member then read
/// by `$member` (given the reader's state, the member's name and the map); any other value reads
/// as `$absent`. `$start` defaults to `$absent`.
macro_rules! object_reader {
    ($reader:ty, $what:literal, $absent:expr, |$out:ident, $name:ident, $map:ident| $member:expr) => {
        $crate::json_read::object_reader!($reader, $what, $absent, $absent, |$out, $name, $map| $member);
    };
    ($reader:ty, $what:literal, $absent:expr, $start:expr, |$out:ident, $name:ident, $map:ident| $member:expr) => {
        impl<'de> serde::de::Deserialize<'de> for $reader {
            fn deserialize<D: serde::de::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                struct V;
                impl<'de> serde::de::Visitor<'de> for V {
                    type Value = $reader;
                    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                        f.write_str($what)
                    }
                    $crate::json_read::other_shapes!($absent, seq);
                    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut $map: A) -> Result<Self::Value, A::Error> {
                        let mut $out = $start;
                        while let Some($name) = $map.next_key::<$crate::json_read::Name<'de>>()? {
                            $member;
                        }
                        Ok($out)
                    }
                }
                d.deserialize_any(V)
            }
        }
    };
}
pub(crate) use object_reader;

/// A value read as a `T` when it has the shape a `T` is read from, else as nothing: what an
/// array's items are read as by [`Items`] (readers for it are written with [`object_reader!`]).
pub(crate) struct Maybe<T>(pub Option<T>);

/// An array's items that read as something, in order; `None` when the value is not an array.
pub(crate) struct Items<T>(pub Option<Vec<T>>);

impl<'de, T> Deserialize<'de> for Items<T>
where
    Maybe<T>: Deserialize<'de>,
{
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<T>(PhantomData<T>);
        impl<'de, T> Visitor<'de> for V<T>
        where
            Maybe<T>: Deserialize<'de>,
        {
            type Value = Items<T>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an array")
            }
            other_shapes!(Items(None), map);
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
                let mut out = Vec::with_capacity(seq.size_hint().unwrap_or(1));
                while let Some(Maybe(item)) = seq.next_element::<Maybe<T>>()? {
                    out.extend(item);
                }
                Ok(Items(Some(out)))
            }
        }
        d.deserialize_any(V(PhantomData))
    }
}

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
