//! The report page a run writes, checked as a person would see it: rendered in a real
//! headless browser (Debian's `chromium`), every picture loaded, the screenshot not blank.
//!
//! Without Chromium the test prints a notice and skips; with `HANDGRAD_REQUIRE_CHROMIUM=1`
//! (CI sets it, and installs the browser) it fails instead.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

fn handgrad() -> Command {
    Command::new(env!("CARGO_BIN_EXE_handgrad"))
}

fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("handgrad-report-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("temp dir");
    dir
}

/// Runs headless Chromium on `page` with `args`, returning its standard output.
fn browse(browser: &Path, page: &Path, args: &[&str]) -> String {
    let out = Command::new(browser)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--hide-scrollbars",
        ])
        // Let the load event (and the page's picture check) run before the DOM is read.
        .arg("--virtual-time-budget=10000")
        .args(args)
        .arg(format!("file://{}", page.display()))
        .output()
        .expect("chromium runs");
    assert!(
        out.status.success(),
        "chromium failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Renders `page` in the browser: the page's own check (run after loading) must say all
/// `pictures` decoded, and a screenshot must be a page, not a blank.
fn check_in_browser(browser: &Path, page: &Path, pictures: usize, dir: &Path) {
    // The page's own check, run by the browser after loading, says every picture decoded.
    let dom = browse(browser, page, &["--dump-dom"]);
    assert!(
        dom.contains(&format!("data-pictures=\"all {pictures} shown\"")),
        "the browser did not show every picture: {}",
        dom.lines()
            .find(|l| l.contains("data-pictures"))
            .unwrap_or("no verdict")
    );

    // And the screenshot is a page, not a blank: many distinct grey levels, dark text on white.
    let shot = dir.join("page.png");
    browse(
        browser,
        page,
        &[
            "--window-size=1200,2000",
            &format!("--screenshot={}", shot.display()),
        ],
    );
    let decoder = png::Decoder::new(std::fs::File::open(&shot).expect("screenshot"));
    let mut reader = decoder.read_info().expect("a PNG");
    let mut buf = vec![0; reader.output_buffer_size()];
    let info = reader.next_frame(&mut buf).expect("pixels");
    let channels = info.color_type.samples();
    let greys: Vec<u8> = buf[..info.buffer_size()]
        .chunks_exact(channels)
        .map(|p| p[0])
        .collect();
    let mut seen = [false; 256];
    greys.iter().for_each(|&g| seen[g as usize] = true);
    let distinct = seen.iter().filter(|&&s| s).count();
    let dark = greys.iter().filter(|&&g| g < 100).count() as f64 / greys.len() as f64;
    assert!(distinct > 64, "only {distinct} grey levels: a blank page?");
    assert!(
        dark > 0.01,
        "only {:.2} % dark pixels: no text or pictures?",
        100.0 * dark
    );
}

#[test]
fn a_runs_report_page_renders_with_every_picture_in_a_browser() {
    let Some(browser) = common::chromium_if_required() else {
        return;
    };
    let dir = temp_dir("run");
    let run = dir.join("run");
    let out = handgrad()
        .args([
            "train",
            "--preset",
            "mlp4",
            "--epochs",
            "2",
            "--batch-size",
            "256",
        ])
        .args(["--max-samples", "2000", "--quiet", "--out"])
        .arg(&run)
        .output()
        .expect("handgrad runs");
    let printed = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{printed}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // train names the page last, and prints the baselines beside the test loss.
    let page = run.join("report.html");
    let last = printed.lines().last().unwrap_or_default();
    assert_eq!(last, format!("report: {}", page.display()));
    assert!(
        printed.contains("baselines on the same 2000 test images: mean image"),
        "{printed}"
    );

    let html = std::fs::read_to_string(&page).expect("report.html");
    assert!(
        !html.contains("http://") && !html.contains("https://"),
        "the page fetches nothing"
    );
    // loss.png, reconstructions.png and one snapshot per epoch.
    let pictures = html.matches("<img ").count();
    assert_eq!(pictures, 4, "pictures on the page");
    assert!(html.contains("mean image of the training set") && html.contains("PCA, k = 8"));

    check_in_browser(&browser, &page, pictures, &dir);
    std::fs::remove_dir_all(&dir).expect("clean up");
}

/// Every command in REPORT.md's steps table is one the binary accepts: `handgrad <words> --help`
/// exits 0 only when every option before `--help` exists and every value parses.
fn steps_parse(name: &str, md: &str) {
    let commands: Vec<&str> = md
        .lines()
        .filter_map(|l| l.split(" | handgrad ").nth(1))
        .map(|rest| rest.split(['|', '#']).next().unwrap_or("").trim())
        .collect();
    assert!(commands.len() >= 5, "{name}: steps: {commands:?}");
    for command in commands {
        let out = handgrad()
            .args(command.split_whitespace())
            .arg("--help")
            .output()
            .expect("handgrad runs");
        assert!(
            out.status.success(),
            "{name}: the step command `handgrad {command}` does not parse: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

#[test]
fn every_reproduction_writes_its_report_and_page_quickly() {
    let Some(browser) = common::chromium_if_required() else {
        return;
    };
    let dir = temp_dir("reproduce");
    use handgrad::experiments::reproduce::{
        conv_selu_latent, digits_01247, fashion_conv_small, mlp4, Reported,
    };
    // (protocol, the report's numbers REPORT.md must show, pictures on the page)
    let mut protocols: Vec<(&str, &[Reported], usize)> = vec![
        ("mlp4", mlp4::REPORTED, 6),
        ("conv-selu-latent", conv_selu_latent::REPORTED, 14),
        // Its quick run has no 256-unit model: the report's figures appear in the notes only.
        ("digits-01247", &digits_01247::REPORTED[..1], 4),
    ];
    if common::fashion_mnist() {
        protocols.push(("fashion-conv-small", fashion_conv_small::REPORTED, 10));
    }
    for (name, report_numbers, pictures) in protocols {
        let out = dir.join(name);
        let run = handgrad()
            .args(["reproduce", name, "--quick", "--out"])
            .arg(&out)
            .output()
            .expect("handgrad runs");
        let printed = String::from_utf8_lossy(&run.stdout);
        assert!(
            run.status.success(),
            "{name}: {printed}{}",
            String::from_utf8_lossy(&run.stderr)
        );
        let md = std::fs::read_to_string(out.join("REPORT.md")).expect("REPORT.md");
        for n in report_numbers {
            let shown = [format!("{:.4}", n.value), format!("{:.2}", n.value)];
            assert!(
                shown.iter().any(|s| md.contains(s.as_str())),
                "{name}: the report's {} ({}) is missing",
                n.value,
                n.what
            );
        }
        steps_parse(name, &md);
        assert!(
            printed.contains("report") && printed.contains("ours"),
            "{printed}"
        );
        for part in [
            "## Numbers",
            "## Steps",
            "handgrad train --config",
            "--quick",
            "threads",
        ] {
            assert!(md.contains(part), "{name}: REPORT.md lacks {part:?}");
        }
        // Every picture REPORT.md links exists, and the page embeds the same number.
        let links: Vec<&str> = md
            .lines()
            .filter_map(|l| l.strip_prefix("![").and_then(|l| l.split("](").nth(1)))
            .map(|l| l.trim_end_matches(')'))
            .collect();
        assert_eq!(links.len(), pictures, "{name}: pictures in REPORT.md");
        for link in &links {
            let bytes = std::fs::read(out.join(link)).expect("a linked picture");
            assert!(bytes.starts_with(b"\x89PNG"), "{name}: {link} is not a PNG");
        }
        check_in_browser(&browser, &out.join("report.html"), pictures, &dir);
        // The folder is never overwritten.
        let again = handgrad()
            .args(["reproduce", name, "--quick", "--out"])
            .arg(&out)
            .output()
            .expect("handgrad runs");
        assert_eq!(again.status.code(), Some(1));
    }
    let unknown = handgrad()
        .args(["reproduce", "nope"])
        .output()
        .expect("runs");
    let said = String::from_utf8_lossy(&unknown.stderr);
    assert!(
        said.contains("unknown \"nope\"") && said.contains("conv-selu-latent"),
        "{said}"
    );
    std::fs::remove_dir_all(&dir).expect("clean up");
}
