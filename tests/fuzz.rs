//! Every parser fed thousands of broken inputs. Everything a user hands handgrad goes through
//! a parser: IDX files (raw and gzip), safetensors checkpoints and models, configuration
//! files (TOML and JSON), run folders, search shards, and the specs typed on the command line
//! (corruptions, noise ranges, shards, layer lists, sizes, amounts, features, names). Each is
//! fed mutations of valid inputs — truncations, flipped and inserted bytes, huge counts,
//! NaN, infinities, negative numbers, empty and very long strings — and random bytes, from a
//! fixed seed so a failure repeats. For every input: no panic, no allocation over
//! [`LARGEST_ALLOWED`], and an error (if any) that names the input — the file's path, or the
//! text or a piece of it.
//!
//! The counts per parser are printed and written to `target/tmp/fuzz-counts.txt` (CI shows
//! them). Every crash this found is fixed, and kept below as a plain regression test.

use handgrad::data::batches::{Amount, SplitSpec};
use handgrad::data::corrupt::Corruption;
use handgrad::data::idx;
use handgrad::experiments::classify::Backbone;
use handgrad::experiments::eval::parse_sweep;
use handgrad::experiments::generate::parse_sigmas;
use handgrad::experiments::parse_sizes;
use handgrad::experiments::pca::parse_components;
use handgrad::experiments::report::refresh_run_page;
use handgrad::experiments::search::collect;
use handgrad::experiments::shards::{Manifest, Shard};
use handgrad::models::ConvLayer;
use handgrad::names::parse_activation;
use handgrad::train::checkpoint::{self, Tensors};
use handgrad::train::run_dir::load_run;
use handgrad::train::RunConfig;
use handgrad::Result;
use ndarray::ArrayD;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use std::alloc::{GlobalAlloc, Layout, System};
use std::collections::HashMap;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

/// The largest single allocation one input may cause: the inputs here are at most a few
/// kilobytes, so anything near this means a count from the input was trusted.
const LARGEST_ALLOWED: usize = 64 << 20;

/// Forwards to the system allocator, remembering the largest request since the last reset,
/// and refusing (which aborts the test, loudly) anything over 4 GiB before it can swamp the
/// machine.
struct Watching;

static LARGEST: AtomicUsize = AtomicUsize::new(0);

// SAFETY: forwards every call to the system allocator unchanged, except that requests over
// 4 GiB get a null pointer, which the allocator contract allows.
unsafe impl GlobalAlloc for Watching {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        LARGEST.fetch_max(layout.size(), Ordering::Relaxed);
        if layout.size() > 4 << 30 {
            return std::ptr::null_mut();
        }
        // SAFETY: the caller's layout, passed on.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: memory this allocator handed out, with its layout.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        LARGEST.fetch_max(new_size, Ordering::Relaxed);
        if new_size > 4 << 30 {
            return std::ptr::null_mut();
        }
        // SAFETY: as for `alloc`, on memory this allocator handed out.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Watching = Watching;

// ---------------------------------------------------------------------------------------------
// Mutations

/// Numbers that break naive parsers.
const AWKWARD_NUMBERS: &[&str] = &[
    "NaN",
    "nan",
    "inf",
    "-inf",
    "-1",
    "0",
    "-0",
    "1e309",
    "1e-320",
    "18446744073709551616",
    "99999999999999999999999",
    "4294967296",
    "0x10",
    "1_000",
    "",
    " ",
    "½",
];

/// One random change to `input`.
fn mutate(input: &[u8], rng: &mut StdRng) -> Vec<u8> {
    let mut v = input.to_vec();
    let at = |rng: &mut StdRng, v: &[u8]| rng.random_range(0..=v.len());
    match rng.random_range(0..10) {
        // Truncated.
        0 => v.truncate(at(rng, input)),
        // Bytes flipped.
        1 => {
            for _ in 0..rng.random_range(1..5) {
                if !v.is_empty() {
                    let i = rng.random_range(0..v.len());
                    v[i] ^= 1 << rng.random_range(0..8);
                }
            }
        }
        // Bytes inserted.
        2 => {
            let i = at(rng, &v);
            let junk: Vec<u8> = (0..rng.random_range(1..16)).map(|_| rng.random()).collect();
            v.splice(i..i, junk);
        }
        // A stretch removed, or repeated.
        3 | 4 => {
            if !v.is_empty() {
                let a = rng.random_range(0..v.len());
                let b = rng.random_range(a..=v.len().min(a + 64));
                if rng.random_bool(0.5) {
                    v.drain(a..b);
                } else {
                    let piece = v[a..b].to_vec();
                    v.splice(b..b, piece);
                }
            }
        }
        // Four bytes set to a huge count (a length or a dimension, in a binary header).
        5 => {
            if v.len() >= 4 {
                let i = rng.random_range(0..v.len() - 3);
                let big: u32 = [u32::MAX, 0x7fff_ffff, 0x0100_0000, 60_000][rng.random_range(0..4)];
                v[i..i + 4].copy_from_slice(&big.to_be_bytes());
            }
        }
        // A number replaced by an awkward one (in text).
        6 => {
            let text = String::from_utf8_lossy(&v).into_owned();
            let starts: Vec<usize> = text
                .char_indices()
                .filter(|(i, c)| {
                    c.is_ascii_digit()
                        && (*i == 0 || !text.as_bytes()[i - 1].is_ascii_alphanumeric())
                })
                .map(|(i, _)| i)
                .collect();
            if let Some(&s) = starts.get(rng.random_range(0..starts.len().max(1))) {
                let e = text[s..]
                    .find(|c: char| !(c.is_ascii_digit() || c == '.' || c == 'e'))
                    .map_or(text.len(), |k| s + k);
                let awkward = AWKWARD_NUMBERS[rng.random_range(0..AWKWARD_NUMBERS.len())];
                v = format!("{}{awkward}{}", &text[..s], &text[e..]).into_bytes();
            }
        }
        // Empty.
        7 => v.clear(),
        // Very long: the input many times over.
        8 => {
            v = v
                .repeat(rng.random_range(50..500))
                .into_iter()
                .take(200_000)
                .collect()
        }
        // Random bytes.
        _ => {
            v = (0..rng.random_range(0..256))
                .map(|_| rng.random())
                .collect()
        }
    }
    v
}

/// A piece of `text` an error may quote instead of all of it: a word between separators.
fn pieces(text: &str) -> Vec<&str> {
    text.split([',', ':', '+', '/', '@', ' '])
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .collect()
}

/// What a run of one parser found.
struct Tally {
    name: &'static str,
    inputs: usize,
    refused: usize,
}

/// Feeds `count` mutations of `seeds` (and the seeds themselves) to `parse`, which returns
/// `Ok` or an error; checks each as the module says. `names` says whether an error names the
/// input (given the input and the message).
fn fuzz(
    name: &'static str,
    seeds: &[Vec<u8>],
    count: usize,
    mut parse: impl FnMut(&[u8]) -> Result<()>,
    names: impl Fn(&[u8], &str) -> bool,
) -> Tally {
    let mut rng = StdRng::seed_from_u64(name.len() as u64 * 7919);
    let mut tally = Tally {
        name,
        inputs: 0,
        refused: 0,
    };
    for k in 0..count + seeds.len() {
        let input = match seeds.get(k) {
            Some(seed) => seed.clone(),
            None => {
                // Mutations stack: a third of inputs are mutated twice or more.
                let mut v = mutate(&seeds[rng.random_range(0..seeds.len())], &mut rng);
                while rng.random_bool(0.33) {
                    v = mutate(&v, &mut rng);
                }
                v
            }
        };
        let shown = || {
            let text = String::from_utf8_lossy(&input);
            let cut: String = text.chars().take(120).collect();
            format!("{name}, input {k} ({} bytes): {cut:?}", input.len())
        };
        LARGEST.store(0, Ordering::Relaxed);
        let outcome = catch_unwind(AssertUnwindSafe(|| parse(&input)));
        let largest = LARGEST.load(Ordering::Relaxed);
        assert!(
            largest <= LARGEST_ALLOWED,
            "{}: allocated {largest} bytes at once",
            shown()
        );
        match outcome {
            Err(_) => panic!("{}: panicked", shown()),
            Ok(Ok(())) => {}
            Ok(Err(e)) => {
                let message = e.to_string();
                assert!(
                    names(&input, &message),
                    "{}: the error does not name it: {message}",
                    shown()
                );
                tally.refused += 1;
            }
        }
        tally.inputs += 1;
    }
    tally
}

/// A text parser: the error quotes the text or one of its pieces (an empty or blank text
/// needs only a message).
fn text_parser(
    name: &'static str,
    seeds: &[&str],
    count: usize,
    parse: impl Fn(&str) -> Result<()>,
) -> Tally {
    let seeds: Vec<Vec<u8>> = seeds.iter().map(|s| s.as_bytes().to_vec()).collect();
    fuzz(
        name,
        &seeds,
        count,
        |bytes| parse(&String::from_utf8_lossy(bytes)),
        |bytes, message| {
            let text = String::from_utf8_lossy(bytes);
            // Quoted as typed, or escaped as Rust's `{:?}` writes it (inside its quotes).
            let quoted = |s: &str| {
                let escaped = format!("{s:?}");
                message.contains(s) || message.contains(&escaped[1..escaped.len() - 1])
            };
            // A long text may be quoted cut short: its first 40 characters then.
            let start: String = text.trim().chars().take(40).collect();
            text.trim().is_empty()
                || quoted(text.trim())
                || quoted(&start)
                || pieces(&text).iter().any(|p| quoted(p))
        },
    )
}

/// A file parser: each input is written to `path`, and the error names that path.
fn file_parser(
    name: &'static str,
    path: &Path,
    seeds: &[Vec<u8>],
    count: usize,
    parse: impl Fn(&Path) -> Result<()>,
    named: &Path,
) -> Tally {
    fuzz(
        name,
        seeds,
        count,
        |bytes| {
            std::fs::write(path, bytes).expect("a scratch file");
            parse(path)
        },
        |_, message| message.contains(&named.display().to_string()),
    )
}

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("handgrad-fuzz-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("scratch folder");
    dir
}

fn gz(bytes: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    e.write_all(bytes).expect("gzip");
    e.finish().expect("gzip")
}

/// A small valid safetensors file: two tensors and metadata.
fn safetensors_seed() -> Vec<u8> {
    let mut t = Tensors::new();
    t.insert(
        "encoder.1.weight".into(),
        ArrayD::from_shape_vec(vec![3, 4], (0..12).map(|v| v as f32).collect()).expect("shape"),
    );
    t.insert(
        "encoder.1.bias".into(),
        ArrayD::from_shape_vec(vec![3], vec![0.5; 3]).expect("shape"),
    );
    let meta = HashMap::from([("format".to_string(), "handgrad".to_string())]);
    checkpoint::to_bytes(&t, &meta).expect("serialised")
}

// ---------------------------------------------------------------------------------------------
// The parsers

fn command_line_specs() -> Vec<Tally> {
    let n = 3000;
    vec![
        text_parser(
            "corruption spec",
            &[
                "gaussian:0.3",
                "occlusion:8",
                "occlusion:6@3,4",
                "salt-pepper:0.1",
                "gaussian:0.2+occlusion:6",
            ],
            n,
            |t| t.parse::<Corruption>().map(drop),
        ),
        text_parser(
            "noise range",
            &["0:1:0.1", "0:0.4:0.2", "0.5:0.5:1"],
            n,
            |t| parse_sweep(t).map(drop),
        ),
        text_parser("shard", &["1/2", "3/4", "1/1"], n, |t| {
            Shard::parse(t).map(drop)
        }),
        text_parser("conv layer", &["8:3:2:1", "6:3:2:0"], n, |t| {
            ConvLayer::parse(t).map(drop)
        }),
        text_parser("amount", &["0.1", "5000", "0.25"], n, |t| {
            Amount::parse(t).map(drop)
        }),
        text_parser("components", &["32,64,128", "4"], n, |t| {
            parse_components(t).map(drop)
        }),
        text_parser("sizes", &["512,256,256", "145,98,52"], n, |t| {
            parse_sizes(t, "hidden", "512,256").map(drop)
        }),
        text_parser("noise levels", &["0,2.5,5,7.5,10", "0"], n, |t| {
            parse_sigmas(t).map(drop)
        }),
        text_parser("features", &["pca:8", "run:runs/x"], n, |t| {
            Backbone::parse_features(t, "mnist", SplitSpec::default()).map(drop)
        }),
        text_parser(
            "activation",
            &["relu", "leaky_relu:0.1", "selu", "sigmoid"],
            n,
            |t| parse_activation(t).map(drop),
        ),
    ]
}

fn idx_files() -> Vec<Tally> {
    let dir = scratch("idx");
    let images = idx::encode(&[3, 4, 4], &(0..48).map(|v| v as u8).collect::<Vec<_>>());
    let labels = idx::encode(&[3], &[1, 7, 3]);
    let name = dir.join("x-idx3-ubyte");
    let raw = fuzz(
        "IDX (raw bytes)",
        &[images.clone(), labels.clone()],
        5000,
        |bytes| idx::parse(bytes, &name).map(drop),
        |_, message| message.contains(&name.display().to_string()),
    );
    let file = dir.join("x-idx3-ubyte.gz");
    let gzipped = file_parser(
        "IDX (gzip file)",
        &file,
        &[gz(&images), gz(&labels)],
        1000,
        |p| idx::read(p).map(drop),
        &file,
    );
    vec![raw, gzipped]
}

fn checkpoints_and_configs() -> Vec<Tally> {
    let dir = scratch("files");
    let st = dir.join("model.safetensors");
    let safetensors = file_parser(
        "safetensors",
        &st,
        &[safetensors_seed()],
        2000,
        |p| checkpoint::load(p).map(drop),
        &st,
    );
    let json =
        serde_json::to_vec_pretty(&RunConfig::preset("mlp4").expect("preset")).expect("json");
    let cj = dir.join("run.json");
    let config_json = file_parser(
        "config (JSON)",
        &cj,
        &[json],
        1500,
        |p| RunConfig::from_file(p, "conv-selu").map(drop),
        &cj,
    );
    let ct = dir.join("run.toml");
    let config_toml = file_parser(
        "config (TOML)",
        &ct,
        &[
            b"preset = \"mlp4\"\n[model]\nlatent = 5\nhidden = [64, 32]\n[train]\nepochs = 3\nlr = 0.002\n".to_vec(),
            b"preset = \"conv-small\"\n[split]\nvalidation = 0.2\nclasses = [0, 1, 7]\n".to_vec(),
        ],
        1500,
        |p| RunConfig::from_file(p, "conv-selu").map(drop),
        &ct,
    );
    let own = dir.join("my-digit.png");
    let seeds: Vec<Vec<u8>> = [png::ColorType::Rgb, png::ColorType::GrayscaleAlpha]
        .into_iter()
        .map(|colour| {
            let mut bytes = Vec::new();
            let (w, h) = (12u32, 9u32);
            let mut encoder = png::Encoder::new(&mut bytes, w, h);
            encoder.set_color(colour);
            encoder.set_depth(png::BitDepth::Eight);
            let mut writer = encoder.write_header().expect("header");
            let n = (w * h) as usize * colour.samples();
            let pixels: Vec<u8> = (0..n).map(|i| if i % 7 < 3 { 30 } else { 240 }).collect();
            writer.write_image_data(&pixels).expect("pixels");
            drop(writer);
            bytes
        })
        .collect();
    let own_image = file_parser(
        "own picture (PNG)",
        &own,
        &seeds,
        1000,
        |p| handgrad::data::own_image::prepare(p, 28, 28).map(drop),
        &own,
    );
    vec![safetensors, config_json, config_toml, own_image]
}

/// A trained run folder, its `config.json`, `model.safetensors`, `summary.json` and
/// `metrics.csv` mutated in turn.
fn run_folders() -> Vec<Tally> {
    use handgrad::experiments::train::train_new;
    use handgrad::experiments::RunOptions;
    use handgrad::train::Silent;
    let dir = scratch("run");
    let run = dir.join("run");
    let cfg = RunConfig::quick("mlp1-8", 100, 1, 50).expect("preset");
    train_new(cfg, &run, &RunOptions::default(), &mut Silent).expect("a tiny run");
    let mut tallies = Vec::new();
    let load = |run: &Path| load_run(run).map(drop);
    // What a later command reads to draw the run's page again.
    let redraw = |run: &Path| refresh_run_page(run).map(drop);
    type Reader<'a> = &'a dyn Fn(&Path) -> handgrad::Result<()>;
    let files: [(&str, &str, Reader); 4] = [
        ("run folder: config.json", "config.json", &load),
        ("run folder: model.safetensors", "model.safetensors", &load),
        ("run folder: summary.json", "summary.json", &redraw),
        ("run folder: metrics.csv", "metrics.csv", &redraw),
    ];
    for (name, file, read) in files {
        let path = run.join(file);
        let good = std::fs::read(&path).expect("written by train");
        tallies.push(file_parser(
            name,
            &path,
            std::slice::from_ref(&good),
            300,
            |_| read(&run),
            &run,
        ));
        std::fs::write(&path, good).expect("restored");
    }
    tallies
}

/// A search shard's folder, its `search.json` and `trials.csv` mutated in turn.
fn search_shards() -> Vec<Tally> {
    let dir = scratch("shard");
    let shard = dir.join("s1");
    std::fs::create_dir_all(&shard).expect("dir");
    Manifest {
        seed: 0,
        trials: 2,
        shard: Shard { part: 1, of: 1 },
        base: RunConfig::preset("mlp4").expect("preset"),
    }
    .write(&shard)
    .expect("manifest");
    std::fs::write(
        shard.join("trials.csv"),
        "trial,latent,batch_size,lr,optimizer,weight_decay,best_val_loss,test_loss\n0,4,64,0.001,adam,0,0.05,0.06\n1,8,32,0.002,sgd,0.0001,NaN,NaN\n",
    )
    .expect("trials");
    let out = dir.join("merged");
    let mut tallies = Vec::new();
    for (name, file) in [
        ("search shard: search.json", "search.json"),
        ("search shard: trials.csv", "trials.csv"),
    ] {
        let path = shard.join(file);
        let good = std::fs::read(&path).expect("written above");
        tallies.push(file_parser(
            name,
            &path,
            std::slice::from_ref(&good),
            1000,
            |_| {
                let _ = std::fs::remove_dir_all(&out);
                collect(std::slice::from_ref(&shard), &out, true).map(drop)
            },
            &shard,
        ));
        std::fs::write(&path, good).expect("restored");
    }
    tallies
}

#[test]
fn every_parser_survives_broken_input() {
    let mut all = command_line_specs();
    all.extend(idx_files());
    all.extend(checkpoints_and_configs());
    all.extend(run_folders());
    all.extend(search_shards());
    let mut report = String::from("parser                          inputs  refused\n");
    for t in &all {
        report.push_str(&format!(
            "{:<30} {:>8} {:>8}\n",
            t.name, t.inputs, t.refused
        ));
    }
    let total: usize = all.iter().map(|t| t.inputs).sum();
    report.push_str(&format!("{:<30} {total:>8}\n", "all"));
    eprintln!("{report}");
    let counts = Path::new(env!("CARGO_TARGET_TMPDIR")).join("fuzz-counts.txt");
    std::fs::write(&counts, &report).expect("counts written");
}

// ---------------------------------------------------------------------------------------------
// What the fuzzing found, kept as plain tests (the corruption spec's empty part and the
// activation's slope sign are in the unit tests of their parsers).

#[test]
fn errors_found_by_fuzzing_name_their_input() {
    // An empty entry, and a list too long, quote the list (once cut short, once whole).
    let err = parse_components("364,").unwrap_err().to_string();
    assert!(err.contains("\"364,\" has an empty entry"), "{err}");
    let long = ["8"; 40].join(",");
    let err = parse_components(&long).unwrap_err().to_string();
    assert!(err.contains("has 40 values") && err.contains("…"), "{err}");
    let err = parse_sigmas("0,,5").unwrap_err().to_string();
    assert!(err.contains("\"0,,5\" has an empty entry"), "{err}");
    // A configuration file whose setting is out of range is named with the setting.
    let dir = scratch("regressions");
    let file = dir.join("run.toml");
    std::fs::write(
        &file,
        "preset = \"mlp4\"\n[train.plateau]\nfactor = 1e23\npatience = 2\n",
    )
    .expect("written");
    let err = RunConfig::from_file(&file, "conv-selu")
        .unwrap_err()
        .to_string();
    assert!(
        err.contains(&file.display().to_string()) && err.contains("plateau factor"),
        "{err}"
    );
}
