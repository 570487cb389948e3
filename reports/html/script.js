/* zcrx-conform HTML report: filters and details rows (inlined, no external code). */
(function () {
  "use strict";
  var table = document.getElementById("cases-table");
  if (!table) { return; }
  var rows = Array.prototype.slice.call(table.querySelectorAll("tr.case"));
  var statusBoxes = Array.prototype.slice.call(document.querySelectorAll("input[data-filter-status]"));
  var areaSel = document.getElementById("filter-area");
  var differBox = document.getElementById("filter-differ");
  var text = document.getElementById("filter-text");
  var count = document.getElementById("filter-count");

  function detailOf(row) {
    var next = row.nextElementSibling;
    return next && next.classList.contains("detail") ? next : null;
  }

  function apply() {
    var wanted = {};
    statusBoxes.forEach(function (b) { wanted[b.getAttribute("data-filter-status")] = b.checked; });
    var area = areaSel ? areaSel.value : "";
    var onlyDiffer = differBox ? differBox.checked : false;
    var needle = text ? text.value.trim().toLowerCase() : "";
    var shown = 0;
    rows.forEach(function (row) {
      var statuses = (row.getAttribute("data-status") || "").split(" ");
      var ok = statuses.some(function (s) { return wanted[s]; });
      if (ok && area && row.getAttribute("data-area") !== area) { ok = false; }
      if (ok && onlyDiffer && !row.classList.contains("differ")) { ok = false; }
      if (ok && needle && (row.getAttribute("data-id") || "").toLowerCase().indexOf(needle) < 0) { ok = false; }
      row.classList.toggle("hidden", !ok);
      var d = detailOf(row);
      if (d && !ok) { d.classList.add("hidden"); }
      if (ok) { shown += 1; }
    });
    if (count) { count.textContent = shown + " of " + rows.length + " cases shown"; }
  }

  rows.forEach(function (row) {
    row.addEventListener("click", function () {
      var d = detailOf(row);
      if (d) { d.classList.toggle("hidden"); }
    });
  });
  statusBoxes.forEach(function (b) { b.addEventListener("change", apply); });
  [areaSel, differBox].forEach(function (e) { if (e) { e.addEventListener("change", apply); } });
  if (text) { text.addEventListener("input", apply); }
  var all = document.getElementById("filter-expand");
  if (all) {
    all.addEventListener("click", function () {
      var open = all.getAttribute("data-open") !== "1";
      all.setAttribute("data-open", open ? "1" : "0");
      all.textContent = open ? "collapse all" : "expand all";
      rows.forEach(function (row) {
        var d = detailOf(row);
        if (d) { d.classList.toggle("hidden", !open || row.classList.contains("hidden")); }
      });
    });
  }
  apply();
}());
