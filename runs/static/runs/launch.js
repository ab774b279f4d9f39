// Launch form: presets fill the fields; the estimate updates as the form changes (POST to the estimate JSON).
(function () {
  "use strict";
  const form = document.getElementById("launch-form");
  if (!form) return;
  const presets = JSON.parse(document.getElementById("launch-presets").textContent);
  const body = document.getElementById("estimate-body");

  function setField(name, value) {
    const inputs = form.querySelectorAll('[name="' + name + '"]');
    inputs.forEach(function (input) {
      if (input.type === "checkbox") input.checked = Boolean(value);
      else input.value = value === null || value === undefined ? "" : value;
    });
  }

  function applyPreset(key) {
    const preset = presets[key];
    if (!preset) return;
    Object.keys(preset.values).forEach(function (name) { setField(name, preset.values[name]); });
    form.querySelectorAll('input[name="stages"]').forEach(function (box) {
      box.checked = preset.stages.indexOf(box.value) >= 0;
    });
    form.querySelectorAll("input[placeholder]").forEach(function (input) {
      if (input.dataset.presetPlaceholder) input.removeAttribute("placeholder");
    });
    Object.keys(preset.placeholders).forEach(function (name) {
      const input = form.querySelector('[name="' + name + '"]');
      if (input) { input.placeholder = preset.placeholders[name]; input.dataset.presetPlaceholder = "1"; }
    });
    document.getElementById("preset-description").textContent = preset.description;
    // A name the page made from a preset ("<preset> <date>") follows the preset; a name the user typed stays.
    const name = form.querySelector('input[name="name"]');
    const madeFromPreset = Object.keys(presets).some(function (k) {
      return name && name.value.startsWith(presets[k].label + " ");
    });
    if (name && (!name.value || madeFromPreset)) {
      const date = (name.value.match(/\d{4}-\d{2}-\d{2}$/) || [new Date().toISOString().slice(0, 10)])[0];
      name.value = preset.label + " " + date;
    }
    scheduleEstimate();
  }

  function row(label, value) {
    const tr = document.createElement("tr");
    const a = document.createElement("td"); a.textContent = label;
    const b = document.createElement("td"); b.textContent = value;
    tr.append(a, b);
    return tr;
  }

  function fmt(n) { return Number(n).toLocaleString(); }

  function renderEstimate(data) {
    body.replaceChildren();
    if (!data.ok) {
      const p = document.createElement("p");
      p.className = "error";
      p.textContent = "Fix the form to see an estimate: " + Object.keys(data.errors).map(function (k) {
        return (k === "__all__" ? "" : k.replace("__", ".") + ": ") + data.errors[k].join(" ");
      }).join("; ");
      body.append(p);
      return;
    }
    const e = data.estimate;
    const table = document.createElement("table");
    table.append(
      row("Prompts", fmt(e.prompts)), row("Responses sampled", fmt(e.responses)),
      row("Comparisons", fmt(e.comparisons)), row("Principles per comparison", fmt(e.principles_per_comparison)),
      row("Judge calls (labeling)", fmt(e.judge_calls)), row("Judge calls (evaluation)", fmt(e.eval_judge_calls)),
      row("Judge prompt tokens", fmt(e.prompt_tokens)), row("Judge output tokens (at most)", fmt(e.completion_tokens)),
      row("Policy tokens (at most)", fmt(e.generation_tokens)), row("Judge cost", e.cost.toFixed(2))
    );
    table.rows[4].cells[1].id = "estimate-judge-calls";
    if (e.policy_judge_calls) table.append(row("Judge calls (policy rollouts)", fmt(e.policy_judge_calls)));
    if (e.budget) table.append(row("Budget cap", e.budget.toFixed(2)));
    if (e.minutes !== null && e.minutes !== undefined) table.append(row("Time on an idle 2-core CPU (about)", e.minutes + " min"));
    body.append(table);
    e.warnings.forEach(function (w) {
      const p = document.createElement("p"); p.className = "warning"; p.textContent = w; body.append(p);
    });
  }

  let timer = null;
  function scheduleEstimate() {
    clearTimeout(timer);
    timer = setTimeout(function () {
      const data = new FormData(form);
      data.set("action", "estimate");
      fetch(form.dataset.estimateUrl, { method: "POST", body: data, credentials: "same-origin",
        headers: { "X-Requested-With": "fetch" } })
        .then(function (r) { return r.json(); }).then(renderEstimate).catch(function () {});
    }, 350);
  }

  const presetSelect = form.querySelector('select[name="preset"]');
  if (presetSelect) presetSelect.addEventListener("change", function () { applyPreset(presetSelect.value); });
  form.addEventListener("change", function (ev) { if (ev.target !== presetSelect) scheduleEstimate(); });
  form.addEventListener("input", function (ev) { if (ev.target.type === "number" || ev.target.type === "text") scheduleEstimate(); });
  scheduleEstimate();
})();
