"""Why does every AOTInductor package crash when loaded on the lent GPU machine (issue 22)?

Run there with the image's torch (no buildsys needed): ``python3 scripts/device/aoti_link_probe.py $OUT``.
It compiles a two-layer MLP package for the CPU (quick; CUDA packages crash the same way) in
link variants, records Inductor's compile command, what each wrapper .so links and exports,
then loads each in its own process (faulthandler on; gdb's backtrace where gdb exists) and
with ``LD_DEBUG=bindings`` to see which library each locale/regex symbol binds to. A minimal
shared object using ``std::regex`` the way the wrapper does (``parse_device_str``), built with
the same compiler and libraries, separates "torch + any .so" from "Inductor's package".
Everything goes to ``$OUT/aoti_link_probe.json`` and ``$OUT/*.txt``.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

OUT = Path(sys.argv[1] if len(sys.argv) > 1 else "/tmp/probe_out")
WORK = Path("/tmp/aoti_link_probe")

COMPILE = r"""
import json, sys, torch
import torch._inductor.cpp_builder as cb
commands = []
original = cb.run_compile_cmd
def logged(cmd_line, cwd):
    commands.append(cmd_line)
    return original(cmd_line, cwd)
cb.run_compile_cmd = logged
variant, path = sys.argv[1], sys.argv[2]
if variant == "stdcxx":
    torch._inductor.config.aot_inductor.custom_op_libs = ["stdc++"]
class M(torch.nn.Module):
    def __init__(s):
        super().__init__(); s.a = torch.nn.Linear(8, 16); s.b = torch.nn.Linear(16, 4)
    def forward(s, x): return s.b(torch.relu(s.a(x)))
torch.manual_seed(0)
m = M().eval(); x = torch.randn(4, 8)
ep = torch.export.export(m, (x,), dynamic_shapes=({0: torch.export.Dim("b", min=1, max=64)},))
torch._inductor.aoti_compile_and_package(ep, package_path=path)
torch.save({"x": x, "y": m(x).detach()}, path + ".io")
print(json.dumps(commands))
"""

LOAD = r"""
import sys, torch
print("IMPORTED", flush=True)
runner = torch._inductor.aoti_load_package(sys.argv[1])
print("LOADED", flush=True)
io = torch.load(sys.argv[1] + ".io")
out = runner(io["x"]); out = out[0] if isinstance(out, (list, tuple)) else out
print("MAXDIFF", float((out - io["y"]).abs().max()), flush=True)
"""

REGEX_SO = r"""
#include <regex>
#include <string>
extern "C" int parse_like_aoti(const char* text) {
    static const std::regex pattern("(cuda|cpu|xpu|mps)(:([0-9]+))?");
    std::cmatch match;
    return std::regex_match(text, match, pattern) ? 1 : 0;
}
"""

REGEX_LOAD = r"""
import ctypes, sys
if sys.argv[2] == "torch":
    import torch
lib = ctypes.CDLL(sys.argv[1])
print("MATCH", lib.parse_like_aoti(b"cuda:0"), flush=True)
"""


def sh(cmd: str, **kw) -> str:
    proc = subprocess.run(cmd, shell=True, capture_output=True, text=True, **kw)
    return (proc.stdout + proc.stderr).strip()


def run_py(code: str, *args: str, env: dict | None = None, timeout: int = 600) -> dict:
    proc = subprocess.run([sys.executable, "-X", "faulthandler", "-c", code, *args], capture_output=True,
                          text=True, timeout=timeout, env=dict(os.environ, **(env or {})))
    return {"rc": proc.returncode, "stdout": proc.stdout[-200000:], "stderr": proc.stderr[-4000:]}


def wrapper_so(package: Path) -> Path:
    target = WORK / (package.stem + "_unzipped")
    shutil.rmtree(target, ignore_errors=True)
    with zipfile.ZipFile(package) as z:
        z.extractall(target)
    return next(p for p in target.rglob("*.so"))


def so_facts(so: Path) -> dict:
    return {
        "needed": sh(f"readelf -d {so} | grep NEEDED"),
        "std_regex_symbols_defined": sh(f"nm -C --defined-only {so} | grep -c 'std::.*regex' || true"),
        "std_locale_symbols_defined": sh(f"nm -C --defined-only {so} | grep -c 'std::locale\\|use_facet\\|has_facet' || true"),
        "undefined_locale_symbols": sh(f"nm -C -u {so} | grep 'locale\\|facet\\|collate\\|ctype' | head -30"),
        "gnu_unique": sh(f"readelf -Ws {so} | grep -c UNIQUE || true"),
    }


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    shutil.rmtree(WORK, ignore_errors=True)
    WORK.mkdir(parents=True)
    import torch

    torch_lib = Path(torch.__file__).parent / "lib"
    report: dict = {"torch": torch.__version__, "python": sys.version.split()[0],
                    "gxx": sh("g++ --version | head -1"), "ldd": sh("ldd --version | head -1"),
                    "libstdcxx": sh("ldconfig -p | grep 'libstdc++'"),
                    "libstdcxx_newest_glibcxx": sh("strings $(ldconfig -p | grep 'libstdc++.so.6 ' | head -1 | awk '{print $NF}') | grep '^GLIBCXX_3' | sort -V | tail -2"),
                    "torch_built_with": torch.__config__.show()[:1500],
                    "libtorch_cpu_exports_std_locale": sh(f"nm -DC --defined-only {torch_lib}/libtorch_cpu.so | grep -c 'std::locale\\|std::__cxx11::collate\\|std::ctype\\|regex' || true"),
                    "libtorch_cpu_needed": sh(f"readelf -d {torch_lib}/libtorch_cpu.so | grep NEEDED"),
                    "variants": {}}
    for variant in ("default", "stdcxx"):
        package = WORK / f"mlp_{variant}.pt2"
        compiled = run_py(COMPILE, variant, str(package), timeout=900)
        entry: dict = {"compile_rc": compiled["rc"]}
        try:
            entry["compile_commands"] = json.loads(compiled["stdout"].strip().splitlines()[-1])
        except (ValueError, IndexError):
            entry["compile_output"] = compiled["stdout"][-1500:] + compiled["stderr"][-2500:]
        if compiled["rc"] == 0:
            so = wrapper_so(package)
            entry["so"] = so_facts(so)
            entry["load"] = run_py(LOAD, str(package))
            system = sh("ldconfig -p | grep 'libstdc++.so.6 ' | head -1 | awk '{print $NF}'")
            entry["load_ld_preload_libstdcxx"] = run_py(LOAD, str(package), env={"LD_PRELOAD": system})
            if variant == "default":
                run_py(LOAD, str(package), env={"LD_DEBUG": "bindings", "LD_DEBUG_OUTPUT": str(WORK / "bind")})
                lines = []
                for f in WORK.glob("bind*"):
                    lines += [ln for ln in f.read_text(errors="replace").splitlines()
                              if so.name in ln and any(k in ln for k in ("locale", "facet", "regex", "collate", "ctype"))]
                (OUT / "aoti_bindings.txt").write_text("\n".join(lines[:4000]))
                entry["bindings_lines"] = len(lines)
                if shutil.which("gdb"):
                    gdb = sh(f"gdb -q -batch -ex run -ex bt -ex 'info sharedlibrary' --args {sys.executable} -c '{LOAD}' {package}",
                             timeout=600)
                    (OUT / "aoti_gdb.txt").write_text(gdb[-60000:])
        report["variants"][variant] = entry
    # the minimal std::regex .so, built like the wrapper (g++, -shared -fPIC, torch's libs), loaded after torch
    src = WORK / "regex_like_aoti.cpp"
    src.write_text(REGEX_SO)
    minimal = {}
    for name, flags in {"plain": "", "with_libtorch": f"-L{torch_lib} -ltorch -ltorch_cpu -Wl,-rpath,{torch_lib}",
                        "with_libtorch_nostdlib": f"-L{torch_lib} -ltorch -ltorch_cpu -Wl,-rpath,{torch_lib} -nostdlib"}.items():
        so = WORK / f"regex_{name}.so"
        built = sh(f"g++ -std=c++17 -O2 -shared -fPIC {src} -o {so} {flags}")
        minimal[name] = {"build": built[-800:], "needed": sh(f"readelf -d {so} | grep NEEDED") if so.exists() else "",
                         "load_alone": run_py(REGEX_LOAD, str(so), "alone") if so.exists() else None,
                         "load_after_torch": run_py(REGEX_LOAD, str(so), "torch") if so.exists() else None}
    report["minimal_regex_so"] = minimal
    (OUT / "aoti_link_probe.json").write_text(json.dumps(report, indent=1))
    print(json.dumps({v: {"compile_rc": e.get("compile_rc"), "load_rc": (e.get("load") or {}).get("rc"),
                          "preload_rc": (e.get("load_ld_preload_libstdcxx") or {}).get("rc")}
                      for v, e in report["variants"].items()}, indent=1))
    print(json.dumps({k: {"after_torch": (v.get("load_after_torch") or {}).get("rc")} for k, v in minimal.items()}))


if __name__ == "__main__":
    main()
