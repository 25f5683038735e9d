"""The worker hand-off records: one writer, one reader, a version; progress lines; results of
workers that died."""

from __future__ import annotations

import json
import signal

import pytest

from buildsys import FileRecord, JobInput, JobResult, JobSource, JobSpec, collect_result, parse_progress
from buildsys.jobs import JOB_VERSION, JobFormatError, progress_line


def spec(tmp_path) -> JobSpec:
    files = (FileRecord("model.onnx", "a" * 64, 10), FileRecord("sub/data.bin", "b" * 64, 3))
    inputs = (JobInput("torch.module", "fp32", "any"),
              JobInput("onnx", "fp32", "any", str(tmp_path / "in0"), files, {"primary": "model.onnx"}))
    source = JobSource({"framework": "text", "entrypoint": "m.txt"}, str(tmp_path), {"name": "n", "version": "1"})
    return JobSpec(node="onnx.ort#1234", stage="onnx.ort", options={"level": "basic"}, key="k" * 64,
                   targets=("a", "b"), hardware="any", precision="fp32", out_dir=str(tmp_path / "out"),
                   inputs=inputs, source=source, plugins={"allow": None, "block": [], "extra": []},
                   persistent=str(tmp_path / "persistent"))


def test_job_round_trips_through_its_file(tmp_path):
    job = spec(tmp_path)
    job.write(tmp_path / "job.json")
    again = JobSpec.read(tmp_path / "job.json")
    assert again == job and again.inputs[1].meta == {"primary": "model.onnx"}
    assert json.loads((tmp_path / "job.json").read_text())["version"] == JOB_VERSION


def test_a_job_of_another_version_or_damaged_is_refused_by_name(tmp_path):
    data = spec(tmp_path).to_json()
    (tmp_path / "job.json").write_text(json.dumps(dict(data, version=JOB_VERSION + 1)))
    with pytest.raises(JobFormatError, match=f"version {JOB_VERSION + 1}.*reads version {JOB_VERSION}"):
        JobSpec.read(tmp_path / "job.json")
    del data["stage"]
    (tmp_path / "job.json").write_text(json.dumps(data))
    with pytest.raises(JobFormatError, match="KeyError: 'stage'"):
        JobSpec.read(tmp_path / "job.json")


def test_an_input_becomes_the_artifact_the_stage_receives(tmp_path):
    source, stored = spec(tmp_path).inputs
    assert source.is_source and source.artifact().directory is None and source.artifact().files == {}
    artifact = stored.artifact()
    assert artifact.files == {"model.onnx": tmp_path / "in0" / "model.onnx",
                              "sub/data.bin": tmp_path / "in0" / "sub" / "data.bin"}
    assert artifact.primary == tmp_path / "in0" / "model.onnx"


def test_results_round_trip_and_a_dead_worker_says_how_it_died(tmp_path):
    job_file = tmp_path / "job.json"
    assert collect_result(job_file, -signal.SIGSEGV).error == "worker process died with SIGSEGV (the backend crashed)"
    assert "exited with status 3 and no result" in collect_result(job_file, 3).error
    assert "exited with status 0 and no result" in collect_result(job_file, 0).error
    JobResult(ok=True, meta={"primary": "x"}, seconds=1.5, built_on={"hostname": "h"}).write(tmp_path / "result.json")
    result = collect_result(job_file, 0)
    assert result.ok and result.meta == {"primary": "x"} and result.built_on == {"hostname": "h"}
    assert not (tmp_path / "result.json.tmp").exists()


@pytest.mark.parametrize("line, parsed", [
    ("buildsys-progress 3 10 exporting the graph", (3.0, 10.0, "exporting the graph")),
    ("buildsys-progress 1 2", (1.0, 2.0, "")),
    ("buildsys-progress x 2 words", None),
    ("buildsys-progress 1", None),
    ("an ordinary log line", None),
])
def test_progress_lines_have_one_parser(line, parsed):
    assert parse_progress(line) == parsed


def test_a_progress_message_is_one_line():
    line = progress_line(1, 4, "first\nsecond  third")
    assert "\n" not in line and parse_progress(line) == (1.0, 4.0, "first second third")
