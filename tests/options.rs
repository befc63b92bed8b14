//! Every option reaches the computation it names. The command-line side (each option lands in
//! its field of the configuration) is checked beside each command's arguments in `src/cli/`;
//! here the other half: a setting changed in the configuration changes what training does,
//! and each picture command's options change the picture it draws. Each check compares two
//! cheap runs that differ in that one setting, so a setting read into the configuration and
//! then ignored (or replaced by a constant) on its way fails here.

mod common;

use handgrad::data::batches::{Amount, SplitSpec};
use handgrad::data::corrupt::Corruption;
use handgrad::experiments::classify::{classify, Backbone, ClassifyReport, ClassifySpec};
use handgrad::experiments::train::{train_new, RunReport};
use handgrad::experiments::RunOptions;
use handgrad::models::ConvLayer;
use handgrad::nn::Init;
use handgrad::train::{LossName, OptimizerName, Outcome, PlateauSpec, RunConfig, Silent};
use kernels::elementwise::Activation;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};

fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("handgrad-opt-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("temp dir");
    dir
}

// ---------------------------------------------------------------------------------------------
// Training settings

/// A run of a few seconds: mlp3-32 on 400 MNIST images for two epochs.
fn base() -> RunConfig {
    let mut cfg = RunConfig::quick("mlp3-32", 400, 2, 50).expect("preset");
    cfg.split.test = Some(Amount::Count(300));
    cfg
}

/// Trains `cfg` into a fresh folder under `root`.
fn train(cfg: RunConfig, root: &Path) -> RunReport {
    static RUNS: AtomicUsize = AtomicUsize::new(0);
    let dir = root.join(format!("run-{}", RUNS.fetch_add(1, Ordering::Relaxed)));
    train_new(cfg, &dir, &RunOptions::default(), &mut Silent).expect("a run that trains")
}

/// What a run did, without its wall times: every epoch's losses and rate, the test loss, and
/// how many images each set held.
fn fingerprint(r: &RunReport) -> String {
    let epochs: Vec<String> = r
        .history
        .iter()
        .map(|e| {
            format!(
                "{} {} {:?} {}",
                e.train_loss, e.val_loss, e.train_terms, e.lr
            )
        })
        .collect();
    format!(
        "{epochs:?} test {:?} images {} {}",
        r.test.as_ref().map(|t| t.loss),
        r.train_images,
        r.test_images
    )
}

type Change = fn(&mut RunConfig);

/// Each training setting, a value unlike the base run's, and what must then hold beside
/// "the run differs" (`None`: differing is the check).
#[allow(clippy::type_complexity)]
const SETTINGS: &[(&str, Change, Option<fn(&RunReport, &RunReport) -> bool>)] = &[
    (
        "epochs",
        |c| c.train.epochs = 3,
        Some(|_, r| r.history.len() == 3),
    ),
    ("batch size", |c| c.train.batch_size = 20, None),
    ("learning rate", |c| c.train.lr *= 3.0, None),
    ("code size", |c| c.model.latent = 5, None),
    (
        "convolutions",
        |c| c.model.conv = vec![ConvLayer::parse("4:3:2:1").expect("a layer")],
        None,
    ),
    ("hidden sizes", |c| c.model.hidden = vec![24], None),
    (
        "activation",
        |c| c.model.activation = Activation::Tanh,
        None,
    ),
    (
        "output activation",
        |c| c.model.output_activation = None,
        None,
    ),
    ("code activation", |c| c.model.code_activation = None, None),
    ("batch norm", |c| c.model.batch_norm = true, None),
    (
        "variational",
        |c| {
            c.model.variational = true;
            c.model.code_activation = None;
        },
        Some(|_, r| !r.history[0].train_terms.is_empty()),
    ),
    (
        "corruption",
        |c| c.train.corrupt = Some("gaussian:0.5".parse::<Corruption>().expect("a spec")),
        None,
    ),
    (
        "loss",
        |c| c.train.loss = LossName::Bce,
        Some(|b, r| r.objective != b.objective),
    ),
    (
        "optimizer",
        |c| c.train.optimizer = OptimizerName::Sgd,
        None,
    ),
    ("weight decay", |c| c.train.weight_decay = 0.05, None),
    (
        "initialisation",
        |c| c.model.init = Init::XavierNormal,
        None,
    ),
    (
        "seed",
        |c| {
            c.train.seed = 77;
            c.split.seed = 77;
        },
        None,
    ),
    ("training seed alone", |c| c.train.seed = 77, None),
    ("split seed alone", |c| c.split.seed = 77, None),
    (
        "validation",
        |c| c.split.validation = Amount::Count(100),
        Some(|_, r| r.train_images == 300),
    ),
    (
        "test",
        |c| c.split.test = Some(Amount::Count(150)),
        Some(|_, r| r.test_images == 150),
    ),
    ("classes", |c| c.split.classes = vec![0, 1], None),
    (
        "max samples",
        |c| c.split.max_samples = Some(200),
        Some(|_, r| r.train_images == 180),
    ),
];

#[test]
fn every_training_setting_changes_the_run() {
    let root = temp_dir("settings");
    let base_run = train(base(), &root);
    let baseline = fingerprint(&base_run);
    for (what, change, check) in SETTINGS {
        let mut cfg = base();
        change(&mut cfg);
        assert_ne!(cfg, base(), "{what}: the change is the base's own value");
        let report = train(cfg, &root);
        assert_ne!(fingerprint(&report), baseline, "{what} changed nothing");
        if let Some(check) = check {
            assert!(
                check(&base_run, &report),
                "{what}: {}",
                fingerprint(&report)
            );
        }
    }
    let _ = std::fs::remove_dir_all(&root);
}

#[test]
fn settings_that_act_through_another_reach_it() {
    let root = temp_dir("dependent");
    // Momentum acts in SGD, beta in a VAE.
    let mut sgd = base();
    sgd.train.optimizer = OptimizerName::Sgd;
    let mut momentum = sgd.clone();
    momentum.train.momentum = 0.9;
    assert_ne!(
        fingerprint(&train(sgd, &root)),
        fingerprint(&train(momentum, &root))
    );
    let mut vae = base();
    vae.model.variational = true;
    vae.model.code_activation = None;
    let mut beta = vae.clone();
    beta.train.beta = 0.1;
    assert_ne!(
        fingerprint(&train(vae, &root)),
        fingerprint(&train(beta, &root))
    );
    if common::fashion_mnist() {
        let mut fashion = base();
        fashion.dataset = "fashion-mnist".into();
        fashion.split.test = None;
        let r = train(fashion, &root);
        assert_eq!(r.test_images, 10_000, "Fashion-MNIST's own test set");
    }
    let _ = std::fs::remove_dir_all(&root);
}

#[test]
fn snapshot_epochs_add_rows_to_the_reconstructions_picture() {
    let root = temp_dir("snapshots");
    let last_only = train(base(), &root);
    let mut cfg = base();
    cfg.train.snapshot_epochs = vec![1];
    let both = train(cfg, &root);
    let one = Picture::read(&last_only.dir.join("reconstructions.png"));
    let two = Picture::read(&both.dir.join("reconstructions.png"));
    let ((w1, h1), (w2, h2)) = ((one.width, one.height), (two.width, two.height));
    assert!(w1 == w2 && h2 > h1, "{w1}x{h1} then {w2}x{h2}");
    let _ = std::fs::remove_dir_all(&root);
}

#[test]
fn a_run_that_stops_improving_lowers_its_rate_and_stops_when_told() {
    // With plain SGD at a rate of 1e-6 the validation loss moves by far less than the
    // schedule's threshold (a relative 1e-4), so a plateau of one epoch lowers the rate by
    // the factor given; at 1e-12 the weights do not move at all, and early stopping (which
    // wants any decrease) ends the run.
    let root = temp_dir("plateau");
    let mut slow = base();
    slow.train.epochs = 4;
    slow.train.optimizer = OptimizerName::Sgd;
    slow.train.lr = 1e-6;
    slow.train.plateau = Some(PlateauSpec {
        factor: 0.25,
        patience: 1,
    });
    let r = train(slow, &root);
    let rates: Vec<f64> = r.history.iter().map(|e| e.lr).collect();
    assert!((rates[3] / rates[0] - 0.25).abs() < 1e-6, "{rates:?}");
    let mut still = base();
    still.train.epochs = 4;
    still.train.lr = 1e-12;
    let mut early = still.clone();
    early.train.early_stopping = Some(1);
    let r = train(early, &root);
    assert!(
        matches!(r.outcome, Outcome::StoppedEarly { .. }) && r.history.len() < 4,
        "{:?} after {} epochs",
        r.outcome,
        r.history.len()
    );
    let r = train(still, &root);
    assert!(matches!(r.outcome, Outcome::Completed) && r.history.len() == 4);
    let _ = std::fs::remove_dir_all(&root);
}

/// What a classifier run did, without wall times.
fn classifier_fingerprint(r: &ClassifyReport) -> String {
    let epochs: Vec<String> = r
        .history
        .iter()
        .map(|e| format!("{} {} {:?}", e.train_loss, e.val_loss, e.val_terms))
        .collect();
    format!("{epochs:?} accuracy {} {:?}", r.test_accuracy, r.confusion)
}

#[test]
fn every_classifier_setting_changes_its_training() {
    let root = temp_dir("classifier");
    let features = Backbone::Pca {
        k: 8,
        dataset: "mnist".into(),
        split: SplitSpec {
            max_samples: Some(400),
            ..SplitSpec::default()
        },
    };
    let base = ClassifySpec {
        hidden: vec![16],
        activation: Activation::Relu,
        epochs: 2,
        batch_size: 40,
        lr: 1e-3,
        seed: 0,
        early_stopping: None,
    };
    let mut runs = 0;
    let mut run = |spec: &ClassifySpec| {
        runs += 1;
        let out = root.join(format!("c{runs}"));
        classify(&features, spec, &out, &RunOptions::default(), &mut Silent).expect("trains")
    };
    let baseline = classifier_fingerprint(&run(&base));
    type Change = fn(&mut ClassifySpec);
    let changes: [(&str, Change); 6] = [
        ("hidden sizes", |s| s.hidden = vec![24]),
        ("activation", |s| s.activation = Activation::Tanh),
        ("epochs", |s| s.epochs = 3),
        ("batch size", |s| s.batch_size = 25),
        ("learning rate", |s| s.lr = 4e-3),
        ("seed", |s| s.seed = 5),
    ];
    for (what, change) in changes {
        let mut spec = base.clone();
        change(&mut spec);
        let r = run(&spec);
        assert_ne!(
            classifier_fingerprint(&r),
            baseline,
            "{what} changed nothing"
        );
        assert_eq!(r.history.len(), spec.epochs, "{what}");
    }
    // At a rate of 1e-12 nothing improves, and early stopping ends the run.
    let still = ClassifySpec {
        lr: 1e-12,
        epochs: 4,
        early_stopping: Some(1),
        ..base.clone()
    };
    assert!(run(&still).history.len() < 4);
    let _ = std::fs::remove_dir_all(&root);
}

// ---------------------------------------------------------------------------------------------
// The commands that read a run: each option changes the picture (or the numbers) they write

fn handgrad(dir: &Path, args: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_handgrad"))
        .current_dir(dir)
        .args(args)
        .output()
        .expect("the binary runs");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{args:?}: {text}");
    text
}

/// A decoded picture: width, height and every pixel.
#[derive(Debug, PartialEq)]
struct Picture {
    width: u32,
    height: u32,
    pixels: Vec<u8>,
}

impl Picture {
    fn read(path: &Path) -> Picture {
        let file = std::fs::File::open(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let mut reader = png::Decoder::new(std::io::BufReader::new(file))
            .read_info()
            .expect("a PNG");
        let mut pixels = vec![0; reader.output_buffer_size()];
        let frame = reader.next_frame(&mut pixels).expect("a frame");
        pixels.truncate(frame.buffer_size());
        Picture {
            width: frame.width,
            height: frame.height,
            pixels,
        }
    }

    fn area(&self) -> u64 {
        u64::from(self.width) * u64::from(self.height)
    }
}

/// Runs a picture command with `--out` set to a fresh file, and reads what it drew.
fn draw(dir: &Path, args: &[&str]) -> Picture {
    static PICTURES: AtomicUsize = AtomicUsize::new(0);
    let out = format!("p{}.png", PICTURES.fetch_add(1, Ordering::Relaxed));
    let mut all = args.to_vec();
    all.extend(["--out", &out]);
    handgrad(dir, &all);
    Picture::read(&dir.join(out))
}

/// A folder with two small trained models with codes of size 2: an autoencoder, `run/`,
/// and a VAE, `vae/`.
fn trained(name: &str) -> PathBuf {
    let dir = temp_dir(name);
    for (out, extra) in [("run", None), ("vae", Some("--variational"))] {
        let mut args = vec![
            "train",
            "--preset",
            "mlp3-32",
            "--latent",
            "2",
            "--code-activation",
            "none",
            "--epochs",
            "1",
            "--max-samples",
            "300",
            "--batch-size",
            "64",
            "--quiet",
            "--out",
            out,
        ];
        args.extend(extra);
        handgrad(&dir, &args);
    }
    dir
}

/// `a` and `b` draw pictures, the second asked for more of something: it must differ and
/// be no smaller (a picture keeps the width its title needs, so fewer tiles may fit in it).
fn grows(dir: &Path, a: &[&str], b: &[&str]) {
    let (small, large) = (draw(dir, a), draw(dir, b));
    assert!(
        large.area() >= small.area() && large != small,
        "{b:?} drew {}x{}, against {a:?}'s {}x{}",
        large.width,
        large.height,
        small.width,
        small.height
    );
}

/// `a` and `b` draw pictures that must differ.
fn differ(dir: &Path, a: &[&str], b: &[&str]) {
    assert_ne!(
        draw(dir, a),
        draw(dir, b),
        "{a:?} and {b:?} drew the same picture"
    );
}

#[test]
fn counts_and_sizes_asked_for_change_the_picture_size() {
    let dir = trained("sizes");
    for (a, b) in [
        (
            &["reconstruct", "--run", "run", "--count", "3"][..],
            &["reconstruct", "--run", "run", "--count", "6"][..],
        ),
        (
            &[
                "denoise",
                "--run",
                "run",
                "--corrupt",
                "gaussian:0.3",
                "--count",
                "3",
            ],
            &[
                "denoise",
                "--run",
                "run",
                "--corrupt",
                "gaussian:0.3",
                "--count",
                "6",
            ],
        ),
        (
            &["generate", "--run", "run", "--n", "4"],
            &["generate", "--run", "run", "--n", "12"],
        ),
        (
            &["generate", "--run", "run", "--centroids", "--sigmas", "0"],
            &[
                "generate",
                "--run",
                "run",
                "--centroids",
                "--sigmas",
                "0,1,2",
            ],
        ),
        (
            &["manifold", "--run", "run", "--grid", "3"],
            &["manifold", "--run", "run", "--grid", "6"],
        ),
        (
            &[
                "interpolate",
                "--run",
                "run",
                "--from",
                "0",
                "--to",
                "1",
                "--steps",
                "2",
            ],
            &[
                "interpolate",
                "--run",
                "run",
                "--from",
                "0",
                "--to",
                "1",
                "--steps",
                "6",
            ],
        ),
        (
            &[
                "pca",
                "--max-samples",
                "300",
                "--components",
                "4",
                "--count",
                "2",
            ],
            &[
                "pca",
                "--max-samples",
                "300",
                "--components",
                "4",
                "--count",
                "5",
            ],
        ),
        (
            &[
                "pca",
                "--max-samples",
                "300",
                "--components",
                "4",
                "--count",
                "2",
            ],
            &[
                "pca",
                "--max-samples",
                "300",
                "--components",
                "4,8",
                "--count",
                "2",
            ],
        ),
    ] {
        grows(&dir, a, b);
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn choices_change_what_is_drawn() {
    let dir = trained("choices");
    for (a, b) in [
        // The run's own test split against the first test images of a whole dataset.
        (
            &["reconstruct", "--run", "run", "--count", "4"][..],
            &[
                "reconstruct",
                "--run",
                "run",
                "--count",
                "4",
                "--dataset",
                "mnist",
            ][..],
        ),
        (
            &[
                "denoise",
                "--run",
                "run",
                "--corrupt",
                "gaussian:0.3",
                "--count",
                "3",
            ],
            &[
                "denoise",
                "--run",
                "run",
                "--corrupt",
                "occlusion:10",
                "--count",
                "3",
            ],
        ),
        (
            &["generate", "--run", "run", "--n", "4", "--seed", "1"],
            &["generate", "--run", "run", "--n", "4", "--seed", "2"],
        ),
        (
            &["generate", "--run", "vae", "--n", "4", "--source", "codes"],
            &["generate", "--run", "vae", "--n", "4", "--source", "prior"],
        ),
        (
            &[
                "generate",
                "--run",
                "run",
                "--centroids",
                "--sigmas",
                "0,3",
                "--seed",
                "1",
            ],
            &[
                "generate",
                "--run",
                "run",
                "--centroids",
                "--sigmas",
                "0,3",
                "--seed",
                "2",
            ],
        ),
        (
            &["interpolate", "--run", "run", "--from", "0", "--to", "1"],
            &["interpolate", "--run", "run", "--from", "2", "--to", "1"],
        ),
        (
            &[
                "interpolate",
                "--run",
                "run",
                "--from",
                "0",
                "--to",
                "class:3",
            ],
            &[
                "interpolate",
                "--run",
                "run",
                "--from",
                "0",
                "--to",
                "class:4",
            ],
        ),
        (
            &["latent", "--run", "run", "--method", "pca"],
            &["latent", "--run", "run", "--method", "raw"],
        ),
        (
            &["latent", "--run", "run", "--n", "100"],
            &["latent", "--run", "run", "--n", "200"],
        ),
        (
            &[
                "latent",
                "--run",
                "run",
                "--method",
                "tsne",
                "--n",
                "60",
                "--steps",
                "50",
                "--perplexity",
                "5",
            ],
            &[
                "latent",
                "--run",
                "run",
                "--method",
                "tsne",
                "--n",
                "60",
                "--steps",
                "50",
                "--perplexity",
                "9",
            ],
        ),
        (
            &[
                "latent", "--run", "run", "--method", "tsne", "--n", "60", "--steps", "50",
            ],
            &[
                "latent", "--run", "run", "--method", "tsne", "--n", "60", "--steps", "51",
            ],
        ),
        (
            &[
                "latent", "--run", "run", "--method", "tsne", "--n", "60", "--steps", "50",
                "--seed", "1",
            ],
            &[
                "latent", "--run", "run", "--method", "tsne", "--n", "60", "--steps", "50",
                "--seed", "2",
            ],
        ),
        (
            &["pca", "--max-samples", "300", "--components", "4"],
            &["pca", "--max-samples", "600", "--components", "4"],
        ),
        (
            &["pca", "--max-samples", "300", "--components", "4"],
            &[
                "pca",
                "--max-samples",
                "300",
                "--components",
                "4",
                "--classes",
                "0,1",
            ],
        ),
    ] {
        differ(&dir, a, b);
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn evaluation_reads_the_dataset_and_writes_where_told() {
    let dir = trained("eval");
    // The run's own test split against every test image of MNIST.
    let own = handgrad(&dir, &["eval", "--run", "run"]);
    let whole = handgrad(&dir, &["eval", "--run", "run", "--dataset", "mnist"]);
    assert_ne!(own, whole);
    assert!(
        whole.contains("10000") || whole.contains("10,000"),
        "{whole}"
    );
    let printed = handgrad(
        &dir,
        &[
            "eval",
            "--run",
            "run",
            "--noise-sweep",
            "0:0.2:0.1",
            "--out",
            "noise",
        ],
    );
    assert!(dir.join("noise.png").exists(), "{printed}");
    assert!(!dir.join("run/noise-sweep.png").exists());
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn explain_shows_the_model_it_is_given() {
    let dir = trained("explain");
    let preset = handgrad(&dir, &["explain", "--preset", "mlp4"]);
    std::fs::write(
        dir.join("c.toml"),
        "preset = \"mlp4\"\n[model]\nlatent = 5\n",
    )
    .expect("written");
    let file = handgrad(&dir, &["explain", "--config", "c.toml"]);
    assert!(
        preset.contains("Linear 392→8") && file.contains("Linear 392→5"),
        "{file}"
    );
    let run = handgrad(&dir, &["explain", "--run", "run"]);
    assert!(run.contains("→2 "), "the run's code of size 2: {run}");
    let small = handgrad(&dir, &["explain", "--preset", "mlp4", "--batch-size", "8"]);
    assert!(
        small.contains("at batch 8:") && !preset.contains("at batch 8:"),
        "{small}"
    );
    // The model options of train, each reaching the table.
    let shaped = |args: &[&str]| {
        let mut all = vec!["explain", "--preset", "mlp4"];
        all.extend(args);
        handgrad(&dir, &all)
    };
    assert!(shaped(&["--latent", "3"]).contains("Linear 392→3"));
    assert!(shaped(&["--hidden", "100"]).contains("Linear 784→100"));
    assert!(shaped(&["--conv", "4:3:2:1"]).contains("Conv2d 1→4 k3 s2 p1"));
    assert!(shaped(&["--activation", "selu"]).contains("SELU"));
    assert!(shaped(&["--output-activation", "none"])
        .lines()
        .all(|l| !l.contains("Sigmoid")));
    assert!(shaped(&["--code-activation", "tanh"]).contains("encoder.4   Tanh"));
    assert!(shaped(&["--batch-norm"]).contains("BatchNorm"));
    let vae = shaped(&["--variational"]);
    assert!(
        vae.contains("Linear 392→16") && vae.contains("μ (outputs 1–8) and log σ² (outputs 9–16)"),
        "{vae}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn gradcheck_checks_the_geometry_it_is_given() {
    let dir = temp_dir("gradcheck");
    let lines = |args: &[&str]| -> Vec<String> {
        let mut all = vec!["gradcheck"];
        all.extend(args);
        handgrad(&dir, &all)
            .lines()
            .skip(1)
            .map(String::from)
            .collect()
    };
    let conv = lines(&["conv2d"]);
    for other in [
        &["conv2d", "--kernel", "2"][..],
        &["conv2d", "--stride", "1"],
        &["conv2d", "--padding", "0"],
        &["conv2d", "--size", "7"],
        &["conv2d", "--channels", "1,2"],
    ] {
        assert_ne!(
            lines(other),
            conv,
            "{other:?} checked the same as the defaults"
        );
    }
    let shaped = lines(&["add", "--shape", "3,4"]);
    assert!(shaped[0].contains("3×4"), "{shaped:?}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn bench_takes_the_steps_runs_and_mode_it_is_given() {
    let dir = temp_dir("bench");
    let json = |args: &[&str]| -> serde_json::Value {
        let mut all = vec!["bench", "--preset", "mlp4", "--batch-size", "8", "--json"];
        all.extend(args);
        let text = handgrad(&dir, &all);
        let line = text
            .lines()
            .find(|l| l.starts_with('{'))
            .expect("a JSON line");
        serde_json::from_str(line).expect("JSON")
    };
    let a = json(&["--steps", "2", "--runs", "1", "--warmup", "1"]);
    assert_eq!(
        (
            a["steps_taken"].as_u64(),
            a["runs"].as_array().map(Vec::len)
        ),
        (Some(3), Some(1))
    );
    assert_eq!(
        (a["batch"].as_u64(), a["mode"].as_str()),
        (Some(8), Some("train"))
    );
    assert_eq!(a["reference_loops"].as_bool(), Some(false));
    let b = json(&[
        "--steps", "3", "--runs", "2", "--warmup", "0", "--mode", "infer", "--naive",
    ]);
    assert_eq!(
        (
            b["steps_taken"].as_u64(),
            b["runs"].as_array().map(Vec::len)
        ),
        (Some(6), Some(2))
    );
    assert_eq!(b["mode"].as_str(), Some("infer"));
    assert!(b["flops_per_image"].as_f64() < a["flops_per_image"].as_f64());
    assert_eq!(b["reference_loops"].as_bool(), Some(true));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_search_draws_its_trials_from_its_seed() {
    let dir = temp_dir("search");
    let search = |seed: &str, trials: &str, out: &str| -> Vec<String> {
        let text = handgrad(
            &dir,
            &[
                "search",
                "--preset",
                "mlp1-8",
                "--trials",
                trials,
                "--seed",
                seed,
                "--epochs",
                "1",
                "--max-samples",
                "100",
                "--out",
                out,
            ],
        );
        // The trial lines, without the losses they reached.
        text.lines()
            .filter(|l| l.starts_with("trial "))
            .map(|l| l.split(" → ").next().unwrap_or(l).to_string())
            .collect()
    };
    let one = search("1", "2", "a");
    assert_eq!(one.len(), 2, "{one:?}");
    assert_ne!(search("2", "2", "b"), one, "another seed, other settings");
    assert_eq!(
        search("1", "3", "c")[..2],
        one[..],
        "the same seed, the same first trials"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn data_dir_is_looked_in_first() {
    let dir = temp_dir("data-dir");
    // Not `data/`, which is one of the usual places looked in.
    let data = dir.join("elsewhere");
    std::fs::create_dir_all(&data).expect("dir");
    std::fs::rename(common::tiny_dataset(&dir, 40, 15), data.join("mnist")).expect("moved");
    let pca = [
        "pca",
        "--max-samples",
        "20",
        "--components",
        "2",
        "--count",
        "2",
    ];
    let shipped = handgrad(&dir, &pca);
    let mut args = pca.to_vec();
    args.extend(["--data-dir", "elsewhere", "--out", "tiny.png"]);
    let tiny = handgrad(&dir, &args);
    assert!(shipped.contains("2000 test images"), "{shipped}");
    assert!(tiny.contains("15 test images"), "{tiny}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn download_writes_into_the_folder_given_from_the_mirror_given() {
    // A mirror on this machine that has no files: the first file's failure names the mirror
    // asked and the place in --dir the file was meant for.
    let base = common::serve(Vec::new(), 4);
    let dir = temp_dir("download");
    let out = Command::new(env!("CARGO_BIN_EXE_handgrad"))
        .current_dir(&dir)
        .args(["download", "mnist", "--mirror", &base, "--dir", "here"])
        .output()
        .expect("the binary runs");
    let text = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{text}");
    assert!(
        text.contains(&format!(
            "{base}train-images-idx3-ubyte.gz: status code 404"
        )),
        "{text}"
    );
    assert!(text.contains("here/train-images-idx3-ubyte.gz"), "{text}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_profiled_run_prints_its_time_per_op() {
    let dir = temp_dir("profile");
    let train = [
        "train",
        "--preset",
        "mlp1-8",
        "--epochs",
        "1",
        "--max-samples",
        "100",
        "--quiet",
    ];
    let plain = handgrad(&dir, &[&train[..], &["--out", "a"]].concat());
    let profiled = handgrad(&dir, &[&train[..], &["--out", "b", "--profile"]].concat());
    assert!(!plain.contains("time per op"), "{plain}");
    let row = profiled
        .lines()
        .find(|l| l.starts_with("LinearThen") || l.starts_with("Linear"))
        .unwrap_or_else(|| panic!("no row for the linear layers: {profiled}"));
    let calls: usize = row
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .expect("a call count");
    assert!(calls >= 2, "{row}");
    let _ = std::fs::remove_dir_all(&dir);
}
