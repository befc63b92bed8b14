#!/usr/bin/env python3
"""Writes the PyTorch reference vectors that `tests/parity.rs` and `tests/models.rs` compare
handgrad with. The format is described in README.md beside this file.

Usage (a Python with torch and numpy, e.g. `python3 -m venv .venv && .venv/bin/pip install torch numpy`):

    python3 tests/reference/generate.py --out reference/
    HANDGRAD_REFERENCE=reference/ cargo test --release --test parity --test models

Every value is computed in float64 from inputs that are exactly representable in float32 (the
engine's precision), and stored rounded to 9 significant digits, so handgrad must match within
about 1e-4 relative. The seed is fixed: the same torch version writes the same files.
"""
import argparse
import json
import os

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from common import save_safetensors

torch.set_default_dtype(torch.float64)


def f32(t):
    """The tensor rounded to float32 and back: what handgrad will read."""
    return t.to(torch.float32).to(torch.float64)


def uniform(shape, lo=-1.0, hi=1.0):
    return f32(torch.rand(*shape) * (hi - lo) + lo)


def away_from_zero(shape, lo=0.05, hi=2.0):
    """Magnitudes in [lo, hi) with random signs: keeps ReLU-like kinks out of reach."""
    return f32((torch.rand(*shape) * (hi - lo) + lo) * torch.where(torch.rand(*shape) < 0.5, -1.0, 1.0))


def tensor_json(t):
    t = t.detach()
    return {"shape": list(t.shape), "data": [float(f"{v:.9g}") for v in t.reshape(-1).tolist()]}


class Writer:
    def __init__(self, out):
        self.out = out
        self.counts = {}
        os.makedirs(out, exist_ok=True)

    def write(self, op, case):
        k = self.counts.get(op, 0)
        self.counts[op] = k + 1
        path = os.path.join(self.out, f"{op}_{k:02d}.json")
        with open(path, "w") as f:
            json.dump(case, f)

    def op(self, op, params, inputs, fn, scalar=False):
        """An op or loss: output, upstream r, and the gradients of L = sum(r * output)."""
        leaves = {k: v.clone().requires_grad_(True) for k, v in inputs.items()}
        y = fn(**leaves)
        upstream = torch.ones_like(y) if scalar else uniform(tuple(y.shape))
        (upstream * y).sum().backward()
        self.write(op, {
            "op": op,
            "params": params,
            "inputs": {k: tensor_json(v) for k, v in inputs.items()},
            "output": tensor_json(y),
            "upstream": tensor_json(upstream),
            "grads": {k: tensor_json(v.grad) for k, v in leaves.items()},
        })

    def optimizer(self, op, make, hyper, steps=6):
        """Minimises f(p) = sum(c*p^2) + sum(d*p) from p0; records p after every step."""
        p0, c, d = uniform((10,)), uniform((10,), 0.1, 1.0), uniform((10,))
        p = p0.clone().requires_grad_(True)
        opt = make([p], **hyper)
        trajectory = []
        for _ in range(steps):
            opt.zero_grad()
            (c * p * p + d * p).sum().backward()
            opt.step()
            trajectory.append(p.detach().tolist())
        self.write(op, {"op": op, "objective": "sum(c*p^2) + sum(d*p)", "p0": p0.tolist(), "c": c.tolist(),
                        "d": d.tolist(), "hyper": hyper, "trajectory": trajectory})


def convolutions(w):
    for (n, c_in, h, wd, c_out, kh, kw, stride, pad) in [
        (2, 1, 28, 28, 6, 3, 3, 2, 1), (2, 6, 14, 14, 39, 3, 3, 2, 1), (2, 39, 7, 7, 72, 3, 3, 2, 0),
        (1, 3, 7, 6, 4, 3, 5, 1, 2), (3, 2, 9, 11, 5, 2, 2, 3, 0), (2, 4, 8, 8, 3, 1, 1, 1, 0),
    ]:
        w.op("conv2d", {"stride": stride, "padding": pad},
             {"x": uniform((n, c_in, h, wd)), "w": uniform((c_out, c_in, kh, kw)), "b": uniform((c_out,))},
             lambda x, w, b: F.conv2d(x, w, b, stride=stride, padding=pad))
    for (n, c_in, h, wd, c_out, k, stride, pad, op) in [
        (2, 72, 3, 3, 39, (3, 3), 2, 0, 0), (2, 39, 7, 7, 6, (3, 3), 2, 1, 1), (2, 6, 14, 14, 1, (3, 3), 2, 1, 1),
        (1, 3, 5, 4, 2, (4, 4), 3, 1, 2), (2, 2, 6, 6, 3, (1, 1), 1, 0, 0),
    ]:
        w.op("conv_transpose2d", {"stride": stride, "padding": pad, "output_padding": op},
             {"x": uniform((n, c_in, h, wd)), "w": uniform((c_in, c_out) + k), "b": uniform((c_out,))},
             lambda x, w, b: F.conv_transpose2d(x, w, b, stride=stride, padding=pad, output_padding=op))


def layers(w):
    for (n, d_in, d_out) in [(5, 648, 40), (7, 8, 3), (3, 784, 24)]:
        w.op("linear", {}, {"x": uniform((n, d_in)), "w": uniform((d_out, d_in)), "b": uniform((d_out,))},
             lambda x, w, b: F.linear(x, w, b))
    for name, fn in [("relu", F.relu), ("leaky_relu", lambda x: F.leaky_relu(x, 0.01)), ("selu", F.selu),
                     ("sigmoid", torch.sigmoid), ("tanh", torch.tanh)]:
        w.op(name, {}, {"x": away_from_zero((4, 3, 5, 5), 0.05, 3.0)}, lambda x, fn=fn: fn(x))
    w.op("softmax", {"dim": 1}, {"x": uniform((6, 10), -3, 3)}, lambda x: F.softmax(x, dim=1))
    w.op("log_softmax", {"dim": 1}, {"x": uniform((6, 10), -3, 3)}, lambda x: F.log_softmax(x, dim=1))
    w.op("max_pool2d", {"kernel": 2, "stride": 2}, {"x": uniform((2, 3, 8, 7))}, lambda x: F.max_pool2d(x, 2, 2))
    w.op("upsample_nearest2d", {"scale": 2}, {"x": uniform((2, 3, 4, 5))},
         lambda x: F.interpolate(x, scale_factor=2, mode="nearest"))
    # Batch norm in training mode, running statistics from (0, 1) after one step.
    x, gamma, beta = uniform((6, 4, 5, 5), -2, 3), uniform((4,), 0.5, 1.5), uniform((4,))
    running_mean, running_var = torch.zeros(4), torch.ones(4)
    F.batch_norm(x, running_mean, running_var, gamma, beta, training=True, momentum=0.1, eps=1e-5)
    w.op("batch_norm2d", {"training": True, "eps": 1e-5, "momentum": 0.1,
                          "running_mean_after": running_mean.tolist(), "running_var_after": running_var.tolist()},
         {"x": x, "gamma": gamma, "beta": beta},
         lambda x, gamma, beta: F.batch_norm(x, None, None, gamma, beta, training=True, eps=1e-5))


def losses(w):
    pred, target = uniform((8, 1, 6, 6), 0, 1), uniform((8, 1, 6, 6), 0, 1)
    for reduction in ["mean", "sum"]:
        w.op("mse", {"reduction": reduction}, {"input": pred, "target": target},
             lambda input, target, r=reduction: F.mse_loss(input, target, reduction=r), scalar=True)
    w.op("bce", {"reduction": "mean"}, {"input": uniform((8, 20), 0.02, 0.98), "target": uniform((8, 20), 0, 1)},
         lambda input, target: F.binary_cross_entropy(input, target), scalar=True)
    w.op("bce_with_logits", {"reduction": "mean"}, {"input": uniform((8, 20), -4, 4), "target": uniform((8, 20), 0, 1)},
         lambda input, target: F.binary_cross_entropy_with_logits(input, target), scalar=True)
    w.op("kl_gaussian", {"reduction": "sum over latent, mean over batch",
                         "formula": "-0.5 * sum(1 + logvar - mu^2 - exp(logvar)) / batch"},
         {"mu": uniform((16, 6)), "logvar": uniform((16, 6))},
         lambda mu, logvar: -0.5 * (1 + logvar - mu ** 2 - logvar.exp()).sum() / mu.shape[0], scalar=True)
    target = torch.randint(0, 10, (12,))
    w.op("cross_entropy", {"reduction": "mean", "target": target.tolist()}, {"logits": uniform((12, 10), -3, 3)},
         lambda logits: F.cross_entropy(logits, target), scalar=True)
    w.op("nll", {"reduction": "mean", "target": target.tolist()},
         {"log_probs": f32(F.log_softmax(uniform((12, 10), -3, 3), dim=1))},
         lambda log_probs: F.nll_loss(log_probs, target), scalar=True)


def optimizers(w):
    w.optimizer("adam", torch.optim.Adam, {"lr": 0.01})
    w.optimizer("adam", torch.optim.Adam, {"lr": 0.003, "betas": [0.8, 0.99], "eps": 1e-6, "weight_decay": 0.01})
    w.optimizer("sgd", torch.optim.SGD, {"lr": 0.05, "momentum": 0.9})
    w.optimizer("sgd", torch.optim.SGD, {"lr": 0.05, "momentum": 0.9, "nesterov": True})
    w.optimizer("adagrad", torch.optim.Adagrad, {"lr": 0.1})
    hyper = {"mode": "min", "factor": 0.5, "patience": 2, "threshold": 1e-4, "cooldown": 1, "min_lr": 0.05}
    p = torch.zeros(1, requires_grad=True)
    opt = torch.optim.SGD([p], lr=1.0)
    sched = torch.optim.lr_scheduler.ReduceLROnPlateau(opt, threshold_mode="rel", **hyper)
    metrics = [1.0, 0.9, 0.95, 0.91, 0.9, 0.89995, 0.8, 0.85, 0.85, 0.85, 0.85, 0.85, 0.7, 0.71, 0.72, 0.73,
               0.74, 0.75, 0.76]
    lrs = []
    for m in metrics:
        sched.step(m)
        lrs.append(opt.param_groups[0]["lr"])
    w.write("reduce_lr_on_plateau", {"op": "reduce_lr_on_plateau", "initial_lr": 1.0, "hyper": hyper,
                                     "threshold_mode": "rel", "metrics": metrics, "lr_after_each_step": lrs})


def conv_selu():
    """The conv-selu preset, PyTorch's nn.Sequential numbering."""
    S = nn.SELU
    encoder = nn.Sequential(
        nn.Conv2d(1, 6, 3, 2, 1), S(), nn.Conv2d(6, 39, 3, 2, 1), S(), nn.Conv2d(39, 72, 3, 2, 0), S(), nn.Flatten(),
        nn.Linear(648, 145), S(), nn.Linear(145, 98), S(), nn.Linear(98, 52), S(), nn.Linear(52, 6))
    decoder = nn.Sequential(
        nn.Linear(6, 52), S(), nn.Linear(52, 98), S(), nn.Linear(98, 145), S(), nn.Linear(145, 648), S(),
        nn.Unflatten(1, (72, 3, 3)), nn.ConvTranspose2d(72, 39, 3, 2, 0), S(),
        nn.ConvTranspose2d(39, 6, 3, 2, 1, output_padding=1), S(),
        nn.ConvTranspose2d(6, 1, 3, 2, 1, output_padding=1), nn.Sigmoid())
    return encoder, decoder


def model(out):
    encoder, decoder = conv_selu()
    with torch.no_grad():
        for p in list(encoder.parameters()) + list(decoder.parameters()):
            p.copy_(f32(p))
    x = uniform((4, 1, 28, 28), 0, 1)
    code = encoder(x)
    y = decoder(code)
    loss = F.mse_loss(y, x)
    loss.backward()
    tensors = {f"encoder.{k}": v for k, v in encoder.state_dict().items()}
    tensors.update({f"decoder.{k}": v for k, v in decoder.state_dict().items()})
    tensors.update({"input": x, "code": code, "output": y, "loss": loss.reshape(1)})
    for part, seq in [("encoder", encoder), ("decoder", decoder)]:
        for k, p in seq.named_parameters():
            tensors[f"grad.{part}.{k}"] = p.grad
    save_safetensors(os.path.join(out, "model_conv_selu.safetensors"), tensors)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", default="reference", help="folder to write the cases into")
    ap.add_argument("--seed", type=int, default=20261123)
    a = ap.parse_args()
    torch.manual_seed(a.seed)
    w = Writer(a.out)
    convolutions(w)
    layers(w)
    losses(w)
    optimizers(w)
    model(a.out)
    total = sum(w.counts.values())
    print(f"wrote {total} cases and model_conv_selu.safetensors to {a.out} (torch {torch.__version__})")


if __name__ == "__main__":
    main()
