//! How a long computation tells the person waiting what it is doing, without printing.
//!
//! The library never writes to the terminal itself: a program that embeds handgrad decides
//! where progress goes. Commands take an [`Observer`] and report [`Event`]s to it; the
//! `handgrad` binary's observer draws progress bars and prints lines, a test's may collect
//! them, and [`Silent`] drops them.

use super::fit::{BatchProgress, EpochMetrics};
use std::path::Path;

/// Something worth telling the user.
#[derive(Clone, Copy, Debug)]
pub enum Event<'a> {
    /// A line of information: what was loaded, how it was split, one layer of the model.
    Info(&'a str),
    /// A training step finished.
    Batch(&'a BatchProgress),
    /// An epoch finished.
    Epoch {
        /// Its numbers.
        metrics: &'a EpochMetrics,
        /// Epochs in the run.
        epochs: usize,
        /// Names of `metrics.train_terms` / `val_terms`.
        terms: &'static [&'static str],
    },
    /// Training stopped because the user asked; a checkpoint was saved.
    Interrupted {
        /// The epoch under way, from 1.
        epoch: usize,
        /// Batches of it completed.
        batch: usize,
        /// Batches per epoch.
        batches: usize,
        /// Where to resume from.
        dir: &'a Path,
    },
    /// A computation without epochs is under way (a t-SNE map's descent): drawn as a bar,
    /// cleared when `done` reaches `total`.
    Working {
        /// Steps done.
        done: usize,
        /// Steps in all.
        total: usize,
        /// What is being computed.
        what: &'a str,
    },
    /// A step of a longer job (a trial of a search, a part of a reproduction) finished.
    Progress {
        /// Steps done.
        done: usize,
        /// Steps in all.
        total: usize,
        /// What the step was.
        what: &'a str,
    },
}

/// Receives [`Event`]s.
pub trait Observer {
    /// Called for every event, in order.
    fn event(&mut self, event: Event<'_>);

    /// Shorthand for `event(Event::Info(line))`.
    fn info(&mut self, line: &str) {
        self.event(Event::Info(line));
    }
}

/// Drops every event.
#[derive(Clone, Copy, Debug, Default)]
pub struct Silent;

impl Observer for Silent {
    fn event(&mut self, _: Event<'_>) {}
}

/// Keeps the information lines (for tests and reports).
#[derive(Clone, Debug, Default)]
pub struct Collect {
    /// Every `Info` line so far.
    pub lines: Vec<String>,
}

impl Observer for Collect {
    fn event(&mut self, event: Event<'_>) {
        if let Event::Info(line) = event {
            self.lines.push(line.to_string());
        }
    }
}
