// Run page: polls the progress JSON every 2 s while the run is active and updates the stage timeline,
// status and buttons in place (no reload); refreshes the charts every 10 s while active and once at the end.
(function () {
  "use strict";
  const timeline = document.getElementById("timeline");
  const charts = document.getElementById("charts");
  if (!timeline) return;
  const POLL_MS = 2000, CHARTS_MS = 10000;
  let state = JSON.parse(document.getElementById("run-state").textContent);
  let compareQuery = "";
  let lastCharts = 0;

  function setHidden(el, hidden) { if (el) el.hidden = hidden; }

  function updateStage(s, runActive) {
    const row = timeline.querySelector('tr[data-stage="' + s.stage + '"]');
    if (!row) return;
    row.className = s.status;
    const badge = row.querySelector('[data-role="status"]');
    badge.className = "badge " + s.status;
    badge.textContent = s.status_display;
    const pct = s.fraction === null ? 0 : Math.round(s.fraction * 100);
    const bar = row.querySelector('[data-role="bar"]');
    bar.style.width = pct + "%";
    bar.className = s.status === "succeeded" ? "done" : s.status === "failed" ? "failed" : "";
    bar.parentElement.setAttribute("aria-valuenow", String(pct));
    row.querySelector('[data-role="count"]').textContent = s.done + (s.total === null ? "" : " / " + s.total);
    row.querySelector('[data-role="duration"]').textContent = s.duration;
    row.querySelector('[data-role="message"]').textContent = s.message;
    setHidden(row.querySelector('[data-role="retry"]'), !s.retryable || runActive);
    const detail = timeline.querySelector('tr[data-detail-for="' + s.stage + '"]');
    // A failure: its one-line reason, and the traceback folded underneath.
    const reason = detail.querySelector('[data-role="reason"]');
    reason.textContent = s.reason;
    setHidden(reason, !s.reason);
    detail.querySelector('[data-role="error"]').textContent = s.traceback;
    setHidden(detail.querySelector('[data-role="traceback"]'), !s.traceback);
    // The live log tail: what the worker printed and logged (bounded); open while the stage runs unless
    // the reader closed it, and kept scrolled to the end unless the reader scrolled up.
    const log = detail.querySelector('[data-role="log"]');
    const pre = log.querySelector("pre");
    const atEnd = pre.scrollTop + pre.clientHeight >= pre.scrollHeight - 4;
    if (pre.textContent !== s.log_tail) pre.textContent = s.log_tail;
    setHidden(log, !s.log_tail);
    if (s.status === "running" && !log.dataset.touched) log.open = true;
    if (atEnd) pre.scrollTop = pre.scrollHeight;
  }

  function render(next) {
    const runBadge = document.getElementById("run-status");
    runBadge.className = "badge " + next.status;
    runBadge.textContent = next.status_display;
    document.body.dataset.runStatus = next.status;
    setHidden(document.getElementById("cancel-form"), !next.can_cancel);
    setHidden(document.getElementById("resume-form"), !next.can_resume);
    setHidden(document.getElementById("release-form"), !next.waiting);
    const started = document.getElementById("run-started");
    if (started && next.started_at) started.textContent = next.started_at.slice(0, 19).replace("T", " ");
    const finished = document.getElementById("run-finished");
    if (finished && next.finished_at) finished.textContent = next.finished_at.slice(0, 19).replace("T", " ");
    next.stages.forEach(function (s) { updateStage(s, next.active); });
  }

  function renderCounts(counts) {
    function put(key, text) {
      const el = document.querySelector('[data-count="' + key + '"]');
      if (el) el.textContent = text;
    }
    ["completions", "comparisons", "judgments", "failed", "human_labels"].forEach(function (k) {
      put(k, Number(counts[k] || 0).toLocaleString());
    });
    put("consistency", counts.checked ? counts.consistent + " / " + counts.checked : "—");
    put("cost", Number(counts.cost || 0).toFixed(2));
  }

  // Rebuilds the artifacts table from the progress JSON (text only: paths and names are not HTML).
  function renderArtifacts(list) {
    const box = document.getElementById("artifacts");
    if (!box || !list) return;
    box.replaceChildren();
    if (!list.length) {
      const p = document.createElement("p");
      p.className = "card muted";
      p.textContent = "No artifacts yet.";
      box.appendChild(p);
      return;
    }
    const table = document.createElement("table");
    table.id = "artifact-table";
    const head = table.createTHead().insertRow();
    ["Kind", "Name", "Lineage", "Path", "Metrics", "Created", ""].forEach(function (h) {
      const th = document.createElement("th");
      th.textContent = h;
      head.appendChild(th);
    });
    const body = table.createTBody();
    list.forEach(function (a) {
      const row = body.insertRow();
      row.id = "artifact-" + a.id;
      row.dataset.artifact = String(a.id);
      row.insertCell().textContent = a.kind;
      row.insertCell().textContent = a.name;
      const lineage = row.insertCell();
      lineage.className = "lineage";
      (a.lineage || []).forEach(function (l, i) {
        if (i) lineage.append(" · ");
        if (l.href) {
          const link = document.createElement("a");
          link.href = l.href;
          link.textContent = l.text;
          lineage.append(link);
        } else {
          lineage.append(l.text);
        }
      });
      const code = document.createElement("code");
      code.textContent = a.path;
      row.insertCell().appendChild(code);
      const cell = row.insertCell();
      const keys = a.metrics ? Object.keys(a.metrics) : [];
      if (keys.length) {
        const details = document.createElement("details");
        const summary = document.createElement("summary");
        summary.className = "muted";
        summary.textContent = keys.length + (keys.length === 1 ? " field" : " fields");
        const pre = document.createElement("pre");
        pre.className = "text";
        pre.textContent = JSON.stringify(a.metrics, null, 2);
        details.append(summary, pre);
        cell.appendChild(details);
      }
      row.insertCell().textContent = a.created_at.slice(0, 16).replace("T", " ");
      const download = row.insertCell();
      if (a.download_url) {
        const link = document.createElement("a");
        link.className = "button secondary small";
        link.href = a.download_url;
        link.setAttribute("download", "");
        link.textContent = a.zip ? "Download .zip" : "Download";
        download.appendChild(link);
      } else {
        const gone = document.createElement("span");
        gone.className = "muted small";
        gone.textContent = a.path ? "files gone" : "no files";  // a report (e.g. the pre-flight) has none
        download.appendChild(gone);
      }
    });
    box.appendChild(table);
  }

  // Shows the evaluate stage's headline figures once they exist (same text as the server renders).
  function renderEvaluation(e) {
    const section = document.getElementById("evaluation-section");
    if (!section || !e) return;
    // as the server's percent filter writes it: Python's format rounds an exact half to even (0.625 -> 62%)
    const pct = function (x) {
      const v = x * 100;
      let r = Math.round(v);
      if (v - Math.floor(v) === 0.5 && r % 2 !== 0) r -= 1;
      return r + "%";
    };
    const put = function (key, text) { section.querySelector('[data-eval="' + key + '"]').textContent = text; };
    put("win_rate", pct(e.win_rate));
    put("interval", "95% CI " + pct(e.win_rate_low) + "–" + pct(e.win_rate_high));
    if (e.lc_win_rate !== undefined) {
      put("lc_win_rate", pct(e.lc_win_rate));
      put("lc_interval", "95% CI " + pct(e.lc_win_rate_low) + "–" + pct(e.lc_win_rate_high));
    }
    put("outcomes", [e.wins, e.ties, e.losses].map(function (n) { return Math.round(n); }).join(" / "));
    if (e.reward_reference_mean !== undefined) {
      put("rewards", e.reward_reference_mean.toFixed(3) + " → " + e.reward_tuned_mean.toFixed(3));
    }
    if (e.rep_reference !== undefined) {
      put("repetition", e.rep_reference.toFixed(3) + " → " + e.rep_tuned.toFixed(3));
    }
    section.hidden = false;
  }

  function loadCounts() {
    return fetch(timeline.dataset.progressUrl + "?counts=1", { credentials: "same-origin" })
      .then(function (r) { return r.json(); })
      .then(function (data) {
        if (data.counts) renderCounts(data.counts);
        renderArtifacts(data.artifacts);
        renderEvaluation(data.evaluation);
      })
      .catch(function (err) { console.error("counts", err); });
  }

  function loadCharts() {
    lastCharts = Date.now();
    if (window.StudioCharts && charts) return window.StudioCharts.load(charts, compareQuery);
  }

  function poll() {
    fetch(timeline.dataset.progressUrl, { credentials: "same-origin" })
      .then(function (r) { if (!r.ok) throw new Error(r.status); return r.json(); })
      .then(function (next) {
        const wasActive = state.active;
        state = next;
        render(next);
        if ((wasActive && !next.active) || (next.active && Date.now() - lastCharts > CHARTS_MS)) {
          loadCharts();
          loadCounts();
        }
      })
      .catch(function (err) { console.error("progress", err); })
      .finally(function () { if (state.active) setTimeout(poll, POLL_MS); });
  }

  const compareForm = document.getElementById("compare-form");
  if (compareForm) {
    compareForm.addEventListener("submit", function (ev) {
      ev.preventDefault();
      const ids = Array.from(document.getElementById("compare-runs").selectedOptions).map(function (o) { return o.value; });
      compareQuery = ids.length ? "compare=" + ids.join(",") : "";
      loadCharts();
    });
  }

  timeline.querySelectorAll('[data-role="log"] > summary').forEach(function (summary) {
    summary.addEventListener("click", function () { summary.parentElement.dataset.touched = "1"; });
  });
  render(state);
  loadCharts();
  if (state.active) setTimeout(poll, POLL_MS);
})();
