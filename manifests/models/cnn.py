"""The small ResNet-style CNN example (random weights, seeded)."""

import torch
from torch import nn


class Block(nn.Module):
    def __init__(self, channels_in: int, channels: int, stride: int):
        super().__init__()
        self.conv1 = nn.Conv2d(channels_in, channels, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(channels)
        self.conv2 = nn.Conv2d(channels, channels, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(channels)
        self.skip = (nn.Sequential(nn.Conv2d(channels_in, channels, 1, stride, bias=False), nn.BatchNorm2d(channels))
                     if stride != 1 or channels_in != channels else nn.Identity())

    def forward(self, x):
        y = torch.relu(self.bn1(self.conv1(x)))
        return torch.relu(self.bn2(self.conv2(y)) + self.skip(x))


class SmallResNet(nn.Module):
    def __init__(self, classes: int = 10):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, 32, 3, 1, 1, bias=False), nn.BatchNorm2d(32), nn.ReLU())
        self.layers = nn.Sequential(Block(32, 32, 1), Block(32, 64, 2), Block(64, 128, 2), Block(128, 128, 1))
        self.head = nn.Linear(128, classes)

    def forward(self, images):
        return self.head(self.layers(self.stem(images)).mean((2, 3)))


def build():
    torch.manual_seed(0)
    model = SmallResNet()
    with torch.no_grad():  # non-trivial BatchNorm statistics, so folding them is really tested
        for m in model.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.running_mean.uniform_(-0.1, 0.1)
                m.running_var.uniform_(0.5, 1.5)
    return model


def calibration_batches(batch: int = 8, batches: int = 8):
    """Calibration data: images from the same distribution as the synthesised held-out samples
    (standard normal), drawn with a different seed so that none of them is a held-out sample."""
    import numpy as np

    rng = np.random.default_rng(1234)
    for _ in range(batches):
        yield {"images": rng.standard_normal((batch, 3, 32, 32)).astype(np.float32)}
