//! Helpers shared by the integration tests.
#![allow(dead_code, unused_imports)]

use std::io::{Read, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};

pub use handgrad::autodiff::catalog::{away_from_zero, uniform};

/// Whether a test that needs something from outside the repository may run. When it is
/// missing: with `HANDGRAD_REQUIRE_<VAR>=1` in the environment (as CI sets it) the test
/// fails; otherwise it prints a loud notice and is skipped, so a user without the extra still
/// gets a green suite for everything else.
pub fn available(what: &str, require_var: &str, present: bool) -> bool {
    if present {
        return true;
    }
    let required = std::env::var(require_var).is_ok_and(|v| v == "1");
    assert!(
        !required,
        "{what} is missing and {require_var}=1 says it is required"
    );
    eprintln!(
        "\n*** SKIPPED: {what} is missing (set {require_var}=1 to make this a failure) ***\n"
    );
    false
}

/// The Chromium binary, if installed.
pub fn chromium() -> Option<PathBuf> {
    ["/usr/bin/chromium", "/usr/bin/chromium-browser"]
        .iter()
        .map(PathBuf::from)
        .find(|p| p.is_file())
}

/// The browser, under the rule of [`available`] with `HANDGRAD_REQUIRE_CHROMIUM`: `None`
/// (after a notice) when it is missing and not required; a failure when it is required.
pub fn chromium_if_required() -> Option<PathBuf> {
    let present = chromium();
    available(
        "Chromium (apt-get install chromium)",
        "HANDGRAD_REQUIRE_CHROMIUM",
        present.is_some(),
    )
    .then_some(present)
    .flatten()
}

/// The reference-vector folder: `HANDGRAD_REFERENCE`, else `../shared/reference/` beside the
/// checkout. `None` (after a loud notice, or a failure under `HANDGRAD_REQUIRE_REFERENCE=1`)
/// when neither exists.
pub fn reference_dir() -> Option<PathBuf> {
    let dir = match std::env::var_os("HANDGRAD_REFERENCE") {
        Some(dir) => PathBuf::from(dir),
        None => PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/reference"),
    };
    let what = format!(
        "the PyTorch reference folder {} (set HANDGRAD_REFERENCE, or make them with tests/reference/generate.py)",
        dir.display()
    );
    available(&what, "HANDGRAD_REQUIRE_REFERENCE", dir.is_dir()).then_some(dir)
}

/// Whether Fashion-MNIST is installed (`apt-get install dataset-fashion-mnist`), under the
/// rule of [`available`] with `HANDGRAD_REQUIRE_FASHION_MNIST`.
pub fn fashion_mnist() -> bool {
    let present = handgrad::data::mnist::Dataset::find(
        "fashion-mnist",
        &handgrad::data::mnist::Lookup::default(),
    )
    .is_ok();
    available(
        "Fashion-MNIST (apt-get install dataset-fashion-mnist)",
        "HANDGRAD_REQUIRE_FASHION_MNIST",
        present,
    )
}

/// A minimal HTTP/1.1 server on 127.0.0.1 serving `files` by name (404 otherwise), for as many
/// requests as `requests`. Returns its base URL.
pub fn serve(files: Vec<(String, Vec<u8>)>, requests: usize) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind loopback");
    let base = format!("http://{}/", listener.local_addr().expect("address"));
    std::thread::spawn(move || {
        for stream in listener.incoming().take(requests) {
            let Ok(mut stream) = stream else { continue };
            let mut request = Vec::new();
            let mut buf = [0u8; 1024];
            while !request.windows(4).any(|w| w == b"\r\n\r\n") {
                match stream.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => request.extend_from_slice(&buf[..n]),
                }
            }
            let text = String::from_utf8_lossy(&request);
            let path = text
                .split_whitespace()
                .nth(1)
                .unwrap_or("/")
                .trim_start_matches('/')
                .to_string();
            let response = match files.iter().find(|(name, _)| *name == path) {
                Some((_, body)) => [
                    format!(
                        "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                        body.len()
                    )
                    .into_bytes(),
                    body.clone(),
                ]
                .concat(),
                None => b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
                    .to_vec(),
            };
            let _ = stream.write_all(&response);
        }
    });
    base
}

/// A tiny dataset folder with its own train and test files (`n_train` and `n_test` images
/// cut from the shipped MNIST test set).
pub fn tiny_dataset(dir: &Path, n_train: usize, n_test: usize) -> PathBuf {
    use handgrad::data::idx::{encode, read_images_and_labels};
    let shipped = Path::new(env!("CARGO_MANIFEST_DIR")).join("data/mnist-t10k");
    let (images, labels) = read_images_and_labels(
        &shipped.join("t10k-images-idx3-ubyte.gz"),
        &shipped.join("t10k-labels-idx1-ubyte.gz"),
    )
    .expect("the shipped MNIST test set");
    let out = dir.join("tiny");
    std::fs::create_dir_all(&out).expect("dir");
    let px = 28 * 28;
    for (prefix, range) in [("train", 0..n_train), ("t10k", n_train..n_train + n_test)] {
        let n = range.len();
        let pixels = &images.data[range.start * px..range.end * px];
        std::fs::write(
            out.join(format!("{prefix}-images-idx3-ubyte")),
            encode(&[n, 28, 28], pixels),
        )
        .expect("write");
        std::fs::write(
            out.join(format!("{prefix}-labels-idx1-ubyte")),
            encode(&[n], &labels[range]),
        )
        .expect("write");
    }
    out
}

/// Trains the run folder `runs/name` through the `handgrad` binary: quietly, on the first
/// 1,200 images of the shipped MNIST, with `args` on top.
pub fn train_run(runs: &Path, name: &str, args: &[&str]) {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_handgrad"))
        .args(["train", "--quiet", "--max-samples", "1200", "--out"])
        .arg(runs.join(name))
        .args(args)
        .output()
        .expect("handgrad runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
