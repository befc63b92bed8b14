//! `handgrad reproduce`: one course report's protocol run from start to finish, its numbers
//! written beside the report's.

use super::console::Console;
use super::DataArgs;
use clap::Args;
use handgrad::experiments::reproduce::{reproduce, Protocol};
use handgrad::names::{self, Named};
use handgrad::train::run_dir::fresh_run_dir;
use handgrad::Result;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

#[derive(Args, Debug)]
pub struct ReproduceArgs {
    #[arg(help = format!("The report's protocol: {}", Protocol::ALL.iter().map(|p| format!("{} ({})", p.name(), p.describe())).collect::<Vec<_>>().join("; ")))]
    name: String,
    /// A reduced version (3,000 images, 2 epochs per model): checks the protocol runs in a minute or two; its numbers are not a reproduction.
    #[arg(long)]
    quick: bool,
    /// The output folder [default: runs/reproduce-<name>, numbered if taken].
    #[arg(long)]
    out: Option<PathBuf>,
    #[command(flatten)]
    data: DataArgs,
}

impl ReproduceArgs {
    /// Runs every step of the protocol and prints the report's figures beside ours.
    pub fn run(&self) -> Result<ExitCode> {
        let protocol: Protocol = names::parse(&self.name)?;
        let out = self.out.clone().unwrap_or_else(|| {
            fresh_run_dir(Path::new("runs"), &format!("reproduce-{}", protocol.name()))
        });
        let opts = self.data.options(Arc::default());
        let mut obs = Console::new(false);
        let r = reproduce(protocol, self.quick, &out, &opts, &mut obs)?;
        println!("{:<70} {:>9} {:>9}", "what", "report", "ours");
        for f in &r.figures {
            println!(
                "{:<70} {:>9} {:>9.4}",
                f.what,
                f.report.map_or("—".into(), |v| format!("{v:.4}")),
                f.ours
            );
        }
        println!(
            "wrote {} and {}",
            out.join("REPORT.md").display(),
            out.join("report.html").display()
        );
        Ok(ExitCode::SUCCESS)
    }
}
