//! `handgrad download`: a full dataset fetched from its mirrors, every file checked against
//! its published checksum.

use clap::Args;
use handgrad::data::download::{download, Fetched, Remote};
use handgrad::data::mnist::DatasetName;
use handgrad::names::{self, Named};
use handgrad::{Error, Result};
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Args, Debug)]
pub struct DownloadArgs {
    /// mnist or fashion-mnist.
    dataset: String,
    /// Target folder [default: data/<dataset>/].
    #[arg(long)]
    dir: Option<PathBuf>,
    /// Use this mirror (base URL) instead of the public ones; repeat for several.
    #[arg(long)]
    mirror: Vec<String>,
}

impl DownloadArgs {
    /// Downloads what is missing and says what was already there.
    pub fn run(&self) -> Result<ExitCode> {
        let name: DatasetName = names::parse(&self.dataset).map_err(|_| {
            Error::config(
                "dataset",
                format!(
                    "{:?} cannot be downloaded ({})",
                    self.dataset,
                    names::list::<DatasetName>()
                ),
            )
        })?;
        let mut source = Remote::of(name);
        if !self.mirror.is_empty() {
            source.mirrors = self
                .mirror
                .iter()
                .map(|m| {
                    if m.ends_with('/') {
                        m.clone()
                    } else {
                        format!("{m}/")
                    }
                })
                .collect();
        }
        let dir = self
            .dir
            .clone()
            .unwrap_or_else(|| PathBuf::from("data").join(name.name()));
        let fetched = download(&source, &dir, |line| println!("{line}"))?;
        let new = fetched
            .iter()
            .filter(|f| matches!(f, Fetched::Downloaded { .. }))
            .count();
        println!(
            "{name} is in {} ({new} files downloaded, {} already there)",
            dir.display(),
            fetched.len() - new
        );
        Ok(ExitCode::SUCCESS)
    }
}
