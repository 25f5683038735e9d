"""Test kit for plugin authors: fixtures, a CLI runner, and contract suites.

Installed as a pytest plugin (entry point ``pytest11: buildsys``), so the fixtures
``buildsys_project`` and ``buildsys_cli`` are available in any test suite. Subclass the
contract classes to run buildsys's own checks against your plugin::

    from buildsys.testing import StageContract

    class TestMyStage(StageContract):
        stage = "mything.compile"
        target = "compiled"
        manifest = '''
            schema: 1
            name: demo
            version: 0.1.0
            model: {framework: text, entrypoint: model.txt}
            targets: {compiled: {format: mything.bin}}
        '''
        files = {"model.txt": "hello"}
"""

from .contracts import RegistryContract, StageContract
from .faultproxy import FaultProxy, free_port
from .runner import CliResult, ProjectDir, run_cli

__all__ = ["CliResult", "FaultProxy", "ProjectDir", "RegistryContract", "StageContract", "free_port",
           "run_cli"]
