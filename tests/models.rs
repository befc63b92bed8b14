//! Architectures: every preset builds with the documented shapes, inconsistent specs name the
//! layer, and the `conv-selu` preset reproduces a PyTorch run of the same model exactly.

mod common;

use handgrad::autodiff::{Graph, Reduction};
use handgrad::models::{Autoencoder, ConvLayer, DecoderSpec, DeconvLayer};
use handgrad::nn::{load_state_dict, parameter_count, state_dict, Module, Name};
use handgrad::train::checkpoint;
use handgrad::train::RunConfig;
use handgrad::{Error, Result};
use ndarray::ArrayD;
use rand::rngs::StdRng;
use rand::SeedableRng;

fn build(preset: &str) -> Result<Autoencoder> {
    Autoencoder::new(
        &RunConfig::preset(preset)?.model,
        &mut StdRng::seed_from_u64(0),
    )
}

fn code_and_output_shapes(model: &mut Autoencoder, n: usize) -> Result<(Vec<usize>, Vec<usize>)> {
    let mut g = Graph::new();
    let x = g.constant(ArrayD::zeros(vec![n, 1, 28, 28]));
    let z = model.encode(&mut g, x)?;
    let y = model.decode(&mut g, z)?;
    Ok((g.shape(z).to_vec(), g.shape(y).to_vec()))
}

#[test]
fn every_preset_maps_images_to_codes_and_back() -> Result<()> {
    for (preset, latent, params) in [
        ("conv-selu", 6, None),
        ("conv-small", 20, None),
        // 784·392 + 392 + 392·8 + 8, twice mirrored: 2·(307,328 + 392) + 2·3,136 + 8 + 784 … counted below
        (
            "mlp4",
            8,
            Some(784 * 392 + 392 + 392 * 8 + 8 + 8 * 392 + 392 + 392 * 784 + 784),
        ),
        ("mlp1-32", 32, Some(784 * 32 + 32 + 32 * 784 + 784)),
        (
            "mlp3-16",
            16,
            Some(784 * 400 + 400 + 400 * 16 + 16 + 16 * 400 + 400 + 400 * 784 + 784),
        ),
    ] {
        let mut model = build(preset)?;
        assert_eq!(
            code_and_output_shapes(&mut model, 3)?,
            (vec![3, latent], vec![3, 1, 28, 28]),
            "{preset}"
        );
        if let Some(p) = params {
            assert_eq!(parameter_count(&model), p, "{preset}");
        }
    }
    Ok(())
}

#[test]
fn conv_selu_has_pytorchs_layer_names_and_shapes() -> Result<()> {
    let model = build("conv-selu")?;
    let shapes: Vec<(String, Vec<usize>)> = state_dict(&model)
        .into_iter()
        .map(|(k, v)| (k, v.shape().to_vec()))
        .collect();
    let get = |name: &str| {
        shapes
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, s)| s.clone())
    };
    assert_eq!(get("encoder.0.weight"), Some(vec![6, 1, 3, 3]));
    assert_eq!(get("encoder.7.weight"), Some(vec![145, 648]));
    assert_eq!(get("encoder.13.weight"), Some(vec![6, 52]));
    assert_eq!(get("decoder.6.weight"), Some(vec![648, 145]));
    assert_eq!(get("decoder.9.weight"), Some(vec![72, 39, 3, 3]));
    assert_eq!(get("decoder.13.weight"), Some(vec![6, 1, 3, 3]));
    assert_eq!(shapes.len(), 28);
    Ok(())
}

/// The Keras tutorials' convolutional autoencoder: size-keeping convolutions, each followed by
/// 2×2 max-pooling; the mirror upsamples before each transposed convolution.
#[test]
fn a_pooled_encoder_halves_each_map_and_its_mirror_upsamples_back() -> Result<()> {
    let mut spec = RunConfig::preset("conv-small")?.model;
    spec.conv = vec![ConvLayer::parse("8:3:1:1")?, ConvLayer::parse("4:3:1:1")?];
    spec.hidden = vec![32];
    spec.pool = true;
    spec.dropout = 0.5;
    let mut model = Autoencoder::new(&spec, &mut StdRng::seed_from_u64(0))?;
    let kinds: Vec<String> = model.plan().layers().map(|l| l.layer.to_string()).collect();
    let shapes: Vec<Vec<usize>> = model.plan().layers().map(|l| l.output.clone()).collect();
    let at = |kind: &str| -> Vec<Vec<usize>> {
        kinds
            .iter()
            .zip(&shapes)
            .filter(|(k, _)| k.starts_with(kind))
            .map(|(_, s)| s.clone())
            .collect()
    };
    assert_eq!(at("MaxPool2d"), [vec![8, 14, 14], vec![4, 7, 7]]);
    assert_eq!(at("Upsample"), [vec![4, 14, 14], vec![8, 28, 28]]);
    assert_eq!(at("Dropout").len(), 2, "{kinds:?}");
    assert_eq!(
        code_and_output_shapes(&mut model, 2)?,
        (vec![2, 20], vec![2, 1, 28, 28])
    );

    // In evaluation dropout does nothing: the same images give the same codes twice.
    model.set_training(false);
    let mut g = Graph::new();
    let x = g.constant(ArrayD::from_elem(vec![2, 1, 28, 28], 0.5));
    let (a, b) = (model.encode(&mut g, x)?, model.encode(&mut g, x)?);
    assert_eq!(g.value(a), g.value(b));
    // In training it zeroes values: two passes differ.
    model.set_training(true);
    let (a, b) = (model.encode(&mut g, x)?, model.encode(&mut g, x)?);
    assert_ne!(g.value(a), g.value(b));

    // A map of odd size cannot be pooled and restored: refused, naming the pooling layer.
    spec.conv.push(ConvLayer::parse("4:3:1:1")?);
    let err = Autoencoder::new(&spec, &mut StdRng::seed_from_u64(0)).expect_err("7 is odd");
    assert!(
        matches!(&err, Error::Architecture { layer, .. } if layer == "encoder.8"),
        "{err}"
    );
    assert!(err.to_string().contains("7×7"), "{err}");
    Ok(())
}

#[test]
fn a_decoder_that_cannot_restore_the_size_names_its_layer() {
    let mut spec = RunConfig::preset("conv-selu").expect("preset").model;
    spec.decoder = Some(DecoderSpec {
        hidden: vec![52, 98, 145],
        deconv: vec![
            DeconvLayer {
                channels: 39,
                kernel: 3,
                stride: 2,
                padding: 0,
                output_padding: 0,
            },
            DeconvLayer {
                channels: 6,
                kernel: 3,
                stride: 2,
                padding: 1,
                output_padding: 1,
            },
            DeconvLayer {
                channels: 1,
                kernel: 3,
                stride: 2,
                padding: 1,
                output_padding: 0,
            }, // 27×27
        ],
    });
    let err =
        Autoencoder::new(&spec, &mut StdRng::seed_from_u64(0)).expect_err("27×27 is not 28×28");
    assert!(
        matches!(&err, Error::Architecture { layer, .. } if layer == "decoder"),
        "{err}"
    );
    assert!(
        err.to_string().contains("1×27×27") && err.to_string().contains("1×28×28"),
        "{err}"
    );
}

#[test]
fn a_kernel_larger_than_its_input_names_the_encoder_layer() {
    let mut spec = RunConfig::preset("conv-small").expect("preset").model;
    spec.conv.push(ConvLayer {
        channels: 64,
        kernel: 7,
        stride: 1,
        padding: 0,
    }); // input is 4×4 by now
    let err =
        Autoencoder::new(&spec, &mut StdRng::seed_from_u64(0)).expect_err("7×7 kernel on 4×4");
    assert!(
        matches!(&err, Error::Architecture { layer, .. } if layer == "encoder.6"),
        "{err}"
    );
    // With a way out that fits: the largest kernel, or the padding this kernel needs.
    let text = err.to_string();
    assert!(
        text.contains("at most 4 (e.g. 64:4:1:0)")
            && text.contains("padding 2 with this kernel (64:7:1:2)"),
        "{text}"
    );
    let mut fixed = spec.clone();
    if let Some(last) = fixed.conv.last_mut() {
        last.padding = 2;
    }
    handgrad::models::ModelPlan::new(&fixed).expect("the suggested padding fits");
}

#[test]
fn conv_selu_reproduces_the_pytorch_reference() -> Result<()> {
    let Some(dir) = common::reference_dir() else {
        return Ok(());
    };
    let path = dir.join("model_conv_selu.safetensors");
    let what = format!("{} (made by tests/reference/generate.py)", path.display());
    if !common::available(&what, "HANDGRAD_REQUIRE_REFERENCE", path.is_file()) {
        return Ok(());
    }
    let (tensors, _) = checkpoint::load(&path)?;
    let mut model = build("conv-selu")?;
    let unused = load_state_dict(&mut model, &tensors)?;
    let mut leftovers: Vec<&str> = unused
        .iter()
        .map(String::as_str)
        .filter(|k| !k.starts_with("grad."))
        .collect();
    leftovers.sort();
    assert_eq!(leftovers, ["code", "input", "loss", "output"]);

    let mut g = Graph::new();
    let x = g.constant(tensors["input"].clone());
    let z = model.encode(&mut g, x)?;
    let y = model.decode(&mut g, z)?;
    let loss = g.mse(y, x, Reduction::Mean)?;
    g.backward(loss)?;

    let close = |what: &str, got: ndarray::ArrayViewD<'_, f32>, want: &ArrayD<f32>| {
        assert_eq!(got.len(), want.len(), "{what}: sizes differ");
        for (k, (&a, &b)) in got.iter().zip(want.iter()).enumerate() {
            assert!(
                (a - b).abs() <= 1e-4 * b.abs() + 1e-6,
                "{what}[{k}] = {a}, PyTorch gives {b}"
            );
        }
    };
    close("code", g.value(z), &tensors["code"]);
    close("output", g.value(y), &tensors["output"]);
    close("loss", g.value(loss), &tensors["loss"]);
    let mut checked = 0;
    model.visit(&mut Name::default(), &mut |name, p| {
        let want = &tensors[&format!("grad.{name}")];
        close(
            &format!("grad.{name}"),
            g.param_grad(p.id())
                .expect("every parameter gets a gradient")
                .view(),
            want,
        );
        checked += 1;
    });
    assert_eq!(checked, 28);
    Ok(())
}

#[test]
fn presets_and_config_files_are_validated() {
    assert!(matches!(
        RunConfig::preset("conv-huge"),
        Err(Error::Config { .. })
    ));
    assert!(matches!(
        RunConfig::preset("mlp1-0"),
        Err(Error::Config { .. })
    ));
    let mut cfg = RunConfig::preset("mlp4").expect("preset");
    cfg.train.lr = -1.0;
    assert!(matches!(cfg.validate(), Err(Error::Config { .. })));
}

#[test]
fn the_documented_config_example_builds_a_model() -> Result<()> {
    let doc = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/commands.md"))
        .map_err(Error::io("docs/commands.md"))?;
    let block = doc
        .split("```toml\n")
        .nth(1)
        .and_then(|rest| rest.split("```").next())
        .expect("docs/commands.md has a toml example");
    let path = std::env::temp_dir().join(format!("handgrad-readme-{}.toml", std::process::id()));
    std::fs::write(&path, block).map_err(Error::io(&path))?;
    let cfg = RunConfig::from_file(&path, "conv-selu")?;
    assert_eq!(
        (
            cfg.model.latent,
            cfg.train.early_stopping,
            cfg.dataset.as_str()
        ),
        (10, Some(4), "fashion-mnist")
    );
    let mut model = Autoencoder::new(&cfg.model, &mut StdRng::seed_from_u64(0))?;
    assert_eq!(
        code_and_output_shapes(&mut model, 2)?,
        (vec![2, 10], vec![2, 1, 28, 28])
    );
    Ok(())
}

#[test]
fn explain_gives_the_shapes_and_counts_a_real_forward_pass_has() -> Result<()> {
    use handgrad::experiments::explain::explain;
    use ndarray::IxDyn;
    for preset in ["conv-selu", "conv-small", "mlp4", "mlp3-32"] {
        let cfg = RunConfig::preset(preset)?;
        let (rows, totals) = explain(&cfg.model, 4)?;
        let mut model = build(preset)?;
        let mut g = Graph::new();
        let [c, h, w] = cfg.model.input;
        let mut x = g.constant_owned(ArrayD::from_elem(IxDyn(&[3, c, h, w]), 0.5));
        // Layer by layer through the encoder, then the decoder: each output's shape (after
        // the batch dimension) is the one the row states.
        let mut rows = rows.iter();
        for seq in [&mut model.encoder, &mut model.decoder] {
            for i in 0..seq.len() {
                x = seq.forward_layer(i, &mut g, x)?;
                let row = rows.next().expect("a row per layer");
                assert_eq!(
                    &g.shape(x)[1..],
                    row.output.as_slice(),
                    "{preset} {}",
                    row.name
                );
                let prod: u128 = row.output.iter().map(|&v| v as u128).product();
                assert_eq!(row.activation_bytes, 4 * 4 * prod, "{preset} {}", row.name);
            }
        }
        assert!(rows.next().is_none(), "{preset}: more rows than layers");
        // Parameters agree with the built model's count.
        let counted: u128 = explain(&cfg.model, 4)?.0.iter().map(|r| r.parameters).sum();
        assert_eq!(counted, parameter_count(&model) as u128, "{preset}");
        assert!(totals[0].contains("parameters"), "{totals:?}");
    }
    Ok(())
}

#[test]
fn trace_shows_every_layer_with_the_multiply_adds_of_its_formula() -> Result<()> {
    use handgrad::experiments::trace::{trace, write_dot};
    use handgrad::experiments::RunOptions;
    use handgrad::models::ModelPlan;
    for (preset, batch) in [("conv-selu", 8), ("mlp4", 16)] {
        let mut cfg = RunConfig::preset(preset)?;
        cfg.train.batch_size = batch;
        let rows = trace(&cfg, &RunOptions::default())?;
        let plan = ModelPlan::new(&cfg.model)?;
        // The tape's products are the plan's layers with weights, in order, each with the
        // multiply-adds of its formula (conv: N·C_out·OH·OW·C_in·k², linear: N·in·out).
        let products: Vec<u128> = rows.iter().filter(|r| r.macs > 0).map(|r| r.macs).collect();
        let layers: Vec<u128> = plan
            .layers()
            .filter(|l| l.macs() > 0)
            .map(|l| l.macs() * batch as u128)
            .collect();
        assert_eq!(products, layers, "{preset}");
        // Every value's forward was timed, and every product's backward (an op that reads
        // only the data, like mlp4's first reshape, has no backward to time).
        assert!(rows.iter().all(|r| r.forward.is_some()), "{preset}");
        assert!(
            rows.iter()
                .filter(|r| r.macs > 0)
                .all(|r| r.backward.is_some()),
            "{preset}"
        );
        // The graph file has a node per value and an edge per input.
        let path = std::env::temp_dir().join(format!(
            "handgrad-trace-{preset}-{}.dot",
            std::process::id()
        ));
        write_dot(&rows, preset, &path)?;
        let dot = std::fs::read_to_string(&path).expect("the dot file");
        let edges: usize = rows.iter().map(|r| r.inputs.len()).sum();
        assert_eq!(dot.matches(" -> ").count(), edges);
        assert_eq!(dot.matches("[shape=").count(), rows.len());
    }
    Ok(())
}

#[test]
fn a_training_step_counts_the_products_it_computes() -> Result<()> {
    use handgrad::models::ModelPlan;
    // mlp4 (784-392-8-392-784): forward 620,928 multiply-adds, the same again for the weight
    // gradients, and the input gradients of every layer but the first (784·392 = 307,328).
    let plan = ModelPlan::new(&RunConfig::preset("mlp4")?.model)?;
    assert_eq!(plan.macs(), 620_928);
    assert_eq!(plan.training_macs(), 3 * 620_928 - 307_328);
    // conv-selu: the first layer is the 1 → 6 convolution, 6·14·14 outputs of 9 taps each.
    let plan = ModelPlan::new(&RunConfig::preset("conv-selu")?.model)?;
    assert_eq!(plan.training_macs(), 3 * plan.macs() - 6 * 14 * 14 * 9);
    Ok(())
}
