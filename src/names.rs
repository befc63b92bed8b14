//! Names a user types: activations, losses, optimisers, initialisations, datasets.
//!
//! Each such choice is an enum with exactly one list of its names ([`Named::ALL`]), and that
//! list is what everything else reads: parsing a command-line value or a configuration field,
//! printing it back, the `--help` text, the error for a typo, and the README's tables (a test
//! compares them). A new variant therefore appears everywhere at once, and nowhere is a name
//! spelled twice.
//!
//! Enums defined in this crate get all of it from [`named_enum!`](crate::named_enum); the kernels' `Activation`
//! implements [`Named`] below.

use crate::error::{Error, Result};
use kernels::elementwise::Activation;

/// A choice made by name.
pub trait Named: Copy + PartialEq + std::fmt::Debug + 'static {
    /// What the choice is, for messages: "activation", "loss".
    const WHAT: &'static str;
    /// Every value, in the order help texts list them.
    const ALL: &'static [Self];
    /// The name configs and the command line use.
    fn name(self) -> &'static str;
    /// One line saying what it is, for help texts and the README.
    fn describe(self) -> &'static str;
}

/// The names of every value of `T`, comma-separated: "mse, bce".
pub fn list<T: Named>() -> String {
    T::ALL
        .iter()
        .map(|v| v.name())
        .collect::<Vec<_>>()
        .join(", ")
}

/// Parses one of `T`'s names (`-` and `_` alike).
///
/// # Errors
/// [`Error::Config`] naming the unknown text and listing the known names.
pub fn parse<T: Named>(text: &str) -> Result<T> {
    let wanted = text.trim().replace('-', "_");
    T::ALL
        .iter()
        .copied()
        .find(|v| v.name().replace('-', "_") == wanted)
        .ok_or_else(|| Error::config(T::WHAT, format!("unknown {text:?} ({})", list::<T>())))
}

/// Declares an enum of named choices with [`Named`], `Display`, `FromStr` and serde (as its
/// name), from one table of variant, name and description.
#[macro_export]
macro_rules! named_enum {
    (
        $(#[$meta:meta])*
        $vis:vis enum $name:ident : $what:literal {
            $( $(#[$vmeta:meta])* $variant:ident = $text:literal, $describe:literal ),+ $(,)?
        }
    ) => {
        $(#[$meta])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        $vis enum $name {
            $( $(#[$vmeta])* #[doc = $describe] $variant ),+
        }

        impl $crate::names::Named for $name {
            const WHAT: &'static str = $what;
            const ALL: &'static [Self] = &[$($name::$variant),+];
            fn name(self) -> &'static str {
                match self { $($name::$variant => $text),+ }
            }
            fn describe(self) -> &'static str {
                match self { $($name::$variant => $describe),+ }
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str($crate::names::Named::name(*self))
            }
        }

        impl std::str::FromStr for $name {
            type Err = $crate::Error;
            fn from_str(text: &str) -> $crate::Result<Self> {
                $crate::names::parse(text)
            }
        }

        impl serde::Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
                s.serialize_str($crate::names::Named::name(*self))
            }
        }

        impl<'de> serde::Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
                let text = <String as serde::Deserialize>::deserialize(d)?;
                text.parse().map_err(serde::de::Error::custom)
            }
        }
    };
}

impl Named for Activation {
    const WHAT: &'static str = "activation";
    const ALL: &'static [Self] = &Activation::ALL;
    fn name(self) -> &'static str {
        Activation::name(self)
    }
    fn describe(self) -> &'static str {
        match self {
            Activation::Relu => "max(0, x)",
            Activation::LeakyRelu { .. } => {
                "x, or 0.01·x below zero (leaky_relu:SLOPE for another slope)"
            }
            Activation::Selu => {
                "scaled exponential linear unit, self-normalising with LeCun-normal init"
            }
            Activation::Sigmoid => "1 / (1 + e⁻ˣ), into (0, 1)",
            Activation::Tanh => "hyperbolic tangent, into (−1, 1)",
        }
    }
}

/// Parses an activation name, or `leaky_relu:SLOPE`.
///
/// # Errors
/// [`Error::Config`] naming the text and listing the activations.
pub fn parse_activation(text: &str) -> Result<Activation> {
    text.parse::<Activation>()
        .map_err(|detail| Error::config("activation", detail))
}

/// An activation name, or `none` for no activation.
///
/// # Errors
/// As [`parse_activation`].
pub fn parse_optional_activation(text: &str) -> Result<Option<Activation>> {
    if text.trim() == "none" {
        Ok(None)
    } else {
        parse_activation(text).map(Some)
    }
}

/// Serde for an [`Activation`] field: its name as a string (`"selu"`, `"leaky_relu:0.2"`).
pub mod activation_serde {
    use super::Activation;
    use serde::{Deserialize, Deserializer, Serializer};

    /// Writes the name.
    pub fn serialize<S: Serializer>(a: &Activation, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(a)
    }

    /// Reads a name.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Activation, D::Error> {
        String::deserialize(d)?
            .parse()
            .map_err(serde::de::Error::custom)
    }
}

/// Serde for an optional [`Activation`] field: a name, or `null` / `"none"` for none.
pub mod optional_activation_serde {
    use super::Activation;
    use serde::{Deserialize, Deserializer, Serializer};

    /// Writes the name, or `null`.
    pub fn serialize<S: Serializer>(a: &Option<Activation>, s: S) -> Result<S::Ok, S::Error> {
        match a {
            Some(a) => s.collect_str(a),
            None => s.serialize_none(),
        }
    }

    /// Reads a name, `"none"` or `null`.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Activation>, D::Error> {
        match Option::<String>::deserialize(d)? {
            None => Ok(None),
            Some(text) if text.trim() == "none" => Ok(None),
            Some(text) => text.parse().map(Some).map_err(serde::de::Error::custom),
        }
    }
}
