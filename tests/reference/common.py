"""What the reference scripts share: reading IDX and safetensors files, writing safetensors,
and the fashion report's conv-small autoencoder and classifier head in PyTorch's layers.

No package beyond torch and numpy: safetensors is an 8-byte little-endian header length, a
JSON header naming each tensor's dtype, shape and byte range, then the raw data.
"""
import gzip
import json
import os
import struct

import numpy as np
import torch
from torch import nn


def idx(folder, name):
    """An IDX file (gzip-compressed) as a uint8 numpy array of its shape."""
    with gzip.open(os.path.join(folder, name), "rb") as f:
        data = f.read()
    dims = data[3]
    shape = struct.unpack(">" + "I" * dims, data[4 : 4 + 4 * dims])
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * dims).reshape(shape)


def pixels(images):
    """uint8 images as handgrad reads them: each byte / 255 rounded to float32, NCHW."""
    return torch.from_numpy(images.astype(np.float32) / np.float32(255.0)).unsqueeze(1)


def load_safetensors(path):
    """The tensors of a safetensors file, as float32 torch tensors."""
    with open(path, "rb") as f:
        raw = f.read()
    (n,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8 : 8 + n])
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        start, end = info["data_offsets"]
        assert info["dtype"] == "F32", (name, info["dtype"])
        values = np.frombuffer(raw[8 + n + start : 8 + n + end], dtype="<f4").reshape(info["shape"])
        out[name] = torch.from_numpy(values.copy())
    return out


def save_safetensors(path, tensors):
    """Writes tensors as float32 safetensors, PyTorch's metadata included."""
    header, blobs, offset = {"__metadata__": {"format": "pt"}}, [], 0
    for name, t in tensors.items():
        data = t.detach().to(torch.float32).contiguous().numpy().astype("<f4").tobytes()
        header[name] = {"dtype": "F32", "shape": list(t.shape), "data_offsets": [offset, offset + len(data)]}
        blobs.append(data)
        offset += len(data)
    text = json.dumps(header).encode()
    text += b" " * (-len(text) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)) + text + b"".join(blobs))


def conv_small():
    """The conv-small autoencoder (encoder, decoder), PyTorch's nn.Sequential numbering, which
    is also handgrad's parameter naming (encoder.0.weight, ..., decoder.9.bias)."""
    encoder = nn.Sequential(
        nn.Conv2d(1, 8, 3, 2, 1), nn.ReLU(), nn.Conv2d(8, 16, 3, 2, 1), nn.ReLU(),
        nn.Conv2d(16, 32, 3, 2, 1), nn.ReLU(), nn.Flatten(), nn.Linear(512, 64), nn.ReLU(), nn.Linear(64, 20),
    )
    decoder = nn.Sequential(
        nn.Linear(20, 64), nn.ReLU(), nn.Linear(64, 512), nn.ReLU(), nn.Unflatten(1, (32, 4, 4)),
        nn.ConvTranspose2d(32, 16, 3, 2, 1, 0), nn.ReLU(), nn.ConvTranspose2d(16, 8, 3, 2, 1, 1), nn.ReLU(),
        nn.ConvTranspose2d(8, 1, 3, 2, 1, 1), nn.Sigmoid(),
    )
    return encoder, decoder


def head():
    """The report's classifier head on a 20-number code (handgrad's names head.0, head.2)."""
    return nn.Sequential(nn.Linear(20, 128), nn.ReLU(), nn.Linear(128, 10))


def named(**parts):
    """The parameters of several modules under handgrad's names: part.k.weight."""
    return {f"{part}.{k}": v for part, module in parts.items() for k, v in module.state_dict().items()}
