// Draws the figures served by a charts JSON view (runs/charts.py) with plotly.js.
// window.StudioCharts.load(container[, extraQuery]) fetches container.dataset.url and (re)draws every panel.
//
// Controls (a #chart-controls form on the page, optional): smoothing (exponential moving average of the
// step curves, as TensorBoard's slider), log-scale y, x-axis by step or by wall-clock minutes (from each
// trace's customdata). Each panel gets a PNG button (plotly's own toImage) and a CSV link (the server's
// charts.csv view, whose cells are made spreadsheet-safe). Clicking a run in a legend hides or shows it.
// Single-value metrics come as "scalars" and go in a table, not in charts.
(function () {
  "use strict";
  const config = { responsive: true, displaylogo: false, modeBarButtonsToRemove: ["toImage"] };
  const view = { smooth: 0, log: false, x: "step" };
  let last = null;

  function panelBox(parent, panel, csvUrl) {
    let box = document.getElementById("box-" + panel.id);
    if (!box) {
      box = document.createElement("div");
      box.className = "panel-box";
      box.id = "box-" + panel.id;
      const tools = document.createElement("div");
      tools.className = "panel-tools";
      const png = document.createElement("button");
      png.type = "button";
      png.className = "link";
      png.textContent = "PNG";
      png.dataset.role = "png";
      png.title = "Download this chart as a PNG image";
      const csv = document.createElement("a");
      csv.textContent = "CSV";
      csv.dataset.role = "csv";
      csv.title = "Download the numbers behind this chart";
      csv.setAttribute("download", "");
      tools.append(png, csv);
      const div = document.createElement("div");
      div.className = "chart";
      div.id = "chart-" + panel.id;
      div.dataset.panel = panel.id;
      png.addEventListener("click", function () {
        Plotly.downloadImage(div, { format: "png", filename: "chart-" + panel.id, width: 900, height: 450 });
      });
      box.append(tools, div);
      parent.append(box);
    }
    if (box.parentElement !== parent) parent.append(box);
    box.querySelector('[data-role="csv"]').href = csvUrl + "&panel=" + encodeURIComponent(panel.id);
    return box.querySelector(".chart");
  }

  // Long tick labels (principle names) and axis titles get the room they need instead of being clipped.
  function withAutomargins(layout) {
    const out = Object.assign({}, layout);
    ["xaxis", "yaxis"].forEach(function (axis) { out[axis] = Object.assign({ automargin: true }, layout[axis]); });
    return out;
  }

  // Exponential moving average with TensorBoard's debiasing: weight 0 leaves the curve as it is.
  function ema(values, weight) {
    if (!weight) return values;
    let acc = 0, n = 0;
    return values.map(function (v) {
      if (v === null || v === undefined) return v;
      n += 1;
      acc = acc * weight + (1 - weight) * v;
      return acc / (1 - Math.pow(weight, n));
    });
  }

  // The figure as the controls ask: smoothed, against minutes, on a log axis (step panels only).
  function viewed(panel) {
    const layout = withAutomargins(panel.figure.layout);
    if (panel.x !== "step") return { data: panel.figure.data, layout: layout };
    const byTime = view.x === "time";
    const data = panel.figure.data.map(function (t) {
      const out = Object.assign({}, t);
      if (byTime && t.customdata) out.x = t.customdata;
      if (t.type === "scatter") out.y = ema(t.y, view.smooth);
      return out;
    });
    layout.xaxis = Object.assign({}, layout.xaxis, { title: { text: byTime ? "minutes since the run's first metric" : "step" } });
    layout.yaxis = Object.assign({}, layout.yaxis, { type: view.log ? "log" : "linear" });
    return { data: data, layout: layout };
  }

  function csvBase(container, data) {
    const ids = data.runs.map(function (r) { return r.id; }).join(",");
    return (container.dataset.csvUrl || "") + "?runs=" + ids;
  }

  function cell(row, text, cls) {
    const td = row.insertCell();
    td.textContent = text;
    if (cls) td.className = cls;
    return td;
  }

  // Single-value metrics: one row per (stage, metric), one column per run.
  function drawScalars(data, csvUrl) {
    const box = document.getElementById("scalars");
    if (!box) return;
    box.replaceChildren();
    const scalars = data.scalars || [];
    if (!scalars.length) return;
    const runs = data.runs.filter(function (r) { return scalars.some(function (s) { return s.run === r.id; }); });
    const rows = new Map();
    scalars.forEach(function (s) {
      const key = s.stage + "\u0000" + s.name;
      if (!rows.has(key)) rows.set(key, { stage: s.stage_label, name: s.name, values: {} });
      rows.get(key).values[s.run] = s.value;
    });
    const table = document.createElement("table");
    table.className = "scalars";
    table.id = "scalars-table";
    const head = table.createTHead().insertRow();
    ["Stage", "Metric"].concat(runs.map(function (r) { return "#" + r.id + " " + r.name; })).forEach(function (h) {
      const th = document.createElement("th");
      th.textContent = h;
      head.appendChild(th);
    });
    const body = table.createTBody();
    rows.forEach(function (r) {
      const tr = body.insertRow();
      cell(tr, r.stage);
      cell(tr, r.name);
      runs.forEach(function (run) {
        const v = r.values[run.id];
        cell(tr, v === undefined ? "—" : Number(v.toPrecision(6)).toString(), "num");
      });
    });
    const link = document.createElement("a");
    link.href = csvUrl + "&panel=scalars";
    link.textContent = "CSV";
    link.setAttribute("download", "");
    link.className = "small";
    const caption = document.createElement("p");
    caption.className = "muted small";
    caption.append("Metrics logged once (a table, not charts) · ", link);
    box.append(table, caption);
  }

  function drawRunKey(data) {
    const key = document.getElementById("run-colours");
    if (!key || data.runs.length < 2) return;
    key.replaceChildren();
    data.runs.forEach(function (r) {
      const chip = document.createElement("span");
      chip.className = "run-chip";
      chip.style.borderColor = r.color;
      const dot = document.createElement("i");
      dot.style.background = r.color;
      chip.append(dot, "#" + r.id + " " + r.name);
      key.append(chip);
    });
    key.hidden = false;
  }

  function draw(container, data) {
    last = data;
    const more = document.getElementById("charts-more");
    const moreBox = document.getElementById("more-charts");
    const csvUrl = csvBase(container, data);
    const seen = new Set();
    container.querySelectorAll("p.muted").forEach(function (p) { p.remove(); });
    data.panels.forEach(function (panel) {
      const parent = panel.group === "more" && more ? more : container;
      const div = panelBox(parent, panel, csvUrl);
      seen.add(div.id);
      const fig = viewed(panel);
      Plotly.react(div, fig.data, fig.layout, config);
    });
    document.querySelectorAll(".panel-box").forEach(function (box) {
      const div = box.querySelector(".chart");
      if (!seen.has(div.id)) { Plotly.purge(div); box.remove(); }
    });
    drawScalars(data, csvUrl);
    drawRunKey(data);
    const scalars = document.getElementById("scalars");
    if (moreBox) moreBox.hidden = !((more && more.children.length) || (scalars && scalars.children.length));
    const controls = document.getElementById("chart-controls");
    if (controls) controls.hidden = !data.panels.length;
    if (!data.panels.length) {
      const p = document.createElement("p");
      p.className = "muted";
      p.textContent = "No metrics yet: curves appear as the stages report them.";
      container.append(p);
    }
    document.body.dataset.chartsDrawn = String(data.panels.length);
  }

  function redraw() {
    if (!last) return;
    last.panels.forEach(function (panel) {
      const div = document.getElementById("chart-" + panel.id);
      if (!div) return;
      const fig = viewed(panel);
      Plotly.react(div, fig.data, fig.layout, config);
    });
  }

  function load(container, extraQuery) {
    if (!container) return Promise.resolve();
    let url = container.dataset.url;
    if (extraQuery) url += (url.indexOf("?") >= 0 ? "&" : "?") + extraQuery;
    return fetch(url, { credentials: "same-origin" })
      .then(function (r) { if (!r.ok) throw new Error(r.status); return r.json(); })
      .then(function (data) { draw(container, data); })
      .catch(function (err) { console.error("charts", err); });
  }

  function bindControls() {
    const form = document.getElementById("chart-controls");
    if (!form) return;
    const smooth = form.querySelector('[name="smooth"]');
    const out = form.querySelector('[data-role="smooth-value"]');
    function read() {
      view.smooth = smooth ? Number(smooth.value) : 0;
      if (out) out.textContent = view.smooth.toFixed(2);
      const log = form.querySelector('[name="log"]');
      view.log = !!(log && log.checked);
      const x = form.querySelector('[name="x"]:checked');
      view.x = x ? x.value : "step";
      redraw();
    }
    form.addEventListener("input", read);
    form.addEventListener("change", read);
    form.addEventListener("submit", function (ev) { ev.preventDefault(); });
  }

  // Charts drawn inside a closed <details> have no width yet: size them when it opens.
  document.addEventListener("toggle", function (ev) {
    if (ev.target.open) ev.target.querySelectorAll(".js-plotly-plot").forEach(function (div) { Plotly.Plots.resize(div); });
  }, true);

  window.StudioCharts = { load: load, view: view };
  document.addEventListener("DOMContentLoaded", function () {
    bindControls();
    const container = document.getElementById("charts");
    if (container && !document.getElementById("timeline")) load(container);
  });
})();
