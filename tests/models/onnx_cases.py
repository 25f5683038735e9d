"""Tiny torch models for the ONNX tests.

``build``: a CNN with a dynamic batch and two named outputs. ``layernorm``: its graph holds a
LayerNormalization, which has no form before opset 17. ``custom``: uses two custom operators
the ONNX exporter has no translation for (``fixture_plugins.onnx_translations`` supplies them).
"""

import torch
from torch import nn


class SmallCNN(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 16, 3, padding=1)  # 1.7 KiB of weights: external data has a tensor to hold
        self.head = nn.Linear(16, 4)

    def forward(self, images):
        features = torch.relu(self.conv(images)).mean((2, 3))
        return {"logits": self.head(features), "features": features}


def build():
    torch.manual_seed(0)
    return SmallCNN().eval()


class Normed(nn.Module):
    def __init__(self):
        super().__init__()
        self.norm = nn.LayerNorm(8)
        self.fc = nn.Linear(8, 4)

    def forward(self, x):
        return self.fc(self.norm(x))


def layernorm():
    torch.manual_seed(0)
    return Normed().eval()


def _define(name: str, function):
    """A custom op, defined once per process (a second import of this file reuses it)."""
    try:
        op = torch.library.custom_op(f"buildsys_test::{name}", mutates_args=())(function)
        op.register_fake(lambda x, value: torch.empty_like(x))
        return op
    except RuntimeError:
        return getattr(torch.ops.buildsys_test, name).default


def _scale(x: torch.Tensor, value: float) -> torch.Tensor:
    return x * value


def _shift(x: torch.Tensor, value: float) -> torch.Tensor:
    return x + value


scale = _define("scale", _scale)
shift = _define("shift", _shift)


class Custom(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(8, 4)

    def forward(self, x):
        y = scale(self.fc(x), 2.0)
        return shift(y, 0.5)


def custom():
    torch.manual_seed(0)
    return Custom().eval()
