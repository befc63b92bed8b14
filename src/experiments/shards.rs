//! Splitting a search over machines, and putting it back together.
//!
//! A search of N trials can run as several shards: part I of N' runs trials I−1, I−1+N',
//! I−1+2N', … (trial k's settings depend only on the seed and k, so no shard needs another).
//! Each shard's folder records what defines the search it belongs to — the seed, the number
//! of trials, its part, and the starting configuration — in `search.json`, so that merging
//! can refuse shards of different searches and name the trials no shard ran.

use crate::error::{Error, Result};
use crate::fs::write_atomic;
use crate::train::RunConfig;
use serde::{Deserialize, Serialize};
use std::path::Path;

/// Part `part` of `of` (counted from 1, as people say "part 1 of 4").
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Shard {
    /// Which part, 1 ≤ part ≤ of.
    pub part: usize,
    /// How many parts.
    pub of: usize,
}

impl Shard {
    /// The whole search, unsplit.
    pub const WHOLE: Shard = Shard { part: 1, of: 1 };

    /// Reads `I/N`: part I of N, 1 ≤ I ≤ N.
    ///
    /// # Errors
    /// [`Error::Config`] saying how shards are counted.
    pub fn parse(text: &str) -> Result<Shard> {
        let bad = || {
            Error::config(
                "shard",
                format!("{text:?}: give I/N, part I of N with 1 ≤ I ≤ N, e.g. 1/4 … 4/4"),
            )
        };
        let (i, n) = text.split_once('/').ok_or_else(bad)?;
        let (part, of) = (
            i.trim().parse::<usize>().map_err(|_| bad())?,
            n.trim().parse::<usize>().map_err(|_| bad())?,
        );
        if part == 0 || part > of {
            return Err(bad());
        }
        Ok(Shard { part, of })
    }

    /// The shard a Slurm job array gives this job (`sbatch --array=1-4` or `--array=0-3`):
    /// part `SLURM_ARRAY_TASK_ID − SLURM_ARRAY_TASK_MIN + 1` of `SLURM_ARRAY_TASK_COUNT`.
    /// `None` outside a job array. `var` reads the environment (a parameter, for tests).
    ///
    /// # Errors
    /// [`Error::Config`] for variables that are not whole numbers or do not make a part.
    pub fn from_job_array(var: impl Fn(&str) -> Option<String>) -> Result<Option<Shard>> {
        let Some(id) = var("SLURM_ARRAY_TASK_ID") else {
            return Ok(None);
        };
        let number = |name: &str, text: Option<String>| -> Result<usize> {
            let text = text.unwrap_or_default();
            text.trim().parse().map_err(|_| {
                Error::config(
                    "shard",
                    format!("{name}={text:?} is not a whole number (set by a Slurm job array)"),
                )
            })
        };
        let id = number("SLURM_ARRAY_TASK_ID", Some(id))?;
        let min = number("SLURM_ARRAY_TASK_MIN", var("SLURM_ARRAY_TASK_MIN"))?;
        let count = number("SLURM_ARRAY_TASK_COUNT", var("SLURM_ARRAY_TASK_COUNT"))?;
        let part = id.checked_sub(min).map(|k| k + 1).filter(|&p| p <= count);
        match part {
            Some(part) if count > 0 => Ok(Some(Shard { part, of: count })),
            _ => Err(Error::config(
                "shard",
                format!("the Slurm job array gives task {id} from {min} among {count} tasks: an array of consecutive indices (--array=1-N) is needed"),
            )),
        }
    }

    /// The trials this part runs, of `trials`.
    pub fn trials(self, trials: usize) -> impl Iterator<Item = usize> {
        (self.part - 1..trials).step_by(self.of)
    }
}

impl std::fmt::Display for Shard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.part, self.of)
    }
}

/// What defines a search, as each shard records it in `search.json`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    /// Seed of the trials' settings.
    pub seed: u64,
    /// Trials in the whole search.
    pub trials: usize,
    /// This folder's part.
    pub shard: Shard,
    /// The configuration every trial starts from.
    pub base: RunConfig,
}

/// The file a shard's manifest is kept in.
pub const MANIFEST: &str = "search.json";

impl Manifest {
    /// Writes `search.json` into `dir`.
    ///
    /// # Errors
    /// [`Error::Io`] naming the file.
    pub fn write(&self, dir: &Path) -> Result<()> {
        let json = serde_json::to_string_pretty(self)
            .map_err(|e| Error::format("search manifest", e.to_string()))?;
        write_atomic(&dir.join(MANIFEST), json.as_bytes())
    }

    /// Reads `dir/search.json`.
    ///
    /// # Errors
    /// [`Error::Dataset`] naming the file when it is missing or not a manifest.
    pub fn read(dir: &Path) -> Result<Manifest> {
        let path = dir.join(MANIFEST);
        let bad = |detail: String| Error::Dataset {
            path: path.clone(),
            detail,
        };
        let text = std::fs::read_to_string(&path).map_err(|e| {
            bad(format!(
                "{e}: not the folder of a search shard (each writes {MANIFEST})"
            ))
        })?;
        serde_json::from_str(&text).map_err(|e| bad(format!("not a search manifest: {e}")))
    }

    /// The first setting on which two shards' searches differ, as (setting, ours, theirs);
    /// `None` when they belong to one search.
    pub fn differs_from(&self, other: &Manifest) -> Option<(String, String, String)> {
        if self.seed != other.seed {
            return Some((
                "--seed".into(),
                self.seed.to_string(),
                other.seed.to_string(),
            ));
        }
        if self.trials != other.trials {
            return Some((
                "--trials".into(),
                self.trials.to_string(),
                other.trials.to_string(),
            ));
        }
        if self.shard.of != other.shard.of {
            return Some((
                "the number of shards".into(),
                self.shard.of.to_string(),
                other.shard.of.to_string(),
            ));
        }
        let (a, b) = (
            serde_json::to_value(&self.base).ok()?,
            serde_json::to_value(&other.base).ok()?,
        );
        first_difference(&a, &b, "")
    }
}

/// The first leaf where two JSON values differ, with its dotted path.
fn first_difference(
    a: &serde_json::Value,
    b: &serde_json::Value,
    at: &str,
) -> Option<(String, String, String)> {
    use serde_json::Value;
    match (a, b) {
        (Value::Object(x), Value::Object(y)) => {
            let mut keys: Vec<&String> = x.keys().chain(y.keys()).collect();
            keys.sort();
            keys.dedup();
            keys.into_iter().find_map(|k| {
                let path = if at.is_empty() {
                    k.clone()
                } else {
                    format!("{at}.{k}")
                };
                first_difference(
                    x.get(k).unwrap_or(&Value::Null),
                    y.get(k).unwrap_or(&Value::Null),
                    &path,
                )
            })
        }
        _ if a == b => None,
        _ => Some((at.to_string(), a.to_string(), b.to_string())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parts_count_from_one() {
        assert_eq!(Shard::parse("1/2").unwrap(), Shard { part: 1, of: 2 });
        assert_eq!(Shard::parse(" 2 / 2 ").unwrap(), Shard { part: 2, of: 2 });
        for bad in ["0/2", "3/2", "1/0", "1", "a/b", "", "-1/2"] {
            let err = Shard::parse(bad).expect_err(bad).to_string();
            assert!(err.contains("1 ≤ I ≤ N"), "{bad}: {err}");
        }
        let trials: Vec<usize> = Shard { part: 2, of: 3 }.trials(8).collect();
        assert_eq!(trials, [1, 4, 7]);
        assert_eq!(Shard { part: 3, of: 3 }.trials(2).count(), 0);
    }

    #[test]
    fn a_slurm_array_task_is_a_part() {
        let env = |vars: &'static [(&'static str, &'static str)]| {
            move |name: &str| {
                vars.iter()
                    .find(|(k, _)| *k == name)
                    .map(|(_, v)| v.to_string())
            }
        };
        assert_eq!(Shard::from_job_array(env(&[])).unwrap(), None);
        let one_based = env(&[
            ("SLURM_ARRAY_TASK_ID", "3"),
            ("SLURM_ARRAY_TASK_MIN", "1"),
            ("SLURM_ARRAY_TASK_COUNT", "4"),
        ]);
        assert_eq!(
            Shard::from_job_array(one_based).unwrap(),
            Some(Shard { part: 3, of: 4 })
        );
        let zero_based = env(&[
            ("SLURM_ARRAY_TASK_ID", "0"),
            ("SLURM_ARRAY_TASK_MIN", "0"),
            ("SLURM_ARRAY_TASK_COUNT", "4"),
        ]);
        assert_eq!(
            Shard::from_job_array(zero_based).unwrap(),
            Some(Shard { part: 1, of: 4 })
        );
        let gappy = env(&[
            ("SLURM_ARRAY_TASK_ID", "9"),
            ("SLURM_ARRAY_TASK_MIN", "1"),
            ("SLURM_ARRAY_TASK_COUNT", "3"),
        ]);
        assert!(Shard::from_job_array(gappy).is_err());
        let garbled = env(&[("SLURM_ARRAY_TASK_ID", "x")]);
        assert!(Shard::from_job_array(garbled)
            .unwrap_err()
            .to_string()
            .contains("SLURM_ARRAY_TASK_ID"));
    }

    #[test]
    fn two_searches_differ_at_the_first_setting_that_does() {
        let base = RunConfig::preset("mlp4").unwrap();
        let a = Manifest {
            seed: 1,
            trials: 4,
            shard: Shard { part: 1, of: 2 },
            base: base.clone(),
        };
        let same = Manifest {
            shard: Shard { part: 2, of: 2 },
            ..a.clone()
        };
        assert_eq!(a.differs_from(&same), None);
        let seed = Manifest {
            seed: 2,
            ..a.clone()
        };
        assert_eq!(
            a.differs_from(&seed),
            Some(("--seed".into(), "1".into(), "2".into()))
        );
        let mut epochs = a.clone();
        epochs.base.train.epochs = 3;
        let (setting, ours, theirs) = a.differs_from(&epochs).unwrap();
        assert_eq!(
            (setting.as_str(), ours, theirs.as_str()),
            ("train.epochs", base.train.epochs.to_string(), "3")
        );
    }
}
