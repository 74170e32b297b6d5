// Questions and search. A question goes over the WebSocket when connected (the answer streams
// as response.delta ... response.done) and over REST otherwise; the answer ends with citation
// chips that jump to their cards. Search lists a stream's past events matching some text.

import { $, el, fmtSpan, labelText } from "./dom.js";
import { on } from "./bus.js";
import { send } from "./connection.js";
import { authHeaders, streamId } from "./settings.js";
import { focusEvent } from "./timeline.js";

const ui = {
  askForm: $("ask-form"), question: $("question"), ask: $("ask-btn"),
  answerText: $("answer-text"), answerMeta: $("answer-meta"), citations: $("citations"),
  searchForm: $("search-form"), searchQ: $("search-q"), results: $("search-results"),
};
let query = null; // {id, text} of the question being answered
let queryN = 0;

// ---------- questions ----------

function resetAnswer(text) {
  ui.answerText.textContent = "";
  ui.answerMeta.textContent = text;
  ui.answerMeta.classList.remove("bad");
  ui.citations.replaceChildren();
}

function renderCitations(citations) {
  ui.citations.replaceChildren();
  for (const c of citations || []) {
    const chip = el(
      "button",
      { type: "button", className: "chip", title: c.caption || "", dataset: { eventId: String(c.id) } },
      `[#${c.id}] ${fmtSpan(c, 0, "–")}`,
    );
    chip.addEventListener("click", () => focusEvent(c.id, c.start));
    ui.citations.append(chip);
  }
}

function finishAnswer(ans) {
  ui.answerText.textContent = ans.text ?? ui.answerText.textContent;
  const meta = [];
  if (ans.intent) meta.push(`intent: ${ans.intent}`);
  if (typeof ans.grounded === "boolean") meta.push(ans.grounded ? "grounded" : "not grounded");
  const n = (ans.citations || []).length;
  meta.push(`${n} citation${n === 1 ? "" : "s"}`);
  ui.answerMeta.textContent = meta.join(" · ");
  renderCitations(ans.citations);
  ui.ask.disabled = false;
}

function failAnswer(text) {
  ui.answerMeta.textContent = text;
  ui.answerMeta.classList.add("bad");
  ui.ask.disabled = false;
}

function onResponseDelta(msg) {
  if (!query || msg.id !== query.id) return;
  if (ui.answerMeta.textContent === "thinking…") ui.answerMeta.textContent = "answering…";
  ui.answerText.textContent += msg.delta ?? "";
}

function onResponseDone(msg) {
  if (!query || msg.id !== query.id) return;
  finishAnswer(msg);
}

function onError(msg) {
  if (msg.id && query && msg.id === query.id) failAnswer(`${msg.code || "error"}: ${msg.message || ""}`);
}

async function ask(text) {
  queryN += 1;
  const id = `q${queryN}`;
  query = { id, text };
  resetAnswer("thinking…");
  ui.ask.disabled = true;
  setTimeout(() => { ui.ask.disabled = false; }, 3000); // never lock the box for long
  if (send({ type: "query", id, text, t0: null, t1: null })) return;
  // Not connected: ask over REST instead.
  try {
    const res = await fetch("/v1/query", {
      method: "POST",
      headers: { "Content-Type": "application/json", ...authHeaders() },
      body: JSON.stringify({ text, stream: streamId() || undefined }),
    });
    const body = await res.json().catch(() => ({}));
    if (query?.id !== id) return;
    if (!res.ok) throw new Error(body?.error?.message || `HTTP ${res.status}`);
    finishAnswer(body);
  } catch (e) {
    failAnswer(`query failed: ${e.message}`);
  }
}

// ---------- search ----------

async function search(q) {
  const id = streamId();
  const url = `/v1/streams/${encodeURIComponent(id)}/events?q=${encodeURIComponent(q)}&limit=20`;
  ui.results.replaceChildren(el("li", { className: "muted", text: "searching…" }));
  try {
    const res = await fetch(url, { headers: authHeaders() });
    const body = await res.json().catch(() => ({}));
    if (!res.ok) throw new Error(body?.error?.message || `HTTP ${res.status}`);
    const events = Array.isArray(body.events) ? body.events : [];
    ui.results.replaceChildren();
    if (!events.length) {
      ui.results.append(el("li", { className: "muted", text: "no matching events" }));
      return;
    }
    for (const ev of events) {
      const eid = ev.id ?? ev.event_id;
      const desc = ev.caption || labelText(ev.labels) || "";
      const row = el(
        "button",
        { type: "button", className: "result", dataset: { eventId: String(eid) } },
        el("span", { className: "ev-id", text: `#${eid}` }),
        el("span", { className: "ev-span", text: fmtSpan(ev) }),
        el("span", { className: "desc", text: desc }),
      );
      row.addEventListener("click", () => focusEvent(eid, ev.start));
      ui.results.append(el("li", null, row));
    }
  } catch (e) {
    ui.results.replaceChildren(el("li", { className: "bad", text: `search failed: ${e.message}` }));
  }
}

on("response.delta", onResponseDelta);
on("response.done", onResponseDone);
on("error", onError);
ui.askForm.addEventListener("submit", (e) => {
  e.preventDefault();
  const text = ui.question.value.trim();
  if (text) ask(text);
});
ui.searchForm.addEventListener("submit", (e) => {
  e.preventDefault();
  search(ui.searchQ.value.trim());
});
