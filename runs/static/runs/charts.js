// Draws the figures served by a charts JSON view (runs/charts.py) with plotly.js.
// window.StudioCharts.load(container[, extraQuery]) fetches container.dataset.url and (re)draws every panel.
(function () {
  "use strict";
  const config = { responsive: true, displaylogo: false };

  function panelDiv(parent, id) {
    let div = document.getElementById("chart-" + id);
    if (!div) {
      div = document.createElement("div");
      div.className = "chart";
      div.id = "chart-" + id;
      div.dataset.panel = id;
      parent.append(div);
    }
    return div;
  }

  // Long tick labels (principle names) and axis titles get the room they need instead of being clipped.
  function withAutomargins(layout) {
    const out = Object.assign({}, layout);
    ["xaxis", "yaxis"].forEach(function (axis) { out[axis] = Object.assign({ automargin: true }, layout[axis]); });
    return out;
  }

  // Charts drawn inside a closed <details> have no width yet: size them when it opens.
  document.addEventListener("toggle", function (ev) {
    if (ev.target.open) ev.target.querySelectorAll(".js-plotly-plot").forEach(function (div) { Plotly.Plots.resize(div); });
  }, true);

  function draw(container, data) {
    const more = document.getElementById("charts-more");
    const moreBox = document.getElementById("more-charts");
    const seen = new Set();
    container.querySelectorAll("p.muted").forEach(function (p) { p.remove(); });
    data.panels.forEach(function (panel) {
      const parent = panel.group === "more" && more ? more : container;
      const div = panelDiv(parent, panel.id);
      seen.add(div.id);
      Plotly.react(div, panel.figure.data, withAutomargins(panel.figure.layout), config);
    });
    document.querySelectorAll(".chart").forEach(function (div) {
      if (!seen.has(div.id)) { Plotly.purge(div); div.remove(); }
    });
    if (moreBox) moreBox.hidden = !(more && more.children.length);
    if (!data.panels.length) {
      const p = document.createElement("p");
      p.className = "muted";
      p.textContent = "No metrics yet: curves appear as the stages report them.";
      container.append(p);
    }
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

  window.StudioCharts = { load: load };
  document.addEventListener("DOMContentLoaded", function () {
    const container = document.getElementById("charts");
    if (container && !document.getElementById("timeline")) load(container);
  });
})();
