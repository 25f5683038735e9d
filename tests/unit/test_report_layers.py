"""The report page's layer-wise section escapes what the exporter and the model author named."""

from __future__ import annotations

from buildsys.report.layers_view import layers_section

HOSTILE = "<img src=x onerror=alert(1)>"


def row(node: str, module: str | None, added, cosine: float, nonfinite: bool = False) -> dict:
    return {"node": node, "op_type": "MatMul", "module": module, "source": 'models/m.py:7 in forward: x = "<b>"',
            "added": added, "error": added, "max_abs": 3.0, "cosine": cosine, "nonfinite": nonfinite}


def test_names_are_escaped_and_rows_ranked():
    report = {"nodes": [row(HOSTILE, "enc.<script>", 0.9, 0.5), row("node_b", None, 0.1, 0.99)]}
    page = "".join(layers_section({"int8": report}, top=5))
    assert HOSTILE not in page and "<script>" not in page and "<b>" not in page
    assert "&lt;img src=x onerror=alert(1)&gt;" in page and "enc.&lt;script&gt;" in page
    assert page.index("node_b") > page.index("&lt;img")  # rank order kept
    assert 'title="models/m.py:7 in forward: x = &quot;&lt;b&gt;&quot;"' in page


def test_an_overflow_row_sorts_as_infinite_and_a_missing_report_says_why():
    page = "".join(layers_section({"fp16": {"nodes": [row("n", "amplify", "inf", 0.0, True)]},
                                   "int8": "not in the cache: buildsys build -t int8"}, top=1))
    assert 'data-sort="Infinity"' in page and "<tr class=fail>" in page
    assert "not in the cache: buildsys build -t int8" in page


def test_no_reduced_precision_target_adds_no_section():
    assert layers_section({}, top=5) == []
