//! What the user sees while a command works: events printed as lines and progress bars,
//! Ctrl-C turned into a clean stop, errors printed with their causes.

use handgrad::train::{Event, Observer};
use handgrad::Error;
use indicatif::{ProgressBar, ProgressStyle};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

/// Ctrl-C sets the flag (training saves a checkpoint and stops after the current batch); a
/// second Ctrl-C exits at once.
pub fn interrupt_flag() -> Arc<AtomicBool> {
    stop_flag("stopping after this batch (Ctrl-C again to quit at once)…")
}

/// A flag Ctrl-C sets, saying `what` happens next; a second Ctrl-C exits at once (130).
pub fn stop_flag(what: &'static str) -> Arc<AtomicBool> {
    let flag = Arc::new(AtomicBool::new(false));
    let handler_flag = flag.clone();
    let installed = ctrlc::set_handler(move || {
        if handler_flag.swap(true, Ordering::SeqCst) {
            std::process::exit(130);
        }
        eprintln!("\n{what}");
    });
    if let Err(e) = installed {
        eprintln!("warning: Ctrl-C will not stop cleanly ({e})");
    }
    flag
}

/// Prints events: lines as they come, a progress bar per epoch.
pub struct Console {
    quiet: bool,
    bar: Option<ProgressBar>,
}

impl Console {
    pub fn new(quiet: bool) -> Self {
        Console { quiet, bar: None }
    }

    fn line(&self, text: &str) {
        match &self.bar {
            Some(bar) if !bar.is_hidden() => bar.println(text),
            _ => println!("{text}"),
        }
    }

    pub fn finish(&mut self) {
        if let Some(bar) = self.bar.take() {
            bar.finish_and_clear();
        }
    }
}

impl Observer for Console {
    fn event(&mut self, event: Event<'_>) {
        match event {
            // Printed even when quiet: the user pressed Ctrl-C and should learn what was kept.
            Event::Interrupted {
                epoch,
                batch,
                batches,
                dir,
            } => {
                self.finish();
                let when = if batch == 0 {
                    format!("after epoch {}", epoch - 1)
                } else {
                    format!("during epoch {epoch}, after batch {batch} of {batches}")
                };
                println!(
                    "interrupted: checkpoint saved {when}; continue with --resume {}",
                    dir.display()
                );
            }
            _ if self.quiet => {}
            Event::Info(line) => self.line(line),
            Event::Progress { done, total, what } => self.line(&format!("[{done}/{total}] {what}")),
            Event::Working { done, total, what } => {
                let bar = self.bar.get_or_insert_with(|| {
                    let bar = ProgressBar::new(total as u64);
                    let style =
                        ProgressStyle::with_template("{prefix} [{bar:30}] {pos}/{len} eta {eta}")
                            .unwrap_or_else(|_| ProgressStyle::default_bar());
                    bar.set_style(style.progress_chars("=> "));
                    bar
                });
                bar.set_length(total as u64);
                bar.set_prefix(what.to_string());
                bar.set_position(done as u64);
                if done >= total {
                    self.finish();
                }
            }
            Event::Batch(p) => {
                let bar = self.bar.get_or_insert_with(|| {
                    let bar = ProgressBar::new(p.batches as u64);
                    let style = ProgressStyle::with_template(
                        "{prefix} [{bar:30}] {pos}/{len} {msg} eta {eta}",
                    )
                    .unwrap_or_else(|_| ProgressStyle::default_bar());
                    bar.set_style(style.progress_chars("=> "));
                    bar
                });
                bar.set_length(p.batches as u64);
                bar.set_prefix(format!("epoch {}/{}", p.epoch, p.epochs));
                bar.set_position(p.batch as u64);
                bar.set_message(format!(
                    "loss {:.5}  {:.0} img/s",
                    p.loss, p.images_per_second
                ));
            }
            Event::Epoch {
                metrics: m,
                epochs,
                terms,
            } => {
                if let Some(bar) = &self.bar {
                    bar.reset();
                }
                let mut line = format!(
                    "epoch {:>3}/{epochs}  train {:.5}  val {:.5}",
                    m.epoch, m.train_loss, m.val_loss
                );
                for (k, name) in terms.iter().enumerate() {
                    let (tr, va) = (m.train_terms.get(k), m.val_terms.get(k));
                    if let (Some(tr), Some(va)) = (tr, va) {
                        line.push_str(&format!("  {name} {tr:.4}/{va:.4}"));
                    }
                }
                line.push_str(&format!("  lr {:.2e}  {:.1}s", m.lr, m.seconds));
                self.line(&line);
            }
        }
    }
}

/// Lets a closed pipe end the program quietly (`handgrad trace | head`), as it does any
/// Unix tool: Rust programs start with SIGPIPE ignored, so a write to a closed pipe fails and
/// `println!` panics. Restoring the default action makes the kernel end the process instead.
#[cfg(target_os = "linux")]
pub fn quiet_on_closed_pipe() {
    extern "C" {
        fn signal(signum: i32, handler: usize) -> usize;
    }
    const SIGPIPE: i32 = 13;
    const SIG_DFL: usize = 0;
    // SAFETY: `signal` is the C library's; setting SIGPIPE to its default action has no
    // preconditions.
    unsafe {
        signal(SIGPIPE, SIG_DFL);
    }
}

#[cfg(not(target_os = "linux"))]
pub fn quiet_on_closed_pipe() {}

/// Prints `error: …` and each cause the message does not already quote.
pub fn print_error(e: &Error) {
    let message = e.to_string();
    eprintln!("error: {message}");
    let mut source = std::error::Error::source(e);
    while let Some(cause) = source {
        // The message often quotes its cause already ("…: No such file or directory"):
        // say it once.
        let text = cause.to_string();
        if !message.contains(&text) {
            eprintln!("  caused by: {text}");
        }
        source = cause.source();
    }
}
