"""Small plugins the tests load with ``-p fixture_plugins.NAME`` (tests/ is put on PYTHONPATH)."""
