(function () {  // show only the mapping fields of the chosen layout (hidden ones keep their values)
  const layout = document.getElementById("id_layout");
  if (!layout) return;
  function sync() {
    document.querySelectorAll("#mapping-form [data-layouts]").forEach(function (p) {
      p.hidden = !p.dataset.layouts.split(" ").includes(layout.value);
    });
  }
  layout.addEventListener("change", sync);
  sync();
})();
