"""Run a ``torch.exported`` program on CUDA by replaying captured CUDA graphs.

A forward of a small model at batch 1 is bound by kernel launches, not by the GPU: eager
ResNet-50 launches ~170 kernels from Python. This runner loads the saved ExportedProgram (no
compiler, no JIT: the same ATen kernels eager runs), then at load time

- folds eval-mode BatchNorm into the preceding convolution's weights (one kernel less each),
- fuses convolution + bias (+ residual add) + ReLU into one cuDNN call (``fuse_conv_relu``),
- puts 4-d activations in channels_last, the layout cuDNN's tensor-core kernels use (no
  NCHW<->NHWC transposes around every convolution),

and on the first call with a new input signature (shapes and dtypes: a static-shape bucket)
captures one CUDA graph of the forward into static buffers; later calls with that signature
copy the inputs in and replay the graph: one launch per forward. Up to ``MAX_GRAPHS``
signatures are kept (least recently used dropped).
"""

from __future__ import annotations

import os
from collections import OrderedDict

from .flat import flatten
from .tensors import to_numpy

MAX_GRAPHS = 8


def fold_batchnorm(gm) -> int:
    """Fold ``aten.batch_norm`` (eval) into the ``aten.conv2d`` feeding it; return how many."""
    import torch

    folded = 0
    for bn in list(gm.graph.nodes):
        if bn.op != "call_function" or bn.target != torch.ops.aten.batch_norm.default:
            continue
        conv, weight, bias, mean, var, training, _, eps = bn.args[:8]
        if (training or getattr(conv, "target", None) != torch.ops.aten.conv2d.default or len(conv.users) != 1
                or not all(getattr(n, "op", None) == "get_attr" for n in (conv.args[1], weight, bias, mean, var))):
            continue
        fetch = lambda node: gm.get_parameter(node.target) if node.target in dict(gm.named_parameters()) \
            else gm.get_buffer(node.target)  # noqa: E731
        w = fetch(conv.args[1]).detach()
        b = fetch(conv.args[2]).detach() if len(conv.args) > 2 and conv.args[2] is not None else torch.zeros_like(fetch(mean))
        scale = fetch(weight).detach() / torch.sqrt(fetch(var).detach().float() + eps).to(w.dtype)
        new_w = w * scale.reshape(-1, 1, 1, 1)
        new_b = (b - fetch(mean).detach()) * scale + fetch(bias).detach()
        names = (f"_bsfold_w{folded}", f"_bsfold_b{folded}")
        gm.register_buffer(names[0], new_w.contiguous())
        gm.register_buffer(names[1], new_b.contiguous())
        with gm.graph.inserting_before(conv):
            w_node, b_node = gm.graph.get_attr(names[0]), gm.graph.get_attr(names[1])
        args = list(conv.args) + [None] * (3 - len(conv.args))
        args[1], args[2] = w_node, b_node
        conv.args = tuple(args)
        bn.replace_all_uses_with(conv)
        gm.graph.erase_node(bn)
        folded += 1
    if folded:
        gm.graph.eliminate_dead_code()
        gm.recompile()
    return folded


def _conv_args(conv) -> list:
    """conv2d's (input, weight, bias, stride, padding, dilation, groups) with defaults filled."""
    defaults = [None, None, None, [1, 1], [0, 0], [1, 1], 1]
    return list(conv.args) + defaults[len(conv.args):]


def fuse_conv_relu(gm) -> int:
    """Rewrite ``relu(conv2d(x))`` and ``relu(conv2d(x) + z)`` into cuDNN's fused
    ``cudnn_convolution_relu`` / ``cudnn_convolution_add_relu`` (one call instead of 2-3
    kernels). CUDA only; on by default (``BUILDSYS_TORCH_CUDNN_FUSION=0`` turns it off): on the
    H100 it took fp16 ResNet-50 at batch 1 from 175 to 61 kernels and 0.81 to 0.58 ms with the
    same outputs (bench/results/bench_h100_resnet50_cudnnfused.md)."""
    import torch

    aten, fused = torch.ops.aten, 0
    for relu in list(gm.graph.nodes):
        if relu.op != "call_function" or relu.target != aten.relu.default:
            continue
        src = relu.args[0]
        add = None
        if getattr(src, "target", None) == aten.add.Tensor and len(src.users) == 1 and len(src.args) == 2:
            add = src
            src = next((a for a in add.args if getattr(a, "target", None) == aten.conv2d.default
                        and len(a.users) == 1), None)
        if getattr(src, "target", None) != aten.conv2d.default or len(src.users) != 1 or isinstance(_conv_args(src)[4], str):
            continue
        x, w, b, stride, padding, dilation, groups = _conv_args(src)
        with gm.graph.inserting_before(relu):
            if add is None:
                node = gm.graph.call_function(aten.cudnn_convolution_relu.default,
                                              (x, w, b, stride, padding, dilation, groups))
            else:
                z = add.args[1] if add.args[0] is src else add.args[0]
                node = gm.graph.call_function(aten.cudnn_convolution_add_relu.default,
                                              (x, w, z, 1, b, stride, padding, dilation, groups))
        relu.replace_all_uses_with(node)
        for dead in (relu, add, src):
            if dead is not None:
                gm.graph.erase_node(dead)
        fused += 1
    if fused:
        gm.recompile()
    return fused


def retarget(gm, device: str) -> int:
    """Make a program exported on the CPU runnable on ``device``: drop the device assertions
    torch.export records for inputs (``aten._assert_tensor_metadata(device=cpu)``), point every
    operator argument that names the CPU at ``device`` (factories' ``device=``, ``aten.to.device``'s
    positional one), and move the constants the program lifted into plain attributes
    (``lifted_tensor_N``: e.g. a KV cache's empty starting tensor), which ``module.to(device)``
    leaves behind as it moves only parameters and buffers. Returns the number of nodes and
    constants changed."""
    import torch
    from torch.utils._pytree import tree_map

    target, cpu = torch.device(device), torch.device("cpu")
    registered = {id(t) for t in (*gm.parameters(), *gm.buffers())}
    changed = 0
    for module in gm.modules():
        for name, value in list(vars(module).items()):
            if isinstance(value, torch.Tensor) and id(value) not in registered and value.device != target:
                setattr(module, name, value.to(device))
                changed += 1

    def moved(value):
        return target if isinstance(value, torch.device) and value == cpu else value

    for module in [m for m in gm.modules() if isinstance(m, torch.fx.GraphModule)]:
        edited = False
        for node in list(module.graph.nodes):
            if node.op != "call_function":
                continue
            if node.target == torch.ops.aten._assert_tensor_metadata.default and not node.users:
                module.graph.erase_node(node)
            else:
                args, kwargs = tree_map(moved, node.args), tree_map(moved, dict(node.kwargs))
                if args == node.args and kwargs == node.kwargs:
                    continue
                node.args, node.kwargs = args, kwargs
            edited = True
            changed += 1
        if edited:
            module.recompile()
    return changed


def capture(step, warmup: int = 3, pool=None):
    """``(graph, what step() returned)``: ``step`` (a function of static CUDA tensors) run
    ``warmup`` times on a side stream, then captured once as a CUDA graph; ``graph.replay()``
    runs it again on whatever the tensors it read hold then. A ``step`` that updates its own
    tensors in place has them updated by the warm-up too: the caller restores them. ``pool``
    (``torch.cuda.graph_pool_handle()``): a memory pool shared with other graphs, safe when they
    never run at once and none reads what another left in the pool."""
    import torch

    stream = torch.cuda.Stream()
    stream.wait_stream(torch.cuda.current_stream())
    with torch.no_grad(), torch.cuda.stream(stream):
        for _ in range(warmup):  # cuDNN/cuBLAS pick algorithms and allocate workspaces outside capture
            step()
    torch.cuda.current_stream().wait_stream(stream)
    graph = torch.cuda.CUDAGraph()
    with torch.no_grad(), torch.cuda.graph(graph, pool=pool):
        outputs = step()
    return graph, outputs


class GraphedProgram:
    """numpy in / numpy out; one captured CUDA graph per input signature."""

    def __init__(self, module, channels_last: bool):
        self.module = module
        self.channels_last = channels_last
        self.graphs: OrderedDict = OrderedDict()

    def _static(self, arrays):
        import torch

        from .tensors import to_tensors

        tensors = to_tensors(arrays, "cuda")
        if self.channels_last:
            tensors = [t.contiguous(memory_format=torch.channels_last) if t.dim() == 4 else t for t in tensors]
        return tensors

    def capture(self, arrays):
        import torch

        inputs = self._static(arrays)
        graph, outputs = capture(lambda: flatten(self.module(*inputs)))
        # page-locked staging buffers: the host<->device copies go by DMA, asynchronously
        staged_in = [torch.empty(t.shape, dtype=t.dtype, pin_memory=True) for t in inputs]
        staged_out = [torch.empty(t.shape, dtype=t.dtype, pin_memory=True) if t.dtype != torch.bfloat16 else None
                      for t in outputs]
        return graph, inputs, outputs, staged_in, staged_out

    def __call__(self, arrays):
        import torch

        key = tuple((a.shape, a.dtype.str) for a in arrays)
        entry = self.graphs.pop(key, None) or self.capture(arrays)
        self.graphs[key] = entry
        while len(self.graphs) > MAX_GRAPHS:
            self.graphs.popitem(last=False)
        graph, inputs, outputs, staged_in, staged_out = entry
        for static, staged, array in zip(inputs, staged_in, arrays):
            staged.numpy()[...] = array
            static.copy_(staged, non_blocking=True)
        graph.replay()
        for host, out in zip(staged_out, outputs):
            if host is not None:
                host.copy_(out, non_blocking=True)
        torch.cuda.current_stream().synchronize()
        return [host.numpy().copy() if host is not None else to_numpy(out) for host, out in zip(staged_out, outputs)]


def load_graphed(program_path: str):
    """The CUDA-graph runner for a saved ExportedProgram (see the module docstring)."""
    import torch

    torch.backends.cudnn.benchmark = True
    gm = torch.export.load(program_path).module()
    fold_batchnorm(gm)
    retarget(gm, "cuda")
    if os.environ.get("BUILDSYS_TORCH_CUDNN_FUSION", "1") != "0":
        fuse_conv_relu(gm)
    gm = gm.to("cuda")
    convolutional = any(n.op == "call_function" and n.target == torch.ops.aten.conv2d.default for n in gm.graph.nodes)
    if convolutional:
        gm = gm.to(memory_format=torch.channels_last)
    return GraphedProgram(gm, channels_last=convolutional)
