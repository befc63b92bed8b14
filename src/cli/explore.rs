//! `handgrad explore`: serves the page where a learner moves through a run's code space.

use super::console::stop_flag;
use super::DataArgs;
use clap::Args;
use handgrad::explore::Server;
use handgrad::Result;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::Ordering;

#[derive(Args, Debug)]
pub struct ExploreArgs {
    /// The folder whose run folders the page shows.
    #[arg(long, default_value = "runs")]
    runs: PathBuf,
    /// The port to listen on (0: a free one, printed).
    #[arg(long, default_value_t = 8765)]
    port: u16,
    /// The address to listen on; the default answers this machine only.
    #[arg(long, default_value = "127.0.0.1")]
    host: String,
    /// Open the page in the default browser.
    #[arg(long)]
    open: bool,
    #[command(flatten)]
    data: DataArgs,
}

impl ExploreArgs {
    /// Serves until Ctrl-C.
    pub fn run(&self) -> Result<ExitCode> {
        let stop = stop_flag("stopping the server (Ctrl-C again to quit at once)…");
        let server = Server::bind(
            &self.host,
            self.port,
            &self.runs,
            self.data.options(stop.clone()),
        )?;
        let url = match server.addr() {
            Some(addr) => format!("http://{addr}/"),
            None => format!("http://{}:{}/", self.host, self.port),
        };
        println!("exploring the runs in {} at {url}", self.runs.display());
        println!("(Ctrl-C stops the server)");
        if self.open {
            open_browser(&url);
        }
        server.run(&stop);
        if stop.load(Ordering::SeqCst) {
            println!("stopped");
        }
        Ok(ExitCode::SUCCESS)
    }
}

/// Asks the desktop to open `url`; says so if it cannot (the URL is printed anyway).
fn open_browser(url: &str) {
    let opener = if cfg!(target_os = "macos") {
        "open"
    } else if cfg!(target_os = "windows") {
        "explorer"
    } else {
        "xdg-open"
    };
    if let Err(e) = std::process::Command::new(opener).arg(url).spawn() {
        eprintln!("note: could not open a browser with {opener} ({e}); open {url} yourself");
    }
}
