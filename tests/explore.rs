//! `handgrad explore`'s server, through HTTP on 127.0.0.1: what it answers equals the library
//! bit for bit, bad requests get a 4xx and a sentence while the server keeps serving, and a
//! run trained in another process shows up and grows.

mod common;

use common::train_run as train;
use handgrad::experiments::RunOptions;
use handgrad::explore::Server;
use handgrad::train::run_dir::load_run;
use std::path::{Path, PathBuf};
use std::process::Command;

fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("handgrad-explore-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("temp dir");
    dir
}

/// A server on a free port of 127.0.0.1 for the runs under `runs`; its base URL.
fn serve(runs: &Path) -> (String, std::sync::Arc<std::sync::atomic::AtomicBool>) {
    let server = Server::bind("127.0.0.1", 0, runs, RunOptions::default()).expect("bound");
    let addr = server.addr().expect("an IP address");
    assert!(addr.ip().is_loopback());
    let (stop, _) = server.spawn();
    (format!("http://{addr}"), stop)
}

/// Status and body of a GET.
fn get(url: &str) -> (u16, String) {
    answer(ureq::get(url).call())
}

/// Status and body of a POST of `body`.
fn post(url: &str, body: &str) -> (u16, String) {
    answer(
        ureq::post(url)
            .set("Content-Type", "application/json")
            .send_string(body),
    )
}

/// Status and body of a GET of `path` sent exactly as written (an HTTP client would resolve
/// `..` and `%2e%2e` before sending; an attacker would not).
fn raw_get(base: &str, path: &str) -> (u16, String) {
    use std::io::{Read, Write};
    let addr = base.trim_start_matches("http://");
    let mut stream = std::net::TcpStream::connect(addr).expect("connected");
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .expect("sent");
    let mut text = String::new();
    stream.read_to_string(&mut text).expect("an answer");
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .expect("a status line");
    let body = text.split_once("\r\n\r\n").map_or("", |(_, b)| b);
    (status, body.to_string())
}

fn answer(r: Result<ureq::Response, ureq::Error>) -> (u16, String) {
    match r {
        Ok(resp) => (resp.status(), resp.into_string().expect("a body")),
        Err(ureq::Error::Status(code, resp)) => (code, resp.into_string().expect("a body")),
        Err(e) => panic!("no answer: {e}"),
    }
}

fn json(text: &str) -> serde_json::Value {
    serde_json::from_str(text).expect("JSON")
}

fn floats(v: &serde_json::Value) -> Vec<f32> {
    v.as_array()
        .expect("an array")
        .iter()
        .map(|x| x.as_f64().expect("a number") as f32)
        .collect()
}

#[test]
fn decode_and_encode_answer_what_the_library_computes_bit_for_bit() {
    let runs = temp_dir("bits");
    train(&runs, "conv", &["--epochs", "1", "--batch-size", "64"]);
    train(
        &runs,
        "mlp",
        &["--preset", "mlp4", "--latent", "2", "--epochs", "1"],
    );
    let (base, stop) = serve(&runs);
    let (status, list) = get(&format!("{base}/api/runs"));
    assert_eq!(status, 200);
    let names: Vec<String> = json(&list)
        .as_array()
        .expect("a list")
        .iter()
        .map(|r| r["name"].as_str().expect("a name").to_string())
        .collect();
    assert_eq!(names, ["conv", "mlp"]);

    for name in ["conv", "mlp"] {
        let (_, mut model) = load_run(&runs.join(name)).expect("the run");
        let (status, map) = get(&format!("{base}/api/runs/{name}/map"));
        assert_eq!(status, 200, "{map}");
        let map = json(&map);
        let latent = map["latent"].as_u64().expect("latent") as usize;
        let codes = floats(&map["codes"]);
        // Test codes, a point between two of them, and one far outside.
        let mut asked: Vec<Vec<f32>> = vec![codes[..latent].to_vec()];
        asked.push(
            codes[..latent]
                .iter()
                .zip(&codes[latent..2 * latent])
                .map(|(a, b)| 0.37 * a + 0.63 * b)
                .collect(),
        );
        asked.push(vec![7.25; latent]);
        for code in asked {
            let body = serde_json::json!({ "code": code }).to_string();
            let (status, reply) = post(&format!("{base}/api/runs/{name}/decode"), &body);
            assert_eq!(status, 200, "{reply}");
            let served = floats(&json(&reply)["pixels"]);
            let library = model.decode_codes(&code).expect("decoded");
            assert_eq!(served.len(), 784);
            assert!(
                served
                    .iter()
                    .zip(&library)
                    .all(|(a, b)| a.to_bits() == b.to_bits()),
                "{name}: the served decode differs from the library's"
            );
        }
        // Encoding a test image: its code and reconstruction, as the library gives them.
        let (_, image) = get(&format!("{base}/api/runs/{name}/images/3"));
        let pixels = floats(&json(&image)["pixels"]);
        let body = serde_json::json!({ "pixels": pixels }).to_string();
        let (status, reply) = post(&format!("{base}/api/runs/{name}/encode"), &body);
        assert_eq!(status, 200, "{reply}");
        let reply = json(&reply);
        let (code, _) = model.codes(&pixels).expect("encoded");
        let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
        assert_eq!(bits(&floats(&reply["code"])), bits(&code));
        assert_eq!(
            bits(&floats(&reply["pixels"])),
            bits(&model.reconstruct(&pixels).expect("reconstructed"))
        );
        // The map's code of image 3 is the one encoding gives.
        assert_eq!(bits(&codes[3 * latent..4 * latent]), bits(&code));
    }
    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    let _ = std::fs::remove_dir_all(&runs);
}

#[test]
fn bad_requests_get_a_4xx_and_a_sentence_and_the_server_keeps_serving() {
    let runs = temp_dir("bad");
    train(
        &runs,
        "mlp",
        &["--preset", "mlp4", "--latent", "2", "--epochs", "1"],
    );
    // A copy whose model file is cut short.
    let broken = runs.join("broken");
    std::fs::create_dir_all(&broken).expect("folder");
    for f in ["config.json", "metrics.csv"] {
        std::fs::copy(runs.join("mlp").join(f), broken.join(f)).expect("copied");
    }
    let model = std::fs::read(runs.join("mlp/model.safetensors")).expect("model");
    std::fs::write(broken.join("model.safetensors"), &model[..model.len() / 3]).expect("written");
    // A file beside the runs that must never be served.
    std::fs::write(runs.join("secret.png"), b"not yours").expect("written");

    let (base, stop) = serve(&runs);
    let decode = format!("{base}/api/runs/mlp/decode");
    let big = format!("{{\"code\": [{}]}}", "0.5, ".repeat(60_000) + "0.5");
    // Paths that try to leave the runs folder, sent as written.
    for (path, status, sentence) in [
        ("/api/runs/%2e%2e/map", 404, "not a run folder's name"),
        ("/api/runs/../map", 404, "not a run folder's name"),
        (
            "/api/runs/mlp/files/%2e%2e/secret.png",
            400,
            "plain names below its run folder",
        ),
        (
            "/api/runs/mlp/files/../../secret.png",
            400,
            "plain names below its run folder",
        ),
        (
            "/api/runs/mlp/files/%2fetc%2fpasswd.png",
            400,
            "plain names below its run folder",
        ),
    ] {
        let (got, text) = raw_get(&base, path);
        assert_eq!(got, status, "{path}: {text}");
        assert!(text.contains(sentence), "{path}: {text}");
    }
    let cases: Vec<(&str, String, Option<String>, u16, &str)> = vec![
        (
            "wrong length",
            decode.clone(),
            Some(r#"{"code": [0.1, 0.2, 0.3]}"#.into()),
            400,
            "has 3 numbers; this model takes 2",
        ),
        (
            "NaN",
            decode.clone(),
            Some(r#"{"code": [NaN, 0.2]}"#.into()),
            400,
            "not the JSON expected",
        ),
        (
            "infinite",
            decode.clone(),
            Some(r#"{"code": [1e999, 0.2]}"#.into()),
            400,
            "not the JSON expected",
        ),
        (
            "huge",
            decode.clone(),
            Some(r#"{"code": [1e30, 0.2]}"#.into()),
            400,
            "finite numbers of magnitude at most",
        ),
        (
            "not JSON",
            decode.clone(),
            Some("code=1,2".into()),
            400,
            "not the JSON expected",
        ),
        (
            "too large",
            decode.clone(),
            Some(big),
            413,
            "at most 262144 are accepted",
        ),
        (
            "unknown run",
            format!("{base}/api/runs/nope/decode"),
            Some(r#"{"code": [0, 0]}"#.into()),
            404,
            "there is no run \"nope\"",
        ),
        (
            "not a picture",
            format!("{base}/api/runs/mlp/files/config.json"),
            None,
            403,
            "only a run's pictures",
        ),
        (
            "corrupt model",
            format!("{base}/api/runs/broken/map"),
            None,
            422,
            "cannot be opened",
        ),
        (
            "test image out of range",
            format!("{base}/api/runs/mlp/images/99999"),
            None,
            404,
            "give 0 to",
        ),
        (
            "no such path",
            format!("{base}/api/nothing"),
            None,
            404,
            "nothing at /api/nothing",
        ),
    ];
    for (what, url, body, status, sentence) in cases {
        let (got, text) = match body {
            Some(b) => post(&url, &b),
            None => get(&url),
        };
        assert_eq!(got, status, "{what}: {text}");
        let message = json(&text)["error"]
            .as_str()
            .expect("an error sentence")
            .to_string();
        assert!(message.contains(sentence), "{what}: {message}");
    }
    // Still serving, and still decoding.
    assert_eq!(get(&format!("{base}/api/runs")).0, 200);
    assert_eq!(post(&decode, r#"{"code": [0.5, -0.5]}"#).0, 200);
    let (status, png) = get(&format!("{base}/api/runs/mlp/files/loss.png"));
    assert_eq!(status, 200);
    assert!(png.len() > 100);
    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    let _ = std::fs::remove_dir_all(&runs);
}

#[test]
fn a_run_trained_in_another_process_shows_up_and_grows() {
    let runs = temp_dir("live");
    let (base, stop) = serve(&runs);
    assert_eq!(get(&format!("{base}/api/runs")).1, "[]");
    let mut trainer = Command::new(env!("CARGO_BIN_EXE_handgrad"))
        .args([
            "train",
            "--quiet",
            "--preset",
            "mlp4",
            "--latent",
            "2",
            "--epochs",
            "40",
            "--batch-size",
            "32",
            "--max-samples",
            "1500",
            "--out",
        ])
        .arg(runs.join("growing"))
        .stdout(std::process::Stdio::null())
        .spawn()
        .expect("handgrad starts");
    // Watch it as the page does, polling.
    let mut seen_training = Vec::new();
    let mut last = serde_json::Value::Null;
    for _ in 0..1200 {
        let list = json(&get(&format!("{base}/api/runs")).1);
        if let Some(run) = list.as_array().and_then(|l| l.first()) {
            if run["state"] == "training" {
                seen_training.push(run["epochs_done"].as_u64().expect("a count"));
            }
            last = run.clone();
            if run["state"] == "finished" {
                break;
            }
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    assert!(trainer.wait().expect("handgrad ends").success());
    seen_training.dedup();
    assert!(
        seen_training.len() >= 2,
        "the run was seen training at epochs {seen_training:?}"
    );
    assert_eq!(last["state"], "finished", "{last}");
    assert_eq!(last["epochs_done"], 40);
    assert!(last["test_loss"].as_f64().is_some() && last["pca"].as_f64().is_some());
    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    let _ = std::fs::remove_dir_all(&runs);
}

#[test]
fn the_command_prints_its_address_serves_and_stops_cleanly_on_ctrl_c() {
    use std::io::{BufRead, BufReader};
    let runs = temp_dir("command");
    let refused = Command::new(env!("CARGO_BIN_EXE_handgrad"))
        .args(["explore", "--runs"])
        .arg(runs.join("nowhere"))
        .output()
        .expect("handgrad runs");
    assert!(!refused.status.success());
    let said = String::from_utf8_lossy(&refused.stderr);
    assert!(said.contains("nowhere is not a folder"), "{said}");

    let mut server = Command::new(env!("CARGO_BIN_EXE_handgrad"))
        .args(["explore", "--port", "0", "--runs"])
        .arg(&runs)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("handgrad starts");
    let mut lines = BufReader::new(server.stdout.take().expect("stdout")).lines();
    let first = lines.next().expect("a line").expect("text");
    let url = first
        .split_whitespace()
        .find(|w| w.starts_with("http://127.0.0.1:"))
        .unwrap_or_else(|| panic!("no local address in {first:?}"))
        .trim_end_matches('/')
        .to_string();
    assert_eq!(get(&format!("{url}/api/runs")), (200, "[]".to_string()));
    let (status, page) = get(&format!("{url}/"));
    assert!(status == 200 && page.contains("/explore.js"));
    let interrupted = Command::new("kill")
        .args(["-INT", &server.id().to_string()])
        .status()
        .expect("kill runs");
    assert!(interrupted.success());
    let status = server.wait().expect("handgrad ends");
    assert!(status.success(), "{status}");
    let rest: Vec<String> = lines.map_while(|l| l.ok()).collect();
    assert!(rest.iter().any(|l| l == "stopped"), "{rest:?}");
    let _ = std::fs::remove_dir_all(&runs);
}
