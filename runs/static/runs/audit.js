/* Audit pages: keyboard shortcuts for blind labeling, and the dashboard's plotly charts. */
(function () {
  "use strict";

  function typing(event) {
    var t = event.target;
    return t && (t.tagName === "TEXTAREA" || t.tagName === "SELECT" || (t.tagName === "INPUT" && t.type !== "radio"));
  }

  var choices = { a: "left", b: "right", t: "tie", s: "skip" };
  var flags = { r: "reason_wrong", w: "verdict_wrong" };

  document.addEventListener("keydown", function (event) {
    if (event.key === "Escape" && typing(event)) { event.target.blur(); return; }  // back to the shortcuts
    if (event.ctrlKey || event.metaKey || event.altKey || typing(event)) return;
    var key = event.key.toLowerCase();
    var labelForm = document.getElementById("label-form");
    var keys = document.getElementById("audit-keys");
    if (labelForm && choices[key]) {
      var radio = labelForm.querySelector('input[name=choice][value="' + choices[key] + '"]');
      if (radio) { radio.checked = true; event.preventDefault(); labelForm.submit(); }
    } else if (labelForm && /^[1-5]$/.test(key)) {
      var confidence = labelForm.querySelector("select[name=confidence]");
      if (confidence) { confidence.value = key; event.preventDefault(); }
    } else if (key === "n" && keys && !labelForm) {
      event.preventDefault(); window.location.href = keys.dataset.next;
    } else if (key === "e" && document.getElementById("edit-label")) {
      event.preventDefault(); document.getElementById("edit-label").click();
    } else if (flags[key] && document.getElementById("flag-form")) {
      var form = document.getElementById("flag-form");
      form.querySelector("select[name=rationale_flag]").value = flags[key];
      event.preventDefault(); form.submit();
    }
  });

  // Corrected response: start from one of the responses (its text, as shown).
  Array.prototype.forEach.call(document.querySelectorAll("[data-copy-response]"), function (button) {
    button.addEventListener("click", function () {
      var source = document.querySelector("#" + button.dataset.copyResponse + " .text");
      var target = document.querySelector("#label-form textarea[name=correction]");
      if (source && target) { target.value = source.textContent; target.focus(); }
    });
  });

  document.body.dataset.keysReady = "1";  // the shortcuts are live (tests wait for this)

  var data = document.getElementById("audit-figures");
  if (data && window.Plotly) {
    var figures = JSON.parse(data.textContent);
    Object.keys(figures).forEach(function (id) {
      var el = document.getElementById(id);
      if (el) window.Plotly.newPlot(el, figures[id].data, Object.assign({}, figures[id].layout, {
        xaxis: Object.assign({ automargin: true }, figures[id].layout.xaxis),
        yaxis: Object.assign({ automargin: true }, figures[id].layout.yaxis),
      }), { responsive: true, displaylogo: false });
    });
  }
})();
