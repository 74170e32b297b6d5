// The status bar: connection state, frames sent and dropped, server queue, lag behind live,
// events, captions pending, and the camera's state when the server pulls this stream from a URL.
// Other panes report through the count* functions; the server's "status" message fills in the
// rest.

import { $ } from "./dom.js";
import { on } from "./bus.js";

const ui = {
  conn: $("st-conn"), sent: $("st-sent"), dropped: $("st-dropped"), queue: $("st-queue"),
  lag: $("st-lag"), events: $("st-events"), pending: $("st-pending"),
  source: $("st-source"), sourceWrap: $("st-source-wrap"),
};

const counts = {
  framesSent: 0,
  localDropped: 0,
  serverDropped: 0, // this socket's server count (cumulative per session)
  serverDroppedBase: 0, // counts of earlier sockets
  localEvents: 0,
  serverEvents: null,
  pendingCaptions: 0,
};

export function setConn(text, cls) {
  ui.conn.textContent = text;
  ui.conn.className = `v ${cls}`;
  ui.conn.dataset.state = cls.replace("conn-", "");
}

export function renderCounters() {
  ui.sent.textContent = String(counts.framesSent);
  const server = counts.serverDroppedBase + counts.serverDropped;
  ui.dropped.textContent = String(counts.localDropped + server);
  ui.dropped.title = `browser ${counts.localDropped} + server ${server}`;
  ui.events.textContent = String(counts.serverEvents ?? counts.localEvents);
  ui.pending.textContent = String(counts.pendingCaptions);
}

export function countSent() {
  counts.framesSent += 1;
  renderCounters();
}

export function countLocalDrop() {
  counts.localDropped += 1;
  renderCounters();
}

// Events on the live timeline, shown until the server's own count arrives.
export function countLocalEvent() {
  counts.localEvents += 1;
  renderCounters();
}

export function resetLocalEvents() {
  counts.localEvents = 0;
  renderCounters();
}

function onStatus(msg) {
  if (typeof msg.frames_dropped === "number") counts.serverDropped = msg.frames_dropped;
  if (typeof msg.events === "number") counts.serverEvents = msg.events;
  if (typeof msg.captions_pending === "number") counts.pendingCaptions = msg.captions_pending;
  ui.queue.textContent = typeof msg.queue_depth === "number" ? String(msg.queue_depth) : "–";
  const lag = msg.lag_s;
  if (typeof lag === "number" && Number.isFinite(lag)) {
    ui.lag.textContent = `${lag.toFixed(2)} s`;
    ui.lag.dataset.lag = String(lag);
    ui.lag.classList.toggle("bad", lag >= 1);
    const p95 = typeof msg.lag_p95_s === "number" ? ` (p95 ${msg.lag_p95_s.toFixed(2)} s)` : "";
    ui.lag.title = `behind live${p95}`;
  } else {
    ui.lag.textContent = "–";
    delete ui.lag.dataset.lag;
    ui.lag.classList.remove("bad");
  }
  renderSource(msg.source);
  renderCounters();
}

// A pulled stream's camera: connecting / live / reconnecting / failed, the last error on hover.
function renderSource(source) {
  ui.sourceWrap.hidden = !source;
  if (!source) return;
  ui.source.textContent = String(source.state);
  ui.source.dataset.state = String(source.state);
  ui.source.classList.toggle("bad", source.state !== "live");
  ui.source.title = source.last_error ? `${source.source}: ${source.last_error}` : source.source;
}

on("status", onStatus);
on("socket.open", () => {
  // The server counts drops per socket; keep earlier sockets' drops in the total.
  counts.serverDroppedBase += counts.serverDropped;
  counts.serverDropped = 0;
});
on("socket.close", () => {
  ui.queue.textContent = "–";
  ui.lag.textContent = "–";
  ui.lag.classList.remove("bad");
});
renderCounters();
