#!/usr/bin/env python3
"""The transfer protocol's first steps in PyTorch, from weights handgrad can make too:
writes `transfer_first_steps.json`, which `tests/transfer.rs` replays in handgrad.

Both stages of the fashion report's protocol start here from the same weights on both sides:
every number of a parameter named N (encoder.0.weight, head.2.bias, ...) of bound b is

    h = FNV-1a-64(N); u_i = splitmix64(h + i) >> 11, divided by 2^53;  w_i = float32((2 u_i - 1) b)

with b = 1/sqrt(fan_in), PyTorch's default range (fan_in by PyTorch's rule; a bias takes its
weight's). So no weight file is needed: the rule is a few lines in each language.

- stage 1: the conv-small autoencoder, MSE, Adam 2e-3, the first STEPS batches of 128
  Fashion-MNIST training images in file order;
- stage 2: the same (untrained) encoder with the head Linear(20, 128), ReLU, Linear(128, 10),
  cross-entropy on the labels, Adam 1e-3, the same batches; encoder and head both train.

For each stage it records the loss of every step (before its update), every parameter's
gradient at the first step (its L2 norm and its first values) and every parameter after the
last step (the same). PyTorch computes in float64 from float32 inputs and weights, so the
numbers are what exact arithmetic gives; handgrad, in float32, must stay close.

    .venv/bin/python tests/reference/first_steps.py --out tests/reference/transfer_first_steps.json
"""
import argparse
import json

import numpy as np
import torch
from torch import nn

from common import conv_small, head, idx, pixels

MASK = (1 << 64) - 1


def fnv1a(name):
    h = 0xCBF29CE484222325
    for byte in name.encode():
        h = ((h ^ byte) * 0x100000001B3) & MASK
    return h


def splitmix64(x):
    """splitmix64's output function on a vector of uint64 states (numpy wraps on overflow)."""
    z = x + np.uint64(0x9E3779B97F4A7C15)
    z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return z ^ (z >> np.uint64(31))


def rule_values(name, count, bound):
    with np.errstate(over="ignore"):
        states = np.uint64(fnv1a(name)) + np.arange(count, dtype=np.uint64)
        u = (splitmix64(states) >> np.uint64(11)).astype(np.float64) / float(1 << 53)
    return ((2.0 * u - 1.0) * bound).astype(np.float32)


def fan_in(weight_shape):
    receptive = int(np.prod(weight_shape[2:])) if len(weight_shape) > 2 else 1
    return weight_shape[1] * receptive


def set_by_rule(parts):
    """Sets every parameter of the named modules by the rule; returns [name, shape, bound]."""
    table = []
    for part, module in parts.items():
        weights = dict(module.named_parameters())
        for k, p in weights.items():
            name = f"{part}.{k}"
            owner = weights[k.rsplit(".", 1)[0] + ".weight"]
            bound = 1.0 / float(np.sqrt(fan_in(list(owner.shape))))
            values = rule_values(name, p.numel(), bound).reshape(tuple(p.shape))
            with torch.no_grad():
                p.copy_(torch.from_numpy(values).to(torch.float64))
            table.append({"name": name, "shape": list(p.shape), "bound": bound})
    return table


def summary(t):
    flat = t.detach().reshape(-1)
    return {"norm": float(flat.norm()), "first": [float(v) for v in flat[:4]]}


def run(parts, model, loss_of, lr, batches):
    opt = torch.optim.Adam([p for m in parts.values() for p in m.parameters()], lr=lr)
    losses, first_grads = [], {}
    for step, (x, y) in enumerate(batches):
        loss = loss_of(model, x, y)
        opt.zero_grad()
        loss.backward()
        if step == 0:
            for part, module in parts.items():
                for k, p in module.named_parameters():
                    first_grads[f"{part}.{k}"] = summary(p.grad)
        opt.step()
        losses.append(loss.item())
    after = {f"{part}.{k}": summary(p) for part, m in parts.items() for k, p in m.named_parameters()}
    return {"lr": lr, "losses": losses, "first_gradients": first_grads, "after": after}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", default="/usr/share/datasets/fashion-mnist")
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--batch-size", type=int, default=128)
    ap.add_argument("--out", default="tests/reference/transfer_first_steps.json")
    a = ap.parse_args()
    torch.set_default_dtype(torch.float64)
    n = a.steps * a.batch_size
    x = pixels(idx(a.data, "train-images-idx3-ubyte.gz")[:n]).to(torch.float64)
    y = torch.from_numpy(idx(a.data, "train-labels-idx1-ubyte.gz")[:n].astype(np.int64))
    batches = [(x[i : i + a.batch_size], y[i : i + a.batch_size]) for i in range(0, n, a.batch_size)]

    encoder, decoder = conv_small()
    stage1_parts = {"encoder": encoder, "decoder": decoder}
    table = set_by_rule(stage1_parts)
    autoencoder = nn.Sequential(encoder, decoder)
    stage1 = run(stage1_parts, autoencoder, lambda m, x, y: nn.functional.mse_loss(m(x), x), 2e-3, batches)

    encoder, _ = conv_small()
    classifier = head()
    stage2_parts = {"encoder": encoder, "head": classifier}
    table += [row for row in set_by_rule(stage2_parts) if row["name"].startswith("head.")]
    model = nn.Sequential(encoder, classifier)
    stage2 = run(stage2_parts, model, lambda m, x, y: nn.functional.cross_entropy(m(x), y), 1e-3, batches)

    out = {
        "about": "The transfer protocol's first steps in PyTorch (float64) from the rule's weights; made by tests/reference/first_steps.py",
        "torch": torch.__version__,
        "batch_size": a.batch_size,
        "steps": a.steps,
        "parameters": table,
        "stage1": stage1,
        "stage2": stage2,
    }
    with open(a.out, "w") as f:
        json.dump(out, f, indent=1)
        f.write("\n")
    print(f"wrote {a.out}: stage 1 loss {stage1['losses'][0]:.6f} -> {stage1['losses'][-1]:.6f}, "
          f"stage 2 loss {stage2['losses'][0]:.6f} -> {stage2['losses'][-1]:.6f}")


if __name__ == "__main__":
    main()
