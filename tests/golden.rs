//! The golden transcript: a fixed set of command lines, run through the binary one after the
//! other in a fresh folder, and everything they print compared with `tests/golden/transcript.txt`.
//!
//! It holds the command line to its word: every `--help` page, every table, every `wrote …`
//! line and every refusal. A change that moves code around must leave it as it is; a change
//! that means to alter what a command prints updates the transcript in the same commit, so the
//! difference is reviewed as text:
//!
//! ```text
//! HANDGRAD_BLESS=1 cargo test --release --test golden
//! git diff tests/golden/transcript.txt
//! ```
//!
//! Words and punctuation must match exactly. Numbers must match to within a relative 1e-3 (or
//! 1e-6 absolutely): the same code gives the same bits on one machine, but another processor's
//! vector width can round a sum differently in the last place, and training carries that on.
//! Wall-clock figures (seconds per epoch, milliseconds per op) are masked. The transcript of the
//! last run is left in `target/golden-transcript.txt` for a byte-for-byte `diff`.

use std::path::{Path, PathBuf};
use std::process::Command;

/// One command line of the transcript, and how to mask what varies from run to run.
struct Case {
    args: &'static [&'static str],
    mask: fn(&str) -> String,
}

fn plain(text: &str) -> String {
    text.to_string()
}

/// The per-epoch line's last field is its wall time ("0.1s").
fn epoch_seconds(text: &str) -> String {
    map_lines(text, |line| {
        if line.starts_with("epoch ") && line.ends_with('s') {
            let cut = line.rfind(' ').map_or(line.len(), |i| i + 1);
            format!("{}<seconds>", &line[..cut])
        } else {
            line.to_string()
        }
    })
}

/// A trace row ends with the op's forward and backward milliseconds.
fn trace_times(text: &str) -> String {
    map_lines(text, |line| {
        let first = line.split_whitespace().next().unwrap_or("");
        if first.is_empty() || !first.chars().all(|c| c.is_ascii_digit()) {
            return line.to_string();
        }
        // Cut the last two columns with the spaces that right-align them.
        let mut line = line.trim_end();
        for _ in 0..2 {
            line = line[..line.rfind(' ').unwrap_or(0)].trim_end();
        }
        format!("{line} <ms> <ms>")
    })
}

/// A reproduction's report names the machine and every step's wall time ("1.2 s").
fn report_times(text: &str) -> String {
    let text = epoch_seconds(text);
    map_lines(&text, |line| {
        let mut line = line.to_string();
        if let (Some(a), Some(b)) = (line.find("Machine: "), line.find(" threads.")) {
            line.replace_range(a..b + " threads.".len(), "Machine: <machine>.");
        }
        let words: Vec<&str> = line.split(' ').collect();
        let mut out: Vec<&str> = Vec::with_capacity(words.len());
        for (k, w) in words.iter().enumerate() {
            let next = words.get(k + 1).copied().unwrap_or("");
            let unit = next == "s" || next.starts_with("s.") || next.starts_with("s,");
            if unit && w.parse::<f64>().is_ok() {
                out.push("<seconds>");
            } else {
                out.push(w);
            }
        }
        out.join(" ")
    })
}

fn map_lines(text: &str, f: impl Fn(&str) -> String) -> String {
    text.lines().map(f).collect::<Vec<_>>().join("\n") + "\n"
}

const fn case(args: &'static [&'static str]) -> Case {
    Case { args, mask: plain }
}

/// Every command's help, then a small run through every command that reads or writes a run,
/// then the refusals a user meets most. Each training run is one epoch on a few hundred images.
const CASES: &[Case] = &[
    case(&["--help"]),
    case(&["train", "--help"]),
    case(&["eval", "--help"]),
    case(&["reconstruct", "--help"]),
    case(&["denoise", "--help"]),
    case(&["generate", "--help"]),
    case(&["manifold", "--help"]),
    case(&["interpolate", "--help"]),
    case(&["latent", "--help"]),
    case(&["weights", "--help"]),
    case(&["pca", "--help"]),
    case(&["classify", "--help"]),
    case(&["sweep", "--help"]),
    case(&["search", "--help"]),
    case(&["explain", "--help"]),
    case(&["trace", "--help"]),
    case(&["gradcheck", "--help"]),
    case(&["bench", "--help"]),
    case(&["reproduce", "--help"]),
    case(&["download", "--help"]),
    case(&["explore", "--help"]),
    Case {
        args: &[
            "train",
            "--epochs",
            "1",
            "--max-samples",
            "300",
            "--batch-size",
            "64",
            "--out",
            "run",
        ],
        mask: epoch_seconds,
    },
    case(&["train", "--resume", "run", "--lr", "0.1", "--latent", "3"]),
    case(&["train", "--resume", "run", "--epochs", "1"]),
    case(&[
        "train",
        "--preset",
        "mlp3-32",
        "--latent",
        "2",
        "--epochs",
        "1",
        "--max-samples",
        "300",
        "--batch-size",
        "64",
        "--seed",
        "3",
        "--quiet",
        "--out",
        "run2d",
    ]),
    case(&[
        "train",
        "--preset",
        "mlp4",
        "--variational",
        "--beta",
        "0.5",
        "--corrupt",
        "gaussian:0.3",
        "--epochs",
        "1",
        "--max-samples",
        "300",
        "--batch-size",
        "64",
        "--plateau-patience",
        "2",
        "--quiet",
        "--out",
        "vae",
    ]),
    case(&["eval", "--run", "run", "--corrupt", "gaussian:0.4"]),
    case(&[
        "eval",
        "--run",
        "run",
        "--noise-sweep",
        "0:0.4:0.2",
        "--out",
        "sweep-noise",
    ]),
    case(&["eval", "--run", "vae"]),
    case(&["reconstruct", "--run", "run", "--count", "4"]),
    case(&["reconstruct", "--run", "run", "--count", "4"]),
    case(&[
        "denoise",
        "--run",
        "run",
        "--corrupt",
        "occlusion:8",
        "--count",
        "3",
    ]),
    case(&["generate", "--run", "run", "--n", "8"]),
    case(&["generate", "--run", "vae", "--n", "8", "--seed", "2"]),
    case(&[
        "generate",
        "--run",
        "run",
        "--centroids",
        "--sigmas",
        "0,1",
        "--out",
        "cents.png",
    ]),
    case(&["generate", "--run", "run", "--source", "bogus"]),
    case(&["manifold", "--run", "run2d", "--grid", "4"]),
    case(&["manifold", "--run", "run"]),
    case(&[
        "interpolate",
        "--run",
        "run",
        "--from",
        "0",
        "--to",
        "class:3",
        "--steps",
        "3",
    ]),
    case(&["latent", "--run", "run", "--n", "300"]),
    case(&[
        "latent",
        "--run",
        "run",
        "--method",
        "tsne",
        "--n",
        "150",
        "--steps",
        "60",
        "--perplexity",
        "10",
        "--out",
        "tsne.png",
    ]),
    case(&["latent", "--run", "run", "--method", "bogus"]),
    case(&["weights", "--run", "run"]),
    case(&["weights", "--run", "run", "--layer", "decoder.13"]),
    case(&["weights", "--run", "run", "--layer", "nope"]),
    case(&[
        "pca",
        "--max-samples",
        "600",
        "--components",
        "4,8",
        "--count",
        "3",
    ]),
    case(&["classify", "--run", "run", "--epochs", "1", "--quiet"]),
    case(&[
        "classify",
        "--features",
        "pca:8",
        "--classes",
        "0,1,7",
        "--max-samples",
        "500",
        "--epochs",
        "1",
        "--hidden",
        "none",
        "--quiet",
        "--out",
        "pca-classifier",
    ]),
    case(&["classify"]),
    case(&[
        "sweep",
        "--latent",
        "2,4",
        "--epochs",
        "1",
        "--max-samples",
        "200",
        "--quiet",
        "--out",
        "sweep",
    ]),
    case(&["sweep", "--latent", "2", "--lr", "0.1"]),
    case(&[
        "search",
        "--trials",
        "3",
        "--epochs",
        "1",
        "--max-samples",
        "200",
        "--quiet",
        "--shard",
        "1/2",
        "--out",
        "shard0",
    ]),
    case(&[
        "search",
        "--trials",
        "3",
        "--epochs",
        "1",
        "--max-samples",
        "200",
        "--quiet",
        "--shard",
        "2/2",
        "--out",
        "shard1",
    ]),
    case(&["search", "--collect", "shard0", "shard1", "--out", "search"]),
    case(&["search", "--shard", "5/2"]),
    case(&["explain"]),
    case(&["explain", "--preset", "mlp4", "--batch-size", "64"]),
    case(&["explain", "--run", "vae"]),
    Case {
        args: &["trace", "--preset", "conv-small", "--batch-size", "4"],
        mask: trace_times,
    },
    case(&["gradcheck", "all"]),
    case(&["gradcheck", "selu", "--plant-bug"]),
    case(&["gradcheck", "conv2d", "--channels", "2"]),
    case(&["train", "--preset", "nope"]),
    case(&["train", "--plateau-factor", "0.3"]),
    case(&["train", "--conv", "8:3:2", "--epochs", "1"]),
    case(&["eval", "--run", "missing"]),
    case(&["reproduce", "nope"]),
    case(&["download", "nope"]),
    case(&["--threads", "0", "explain"]),
    Case {
        args: &["reproduce", "digits-01247", "--quick", "--out", "rep"],
        mask: report_times,
    },
];

/// Text files the commands above wrote, printed into the transcript after them.
const WRITTEN: &[Case] = &[
    case(&["run/config.json"]),
    case(&["sweep-noise.csv"]),
    case(&["sweep/sweep.md"]),
    case(&["search/results.md"]),
    case(&["search/best-config.json"]),
    Case {
        args: &["rep/REPORT.md"],
        mask: report_times,
    },
];

fn record() -> String {
    let dir = std::env::temp_dir().join(format!("handgrad-golden-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("a temporary folder");
    let mut transcript = String::new();
    for c in CASES {
        let out = Command::new(env!("CARGO_BIN_EXE_handgrad"))
            .current_dir(&dir)
            .args(c.args)
            .output()
            .expect("the binary runs");
        let printed = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        let printed = hide_folders(&printed, &dir);
        transcript.push_str(&format!(
            "$ handgrad {}\n[exit {}]\n{}\n",
            c.args.join(" "),
            out.status
                .code()
                .map_or("by a signal".to_string(), |c| c.to_string()),
            (c.mask)(&printed).trim_end()
        ));
    }
    transcript.push_str("$ files written\n");
    for f in files_under(&dir) {
        transcript.push_str(&f);
        transcript.push('\n');
    }
    for c in WRITTEN {
        let path = dir.join(c.args[0]);
        let text = std::fs::read_to_string(&path).unwrap_or_else(|e| format!("(unreadable: {e})"));
        let text = hide_folders(&text, &dir);
        transcript.push_str(&format!(
            "$ cat {}\n{}\n",
            c.args[0],
            (c.mask)(&text).trim_end()
        ));
    }
    let _ = std::fs::remove_dir_all(&dir);
    transcript
}

/// The transcript's temporary folder and this checkout's own folder (where the shipped data is
/// found) differ from machine to machine: both are named by a placeholder.
fn hide_folders(text: &str, dir: &Path) -> String {
    text.replace(&dir.display().to_string(), "<dir>")
        .replace(env!("CARGO_MANIFEST_DIR"), "<checkout>")
}

/// Every file below `dir`, as sorted relative paths.
fn files_under(dir: &Path) -> Vec<String> {
    let mut found = Vec::new();
    let mut stack: Vec<PathBuf> = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).expect("readable").flatten() {
            let p = entry.path();
            if p.is_dir() {
                stack.push(p);
            } else if let Ok(rel) = p.strip_prefix(dir) {
                found.push(rel.display().to_string());
            }
        }
    }
    found.sort();
    found
}

/// Splits a line into runs of number characters and runs of everything else.
fn tokens(line: &str) -> Vec<(bool, &str)> {
    let is_num = |c: char| c.is_ascii_digit() || c == '.' || c == 'e' || c == '-' || c == '+';
    let mut out = Vec::new();
    let mut start = 0;
    let mut kind = None;
    for (i, c) in line.char_indices() {
        let k = c.is_ascii_digit() || (kind == Some(true) && is_num(c));
        if kind.is_some_and(|was| was != k) {
            out.push((kind == Some(true), &line[start..i]));
            start = i;
        }
        kind = Some(k);
    }
    if start < line.len() {
        out.push((kind == Some(true), &line[start..]));
    }
    out
}

/// Whether two lines say the same words and the same numbers (to within the tolerance).
fn same_line(want: &str, got: &str) -> bool {
    let (w, g) = (tokens(want), tokens(got));
    w.len() == g.len()
        && w.iter().zip(&g).all(|((wn, wt), (gn, gt))| {
            if wt == gt {
                return true;
            }
            if !(*wn && *gn) {
                return false;
            }
            match (wt.parse::<f64>(), gt.parse::<f64>()) {
                (Ok(a), Ok(b)) => (a - b).abs() <= 1e-6 + 1e-3 * a.abs().max(b.abs()),
                _ => false,
            }
        })
}

#[test]
fn every_command_prints_what_the_transcript_holds() {
    let golden = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden/transcript.txt");
    let got = record();
    let target = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/golden-transcript.txt");
    let _ = std::fs::write(&target, &got);
    if std::env::var_os("HANDGRAD_BLESS").is_some() {
        std::fs::create_dir_all(golden.parent().expect("tests/golden")).expect("folder");
        std::fs::write(&golden, &got).expect("write the transcript");
        return;
    }
    let want = std::fs::read_to_string(&golden).expect("tests/golden/transcript.txt");
    let (w, g): (Vec<&str>, Vec<&str>) = (want.lines().collect(), got.lines().collect());
    let mut command = "";
    for (k, (a, b)) in w.iter().zip(&g).enumerate() {
        if a.starts_with("$ ") {
            command = a;
        }
        assert!(
            same_line(a, b),
            "transcript line {} differs (under `{command}`):\nwant: {a}\n got: {b}\n\
             (whole transcript in {}; if the change is meant, bless it: see tests/golden.rs)",
            k + 1,
            target.display()
        );
    }
    assert_eq!(
        w.len(),
        g.len(),
        "the transcript has {} lines, this run printed {}",
        w.len(),
        g.len()
    );
}

#[test]
fn numbers_are_compared_with_a_tolerance_and_words_exactly() {
    assert!(same_line(
        "loss 0.151770 over 2000",
        "loss 0.151771 over 2000"
    ));
    assert!(!same_line(
        "loss 0.151770 over 2000",
        "loss 0.161770 over 2000"
    ));
    assert!(!same_line(
        "loss 0.151770 over 2000",
        "loss 0.151770 over 2001 "
    ));
    assert!(!same_line("test loss 0.15", "test Loss 0.15"));
    assert!(same_line("error 7.2e-7, then", "error 9.1e-7, then"));
    assert!(!same_line("trial 1 (latent 6", "trial 2 (latent 6"));
    assert!(!same_line("encoder.13", "encoder.12"));
}
