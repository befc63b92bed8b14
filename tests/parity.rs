//! Parity with PyTorch: every case file in the reference folder, whatever it holds.
//!
//! The folder is `HANDGRAD_REFERENCE`, else `../shared/reference/` beside the checkout; with
//! neither, the test prints a loud notice and skips, or fails under
//! `HANDGRAD_REQUIRE_REFERENCE=1` (CI sets it). `tests/reference/generate.py` makes the cases
//! and its README describes their format. Each `<op>_<nn>.json` file
//! is dispatched on its `op` field (see the folder's README for the format); an op this file
//! does not know is a failure, so a new kind of case cannot be silently ignored. Values must
//! match within 1e-4 relative, with an absolute floor of 1e-5 for values near zero.

mod common;

use handgrad::autodiff::{Activation, Graph, Reduction, Var};
use handgrad::nn::{self, Module};
use handgrad::optim::{AdaGrad, Adam, Mode, Optimizer, ReduceLrOnPlateau, Sgd, ThresholdMode};
use ndarray::{ArrayD, IxDyn};
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::Path;

type CaseResult = Result<(), String>;

/// The ops and losses [`op_case`] knows how to run.
const OPS: &[&str] = &[
    "conv2d",
    "conv_transpose2d",
    "linear",
    "relu",
    "leaky_relu",
    "selu",
    "sigmoid",
    "tanh",
    "softmax",
    "log_softmax",
    "max_pool2d",
    "upsample_nearest2d",
    "mse",
    "bce",
    "bce_with_logits",
    "kl_gaussian",
    "cross_entropy",
    "nll",
    "batch_norm2d",
];

const REL: f64 = 1e-4;
const ABS: f64 = 1e-5;

#[test]
fn every_reference_case_matches_pytorch() {
    let Some(dir) = common::reference_dir() else {
        return;
    };
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("cannot list {}: {e}", dir.display()))
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    files.sort();
    assert!(!files.is_empty(), "{} holds no .json cases", dir.display());
    let mut failures = Vec::new();
    for file in &files {
        if let Err(msg) = run_file(file) {
            failures.push(format!("{}: {msg}", file.display()));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} cases differ from PyTorch:\n{}",
        failures.len(),
        files.len(),
        failures.join("\n")
    );
    println!(
        "{} reference cases from {} match PyTorch",
        files.len(),
        dir.display()
    );
}

fn run_file(path: &Path) -> CaseResult {
    let text = std::fs::read_to_string(path).map_err(|e| e.to_string())?;
    let case: Value = serde_json::from_str(&text).map_err(|e| format!("not JSON: {e}"))?;
    let op = case["op"].as_str().ok_or("no \"op\" field")?;
    match op {
        "adam" | "sgd" | "adagrad" => optimizer_case(op, &case),
        "reduce_lr_on_plateau" => plateau_case(&case),
        _ if OPS.contains(&op) => op_case(op, &case),
        other => Err(format!("unknown op {other:?}: add it to tests/parity.rs")),
    }
}

// ---------------------------------------------------------------------------------------
// JSON helpers

fn tensor(v: &Value) -> Result<ArrayD<f32>, String> {
    let shape: Vec<usize> = v["shape"]
        .as_array()
        .ok_or("tensor without shape")?
        .iter()
        .filter_map(Value::as_u64)
        .map(|d| d as usize)
        .collect();
    let data: Vec<f32> = numbers(&v["data"])?.into_iter().map(|x| x as f32).collect();
    ArrayD::from_shape_vec(IxDyn(&shape), data)
        .map_err(|e| format!("tensor data does not fit its shape: {e}"))
}

fn numbers(v: &Value) -> Result<Vec<f64>, String> {
    v.as_array()
        .ok_or("expected a list of numbers")?
        .iter()
        .map(|x| x.as_f64().ok_or_else(|| format!("not a number: {x}")))
        .collect()
}

fn param_usize(case: &Value, key: &str) -> Result<usize, String> {
    case["params"][key]
        .as_u64()
        .map(|v| v as usize)
        .ok_or_else(|| format!("params.{key} missing"))
}

fn param_f64(case: &Value, key: &str, default: f64) -> f64 {
    case["params"][key].as_f64().unwrap_or(default)
}

fn reduction(case: &Value) -> Result<Reduction, String> {
    match case["params"]["reduction"].as_str() {
        None | Some("mean") => Ok(Reduction::Mean),
        Some("sum") => Ok(Reduction::Sum),
        Some(other) => Err(format!("unsupported reduction {other:?}")),
    }
}

fn close(what: &str, got: impl IntoIterator<Item = f64>, want: &[f64]) -> CaseResult {
    let got: Vec<f64> = got.into_iter().collect();
    if got.len() != want.len() {
        return Err(format!(
            "{what}: {} values, expected {}",
            got.len(),
            want.len()
        ));
    }
    for (k, (&g, &w)) in got.iter().zip(want).enumerate() {
        // Written so that a NaN (for which every comparison is false) fails too.
        let within = (g - w).abs() <= REL * w.abs() + ABS;
        if !within {
            return Err(format!("{what}[{k}] = {g}, PyTorch gives {w}"));
        }
    }
    Ok(())
}

fn close_tensor(what: &str, got: ndarray::ArrayViewD<'_, f32>, want: &Value) -> CaseResult {
    let want_t = tensor(want)?;
    if got.shape() != want_t.shape() {
        return Err(format!(
            "{what}: shape {:?}, expected {:?}",
            got.shape(),
            want_t.shape()
        ));
    }
    close(
        what,
        got.iter().map(|&v| v as f64),
        &want_t.iter().map(|&v| v as f64).collect::<Vec<_>>(),
    )
}

// ---------------------------------------------------------------------------------------
// Ops and losses

fn op_case(op: &str, case: &Value) -> CaseResult {
    let inputs: BTreeMap<String, ArrayD<f32>> = case["inputs"]
        .as_object()
        .ok_or("no inputs")?
        .iter()
        .map(|(k, v)| tensor(v).map(|t| (k.clone(), t)))
        .collect::<Result<_, _>>()?;
    let mut g = Graph::new();
    let vars: BTreeMap<&str, Var> = inputs
        .iter()
        .map(|(k, t)| (k.as_str(), g.leaf(t.clone(), true)))
        .collect();
    let input = |name: &str| {
        vars.get(name)
            .copied()
            .ok_or_else(|| format!("input {name:?} missing"))
    };
    let e = |err: handgrad::Error| err.to_string();
    let mut batch_norm: Option<nn::BatchNorm> = None;

    let y = match op {
        "conv2d" => {
            let (stride, pad) = (param_usize(case, "stride")?, param_usize(case, "padding")?);
            g.conv2d(input("x")?, input("w")?, Some(input("b")?), stride, pad)
                .map_err(e)?
        }
        "conv_transpose2d" => {
            let (stride, pad, op_pad) = (
                param_usize(case, "stride")?,
                param_usize(case, "padding")?,
                param_usize(case, "output_padding")?,
            );
            g.conv_transpose2d(
                input("x")?,
                input("w")?,
                Some(input("b")?),
                stride,
                pad,
                op_pad,
            )
            .map_err(e)?
        }
        "linear" => g
            .linear(input("x")?, input("w")?, Some(input("b")?))
            .map_err(e)?,
        "relu" => g.relu(input("x")?).map_err(e)?,
        "leaky_relu" => g
            .leaky_relu(input("x")?, param_f64(case, "negative_slope", 0.01) as f32)
            .map_err(e)?,
        "selu" => g.selu(input("x")?).map_err(e)?,
        "sigmoid" => g.sigmoid(input("x")?).map_err(e)?,
        "tanh" => g.activation(input("x")?, Activation::Tanh).map_err(e)?,
        "softmax" | "log_softmax" => {
            let x = input("x")?;
            let dim = param_usize(case, "dim")?;
            if dim + 1 != g.shape(x).len() {
                return Err(format!(
                    "{op} over dim {dim}: handgrad reduces over the last axis only"
                ));
            }
            if op == "softmax" {
                g.softmax(x)
            } else {
                g.log_softmax(x)
            }
            .map_err(e)?
        }
        "max_pool2d" => g
            .max_pool2d(
                input("x")?,
                param_usize(case, "kernel")?,
                param_usize(case, "stride")?,
            )
            .map_err(e)?,
        "upsample_nearest2d" => g
            .upsample_nearest2d(input("x")?, param_usize(case, "scale")?)
            .map_err(e)?,
        "mse" => g
            .mse(input("input")?, input("target")?, reduction(case)?)
            .map_err(e)?,
        "bce" => g
            .bce(input("input")?, input("target")?, reduction(case)?)
            .map_err(e)?,
        "bce_with_logits" => g
            .bce_with_logits(input("input")?, input("target")?, reduction(case)?)
            .map_err(e)?,
        "kl_gaussian" => g.kl_gaussian(input("mu")?, input("logvar")?).map_err(e)?,
        "cross_entropy" | "nll" => {
            let targets: Vec<usize> = numbers(&case["params"]["target"])?
                .into_iter()
                .map(|t| t as usize)
                .collect();
            let name = if op == "nll" { "log_probs" } else { "logits" };
            if op == "nll" {
                g.nll(input(name)?, &targets, reduction(case)?)
            } else {
                g.cross_entropy(input(name)?, &targets, reduction(case)?)
            }
            .map_err(e)?
        }
        "batch_norm2d" => {
            if case["params"]["training"].as_bool() != Some(true) {
                return Err("only training-mode batch norm cases are supported".into());
            }
            let gamma = &inputs["gamma"];
            let mut layer = nn::BatchNorm::new(gamma.len());
            layer.weight.value.assign(gamma);
            layer
                .bias
                .value
                .assign(inputs.get("beta").ok_or("beta missing")?);
            layer.eps = param_f64(case, "eps", 1e-5) as f32;
            layer.momentum = param_f64(case, "momentum", 0.1) as f32;
            let y = layer.forward(&mut g, input("x")?).map_err(e)?;
            batch_norm = Some(layer);
            y
        }
        other => return Err(format!("op {other:?} is listed in OPS but not dispatched")),
    };

    close_tensor("output", g.value(y), &case["output"])?;
    let upstream = tensor(&case["upstream"])?;
    g.backward_from(y, upstream).map_err(e)?;
    for (name, want) in case["grads"].as_object().ok_or("no grads")? {
        let grad = match (&batch_norm, name.as_str()) {
            (Some(layer), "gamma") => g.param_grad(layer.weight.id()),
            (Some(layer), "beta") => g.param_grad(layer.bias.id()),
            _ => g.grad(input(name)?),
        };
        close_tensor(
            &format!("d{name}"),
            grad.ok_or_else(|| format!("no gradient for {name}"))?
                .view(),
            want,
        )?;
    }
    if let Some(layer) = &batch_norm {
        close(
            "running_mean",
            layer.running_mean.value.iter().map(|&v| v as f64),
            &numbers(&case["params"]["running_mean_after"])?,
        )?;
        close(
            "running_var",
            layer.running_var.value.iter().map(|&v| v as f64),
            &numbers(&case["params"]["running_var_after"])?,
        )?;
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------
// Optimisers on f(p) = Σ c·p² + Σ d·p, whose gradient is 2c·p + d.

fn optimizer_case(op: &str, case: &Value) -> CaseResult {
    let hyper = case["hyper"].as_object().ok_or("no hyper")?;
    let h = |k: &str, default: f64| hyper.get(k).and_then(Value::as_f64).unwrap_or(default) as f32;
    let known: &[&str] = match op {
        "adam" => &["lr", "betas", "eps", "weight_decay"],
        "sgd" => &["lr", "momentum", "nesterov", "weight_decay", "dampening"],
        _ => &[
            "lr",
            "lr_decay",
            "weight_decay",
            "eps",
            "initial_accumulator_value",
        ],
    };
    if let Some(k) = hyper.keys().find(|k| !known.contains(&k.as_str())) {
        return Err(format!("unsupported {op} hyperparameter {k:?}"));
    }
    let e = |err: handgrad::Error| err.to_string();
    let mut opt: Box<dyn Optimizer> = match op {
        "adam" => {
            let betas = hyper
                .get("betas")
                .map(numbers)
                .transpose()?
                .unwrap_or_else(|| vec![0.9, 0.999]);
            Box::new(
                Adam::new(h("lr", 1e-3))
                    .and_then(|a| a.with_betas(betas[0] as f32, betas[1] as f32, h("eps", 1e-8)))
                    .and_then(|a| a.with_weight_decay(h("weight_decay", 0.0)))
                    .map_err(e)?,
            )
        }
        "sgd" => {
            if h("dampening", 0.0) != 0.0 {
                return Err("SGD dampening is not supported".into());
            }
            let nesterov = hyper
                .get("nesterov")
                .and_then(Value::as_bool)
                .unwrap_or(false);
            Box::new(
                Sgd::new(h("lr", 1e-3))
                    .and_then(|s| s.with_momentum(h("momentum", 0.0), nesterov))
                    .and_then(|s| s.with_weight_decay(h("weight_decay", 0.0)))
                    .map_err(e)?,
            )
        }
        _ => {
            if h("initial_accumulator_value", 0.0) != 0.0 || h("eps", 1e-10) != 1e-10 {
                return Err(
                    "AdaGrad with a non-default accumulator or eps is not supported".into(),
                );
            }
            Box::new(
                AdaGrad::new(h("lr", 1e-2))
                    .and_then(|a| a.with_decay(h("lr_decay", 0.0), h("weight_decay", 0.0)))
                    .map_err(e)?,
            )
        }
    };
    let (c, d) = (numbers(&case["c"])?, numbers(&case["d"])?);
    let mut p: Vec<f32> = numbers(&case["p0"])?
        .into_iter()
        .map(|v| v as f32)
        .collect();
    for (step, want) in case["trajectory"]
        .as_array()
        .ok_or("no trajectory")?
        .iter()
        .enumerate()
    {
        let grad: Vec<f32> = p
            .iter()
            .zip(c.iter().zip(&d))
            .map(|(&pi, (&ci, &di))| (2.0 * ci * pi as f64 + di) as f32)
            .collect();
        opt.update("p", &mut p, &grad);
        close(
            &format!("p after step {}", step + 1),
            p.iter().map(|&v| v as f64),
            &numbers(want)?,
        )?;
    }
    Ok(())
}

fn plateau_case(case: &Value) -> CaseResult {
    let hyper = &case["hyper"];
    let f = |k: &str, default: f64| hyper[k].as_f64().unwrap_or(default);
    let mode = match hyper["mode"].as_str() {
        None | Some("min") => Mode::Min,
        Some("max") => Mode::Max,
        Some(other) => return Err(format!("unknown mode {other:?}")),
    };
    let threshold_mode = match case["threshold_mode"]
        .as_str()
        .or(hyper["threshold_mode"].as_str())
    {
        None | Some("rel") => ThresholdMode::Rel,
        Some("abs") => ThresholdMode::Abs,
        Some(other) => return Err(format!("unknown threshold mode {other:?}")),
    };
    let mut sched = ReduceLrOnPlateau::new(f("factor", 0.1), f("patience", 10.0) as usize)
        .and_then(|s| {
            s.with_mode(mode).with_limits(
                f("threshold", 1e-4),
                threshold_mode,
                f("cooldown", 0.0) as usize,
                f("min_lr", 0.0),
            )
        })
        .map_err(|e| e.to_string())?;
    let mut lr = case["initial_lr"].as_f64().ok_or("no initial_lr")?;
    let mut lrs = Vec::new();
    for m in numbers(&case["metrics"])? {
        lr = sched.step(m, lr);
        lrs.push(lr);
    }
    close(
        "lr after each step",
        lrs,
        &numbers(&case["lr_after_each_step"])?,
    )
}
