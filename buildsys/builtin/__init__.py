"""The builtin plugins: the core's own implementations of the hooks third parties implement.

Each module here is a plugin, registered by ``buildsys.plugins.load`` from ``DEFAULT_PLUGINS``
under its module's last name, the name ``-p no:NAME`` blocks (``-p no:terminal`` silences the
progress reporter).
"""

#: The core is made of plugins too: these implement the same hooks third parties use.
DEFAULT_PLUGINS = (
    "buildsys.builtin.local",          # the local executor
    "buildsys.builtin.file_registry",  # the file:// registry
    "buildsys.builtin.nvidia",         # NVIDIA GPU probe (nvidia-ml-py, when installed)
    "buildsys.builtin.validate",       # the validate stage and the reference/validation kinds
    "buildsys.builtin.terminal",       # build progress on stderr
)
