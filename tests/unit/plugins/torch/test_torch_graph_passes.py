"""The CUDA runner's graph passes on a tiny exported CNN, on the CPU: BatchNorm folding keeps
the outputs, the conv+ReLU fusion rewrites the right nodes, retargeting drops CPU asserts."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")  # the torch extra is installed in CI: this never hides the feature there

pytestmark = pytest.mark.slow  # exports and runs a CNN (~6 s): not in the quick unit loop

from buildsys_torch.cudagraph import fold_batchnorm, fuse_conv_relu, retarget  # noqa: E402
from torch import nn  # noqa: E402


class Block(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1, self.bn1 = nn.Conv2d(3, 4, 3, padding=1, bias=False), nn.BatchNorm2d(4)
        self.conv2, self.bn2 = nn.Conv2d(4, 3, 1), nn.BatchNorm2d(3)

    def forward(self, x):
        y = torch.relu(self.bn1(self.conv1(x)))
        return torch.relu(self.bn2(self.conv2(y)) + x)


def exported_block():
    torch.manual_seed(0)
    block = Block().eval()
    for bn in (block.bn1, block.bn2):
        bn.running_mean.uniform_(-1, 1)
        bn.running_var.uniform_(0.5, 2)
        nn.init.uniform_(bn.weight, 0.5, 1.5)
    x = torch.randn(2, 3, 8, 8)
    return torch.export.export(block, (x,)).module(), x


def targets(gm) -> list[str]:
    return [str(n.target) for n in gm.graph.nodes if n.op == "call_function"]


def test_batchnorm_folds_into_the_convolutions_with_the_same_outputs():
    gm, x = exported_block()
    with torch.no_grad():
        expected = gm(x)
    assert fold_batchnorm(gm) == 2
    assert not any("batch_norm" in t for t in targets(gm))
    with torch.no_grad():
        torch.testing.assert_close(gm(x), expected, rtol=1e-5, atol=1e-5)


def test_conv_relu_and_conv_add_relu_become_one_cudnn_call_each():
    gm, _ = exported_block()
    fold_batchnorm(gm)
    assert fuse_conv_relu(gm) == 2
    found = targets(gm)
    assert "aten.cudnn_convolution_relu.default" in found and "aten.cudnn_convolution_add_relu.default" in found
    assert not any(t in found for t in ("aten.relu.default", "aten.add.Tensor", "aten.conv2d.default"))


def test_retarget_drops_the_cpu_device_assertions_of_an_exported_program():
    class Mask(nn.Module):
        def forward(self, mask):
            return mask.to(torch.float32) * 2  # export records the input's device (cpu) here

    gm = torch.export.export(Mask(), (torch.tensor([[1, 0]]),)).module()
    asserts = [t for t in targets(gm) if "_assert_tensor_metadata" in t]
    assert asserts, "torch.export records the input device: the case this pass exists for"
    assert retarget(gm, "cuda") == len(asserts)
    assert not any("_assert_tensor_metadata" in t for t in targets(gm))


def test_a_retargeted_program_runs_on_another_device():
    """What the generation step has (first run on a GPU failed on each): a constant lifted into a
    plain attribute (a cache's empty starting tensor), which module.to() leaves behind, and a
    positional device argument (``mask.to(device, dtype)``). The meta device stands in for CUDA."""
    class Step(nn.Module):
        def forward(self, x, mask):
            keep = mask.to(mask.device, torch.bool)
            return torch.cat([torch.tensor([]), torch.where(keep, x, 0.0).flatten()])

    gm = torch.export.export(Step(), (torch.ones(2, 2), torch.tensor([[1, 0], [1, 1]]))).module()
    registered = {id(t) for t in (*gm.parameters(), *gm.buffers())}
    lifted = [(m, n) for m in gm.modules() for n, v in vars(m).items() if isinstance(v, torch.Tensor) and id(v) not in registered]
    assert lifted, "torch.export keeps this constant as a plain attribute: a case this pass exists for"
    assert any(torch.device("cpu") in n.args for n in gm.graph.nodes if n.op == "call_function"), \
        "the positional device argument: the other case"
    gm.to("meta")
    assert all(getattr(m, n).device.type == "cpu" for m, n in lifted), "module.to() leaves plain attributes behind"
    retarget(gm, "meta")
    assert all(getattr(m, n).device.type == "meta" for m, n in lifted)
    out = gm(torch.ones(2, 2, device="meta"), torch.ones(2, 2, dtype=torch.int64, device="meta"))
    assert out.device.type == "meta" and out.shape == (4,)
