"""The third-party example, plugins/examples/buildsys_openvino, in buildsys's own test run.

Its tests (the stage contract plus its own) live in its distribution, as a third party's
would; this module collects them from there. The example is installed separately
(``pip install -e plugins/examples/buildsys_openvino``): where it is not, they are skipped,
except in CI (``CI`` set), where that is a failure.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import os
from pathlib import Path

import pytest

EXAMPLE = Path(__file__).resolve().parents[2] / "plugins" / "examples" / "buildsys_openvino"
INSTALL = f"pip install -e {EXAMPLE.relative_to(EXAMPLE.parents[2])}"

try:
    importlib.metadata.version("buildsys-openvino")
except importlib.metadata.PackageNotFoundError:
    if os.environ.get("CI"):
        raise RuntimeError(f"CI must install the third-party example first: {INSTALL}") from None
    pytest.skip(f"the OpenVINO example is not installed ({INSTALL})", allow_module_level=True)

_spec = importlib.util.spec_from_file_location("buildsys_openvino_example_tests",
                                               EXAMPLE / "tests" / "test_openvino_plugin.py")
_tests = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_tests)
# pytest collects the test classes, test functions and fixtures it finds in this namespace
globals().update({name: value for name, value in vars(_tests).items()
                  if name.startswith(("Test", "test_")) or name in ("shared_build", "record")})
