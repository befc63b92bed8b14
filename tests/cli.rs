//! The `handgrad` binary as a user runs it: train, eval, reconstruct, resume after Ctrl-C,
//! and clear errors (exit code 1, an `error:` line, no panic) for bad input.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

fn handgrad() -> Command {
    Command::new(env!("CARGO_BIN_EXE_handgrad"))
}

fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("handgrad-cli-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("temp dir");
    dir
}

fn run(cmd: &mut Command) -> Output {
    cmd.output().expect("the binary runs")
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

fn is_png(path: &Path) -> bool {
    std::fs::read(path)
        .map(|b| b.starts_with(b"\x89PNG\r\n\x1a\n"))
        .unwrap_or(false)
}

#[test]
fn train_then_eval_then_reconstruct() {
    let dir = temp_dir("flow");
    let runs = dir.join("run");
    let out = run(handgrad()
        .args([
            "train",
            "--epochs",
            "2",
            "--max-samples",
            "400",
            "--batch-size",
            "64",
            "--quiet",
            "--out",
        ])
        .arg(&runs));
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("test loss"), "{}", text(&out));
    let metrics = std::fs::read_to_string(runs.join("metrics.csv")).expect("metrics.csv");
    assert_eq!(
        metrics.lines().next(),
        Some("epoch,train_loss,val_loss,lr,seconds")
    );
    assert_eq!(metrics.lines().count(), 3);
    for png in [
        "loss.png",
        "reconstructions.png",
        "reconstructions/epoch_001.png",
        "reconstructions/epoch_002.png",
    ] {
        assert!(is_png(&runs.join(png)), "{png}");
    }
    let config: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(runs.join("config.json")).expect("config"))
            .expect("json");
    assert_eq!(config["train"]["epochs"], 2);
    assert_eq!(config["model"]["latent"], 6);

    // Architecture fields from the command line: two convolutions, one hidden layer, code 4.
    let custom = dir.join("custom");
    let args = [
        "train",
        "--conv",
        "4:3:2:1,8:3:2:1",
        "--hidden",
        "32",
        "--latent",
        "4",
        "--code-activation",
        "tanh",
    ];
    let out = run(handgrad()
        .args(args)
        .args(["--epochs", "1", "--max-samples", "200", "--quiet", "--out"])
        .arg(&custom));
    assert!(out.status.success(), "{}", text(&out));
    let config: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(custom.join("config.json")).expect("config"))
            .expect("json");
    assert_eq!(config["model"]["conv"][1]["channels"], 8);
    assert_eq!(
        (
            config["model"]["hidden"][0].clone(),
            config["model"]["code_activation"].clone()
        ),
        (32.into(), "tanh".into())
    );

    let out = run(handgrad().args(["eval", "--run"]).arg(&runs));
    assert!(
        out.status.success() && text(&out).contains("test loss"),
        "{}",
        text(&out)
    );
    let picture = dir.join("recon.png");
    let out = run(handgrad()
        .args(["reconstruct", "--count", "5", "--run"])
        .arg(&runs)
        .arg("--out")
        .arg(&picture));
    assert!(out.status.success() && is_png(&picture), "{}", text(&out));
}

#[test]
fn bad_input_gives_an_error_line_not_a_panic() {
    let dir = temp_dir("errors");
    let cases: Vec<(Vec<String>, &str)> = vec![
        (
            vec!["train".into(), "--preset".into(), "conv-huge".into()],
            "unknown \"conv-huge\"",
        ),
        (
            vec![
                "train".into(),
                "--dataset".into(),
                dir.join("nowhere").display().to_string(),
            ],
            "no such folder",
        ),
        (
            vec![
                "train".into(),
                "--lr=-1".into(),
                "--out".into(),
                dir.join("r1").display().to_string(),
            ],
            "learning rate",
        ),
        (
            vec!["train".into(), "--latent".into(), "0".into()],
            "latent size",
        ),
        (
            vec![
                "eval".into(),
                "--run".into(),
                dir.join("missing-run").display().to_string(),
            ],
            "config.json",
        ),
        (
            vec!["download".into(), "cifar".into()],
            "cannot be downloaded",
        ),
    ];
    for (args, expect) in cases {
        // Run inside the temporary folder: a refused run must not leave a runs/ folder behind.
        let out = run(handgrad().current_dir(&dir).args(&args));
        let all = text(&out);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {all}");
        assert!(
            all.contains("error:") && all.contains(expect),
            "{args:?}: {all}"
        );
        assert!(!all.contains("panicked"), "{args:?}: {all}");
    }
    assert!(!dir.join("runs").exists(), "a refused run created a folder");
    // A config file with a typo'd field is refused with the parser's message.
    let cfg = dir.join("bad.toml");
    std::fs::write(&cfg, "preset = \"x\"\ndataset = \"mnist\"\n[model]\nlatent = 4\nactivation = \"relu\"\nlayers = 3\n").expect("write");
    let out = run(handgrad().args(["train", "--config"]).arg(&cfg));
    assert!(
        text(&out).contains("layers") && out.status.code() == Some(1),
        "{}",
        text(&out)
    );
}

#[test]
fn ctrl_c_saves_a_checkpoint_and_resume_finishes_the_run() {
    let dir = temp_dir("sigint").join("run");
    let child = handgrad()
        .args([
            "train",
            "--epochs",
            "5",
            "--batch-size",
            "32",
            "--quiet",
            "--snapshot-epochs",
            "1",
            "--out",
        ])
        .arg(&dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("starts");
    // Wait for the first epoch's files, then interrupt during the second epoch.
    let started = Instant::now();
    while !dir.join("metrics.csv").is_file() {
        assert!(
            started.elapsed() < Duration::from_secs(300),
            "no epoch finished"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let killed = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .expect("kill runs");
    assert!(killed.success());
    let out = child.wait_with_output().expect("exits");
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        text(&out).contains("interrupted: checkpoint saved"),
        "{}",
        text(&out)
    );
    let epochs_done = |d: &Path| {
        std::fs::read_to_string(d.join("metrics.csv"))
            .expect("metrics")
            .lines()
            .count()
            - 1
    };
    assert!(epochs_done(&dir) < 5, "interrupted before the end");

    // --resume takes no other settings (the run's own configuration is used) ...
    let out = run(handgrad()
        .args(["train", "--resume"])
        .arg(&dir)
        .args(["--out", "elsewhere"]));
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    // ... and finishes the remaining epochs.
    let out = run(handgrad().args(["train", "--quiet", "--resume"]).arg(&dir));
    assert!(
        out.status.success() && text(&out).contains("test loss"),
        "{}",
        text(&out)
    );
    assert_eq!(epochs_done(&dir), 5);
}
