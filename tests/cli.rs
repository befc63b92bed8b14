//! The `handgrad` binary as a user runs it: train, eval, reconstruct, resume after Ctrl-C,
//! and for every bad input a user might give, one sentence (`error: …`, exit status 1, no
//! panic, nothing half-written).

mod common;

use common::tiny_dataset;
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

/// Runs `args` in `dir` and checks it is refused: exit status 1, an `error:` line containing
/// `expect`, no panic. Returns everything it printed.
fn refused(dir: &Path, args: &[&str], expect: &str) -> String {
    let out = run(handgrad().current_dir(dir).args(args));
    let all = text(&out);
    assert_eq!(out.status.code(), Some(1), "{args:?}: {all}");
    assert!(
        all.contains("error:") && all.contains(expect),
        "{args:?}: {all}"
    );
    assert!(!all.contains("panicked"), "{args:?}: {all}");
    all
}

fn train_quick(dir: &Path, out: &str, extra: &[&str]) -> Output {
    run(handgrad()
        .current_dir(dir)
        .args([
            "train",
            "--epochs",
            "1",
            "--max-samples",
            "300",
            "--batch-size",
            "64",
            "--quiet",
            "--out",
            out,
        ])
        .args(extra))
}

#[test]
fn train_then_eval_then_reconstruct() {
    let dir = temp_dir("flow");
    let out = run(handgrad().current_dir(&dir).args([
        "train",
        "--epochs",
        "2",
        "--max-samples",
        "400",
        "--batch-size",
        "64",
        "--out",
        "run",
    ]));
    let trained = out;
    let all = text(&trained);
    assert!(trained.status.success(), "{all}");
    // The layer table names each activation; the closing lines name the loss and every output.
    assert!(
        all.contains("SELU") && all.contains("Linear 648→145"),
        "{all}"
    );
    assert!(all.contains("test loss (MSE per pixel)"), "{all}");
    for file in [
        "checkpoint.safetensors",
        "model.safetensors",
        "reconstructions/ (2 snapshots)",
    ] {
        assert!(all.contains(file), "{file}: {all}");
    }
    let runs = dir.join("run");
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
    let out = train_quick(
        &dir,
        "custom",
        &[
            "--conv",
            "4:3:2:1,8:3:2:1",
            "--hidden",
            "32",
            "--latent",
            "4",
            "--code-activation",
            "tanh",
        ],
    );
    assert!(out.status.success(), "{}", text(&out));
    let config: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(dir.join("custom/config.json")).expect("config"),
    )
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
    let all = text(&out);
    assert!(out.status.success(), "{all}");
    assert!(
        all.contains("MSE per pixel") && all.contains("2,000 images"),
        "{all}"
    );
    // Beside the loss, what it is worth: the two baselines on the same 2,000 test images,
    // the same numbers train printed.
    let baselines = all
        .lines()
        .find(|l| l.starts_with("baselines on the same 2000 test images: mean image"))
        .unwrap_or_else(|| panic!("no baselines: {all}"));
    assert!(
        text(&trained).contains(baselines),
        "eval and train disagree: {baselines}"
    );

    // eval on other data: every test image of another IDX folder.
    let tiny = tiny_dataset(&dir, 30, 20);
    let out = run(handgrad()
        .args(["eval", "--run"])
        .arg(&runs)
        .arg("--dataset")
        .arg(&tiny));
    assert!(
        out.status.success() && text(&out).contains("all 20 test images"),
        "{}",
        text(&out)
    );
    assert!(text(&out).contains("(no baselines:"), "{}", text(&out));

    let picture = dir.join("recon.png");
    let out = run(handgrad()
        .args(["reconstruct", "--count", "5", "--run"])
        .arg(&runs)
        .arg("--out")
        .arg(&picture));
    assert!(out.status.success() && is_png(&picture), "{}", text(&out));
    // An existing picture is replaced only when asked.
    let again = || {
        let mut c = handgrad();
        c.args(["reconstruct", "--run"])
            .arg(&runs)
            .arg("--out")
            .arg(&picture);
        c
    };
    let out = run(&mut again());
    assert!(
        text(&out).contains("--force") && out.status.code() == Some(1),
        "{}",
        text(&out)
    );
    assert!(run(again().arg("--force")).status.success());
}

#[test]
fn every_bad_input_gets_a_sentence() {
    let dir = temp_dir("errors");
    let nowhere = dir.join("nowhere").display().to_string();
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (
            vec!["train", "--preset", "conv-huge"],
            "unknown \"conv-huge\"",
        ),
        (
            vec!["train", "--dataset", &nowhere],
            "neither a dataset name",
        ),
        // The names and folders are listed for a misspelt dataset.
        (
            vec!["train", "--dataset", "fmnist"],
            "(mnist, fashion-mnist)",
        ),
        // A negative number reaches our own check, which names the setting.
        (
            vec!["train", "--lr", "-1"],
            "learning rate: -1 must be a positive number",
        ),
        (vec!["train", "--latent", "0"], "latent size"),
        // Sizes are checked against memory before anything is allocated.
        (
            vec!["train", "--latent", "10000000000"],
            "the model is too large",
        ),
        (vec!["train", "--classes", "3,11"], "11 is not a class"),
        (vec!["train", "--test", "0"], "empty test set"),
        (
            vec!["train", "--conv", "8:3:2"],
            "channels:kernel:stride:padding",
        ),
        (vec!["train", "--activation", "none"], "unknown \"none\""),
        (
            vec!["train", "--loss", "bce", "--output-activation", "none"],
            "sigmoid output",
        ),
        (vec!["train", "--corrupt", "gauss:0.3"], "gaussian:F"),
        (
            vec!["train", "--early-stopping", "3", "--validation", "0"],
            "validation set is empty",
        ),
        (vec!["eval", "--run", &nowhere], "does not exist"),
        (vec!["eval", "--run", "."], "is not a run folder"),
        (vec!["download", "cifar"], "cannot be downloaded"),
        (
            vec!["reconstruct", "--run", ".", "--count", "0"],
            "show between 1 and 100",
        ),
        (
            vec!["reconstruct", "--run", ".", "--count", "5000"],
            "show between 1 and 100",
        ),
        (
            vec!["reconstruct", "--run", ".", "--out", "r.jpg"],
            "does not end in .png",
        ),
    ];
    for (args, expect) in cases {
        // Run inside the temporary folder: a refused run must not leave a runs/ folder behind.
        refused(&dir, &args, expect);
    }
    assert!(!dir.join("runs").exists(), "a refused run created a folder");

    // A missing file is reported once, not as a message and again as its cause.
    let all = refused(&dir, &["train", "--config", "missing.toml"], "missing.toml");
    assert_eq!(all.matches("No such file").count(), 1, "{all}");

    // A config file with a typo'd field is refused with the parser's message.
    let cfg = dir.join("bad.toml");
    std::fs::write(&cfg, "preset = \"x\"\n[model]\nlatent = 4\nlayers = 3\n").expect("write");
    refused(
        &dir,
        &["train", "--config", cfg.to_str().expect("utf-8")],
        "layers",
    );

    // The decoder part of a config is checked like the encoder.
    let cfg = dir.join("decoder.toml");
    std::fs::write(
        &cfg,
        "[model]\ndecoder = { hidden = [32], deconv = [{ channels = 0, kernel = 3, stride = 2, padding = 1 }] }\n",
    )
    .expect("write");
    refused(
        &dir,
        &["train", "--config", cfg.to_str().expect("utf-8")],
        "deconv 0",
    );

    // A test size for a dataset that has its own test set is refused, not ignored.
    let tiny = tiny_dataset(&dir, 60, 20);
    refused(
        &dir,
        &[
            "train",
            "--dataset",
            tiny.to_str().expect("utf-8"),
            "--test",
            "0.5",
        ],
        "its own test set",
    );
}

#[test]
fn a_partial_config_is_completed_from_its_preset() {
    let dir = temp_dir("partial");
    let cfg = dir.join("partial.json");
    std::fs::write(
        &cfg,
        r#"{"model": {"conv": [{"channels": 4, "kernel": 3, "stride": 2, "padding": 1}], "hidden": [32], "latent": 4}}"#,
    )
    .expect("write");
    let out = train_quick(&dir, "run", &["--config", cfg.to_str().expect("utf-8")]);
    assert!(out.status.success(), "{}", text(&out));
    let config: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(dir.join("run/config.json")).expect("config"),
    )
    .expect("json");
    // Given fields are kept; the rest comes from the default preset (conv-selu).
    assert_eq!(config["model"]["latent"], 4);
    assert_eq!(config["model"]["activation"], "selu");
    assert_eq!(config["model"]["init"], "lecun_normal");
}

#[test]
fn max_samples_cuts_training_not_the_test_set() {
    let dir = temp_dir("max");
    assert!(train_quick(&dir, "run", &[]).status.success());
    // The shipped test set: 2,000 of its 10,000 images are the test split, whatever the cap
    // on training images (300 here).
    let eval = run(handgrad().args(["eval", "--run"]).arg(dir.join("run")));
    assert!(text(&eval).contains("2,000 images"), "{}", text(&eval));
}

#[test]
fn a_diverging_first_epoch_says_where_and_that_no_checkpoint_exists() {
    let dir = temp_dir("nan");
    let out = train_quick(&dir, "run", &["--optimizer", "sgd", "--lr", "1e6"]);
    let all = text(&out);
    assert_eq!(out.status.code(), Some(1), "{all}");
    assert!(all.contains("NaN or infinite at epoch 1"), "{all}");
    assert!(
        all.contains("the first non-finite value appeared in"),
        "{all}"
    );
    assert!(all.contains("no checkpoint exists"), "{all}");
    assert!(!all.contains("was kept"), "{all}");
}

#[test]
fn resume_extends_a_finished_run_and_refuses_what_it_would_ignore() {
    let dir = temp_dir("extend");
    assert!(train_quick(&dir, "run", &[]).status.success());
    let run_dir = dir.join("run");
    let rows = || {
        std::fs::read_to_string(run_dir.join("metrics.csv"))
            .expect("metrics")
            .lines()
            .count()
            - 1
    };
    assert_eq!(rows(), 1);
    // A finished run and no more epochs asked for (a batch system running a finished job's
    // command again): nothing to do, said so, exit status 0, nothing touched.
    let before = std::fs::read(run_dir.join("checkpoint.safetensors")).expect("checkpoint");
    for again in [
        &["train", "--resume", "run"][..],
        &["train", "--resume", "run", "--epochs", "1"],
    ] {
        let out = run(handgrad().current_dir(&dir).args(again));
        let said = text(&out);
        assert!(out.status.success(), "{said}");
        assert!(
            said.contains("nothing to do: run has finished 1 of 1 epochs"),
            "{said}"
        );
    }
    assert_eq!(rows(), 1);
    let after = std::fs::read(run_dir.join("checkpoint.safetensors")).expect("checkpoint");
    assert!(before == after, "the checkpoint was rewritten");
    // Settings the run was started with cannot be changed on resume; the flag is named.
    refused(
        &dir,
        &["train", "--resume", "run", "--lr", "0.1"],
        "--lr cannot be given",
    );
    refused(
        &dir,
        &["train", "--resume", "run", "--epochs", "0"],
        "would undo",
    );
    // Extending: the metrics, the schedule and the checkpoint continue.
    let out = run(handgrad()
        .current_dir(&dir)
        .args(["train", "--resume", "run", "--epochs", "3", "--quiet"]));
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(rows(), 3);
    let config: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(run_dir.join("config.json")).expect("config"),
    )
    .expect("json");
    assert_eq!(config["train"]["epochs"], 3);
}

#[test]
fn help_shows_every_default() {
    let out = run(handgrad().args(["train", "--help"]));
    let help = text(&out);
    for want in [
        "Passes over the training set [default: the preset's: 20]",
        "Images per step [default: the preset's: conv-selu 512, conv-small 128, mlp4 2048, mlp1-K 32, mlp3-K 32]",
        "Learning rate [default: the preset's: conv-selu 0.001, conv-small 0.002",
        "[default: mnist]",
        "[default: 0.1]",
        "Seed of initialisation, splits, shuffles and corruptions [default: 0]",
        "[default: 1,2,5,10,20,50,100]",
        "Multiply the learning rate by --plateau-factor",
    ] {
        assert!(help.contains(want), "missing {want:?} in:\n{help}");
    }
    assert!(!help.contains("Halve"), "{help}");
    // Every command's help states each default once.
    for command in [
        "train",
        "eval",
        "reconstruct",
        "denoise",
        "generate",
        "manifold",
        "interpolate",
        "download",
    ] {
        let help = text(&run(handgrad().args([command, "--help"])));
        assert!(help.contains("Usage: handgrad"), "{command}: {help}");
        for line in help.lines() {
            assert!(line.matches("[default:").count() <= 1, "{command}: {line}");
        }
    }
}

#[test]
fn the_experiment_commands_write_their_pictures_and_refuse_bad_input() {
    let dir = temp_dir("experiments");
    let out = train_quick(&dir, "ae", &[]);
    assert!(out.status.success(), "{}", text(&out));
    let out = train_quick(
        &dir,
        "vae",
        &[
            "--preset",
            "mlp3-32",
            "--variational",
            "--latent",
            "2",
            "--code-activation",
            "none",
        ],
    );
    assert!(out.status.success(), "{}", text(&out));
    let ok = |args: &[&str], files: &[&str]| {
        let out = run(handgrad().current_dir(&dir).args(args));
        assert!(out.status.success(), "{args:?}: {}", text(&out));
        for f in files {
            assert!(is_png(&dir.join(f)), "{args:?} did not write {f}");
        }
        text(&out)
    };
    ok(
        &[
            "denoise",
            "--run",
            "ae",
            "--corrupt",
            "gaussian:0.3+occlusion:6",
        ],
        &["ae/denoise.png"],
    );
    ok(
        &["generate", "--run", "ae", "--n", "12"],
        &["ae/generate.png"],
    );
    ok(
        &["generate", "--run", "ae", "--centroids", "--out", "c.png"],
        &["c.png"],
    );
    ok(&["generate", "--run", "vae"], &["vae/generate.png"]);
    ok(
        &["manifold", "--run", "vae", "--grid", "6"],
        &["vae/manifold.png", "vae/manifold-codes.png"],
    );
    ok(
        &[
            "interpolate",
            "--run",
            "ae",
            "--from",
            "0",
            "--to",
            "class:3",
        ],
        &["ae/interpolate.png"],
    );
    let all = ok(
        &[
            "eval",
            "--run",
            "ae",
            "--corrupt",
            "occlusion:8",
            "--noise-sweep",
            "0:0.4:0.2",
        ],
        &["ae/noise-sweep.png"],
    );
    assert!(
        all.contains("occlusion:8") && all.contains("identity"),
        "{all}"
    );
    let all = ok(
        &[
            "latent", "--run", "ae", "--method", "tsne", "--n", "200", "--steps", "250",
        ],
        &["ae/latent-tsne.png"],
    );
    assert!(all.contains("nearest neighbour"), "{all}");
    let all = ok(&["latent", "--run", "ae"], &["ae/latent-pca.png"]);
    assert!(all.contains("of the codes' variance"), "{all}");
    let all = ok(&["weights", "--run", "ae"], &["ae/weights-encoder.0.png"]);
    assert!(all.contains("(6 tiles)"), "{all}");
    let all = ok(
        &["weights", "--run", "ae", "--first", "2", "--out", "w2.png"],
        &["w2.png"],
    );
    assert!(all.contains("(4 tiles)"), "{all}");
    let all = ok(
        &[
            "pca",
            "--max-samples",
            "600",
            "--components",
            "8,32",
            "--out",
            "p.png",
        ],
        &["p.png"],
    );
    // A run's split: a tenth of the 600 held out for validation.
    assert!(all.contains("fitted on 540 training images"), "{all}");
    let all = ok(&["explain", "--run", "ae", "--batch-size", "8"], &[]);
    assert!(
        all.contains("decoder.13  ConvTranspose2d 6→1") && all.contains("↳ output_padding 1 = 28"),
        "{all}"
    );
    let all = ok(
        &["classify", "--run", "ae", "--epochs", "2", "--quiet"],
        &[
            "ae/classify-frozen/confusion.png",
            "ae/classify-frozen/curves.png",
        ],
    );
    assert!(all.contains("test accuracy"), "{all}");
    let csv = std::fs::read_to_string(dir.join("ae/noise-sweep.csv")).expect("the sweep's CSV");
    assert_eq!(
        csv.lines().count(),
        4,
        "a header and three noise levels: {csv}"
    );

    for (args, expect) in [
        (
            vec![
                "denoise",
                "--run",
                "ae",
                "--corrupt",
                "gauss:0.3",
                "--out",
                "d.png",
            ],
            "gaussian:F",
        ),
        (
            vec![
                "denoise",
                "--run",
                "ae",
                "--corrupt",
                "occlusion:40",
                "--out",
                "d.png",
            ],
            "does not fit a 28×28 image",
        ),
        (
            vec![
                "generate", "--run", "ae", "--source", "prior", "--out", "g.png",
            ],
            "--variational",
        ),
        (
            vec!["generate", "--run", "ae", "--n", "0", "--out", "g.png"],
            "between 1 and 100",
        ),
        (
            vec![
                "generate",
                "--run",
                "ae",
                "--centroids",
                "--sigmas",
                "1,x",
                "--out",
                "g.png",
            ],
            "not a number",
        ),
        (vec!["manifold", "--run", "ae"], "needs exactly 2"),
        (
            vec![
                "interpolate",
                "--run",
                "ae",
                "--from",
                "0",
                "--to",
                "99999",
                "--out",
                "i.png",
            ],
            "past the test set",
        ),
        (
            vec![
                "interpolate",
                "--run",
                "ae",
                "--from",
                "class:12",
                "--to",
                "1",
                "--out",
                "i.png",
            ],
            "no image of class 12",
        ),
        (
            vec!["eval", "--run", "ae", "--noise-sweep", "0:1:0"],
            "START:END:STEP",
        ),
        // Sizes from the command line are checked before anything is allocated.
        (
            vec!["gradcheck", "relu", "--shape", "1000000,1000000"],
            "a finite-difference check runs two forward passes per element",
        ),
        (
            vec![
                "classify",
                "--features",
                "pca:8",
                "--hidden",
                "100000000",
                "--max-samples",
                "300",
                "--out",
                "q2",
            ],
            "the classifier's head (1,900,000,010 parameters) needs about",
        ),
        // Options that choose PCA features' images are refused with a run, not dropped.
        (
            vec!["classify", "--run", "ae", "--classes", "3,5", "--out", "q3"],
            "--classes chooses the images for --features pca:K",
        ),
        (
            vec![
                "classify",
                "--run",
                "ae",
                "--dataset",
                "/missing",
                "--out",
                "q4",
            ],
            "--dataset chooses the images for --features pca:K",
        ),
        // An endless sweep is refused, not run as an empty one.
        (
            vec![
                "eval",
                "--run",
                "ae",
                "--noise-sweep",
                "0:inf:0.1",
                "--out",
                "inf",
            ],
            "every number must be finite",
        ),
        (
            vec![
                "eval",
                "--run",
                "ae",
                "--noise-sweep",
                "0:1e30:1e-30",
                "--out",
                "huge",
            ],
            "more than 101 levels",
        ),
        (
            vec!["latent", "--run", "ae", "--method", "umap"],
            "unknown \"umap\"",
        ),
        (
            vec!["latent", "--run", "ae", "--n", "99999", "--out", "l.png"],
            "give 3 to 2000",
        ),
        (
            vec![
                "latent",
                "--run",
                "ae",
                "--method",
                "tsne",
                "--perplexity",
                "500",
                "--n",
                "100",
                "--out",
                "l.png",
            ],
            "perplexity",
        ),
        (
            vec![
                "weights",
                "--run",
                "ae",
                "--layer",
                "encoder.2",
                "--out",
                "w.png",
            ],
            "one channel",
        ),
        (
            vec![
                "weights", "--run", "ae", "--layer", "conv9", "--out", "w.png",
            ],
            "has no weights",
        ),
        (
            vec!["weights", "--run", "ae", "--first", "6", "--out", "w.png"],
            "numbered 0 to 5",
        ),
        (
            vec!["pca", "--components", "0", "--out", "q.png"],
            "whole number",
        ),
        (
            vec!["pca", "--components", "1000", "--out", "q.png"],
            "at most 784",
        ),
        (vec!["classify"], "give --run FOLDER"),
        (vec!["explain", "--run", "nowhere"], "nowhere"),
        (
            vec!["classify", "--run", "ae", "--hidden", "64,0", "--out", "c"],
            "not a whole number",
        ),
        (
            vec!["classify", "--features", "pca:0", "--out", "c"],
            "K ≥ 1",
        ),
        (
            vec!["classify", "--run", "ae", "--epochs", "1"],
            "already exists",
        ),
        (vec!["sweep", "--epochs", "1"], "exactly one setting"),
        (vec!["sweep", "--latent", "2,3", "--lr", "1e-3"], "not 2"),
        (
            vec!["sweep", "--latent", "2,0", "--out", "s"],
            "whole number",
        ),
        (vec!["search", "--shard", "3/2", "--out", "s"], "1 ≤ I ≤ N"),
        (vec!["search", "--shard", "0/2", "--out", "s"], "1 ≤ I ≤ N"),
        (
            vec!["search", "--collect", "nowhere", "--out", "s"],
            "nowhere",
        ),
        // Existing pictures are kept unless --force.
        (vec!["generate", "--run", "ae"], "--force"),
        (vec!["manifold", "--run", "vae"], "--force"),
        (
            vec!["eval", "--run", "ae", "--noise-sweep", "0:1:0.5"],
            "--force",
        ),
    ] {
        refused(&dir, &args, expect);
    }
    for never in [
        "d.png", "g.png", "i.png", "l.png", "w.png", "q.png", "c", "inf.csv", "huge.csv", "q2",
        "q3", "q4",
    ] {
        assert!(
            !dir.join(never).exists(),
            "{never} was written by a refused command"
        );
    }
}

#[test]
fn download_without_a_network_says_so_once_and_leaves_nothing() {
    let dir = temp_dir("offline");
    let target = dir.join("mnist");
    // Port 9 on 127.0.0.1 (discard) refuses connections on a machine that runs no such service.
    let all = refused(
        &dir,
        &[
            "download",
            "mnist",
            "--mirror",
            "http://127.0.0.1:9/",
            "--dir",
            target.to_str().expect("utf-8"),
        ],
        "no mirror delivered",
    );
    assert_eq!(
        all.matches("http://127.0.0.1:9/train-images-idx3-ubyte.gz")
            .count(),
        1,
        "{all}"
    );
    assert!(all.contains("training still works"), "{all}");
    assert!(!target.exists(), "an empty folder was left behind");
}

#[test]
fn ctrl_c_saves_a_checkpoint_exits_130_and_resume_finishes_the_run() {
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
    let all = text(&out);
    // 130: a script can tell an interrupted run from a finished one.
    assert_eq!(out.status.code(), Some(130), "{all}");
    assert!(
        all.contains("interrupted: checkpoint saved during epoch 2, after batch")
            || all.contains("interrupted: checkpoint saved after epoch"),
        "{all}"
    );
    let epochs_done = |d: &Path| {
        std::fs::read_to_string(d.join("metrics.csv"))
            .expect("metrics")
            .lines()
            .count()
            - 1
    };
    assert!(epochs_done(&dir) < 5, "interrupted before the end");
    let out = run(handgrad().args(["train", "--quiet", "--resume"]).arg(&dir));
    assert!(
        out.status.success() && text(&out).contains("test loss"),
        "{}",
        text(&out)
    );
    assert_eq!(epochs_done(&dir), 5);
}

#[test]
fn bench_prints_a_json_line_with_what_comparisons_read() {
    let out = run(handgrad().args([
        "bench",
        "--preset",
        "conv-small",
        "--steps",
        "2",
        "--runs",
        "1",
        "--warmup",
        "1",
        "--threads",
        "1",
        "--json",
    ]));
    let all = text(&out);
    assert!(out.status.success(), "{all}");
    let line = all
        .lines()
        .find(|l| l.starts_with('{'))
        .expect("a JSON line");
    let v: serde_json::Value = serde_json::from_str(line).expect("valid JSON");
    for key in [
        "preset",
        "mode",
        "batch",
        "threads",
        "img_per_s",
        "runs",
        "gflops",
        "isa",
        "peak_rss_mb",
    ] {
        assert!(!v[key].is_null(), "{key} missing: {line}");
    }
    assert_eq!(
        (v["batch"].as_u64(), v["threads"].as_u64()),
        (Some(128), Some(1))
    );
    assert!(v["img_per_s"].as_f64().is_some_and(|r| r > 0.0));
    let dir = temp_dir("bench");
    refused(&dir, &["bench", "--threads", "0"], "at least 1");
    refused(&dir, &["bench", "--mode", "fast"], "train, infer");
}

/// `HANDGRAD_ISA` chooses the kernels' instruction set: `bench` names it in its JSON (as
/// `compare.py --isa avx2` checks), a training run gives the same loss to the printed digits
/// on AVX-512 and AVX2 (the portable kernels sum in another order), and a name that is no
/// instruction set, or one the processor lacks, is refused before anything runs.
#[test]
fn handgrad_isa_chooses_the_kernels_and_bench_names_it() {
    use kernels::peak::Isa;
    let isa_of = |isa: &str| {
        let out = run(handgrad().env("HANDGRAD_ISA", isa).args([
            "bench", "--preset", "mlp4", "--steps", "1", "--runs", "1", "--warmup", "0", "--json",
        ]));
        assert!(out.status.success(), "{}", text(&out));
        let all = text(&out);
        let line = all
            .lines()
            .find(|l| l.starts_with('{'))
            .expect("a JSON line");
        let v: serde_json::Value = serde_json::from_str(line).expect("valid JSON");
        v["isa"].as_str().expect("an isa").to_string()
    };
    for isa in Isa::available() {
        assert_eq!(isa_of(isa.short()), isa.name());
    }
    assert_eq!(isa_of(""), Isa::detect().name());
    let dir = temp_dir("isa");
    let refusal = |isa: &str| {
        let out = run(handgrad()
            .current_dir(&dir)
            .env("HANDGRAD_ISA", isa)
            .args(["explain"]));
        assert!(!out.status.success());
        text(&out)
    };
    assert!(refusal("sse9").contains(
        "HANDGRAD_ISA=\"sse9\" is not an instruction set: give avx512, avx2 or portable"
    ));
    if !Isa::Avx512.supported() {
        assert!(refusal("avx512").contains("which this processor lacks"));
    }
    // The same numbers on the two vector widths.
    let loss = |isa: &str| {
        let out = run(handgrad().current_dir(&dir).env("HANDGRAD_ISA", isa).args([
            "train",
            "--quiet",
            "--epochs",
            "1",
            "--max-samples",
            "1200",
            "--batch-size",
            "64",
            "--out",
            &format!("run-{isa}"),
        ]));
        let all = text(&out);
        assert!(out.status.success(), "{all}");
        all.lines()
            .find(|l| l.starts_with("test loss"))
            .expect("a test loss")
            .to_string()
    };
    let widths: Vec<String> = Isa::available()
        .into_iter()
        .filter(|i| *i != Isa::Portable)
        .map(|i| loss(i.short()))
        .collect();
    assert!(widths.windows(2).all(|w| w[0] == w[1]), "{widths:?}");
}

#[test]
fn gradcheck_passes_every_op_and_catches_a_planted_bug_loudly() {
    let out = run(handgrad().args(["gradcheck", "all"]));
    let all = text(&out);
    assert!(out.status.success(), "{all}");
    assert!(
        all.contains("every gradient matches") && !all.contains("FAILS"),
        "{all}"
    );
    let dir = temp_dir("gradcheck");
    let out = run(handgrad().current_dir(&dir).args([
        "gradcheck",
        "conv2d",
        "--stride",
        "1",
        "--padding",
        "0",
        "--plant-bug",
    ]));
    let all = text(&out);
    assert!(out.status.success(), "{all}");
    assert!(
        all.contains("planted: after each op")
            && all.contains("FAILS")
            && all.contains(
                "the planted bug was caught on every op checked (1): this is the expected outcome"
            ),
        "{all}"
    );
    refused(&dir, &["gradcheck", "conv3d"], "unknown \"conv3d\"");
    let out =
        run(handgrad()
            .current_dir(&dir)
            .args(["trace", "--batch-size", "4", "--dot", "t.dot"]));
    let all = text(&out);
    assert!(out.status.success(), "{all}");
    // Every layer explain lists is seen: the activation fused into each product is named,
    // and the loss says what it is and that it is a single number.
    assert!(
        all.contains("Conv2d + selu")
            && all.contains("Linear + selu")
            && all.contains("ConvTranspose2d + sigmoid")
            && all.contains("mse loss × 1/3136")
            && all.contains("scalar")
            && all.contains("909,608 per image"),
        "{all}"
    );
    assert!(std::fs::read_to_string(dir.join("t.dot")).is_ok_and(|d| d.starts_with("digraph")));
    refused(
        &dir,
        &["trace", "--batch-size", "20000"],
        "images available",
    );
    refused(
        &dir,
        &["gradcheck", "linear", "--shape", "2,0"],
        "at least 1",
    );
}

#[test]
fn a_reader_that_stops_early_ends_the_program_quietly() {
    use std::io::{BufRead, BufReader};
    // `handgrad gradcheck all | head -1`: the pipe closes after one line.
    let mut child = handgrad()
        .args(["gradcheck", "all"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the binary starts");
    let stdout = child.stdout.take().expect("stdout");
    let mut first = String::new();
    BufReader::new(stdout)
        .read_line(&mut first)
        .expect("a line");
    // The reader is dropped here, closing the pipe.
    let out = child.wait_with_output().expect("it ends");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(first.contains("central differences"), "{first}");
    assert!(!err.contains("panicked"), "{err}");
}

#[test]
fn naive_runs_the_reference_loops_and_gets_the_same_numbers() {
    let dir = temp_dir("naive");
    let fast = train_quick(&dir, "fast", &[]);
    let slow = train_quick(&dir, "slow", &["--naive"]);
    assert!(
        fast.status.success() && slow.status.success(),
        "{}{}",
        text(&fast),
        text(&slow)
    );
    let losses = |run: &str| -> Vec<f64> {
        let csv = std::fs::read_to_string(dir.join(run).join("metrics.csv")).expect("metrics");
        csv.lines()
            .skip(1)
            .flat_map(|l| {
                l.split(',')
                    .skip(1)
                    .take(2)
                    .map(|v| v.parse::<f64>().expect("a number"))
                    .collect::<Vec<_>>()
            })
            .collect()
    };
    let (a, b) = (losses("fast"), losses("slow"));
    assert_eq!(a.len(), b.len());
    for (x, y) in a.iter().zip(&b) {
        // f64 sums in the reference loops against f32 in the fast kernels: equal to rounding.
        assert!(
            (x - y).abs() <= 1e-4 * x.abs(),
            "fast {x} against reference {y}"
        );
    }
}

/// Commands that write nothing a user names (or, for `download`, that check what is in their
/// folder and keep every good file: resuming a download is its purpose; `explore` only reads
/// run folders and answers requests).
const WRITE_NOTHING: &[&str] = &[
    "explain",
    "gradcheck",
    "bench",
    "download",
    "explore",
    "help",
];

#[test]
fn no_command_overwrites_what_exists() {
    let dir = temp_dir("claims");
    for (run, extra) in [
        ("ae", &[][..]),
        ("ae2", &["--latent", "2", "--preset", "mlp3-32"]),
    ] {
        let out = train_quick(&dir, run, extra);
        assert!(out.status.success(), "{}", text(&out));
    }
    // Each command, pointed at a file or a folder that exists: (command line, the target).
    let cases: &[(&[&str], &str)] = &[
        (&["train", "--epochs", "1", "--out", "t"], "t"),
        (
            &[
                "eval",
                "--run",
                "ae",
                "--noise-sweep",
                "0:1:0.5",
                "--out",
                "s",
            ],
            "s.png",
        ),
        (
            &[
                "eval",
                "--run",
                "ae",
                "--noise-sweep",
                "0:1:0.5",
                "--out",
                "c",
            ],
            "c.csv",
        ),
        (&["reconstruct", "--run", "ae", "--out", "f.png"], "f.png"),
        (
            &[
                "denoise",
                "--run",
                "ae",
                "--corrupt",
                "gaussian:0.3",
                "--out",
                "f.png",
            ],
            "f.png",
        ),
        (&["generate", "--run", "ae", "--out", "f.png"], "f.png"),
        (
            &["generate", "--run", "ae", "--centroids", "--out", "f.png"],
            "f.png",
        ),
        (&["manifold", "--run", "ae2", "--out", "f.png"], "f.png"),
        (
            &["manifold", "--run", "ae2", "--out", "m.png"],
            "m-codes.png",
        ),
        (
            &[
                "interpolate",
                "--run",
                "ae",
                "--from",
                "0",
                "--to",
                "1",
                "--out",
                "f.png",
            ],
            "f.png",
        ),
        (&["latent", "--run", "ae", "--out", "f.png"], "f.png"),
        (&["weights", "--run", "ae", "--out", "f.png"], "f.png"),
        (&["pca", "--out", "f.png"], "f.png"),
        (&["classify", "--run", "ae", "--out", "t"], "t"),
        (&["sweep", "--latent", "2", "--out", "t"], "t"),
        (&["search", "--trials", "1", "--out", "t"], "t"),
        (&["search", "--collect", "ae", "--out", "t"], "t"),
        (&["search", "--collect", "t", "--out", "t"], "t"),
        (&["trace", "--preset", "mlp4", "--dot", "f.dot"], "f.dot"),
        (&["reproduce", "digits-01247", "--quick", "--out", "t"], "t"),
    ];
    for (args, target) in cases {
        let path = dir.join(target);
        let folder = !target.contains('.');
        let sentinel = if folder {
            path.join("mine.txt")
        } else {
            path.clone()
        };
        std::fs::create_dir_all(sentinel.parent().expect("a parent")).expect("dir");
        std::fs::write(&sentinel, b"written by the user").expect("sentinel");
        let said = refused(&dir, args, "exists");
        assert!(
            said.contains(target),
            "{args:?} did not name {target}: {said}"
        );
        assert_eq!(
            std::fs::read(&sentinel).expect("still there"),
            b"written by the user",
            "{args:?} changed {target}"
        );
        if folder {
            let held: Vec<_> = std::fs::read_dir(&path).expect("folder").collect();
            assert_eq!(held.len(), 1, "{args:?} wrote into {target}");
        }
        if folder {
            std::fs::remove_dir_all(&path).expect("cleaned");
        } else {
            std::fs::remove_file(&path).expect("cleaned");
        }
    }
    // Every command is either above or writes nothing a user names.
    let help = text(&run(handgrad().arg("--help")));
    let commands = help
        .lines()
        .skip_while(|l| !l.starts_with("Commands:"))
        .skip(1)
        .take_while(|l| l.starts_with("  "))
        .filter_map(|l| l.split_whitespace().next());
    for command in commands {
        assert!(
            WRITE_NOTHING.contains(&command) || cases.iter().any(|(a, _)| a[0] == command),
            "{command} writes something and has no case here"
        );
    }
}

#[test]
fn search_shards_merge_only_what_belongs_together() {
    let dir = temp_dir("shards");
    let search = |args: &[&str], env: &[(&str, &str)]| -> Output {
        let mut cmd = handgrad();
        cmd.current_dir(&dir).args([
            "search",
            "--preset",
            "mlp1-8",
            "--epochs",
            "1",
            "--max-samples",
            "100",
            "--quiet",
        ]);
        cmd.args(args);
        for var in [
            "SLURM_ARRAY_TASK_ID",
            "SLURM_ARRAY_TASK_MIN",
            "SLURM_ARRAY_TASK_COUNT",
        ] {
            cmd.env_remove(var);
        }
        cmd.envs(env.iter().copied());
        run(&mut cmd)
    };
    let ok = |out: Output| {
        let said = text(&out);
        assert!(out.status.success(), "{said}");
        said
    };
    // Part 1 of 2 and, from a Slurm job array's variables, part 2 of 2.
    ok(search(
        &["--trials", "3", "--shard", "1/2", "--out", "a"],
        &[],
    ));
    let said = ok(search(
        &["--trials", "3", "--out", "b"],
        &[
            ("SLURM_ARRAY_TASK_ID", "2"),
            ("SLURM_ARRAY_TASK_MIN", "1"),
            ("SLURM_ARRAY_TASK_COUNT", "2"),
        ],
    ));
    assert!(said.contains("shard 2/2: trials 1"), "{said}");
    // A search with another seed is not part of this one.
    ok(search(
        &[
            "--trials", "3", "--seed", "4", "--shard", "2/2", "--out", "other",
        ],
        &[],
    ));
    let said = refused(
        &dir,
        &["search", "--collect", "a", "other", "--out", "m1"],
        "come from different searches: --seed is 0 in the first and 4 in the second",
    );
    assert!(!dir.join("m1").exists(), "{said}");
    // A missing shard is named; --partial ranks what there is and says so.
    refused(
        &dir,
        &["search", "--collect", "a", "--out", "m2"],
        "1 of the search's 3 trials are missing (trials 1)",
    );
    let said = ok(run(handgrad().current_dir(&dir).args([
        "search",
        "--collect",
        "a",
        "--partial",
        "--out",
        "m3",
    ])));
    assert!(said.contains("partial: 1 trials missing (1)"), "{said}");
    let md = std::fs::read_to_string(dir.join("m3/results.md")).expect("results.md");
    assert!(
        md.starts_with("Partial: 2 of 3 trials; missing trials 1."),
        "{md}"
    );
    let said = ok(run(handgrad().current_dir(&dir).args([
        "search",
        "--collect",
        "a",
        "b",
        "--out",
        "m4",
    ])));
    assert!(said.contains("best of 3 trials"), "{said}");
    // A shard with no trials says so, leaves a folder --collect takes, and claims no files it
    // did not write.
    let said = ok(search(
        &["--trials", "1", "--shard", "2/2", "--out", "empty"],
        &[],
    ));
    assert!(said.contains("shard 2/2: trials none"), "{said}");
    assert!(
        said.contains("no best-config.json") && !dir.join("empty/best-config.json").exists(),
        "{said}"
    );
    ok(search(
        &["--trials", "1", "--shard", "1/2", "--out", "full"],
        &[],
    ));
    let said = ok(run(handgrad().current_dir(&dir).args([
        "search",
        "--collect",
        "full",
        "empty",
        "--out",
        "m5",
    ])));
    assert!(said.contains("best of 1 trials"), "{said}");
}
