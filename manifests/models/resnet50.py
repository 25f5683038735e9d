"""A ResNet-50-class CNN (bottleneck blocks 3-4-6-3, 25.6 M parameters), random weights.

Written for buildsys's GPU benchmark. The module is fp32; the manifest's targets are lowered
to fp16 by the ``torch.fp16`` stage. Images arrive in fp16 (what a GPU service sends on): the
module casts them to its own dtype, so the fp32 reference takes the same arrays as the fp16
artifacts, which then cast nothing on entry.
"""

import torch
from torch import nn


class Bottleneck(nn.Module):
    expansion = 4

    def __init__(self, inplanes: int, planes: int, stride: int = 1):
        super().__init__()
        width, out = planes, planes * self.expansion
        self.conv1, self.bn1 = nn.Conv2d(inplanes, width, 1, bias=False), nn.BatchNorm2d(width)
        self.conv2, self.bn2 = nn.Conv2d(width, width, 3, stride, 1, bias=False), nn.BatchNorm2d(width)
        self.conv3, self.bn3 = nn.Conv2d(width, out, 1, bias=False), nn.BatchNorm2d(out)
        self.downsample = None
        if stride != 1 or inplanes != out:
            self.downsample = nn.Sequential(nn.Conv2d(inplanes, out, 1, stride, bias=False), nn.BatchNorm2d(out))

    def forward(self, x):
        identity = x if self.downsample is None else self.downsample(x)
        y = torch.relu(self.bn1(self.conv1(x)))
        y = torch.relu(self.bn2(self.conv2(y)))
        return torch.relu(self.bn3(self.conv3(y)) + identity)


class ResNet50(nn.Module):
    def __init__(self, classes: int = 1000, layers=(3, 4, 6, 3)):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, 64, 7, 2, 3, bias=False), nn.BatchNorm2d(64), nn.ReLU(),
                                  nn.MaxPool2d(3, 2, 1))
        stages, inplanes = [], 64
        for i, (planes, blocks) in enumerate(zip((64, 128, 256, 512), layers)):
            for j in range(blocks):
                stages.append(Bottleneck(inplanes, planes, 2 if j == 0 and i > 0 else 1))
                inplanes = planes * Bottleneck.expansion
        self.layers = nn.Sequential(*stages)
        self.fc = nn.Linear(inplanes, classes)

    def forward(self, images):
        x = self.layers(self.stem(images.to(self.fc.weight.dtype)))
        return self.fc(torch.flatten(nn.functional.adaptive_avg_pool2d(x, 1), 1))


def build():
    torch.manual_seed(0)
    model = ResNet50()
    for m in model.modules():  # BN statistics of a trained net, roughly: keeps activations O(1)
        if isinstance(m, nn.BatchNorm2d):
            nn.init.uniform_(m.weight, 0.2, 0.5)
            m.running_var.uniform_(0.5, 2.0)
            m.running_mean.uniform_(-0.1, 0.1)
    return model.eval()


def samples():
    """Validation samples: small batches (fp16 convolutions are slow on a CPU)."""
    g = torch.Generator().manual_seed(1)
    return [(torch.randn(b, 3, 224, 224, generator=g).half(),) for b in (1, 2)]


def calibration_batches(batch: int = 8, batches: int = 4):
    """INT8 calibration data: images from the validation samples' distribution (standard normal),
    another seed, in fp16 as the input is declared."""
    import numpy as np

    rng = np.random.default_rng(1234)
    for _ in range(batches):
        yield {"images": rng.standard_normal((batch, 3, 224, 224)).astype(np.float16)}
