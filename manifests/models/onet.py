"""MTCNN's output network (ONet): a real, trained CNN classifier for the validation examples.

The weights are the ones facenet-pytorch ships inside its wheel (``facenet_pytorch/data/onet.pt``,
MTCNN's published ONet converted to PyTorch); that package imports torchvision and pins an old
torch, so it is installed with ``--no-deps`` and never imported: the file is found through the
import system and loaded as a state dict (``weights_only``). The module is written here.

Input: 48x48 RGB crops, normalised as MTCNN does ((pixel - 127.5) / 128). Outputs: the face /
not-face scores (``face``, softmax), the box correction (``box``) and five landmarks
(``landmarks``). Samples are synthetic crops: smooth blobs on noise, a fixed seed.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import torch
from torch import nn

PACKAGE = "facenet_pytorch"


class ONet(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1, self.prelu1 = nn.Conv2d(3, 32, 3), nn.PReLU(32)
        self.conv2, self.prelu2 = nn.Conv2d(32, 64, 3), nn.PReLU(64)
        self.conv3, self.prelu3 = nn.Conv2d(64, 64, 3), nn.PReLU(64)
        self.conv4, self.prelu4 = nn.Conv2d(64, 128, 2), nn.PReLU(128)
        self.dense5, self.prelu5 = nn.Linear(1152, 256), nn.PReLU(256)
        self.dense6_1, self.dense6_2, self.dense6_3 = nn.Linear(256, 2), nn.Linear(256, 4), nn.Linear(256, 10)

    def forward(self, crops):
        x = nn.functional.max_pool2d(self.prelu1(self.conv1(crops)), 3, 2, ceil_mode=True)
        x = nn.functional.max_pool2d(self.prelu2(self.conv2(x)), 3, 2, ceil_mode=True)
        x = nn.functional.max_pool2d(self.prelu3(self.conv3(x)), 2, 2, ceil_mode=True)
        x = self.prelu4(self.conv4(x))
        x = self.prelu5(self.dense5(x.permute(0, 3, 2, 1).flatten(1)))  # the original's (W, H, C) order
        return {"face": torch.softmax(self.dense6_1(x), dim=1), "box": self.dense6_2(x), "landmarks": self.dense6_3(x)}


def weights_path() -> Path:
    spec = importlib.util.find_spec(PACKAGE)  # finds the package without running its __init__
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError(f"{PACKAGE} is not installed: pip install --no-deps facenet-pytorch==2.6.0")
    return Path(next(iter(spec.submodule_search_locations))) / "data" / "onet.pt"


def build() -> nn.Module:
    model = ONet()
    model.load_state_dict(torch.load(weights_path(), weights_only=True))
    return model.eval()


def _crops(count: int, seed: int, scale: float = 1.0) -> np.ndarray:
    """Smooth colour blobs on a noisy background, in MTCNN's normalisation."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:48, 0:48].astype(np.float32)
    crops = []
    for _ in range(count):
        cy, cx, r = rng.uniform(14, 34), rng.uniform(14, 34), rng.uniform(8, 20)
        blob = np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / (2 * r * r))
        colour = rng.uniform(60, 230, size=(3, 1, 1)).astype(np.float32)
        pixels = colour * blob + rng.uniform(0, 255, size=(3, 1, 1)) * (1 - blob) + rng.normal(0, 12, (3, 48, 48))
        crops.append(np.clip(pixels, 0, 255))
    return ((np.stack(crops).astype(np.float32) - 127.5) / 128.0 * scale).astype(np.float32)


def samples():
    """40 held-out crops in two batches (top-1 agreement needs rows to count)."""
    return [{"crops": _crops(20, seed=1 + i)} for i in range(2)]


def calibration_batches():
    return [{"crops": _crops(16, seed=100 + i)} for i in range(4)]


def clipped_calibration_batches():
    """Calibration data at 2% of the served magnitude: every activation range is clipped, the
    INT8 graph saturates on real inputs (a damaged variant validation must block)."""
    return [{"crops": _crops(16, seed=100 + i, scale=0.02)} for i in range(4)]
