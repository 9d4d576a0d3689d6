//! The value types the section structs are made of: LiteLLM's lenient scalars (numbers and
//! switches that may be quoted strings, strings that may be numbers) and the bounded numbers
//! every duration, size, count and price goes through, each with the message a person reads.
//!
//! Scalars are read through `Value` so that a wrong type gets today's plain message (`expected a
//! number, got "ten"`) rather than serde's; lists and maps are read element by element, so an
//! error inside one names its index or key.

use serde::de::{self, Deserialize, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_yaml_ng::Value;
use std::fmt;

/// The longest time any setting can name, in seconds (a year): timeouts, cooldowns, TTLs and
/// intervals all become deadlines, and a deadline must fit the clock.
pub const MAX_SECONDS: f64 = 365.0 * 86_400.0;

/// The largest `max_request_size_mb`: a request body is held in memory whole.
pub const MAX_REQUEST_SIZE_MB: f64 = 4096.0;

/// The largest `client_read_buffer_kb`: every open connection may hold one.
pub const MAX_READ_BUFFER_KB: f64 = 1024.0;

/// The largest count a setting can name (retries, fails, list sizes).
pub(crate) const MAX_COUNT: f64 = 1_000_000.0;

/// A finite number, accepting numeric strings (LiteLLM configs often quote numbers); `.nan`,
/// `.inf` and their quoted spellings are refused, so every number read can be bounded.
pub(crate) fn number(v: &Value) -> Result<Option<f64>, String> {
    let x = match v {
        Value::Null => return Ok(None),
        Value::Number(n) => n.as_f64(),
        Value::String(s) => Some(s.trim().parse::<f64>().map_err(|_| format!("expected a number, got \"{s}\""))?),
        _ => return Err("expected a number".into()),
    };
    match x {
        Some(x) if !x.is_finite() => Err("expected a finite number, not NaN or infinity".into()),
        other => Ok(other),
    }
}

/// A switch: YAML's booleans, or the strings LiteLLM's env-style settings use.
pub(crate) fn boolean(v: &Value) -> Result<Option<bool>, String> {
    match v {
        Value::Null => Ok(None),
        Value::Bool(b) => Ok(Some(*b)),
        Value::String(s) => match s.to_ascii_lowercase().as_str() {
            "true" | "yes" | "1" => Ok(Some(true)),
            "false" | "no" | "0" => Ok(Some(false)),
            _ => Err(format!("expected true or false, got \"{s}\"")),
        },
        _ => Err("expected true or false".into()),
    }
}

/// A string; a number is taken as its text (`api_version: 2024` is a version).
pub(crate) fn string(v: &Value) -> Result<Option<String>, String> {
    match v {
        Value::Null => Ok(None),
        Value::String(s) => Ok(Some(s.clone())),
        Value::Number(n) => Ok(Some(n.to_string())),
        _ => Err("expected a string".into()),
    }
}

/// Reads a scalar through `Value` and converts it, with the converter's message on failure.
fn scalar<'de, D: Deserializer<'de>, T>(
    d: D,
    convert: impl FnOnce(&Value) -> Result<Option<T>, String>,
    null: &str,
) -> Result<T, D::Error> {
    let v = Value::deserialize(d)?;
    convert(&v).map_err(de::Error::custom)?.ok_or_else(|| de::Error::custom(null))
}

/// A finite number (see [`number`]).
pub(crate) struct Num(pub f64);

impl<'de> Deserialize<'de> for Num {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        scalar(d, number, "expected a number").map(Num)
    }
}

/// A switch (see [`boolean`]).
pub(crate) struct Flag(pub bool);

impl<'de> Deserialize<'de> for Flag {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        scalar(d, boolean, "expected true or false").map(Flag)
    }
}

/// A string (see [`string`]).
pub(crate) struct Text(pub String);

impl<'de> Deserialize<'de> for Text {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        scalar(d, string, "expected a string").map(Text)
    }
}

/// A number checked against its bound before it becomes what the setting means.
macro_rules! bounded {
    ($(#[$doc:meta])* $name:ident($out:ty): |$x:ident| $ok:expr => $make:expr, $msg:expr) => {
        $(#[$doc])*
        pub(crate) struct $name(pub $out);

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let $x = Num::deserialize(d)?.0;
                if $ok {
                    Ok($name($make))
                } else {
                    Err(de::Error::custom($msg))
                }
            }
        }
    };
}

bounded!(
    /// A positive number of seconds, at most [`MAX_SECONDS`].
    Positive(f64): |x| x > 0.0 && x <= MAX_SECONDS => x,
    format!("must be a positive number of seconds, at most {MAX_SECONDS} (a year)")
);

bounded!(
    /// A duration from 0 to [`MAX_SECONDS`].
    Seconds(std::time::Duration): |x| (0.0..=MAX_SECONDS).contains(&x) => std::time::Duration::from_secs_f64(x),
    format!("expected a number of seconds from 0 to {MAX_SECONDS} (a year)")
);

bounded!(
    /// A whole number from 0 to [`MAX_COUNT`].
    Count(u32): |x| (0.0..=MAX_COUNT).contains(&x) && x.fract() == 0.0 => x as u32,
    format!("expected a whole number from 0 to {MAX_COUNT}")
);

bounded!(
    /// A whole number from 1 to [`MAX_COUNT`].
    PositiveCount(u32): |x| (1.0..=MAX_COUNT).contains(&x) && x.fract() == 0.0 => x as u32,
    format!("must be a whole number from 1 to {MAX_COUNT}")
);

bounded!(
    /// A cap on requests in flight: a whole number, 1 or more.
    InFlightCap(u64): |x| x >= 1.0 && x.fract() == 0.0 && x <= u32::MAX as f64 => x as u64,
    "must be a whole number of requests, 1 or more (leave it out for no cap)"
);

bounded!(
    /// `max_request_size_mb`, as bytes.
    Megabytes(usize): |x| x > 0.0 && x <= MAX_REQUEST_SIZE_MB => (x * 1024.0 * 1024.0) as usize,
    format!("must be a positive number of megabytes, at most {MAX_REQUEST_SIZE_MB}")
);

bounded!(
    /// `client_read_buffer_kb`: kept per open connection, so a size, not a time.
    Kibibytes(f64): |x| x > 0.0 && x <= MAX_READ_BUFFER_KB => x,
    format!("must be a positive number of KiB, at most {MAX_READ_BUFFER_KB}")
);

bounded!(
    /// The proxy's budget in USD.
    Usd(f64): |x| x >= 0.0 => x,
    "must be a number of USD, 0 or more (0: no proxy-wide budget)"
);

/// A number from 0 to `MAX`, naming the value it got (deployment settings).
pub(crate) struct UpTo<const MAX: u64>(pub f64);

impl<'de, const MAX: u64> Deserialize<'de> for UpTo<MAX> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let x = Num::deserialize(d)?.0;
        let max = MAX as f64;
        if (0.0..=max).contains(&x) {
            Ok(UpTo(x))
        } else {
            Err(de::Error::custom(format!("must be a number from 0 to {max}, got {x}")))
        }
    }
}

/// A number from 0 to `MAX` (sluice's own settings).
pub(crate) struct AtMost<const MAX: u64>(pub f64);

impl<'de, const MAX: u64> Deserialize<'de> for AtMost<MAX> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let x = Num::deserialize(d)?.0;
        let max = MAX as f64;
        if (0.0..=max).contains(&x) {
            Ok(AtMost(x))
        } else {
            Err(de::Error::custom(format!("must be a number from 0 to {max}")))
        }
    }
}

/// Refuses every scalar shape a visitor does not take, with one message.
macro_rules! refuse_scalars {
    ($msg:expr) => {
        fn visit_bool<E: de::Error>(self, _: bool) -> Result<Self::Value, E> {
            Err(E::custom($msg))
        }
        fn visit_i64<E: de::Error>(self, _: i64) -> Result<Self::Value, E> {
            Err(E::custom($msg))
        }
        fn visit_u64<E: de::Error>(self, _: u64) -> Result<Self::Value, E> {
            Err(E::custom($msg))
        }
        fn visit_f64<E: de::Error>(self, _: f64) -> Result<Self::Value, E> {
            Err(E::custom($msg))
        }
        fn visit_enum<A: de::EnumAccess<'de>>(self, _: A) -> Result<Self::Value, A::Error> {
            Err(de::Error::custom($msg))
        }
    };
}
pub(crate) use refuse_scalars;

/// A mapping key as text (YAML allows non-string keys).
pub(crate) struct Key(pub String);

impl<'de> Deserialize<'de> for Key {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Ok(Key(super::yaml::key_str(&Value::deserialize(d)?)))
    }
}

/// Model group names: a list, one name, or nothing.
pub(crate) struct Names(pub Vec<String>);

impl<'de> Deserialize<'de> for Names {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        const WHAT: &str = "expected a list of model group names";
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Names;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a list of model group names")
            }
            refuse_scalars!(WHAT);
            fn visit_unit<E: de::Error>(self) -> Result<Names, E> {
                Ok(Names(Vec::new()))
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<Names, E> {
                Ok(Names(vec![s.to_string()]))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Names, A::Error> {
                let mut out = Vec::new();
                while let Some(GroupName(name)) = seq.next_element()? {
                    out.push(name);
                }
                Ok(Names(out))
            }
            fn visit_map<A: MapAccess<'de>>(self, _: A) -> Result<Names, A::Error> {
                Err(de::Error::custom(WHAT))
            }
        }
        d.deserialize_any(V)
    }
}

struct GroupName(String);

impl<'de> Deserialize<'de> for GroupName {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        scalar(d, string, "expected a model group name").map(GroupName)
    }
}

/// LiteLLM's fallback shape: `[{"gpt-4": ["gpt-3.5", "claude"]}, ...]` (a plain mapping works
/// too): each group with the groups it falls back to, in order.
pub(crate) struct FallbackList(pub Vec<(String, Vec<String>)>);

impl<'de> Deserialize<'de> for FallbackList {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        const WHAT: &str = "expected a list like [{\"gpt-4\": [\"gpt-3.5-turbo\"]}]";
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = FallbackList;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str(WHAT)
            }
            refuse_scalars!(WHAT);
            fn visit_str<E: de::Error>(self, _: &str) -> Result<FallbackList, E> {
                Err(E::custom(WHAT))
            }
            fn visit_unit<E: de::Error>(self) -> Result<FallbackList, E> {
                Ok(FallbackList(Vec::new()))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<FallbackList, A::Error> {
                let mut out = Vec::new();
                while let Some(GroupTargets(more)) = seq.next_element()? {
                    out.extend(more);
                }
                Ok(FallbackList(out))
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<FallbackList, A::Error> {
                group_targets(map).map(FallbackList)
            }
        }
        d.deserialize_any(V)
    }
}

/// One `{group: [targets]}` mapping of a fallback list.
struct GroupTargets(Vec<(String, Vec<String>)>);

impl<'de> Deserialize<'de> for GroupTargets {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = GroupTargets;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str(MAPPING)
            }
            refuse_scalars!(MAPPING);
            fn visit_str<E: de::Error>(self, _: &str) -> Result<GroupTargets, E> {
                Err(E::custom(MAPPING))
            }
            fn visit_unit<E: de::Error>(self) -> Result<GroupTargets, E> {
                Err(E::custom(MAPPING))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, _: A) -> Result<GroupTargets, A::Error> {
                Err(de::Error::custom(MAPPING))
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<GroupTargets, A::Error> {
                group_targets(map).map(GroupTargets)
            }
        }
        d.deserialize_any(V)
    }
}

fn group_targets<'de, A: MapAccess<'de>>(mut map: A) -> Result<Vec<(String, Vec<String>)>, A::Error> {
    let mut out = Vec::new();
    while let Some(Key(group)) = map.next_key()? {
        let Names(targets) = map.next_value()?;
        out.push((group, targets));
    }
    Ok(out)
}

/// What a setting that must be a mapping says when it is not.
pub(crate) const MAPPING: &str = "expected a mapping of key: value";

/// An item of a list of strings, checked as it is read.
pub(crate) trait Item: Sized {
    /// What the list holds, for messages: "route paths, e.g. [...]".
    const WHAT: &'static str;
    fn check(s: String) -> Result<Self, String>;
}

/// A list of strings, each checked by `T` (`allowed_routes`, `allowed_ips`).
pub(crate) struct Listed<T>(pub Vec<T>);

impl<'de, T: Item> Deserialize<'de> for Listed<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<T>(std::marker::PhantomData<T>);
        impl<'de, T: Item> Visitor<'de> for V<T> {
            type Value = Listed<T>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                write!(f, "a list of {}", T::WHAT)
            }
            refuse_scalars!(format!("expected a list of {}", T::WHAT));
            fn visit_str<E: de::Error>(self, _: &str) -> Result<Listed<T>, E> {
                Err(E::custom(format!("expected a list of {}", T::WHAT)))
            }
            fn visit_unit<E: de::Error>(self) -> Result<Listed<T>, E> {
                Err(E::custom(format!("expected a list of {}", T::WHAT)))
            }
            fn visit_map<A: MapAccess<'de>>(self, _: A) -> Result<Listed<T>, A::Error> {
                Err(de::Error::custom(format!("expected a list of {}", T::WHAT)))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Listed<T>, A::Error> {
                let mut out = Vec::new();
                while let Some(ListItem(item)) = seq.next_element::<ListItem<T>>()? {
                    out.push(item);
                }
                Ok(Listed(out))
            }
        }
        d.deserialize_any(V(std::marker::PhantomData))
    }
}

struct ListItem<T>(T);

impl<'de, T: Item> Deserialize<'de> for ListItem<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        match Value::deserialize(d)? {
            Value::String(s) => T::check(s).map(ListItem).map_err(de::Error::custom),
            _ => Err(de::Error::custom(format!("expected a string in this list of {}", T::WHAT))),
        }
    }
}

/// Callback names: a list or one name. Items that are not names are skipped, as LiteLLM skips
/// them.
pub(crate) struct Callbacks(pub Vec<String>);

impl<'de> Deserialize<'de> for Callbacks {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        match Value::deserialize(d)? {
            Value::Sequence(items) => Ok(Callbacks(items.iter().filter_map(|i| string(i).ok().flatten()).collect())),
            Value::String(one) => Ok(Callbacks(vec![one])),
            Value::Null => Ok(Callbacks(Vec::new())),
            _ => Err(de::Error::custom("expected a list of callback names, e.g. [\"prometheus\"]")),
        }
    }
}

/// `retry_policy` / `allowed_fails_policy`: `{RateLimitErrorRetries: 3, ...}`; `S` names the
/// suffix every key ends with.
pub(crate) struct PerKind<S>(pub sluice_router::PerKind, std::marker::PhantomData<S>);

/// The suffix of a per-kind policy's keys.
pub(crate) trait Suffix {
    const SUFFIX: &'static str;
}

pub(crate) struct Retries;
impl Suffix for Retries {
    const SUFFIX: &'static str = "Retries";
}

pub(crate) struct AllowedFails;
impl Suffix for AllowedFails {
    const SUFFIX: &'static str = "AllowedFails";
}

impl<'de, S: Suffix> Deserialize<'de> for PerKind<S> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<S>(std::marker::PhantomData<S>);
        impl<'de, S: Suffix> Visitor<'de> for V<S> {
            type Value = PerKind<S>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str(MAPPING)
            }
            refuse_scalars!(MAPPING);
            fn visit_str<E: de::Error>(self, _: &str) -> Result<Self::Value, E> {
                Err(E::custom(MAPPING))
            }
            fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
                Err(E::custom(MAPPING))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, _: A) -> Result<Self::Value, A::Error> {
                Err(de::Error::custom(MAPPING))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut out = sluice_router::PerKind::default();
                while let Some(Key(key)) = map.next_key()? {
                    // Checked as the value is read, so that the error names the key's path.
                    if let Some((kind, n)) = map.next_value_seed(KindCount::<S>(&key, std::marker::PhantomData))? {
                        out.0.insert(kind, n);
                    }
                }
                Ok(PerKind(out, std::marker::PhantomData))
            }
        }
        d.deserialize_any(V(std::marker::PhantomData))
    }
}

struct KindCount<'a, S>(&'a str, std::marker::PhantomData<S>);

impl<'de, S: Suffix> DeserializeSeed<'de> for KindCount<'_, S> {
    type Value = Option<(sluice_router::ErrorKind, u32)>;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        let key = self.0;
        let suffix = S::SUFFIX;
        let kind = sluice_router::PerKind::kind_for_field(key).filter(|_| key.ends_with(suffix)).ok_or_else(|| {
            de::Error::custom(format!("unknown field; use e.g. RateLimitError{suffix}, TimeoutError{suffix}, InternalServerError{suffix}, AuthenticationError{suffix}, BadRequestError{suffix}, ContentPolicyViolationError{suffix}"))
        })?;
        Ok(Option::<Count>::deserialize(d)?.map(|Count(n)| (kind, n)))
    }
}
