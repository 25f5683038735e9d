"""A plugin whose import fails, as one does when a dependency is missing."""

import buildsys_fixture_dependency_that_is_not_installed  # noqa: F401
