"""Which ways of loading an AOTInductor package work on this GPU machine, and where do they crash?

torch 2.11's aoti_load_package segfaulted on the H100 machine. Each attempt runs in its own
process with faulthandler on, printing markers (COMPILED, LOADED, MAXDIFF), so a crash is
recorded with its signal, the last marker reached and the Python stack, instead of ending the probe.
"""

from __future__ import annotations

import json
import subprocess
import sys

MODEL = """
import torch
class M(torch.nn.Module):
    def __init__(s):
        super().__init__(); s.l = torch.nn.Linear(8, 4)
    def forward(s, x): return torch.relu(s.l(x))
torch.manual_seed(0)
m = M().to(DEV).eval()
x = torch.randn(4, 8, device=DEV)
"""

COMPILE = MODEL + """
ep = torch.export.export(m, (x,), dynamic_shapes=({0: torch.export.Dim("b", min=1, max=64)},))
path = torch._inductor.aoti_compile_and_package(ep, package_path=f"/tmp/probe_{DEV}.pt2")
torch.save({"x": x.cpu(), "y": m(x).detach().cpu()}, f"/tmp/probe_io_{DEV}.pt")
import os; print("COMPILED", path, os.path.getsize(path), flush=True)
"""

CHECK = """
print("LOADED", flush=True)
io = torch.load(f"/tmp/probe_io_{DEV}.pt")
out = runner(io["x"].to(DEV))
out = out[0] if isinstance(out, (list, tuple)) else out
print("MAXDIFF", float((out.cpu() - io["y"]).abs().max()), flush=True)
"""

ATTEMPTS = {
    "cpu: compile package": ("cpu", COMPILE),
    "cpu: aoti_load_package + run": ("cpu", "import torch\nrunner = torch._inductor.aoti_load_package(f'/tmp/probe_{DEV}.pt2')" + CHECK),
    "cuda: torch.compile (JIT inductor)": ("cuda", MODEL + "runner = torch.compile(m)\nprint('LOADED')\nprint('MAXDIFF', float((runner(x) - m(x)).abs().max()))"),
    "cuda: compile package": ("cuda", COMPILE),
    "cuda: aoti_load_package, fresh process": ("cuda", "import torch\nrunner = torch._inductor.aoti_load_package(f'/tmp/probe_{DEV}.pt2')" + CHECK),
    "cuda: aoti_load_package, single-threaded": ("cuda", "import torch\nrunner = torch._inductor.aoti_load_package(f'/tmp/probe_{DEV}.pt2', run_single_threaded=True)" + CHECK),
    "cuda: AOTIModelPackageLoader direct": ("cuda", "import torch\nloader = torch._C._aoti.AOTIModelPackageLoader(f'/tmp/probe_{DEV}.pt2', 'model', False, 1, -1)\nrunner = lambda t: loader.run([t])" + CHECK),
    "cuda: load after cuda init": ("cuda", "import torch\ntorch.zeros(1, device='cuda')\nrunner = torch._inductor.aoti_load_package(f'/tmp/probe_{DEV}.pt2')" + CHECK),
    "cuda: legacy aot_compile .so + aot_load": ("cuda", MODEL + "ep = torch.export.export(m, (x,))\nso = torch._inductor.aot_compile(ep.module(), (x,))\nprint('COMPILED', so)\nrunner = torch._export.aot_load(so, 'cuda')\nprint('LOADED')\nprint('MAXDIFF', float((runner(x) - m(x)).abs().max()))"),
}


def attempt(device: str, code: str) -> dict:
    proc = subprocess.run([sys.executable, "-X", "faulthandler", "-c", f"DEV = {device!r}\n" + code],
                          capture_output=True, text=True, timeout=900)
    markers = [line for line in proc.stdout.splitlines() if line.split(" ")[0] in ("COMPILED", "LOADED", "MAXDIFF")]
    stack = [line.strip() for line in proc.stderr.splitlines() if line.strip().startswith(("File", "Fatal", "Current"))]
    return {"returncode": proc.returncode, "markers": markers, "crash_stack": stack[-8:] if proc.returncode else []}


def main() -> None:
    import torch

    print(f"torch {torch.__version__}, {torch.cuda.get_device_name(0)}")
    results = {}
    for name, (device, code) in ATTEMPTS.items():
        r = results[name] = attempt(device, code)
        last = r["markers"][-1] if r["markers"] else "-"
        print(f"{name:<42} rc={r['returncode']:<4} last={last[:60]}")
        for line in r["crash_stack"][-3:]:
            print(f"      {line[:150]}")
    with open(sys.argv[1], "w") if len(sys.argv) > 1 else sys.stdout as out:
        json.dump(results, out, indent=1)


if __name__ == "__main__":
    main()
