/* PrefLab annotate page. Plain JS, no build step; it enhances a working HTML form (without JS every
   action is a form POST and a full page load).

   With JS, answers, skips and undos go to the JSON API over fetch while the next pair, prefetched from
   /annotate/next (already rendered by the server), is shown at once. Actions wait in an outbox that is
   sent in order, retried with backoff when the server cannot be reached, kept in localStorage so a
   reload loses nothing, and counted on screen ("2 answers waiting to send"). */
(function () {
  "use strict";
  var $ = function (id) { return document.getElementById(id); };
  var cfgEl = $("annotate-config");
  var cfg = cfgEl ? JSON.parse(cfgEl.textContent) : {};
  var form = $("judgment-form"), view = $("task-view");
  var skipDialog = $("skip-dialog"), helpDialog = $("help-dialog"), skipForm = $("skip-form");
  var guidelines = $("guidelines"), undoForm = $("undo-form");
  var sendStatus = $("send-status"), pageMessage = $("page-message"), feedbackSlot = $("feedback-slot");
  var emptyCard = $("queue-empty"), waitingCard = $("task-waiting");
  var reading = window.PrefLabReading || { typeset: function () {}, buildDiff: function () { return false; } };
  // Classic mode: every action is a form POST and a full reload (no fetch, or forced, e.g. by a benchmark).
  var classic = !!window.PREFLAB_CLASSIC || !window.fetch || !form || !cfgEl;

  // --- time on task: visible time only -------------------------------------------------------
  var spent = 0, since = document.hidden ? null : performance.now();
  document.addEventListener("visibilitychange", function () {
    if (document.hidden && since !== null) { spent += performance.now() - since; since = null; }
    else if (!document.hidden && since === null) { since = performance.now(); }
  });
  function elapsedMs() { return Math.round(spent + (since === null ? 0 : performance.now() - since)); }
  function resetClock(ms) { spent = ms || 0; since = document.hidden ? null : performance.now(); }

  // --- choices ----------------------------------------------------------------------------------
  var CHOICE_KEYS = { "1": "A", "2": "B", "3": "tie", "4": "both_bad" };
  var STRENGTH_KEYS = { q: "1", w: "2", e: "3" };
  function radio(name, value) { return form && form.querySelector('input[name="' + name + '"][value="' + value + '"]'); }
  function checked(name) { var i = form && form.querySelector('input[name="' + name + '"]:checked'); return i ? i.value : ""; }
  function pick(name, value) {
    var input = radio(name, value);
    // :disabled also covers inputs inside a disabled fieldset (their own .disabled stays false)
    if (input && !input.matches(":disabled")) { input.checked = true; input.dispatchEvent(new Event("change", { bubbles: true })); }
  }
  function strengthOff() { var c = checked("choice"); return c === "tie" || c === "both_bad"; }
  function syncStrength() {
    var group = $("strength-group");
    if (!group) return;
    var off = strengthOff();
    group.disabled = off; // greyed and ignored for tie / both bad, by mouse and by keys alike
    group.classList.toggle("off", off);
  }
  function rationaleBox() { return form && form.querySelector('textarea[name="rationale"]'); }

  // --- messages -----------------------------------------------------------------------------------
  function showMessage(text) { if (pageMessage) { pageMessage.textContent = text; pageMessage.hidden = !text; } }
  function choiceHelp() {
    var keys = [];
    form.querySelectorAll('input[name="choice"]').forEach(function (i) {
      var k = Object.keys(CHOICE_KEYS).filter(function (key) { return CHOICE_KEYS[key] === i.value; })[0];
      var label = i.closest("label") ? i.closest("label").textContent.replace(/\s+/g, " ").replace(/^\s*\S+\s/, "").trim() : i.value;
      keys.push(k + " = " + label);
    });
    return keys.join(", ");
  }
  // What is missing before this answer can be sent (a message and where to go), or null.
  function missing() {
    var choice = checked("choice");
    if (!choice) return { text: "Choose an answer first: " + choiceHelp() + ".", focus: null };
    if (cfg.ask_strength && $("strength-group") && !strengthOff() && !checked("strength"))
      return { text: "Say how much better: Q slightly, W clearly, E much better.", focus: null };
    var box = rationaleBox();
    if (cfg.rationale_required && box && !box.value.trim())
      return { text: "This project asks for a rationale: write it in the box (R).", focus: box };
    return null;
  }
  function collect() {
    var criteria = {};
    form.querySelectorAll('input[name^="criterion_"]:checked').forEach(function (i) {
      criteria[i.name.slice("criterion_".length)] = i.value;
    });
    var strength = strengthOff() ? "" : checked("strength");
    var box = rationaleBox();
    return {
      choice: checked("choice"),
      strength: strength ? Number(strength) : null,
      rationale: box ? box.value : "",
      criteria: criteria,
      time_spent_ms: elapsedMs(),
      idempotency_key: form.querySelector('input[name="idempotency_key"]').value,
    };
  }
  function newKey() {
    if (window.crypto && crypto.randomUUID) return crypto.randomUUID().replace(/-/g, "");
    return Date.now().toString(16) + Math.random().toString(16).slice(2);
  }
  function resetForm(answer) {
    form.reset();
    form.querySelector('input[name="idempotency_key"]').value = newKey();
    if (answer) {
      if (answer.choice) pick("choice", answer.choice);
      if (answer.strength) { var s = radio("strength", String(answer.strength)); if (s) s.checked = true; }
      var box = rationaleBox();
      if (box) box.value = answer.rationale || "";
      Object.keys(answer.criteria || {}).forEach(function (name) {
        var c = radio("criterion_" + name, answer.criteria[name]); if (c) c.checked = true;
      });
    }
    syncStrength();
  }

  // --- dialogs and guidelines ---------------------------------------------------------------------
  function openDialog(d, focusSel) {
    if (!d || d.open) return;
    d.showModal();
    var f = focusSel && d.querySelector(focusSel);
    if (f) f.focus();
  }
  document.querySelectorAll("dialog [data-close]").forEach(function (b) {
    b.addEventListener("click", function () { b.closest("dialog").close(); });
  });
  var skipBtn = $("skip-btn");
  if (skipBtn) skipBtn.addEventListener("click", function () { openDialog(skipDialog, "input"); });
  var helpBtn = $("help-btn");
  if (helpBtn) helpBtn.addEventListener("click", function () { openDialog(helpDialog); });
  function toggleGuidelines() {
    if (!guidelines) return;
    guidelines.hidden = !guidelines.hidden;
    var b = $("guidelines-btn");
    if (b) b.setAttribute("aria-expanded", String(!guidelines.hidden));
  }
  var gBtn = $("guidelines-btn");
  if (gBtn) gBtn.addEventListener("click", toggleGuidelines);

  // --- word diff: on by preference where the responses share enough text ---------------------------
  var diffOn = false;
  function diffPreferred() { try { return localStorage.getItem("preflab.diff") === "1"; } catch (e) { return false; } }
  function setDiff(on, remember) {
    var task = view && view.querySelector(".task");
    if (!task) return;
    var mdA = task.querySelector("#cand-a .md:not(.diff)"), mdB = task.querySelector("#cand-b .md:not(.diff)");
    var da = task.querySelector("#cand-a .diff"), db = task.querySelector("#cand-b .diff");
    if (on && !task.dataset.diffBuilt) { da.classList.add("md"); db.classList.add("md"); reading.buildDiff(mdA, mdB, da, db); task.dataset.diffBuilt = "1"; }
    mdA.hidden = mdB.hidden = on;
    da.hidden = db.hidden = !on;
    var toggle = task.querySelector(".diff-toggle");
    if (toggle) toggle.checked = on;
    diffOn = on;
    if (remember) { try { localStorage.setItem("preflab.diff", on ? "1" : "0"); } catch (e) { /* private mode */ } }
  }
  if (view) view.addEventListener("change", function (ev) {
    if (ev.target.classList.contains("diff-toggle")) setDiff(ev.target.checked, true);
  });

  // --- the task on screen ------------------------------------------------------------------------------
  function urlFor(template, id) { return template.replace(/\/0(\/|$)/, "/" + id + "$1"); }
  var current = null, upcoming = [], answered = [], noMoreTasks = false;
  if (view && form && form.dataset.task) current = { id: Number(form.dataset.task), html: view.innerHTML };

  function show(task, answer) {
    current = task || null;
    if (!current) {
      view.replaceChildren();
      form.hidden = true;
      emptyCard.hidden = !noMoreTasks;
      waitingCard.hidden = noMoreTasks;
      announce(null);
      return;
    }
    if (current.node && current.node.firstChild) view.replaceChildren.apply(view, Array.from(current.node.childNodes));
    else view.innerHTML = current.html; // rendered and sanitised by the server (annotation/_task.html)
    current.node = null;
    form.hidden = false; emptyCard.hidden = true; waitingCard.hidden = true;
    form.dataset.task = String(current.id);
    form.action = urlFor(cfg.form_submit_url, current.id);
    if (skipForm) skipForm.action = urlFor(cfg.form_skip_url, current.id);
    resetForm(answer);
    resetClock(answer ? answer.time_spent_ms : 0);
    diffOn = false;
    reading.typeset(view);
    var task = view.querySelector(".task");
    if (diffPreferred() && task && task.dataset.diffUseful === "1") setDiff(true, false);
    if (view.getBoundingClientRect().top < 0) view.scrollIntoView({ block: "start" });
    view.dataset.upcoming = String(upcoming.length);
    announce(current.id);
  }
  // For tests and the benchmark: the next pair is in the DOM (paint follows on the next frame).
  function announce(id) { document.dispatchEvent(new CustomEvent("preflab:shown", { detail: { task: id } })); }

  function advance() {
    showMessage("");
    if (feedbackSlot) feedbackSlot.replaceChildren();
    show(upcoming.shift() || null);
    view.dataset.upcoming = String(upcoming.length);
    prefetch();
    updateUndo();
  }

  // --- prefetch: the next pair is leased and rendered while this one is shown ---------------------------
  var prefetching = false, prefetchFailures = 0, prefetchTimer = null;
  function heldIds() {
    var ids = [];
    if (current) ids.push(current.id);
    upcoming.forEach(function (t) { ids.push(t.id); });
    outbox.forEach(function (a) { if (a.type !== "undo" && ids.indexOf(a.task) < 0) ids.push(a.task); });
    return ids;
  }
  function post(url, body, json) {
    var headers = { "X-CSRFToken": csrfToken(), "X-Requested-With": "fetch" };
    if (json) headers["Content-Type"] = "application/json";
    else headers["Content-Type"] = "application/x-www-form-urlencoded";
    return fetch(url, { method: "POST", headers: headers, body: body, credentials: "same-origin", cache: "no-store" });
  }
  function csrfToken() {
    var m = document.cookie.match(/(?:^|;\s*)csrftoken=([^;]+)/);
    if (m) return decodeURIComponent(m[1]);
    var input = document.querySelector('input[name="csrfmiddlewaretoken"]');
    return input ? input.value : "";
  }
  function prefetch(taskId) {
    if (classic || prefetching) return;
    if (!taskId && (noMoreTasks || (current && upcoming.length >= 1))) return;
    var held = heldIds();
    if (!taskId && held.length >= cfg.max_held) return;
    prefetching = true;
    clearTimeout(prefetchTimer);
    var body = taskId ? "task=" + taskId : "exclude=" + held.join(",");
    post(cfg.next_url, body, false)
      .then(function (r) { if (!r.ok) throw new Error("HTTP " + r.status); return r.json(); })
      .then(function (data) {
        prefetching = false; prefetchFailures = 0;
        if (data.progress) setText("left-in-queue", data.progress.left_in_queue_display);
        if (data.task && heldIds().indexOf(data.task.id) < 0) upcoming.push(prepare(data.task));
        else if (!data.task) noMoreTasks = true;
        if (!current) show(upcoming.shift() || null);
        view.dataset.upcoming = String(upcoming.length);
        prefetch();
      })
      .catch(function () {
        prefetching = false;
        prefetchFailures++;
        prefetchTimer = setTimeout(prefetch, backoff(prefetchFailures));
      });
  }
  // Parse and typeset a prefetched pair off screen now, so showing it later is a node swap.
  function prepare(task) {
    var holder = document.createElement("div");
    holder.innerHTML = task.html;
    reading.typeset(holder);
    task.node = holder;
    return task;
  }
  function setText(id, text) { var el = $(id); if (el && text !== undefined) el.textContent = String(text); }
  function setDoneToday(n) {
    setText("done-today", n);
    // The daily-target bar (annotation/_progress.html), when the project sets a target: "n / total today".
    var count = document.querySelector("[data-progress] .daily-count");
    var bar = document.querySelector('[data-progress] [aria-label="Daily target"]');
    var total = count ? Number((count.textContent.match(/\/\s*(\d+)/) || [])[1]) : 0;
    if (!count || !bar || !total) return;
    var percent = Math.min(100, Math.round((100 * n) / total));
    count.textContent = n + " / " + total + " today";
    bar.setAttribute("aria-valuenow", String(percent));
    bar.classList.toggle("done", percent >= 100);
    if (bar.firstElementChild) bar.firstElementChild.style.width = percent + "%";
  }
  function backoff(failures) { return Math.min(10000, 500 * Math.pow(2, failures - 1)) * (0.75 + Math.random() / 2); }

  // --- outbox: actions sent in order, never dropped while the server is away -----------------------------
  var tabKey = "preflab.outbox." + cfg.user + "." + cfg.project + ".";
  var storeKey = tabKey + newKey().slice(0, 12);
  var outbox = [], inflight = null, sendFailures = 0, sendTimer = null, sentJudgments = {}, lastError = "";
  function save() {
    try {
      if (outbox.length) localStorage.setItem(storeKey, JSON.stringify(outbox));
      else localStorage.removeItem(storeKey);
    } catch (e) { /* storage full or off: the in-page outbox still holds them */ }
  }
  function adoptStored() { // outboxes left by earlier loads of this page (any tab): send them from here
    try {
      for (var i = localStorage.length - 1; i >= 0; i--) {
        var key = localStorage.key(i);
        if (key && key.indexOf(tabKey) === 0 && key !== storeKey) {
          var items = JSON.parse(localStorage.getItem(key) || "[]");
          localStorage.removeItem(key);
          items.forEach(function (a) { if (a.type !== "undo" || a.judgment) outbox.push(a); });
        }
      }
    } catch (e) { /* unreadable storage: nothing to adopt */ }
    save();
  }
  function enqueue(action) {
    outbox.push(action);
    save();
    clearTimeout(sendTimer); sendTimer = null; // a new action is a good moment to try again
    pump();
  }
  function waitingAnswers() { return outbox.filter(function (a) { return a.type === "submit"; }).length; }
  function renderStatus() {
    if (!sendStatus) return;
    var n = waitingAnswers();
    sendStatus.dataset.waiting = String(outbox.length); // for tests: 0 once everything is stored
    var show = outbox.length && (sendFailures > 0 || (outbox[0].queuedAt && Date.now() - outbox[0].queuedAt > 1500));
    sendStatus.hidden = !show;
    if (show) {
      var text = n ? n + (n === 1 ? " answer" : " answers") + " waiting to send." : "Sending…";
      if (sendFailures) text += " " + (lastError || "The server cannot be reached") + "; retrying. Your answers are kept.";
      sendStatus.textContent = text;
    }
    sendStatus.classList.toggle("failing", sendFailures > 0);
  }
  setInterval(renderStatus, 1000);
  function request(action) {
    if (action.type === "submit") return { url: urlFor(cfg.submit_url, action.task), body: action.body };
    if (action.type === "skip") return { url: urlFor(cfg.skip_url, action.task), body: { reason: action.reason } };
    var judgment = action.judgment || sentJudgments[action.target];
    return judgment ? { url: urlFor(cfg.undo_url, judgment), body: {} } : null;
  }
  function pump() {
    renderStatus();
    if (inflight || !outbox.length || sendTimer) return;
    var action = outbox[0], req = request(action);
    if (!req) { outbox.shift(); save(); pump(); return; } // an undo whose answer was never stored
    inflight = action;
    post(req.url, JSON.stringify(req.body), true)
      .then(function (r) {
        return r.json().catch(function () { return {}; }).then(function (data) { settle(action, r.status, data); });
      })
      .catch(function () { retry(action, "The server cannot be reached"); });
  }
  function retry(action, why) {
    inflight = null;
    sendFailures++;
    lastError = why;
    sendTimer = setTimeout(function () { sendTimer = null; pump(); }, backoff(sendFailures));
    renderStatus();
  }
  function settle(action, status, data) {
    var transient = status >= 500 || status === 408 || status === 429 || status === 401 || status === 403 || status === 0;
    if (transient) {
      var why = status === 401 || status === 403
        ? "The server refused it (HTTP " + status + "): your session may have ended, log in again in another tab"
        : "The server answered HTTP " + status;
      retry(action, why);
      return;
    }
    inflight = null; sendFailures = 0; lastError = "";
    outbox.shift();
    save();
    if (status >= 200 && status < 300) sent(action, data);
    else rejected(action, (data.error && data.error.message) || "HTTP " + status, data.error && data.error.fields);
    pump();
  }
  function sent(action, data) {
    if (action.type === "submit") {
      sentJudgments[action.uid] = data.judgment;
      if (data.created) setDoneToday(Number($("done-today").textContent) + 1);
      if (data.gold_feedback && feedbackSlot) {
        fetch(urlFor(cfg.feedback_url, data.judgment), { credentials: "same-origin" })
          .then(function (r) { return r.ok ? r.text() : ""; })
          .then(function (html) { if (html) { feedbackSlot.innerHTML = html; reading.typeset(feedbackSlot); } });
      }
    } else if (action.type === "undo") {
      setDoneToday(Math.max(0, Number($("done-today").textContent) - 1));
      if (action.restore) { noMoreTasks = false; restoreFromServer(action); }
    }
  }
  function rejected(action, message, fields) {
    if (action.type === "submit") {
      var i = answered.findIndex(function (e) { return e.uid === action.uid; });
      var entry = i >= 0 ? answered.splice(i, 1)[0] : null;
      if (fields && fields.task) { showMessage("Task " + action.task + ": " + message); return; } // judged elsewhere
      showMessage("Your answer to task " + action.task + " was not saved: " + message + " It is back on screen.");
      if (entry) { if (current) upcoming.unshift(current); show(entry.task, entry.answer); }
      updateUndo();
    } else if (action.type === "undo") {
      showMessage("Could not undo: " + message);
      if (current && current.id === action.task) advance();
      else upcoming = upcoming.filter(function (t) { return t.id !== action.task; });
    }
  }

  // --- answer, skip, undo ----------------------------------------------------------------------------
  function answer() {
    var problem = missing();
    if (problem) { showMessage(problem.text); if (problem.focus) problem.focus.focus(); return; }
    var body = collect(), uid = newKey();
    enqueue({ uid: uid, type: "submit", task: current.id, body: body, queuedAt: Date.now() });
    answered.push({ uid: uid, task: current, answer: body, deadline: Date.now() + cfg.undo_grace_seconds * 1000 });
    if (answered.length > 20) answered.shift();
    advance();
  }
  function skip(reason) {
    if (skipDialog && skipDialog.open) skipDialog.close();
    enqueue({ uid: newKey(), type: "skip", task: current.id, reason: reason || "", queuedAt: Date.now() });
    advance();
  }
  function undoable() {
    var now = Date.now();
    answered = answered.filter(function (e) { return e.deadline > now; });
    if (answered.length) return true;
    return !!(cfg.undoable && cfg.undoable.deadline_ms > now);
  }
  var undoTimer = null;
  function updateUndo() {
    if (!undoForm) return;
    undoForm.hidden = !undoable();
    clearTimeout(undoTimer);
    if (!undoForm.hidden) undoTimer = setTimeout(updateUndo, 1000);
  }
  function undo() {
    if (!undoable()) { updateUndo(); return; }
    showMessage("");
    var entry = answered.pop();
    if (!entry) return undoFromServer();
    var queued = outbox.indexOf(outbox.filter(function (a) { return a.uid === entry.uid; })[0]);
    if (queued >= 0 && outbox[queued] !== inflight) { outbox.splice(queued, 1); save(); renderStatus(); }
    else enqueue({ uid: newKey(), type: "undo", target: entry.uid, judgment: sentJudgments[entry.uid] || null, task: entry.task.id, queuedAt: Date.now() });
    if (current) upcoming.unshift(current);
    show(entry.task, entry.answer); // the pair comes back at once, with the answer as it was
    updateUndo();
  }
  // The last answer came from an earlier page load: undo it, then fetch the pair it gives back.
  function undoFromServer() {
    var u = cfg.undoable;
    cfg.undoable = null;
    enqueue({ uid: newKey(), type: "undo", judgment: u.judgment, task: u.task, restore: u, queuedAt: Date.now() });
    updateUndo();
  }
  function restoreFromServer(action) {
    var u = action.restore;
    post(cfg.next_url, "task=" + u.task, false)
      .then(function (r) { if (!r.ok) throw new Error("HTTP " + r.status); return r.json(); })
      .then(function (data) {
        if (!data.task) return;
        if (current) upcoming.unshift(current);
        show(data.task, { choice: u.choice, strength: u.strength, rationale: u.rationale, criteria: u.criteria });
      })
      .catch(function () { showMessage("Undone. Reload the page to see that pair again."); });
  }

  // --- wiring -----------------------------------------------------------------------------------------
  if (form) {
    form.addEventListener("change", syncStrength);
    syncStrength();
    form.addEventListener("submit", function (ev) {
      if (classic) {
        var t = form.querySelector('input[name="time_spent_ms"]');
        if (t) t.value = String(elapsedMs());
        if (form.dataset.sent) { ev.preventDefault(); return; } // the idempotency key also guards the server
        form.dataset.sent = "1";
        var btn = $("submit-btn");
        if (btn) btn.disabled = true;
        return;
      }
      ev.preventDefault();
      if (current) answer();
    });
  }
  if (!classic) {
    if (skipForm) skipForm.addEventListener("submit", function (ev) {
      ev.preventDefault();
      var reason = skipForm.querySelector('input[name="reason"]');
      if (current) skip(reason ? reason.value : "");
      if (reason) reason.value = "";
    });
    if (undoForm) undoForm.addEventListener("submit", function (ev) { ev.preventDefault(); undo(); });
    window.addEventListener("beforeunload", function (ev) {
      if (outbox.length) { save(); ev.preventDefault(); ev.returnValue = ""; }
    });
    window.addEventListener("online", function () {
      clearTimeout(sendTimer); sendTimer = null; pump();
      if (!prefetching) { clearTimeout(prefetchTimer); prefetch(); }
    });
    adoptStored();
    // A pair whose answer is still waiting in the outbox (from before a reload) is not shown again.
    if (current && outbox.some(function (a) { return a.type !== "undo" && a.task === current.id; })) show(null);
    pump();
    prefetch();
  } else if (undoForm && cfg.undoable) {
    setTimeout(function () { undoForm.hidden = true; }, Math.max(0, cfg.undoable.deadline_ms - Date.now()));
  }
  updateUndo();
  if (current && diffPreferred()) {
    var first = view.querySelector(".task");
    if (first && first.dataset.diffUseful === "1") setDiff(true, false);
  }

  // --- keyboard ---------------------------------------------------------------------------------
  document.addEventListener("keydown", function (ev) {
    if (ev.defaultPrevented || ev.altKey || ev.metaKey) return;
    var t = ev.target, tag = t && t.tagName;
    var typing = tag === "TEXTAREA" || (tag === "INPUT" && t.type === "text") || tag === "SELECT";
    if (typing) {
      if (ev.key === "Escape") { t.blur(); }
      else if (ev.key === "Enter" && ev.ctrlKey && tag === "TEXTAREA" && form && form.contains(t)) {
        ev.preventDefault(); submitByKey();
      }
      return;
    }
    if (ev.ctrlKey) return;
    if ((skipDialog && skipDialog.open) || (helpDialog && helpDialog.open)) return; // native dialog keys
    var key = ev.key.length === 1 ? ev.key.toLowerCase() : ev.key;
    var onTask = form && !form.hidden;
    if (CHOICE_KEYS[key] && onTask) { pick("choice", CHOICE_KEYS[key]); ev.preventDefault(); }
    else if (STRENGTH_KEYS[key] && onTask) { pick("strength", STRENGTH_KEYS[key]); ev.preventDefault(); }
    else if (key === "Enter" && onTask) {
      if (tag === "BUTTON" || tag === "A" || tag === "SUMMARY") return; // let a focused control do its own thing
      ev.preventDefault(); submitByKey();
    }
    else if (key === "r" && onTask && rationaleBox()) { ev.preventDefault(); rationaleBox().focus(); }
    else if (key === "s" && skipDialog && onTask) { ev.preventDefault(); openDialog(skipDialog, "input"); }
    else if (key === "u" && undoForm && !undoForm.hidden) { ev.preventDefault(); undoForm.requestSubmit(); }
    else if (key === "?") { ev.preventDefault(); openDialog(helpDialog); }
    else if (key === "d" && onTask) { ev.preventDefault(); setDiff(!diffOn, true); }
    else if (key === "g") { ev.preventDefault(); toggleGuidelines(); }
  });
  function submitByKey() {
    var problem = missing();
    if (problem) { showMessage(problem.text); if (problem.focus) problem.focus.focus(); return; }
    form.requestSubmit();
  }
})();
