(function () {
  const box = document.getElementById("import-progress");
  const bar = document.getElementById("import-bar"), text = document.getElementById("import-text");
  async function poll() {
    try {
      const r = await fetch(box.dataset.url, {headers: {"Accept": "application/json"}});
      const d = await r.json();
      if (d.status !== "importing") { window.location.reload(); return; }
      if (d.fraction !== null) bar.style.width = Math.round(d.fraction * 100) + "%";
      text.textContent = d.error ? d.error : d.job_status === "queued" ?
        "Queued: waiting for a worker (with the embedded queue, jobs run one at a time)" :
        `${d.rows_read.toLocaleString()}${d.expected ? " / " + d.expected.toLocaleString() : ""} rows read, ${d.prompts.toLocaleString()} prompts`;
    } catch (e) { text.textContent = "Progress unavailable; retrying…"; }
    setTimeout(poll, 1000);
  }
  poll();
})();
