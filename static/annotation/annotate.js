/* PrefLab annotate page: keyboard shortcuts, time on task, word diff. Plain JS, no build step.
   Everything here enhances a working HTML form: without JS the page still works by mouse. */
(function () {
  "use strict";
  var form = document.getElementById("judgment-form");
  var skipDialog = document.getElementById("skip-dialog");
  var helpDialog = document.getElementById("help-dialog");
  var guidelines = document.getElementById("guidelines");
  var undoForm = document.getElementById("undo-form");
  var diffToggle = document.getElementById("diff-toggle");

  // --- time on task: visible time only -------------------------------------------------------
  var spent = 0, since = document.hidden ? null : performance.now();
  document.addEventListener("visibilitychange", function () {
    if (document.hidden && since !== null) { spent += performance.now() - since; since = null; }
    else if (!document.hidden && since === null) { since = performance.now(); }
  });
  function elapsedMs() { return Math.round(spent + (since === null ? 0 : performance.now() - since)); }

  // --- choices ----------------------------------------------------------------------------------
  var CHOICE_KEYS = { "1": "A", "2": "B", "3": "tie", "4": "both_bad" };
  var STRENGTH_KEYS = { q: "1", w: "2", e: "3" };
  function pick(name, value) {
    if (!form) return;
    var input = form.querySelector('input[name="' + name + '"][value="' + value + '"]');
    if (input && !input.disabled) { input.checked = true; input.dispatchEvent(new Event("change", { bubbles: true })); }
  }
  function syncStrength() {
    if (!form) return;
    var group = document.getElementById("strength-group");
    if (!group) return;
    var chosen = form.querySelector('input[name="choice"]:checked');
    var off = chosen && (chosen.value === "tie" || chosen.value === "both_bad");
    group.disabled = !!off;
    group.classList.toggle("off", !!off);
  }
  if (form) {
    form.addEventListener("change", syncStrength);
    syncStrength();
    form.addEventListener("submit", function (ev) {
      var t = form.querySelector('input[name="time_spent_ms"]');
      if (t) t.value = String(elapsedMs());
      var btn = document.getElementById("submit-btn");
      if (form.dataset.sent) { ev.preventDefault(); return; } // the idempotency key also guards the server
      form.dataset.sent = "1";
      if (btn) btn.disabled = true;
    });
  }

  // --- dialogs ----------------------------------------------------------------------------------
  function openDialog(d, focusSel) {
    if (!d || d.open) return;
    d.showModal();
    var f = focusSel && d.querySelector(focusSel);
    if (f) f.focus();
  }
  document.querySelectorAll("dialog [data-close]").forEach(function (b) {
    b.addEventListener("click", function () { b.closest("dialog").close(); });
  });
  var skipBtn = document.getElementById("skip-btn");
  if (skipBtn) skipBtn.addEventListener("click", function () { openDialog(skipDialog, "input"); });
  var helpBtn = document.getElementById("help-btn");
  if (helpBtn) helpBtn.addEventListener("click", function () { openDialog(helpDialog); });
  function toggleGuidelines() {
    if (!guidelines) return;
    guidelines.hidden = !guidelines.hidden;
    var b = document.getElementById("guidelines-btn");
    if (b) b.setAttribute("aria-expanded", String(!guidelines.hidden));
  }
  var gBtn = document.getElementById("guidelines-btn");
  if (gBtn) gBtn.addEventListener("click", toggleGuidelines);

  // --- undo: hide the button when the grace period is over --------------------------------------
  if (undoForm) {
    var left = Number(undoForm.dataset.deadline) + Number(undoForm.dataset.grace) - Date.now() / 1000;
    setTimeout(function () { undoForm.hidden = true; }, Math.max(0, left * 1000));
  }

  // --- word diff (LCS over words), built with text nodes only: model output never becomes HTML ---
  function words(s) { return s.split(/(\s+)/).filter(function (w) { return w.length; }); }
  function diff(a, b) {
    var n = a.length, m = b.length;
    if (n * m > 4e6) return null; // too long to diff in the browser
    var dp = new Array(n + 1);
    for (var i = 0; i <= n; i++) dp[i] = new Uint32Array(m + 1);
    for (i = n - 1; i >= 0; i--) for (var j = m - 1; j >= 0; j--)
      dp[i][j] = a[i] === b[j] ? dp[i + 1][j + 1] + 1 : Math.max(dp[i + 1][j], dp[i][j + 1]);
    var outA = [], outB = [];
    i = 0; j = 0;
    while (i < n && j < m) {
      if (a[i] === b[j]) { outA.push([a[i], 0]); outB.push([b[j], 0]); i++; j++; }
      else if (dp[i + 1][j] >= dp[i][j + 1]) { outA.push([a[i++], 1]); }
      else { outB.push([b[j++], 1]); }
    }
    while (i < n) outA.push([a[i++], 1]);
    while (j < m) outB.push([b[j++], 1]);
    return [outA, outB];
  }
  function fill(el, parts, cls) {
    el.textContent = "";
    parts.forEach(function (p) {
      if (p[1] && /\S/.test(p[0])) { var s = document.createElement("mark"); s.className = cls; s.textContent = p[0]; el.appendChild(s); }
      else el.appendChild(document.createTextNode(p[0]));
    });
  }
  var diffBuilt = false;
  function setDiff(on) {
    var rawA = document.getElementById("raw-a"), rawB = document.getElementById("raw-b");
    if (!rawA || !rawB) return;
    var da = document.querySelector("#cand-a .diff"), db = document.querySelector("#cand-b .diff");
    if (on && !diffBuilt) {
      var r = diff(words(JSON.parse(rawA.textContent)), words(JSON.parse(rawB.textContent)));
      if (!r) { da.textContent = db.textContent = "Too long to diff."; }
      else { fill(da, r[0], "del"); fill(db, r[1], "ins"); }
      diffBuilt = true;
    }
    document.querySelectorAll(".cand .md").forEach(function (e) { e.hidden = on; });
    document.querySelectorAll(".cand .diff").forEach(function (e) { e.hidden = !on; });
    if (diffToggle) diffToggle.checked = on;
  }
  if (diffToggle) diffToggle.addEventListener("change", function () { setDiff(diffToggle.checked); });

  // --- keyboard ---------------------------------------------------------------------------------
  document.addEventListener("keydown", function (ev) {
    if (ev.defaultPrevented || ev.altKey || ev.metaKey) return;
    var t = ev.target, tag = t && t.tagName;
    var typing = tag === "TEXTAREA" || (tag === "INPUT" && t.type === "text") || tag === "SELECT";
    if (typing) {
      if (ev.key === "Escape") { t.blur(); }
      else if (ev.key === "Enter" && ev.ctrlKey && tag === "TEXTAREA" && form && form.contains(t)) {
        ev.preventDefault(); form.requestSubmit();
      }
      return;
    }
    if (ev.ctrlKey) return;
    if ((skipDialog && skipDialog.open) || (helpDialog && helpDialog.open)) return; // native dialog keys
    var key = ev.key.length === 1 ? ev.key.toLowerCase() : ev.key;
    if (CHOICE_KEYS[key]) { pick("choice", CHOICE_KEYS[key]); ev.preventDefault(); }
    else if (STRENGTH_KEYS[key]) { pick("strength", STRENGTH_KEYS[key]); ev.preventDefault(); }
    else if (key === "Enter" && form) {
      if (tag === "BUTTON" || tag === "A") return; // let a focused button do its own thing
      ev.preventDefault(); form.requestSubmit();
    }
    else if (key === "s" && skipDialog) { ev.preventDefault(); openDialog(skipDialog, "input"); }
    else if (key === "u" && undoForm && !undoForm.hidden) { ev.preventDefault(); undoForm.requestSubmit(); }
    else if (key === "?") { ev.preventDefault(); openDialog(helpDialog); }
    else if (key === "d" && diffToggle) { ev.preventDefault(); setDiff(!diffToggle.checked); }
    else if (key === "g") { ev.preventDefault(); toggleGuidelines(); }
  });
})();
