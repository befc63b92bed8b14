//! MNIST and Fashion-MNIST: 28×28 grayscale images in ten classes — handwritten digits, and
//! photos of clothing — and where handgrad looks for them.
//!
//! A dataset is a folder holding the standard IDX files, `.gz` or not:
//! `train-images-idx3-ubyte`, `train-labels-idx1-ubyte`, `t10k-images-idx3-ubyte`,
//! `t10k-labels-idx1-ubyte`. A folder with only the two `t10k` files is valid too; its 10,000
//! images are then split into train, validation and test ([`super::batches`]). The project
//! ships such a folder, `data/mnist-t10k/` (the real MNIST test set), so training works on a
//! machine with no network.
//!
//! A dataset named `mnist` or `fashion-mnist` is looked for in this order:
//! 1. `--data-dir D`: `D/<name>/`;
//! 2. the `HANDGRAD_DATA` variable: `$HANDGRAD_DATA/<name>/`;
//! 3. `data/<name>/` in the current folder, then in the project's source folder;
//! 4. for MNIST, `data/mnist-t10k/` (the shipped test set); for Fashion-MNIST, Debian's
//!    `/usr/share/datasets/fashion-mnist/` (`apt-get install dataset-fashion-mnist`).
//!
//! Anything else given as a dataset is taken as a path to such a folder.

use super::idx;
use crate::error::{Error, Result};
use std::path::{Path, PathBuf};

crate::named_enum! {
    /// The datasets handgrad knows by name.
    pub enum DatasetName: "dataset" {
        Mnist = "mnist", "handwritten digits 0–9",
        FashionMnist = "fashion-mnist", "Zalando's clothing photos, a harder drop-in replacement for MNIST",
    }
}

impl DatasetName {
    /// The name as the CLI and folders spell it.
    pub fn as_str(self) -> &'static str {
        crate::names::Named::name(self)
    }

    /// `mnist` or `fashion-mnist` (`_` for `-` too); `None` for anything else, which callers
    /// take as a folder path.
    pub fn parse(name: &str) -> Option<Self> {
        crate::names::parse(name).ok()
    }

    /// The ten class names, for plots and confusion matrices.
    pub fn class_names(self) -> [&'static str; 10] {
        match self {
            DatasetName::Mnist => ["0", "1", "2", "3", "4", "5", "6", "7", "8", "9"],
            DatasetName::FashionMnist => [
                "T-shirt",
                "Trouser",
                "Pullover",
                "Dress",
                "Coat",
                "Sandal",
                "Shirt",
                "Sneaker",
                "Bag",
                "Ankle boot",
            ],
        }
    }
}

/// The project's shipped copy of the MNIST test set.
pub const EMBEDDED_MNIST: &str = "mnist-t10k";

/// Debian's Fashion-MNIST location.
pub const SYSTEM_FASHION_MNIST: &str = "/usr/share/datasets/fashion-mnist";

/// Images and labels as bytes, `n` images of `rows × cols`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageSet {
    /// n·rows·cols pixel intensities 0–255, image after image.
    pub images: Vec<u8>,
    /// n labels 0–9.
    pub labels: Vec<u8>,
    /// Image height.
    pub rows: usize,
    /// Image width.
    pub cols: usize,
}

impl ImageSet {
    /// Number of images.
    pub fn len(&self) -> usize {
        self.labels.len()
    }

    /// Whether there are no images.
    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }

    /// The images at `indices` as f32 in [0, 1] into `out`, laid out (B, 1, rows, cols).
    pub fn batch_into(&self, indices: &[usize], out: &mut Vec<f32>) {
        out.resize(indices.len() * self.rows * self.cols, 0.0);
        self.fill_batch(indices, out);
    }

    /// [`ImageSet::batch_into`] into a slice that holds exactly the `indices.len()` images.
    pub fn fill_batch(&self, indices: &[usize], out: &mut [f32]) {
        let pixels = self.rows * self.cols;
        for (&i, image) in indices.iter().zip(out.chunks_exact_mut(pixels)) {
            let bytes = &self.images[i * pixels..(i + 1) * pixels];
            for (v, &p) in image.iter_mut().zip(bytes) {
                *v = p as f32 / 255.0;
            }
        }
    }

    /// The first `n` images (all, if fewer) as f32 in [0, 1], one after another.
    pub fn first_pixels(&self, n: usize) -> Vec<f32> {
        let px = self.rows * self.cols;
        self.images[..n.min(self.len()) * px]
            .iter()
            .map(|&p| p as f32 / 255.0)
            .collect()
    }

    /// The shape of a batch of `b` images: (b, 1, rows, cols).
    pub fn batch_shape(&self, b: usize) -> [usize; 4] {
        [b, 1, self.rows, self.cols]
    }

    fn from_files(images: &Path, labels: &Path) -> Result<Self> {
        let (img, labels) = idx::read_images_and_labels(images, labels)?;
        Ok(ImageSet {
            images: img.data,
            labels,
            rows: img.dims[1],
            cols: img.dims[2],
        })
    }
}

/// A dataset loaded from a folder: the test set, and the training set if the folder has one.
#[derive(Debug, Clone)]
pub struct Dataset {
    /// What the user asked for (`mnist`, `fashion-mnist` or a path).
    pub name: String,
    /// The folder the files were read from.
    pub dir: PathBuf,
    /// The 60,000 training images, if present.
    pub train: Option<ImageSet>,
    /// The 10,000 test images.
    pub test: ImageSet,
    /// Which named dataset this is, if known (for class names).
    pub kind: Option<DatasetName>,
}

/// Where to look, beyond the defaults: the `--data-dir` option and `HANDGRAD_DATA`.
#[derive(Debug, Clone, Default)]
pub struct Lookup {
    /// `--data-dir`, checked first.
    pub data_dir: Option<PathBuf>,
    /// `HANDGRAD_DATA`, checked second.
    pub env_dir: Option<PathBuf>,
}

impl Lookup {
    /// `--data-dir` as given, and `HANDGRAD_DATA` from the environment.
    pub fn from_env(data_dir: Option<PathBuf>) -> Self {
        Lookup {
            data_dir,
            env_dir: std::env::var_os("HANDGRAD_DATA").map(PathBuf::from),
        }
    }

    /// The folders tried for a named dataset, in order.
    pub fn candidates(&self, name: DatasetName) -> Vec<PathBuf> {
        let mut roots: Vec<PathBuf> = Vec::new();
        roots.extend(self.data_dir.iter().cloned());
        roots.extend(self.env_dir.iter().cloned());
        roots.push(PathBuf::from("data"));
        roots.push(Path::new(env!("CARGO_MANIFEST_DIR")).join("data"));
        let mut out = Vec::new();
        for root in &roots {
            out.push(root.join(name.as_str()));
        }
        match name {
            DatasetName::Mnist => {
                out.push(PathBuf::from("data").join(EMBEDDED_MNIST));
                out.push(
                    Path::new(env!("CARGO_MANIFEST_DIR"))
                        .join("data")
                        .join(EMBEDDED_MNIST),
                );
            }
            DatasetName::FashionMnist => out.push(PathBuf::from(SYSTEM_FASHION_MNIST)),
        }
        out
    }
}

/// The file in `dir` named `stem` or `stem.gz`, if either exists.
fn find_file(dir: &Path, stem: &str) -> Option<PathBuf> {
    [dir.join(format!("{stem}.gz")), dir.join(stem)]
        .into_iter()
        .find(|p| p.is_file())
}

/// Whether `dir` holds at least the two test files.
fn holds_dataset(dir: &Path) -> bool {
    find_file(dir, "t10k-images-idx3-ubyte").is_some()
        && find_file(dir, "t10k-labels-idx1-ubyte").is_some()
}

impl Dataset {
    /// Finds and loads a dataset by name (`mnist`, `fashion-mnist`) or folder path.
    ///
    /// # Errors
    /// [`Error::Dataset`] saying how to get the data when nothing is found; errors from
    /// reading the files.
    pub fn find(name: &str, lookup: &Lookup) -> Result<Self> {
        let Some(kind) = DatasetName::parse(name) else {
            if !Path::new(name).exists() {
                let tried: Vec<String> = [DatasetName::Mnist, DatasetName::FashionMnist]
                    .iter()
                    .flat_map(|&d| lookup.candidates(d))
                    .map(|p| p.display().to_string())
                    .collect();
                return Err(Error::Dataset {
                    path: PathBuf::from(name),
                    detail: format!(
                        "neither a dataset name ({}) nor an existing folder; named datasets are looked for in {}",
                        crate::names::list::<DatasetName>(),
                        tried.join(", ")
                    ),
                });
            }
            return Self::load_dir(name, Path::new(name), None);
        };
        let candidates = lookup.candidates(kind);
        match candidates.iter().find(|d| holds_dataset(d)) {
            Some(dir) => Self::load_dir(name, dir, Some(kind)),
            None => {
                let how = match kind {
                    DatasetName::Mnist => "run `handgrad download mnist` (or put the four IDX files in data/mnist/)",
                    DatasetName::FashionMnist => {
                        "run `apt-get install dataset-fashion-mnist`, or `handgrad download fashion-mnist`"
                    }
                };
                let tried: Vec<String> =
                    candidates.iter().map(|p| p.display().to_string()).collect();
                Err(Error::Dataset {
                    path: PathBuf::from(name),
                    detail: format!(
                        "dataset not found (looked in {}); to get it, {how}",
                        tried.join(", ")
                    ),
                })
            }
        }
    }

    /// Loads the IDX files of one folder.
    ///
    /// # Errors
    /// [`Error::Dataset`] if the folder lacks the test files or a train file has no partner.
    pub fn load_dir(name: &str, dir: &Path, kind: Option<DatasetName>) -> Result<Self> {
        if !dir.is_dir() {
            return Err(Error::Dataset {
                path: dir.to_path_buf(),
                detail: "no such folder".into(),
            });
        }
        let missing = |stem: &str| {
            Error::Dataset {
            path: dir.to_path_buf(),
            detail: format!("{stem}(.gz) is missing; a dataset folder holds the t10k files, and optionally the train files"),
        }
        };
        let test_images = find_file(dir, "t10k-images-idx3-ubyte")
            .ok_or_else(|| missing("t10k-images-idx3-ubyte"))?;
        let test_labels = find_file(dir, "t10k-labels-idx1-ubyte")
            .ok_or_else(|| missing("t10k-labels-idx1-ubyte"))?;
        let test = ImageSet::from_files(&test_images, &test_labels)?;
        let train = match (
            find_file(dir, "train-images-idx3-ubyte"),
            find_file(dir, "train-labels-idx1-ubyte"),
        ) {
            (Some(images), Some(labels)) => Some(ImageSet::from_files(&images, &labels)?),
            (None, None) => None,
            (Some(_), None) => return Err(missing("train-labels-idx1-ubyte")),
            (None, Some(_)) => return Err(missing("train-images-idx3-ubyte")),
        };
        if let Some(train) = &train {
            if (train.rows, train.cols) != (test.rows, test.cols) {
                return Err(Error::Dataset {
                    path: dir.to_path_buf(),
                    detail: format!(
                        "train images are {}×{} but test images {}×{}",
                        train.rows, train.cols, test.rows, test.cols
                    ),
                });
            }
        }
        Ok(Dataset {
            name: name.to_string(),
            dir: dir.to_path_buf(),
            train,
            test,
            kind,
        })
    }

    /// Whether this is the shipped 10k MNIST test set standing in for the full dataset.
    pub fn is_test_set_only(&self) -> bool {
        self.train.is_none()
    }

    /// One line describing what was loaded, for the user.
    pub fn describe(&self) -> String {
        match &self.train {
            Some(train) => format!(
                "{}: {} training and {} test images of {}×{} from {}",
                self.name,
                train.len(),
                self.test.len(),
                self.test.rows,
                self.test.cols,
                self.dir.display()
            ),
            None => format!(
                "{}: only the {} test images in {} (train, validation and test are split from them){}",
                self.name,
                self.test.len(),
                self.dir.display(),
                if self.kind == Some(DatasetName::Mnist) { "; `handgrad download mnist` fetches all 70,000" } else { "" }
            ),
        }
    }
}
