//! Every command line the project shows a reader parses with today's flags: the README, the
//! course and every page under `docs/` (the reproductions' "repeat with" commands among
//! them), each command the program itself prints in backticks, and every command in the files
//! it writes (both taken from the golden transcript, which holds what the commands print and
//! the text files they write, a reproduction's REPORT.md among them). A renamed or removed option then
//! fails here, not in a reader's terminal.

use super::Cli;
use clap::error::ErrorKind;
use clap::{CommandFactory, Parser};
use std::path::{Path, PathBuf};

/// The files whose command lines are checked.
fn documents() -> Vec<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files = vec![
        root.join("README.md"),
        root.join("tests/golden/transcript.txt"),
    ];
    let mut folders = vec![root.join("docs")];
    while let Some(folder) = folders.pop() {
        let entries = std::fs::read_dir(&folder).expect("docs/ is readable");
        for path in entries.flatten().map(|e| e.path()) {
            if path.is_dir() {
                folders.push(path);
            } else if path.extension().is_some_and(|e| e == "md") {
                files.push(path);
            }
        }
    }
    files
}

/// The command lines in `text`: what follows `cargo run --release -- ` or `handgrad ` (when
/// a command or an option comes next) up to the end of the code span, table cell or comment.
/// In the transcript, only what the program prints in backticks counts: its `$ handgrad`
/// lines are the test's own inputs, some of them wrong on purpose.
fn command_lines(text: &str, printed_only: bool) -> Vec<String> {
    let commands: Vec<String> = Cli::command()
        .get_subcommands()
        .map(|c| c.get_name().to_string())
        .collect();
    let mut found = Vec::new();
    for line in text.lines() {
        for prefix in ["cargo run --release -- ", "handgrad "] {
            for (at, _) in line.match_indices(prefix) {
                if printed_only && !line[..at].ends_with('`') {
                    continue;
                }
                let rest = &line[at + prefix.len()..];
                let end = rest.find(['`', '|', '#']).unwrap_or(rest.len());
                let words: Vec<&str> = rest[..end]
                    .split_whitespace()
                    .map(|w| w.trim_end_matches(['.', ',', ';', ':', ')']))
                    .collect();
                let Some(first) = words.first() else {
                    continue;
                };
                let placeholder = words.iter().any(|w| w.contains(['<', '…']));
                if placeholder || !(commands.iter().any(|c| c == first) || first.starts_with("--"))
                {
                    continue;
                }
                found.push(words.join(" "));
            }
        }
    }
    found
}

/// In the golden transcript: the commands the program prints in backticks, and every command in
/// the files it wrote (the `$ cat FILE` sections: a reproduction's steps table among them).
fn transcript_command_lines(text: &str) -> Vec<String> {
    let mut found = Vec::new();
    let mut written = false;
    for section in text.split_inclusive('\n') {
        if let Some(head) = section.strip_prefix("$ ") {
            written = head.starts_with("cat ");
            continue;
        }
        found.extend(command_lines(section, !written));
    }
    found
}

#[test]
fn every_command_line_the_project_shows_parses() {
    let mut checked = 0;
    let mut wrong = Vec::new();
    for file in documents() {
        let text = std::fs::read_to_string(&file).expect("a readable document");
        let lines = if file.extension().is_some_and(|e| e == "txt") {
            transcript_command_lines(&text)
        } else {
            command_lines(&text, false)
        };
        for line in lines {
            checked += 1;
            if !line.contains(' ') {
                // A command named in a sentence ("`handgrad latent` draws…"), which
                // `command_lines` already found among the commands.
                continue;
            }
            let args = std::iter::once("handgrad").chain(line.split_whitespace());
            match Cli::try_parse_from(args) {
                Ok(_) => {}
                Err(e)
                    if matches!(e.kind(), ErrorKind::DisplayHelp | ErrorKind::DisplayVersion) => {}
                Err(e) => wrong.push(format!("{}: `{line}`: {}", file.display(), e.kind())),
            }
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
    assert!(checked > 150, "only {checked} command lines found");
}

#[test]
fn a_command_line_with_an_option_that_does_not_exist_is_found_and_refused() {
    let lines = command_lines(
        "run `handgrad train --epochs 2 --colour red`, then\ncargo run --release -- eval --run r  # a comment",
        false,
    );
    assert_eq!(lines, ["train --epochs 2 --colour red", "eval --run r"]);
    let args = std::iter::once("handgrad").chain(lines[0].split_whitespace());
    assert!(Cli::try_parse_from(args).is_err());
    assert!(command_lines("handgrad is a tensor engine; `handgrad <command>`", false).is_empty());
}
