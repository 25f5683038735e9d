"""Tiny models with one planted accuracy fault each, for the layer-wise comparison tests.

``overflow``: ``amplify`` turns moderate activations into values past fp16's 65504 on the
held-out samples (inputs ~3000), while the random inputs AutoCast probes with stay small, so
fp16 lowering keeps it in fp16 and it overflows: it must be named as the first diverging node.
``clipped``: calibration feeds ``gain`` 0.01 and the samples 1.0, so only ``scaled``'s input
(``fc1``'s output times the gain, divided out again after it) falls far outside its calibrated
INT8 range: keeping ``scaled`` in float restores the accuracy.
"""

import numpy as np
import torch
from torch import nn


class Overflow(nn.Module):
    def __init__(self):
        super().__init__()
        self.embed = nn.Linear(16, 32)
        self.amplify = nn.Linear(32, 32)
        self.head = nn.Linear(32, 16)
        with torch.no_grad():
            self.amplify.weight.mul_(400.0)

    def forward(self, x):
        return self.head(torch.relu(self.amplify(torch.relu(self.embed(x)))))


def overflow():
    torch.manual_seed(0)
    return Overflow().eval()


def overflow_samples():
    rng = np.random.default_rng(3)
    return [{"x": (3000.0 * rng.standard_normal((2, 8, 16))).astype(np.float32)} for _ in range(2)]


class Clipped(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(32, 32)
        self.scaled = nn.Linear(32, 32, bias=False)
        self.fc3 = nn.Linear(32, 16)

    def forward(self, x, gain):
        return self.fc3(torch.relu(self.scaled(self.fc1(x) * gain) / gain))


def clipped():
    torch.manual_seed(0)
    return Clipped().eval()


def _clipped_batches(gain: float, count: int, seed: int, batch: int = 4):
    rng = np.random.default_rng(seed)
    return [{"x": rng.standard_normal((batch, 8, 32)).astype(np.float32),
             "gain": np.full((batch, 1, 1), gain, np.float32)} for _ in range(count)]


def clipped_calibration():
    return _clipped_batches(0.01, 4, seed=1)


def clipped_samples():
    return _clipped_batches(1.0, 2, seed=2, batch=2)
