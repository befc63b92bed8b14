//! Data files: IDX parsing and its errors, dataset folders, splits, and the downloader
//! against a local HTTP server on 127.0.0.1.

mod common;

use common::serve;
use flate2::write::GzEncoder;
use flate2::Compression;
use handgrad::data::batches::{epoch_order, split, Amount, SplitSpec};
use handgrad::data::download::{download, md5_of_file, Fetched, Remote, RemoteFile};
use handgrad::data::idx;
use handgrad::data::mnist::{Dataset, DatasetName, Lookup};
use handgrad::Error;
use std::io::Write;
use std::path::{Path, PathBuf};

fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("handgrad-test-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("temp dir");
    dir
}

fn gz(bytes: &[u8]) -> Vec<u8> {
    let mut enc = GzEncoder::new(Vec::new(), Compression::default());
    enc.write_all(bytes).expect("gzip in memory");
    enc.finish().expect("gzip in memory")
}

/// Writes a dataset folder of `n` tiny 4×3 images (pixel = image index) with labels i % 10.
fn write_dataset(dir: &Path, prefix: &str, n: usize) {
    let images: Vec<u8> = (0..n)
        .flat_map(|i| std::iter::repeat_n(i as u8, 12))
        .collect();
    let labels: Vec<u8> = (0..n).map(|i| (i % 10) as u8).collect();
    std::fs::write(
        dir.join(format!("{prefix}-images-idx3-ubyte.gz")),
        gz(&idx::encode(&[n, 4, 3], &images)),
    )
    .expect("write");
    std::fs::write(
        dir.join(format!("{prefix}-labels-idx1-ubyte")),
        idx::encode(&[n], &labels),
    )
    .expect("write");
}

fn dataset_detail(err: Error) -> String {
    match err {
        Error::Dataset { path, detail } => format!("{}: {detail}", path.display()),
        other => panic!("expected a Dataset error, got {other}"),
    }
}

#[test]
fn idx_round_trips_and_reads_gzip_or_raw() {
    let dir = temp_dir("idx");
    let bytes = idx::encode(&[2, 2, 3], &[1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12]);
    assert_eq!(&bytes[..4], &[0, 0, 8, 3]); // magic 2051
    std::fs::write(dir.join("raw"), &bytes).expect("write");
    std::fs::write(dir.join("packed.gz"), gz(&bytes)).expect("write");
    let raw = idx::read(&dir.join("raw")).expect("raw parses");
    assert_eq!(raw.dims, vec![2, 2, 3]);
    assert_eq!(idx::read(&dir.join("packed.gz")).expect("gzip parses"), raw);
}

#[test]
fn bad_files_give_dataset_errors_naming_the_problem() {
    let dir = temp_dir("bad");
    let good = idx::encode(&[2, 2, 2], &[0; 8]);
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        ("truncated", good[..good.len() - 3].to_vec(), "truncated"),
        (
            "trailing",
            [good.clone(), vec![1, 2]].concat(),
            "unexpected bytes",
        ),
        (
            "magic",
            [vec![1, 2, 8, 3], good[4..].to_vec()].concat(),
            "not an IDX file",
        ),
        (
            "type",
            [vec![0, 0, 0x0d, 3], good[4..].to_vec()].concat(),
            "element type",
        ),
        ("header", vec![0, 0, 8, 3, 0, 0], "truncated header"),
        ("tiny", vec![0, 0], "too short"),
    ];
    for (name, bytes, expect) in cases {
        let path = dir.join(name);
        std::fs::write(&path, bytes).expect("write");
        let msg = dataset_detail(idx::read(&path).expect_err(name));
        assert!(msg.contains(expect) && msg.contains(name), "{name}: {msg}");
    }
    // A gzip stream cut in half.
    let packed = gz(&good);
    let path = dir.join("cut.gz");
    std::fs::write(&path, &packed[..packed.len() / 2]).expect("write");
    assert!(dataset_detail(idx::read(&path).expect_err("corrupt gzip")).contains("corrupt gzip"));
    // A missing file is an I/O error naming it.
    let missing = idx::read(&dir.join("nope")).expect_err("missing");
    assert!(
        matches!(&missing, Error::Io { path, .. } if path.ends_with("nope")),
        "{missing}"
    );
}

#[test]
fn image_and_label_files_must_agree() {
    let dir = temp_dir("agree");
    std::fs::write(dir.join("img"), idx::encode(&[3, 2, 2], &[0; 12])).expect("write");
    std::fs::write(dir.join("lab"), idx::encode(&[2], &[0, 1])).expect("write");
    std::fs::write(dir.join("lab11"), idx::encode(&[3], &[0, 11, 2])).expect("write");
    let msg = dataset_detail(
        idx::read_images_and_labels(&dir.join("img"), &dir.join("lab"))
            .expect_err("2 labels for 3 images"),
    );
    assert!(msg.contains("2 labels for 3 images"), "{msg}");
    let msg = dataset_detail(
        idx::read_images_and_labels(&dir.join("img"), &dir.join("lab11")).expect_err("label 11"),
    );
    assert!(msg.contains("label 11"), "{msg}");
    let msg = dataset_detail(
        idx::read_images_and_labels(&dir.join("lab"), &dir.join("lab"))
            .expect_err("labels as images"),
    );
    assert!(msg.contains("3 dimensions"), "{msg}");
}

#[test]
fn the_shipped_mnist_test_set_is_found_and_valid() {
    let ds =
        Dataset::find("mnist", &Lookup::default()).expect("data/mnist-t10k ships with the project");
    // Either a full download in data/mnist/ or the shipped test set.
    assert_eq!(ds.test.len(), 10_000);
    assert_eq!((ds.test.rows, ds.test.cols), (28, 28));
    let counts = (0..10u8)
        .map(|c| ds.test.labels.iter().filter(|&&l| l == c).count())
        .collect::<Vec<_>>();
    assert_eq!(
        counts,
        [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]
    ); // MNIST's test set
    if ds.is_test_set_only() {
        assert!(ds.describe().contains("handgrad download mnist"));
    }
}

#[test]
fn a_missing_dataset_says_how_to_get_it() {
    let empty = temp_dir("empty");
    let lookup = Lookup {
        data_dir: Some(empty.clone()),
        env_dir: None,
    };
    let folder = Dataset::find(empty.join("nothing").to_str().expect("utf-8"), &lookup)
        .expect_err("no folder");
    // Neither a name nor a folder: the names and every folder looked in are listed.
    let text = folder.to_string();
    assert!(
        text.contains("neither a dataset name (mnist, fashion-mnist)"),
        "{text}"
    );
    assert!(
        text.contains(&empty.join("mnist").display().to_string()),
        "{text}"
    );
    // A folder with train files but no test files.
    write_dataset(&empty, "train", 5);
    let err = Dataset::find(empty.to_str().expect("utf-8"), &lookup).expect_err("no t10k files");
    assert!(err.to_string().contains("t10k-images-idx3-ubyte"), "{err}");
    let candidates = lookup.candidates(DatasetName::FashionMnist);
    assert_eq!(candidates[0], empty.join("fashion-mnist"));
    assert_eq!(
        candidates.last().map(PathBuf::as_path),
        Some(Path::new("/usr/share/datasets/fashion-mnist"))
    );
}

#[test]
fn splits_are_seeded_disjoint_and_respect_classes() {
    let dir = temp_dir("split");
    write_dataset(&dir, "t10k", 200);
    let ds = Dataset::load_dir("tiny", &dir, None).expect("loads");
    let spec = SplitSpec {
        validation: Amount::Fraction(0.1),
        test: Some(Amount::Count(40)),
        classes: vec![],
        max_samples: None,
        seed: 3,
    };
    let s = split(&ds, &spec).expect("splits");
    assert_eq!((s.train.len(), s.val.len(), s.test.len()), (144, 16, 40));
    // Pixel values are the image index: the three sets share no image.
    let ids = |set: &handgrad::data::mnist::ImageSet| {
        set.images
            .chunks(12)
            .map(|c| c[0])
            .collect::<std::collections::BTreeSet<_>>()
    };
    let (a, b, c) = (ids(&s.train), ids(&s.val), ids(&s.test));
    assert!(a.is_disjoint(&b) && a.is_disjoint(&c) && b.is_disjoint(&c));
    assert_eq!(a.len() + b.len() + c.len(), 200);
    // Same seed, same split; classes filter.
    assert_eq!(
        split(&ds, &spec).expect("splits").test.images,
        s.test.images
    );
    let only = split(
        &ds,
        &SplitSpec {
            classes: vec![1, 7],
            test: Some(Amount::Fraction(0.2)),
            ..spec.clone()
        },
    )
    .expect("splits");
    assert_eq!(only.train.len() + only.val.len() + only.test.len(), 40);
    assert!(only
        .train
        .labels
        .iter()
        .chain(&only.test.labels)
        .all(|&l| l == 1 || l == 7));
    assert!(split(
        &ds,
        &SplitSpec {
            validation: Amount::Count(500),
            ..spec
        }
    )
    .is_err());
    // Epoch orders are permutations, different per epoch, reproducible.
    let (e1, e2) = (epoch_order(50, 7, 1), epoch_order(50, 7, 2));
    assert_ne!(e1, e2);
    assert_eq!(e1, epoch_order(50, 7, 1));
    let mut sorted = e1.clone();
    sorted.sort();
    assert_eq!(sorted, (0..50).collect::<Vec<_>>());
    assert_eq!(
        Amount::parse("0.25").expect("fraction"),
        Amount::Fraction(0.25)
    );
    assert_eq!(Amount::parse("300").expect("count"), Amount::Count(300));
    assert!(Amount::parse("1.5").is_err());
}

fn md5_hex(bytes: &[u8]) -> String {
    let dir = temp_dir("md5");
    let p = dir.join("f");
    std::fs::write(&p, bytes).expect("write");
    md5_of_file(&p).expect("read")
}

#[test]
fn download_fetches_verifies_and_keeps_good_files() {
    let images = gz(&idx::encode(&[2, 2, 2], &[1; 8]));
    let labels = gz(&idx::encode(&[2], &[3, 4]));
    let base = serve(
        vec![
            ("t10k-images-idx3-ubyte.gz".into(), images.clone()),
            ("t10k-labels-idx1-ubyte.gz".into(), labels.clone()),
        ],
        10,
    );
    let source = Remote {
        mirrors: vec!["http://127.0.0.1:9/unreachable/".into(), base.clone()],
        files: vec![
            RemoteFile {
                name: "t10k-images-idx3-ubyte.gz".into(),
                md5: md5_hex(&images),
            },
            RemoteFile {
                name: "t10k-labels-idx1-ubyte.gz".into(),
                md5: md5_hex(&labels),
            },
        ],
    };
    let dir = temp_dir("download");
    let fetched = download(&source, &dir, |_| {}).expect("the second mirror works");
    assert!(fetched
        .iter()
        .all(|f| matches!(f, Fetched::Downloaded { url, .. } if url.starts_with(&base))));
    assert_eq!(
        std::fs::read(dir.join("t10k-images-idx3-ubyte.gz")).expect("written"),
        images
    );
    let ds = Dataset::load_dir("downloaded", &dir, None).expect("a valid dataset folder");
    assert_eq!(ds.test.labels, vec![3, 4]);
    // Second time: nothing to fetch.
    let again = download(&source, &dir, |_| {}).expect("kept");
    assert!(again.iter().all(|f| matches!(f, Fetched::Kept(_))));
    // No .part files left behind.
    assert!(std::fs::read_dir(&dir).expect("list").all(|e| !e
        .expect("entry")
        .file_name()
        .to_string_lossy()
        .ends_with(".part")));
}

#[test]
fn a_corrupt_download_is_rejected_and_leaves_nothing() {
    let good = gz(&idx::encode(&[2], &[1, 2]));
    let mut corrupt = good.clone();
    let mid = corrupt.len() / 2;
    corrupt[mid] ^= 0xff;
    let base = serve(vec![("t10k-labels-idx1-ubyte.gz".into(), corrupt)], 4);
    let source = Remote {
        mirrors: vec![base],
        files: vec![RemoteFile {
            name: "t10k-labels-idx1-ubyte.gz".into(),
            md5: md5_hex(&good),
        }],
    };
    let dir = temp_dir("corrupt");
    let err = download(&source, &dir, |_| {}).expect_err("checksum mismatch");
    assert!(err.to_string().contains("checksum mismatch"), "{err}");
    assert_eq!(
        std::fs::read_dir(&dir).expect("list").count(),
        0,
        "neither the file nor a .part may remain"
    );
    // A file missing on the server (404) is reported per mirror too.
    let base = serve(vec![], 2);
    let source = Remote {
        mirrors: vec![base],
        files: vec![RemoteFile {
            name: "x.gz".into(),
            md5: "0".repeat(32),
        }],
    };
    let err = download(&source, &dir, |_| {}).expect_err("404");
    assert!(err.to_string().contains("404"), "{err}");
}
