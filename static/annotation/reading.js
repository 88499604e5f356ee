/* PrefLab reading aids for task content: LaTeX typeset by the vendored KaTeX, and a word diff that keeps
   the Markdown rendering. Model output never becomes HTML here: the server sends LaTeX as escaped text in
   <span class="math">, KaTeX builds its own DOM from that text, and the diff only splits text nodes. */
(function () {
  "use strict";
  var KATEX_OPTIONS = { throwOnError: false, trust: false, strict: "ignore", maxExpand: 1000, maxSize: 20 };

  function typeset(root) {
    if (!window.katex || !root) return;
    root.querySelectorAll("span.math, span.math-display").forEach(function (el) {
      if (el.dataset.typeset) return;
      var tex = el.textContent;
      el.dataset.typeset = "1";
      el.title = tex;
      try {
        window.katex.render(tex, el, Object.assign({ displayMode: el.classList.contains("math-display") }, KATEX_OPTIONS));
      } catch (e) {
        el.textContent = tex; // leave the source visible
      }
    });
  }

  // --- word diff over rendered Markdown --------------------------------------------------------------
  function textNodes(root) {
    var out = [], walker = document.createTreeWalker(root, NodeFilter.SHOW_TEXT, {
      acceptNode: function (n) { return n.parentElement && n.parentElement.closest(".katex") ? NodeFilter.FILTER_REJECT : NodeFilter.FILTER_ACCEPT; }
    });
    while (walker.nextNode()) out.push(walker.currentNode);
    return out;
  }
  // Each text node split into pieces; words (non-space pieces) get an index in the flat word list.
  function tokenize(root) {
    var nodes = textNodes(root), words = [], pieces = [];
    nodes.forEach(function (node) {
      var parts = node.data.split(/(\s+)/).filter(function (p) { return p.length; });
      var entry = { node: node, parts: [] };
      parts.forEach(function (p) {
        if (/\S/.test(p)) { entry.parts.push([p, words.length]); words.push(p); } else entry.parts.push([p, -1]);
      });
      pieces.push(entry);
    });
    return { words: words, pieces: pieces };
  }
  function lcsChanged(a, b) {
    var n = a.length, m = b.length;
    if (n * m > 4e6) return null; // too long to diff in the browser
    var dp = new Array(n + 1), i, j;
    for (i = 0; i <= n; i++) dp[i] = new Uint32Array(m + 1);
    for (i = n - 1; i >= 0; i--) for (j = m - 1; j >= 0; j--)
      dp[i][j] = a[i] === b[j] ? dp[i + 1][j + 1] + 1 : Math.max(dp[i + 1][j], dp[i][j + 1]);
    var ca = new Uint8Array(n), cb = new Uint8Array(m);
    i = 0; j = 0;
    while (i < n && j < m) {
      if (a[i] === b[j]) { i++; j++; }
      else if (dp[i + 1][j] >= dp[i][j + 1]) ca[i++] = 1;
      else cb[j++] = 1;
    }
    while (i < n) ca[i++] = 1;
    while (j < m) cb[j++] = 1;
    return [ca, cb];
  }
  function mark(tokens, changed, cls) {
    tokens.pieces.forEach(function (entry) {
      if (!entry.parts.some(function (p) { return p[1] >= 0 && changed[p[1]]; })) return;
      var frag = document.createDocumentFragment();
      entry.parts.forEach(function (p) {
        if (p[1] >= 0 && changed[p[1]]) {
          var s = document.createElement("mark"); s.className = cls; s.textContent = p[0]; frag.appendChild(s);
        } else frag.appendChild(document.createTextNode(p[0]));
      });
      entry.node.parentNode.replaceChild(frag, entry.node);
    });
  }
  // Fill diffA / diffB with copies of the rendered responses whose changed words are marked.
  function buildDiff(mdA, mdB, diffA, diffB) {
    diffA.replaceChildren.apply(diffA, Array.from(mdA.cloneNode(true).childNodes));
    diffB.replaceChildren.apply(diffB, Array.from(mdB.cloneNode(true).childNodes));
    var ta = tokenize(diffA), tb = tokenize(diffB);
    var r = lcsChanged(ta.words, tb.words);
    if (!r) { diffA.textContent = diffB.textContent = "Too long to diff."; return false; }
    mark(ta, r[0], "del");
    mark(tb, r[1], "ins");
    return true;
  }

  window.PrefLabReading = { typeset: typeset, buildDiff: buildDiff };
  typeset(document.querySelector("main"));
})();
