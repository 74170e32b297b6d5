// Alerts: a watch editor and an alerts pane (docs/alerts.md).
//
// Alerts arrive as server-sent events from /v1/alerts/stream, read with fetch() because
// EventSource cannot send an Authorization header; after a drop it reconnects with
// ?after=<last alert id>, so nothing is missed. An "alert" on the live WebSocket (the bus) shows
// too; cards are deduplicated by alert id. Keyframes need the key as well, so they are fetched
// and shown as blob URLs. Server text only ever goes through textContent.

import { on } from "./bus.js";
import { $, el, fmtSpan } from "./dom.js";
import { authHeaders, streamId } from "./settings.js";

const MAX_ALERTS = 50;

function headers(json = false) {
  return json ? { ...authHeaders(), "Content-Type": "application/json" } : authHeaders();
}

async function api(method, path, body) {
  const res = await fetch(path, {
    method,
    headers: headers(body !== undefined),
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  if (res.status === 204) return null;
  const data = await res.json().catch(() => ({}));
  if (!res.ok) throw new Error(data?.error?.message || `HTTP ${res.status}`);
  return data;
}

function buildPanel() {
  const panel = el("section", { className: "panel alerts", id: "alerts-panel", "aria-labelledby": "alerts-h" });
  panel.append(
    el("h2", { id: "alerts-h", text: "Watches" }),
    el(
      "form",
      { id: "watch-form", className: "form-grid", autocomplete: "off" },
      el("label", { for: "watch-text", text: "Tell me when" }),
      el("input", { id: "watch-text", type: "text", placeholder: "a person at the door", required: "", maxlength: "500" }),
      el("label", { for: "watch-scope", text: "On" }),
      el(
        "select",
        { id: "watch-scope" },
        el("option", { value: "stream", text: "this stream" }),
        el("option", { value: "all", text: "all my streams" }),
      ),
      el("label", { for: "watch-webhook", text: "Webhook URL (optional)" }),
      el("input", { id: "watch-webhook", type: "url", placeholder: "where to POST alerts", spellcheck: "false" }),
      el("label", { for: "watch-threshold", text: "Threshold (optional)" }),
      el("input", { id: "watch-threshold", type: "number", min: "-1", max: "1", step: "0.05", placeholder: "server default" }),
      el("label", { for: "watch-verify", text: "Verify with the decoder" }),
      el("input", { id: "watch-verify", type: "checkbox" }),
      el("div", { className: "buttons" }, el("button", { id: "watch-add", type: "submit", text: "Add watch" })),
    ),
    el("p", { id: "watch-msg", className: "conn-msg", "aria-live": "polite" }),
    el("ul", { id: "watch-list", className: "results" }),
    el(
      "div",
      { className: "panel-head" },
      el("h2", { id: "alert-list-h", text: "Alerts" }),
      el("span", { id: "alert-conn", className: "hint", text: "not connected" }),
    ),
    el("ol", { id: "alert-list", className: "cards", "aria-live": "polite", "aria-labelledby": "alert-list-h" }),
  );
  (document.querySelector("main.layout") || document.body).append(panel);
}

// -- watches ---------------------------------------------------------------------------------------
async function refreshWatches() {
  const list = $("watch-list");
  try {
    const { watches } = await api("GET", "/v1/watches");
    list.replaceChildren(...watches.map(watchItem));
    if (!watches.length) list.append(el("li", { className: "hint", text: "no watches yet" }));
  } catch (err) {
    list.replaceChildren(el("li", { className: "hint", text: `watches: ${err.message}` }));
  }
}

function watchItem(w) {
  const scope = w.stream ? `on ${w.stream}` : "on all streams";
  const channels = w.effective.channels.length ? w.effective.channels.join(", ") : "live only";
  const toggle = el("input", { type: "checkbox", title: "enabled" });
  toggle.checked = w.enabled;
  toggle.addEventListener("change", async () => {
    try {
      await api("PATCH", `/v1/watches/${encodeURIComponent(w.id)}`, { enabled: toggle.checked });
    } catch (err) {
      toggle.checked = !toggle.checked;
      $("watch-msg").textContent = err.message;
    }
  });
  const remove = el("button", { type: "button", className: "small", text: "Delete" });
  remove.addEventListener("click", async () => {
    try {
      await api("DELETE", `/v1/watches/${encodeURIComponent(w.id)}`);
      refreshWatches();
    } catch (err) {
      $("watch-msg").textContent = err.message;
    }
  });
  const detail = `${w.condition} · ${scope} · threshold ${w.effective.threshold} · ${channels}`;
  return el(
    "li",
    { className: "watch", dataset: { id: w.id } },
    toggle,
    el("strong", { text: ` ${w.text} ` }),
    el("span", { className: "hint", text: detail }),
    remove,
  );
}

async function addWatch(event) {
  event.preventDefault();
  const msg = $("watch-msg");
  const body = { text: $("watch-text").value.trim() };
  if ($("watch-scope").value === "stream") body.stream = streamId();
  const url = $("watch-webhook").value.trim();
  if (url) body.webhook = { url };
  const threshold = $("watch-threshold").value;
  if (threshold !== "") body.threshold = Number(threshold);
  if ($("watch-verify").checked) body.verify = true;
  try {
    const created = await api("POST", "/v1/watches", body);
    msg.textContent = created.webhook?.secret
      ? `Watch added. Webhook secret (shown once): ${created.webhook.secret}`
      : "Watch added.";
    $("watch-text").value = "";
    refreshWatches();
  } catch (err) {
    msg.textContent = err.message;
  }
}

// -- alerts (server-sent events over fetch) ---------------------------------------------------------
let lastId = null;
let controller = null;

async function keyframe(img, url) {
  try {
    const res = await fetch(url, { headers: headers() });
    if (res.ok) img.src = URL.createObjectURL(await res.blob());
  } catch {
    /* no picture: the card still says what happened */
  }
}

const shown = new Set();

function showAlert(a) {
  if (shown.has(a.alert_id)) return;
  shown.add(a.alert_id);
  const e = a.event;
  const why = a.why;
  const score = typeof why.score === "number" ? why.score.toFixed(2) : "–";
  const verified = why.verified === true ? " · verified" : why.verified === false ? " · not verified" : "";
  const img = el("img", { className: "thumb", alt: `keyframe of event ${e.id}`, width: "96" });
  if (e.keyframe_url) keyframe(img, e.keyframe_url);
  else img.hidden = true;
  const card = el(
    "li",
    { className: "card alert-card", dataset: { alertId: String(a.alert_id) } },
    img,
    el("strong", { text: a.watch.text }),
    el("span", { text: ` — ${e.stream} ${fmtSpan(e, 1, "–")} (#${e.id})` }),
    el("p", { text: e.caption || e.labels.join(", ") }),
    el("p", { className: "hint", text: `${why.condition}: ${score} ≥ ${why.threshold}${verified} · ${why.phase}` }),
  );
  const list = $("alert-list");
  list.prepend(card);
  while (list.children.length > MAX_ALERTS) list.lastChild.remove();
}

async function follow() {
  controller?.abort();
  const mine = (controller = new AbortController());
  let delay = 1000;
  while (!mine.signal.aborted) {
    const after = lastId === null ? "" : `?after=${lastId}`;
    try {
      const res = await fetch(`/v1/alerts/stream${after}`, { headers: headers(), signal: mine.signal });
      if (!res.ok) throw new Error(`HTTP ${res.status}`);
      $("alert-conn").textContent = "live";
      delay = 1000;
      await readEvents(res.body, mine.signal);
    } catch (err) {
      if (mine.signal.aborted) return;
      $("alert-conn").textContent = `reconnecting (${err.message || "closed"})`;
    }
    await new Promise((r) => setTimeout(r, delay));
    delay = Math.min(delay * 2, 30000);
  }
}

async function readEvents(body, signal) {
  const reader = body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = "";
  while (!signal.aborted) {
    const { value, done } = await reader.read();
    if (done) throw new Error("closed");
    buffer += value;
    let cut;
    while ((cut = buffer.indexOf("\n\n")) >= 0) {
      const block = buffer.slice(0, cut);
      buffer = buffer.slice(cut + 2);
      const fields = {};
      for (const line of block.split("\n")) {
        if (!line || line.startsWith(":")) continue;
        const i = line.indexOf(":");
        fields[line.slice(0, i)] = (fields[line.slice(0, i)] || "") + line.slice(i + 1).trimStart();
      }
      if (fields.event === "alert" && fields.data) {
        const alert = JSON.parse(fields.data);
        lastId = alert.alert_id;
        showAlert(alert);
      }
    }
  }
}

function start() {
  lastId = null;
  shown.clear();
  $("alert-list").replaceChildren();
  refreshWatches();
  follow();
}

buildPanel();
$("watch-form").addEventListener("submit", addWatch);
$("api-key").addEventListener("change", start);
on("alert", showAlert); // the live session's copy (deduplicated)
start();
