"""Tiny models and calibration data for the precision tests, good and broken.

``build``: a per-token MLP on (batch, seq, 16) inputs whose activations grow with the position
in the sequence, so calibrating on short sequences and serving long ones leaves the later
positions outside the calibrated ranges. ``elementwise``: no MatMul/Gemm/Conv to quantize.
"""

import numpy as np
import torch
from torch import nn


class Ramp(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(16, 32)
        self.fc2 = nn.Linear(32, 16)

    def forward(self, x):
        position = torch.arange(x.shape[1], dtype=x.dtype, device=x.device)[None, :, None]
        return self.fc2(torch.relu(self.fc1(x + 0.5 * position)))


def build():
    torch.manual_seed(0)
    return Ramp().eval()


class Elementwise(nn.Module):
    def forward(self, x):
        return x * 2.0 + 1.0


def elementwise():
    return Elementwise()


def _batches(seq=16, count=4, batch=4, seed=7, dtype=np.float32):
    rng = np.random.default_rng(seed)
    for _ in range(count):
        yield {"x": rng.standard_normal((batch, seq, 16)).astype(dtype)}


def calibration():
    return _batches()


def short_sequences():
    return _batches(seq=2)


def as_lists():
    for batch in _batches():
        yield [batch["x"]]


def wrong_dtype():
    return _batches(dtype=np.float64)


def wrong_rank():
    for batch in _batches():
        yield {"x": batch["x"][:, 0, :]}


def too_long():
    return _batches(seq=64)


def too_few():
    return _batches(count=1)


def with_nan():
    for i, batch in enumerate(_batches()):
        if i == 2:
            batch["x"][0, 0, 0] = np.nan
        yield batch


def raises_midway():
    for i, batch in enumerate(_batches()):
        if i == 2:
            raise OSError("lost the connection to the data store")
        yield batch


def unknown_input():
    for batch in _batches():
        yield {"x": batch["x"], "mask": batch["x"]}


def samples():
    """Held-out samples: long sequences, from another seed than the calibration data."""
    rng = np.random.default_rng(99)
    return [{"x": torch.from_numpy(rng.standard_normal((2, 16, 16)).astype(np.float32))} for _ in range(2)]


def calibration_samples():
    """Held-out samples that are calibration samples (the mistake the check catches)."""
    first = next(iter(calibration()))
    return [{"x": torch.from_numpy(first["x"])}]


def ragged():
    """Batches of 4, 4 and 3 samples: a short last batch, as real data ends."""
    rng = np.random.default_rng(5)
    for rows in (4, 4, 3):
        yield {"x": rng.standard_normal((rows, 16, 16)).astype(np.float32)}


class Stateful(nn.Module):
    """A recurrent-style step: ``state`` is [2, batch, 16], its batch on axis 1."""

    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(16, 16)

    def forward(self, x, state):
        return self.fc(x + state[0] - state[1])


def stateful():
    torch.manual_seed(0)
    return Stateful().eval()


def stateful_calibration():
    rng = np.random.default_rng(9)
    for rows in (4, 3):
        yield {"x": rng.standard_normal((rows, 16)).astype(np.float32),
               "state": rng.standard_normal((2, rows, 16)).astype(np.float32)}


class ConvThenWide(nn.Module):
    """A small 1x1 convolution and a wide Linear head: quantizing Conv alone leaves most of the
    weights (and the compute) in float."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv1d(16, 16, 1)
        self.head = nn.Linear(16, 256)

    def forward(self, x):
        return self.head(torch.relu(self.conv(x.transpose(1, 2))).transpose(1, 2))


def conv_then_wide():
    torch.manual_seed(0)
    return ConvThenWide().eval()
