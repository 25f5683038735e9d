"""Check the two fixes for the AOTInductor load crash found by aoti_link_probe.py (issue 22):
(a) link the wrapper against the shared libstdc++ by file name (``-l:libstdc++.so.6``) so g++
does not fall back to the static archive when the unversioned ``libstdc++.so`` dev link is
missing; (b) promote the process's libstdc++ to the global symbol scope (``RTLD_GLOBAL``)
before loading an existing package. ``python3 scripts/device/aoti_fix_probe.py $OUT``."""

from __future__ import annotations

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from aoti_link_probe import COMPILE, LOAD, run_py, sh, so_facts, wrapper_so  # noqa: E402

OUT = Path(sys.argv[1] if len(sys.argv) > 1 else "/tmp/probe_out")
WORK = Path("/tmp/aoti_fix_probe")
FIXED = COMPILE.replace('if variant == "stdcxx":', 'if variant.startswith("fixed"):').replace(
    'custom_op_libs = ["stdc++"]', 'custom_op_libs = [":libstdc++.so.6"]')
CUDA = FIXED.replace("m = M().eval(); x = torch.randn(4, 8)", "m = M().cuda().eval(); x = torch.randn(4, 8, device='cuda')")
PROMOTE = LOAD.replace('print("IMPORTED", flush=True)', 'import ctypes, os\nctypes.CDLL("libstdc++.so.6", mode=os.RTLD_GLOBAL)\nprint("IMPORTED", flush=True)')
LOAD_CUDA = LOAD.replace('out = runner(io["x"])', 'out = runner(io["x"].cuda())').replace("(out - io[\"y\"])", "(out.cpu() - io[\"y\"].cpu())")


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    WORK.mkdir(parents=True, exist_ok=True)
    report = {"gcc_dir": sh("ls -la /usr/lib/gcc/x86_64-linux-gnu/*/ | grep -i stdc"),
              "print_file_name_so": sh("g++ -print-file-name=libstdc++.so"),
              "print_file_name_a": sh("g++ -print-file-name=libstdc++.a")}
    for name, code, load in (("default", COMPILE, None), ("fixed_cpu", FIXED, LOAD), ("fixed_cuda", CUDA, LOAD_CUDA)):
        package = WORK / f"mlp_{name}.pt2"
        compiled = run_py(code, name, str(package), timeout=900)
        entry = {"compile_rc": compiled["rc"], "compile_tail": compiled["stderr"][-800:] if compiled["rc"] else ""}
        if compiled["rc"] == 0:
            entry["so"] = so_facts(wrapper_so(package))
            if load is not None:
                entry["load"] = run_py(load, str(package))
            else:
                entry["load_promoted"] = run_py(PROMOTE, str(package))
        report[name] = entry
    (OUT / "aoti_fix_probe.json").write_text(json.dumps(report, indent=1))
    print(json.dumps({k: v for k, v in report.items() if not isinstance(v, dict)}, indent=1))
    for name in ("default", "fixed_cpu", "fixed_cuda"):
        e = report[name]
        loaded = e.get("load") or e.get("load_promoted") or {}
        print(name, "compile", e["compile_rc"], "needed:", (e.get("so") or {}).get("needed", "").count("libstdc++"),
              "locale syms:", (e.get("so") or {}).get("std_locale_symbols_defined"), "load rc", loaded.get("rc"),
              loaded.get("stdout", "")[-80:].replace("\n", " | "))


if __name__ == "__main__":
    main()
