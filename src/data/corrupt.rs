//! Corruptions: what a denoising autoencoder learns to undo.
//!
//! A denoising autoencoder sees a damaged image and is asked for the clean one. It cannot
//! simply copy its input any more, so it has to learn what digits (or clothes) look like. The
//! damage is described by a small spec, the same for every command:
//!
//! | spec | what it does to each image |
//! |---|---|
//! | `gaussian:F` | adds F·N(0, 1) to every pixel, then clamps to [0, 1] (the reports use F = 0.2, 0.3, 0.4, 1.0) |
//! | `occlusion:S` | sets an S×S square at a random place (wholly inside the image) to 0 |
//! | `occlusion:S@R,C` | the same square with its top-left corner at row R, column C |
//! | `salt-pepper:P` | sets each pixel, with probability P, to 0 or 1 (equally likely) |
//! | `A+B` | applies A, then B: `gaussian:0.3+occlusion:10` |
//!
//! Corruptions draw from a seeded generator passed in by the caller, so the same seed damages
//! the same images the same way (training derives one per batch from the run's seed, epoch and
//! batch, which is what lets a resumed run replay exactly).

use crate::error::{Error, Result};
use rand::Rng;
use rand_distr::{Distribution, StandardNormal};
use std::fmt;
use std::str::FromStr;

/// One kind of damage.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Damage {
    /// x + factor·N(0, 1), clamped to [0, 1].
    Gaussian {
        /// The noise's standard deviation, in pixel units (pixels are in [0, 1]).
        factor: f32,
    },
    /// A size×size square set to 0.
    Occlusion {
        /// Side of the square, in pixels.
        size: usize,
        /// Top-left corner (row, column); random for every image when `None`.
        at: Option<(usize, usize)>,
    },
    /// Each pixel, with probability `fraction`, set to 0 or 1.
    SaltPepper {
        /// Probability that a pixel is hit.
        fraction: f32,
    },
}

/// A corruption: one or more kinds of damage applied in order.
#[derive(Clone, Debug, PartialEq)]
pub struct Corruption {
    /// The steps, in order.
    pub steps: Vec<Damage>,
}

impl Corruption {
    /// Damages a batch in place: `images` holds images of `h`×`w` pixels (one channel) in
    /// [0, 1], one after another.
    ///
    /// # Errors
    /// [`Error::Config`] when an occlusion square does not fit the images.
    pub fn apply(&self, images: &mut [f32], h: usize, w: usize, rng: &mut impl Rng) -> Result<()> {
        self.check_fits(h, w)?;
        for image in images.chunks_exact_mut(h * w) {
            for step in &self.steps {
                step.apply(image, h, w, rng);
            }
        }
        Ok(())
    }

    /// Checks that every occlusion fits an `h`×`w` image.
    ///
    /// # Errors
    /// [`Error::Config`] naming the square and the image size.
    pub fn check_fits(&self, h: usize, w: usize) -> Result<()> {
        for step in &self.steps {
            if let Damage::Occlusion { size, at } = *step {
                let (r, c) = at.unwrap_or((0, 0));
                if r + size > h || c + size > w {
                    return Err(Error::config(
                        "corruption",
                        format!("{step} does not fit a {h}×{w} image"),
                    ));
                }
            }
        }
        Ok(())
    }
}

impl Damage {
    fn apply(&self, image: &mut [f32], h: usize, w: usize, rng: &mut impl Rng) {
        match *self {
            Damage::Gaussian { factor } => {
                for p in image.iter_mut() {
                    let noise: f32 = StandardNormal.sample(rng);
                    *p = (*p + factor * noise).clamp(0.0, 1.0);
                }
            }
            Damage::Occlusion { size, at } => {
                let (r, c) = at.unwrap_or_else(|| {
                    (
                        rng.random_range(0..=h - size),
                        rng.random_range(0..=w - size),
                    )
                });
                for row in image.chunks_exact_mut(w).skip(r).take(size) {
                    row[c..c + size].fill(0.0);
                }
            }
            Damage::SaltPepper { fraction } => {
                for p in image.iter_mut() {
                    if rng.random::<f32>() < fraction {
                        *p = if rng.random::<bool>() { 1.0 } else { 0.0 };
                    }
                }
            }
        }
    }
}

impl fmt::Display for Damage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Damage::Gaussian { factor } => write!(f, "gaussian:{factor}"),
            Damage::Occlusion { size, at: None } => write!(f, "occlusion:{size}"),
            Damage::Occlusion {
                size,
                at: Some((r, c)),
            } => write!(f, "occlusion:{size}@{r},{c}"),
            Damage::SaltPepper { fraction } => write!(f, "salt-pepper:{fraction}"),
        }
    }
}

impl fmt::Display for Corruption {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let parts: Vec<String> = self.steps.iter().map(Damage::to_string).collect();
        f.write_str(&parts.join("+"))
    }
}

/// What a spec should look like, for error messages.
const SYNTAX: &str =
    "gaussian:F, occlusion:S, occlusion:S@R,C or salt-pepper:P, joined by + (e.g. gaussian:0.3+occlusion:10)";

impl FromStr for Damage {
    type Err = Error;

    fn from_str(text: &str) -> Result<Self> {
        let bad = |why: &str| Error::config("corruption", format!("{text:?}: {why} ({SYNTAX})"));
        let (kind, value) = text.trim().split_once(':').ok_or_else(|| bad("no ':'"))?;
        let number = |v: &str| v.trim().parse::<f32>().ok().filter(|f| f.is_finite());
        match kind.trim() {
            "gaussian" => match number(value) {
                Some(factor) if factor >= 0.0 => Ok(Damage::Gaussian { factor }),
                _ => Err(bad("the noise factor must be a number ≥ 0")),
            },
            "salt-pepper" | "salt_pepper" => match number(value) {
                Some(fraction) if (0.0..=1.0).contains(&fraction) => {
                    Ok(Damage::SaltPepper { fraction })
                }
                _ => Err(bad("the fraction must be a number in [0, 1]")),
            },
            "occlusion" => {
                let (size, at) = match value.split_once('@') {
                    Some((size, at)) => (size, Some(at)),
                    None => (value, None),
                };
                let size: usize = size
                    .trim()
                    .parse()
                    .ok()
                    .filter(|&s| s > 0)
                    .ok_or_else(|| bad("the square's side must be a whole number ≥ 1"))?;
                let at = match at {
                    None => None,
                    Some(at) => {
                        let (r, c) = at
                            .split_once(',')
                            .and_then(|(r, c)| {
                                Some((r.trim().parse().ok()?, c.trim().parse().ok()?))
                            })
                            .ok_or_else(|| {
                                bad("the place must be ROW,COLUMN, e.g. occlusion:10@9,9")
                            })?;
                        Some((r, c))
                    }
                };
                Ok(Damage::Occlusion { size, at })
            }
            other => Err(bad(&format!("unknown kind {other:?}"))),
        }
    }
}

impl FromStr for Corruption {
    type Err = Error;

    fn from_str(text: &str) -> Result<Self> {
        if text.trim().is_empty() {
            return Err(Error::config(
                "corruption",
                format!("empty spec ({SYNTAX})"),
            ));
        }
        if text.split('+').any(|part| part.trim().is_empty()) {
            return Err(Error::config(
                "corruption",
                format!("{text:?} has an empty part between its '+' signs ({SYNTAX})"),
            ));
        }
        let steps = text.split('+').map(str::parse).collect::<Result<_>>()?;
        Ok(Corruption { steps })
    }
}

impl serde::Serialize for Corruption {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for Corruption {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        String::deserialize(d)?
            .parse()
            .map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::rngs::StdRng;
    use rand::SeedableRng;

    #[test]
    fn specs_round_trip_and_bad_ones_say_what_is_expected() {
        for text in [
            "gaussian:0.3",
            "occlusion:10",
            "occlusion:10@9,4",
            "salt-pepper:0.05",
            "gaussian:0.3+occlusion:10",
        ] {
            let c: Corruption = text.parse().unwrap();
            assert_eq!(c.to_string(), text);
        }
        for bad in [
            "",
            "gauss:0.3",
            "gaussian",
            "gaussian:-1",
            "occlusion:0",
            "occlusion:5@3",
            "salt-pepper:2",
            "+gaussian:0.3",
            "gaussian:0.3++occlusion:4",
        ] {
            let e = bad.parse::<Corruption>().unwrap_err().to_string();
            assert!(e.contains("gaussian:F"), "{bad}: {e}");
        }
    }

    #[test]
    fn an_occlusion_that_does_not_fit_is_refused() {
        let c: Corruption = "occlusion:10@20,20".parse().unwrap();
        let mut img = vec![0.5; 28 * 28];
        let e = c
            .apply(&mut img, 28, 28, &mut StdRng::seed_from_u64(0))
            .unwrap_err();
        assert!(e.to_string().contains("does not fit a 28×28 image"), "{e}");
    }
}
