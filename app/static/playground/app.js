// The terse playground: sends the form to /v1/compress with return_labels and draws the answer.
// Plain DOM, no framework, nothing loaded from elsewhere (the page's CSP allows this origin only).
// Every text from the user or the API goes in with textContent, never as HTML.
"use strict";

(function () {
  const $ = (id) => document.getElementById(id);
  const SHADES = 5; // kept words get classes s0..s4 by score, lowest to highest
  let examples = [];
  let apiKey = ""; // only ever in this variable and the field: never stored

  // -- documents: one box each, added and removed by the user ------------------------------------
  function documentBoxes() {
    return Array.from($("document-list").querySelectorAll("textarea"));
  }

  function renumber() {
    documentBoxes().forEach((box, i) => {
      const row = box.closest(".document");
      const n = i + 1;
      box.id = "document-" + n;
      row.querySelector("label").htmlFor = box.id;
      row.querySelector("label").textContent = "Document " + n;
      row.querySelector("button").setAttribute("aria-label", "Remove document " + n);
    });
  }

  function addDocument(text, focus) {
    const row = document.createElement("div");
    row.className = "document";
    const label = document.createElement("label");
    const box = document.createElement("textarea");
    box.rows = 4;
    box.value = text || "";
    const remove = document.createElement("button");
    remove.type = "button";
    remove.className = "remove";
    remove.textContent = "Remove";
    remove.addEventListener("click", () => {
      const boxes = documentBoxes();
      const at = boxes.indexOf(box);
      if (boxes.length === 1) {
        box.value = ""; // keep one box to type into
        box.focus();
        return;
      }
      row.remove();
      renumber();
      const left = documentBoxes();
      (left[Math.min(at, left.length - 1)] || $("add-document")).focus();
    });
    row.append(label, box, remove);
    $("document-list").append(row);
    renumber();
    if (focus) box.focus();
    return box;
  }

  function setDocuments(texts) {
    $("document-list").replaceChildren();
    (texts.length ? texts : [""]).forEach((t) => addDocument(t, false));
  }

  // What is sent: every box's text; a lone box is split on blank lines.
  function documents() {
    const texts = documentBoxes().map((b) => b.value);
    const filled = texts.filter((t) => t.trim() !== "");
    if (filled.length === 1 && texts.length === 1) {
      return filled[0].split(/\n[ \t]*\n/).filter((t) => t.trim() !== "");
    }
    return filled;
  }

  // -- examples -----------------------------------------------------------------------------------
  async function loadExamples() {
    try {
      const r = await fetch("playground/examples.json");
      examples = await r.json();
    } catch (e) {
      examples = [];
    }
    examples.forEach((ex, i) => {
      const opt = document.createElement("option");
      opt.value = String(i);
      opt.textContent = ex.name;
      $("example").append(opt);
    });
  }

  function loadExample() {
    const ex = examples[Number($("example").value)];
    if ($("example").value === "" || !ex) return;
    $("instruction").value = ex.instruction;
    $("question").value = ex.question;
    setDocuments(ex.documents);
    const s = ex.settings || {};
    $("method").value = s.method || "";
    $("ranker").value = s.ranker || "";
    $("reorder").value = s.reorder || "original";
    if (s.target_tokens) {
      $("budget-target").checked = true;
      $("target-tokens").value = s.target_tokens;
    } else {
      $("budget-rate").checked = true;
      $("rate").value = s.rate || 0.5;
    }
    budgetChanged();
    setStatus("Loaded: " + ex.name);
  }

  function budgetChanged() {
    const byRate = $("budget-rate").checked;
    $("rate").disabled = !byRate;
    $("target-tokens").disabled = byRate;
  }

  // -- the request --------------------------------------------------------------------------------
  function request() {
    const body = {
      context: documents(),
      instruction: $("instruction").value,
      question: $("question").value,
      reorder: $("reorder").value,
      return_labels: true,
    };
    if ($("method").value) body.method = $("method").value;
    if ($("ranker").value) body.ranker = $("ranker").value;
    if ($("budget-rate").checked) body.rate = Number($("rate").value);
    else body.target_tokens = Number($("target-tokens").value);
    return body;
  }

  function setStatus(text) {
    $("status").textContent = text;
  }

  function showError(message) {
    const box = $("error");
    box.textContent = message;
    box.hidden = false;
  }

  async function compress(event) {
    event.preventDefault();
    $("error").hidden = true;
    apiKey = $("api-key").value.trim();
    const body = request();
    if (!body.context.length) {
      showError("Add at least one document.");
      return;
    }
    const headers = { "Content-Type": "application/json" };
    if (apiKey) headers.Authorization = "Bearer " + apiKey;
    $("compress").disabled = true;
    setStatus("Compressing…");
    try {
      const r = await fetch("v1/compress", { method: "POST", headers, body: JSON.stringify(body) });
      let answer = null;
      try {
        answer = await r.json();
      } catch (e) {
        answer = null;
      }
      if (!r.ok) {
        const err = answer && answer.error;
        showError(err ? `${r.status} ${err.type}: ${err.message}` : `${r.status} ${r.statusText}`);
        setStatus("");
        return;
      }
      show(body, answer);
      setStatus("Done.");
      $("result").focus();
    } catch (e) {
      showError("The request failed: " + e.message);
      setStatus("");
    } finally {
      $("compress").disabled = false;
    }
  }

  // -- the result ---------------------------------------------------------------------------------
  function el(tag, text, className) {
    const node = document.createElement(tag);
    if (text !== undefined) node.textContent = text;
    if (className) node.className = className;
    return node;
  }

  function ms(x) {
    return x >= 100 ? Math.round(x) + " ms" : x.toFixed(1) + " ms";
  }

  function show(sent, a) {
    const saved = a.original_tokens - a.compressed_tokens;
    const stages = Object.entries(a.timings_ms)
      .filter(([k]) => k !== "total")
      .map(([k, v]) => `${k.replace(/_/g, " ")} ${ms(v)}`)
      .join(", ");
    const rows = [
      ["Ratio", a.ratio.toFixed(2) + "×"],
      ["Tokens", `${a.original_tokens} → ${a.compressed_tokens}`],
      ["Tokens saved", `${saved} (${Math.round((100 * saved) / Math.max(a.original_tokens, 1))}%)`],
      ["Method", a.method],
      ["Time", ms(a.timings_ms.total || 0) + (stages ? ` (${stages})` : "")],
    ];
    const summary = $("summary");
    summary.replaceChildren();
    rows.forEach(([k, v]) => {
      const row = el("div");
      row.append(el("dt", k), el("dd", v));
      summary.append(row);
    });
    $("skipped").hidden = !a.skipped;
    $("skipped").textContent = a.skipped ? `Returned unchanged (skipped: ${a.skipped_reason}).` : "";
    $("compressed").textContent = a.compressed_prompt;
    $("copy-status").textContent = "";
    drawLabels(sent, a.contexts);
    drawTable(a.contexts);
    $("result").hidden = false;
  }

  // Kept words' scores, cut into SHADES equal-count bands so the shading shows rank, whatever the scale.
  function shader(contexts) {
    const scores = [];
    contexts.forEach((c) => (c.labels || []).forEach((s) => s.kept && s.score !== null && scores.push(s.score)));
    scores.sort((x, y) => x - y);
    return (score) => {
      if (score === null || !scores.length) return "s" + (SHADES - 1);
      let lo = 0;
      let hi = scores.length;
      while (lo < hi) {
        const mid = (lo + hi) >> 1;
        if (scores[mid] < score) lo = mid + 1;
        else hi = mid;
      }
      return "s" + Math.min(SHADES - 1, Math.floor((lo / scores.length) * SHADES));
    };
  }

  function drawLabels(sent, contexts) {
    const box = $("labels");
    box.replaceChildren();
    const shade = shader(contexts);
    contexts.forEach((c) => {
      const doc = el("div", undefined, "doc" + (c.kept ? "" : " dropped"));
      const state = c.kept ? (c.rank === null ? "kept" : `kept, rank ${c.rank}`) : "dropped";
      doc.append(el("h4", `Document ${c.index + 1} (${state})`));
      const text = el("p");
      (c.labels || [{ text: sent.context[c.index], kept: c.kept, score: null }]).forEach((span) => {
        // the whitespace before a word stays outside the mark, so only words are struck or shaded
        const m = /^(\s*)([\s\S]*)$/.exec(span.text);
        if (m[1]) text.append(document.createTextNode(m[1]));
        if (!m[2]) return;
        if (span.kept) {
          const word = el("span", m[2], shade(span.score));
          if (span.score !== null) word.title = "score " + span.score;
          text.append(word);
        } else {
          text.append(el("del", m[2]));
        }
      });
      doc.append(text);
      box.append(doc);
    });
  }

  function drawTable(contexts) {
    const body = $("doc-table").querySelector("tbody");
    body.replaceChildren();
    contexts.forEach((c) => {
      const tr = el("tr");
      const th = el("th", String(c.index + 1));
      th.scope = "row";
      tr.append(
        th,
        el("td", c.kept ? "yes" : "no"),
        el("td", c.rank === null ? "–" : String(c.rank)),
        el("td", c.score === null || c.score === undefined ? "–" : c.score.toFixed(3)),
        el("td", String(c.original_tokens)),
        el("td", String(c.compressed_tokens)),
      );
      body.append(tr);
    });
  }

  async function copy() {
    const text = $("compressed").textContent;
    try {
      await navigator.clipboard.writeText(text);
      $("copy-status").textContent = "Copied.";
    } catch (e) {
      const range = document.createRange(); // no clipboard access: select it for Ctrl+C
      range.selectNodeContents($("compressed"));
      const sel = window.getSelection();
      sel.removeAllRanges();
      sel.addRange(range);
      $("copy-status").textContent = "Selected: press Ctrl+C to copy.";
    }
  }

  document.addEventListener("DOMContentLoaded", () => {
    setDocuments([""]);
    $("add-document").addEventListener("click", () => addDocument("", true));
    $("load-example").addEventListener("click", loadExample);
    $("budget-rate").addEventListener("change", budgetChanged);
    $("budget-target").addEventListener("change", budgetChanged);
    $("form").addEventListener("submit", compress);
    $("copy").addEventListener("click", copy);
    loadExamples();
  });
})();
