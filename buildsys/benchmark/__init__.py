"""``buildsys bench``: every built artifact timed side by side with the model's references.

``session`` runs in the CLI process (no ML framework: artifact.json, runners' requirements,
storage); ``child`` is the measuring subprocess; ``measure`` the framework-free timing
machinery; ``tables`` renders results. Internal: not part of ``buildsys.__all__``.
"""
