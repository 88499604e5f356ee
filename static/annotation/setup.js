// A lead's pages: guidelines preview, import progress, task browser selection, snapshot live count, copy.
"use strict";
(function () {
  function csrf() {
    const input = document.querySelector("input[name=csrfmiddlewaretoken]");
    return input ? input.value : "";
  }

  // Guidelines: render through the server's sanitising Markdown pipeline (never in the browser).
  const previewButton = document.getElementById("preview-button");
  const source = document.querySelector("[data-markdown-source]");
  const target = document.getElementById("guidelines-preview");
  if (previewButton && source && target) {
    let timer = null;
    const render = async () => {
      const body = new URLSearchParams({ text: source.value });
      const response = await fetch(previewButton.dataset.previewUrl, {
        method: "POST",
        headers: { "X-CSRFToken": csrf(), "Content-Type": "application/x-www-form-urlencoded" },
        body: body,
        credentials: "same-origin",
      });
      const data = await response.json();
      if (data.html !== undefined) target.innerHTML = data.html; // sanitised by the server (nh3)
      else target.textContent = data.error || "Preview failed.";
    };
    previewButton.addEventListener("click", () => render().catch(() => (target.textContent = "Preview failed.")));
    source.addEventListener("input", () => {
      clearTimeout(timer);
      timer = setTimeout(() => render().catch(() => {}), 600);
    });
    if (source.value) render().catch(() => {});
  }

  // Import: poll the job's status while it runs; reload when it ends (the page renders the report).
  const state = document.getElementById("import-state");
  if (state && state.dataset.live === "1") {
    const bar = document.getElementById("import-progress");
    const stage = document.getElementById("import-stage");
    const count = document.getElementById("import-count");
    const poll = async () => {
      const response = await fetch(state.dataset.statusUrl, { credentials: "same-origin" });
      const data = await response.json();
      if (!data.live) {
        window.location.reload();
        return;
      }
      stage.textContent = (data.dry_run ? "Dry run: " : "Import: ") + (data.stage === "read" ? "reading" : data.status);
      count.textContent = data.records_read ? data.records_read + (data.total ? " / " + data.total : "") + " records read" : "";
      if (data.total && data.records_read) {
        bar.classList.remove("indeterminate");
        bar.firstElementChild.style.width = Math.min(95, (100 * data.records_read) / data.total) + "%";
      }
      setTimeout(poll, 1000);
    };
    setTimeout(poll, 500);
  }

  // Task browser: select all on the page, count the selection, ask for the gold answer only when needed.
  const bulk = document.getElementById("bulk-form");
  if (bulk) {
    const boxes = () => Array.from(bulk.querySelectorAll("input[name=tasks]"));
    const all = document.getElementById("select-all");
    const counter = document.getElementById("selected-count");
    const action = document.getElementById("bulk-action");
    const gold = document.getElementById("gold-choice");
    const refresh = () => {
      const n = boxes().filter((b) => b.checked).length;
      counter.textContent = n + " selected";
      gold.hidden = action.value !== "gold";
      gold.required = action.value === "gold";
    };
    all.addEventListener("change", () => {
      boxes().forEach((b) => (b.checked = all.checked));
      refresh();
    });
    bulk.addEventListener("change", refresh);
    bulk.addEventListener("submit", (event) => {
      if (!boxes().some((b) => b.checked)) {
        event.preventDefault();
        counter.textContent = "Select at least one task.";
      }
    });
    refresh();
  }

  // Snapshot form: a live count of the judgments the spec selects.
  const spec = document.getElementById("snapshot-form");
  if (spec) {
    const out = document.getElementById("snapshot-count");
    let timer = null;
    const hint = out.textContent;
    const update = async () => {
      const params = new URLSearchParams(new FormData(spec));
      params.delete("csrfmiddlewaretoken");
      if (!params.has("projects")) {
        out.textContent = hint;
        return;
      }
      const response = await fetch(spec.dataset.countUrl + "?" + params.toString(), { credentials: "same-origin" });
      const data = await response.json();
      out.textContent = data.error ? data.error : data.judgments.toLocaleString() + (data.capped ? "+" : "") + " judgments will go in";
      out.classList.toggle("error", Boolean(data.error) || data.judgments === 0);
    };
    spec.addEventListener("input", () => {
      clearTimeout(timer);
      timer = setTimeout(() => update().catch(() => {}), 300);
    });
    update().catch(() => {});
  }

  document.querySelectorAll("[data-copy]").forEach((button) => {
    button.addEventListener("click", () => {
      const input = document.querySelector(button.dataset.copy);
      input.select();
      if (navigator.clipboard) navigator.clipboard.writeText(input.value).catch(() => {});
      button.textContent = "Copied";
    });
  });
})();
