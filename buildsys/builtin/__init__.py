"""The builtin plugins: the core's own implementations of the hooks third parties implement.

Each module here is a plugin, registered by ``buildsys.plugins.load`` from
``buildsys.plugins.DEFAULT_PLUGINS`` under its module's last name (``-p no:terminal`` blocks the
terminal reporter).
"""
