"""The tiny CNN shipped as manifests/models/tiny_cnn.onnx (the example of ``framework: onnx``).

The .onnx is committed (about 60 KB) so that the example needs no Python to build: it stands for
a graph someone handed you. ``python manifests/models/tiny_cnn.py`` writes it again (torch.onnx,
dynamo exporter, opset 18, dynamic batch). ``calibration_batches`` needs only numpy.
"""

from pathlib import Path

HERE = Path(__file__).resolve().parent


def build():
    import torch
    from torch import nn

    torch.manual_seed(0)
    return nn.Sequential(
        nn.Conv2d(3, 16, 3, padding=1), nn.ReLU(), nn.Conv2d(16, 32, 3, stride=2, padding=1), nn.ReLU(),
        nn.Conv2d(32, 32, 3, stride=2, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
        nn.Linear(32, 10)).eval()


def calibration_batches(batch: int = 8, batches: int = 8):
    """Standard-normal images, as the synthesised validation samples, from another seed."""
    import numpy as np

    rng = np.random.default_rng(1234)
    for _ in range(batches):
        yield {"images": rng.standard_normal((batch, 3, 32, 32)).astype(np.float32)}


def main() -> None:
    import torch

    batch = torch.export.Dim("batch", min=1, max=64)
    program = torch.onnx.export(build(), (torch.randn(2, 3, 32, 32),), dynamo=True, opset_version=18,
                                input_names=["images"], output_names=["logits"], dynamic_shapes=({0: batch},))
    program.save(str(HERE / "tiny_cnn.onnx"))


if __name__ == "__main__":
    main()
