"""The fashion report's transfer protocol, stage 2, in PyTorch, from a handgrad run's encoder.

A handgrad run of conv-small on Fashion-MNIST (stage 1: `handgrad train --preset conv-small
--dataset fashion-mnist --epochs 8`) has its encoder loaded here from `model.safetensors`
(handgrad writes PyTorch's names: encoder.0.weight, ...), a head Linear(20, 128), ReLU,
Linear(128, 10) is put on its code, and encoder and head are trained together with
cross-entropy, Adam 1e-3, batch 128, 20 epochs, on the first 54,000 training images; the
test accuracy after the last epoch is printed.

Run on the same run folder as `handgrad classify --run R --finetune --seed S`, it says which
stage a difference in accuracy comes from: the same encoder fine-tuned by PyTorch and by
handgrad.

With --stage1 OUT it instead runs stage 1 in PyTorch (the same autoencoder, PyTorch's default
initialisation, Adam 2e-3, batch 128, MSE, 8 epochs on the first 54,000 training images),
prints its test MSE, and writes a run folder OUT with the run's config.json and the trained
weights under handgrad's names, so that `handgrad classify --run OUT --finetune` fine-tunes a
PyTorch-trained encoder.

    .venv/bin/python tests/reference/transfer.py --run runs/conv-small-fashion-mnist --seed 0
"""
import argparse, os

import torch
from torch import nn

from common import conv_small, head, idx, load_safetensors, named, pixels, save_safetensors

ap = argparse.ArgumentParser()
ap.add_argument("--run", required=True, help="a handgrad run folder of conv-small on fashion-mnist")
ap.add_argument("--data", default="/usr/share/datasets/fashion-mnist")
ap.add_argument("--seed", type=int, default=0)
ap.add_argument("--epochs", type=int, default=20)
ap.add_argument("--threads", type=int, default=2)
ap.add_argument("--stage1", default="", help="train the autoencoder in PyTorch and write a run folder here")
a = ap.parse_args()
torch.set_num_threads(a.threads)
torch.manual_seed(a.seed)

x_train = pixels(idx(a.data, "train-images-idx3-ubyte.gz")[:54000])
y_train = torch.from_numpy(idx(a.data, "train-labels-idx1-ubyte.gz")[:54000].astype("int64"))
x_test = pixels(idx(a.data, "t10k-images-idx3-ubyte.gz"))
y_test = torch.from_numpy(idx(a.data, "t10k-labels-idx1-ubyte.gz").astype("int64"))

encoder, decoder = conv_small()

if a.stage1:
    # The decoder is built (and so initialised) after the encoder, as one model would be.
    torch.manual_seed(a.seed)
    encoder, decoder = conv_small()
    ae = nn.Sequential(encoder, decoder)
    opt = torch.optim.Adam(ae.parameters(), lr=2e-3)
    for epoch in range(1, 9):
        order = torch.randperm(len(x_train))
        for i in range(0, len(order), 128):
            batch = x_train[order[i : i + 128]]
            loss = nn.functional.mse_loss(ae(batch), batch)
            opt.zero_grad()
            loss.backward()
            opt.step()
        with torch.no_grad():
            mse = nn.functional.mse_loss(ae(x_test), x_test).item()
        print(f"epoch {epoch}: test MSE {mse:.6f}", flush=True)
    os.makedirs(a.stage1, exist_ok=True)
    with open(os.path.join(a.run, "config.json")) as f:
        config = f.read()
    with open(os.path.join(a.stage1, "config.json"), "w") as f:
        f.write(config)
    save_safetensors(os.path.join(a.stage1, "model.safetensors"), named(encoder=encoder, decoder=decoder))
    print(f"PyTorch autoencoder: test MSE {mse:.6f} (seed {a.seed}), written to {a.stage1}")
    raise SystemExit(0)

weights = load_safetensors(os.path.join(a.run, "model.safetensors"))
encoder.load_state_dict({k[len("encoder."):]: v for k, v in weights.items() if k.startswith("encoder.")})
torch.manual_seed(a.seed)
classifier = head()
model = nn.Sequential(encoder, classifier)
opt = torch.optim.Adam(model.parameters(), lr=1e-3)
loss_fn = nn.CrossEntropyLoss()

for epoch in range(1, a.epochs + 1):
    model.train()
    order = torch.randperm(len(x_train))
    total = 0.0
    for i in range(0, len(order), 128):
        batch = order[i : i + 128]
        loss = loss_fn(model(x_train[batch]), y_train[batch])
        opt.zero_grad()
        loss.backward()
        opt.step()
        total += loss.item() * len(batch)
    model.eval()
    with torch.no_grad():
        accuracy = (model(x_test).argmax(1) == y_test).float().mean().item()
    print(f"epoch {epoch:2d}: training loss {total / len(x_train):.4f}, test accuracy {100 * accuracy:.2f} %", flush=True)
print(f"test accuracy {100 * accuracy:.2f} % (seed {a.seed}, encoder of {a.run})")
