//! The command that repeats a step, built from the values the step runs with.
//!
//! A reproduction's steps table tells a reader how to recompute any one number alone. Typed
//! by hand, such a command drifts from what the step really did (another epoch count, a
//! forgotten option); built here from the same variables the step's library call receives,
//! it cannot. A test parses every one of them with the real command line.

use std::fmt;

/// A `handgrad` command line, word by word.
#[derive(Clone, Debug, PartialEq)]
pub(super) struct CommandLine {
    words: Vec<String>,
    comment: Option<String>,
}

impl CommandLine {
    /// `handgrad <command>`, with no options yet.
    pub(super) fn new(command: &str) -> Self {
        CommandLine {
            words: vec![command.to_string()],
            comment: None,
        }
    }

    /// Adds `flag value`.
    pub(super) fn opt(mut self, flag: &str, value: impl fmt::Display) -> Self {
        self.words.push(flag.to_string());
        self.words.push(value.to_string());
        self
    }

    /// Adds `flag value` when there is a value.
    pub(super) fn opt_some(self, flag: &str, value: Option<impl fmt::Display>) -> Self {
        match value {
            Some(v) => self.opt(flag, v),
            None => self,
        }
    }

    /// Adds a switch, e.g. `--freeze`.
    pub(super) fn flag(mut self, flag: &str) -> Self {
        self.words.push(flag.to_string());
        self
    }

    /// Adds `flag a,b,c`.
    pub(super) fn list(self, flag: &str, values: &[impl fmt::Display]) -> Self {
        let joined: Vec<String> = values.iter().map(|v| v.to_string()).collect();
        self.opt(flag, joined.join(","))
    }

    /// Ends the line with a shell comment, `  # text`.
    pub(super) fn comment(mut self, text: impl Into<String>) -> Self {
        self.comment = Some(text.into());
        self
    }
}

impl fmt::Display for CommandLine {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "handgrad {}", self.words.join(" "))?;
        match &self.comment {
            Some(c) => write!(f, "  # {c}"),
            None => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_command_line_reads_as_typed() {
        let line = CommandLine::new("classify")
            .opt("--run", "runs/x")
            .flag("--freeze")
            .list("--hidden", &[512, 256])
            .opt_some("--early-stopping", None::<usize>)
            .opt_some("--max-samples", Some(3000))
            .comment("why");
        assert_eq!(
            line.to_string(),
            "handgrad classify --run runs/x --freeze --hidden 512,256 --max-samples 3000  # why"
        );
    }
}
