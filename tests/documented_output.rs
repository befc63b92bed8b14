//! Every number the README, the command reference and the course show comes with the command
//! that prints it, and this test runs those commands.
//!
//! The documents show output in ```` ```console ```` blocks: lines starting with `$ handgrad`
//! are commands (run in a fresh folder, in order, on the shipped data), every other line is
//! output the command just above must print, character for character apart from trailing
//! spaces, in the order shown (lines may be left out in between). So a number in the docs is
//! compared at the precision it is printed with, and a block that stops reproducing fails
//! here, naming the document, the command and the line.

use std::path::{Path, PathBuf};
use std::process::Command;

/// The documents whose console blocks are run.
fn documents() -> Vec<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut docs = vec![root.join("README.md"), root.join("docs/commands.md")];
    let mut chapters: Vec<PathBuf> = std::fs::read_dir(root.join("docs/course"))
        .expect("docs/course")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "md"))
        .collect();
    chapters.sort();
    docs.extend(chapters);
    docs
}

/// One ```` ```console ```` block: its first line's number and its lines.
fn console_blocks(text: &str) -> Vec<(usize, Vec<String>)> {
    let mut blocks = Vec::new();
    let mut current: Option<(usize, Vec<String>)> = None;
    for (i, line) in text.lines().enumerate() {
        match (&mut current, line.trim_end()) {
            (None, "```console") => current = Some((i + 2, Vec::new())),
            (Some(_), "```") => blocks.extend(current.take()),
            (Some((_, lines)), l) => lines.push(l.to_string()),
            (None, _) => {}
        }
    }
    blocks
}

/// Runs one block in `dir`; `Err` names the first command or line that does not match.
fn check_block(dir: &Path, lines: &[String]) -> Result<usize, String> {
    let mut printed: Vec<String> = Vec::new();
    let mut next = 0;
    let mut commands = 0;
    let mut command = String::new();
    for line in lines {
        if let Some(args) = line.strip_prefix("$ handgrad ") {
            command = line.clone();
            commands += 1;
            let out = Command::new(env!("CARGO_BIN_EXE_handgrad"))
                .current_dir(dir)
                .args(args.split_whitespace())
                .output()
                .map_err(|e| format!("{command}: {e}"))?;
            let stdout = String::from_utf8_lossy(&out.stdout);
            if !out.status.success() {
                return Err(format!(
                    "{command} failed: {stdout}{}",
                    String::from_utf8_lossy(&out.stderr)
                ));
            }
            printed = stdout.lines().map(|l| l.trim_end().to_string()).collect();
            next = 0;
        } else if line.starts_with('$') {
            return Err(format!("{line}: only handgrad commands are run"));
        } else {
            let want = line.trim_end();
            match printed[next..].iter().position(|p| p == want) {
                Some(at) => next += at + 1,
                None => {
                    return Err(format!(
                        "{command} does not print (after what matched before it):\n  {want}\nit printed:\n  {}",
                        printed.join("\n  ")
                    ))
                }
            }
        }
    }
    if commands == 0 {
        return Err("the block runs no handgrad command".into());
    }
    Ok(commands)
}

#[test]
fn every_console_block_prints_what_it_shows() {
    let mut ran = 0;
    let mut failures = Vec::new();
    for doc in documents() {
        let text = std::fs::read_to_string(&doc).expect("document");
        for (k, (line, block)) in console_blocks(&text).into_iter().enumerate() {
            let dir = std::env::temp_dir().join(format!(
                "handgrad-doc-{}-{k}-{}",
                doc.file_stem()
                    .map_or_else(String::new, |s| s.to_string_lossy().into()),
                std::process::id()
            ));
            let _ = std::fs::remove_dir_all(&dir);
            std::fs::create_dir_all(&dir).expect("temp dir");
            match check_block(&dir, &block) {
                Ok(n) => ran += n,
                Err(e) => failures.push(format!("{}:{line}: {e}", doc.display())),
            }
            let _ = std::fs::remove_dir_all(&dir);
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
    // The blocks this test was written for: a lost fence would silently check nothing.
    assert!(
        ran >= 6,
        "only {ran} documented commands were found and run"
    );
}

#[test]
fn a_block_that_does_not_match_is_caught() {
    let dir = std::env::temp_dir().join(format!("handgrad-doc-self-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let block = |lines: &[&str]| -> Vec<String> { lines.iter().map(|l| l.to_string()).collect() };
    let shown = "     6                38.5%         0.041312";
    let ok = check_block(
        &dir,
        &block(&["$ handgrad pca --components 6 --out p.png", shown]),
    );
    assert_eq!(ok, Ok(1));
    let off = check_block(
        &dir,
        &block(&[
            "$ handgrad pca --components 6 --out q.png",
            "     6                38.5%         0.041311",
        ]),
    );
    assert!(off.is_err_and(|e| e.contains("0.041311")));
    let _ = std::fs::remove_dir_all(&dir);
}
