//! What a newcomer meets when they first run the program: a run that learned nothing says so,
//! in words and with its likely cause, and one that learned does not.

use std::path::PathBuf;
use std::process::{Command, Output};

/// Runs the binary in `dir`, whatever its exit status.
fn run(dir: &std::path::Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_handgrad"))
        .current_dir(dir)
        .args(args)
        .output()
        .expect("the binary runs")
}

/// Runs the binary in `dir` and wants it to succeed.
fn handgrad(dir: &std::path::Path, args: &[&str]) -> Output {
    let out = run(dir, args);
    assert!(
        out.status.success(),
        "{args:?}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// `train --quiet --out <out>` with `settings`, in `dir`.
fn train(dir: &std::path::Path, out: &str, settings: &[&str]) -> Output {
    let mut args = vec!["train", "--quiet", "--out", out];
    args.extend(settings);
    handgrad(dir, &args)
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("handgrad-newcomer-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("temp dir");
    dir
}

/// The sentence every verdict of a model that learned little or nothing opens with.
const LEARNED: &str = "This model learned nothing about its input";
const LITTLE: &str = "This model has learned little";

#[test]
fn a_run_that_learned_nothing_says_so_with_its_cause_and_one_that_learned_does_not() {
    let dir = temp_dir("verdict");
    // Two epochs of 6 steps (2,700 training images in batches of 512): the example
    // that ends worse than the mean image.
    let idle = train(&dir, "idle", &["--epochs", "2", "--max-samples", "3000"]);
    let said = stdout(&idle);
    assert!(said.contains(LEARNED) || said.contains(LITTLE), "{said}");
    assert!(
        said.contains("Likely cause: 6 optimiser steps per epoch (2,700 training images in batches of 512), 12 in all: try --batch-size 16"),
        "{said}"
    );
    let page = std::fs::read_to_string(dir.join("idle/report.html")).expect("report page");
    assert!(page.contains("class=\"warning\"") && page.contains("Likely cause: 6 optimiser steps"));
    // eval says it again, from the run folder alone.
    let eval = stdout(&handgrad(&dir, &["eval", "--run", "idle"]));
    assert!(
        eval.contains("Likely cause: 6 optimiser steps per epoch"),
        "{eval}"
    );
    // A classifier trained as briefly on its codes is near chance, and says whose fault
    // that is.
    let head = stdout(&handgrad(
        &dir,
        &[
            "classify",
            "--run",
            "idle",
            "--epochs",
            "1",
            "--batch-size",
            "512",
            "--quiet",
            "--out",
            "head",
        ],
    ));
    assert!(
        head.contains("This classifier is near chance")
            && head.contains("the encoder it reads comes from a run that learned little"),
        "{head}"
    );

    // The same data in batches of 32: a run that learned says nothing of the kind.
    let learned = stdout(&train(
        &dir,
        "learned",
        &[
            "--epochs",
            "2",
            "--max-samples",
            "3000",
            "--batch-size",
            "32",
        ],
    ));
    assert!(!learned.contains("Likely cause"), "{learned}");
    let page = std::fs::read_to_string(dir.join("learned/report.html")).expect("report page");
    assert!(!page.contains("class=\"warning\""));
    assert!(!stdout(&handgrad(&dir, &["eval", "--run", "learned"])).contains("Likely cause"));
    // A picture added to the run folder later appears on its page, which keeps the rest.
    let latent = stdout(&handgrad(&dir, &["latent", "--run", "learned"]));
    assert!(latent.contains("(redrawn with it)"), "{latent}");
    let page = std::fs::read_to_string(dir.join("learned/report.html")).expect("report page");
    assert!(
        page.contains("latent-pca.png: The test images")
            && page.contains("this model (test set)")
            && page.contains("loss.png"),
        "the redrawn page"
    );
    // One written elsewhere does not touch it.
    let elsewhere = stdout(&handgrad(
        &dir,
        &["reconstruct", "--run", "learned", "--out", "r.png"],
    ));
    assert!(!elsewhere.contains("redrawn"), "{elsewhere}");
    // A classifier writes into the run's classify-frozen folder, and its pictures join the page.
    let head = stdout(&handgrad(
        &dir,
        &["classify", "--run", "learned", "--epochs", "2", "--quiet"],
    ));
    assert!(!head.contains("near chance"), "{head}");
    assert!(head.contains("(redrawn with it)"), "{head}");
    let page = std::fs::read_to_string(dir.join("learned/report.html")).expect("report page");
    for picture in ["curves.png", "confusion.png"] {
        assert!(
            page.contains(&format!(
                "classify-frozen/{picture}: A classifier on this run"
            )),
            "{picture} on the redrawn page"
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_denoiser_that_makes_its_input_worse_says_so() {
    let dir = temp_dir("denoiser");
    // Light noise is cheap to hand back; a denoiser of 2 × 6 steps cannot beat that.
    let out = stdout(&train(
        &dir,
        "d",
        &[
            "--epochs",
            "2",
            "--max-samples",
            "3000",
            "--corrupt",
            "gaussian:0.1",
        ],
    ));
    assert!(
        out.contains("This denoiser makes gaussian:0.1 inputs worse"),
        "{out}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// Writes a `w`×`h` RGB PNG whose pixel (y, x) is `colour(y, x)`.
fn write_png(path: &std::path::Path, w: u32, h: u32, colour: impl Fn(u32, u32) -> [u8; 3]) {
    let file = std::fs::File::create(path).expect("png file");
    let mut encoder = png::Encoder::new(std::io::BufWriter::new(file), w, h);
    encoder.set_color(png::ColorType::Rgb);
    encoder.set_depth(png::BitDepth::Eight);
    let mut writer = encoder.write_header().expect("header");
    let data: Vec<u8> = (0..h)
        .flat_map(|y| (0..w).map(move |x| (y, x)))
        .flat_map(|(y, x)| colour(y, x))
        .collect();
    writer.write_image_data(&data).expect("pixels");
}

#[test]
fn ones_own_picture_is_prepared_as_mnist_was_and_reconstructed() {
    let dir = temp_dir("own-image");
    train(
        &dir,
        "run",
        &[
            "--epochs",
            "1",
            "--max-samples",
            "600",
            "--batch-size",
            "32",
        ],
    );
    // A dark 1 on a light, coloured background, off centre in a wide frame.
    write_png(&dir.join("one.png"), 150, 100, |y, x| {
        if (20..90).contains(&y) && (30..42).contains(&x) {
            [20, 20, 60]
        } else {
            [250, 240, 220]
        }
    });
    let said = stdout(&handgrad(
        &dir,
        &["reconstruct", "--run", "run", "--image", "one.png"],
    ));
    assert!(
        said.contains("wrote run/reconstruct-one.png (inverted to white ink on black;"),
        "{said}"
    );
    let bytes = std::fs::read(dir.join("run/reconstruct-one.png")).expect("picture");
    assert!(bytes.starts_with(b"\x89PNG"));
    // Again without --force: refused, the picture kept.
    let again = run(&dir, &["reconstruct", "--run", "run", "--image", "one.png"]);
    assert_eq!(again.status.code(), Some(1));
    assert_eq!(
        std::fs::read(dir.join("run/reconstruct-one.png")).expect("kept"),
        bytes
    );
    // A blank picture and a file that is not a PNG are refused, naming the file.
    write_png(&dir.join("blank.png"), 40, 40, |_, _| [200, 200, 200]);
    std::fs::write(dir.join("notes.png"), "not a picture").expect("written");
    for (file, why) in [("blank.png", "holds no ink"), ("notes.png", "not a PNG")] {
        let out = run(&dir, &["reconstruct", "--run", "run", "--image", file]);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{err}");
        assert!(
            err.contains(file) && err.contains(why) && !err.contains("panicked"),
            "{err}"
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
}
