"""The page's style and its one script, inlined: the page is one file that needs no network."""

STYLE = """
body{font-family:system-ui,sans-serif;margin:2em;color:#222;max-width:1400px}
h2{margin-top:2em;border-bottom:1px solid #ddd}
table{border-collapse:collapse;margin:.6em 0 1.2em}
td,th{border:1px solid #ccc;padding:3px 7px;text-align:right;white-space:nowrap}
td:first-child,th:first-child,td.t,th.t{text-align:left}
th{background:#f4f4f4}
table.sortable th{cursor:pointer;user-select:none}
table.sortable th:after{content:" \\2195";color:#aaa;font-size:.8em}
table.sortable th[aria-sort=ascending]:after{content:" \\25B2";color:#222}
table.sortable th[aria-sort=descending]:after{content:" \\25BC";color:#222}
tr.pick td{background:#e6f6e6}
.ok{color:#176117}
.fail{color:#a00;background:#fdeaea;font-weight:bold}
.neutral{color:#666;background:#f3f3f3}
.warn{background:#fff4d6;border-left:4px solid #e0a000;padding:.5em .8em}
.note{color:#555}
code,.digest{font-family:ui-monospace,monospace;font-size:.85em}
.charts{display:flex;flex-wrap:wrap;gap:12px;align-items:flex-start}
svg.chart{border:1px solid #ddd}
.legend{margin:.3em 0;font-size:.9em}
.lg{margin-right:1.2em;white-space:nowrap}
details{margin:.5em 0}
"""

#: Click a header to sort its table by that column (again to reverse). A cell's ``data-sort``
#: is its value for sorting; numbers sort before text either way.
SCRIPT = """
document.querySelectorAll("table.sortable").forEach(function (table) {
  var heads = table.tHead.rows[0].cells;
  Array.prototype.forEach.call(heads, function (th, col) {
    th.addEventListener("click", function () {
      var up = th.getAttribute("aria-sort") !== "ascending";
      Array.prototype.forEach.call(heads, function (h) { h.removeAttribute("aria-sort"); });
      th.setAttribute("aria-sort", up ? "ascending" : "descending");
      var body = table.tBodies[0], rows = Array.prototype.slice.call(body.rows);
      function key(row) {
        var cell = row.cells[col], raw = cell.getAttribute("data-sort");
        var text = raw === null ? cell.textContent.trim() : raw, n = parseFloat(text);
        return isNaN(n) || !/^[-+]?(\\d|\\.\\d|Infinity)/.test(text) ? [1, text.toLowerCase()] : [0, n];
      }
      rows.sort(function (a, b) {
        var x = key(a), y = key(b);
        if (x[0] !== y[0]) return x[0] - y[0];  // text ("-": not measured) after numbers, both ways
        var c = x[1] < y[1] ? -1 : x[1] > y[1] ? 1 : 0;
        return up ? c : -c;
      });
      rows.forEach(function (row) { body.appendChild(row); });
    });
  });
});
"""
