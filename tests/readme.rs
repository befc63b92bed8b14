//! The README and the command reference (`docs/commands.md`) describe the program that
//! exists: their lists of names are the lists the code parses, every command has a section,
//! and every example command line uses options the command really has.

use handgrad::names::{list, Named};
use handgrad::nn::init::Init;
use handgrad::train::config::{LossName, OptimizerName};
use handgrad::train::PRESETS;
use kernels::elementwise::Activation;
use std::process::Command;

fn readme() -> String {
    std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).expect("README.md")
}

/// The command reference, where the README's tour links.
fn commands_doc() -> String {
    std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/commands.md"))
        .expect("docs/commands.md")
}

fn help(args: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_handgrad"))
        .args(args)
        .output()
        .expect("the binary runs");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn lists_all<T: Named>(readme: &str, option: &str) {
    let names = list::<T>();
    assert!(
        readme.contains(&format!("{option}: {names};")) || readme.contains(&format!("({names})")),
        "docs/commands.md's list for {option} is not {names}"
    );
}

#[test]
fn the_command_reference_lists_the_names_the_code_knows() {
    let readme = commands_doc();
    lists_all::<Activation>(&readme, "--activation");
    lists_all::<LossName>(&readme, "`--loss`");
    lists_all::<OptimizerName>(&readme, "`--optimizer`");
    lists_all::<Init>(&readme, "`--init`");
    for preset in PRESETS {
        for (doc, text) in [
            ("docs/commands.md", &readme),
            ("README.md", &self::readme()),
        ] {
            assert!(
                text.contains(&format!("`{}`", preset.name)),
                "preset {} is missing from {doc}",
                preset.name
            );
        }
    }
}

/// The subcommands `handgrad --help` lists.
fn commands() -> Vec<String> {
    let top = help(&["--help"]);
    top.lines()
        .skip_while(|l| !l.starts_with("Commands:"))
        .skip(1)
        .take_while(|l| l.starts_with("  "))
        .filter_map(|l| l.split_whitespace().next())
        .filter(|c| *c != "help")
        .map(str::to_string)
        .collect()
}

#[test]
fn every_command_has_a_section_and_a_row_in_the_tour() {
    let (doc, readme) = (commands_doc(), readme());
    let headings: Vec<&str> = doc.lines().filter(|l| l.starts_with("## ")).collect();
    let tour: Vec<&str> = readme.lines().filter(|l| l.starts_with("| [`")).collect();
    let commands = commands();
    assert!(commands.len() >= 8, "{commands:?}");
    for c in &commands {
        assert!(
            headings.iter().any(|h| h.contains(&format!("`{c}`"))),
            "no section for `{c}` in docs/commands.md: {headings:?}"
        );
        assert!(
            tour.iter()
                .any(|row| row.starts_with(&format!("| [`{c}`]"))),
            "no row for `{c}` in the README's tour"
        );
    }
}

#[test]
fn every_example_uses_options_its_command_has() {
    let text = readme() + &commands_doc();
    let commands = commands();
    let mut checked = 0;
    for line in text.lines() {
        // A code line, or a table cell of the README's tour.
        let code = line
            .rsplit("| `")
            .next()
            .unwrap_or(line)
            .trim_end_matches(['`', '|', ' ']);
        let Some(rest) = code.trim().strip_prefix("cargo run --release -- ") else {
            continue;
        };
        let args: Vec<&str> = rest
            .split('#')
            .next()
            .unwrap_or("")
            .split_whitespace()
            .collect();
        let command = args[0];
        assert!(
            commands.iter().any(|c| c == command),
            "README example {line:?}: no command {command}"
        );
        let text = help(&[command, "--help"]);
        for option in args.iter().filter(|a| a.starts_with("--")) {
            // The option, not a longer one it begins (--lr in --lr-decay).
            let named = text.match_indices(option).any(|(at, _)| {
                text[at + option.len()..]
                    .chars()
                    .next()
                    .is_none_or(|c| !(c.is_alphanumeric() || c == '-' || c == '_'))
            });
            assert!(
                named,
                "README example {line:?}: `{command}` has no option {option}"
            );
        }
        checked += 1;
    }
    assert!(checked > 20, "only {checked} examples found");
}
