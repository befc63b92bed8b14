//! The experiments behind `denoise`, `eval`, `generate`, `manifold` and `interpolate`, checked
//! on small real subsets of MNIST: corruptions damage images as their specs say, the VAE's KL
//! term is the closed form, a VAE learns, a denoiser beats handing back its input, the
//! interpolation starts and ends at the two reconstructions, and centroids are the mean codes.

mod common;

use handgrad::autodiff::Graph;
use handgrad::data::batches::{Amount, SplitSpec};
use handgrad::data::corrupt::Corruption;
use handgrad::data::mnist::{Dataset, ImageSet, Lookup};
use handgrad::experiments::eval::{eval_run, test_images};
use handgrad::experiments::generate::{centroids, generate, interpolate, manifold, CodeSource};
use handgrad::experiments::train::train_new;
use handgrad::experiments::RunOptions;
use handgrad::seed::{self, Stream};
use handgrad::train::run_dir::{load_run, new_trainer};
use handgrad::train::{evaluate, RunConfig, Silent};
use handgrad::{Error, Result};
use ndarray::{ArrayD, IxDyn};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("handgrad-exp-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("temp dir");
    dir
}

/// `n` real MNIST test images (from the shipped copy), in [0, 1].
fn real_images(n: usize) -> (Vec<f32>, usize, usize) {
    let ds = Dataset::find("mnist", &Lookup::default()).expect("the shipped MNIST test set");
    let mut px = Vec::new();
    ds.test.batch_into(&(0..n).collect::<Vec<_>>(), &mut px);
    (px, ds.test.rows, ds.test.cols)
}

fn spec(text: &str) -> Corruption {
    text.parse().expect("a valid corruption spec")
}

// ---------------------------------------------------------------------------------------------
// Corruptions

#[test]
fn gaussian_noise_has_the_mean_and_variance_its_spec_names() {
    // Mid-grey images, so that clamping to [0, 1] (4σ away for F = 0.125) hardly ever happens.
    let (h, w, n) = (28, 28, 200);
    let factor = 0.125f64;
    let mut images = vec![0.5f32; n * h * w];
    spec("gaussian:0.125")
        .apply(
            &mut images,
            h,
            w,
            &mut seed::rng(1, Stream::Step { epoch: 0, batch: 0 }),
        )
        .expect("fits");
    let count = images.len() as f64;
    let mean = images.iter().map(|&p| p as f64 - 0.5).sum::<f64>() / count;
    let var = images
        .iter()
        .map(|&p| (p as f64 - 0.5 - mean).powi(2))
        .sum::<f64>()
        / count;
    // 156,800 draws: the mean's standard error is σ/396 ≈ 3.2e-4, the variance's ≈ 0.4 %.
    assert!(mean.abs() < 1.5e-3, "noise mean {mean}");
    assert!(
        (var / (factor * factor) - 1.0).abs() < 0.02,
        "noise variance {var}, expected {}",
        factor * factor
    );

    // On real digits the result stays in [0, 1], and a pixel keeps its value only where the
    // clamp held it: black pixels pushed below 0, white ones pushed above 1.
    let (clean, h, w) = real_images(50);
    let mut noisy = clean.clone();
    spec("gaussian:0.4")
        .apply(
            &mut noisy,
            h,
            w,
            &mut seed::rng(2, Stream::Step { epoch: 0, batch: 0 }),
        )
        .expect("fits");
    assert!(noisy.iter().all(|p| (0.0..=1.0).contains(p)));
    for (a, b) in clean.iter().zip(&noisy) {
        assert!(a != b || *a == 0.0 || *a == 1.0, "{a} kept");
    }
    // Black background pixels stay black exactly when their noise is negative: half of them.
    let black: Vec<f32> = clean
        .iter()
        .zip(&noisy)
        .filter(|(&a, _)| a == 0.0)
        .map(|(_, &b)| b)
        .collect();
    let kept = black.iter().filter(|&&b| b == 0.0).count() as f64 / black.len() as f64;
    assert!((kept - 0.5).abs() < 0.02, "{kept}");
}

/// The bounding box (top, left, bottom, right) of the zero pixels of a `w`-wide image.
fn zero_box(image: &[f32], w: usize) -> (usize, usize, usize, usize, usize) {
    let zeros: Vec<(usize, usize)> = image
        .iter()
        .enumerate()
        .filter(|(_, &p)| p == 0.0)
        .map(|(i, _)| (i / w, i % w))
        .collect();
    let top = zeros.iter().map(|z| z.0).min().expect("some zero");
    let bottom = zeros.iter().map(|z| z.0).max().expect("some zero");
    let left = zeros.iter().map(|z| z.1).min().expect("some zero");
    let right = zeros.iter().map(|z| z.1).max().expect("some zero");
    (zeros.len(), top, left, bottom, right)
}

#[test]
fn an_occlusion_is_one_square_of_its_size_anywhere_inside_the_image() {
    let (h, w, n, s) = (28, 28, 2000, 10);
    let mut images = vec![1.0f32; n * h * w];
    spec("occlusion:10")
        .apply(
            &mut images,
            h,
            w,
            &mut seed::rng(3, Stream::Step { epoch: 0, batch: 0 }),
        )
        .expect("fits");
    let (mut tops, mut lefts) = (Vec::new(), Vec::new());
    for image in images.chunks(h * w) {
        let (count, top, left, bottom, right) = zero_box(image, w);
        assert_eq!(count, s * s, "the patch is exactly S×S");
        assert_eq!((bottom - top + 1, right - left + 1), (s, s));
        tops.push(top);
        lefts.push(left);
    }
    // Corners range over every legal place, 0 to 28 − 10 = 18, and only those.
    for corners in [&tops, &lefts] {
        assert_eq!(corners.iter().min(), Some(&0));
        assert_eq!(corners.iter().max(), Some(&(h - s)));
        let mut seen = corners.clone();
        seen.sort_unstable();
        seen.dedup();
        assert_eq!(seen.len(), h - s + 1, "every corner position occurs");
    }

    // A fixed place puts it exactly there, in every image.
    let mut images = vec![1.0f32; 5 * h * w];
    spec("occlusion:6@3,20")
        .apply(
            &mut images,
            h,
            w,
            &mut seed::rng(4, Stream::Step { epoch: 0, batch: 0 }),
        )
        .expect("fits");
    for image in images.chunks(h * w) {
        assert_eq!(zero_box(image, w), (36, 3, 20, 8, 25));
    }
    // One that cannot fit is refused, naming itself.
    let err = spec("occlusion:6@3,23")
        .apply(
            &mut images,
            h,
            w,
            &mut seed::rng(4, Stream::Step { epoch: 0, batch: 0 }),
        )
        .expect_err("does not fit");
    assert!(err.to_string().contains("occlusion:6@3,23"), "{err}");
}

#[test]
fn salt_and_pepper_hits_its_fraction_of_pixels_half_white_half_black() {
    let (h, w, n) = (28, 28, 200);
    let mut images = vec![0.5f32; n * h * w];
    spec("salt-pepper:0.1")
        .apply(
            &mut images,
            h,
            w,
            &mut seed::rng(5, Stream::Step { epoch: 0, batch: 0 }),
        )
        .expect("fits");
    let count = images.len() as f64;
    let white = images.iter().filter(|&&p| p == 1.0).count() as f64;
    let black = images.iter().filter(|&&p| p == 0.0).count() as f64;
    let untouched = images.iter().filter(|&&p| p == 0.5).count() as f64;
    assert_eq!(white + black + untouched, count);
    // Binomial(156,800, 0.1): standard error of the fraction ≈ 7.6e-4.
    assert!(
        ((white + black) / count - 0.1).abs() < 4e-3,
        "{}",
        (white + black) / count
    );
    assert!(
        (white / (white + black) - 0.5).abs() < 0.02,
        "{white} {black}"
    );
}

#[test]
fn combined_corruptions_apply_in_order() {
    // Noise then a patch: the patch is clean zeros. A patch then noise: it is not.
    let (h, w) = (28, 28);
    let mut a = vec![0.5f32; h * w];
    spec("gaussian:0.2+occlusion:5@0,0")
        .apply(
            &mut a,
            h,
            w,
            &mut seed::rng(6, Stream::Step { epoch: 0, batch: 0 }),
        )
        .expect("fits");
    assert!((0..5).all(|r| a[r * w..r * w + 5].iter().all(|&p| p == 0.0)));
    let mut b = vec![0.5f32; h * w];
    spec("occlusion:5@0,0+gaussian:0.2")
        .apply(
            &mut b,
            h,
            w,
            &mut seed::rng(6, Stream::Step { epoch: 0, batch: 0 }),
        )
        .expect("fits");
    assert!(b[..5].iter().any(|&p| p > 0.0));
}

// ---------------------------------------------------------------------------------------------
// The VAE

#[test]
fn the_kl_term_is_the_closed_form_averaged_over_the_batch() -> Result<()> {
    // KL(N(μ, σ²) ‖ N(0, 1)) = ½ (μ² + σ² − 1 − ln σ²) per dimension, summed over dimensions.
    let mu = [0.0f32, 0.0, 1.0, -2.0, 0.5, 0.3];
    let logvar = [0.0f32, 1.0, 0.0, -1.0, 2.0, -0.7];
    let closed = |m: f64, lv: f64| 0.5 * (m * m + lv.exp() - 1.0 - lv);
    // Known values: a standard normal costs nothing; μ = 1 costs ½; σ² = e costs (e − 2)/2.
    assert_eq!(closed(0.0, 0.0), 0.0);
    assert_eq!(closed(1.0, 0.0), 0.5);
    let expected: f64 = mu
        .iter()
        .zip(&logvar)
        .map(|(&m, &lv)| closed(m as f64, lv as f64))
        .sum::<f64>()
        / 2.0; // two images of three dimensions
    let mut g = Graph::new();
    let m = g.constant_owned(ArrayD::from_shape_vec(IxDyn(&[2, 3]), mu.to_vec()).expect("shape"));
    let lv =
        g.constant_owned(ArrayD::from_shape_vec(IxDyn(&[2, 3]), logvar.to_vec()).expect("shape"));
    let kl = g.kl_gaussian(m, lv)?;
    let got = g.scalar(kl)? as f64;
    assert!(
        (got - expected).abs() < 1e-6 * expected,
        "{got} vs {expected}"
    );
    Ok(())
}

fn small_config(preset: &str, samples: usize, epochs: usize) -> RunConfig {
    let mut cfg = RunConfig::preset(preset).expect("preset");
    cfg.train.epochs = epochs;
    cfg.train.batch_size = 64;
    cfg.train.seed = 5;
    cfg.train.snapshot_epochs = vec![];
    cfg.split = SplitSpec {
        validation: Amount::Fraction(0.1),
        test: Some(Amount::Count(500)),
        classes: vec![],
        max_samples: Some(samples),
        seed: 5,
    };
    cfg
}

#[test]
fn a_vae_learns_real_digits_and_reports_both_terms() -> Result<()> {
    let mut cfg = small_config("conv-selu", 3000, 4);
    cfg.model.variational = true;
    cfg.train.loss = handgrad::train::config::LossName::Bce;
    let ds = Dataset::find("mnist", &Lookup::default())?;
    let data = handgrad::data::batches::split(&ds, &cfg.split)?;
    let mut trainer = new_trainer(&cfg)?;
    trainer.fit(&data.train, &data.val, &mut ())?;
    let h = &trainer.state.history;
    let (first, last) = (&h[0], &h[h.len() - 1]);
    // The loss is recon + β·KL, per image, for training and validation alike.
    for m in h {
        assert_eq!(m.train_terms.len(), 2);
        assert!((m.train_terms[0] + m.train_terms[1] - m.train_loss).abs() < 1e-3 * m.train_loss);
        assert!((m.val_terms[0] + m.val_terms[1] - m.val_loss).abs() < 1e-3 * m.val_loss);
    }
    assert!(
        last.train_loss < 0.8 * first.train_loss && last.val_loss < first.val_loss,
        "{h:?}"
    );
    // The codes carry information (KL above zero) and reconstructions beat the mean image's
    // BCE per image (≈ 200 nats on MNIST).
    assert!(last.train_terms[1] > 1.0, "{last:?}");
    let test = evaluate(&mut trainer.model, &data.test, &cfg.train, None)?;
    assert!(test.terms[0] < 180.0, "{test:?}");
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Runs trained once and shared by the tests below.

/// A denoising conv-selu run (latent 6) trained on gaussian:0.4.
fn denoising_run() -> &'static Path {
    static RUN: OnceLock<PathBuf> = OnceLock::new();
    RUN.get_or_init(|| {
        let mut cfg = small_config("conv-selu", 4000, 4);
        cfg.train.batch_size = 32;
        cfg.train.corrupt = Some(spec("gaussian:0.4"));
        let dir = temp_dir("denoiser").join("run");
        train_new(cfg, &dir, &RunOptions::default(), &mut Silent).expect("trains");
        dir
    })
}

#[test]
fn a_denoiser_beats_handing_back_its_corrupted_input() -> Result<()> {
    let opts = RunOptions::default();
    let cs = [
        spec("gaussian:0.4"),
        spec("occlusion:8"),
        spec("salt-pepper:0.1"),
    ];
    let report = eval_run(denoising_run(), None, &cs, &opts)?;
    assert_eq!(report.rows[0].condition, "clean");
    assert_eq!(report.rows.len(), 4);
    let row = |name: &str| {
        let r = report
            .rows
            .iter()
            .find(|r| r.condition.starts_with(name))
            .expect("a row per corruption");
        (
            r.model,
            r.identity.expect("an identity loss for a corruption"),
        )
    };
    // Trained on noise, it removes more than half of it, and most of salt and pepper too.
    let (model, identity) = row("gaussian");
    assert!(model < 0.5 * identity, "gaussian: {model} vs {identity}");
    let (model, identity) = row("salt-pepper");
    assert!(
        model < 0.85 * identity,
        "salt-pepper: {model} vs {identity}"
    );
    // A small patch costs the identity less than the model's own reconstruction error: the
    // table shows that honestly rather than a win.
    let (model, identity) = row("occlusion");
    assert!(identity > 0.0 && model > report.rows[0].model, "{report:?}");
    Ok(())
}

#[test]
fn the_interpolation_starts_and_ends_at_the_two_reconstructions() -> Result<()> {
    let dir = denoising_run();
    let out = temp_dir("interp").join("line.png");
    let opts = RunOptions::default();
    let (path, frames) = interpolate(dir, "3", "class:7", 5, Some(&out), false, &opts)?;
    assert!(path.exists());
    let (cfg, mut model) = load_run(dir)?;
    let images = test_images(&cfg, None, &opts)?;
    let seven = (0..images.set.len())
        .find(|&i| images.set.labels[i] == 7)
        .expect("a seven");
    let mut ends = Vec::new();
    images.set.batch_into(&[3, seven], &mut ends);
    let recon = model.reconstruct(&ends)?;
    let px = 28 * 28;
    assert_eq!(frames.len(), 7 * px, "start, five steps, end");
    let close = |a: &[f32], b: &[f32]| a.iter().zip(b).all(|(x, y)| (x - y).abs() < 1e-5);
    assert!(close(&frames[..px], &recon[..px]), "first frame");
    assert!(close(&frames[6 * px..], &recon[px..]), "last frame");
    // And the middle differs from both ends.
    assert!(!close(&frames[3 * px..4 * px], &recon[..px]));
    Ok(())
}

#[test]
fn centroids_are_each_class_mean_code_on_the_training_images() -> Result<()> {
    let dir = denoising_run();
    let out = temp_dir("centroids").join("c.png");
    let opts = RunOptions::default();
    let (_, cents) = centroids(dir, &[0.0, 2.0], 1, Some(&out), false, &opts)?;
    let (cfg, mut model) = load_run(dir)?;
    let ds = Dataset::find("mnist", &Lookup::default())?;
    let train: ImageSet = handgrad::data::batches::split(&ds, &cfg.split)?.train;
    assert_eq!(cents.len(), 10);
    for (class, centroid) in &cents {
        let members: Vec<usize> = (0..train.len())
            .filter(|&i| train.labels[i] == *class)
            .collect();
        let mut px = Vec::new();
        train.batch_into(&members, &mut px);
        let (codes, _) = model.codes(&px)?;
        let latent = centroid.len();
        for (d, &c) in centroid.iter().enumerate() {
            let direct = codes.iter().skip(d).step_by(latent).sum::<f32>() / members.len() as f32;
            assert!(
                (direct - c).abs() < 1e-4 * (1.0 + c.abs()),
                "class {class} dim {d}: {c} vs {direct}"
            );
        }
    }
    Ok(())
}

#[test]
fn generation_refuses_the_prior_for_a_plain_autoencoder_and_draws_from_its_codes() -> Result<()> {
    let dir = denoising_run();
    let out = temp_dir("generate").join("g.png");
    let opts = RunOptions::default();
    let err = generate(dir, 8, Some(CodeSource::Prior), 0, Some(&out), false, &opts)
        .expect_err("the prior is for a VAE");
    assert!(
        matches!(err, Error::Config { .. }) && err.to_string().contains("--variational"),
        "{err}"
    );
    let (path, codes) = generate(dir, 64, None, 0, Some(&out), false, &opts)?;
    assert!(path.exists());
    assert_eq!(codes.len(), 64 * 6);
    // A code size other than 2 has no manifold.
    let err = manifold(dir, 10, None, false, &opts).expect_err("latent 6");
    assert!(err.to_string().contains("needs exactly 2"), "{err}");
    Ok(())
}

#[test]
fn a_vae_with_a_two_dimensional_code_draws_its_manifold_and_generates_from_the_prior() -> Result<()>
{
    let mut cfg = small_config("mlp3-32", 1000, 1);
    cfg.model.latent = 2;
    cfg.model.variational = true;
    cfg.model.code_activation = None;
    let dir = temp_dir("manifold").join("run");
    let opts = RunOptions::default();
    train_new(cfg, &dir, &opts, &mut Silent)?;
    let (grid, scatter) = manifold(&dir, 8, None, false, &opts)?;
    assert!(grid.exists() && scatter.exists());
    // Never overwritten without being asked.
    let err = manifold(&dir, 8, None, false, &opts).expect_err("exists");
    assert!(err.to_string().contains("--force"), "{err}");
    manifold(&dir, 8, None, true, &opts)?;
    let (_, codes) = generate(&dir, 16, None, 0, None, false, &opts)?;
    // From N(0, I): 32 draws, none absurd, not all equal.
    assert!(codes.iter().all(|c| c.abs() < 6.0));
    assert!(codes.windows(2).any(|w| w[0] != w[1]));
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Looking at codes, and the PCA baseline

#[test]
fn codes_drawn_by_t_sne_keep_classes_together_better_than_chance() -> Result<()> {
    use handgrad::embed::tsne::TsneSettings;
    use handgrad::experiments::latent::{latent, MapSpec, Projection};
    use handgrad::train::observe::Silent;
    let dir = denoising_run();
    let out = temp_dir("latent").join("l.png");
    let spec = |method| MapSpec {
        method,
        n: 400,
        tsne: TsneSettings {
            perplexity: 20.0,
            steps: 400,
            seed: 1,
        },
    };
    let opts = RunOptions::default();
    let r = latent(
        dir,
        &spec(Projection::Tsne),
        Some(&out),
        false,
        &opts,
        &mut Silent,
    )?;
    // Ten classes: a map that ignored them would score about 0.1.
    assert!(r.purity > 0.4, "t-SNE purity {}", r.purity);
    let r = latent(
        dir,
        &spec(Projection::Pca),
        Some(&out),
        true,
        &opts,
        &mut Silent,
    )?;
    let explained = r.explained.expect("PCA reports its variance");
    assert!(
        explained > 0.0 && explained <= 1.0 && r.purity > 0.2,
        "{r:?}"
    );
    Ok(())
}

#[test]
fn the_pca_baseline_improves_with_every_component_and_agrees_with_its_variance() -> Result<()> {
    use handgrad::experiments::pca::pca_baseline;
    let out = temp_dir("pca").join("p.png");
    let spec = SplitSpec {
        validation: Amount::Count(0),
        max_samples: Some(3000),
        ..SplitSpec::default()
    };
    let r = pca_baseline(
        "mnist",
        &[4, 16, 64, 200],
        &spec,
        5,
        Some(&out),
        false,
        &Lookup::default(),
    )?;
    assert!(out.exists());
    assert_eq!((r.train_images, r.test_images), (3000, 2000));
    for pair in r.rows.windows(2) {
        assert!(pair[1].explained > pair[0].explained, "{:?}", r.rows);
        assert!(pair[1].test_mse < pair[0].test_mse, "{:?}", r.rows);
    }
    // On the training images the error per pixel would be exactly the unexplained variance
    // divided by the pixel count; on unseen test images it is close to it, and never below
    // the reconstruction of a code that keeps everything.
    let total_var: f64 = {
        let ds = Dataset::find("mnist", &Lookup::default())?;
        let train = handgrad::data::batches::split(&ds, &spec)?.train;
        let px = train.first_pixels(usize::MAX);
        let n = train.len() as f64;
        (0..784)
            .map(|j| {
                let mean = px
                    .iter()
                    .skip(j)
                    .step_by(784)
                    .map(|&v| v as f64)
                    .sum::<f64>()
                    / n;
                px.iter()
                    .skip(j)
                    .step_by(784)
                    .map(|&v| (v as f64 - mean).powi(2))
                    .sum::<f64>()
                    / (n - 1.0)
            })
            .sum()
    };
    for row in &r.rows {
        let predicted = (1.0 - row.explained) * total_var / 784.0;
        assert!(
            (row.test_mse / predicted - 1.0).abs() < 0.35,
            "k = {}: test MSE {} vs unexplained variance per pixel {predicted}",
            row.k,
            row.test_mse
        );
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Classifiers

fn quick_classifier(epochs: usize) -> handgrad::experiments::classify::ClassifySpec {
    handgrad::experiments::classify::ClassifySpec {
        hidden: vec![64],
        activation: kernels::elementwise::Activation::Relu,
        epochs,
        batch_size: 64,
        lr: 2e-3,
        seed: 1,
        early_stopping: None,
    }
}

#[test]
fn a_classifier_on_a_trained_encoder_beats_chance_by_far_and_its_matrix_counts_every_test_image(
) -> Result<()> {
    use handgrad::experiments::classify::{classify, Backbone};
    let opts = RunOptions::default();
    let root = temp_dir("classify");
    for (source, least) in [
        (Backbone::Frozen(denoising_run().to_path_buf()), 0.6),
        (Backbone::Finetune(denoising_run().to_path_buf()), 0.8),
    ] {
        let out = root.join(format!("{}", source.describe().len()));
        let r = classify(&source, &quick_classifier(3), &out, &opts, &mut Silent)?;
        // Ten classes: chance is 10 %.
        assert!(
            r.test_accuracy > least,
            "{}: {}",
            source.describe(),
            r.test_accuracy
        );
        let counted: usize = r.confusion.iter().flatten().sum();
        assert_eq!(counted, r.test_images);
        let diagonal: usize = (0..10).map(|c| r.confusion[c][c]).sum();
        assert!((diagonal as f64 / counted as f64 - r.test_accuracy).abs() < 1e-12);
        assert_eq!(r.history.len(), 3);
        for f in ["metrics.csv", "curves.png", "confusion.png"] {
            assert!(out.join(f).exists(), "{f}");
        }
    }
    Ok(())
}

#[test]
fn a_classifier_on_pca_features_of_a_class_subset_relabels_and_names_them() -> Result<()> {
    use handgrad::experiments::classify::{classify, Backbone};
    let split = SplitSpec {
        classes: vec![0, 1, 2, 4, 7],
        max_samples: Some(2000),
        ..SplitSpec::default()
    };
    let source = Backbone::parse_features("pca:32", "mnist", split)?;
    let out = temp_dir("classify-pca").join("run");
    let r = classify(
        &source,
        &quick_classifier(4),
        &out,
        &RunOptions::default(),
        &mut Silent,
    )?;
    assert_eq!(r.class_names, ["0", "1", "2", "4", "7"]);
    assert_eq!(r.confusion.len(), 5);
    // Five classes: chance is 20 %.
    assert!(r.test_accuracy > 0.85, "{}", r.test_accuracy);
    let counted: usize = r.confusion.iter().flatten().sum();
    assert_eq!(counted, r.test_images);
    // The occupied folder is refused rather than overwritten.
    let err = classify(
        &source,
        &quick_classifier(1),
        &out,
        &RunOptions::default(),
        &mut Silent,
    )
    .expect_err("exists");
    assert!(err.to_string().contains("already exists"), "{err}");
    assert!(Backbone::parse_features("pca:x", "mnist", SplitSpec::default()).is_err());
    assert!(Backbone::parse_features("umap:3", "mnist", SplitSpec::default()).is_err());
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Sweeps and search

fn tiny_base() -> RunConfig {
    let mut cfg = small_config("mlp3-32", 600, 1);
    cfg.train.batch_size = 100;
    cfg
}

#[test]
fn a_sweep_writes_one_row_per_value() -> Result<()> {
    use handgrad::experiments::search::{sweep, SweepField};
    let out = temp_dir("sweep").join("s");
    let rows = sweep(
        &tiny_base(),
        SweepField::Latent,
        &[2.0, 5.0, 9.0],
        &out,
        &RunOptions::default(),
        &mut Silent,
    )?;
    assert_eq!(
        rows.iter().map(|r| r.value).collect::<Vec<_>>(),
        [2.0, 5.0, 9.0]
    );
    assert!(rows
        .iter()
        .all(|r| r.test.is_finite() && r.best_val.is_finite() && r.epochs == 1));
    let csv = std::fs::read_to_string(out.join("sweep.csv")).expect("sweep.csv");
    assert_eq!(csv.lines().count(), 4, "{csv}");
    assert!(out.join("sweep.png").exists());
    // Each run trained the value of its row: its own code size, and its own losses.
    for v in [2, 5, 9] {
        let cfg = RunConfig::load(
            "mlp3-32",
            Some(&out.join(format!("latent-{v}/config.json"))),
        )?;
        assert_eq!(cfg.model.latent, v);
    }
    assert!(rows.windows(2).all(|w| w[0].test != w[1].test), "{rows:?}");
    // A value the setting cannot take is refused before anything trains.
    let err = sweep(
        &tiny_base(),
        SweepField::Latent,
        &[2.5],
        &temp_dir("sweep-bad"),
        &RunOptions::default(),
        &mut Silent,
    )
    .expect_err("2.5 is no code size");
    assert!(err.to_string().contains("whole number"), "{err}");
    Ok(())
}

#[test]
fn a_sharded_search_merges_to_the_table_of_an_unsharded_one() -> Result<()> {
    use handgrad::experiments::search::{collect, search, trial_config};
    use handgrad::experiments::shards::Shard;
    let root = temp_dir("search");
    let opts = RunOptions::default();
    let base = tiny_base();
    let whole = search(
        &base,
        5,
        7,
        Shard::WHOLE,
        &root.join("whole"),
        &opts,
        &mut Silent,
    )?;
    assert_eq!(whole.len(), 5);
    let a = search(
        &base,
        5,
        7,
        Shard { part: 1, of: 2 },
        &root.join("a"),
        &opts,
        &mut Silent,
    )?;
    let b = search(
        &base,
        5,
        7,
        Shard { part: 2, of: 2 },
        &root.join("b"),
        &opts,
        &mut Silent,
    )?;
    assert_eq!(a.iter().map(|t| t.index).collect::<Vec<_>>(), [0, 2, 4]);
    assert_eq!(b.iter().map(|t| t.index).collect::<Vec<_>>(), [1, 3]);
    collect(
        &[root.join("a"), root.join("b")],
        &root.join("merged"),
        false,
    )?;
    let read = |d: &str, f: &str| std::fs::read_to_string(root.join(d).join(f)).expect("table");
    assert_eq!(read("whole", "results.csv"), read("merged", "results.csv"));
    assert_eq!(read("whole", "results.md"), read("merged", "results.md"));
    // The best trial's configuration is written and is the one the table names.
    let best: RunConfig = serde_json::from_str(&read("merged", "best-config.json")).expect("json");
    let first = read("merged", "results.csv");
    let best_index: usize = first
        .lines()
        .nth(1)
        .and_then(|l| l.split(',').nth(1))
        .and_then(|v| v.parse().ok())
        .expect("a ranked row");
    assert_eq!(
        best.model.latent,
        trial_config(&base, 7, best_index).model.latent
    );
    // Settings depend on the seed and the trial number only, and differ between trials.
    assert_eq!(
        trial_config(&base, 7, 3).train.lr,
        trial_config(&base, 7, 3).train.lr
    );
    assert!(
        (0..5)
            .map(|k| trial_config(&base, 7, k).train.lr.to_bits())
            .collect::<std::collections::HashSet<_>>()
            .len()
            == 5
    );
    // A trial merged twice is refused.
    let err = collect(
        &[root.join("a"), root.join("a")],
        &root.join("twice"),
        false,
    )
    .expect_err("duplicate");
    assert!(err.to_string().contains("two shards"), "{err}");
    Ok(())
}
