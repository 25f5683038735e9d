"""The Ray executor's options: ``--address`` on the command line, or ``[executors.ray]`` in
``buildsys.toml`` beside the manifest (or ``[tool.buildsys.executors.ray]`` in pyproject.toml)."""

from __future__ import annotations

import difflib

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from .errors import RayExecutorError


class RayOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")

    address: str | None = Field(default=None, description="HOST:PORT of the head's GCS, or ray://HOST:PORT; "
                                                          "default: RAY_ADDRESS")
    num_cpus: float = Field(default=1, gt=0, description="CPUs each task asks for")
    namespace: str = Field(default="buildsys", description="Ray namespace of the build's tasks")
    runtime_env: dict | None = Field(default=None, description="Ray runtime_env for the tasks (env_vars, ...)")
    pool: bool = Field(default=True, description="run stages in warm worker processes kept by each Ray worker "
                                                 "(false, or --no-pool: a fresh process per stage)")
    stage_timeout: float | None = Field(default=3600, gt=0, description="seconds a stage that declares no timeout "
                                                                    "may run before its task is cancelled (null: "
                                                                    "no limit; [build] stage_timeout is the local "
                                                                    "executor's)")

    @classmethod
    def parse(cls, options: dict) -> RayOptions:
        """Validate ``options``; one error naming every bad key, with the fix."""
        unknown = [k for k in options if k not in cls.model_fields]
        if unknown:
            close = [difflib.get_close_matches(k, list(cls.model_fields), n=1) for k in unknown]
            guesses = [f"'{k}' (did you mean '{c[0]}'?)" if c else f"'{k}'" for k, c in zip(unknown, close)]
            raise RayExecutorError(f"unknown ray executor option(s): {', '.join(guesses)}",
                                   hint=f"options: {', '.join(cls.model_fields)} ([executors.ray] in buildsys.toml)")
        try:
            return cls.model_validate(options)
        except ValidationError as exc:
            first = exc.errors()[0]
            key = ".".join(str(p) for p in first["loc"])
            raise RayExecutorError(f"ray executor option {key}: {first['msg']}",
                                   hint="fix it in buildsys.toml [executors.ray] or on the command line") from None
