"""The report page's table-sorting script, run by Node.js on a stand-in for the DOM (skipped
where Node.js is not installed; no browser is needed)."""

from __future__ import annotations

import json
import shutil
import subprocess

import pytest

from buildsys.report.assets import SCRIPT

#: Just enough DOM for the script: one table, its header cells, body rows that move on append.
FAKE_DOM = """
function cell(text, sort) {
  return {textContent: text, getAttribute: function (n) { return n === "data-sort" && sort !== undefined ? sort : null; }};
}
function th() {
  var attrs = {}, listeners = [];
  return {setAttribute: function (k, v) { attrs[k] = v; }, getAttribute: function (k) { return k in attrs ? attrs[k] : null; },
          removeAttribute: function (k) { delete attrs[k]; }, addEventListener: function (e, f) { listeners.push(f); },
          click: function () { listeners.forEach(function (f) { f(); }); }};
}
var heads = [th(), th()];
var body = {rows: ROWS.map(function (r) { return {name: r[0], cells: [cell(r[0]), cell(r[1], r[2])]}; }),
            appendChild: function (r) { this.rows.splice(this.rows.indexOf(r), 1); this.rows.push(r); }};
var document = {querySelectorAll: function () { return [{tHead: {rows: [{cells: heads}]}, tBodies: [body]}]; }};
"""

CLICKS = """
var seen = [];
CLICKS.forEach(function (i) { heads[i].click(); seen.push(body.rows.map(function (r) { return r.name; }).join(" ")); });
console.log(JSON.stringify(seen));
"""


def sorted_after(rows: list, clicks: list[int]) -> list[str]:
    node = shutil.which("node")
    if node is None:
        pytest.skip("Node.js is not installed")
    program = (f"var ROWS = {json.dumps(rows)}; var CLICKS = {json.dumps(clicks)};" + FAKE_DOM + SCRIPT + CLICKS)
    out = subprocess.run([node, "-e", program], capture_output=True, text=True, check=True, timeout=60)
    return json.loads(out.stdout)


def test_a_header_click_sorts_by_the_cells_sort_keys_and_a_second_reverses():
    rows = [["b", "10.000 (x)", "10"], ["a", "9.500", "9.5"], ["none", "-", ""], ["c", "inf", "Infinity"],
            ["d", "1e-3", "0.001"]]
    by_value, reversed_, by_name = sorted_after(rows, [1, 1, 0])
    assert by_value == "d a b c none"        # as numbers (10 after 9.5), text last
    assert reversed_ == "c b a d none"       # reversed, text still last
    assert by_name == "a b c d none"         # a text column sorts as text
