// The WebSocket session (docs/protocol.md): connect, session.config, keep-alive pings, and
// reconnecting with backoff after recoverable closes (resume: true). Server messages are handed
// to the bus by type; panes subscribe there. Frames are sent by capture.js through socket().

import { $, toast } from "./dom.js";
import { emit, on } from "./bus.js";
import { apiKey, authHeaders, lockIdentity, onSessionSettingChange, sessionConfig, streamId } from "./settings.js";
import { setConn } from "./status.js";

const PING_MS = 25000;

const ui = { connect: $("connect-btn"), disconnect: $("disconnect-btn"), msg: $("conn-msg") };
const state = {
  ws: null,
  want: false, // the user wants a connection (reconnect on recoverable closes)
  opened: false, // the current socket reached "open"
  reconnecting: false, // the current socket is a reconnect (session.config resume: true)
  attempt: 0,
  reconnectTimer: null,
  reconnectWhy: "",
  pingTimer: null,
};
const preparers = [];

// The current socket (open or opening), or null.
export function socket() {
  return state.ws;
}

// `fn` (may be async, may throw to refuse) runs before each Connect, e.g. to start the camera.
export function beforeConnect(fn) {
  preparers.push(fn);
}

export function send(obj) {
  const ws = state.ws;
  if (ws && ws.readyState === WebSocket.OPEN) {
    ws.send(JSON.stringify(obj));
    return true;
  }
  return false;
}

function setMsg(text) {
  ui.msg.textContent = text;
}

function setFormConnected(connected) {
  ui.connect.disabled = connected;
  ui.disconnect.disabled = !connected;
  lockIdentity(connected);
}

function openSocket() {
  const id = streamId();
  const scheme = location.protocol === "https:" ? "wss:" : "ws:";
  const url = `${scheme}//${location.host}/v1/streams/${encodeURIComponent(id)}/ws`;
  const key = apiKey();
  const protocols = key ? ["evs.v1", `evs.key.${key}`] : ["evs.v1"];
  let ws;
  try {
    ws = new WebSocket(url, protocols);
  } catch (e) {
    state.want = false;
    setConn("disconnected", "conn-error");
    setFormConnected(false);
    toast(`cannot connect: ${e.message}`);
    return;
  }
  ws.binaryType = "arraybuffer";
  state.ws = ws;
  state.opened = false;
  const resume = state.reconnecting;
  setConn(resume ? "reconnecting…" : "connecting…", "conn-pending");

  ws.addEventListener("open", () => {
    if (ws !== state.ws) return;
    state.opened = true;
    ws.send(JSON.stringify(sessionConfig(resume)));
    emit("socket.open");
    clearInterval(state.pingTimer);
    state.pingTimer = setInterval(() => send({ type: "ping" }), PING_MS);
  });
  ws.addEventListener("message", (ev) => {
    if (ws !== state.ws || typeof ev.data !== "string") return;
    let msg;
    try {
      msg = JSON.parse(ev.data);
    } catch {
      return;
    }
    try {
      if (typeof msg?.type === "string") emit(msg.type, msg);
    } catch (e) {
      // A rendering bug must not take the session down; show it once per kind.
      toast(`could not show ${msg?.type}: ${e.message}`);
    }
  });
  ws.addEventListener("close", (ev) => {
    if (ws !== state.ws) return;
    onClose(ev);
  });
}

function onClose(ev) {
  const wasOpen = state.opened;
  clearInterval(state.pingTimer);
  state.ws = null;
  state.opened = false;
  emit("socket.close");
  if (!state.want) {
    setConn("disconnected", "conn-idle");
    setFormConnected(false);
    return;
  }
  const code = ev.code;
  const reason = ev.reason ? ` (${ev.reason})` : "";
  if (code === 1008) return giveUp(`bad API key${reason}`);
  if (code === 1009) return giveUp(`frame too large${reason}`);
  if (code === 1000) return giveUp(`closed by the server${reason}`, "conn-idle");
  if (code === 1001 || code === 1012) return scheduleReconnect("server restarting, reconnecting…");
  if (code === 1013) return scheduleReconnect("server busy, retrying…");
  if (!wasOpen && state.reconnecting) {
    // A reconnect attempt that did not get through: keep saying why we are reconnecting.
    return scheduleReconnect(state.reconnectWhy || "reconnecting…");
  }
  if (!wasOpen) {
    // A refused upgrade shows up as a bare 1006; ask the REST side why.
    setConn("connecting…", "conn-pending");
    diagnoseRefusal().then(([retry, why]) => {
      if (!state.want || state.ws) return;
      if (retry) scheduleReconnect(`${why}, retrying…`);
      else giveUp(why);
    });
    return undefined;
  }
  scheduleReconnect(`connection lost (code ${code})${reason}, reconnecting…`);
}

// [retry?, message] for a WebSocket upgrade that was refused before it opened.
async function diagnoseRefusal() {
  try {
    const res = await fetch("/v1/streams", { headers: authHeaders() });
    if (res.status === 401 || res.status === 403) return [false, "bad API key"];
    if (res.status === 429) return [true, "too many sessions or requests"];
    const ready = await fetch("/readyz");
    if (ready.status === 503) return [true, "server not ready"];
    return [false, `could not connect (HTTP ${res.status})`];
  } catch {
    return [false, "could not connect: server unreachable"];
  }
}

function giveUp(message, cls = "conn-error") {
  state.want = false;
  state.reconnecting = false;
  state.attempt = 0;
  setConn(cls === "conn-error" ? "error" : "disconnected", cls);
  setMsg(message);
  setFormConnected(false);
  if (cls === "conn-error") toast(message);
}

function scheduleReconnect(message) {
  state.reconnectWhy = message;
  const delay = Math.min(30, 0.5 * 2 ** state.attempt) * (0.8 + 0.4 * Math.random());
  state.attempt += 1;
  state.reconnecting = true;
  setConn("reconnecting…", "conn-pending");
  const attempt = state.attempt > 1 ? `attempt ${state.attempt}, ` : "";
  setMsg(`${message} (${attempt}in ${delay.toFixed(1)} s)`);
  clearTimeout(state.reconnectTimer);
  state.reconnectTimer = setTimeout(() => {
    if (state.want) openSocket();
  }, delay * 1000);
}

async function connect() {
  if (state.ws) return;
  const id = streamId();
  if (!/^[A-Za-z0-9._-]{1,64}$/.test(id) || /^\.+$/.test(id)) {
    toast("stream id: 1-64 characters of A-Z a-z 0-9 . _ - (not only dots)");
    return;
  }
  try {
    for (const prepare of preparers) await prepare();
  } catch (e) {
    toast(`source: ${e.message}`);
    return;
  }
  state.want = true;
  state.reconnecting = false;
  state.attempt = 0;
  emit("session.start");
  setMsg("");
  setFormConnected(true);
  openSocket();
}

function disconnect() {
  state.want = false;
  state.reconnecting = false;
  clearTimeout(state.reconnectTimer);
  const ws = state.ws;
  if (ws) ws.close(1000, "client disconnect");
  else {
    setConn("disconnected", "conn-idle");
    setFormConnected(false);
  }
  setMsg("");
}

function onReady(msg) {
  state.attempt = 0;
  state.reconnecting = false;
  setConn("live", "conn-live");
  const cfg = msg.config || {};
  const parts = [`session ${msg.session_id ?? "?"}`];
  if (msg.resumed) parts.push("resumed");
  if (typeof msg.events_in_memory === "number") parts.push(`${msg.events_in_memory} events in memory`);
  if (typeof cfg.fps === "number") parts.push(`${cfg.fps} fps`);
  setMsg(parts.join(" · "));
}

on("session.ready", onReady);
on("error", (msg) => toast(`${msg.code || "error"}: ${msg.message || ""}`));
onSessionSettingChange(() => {
  if (state.ws && state.opened) send(sessionConfig(true));
});
$("conn-form").addEventListener("submit", (e) => {
  e.preventDefault();
  connect();
});
ui.disconnect.addEventListener("click", disconnect);
window.addEventListener("pagehide", () => {
  state.want = false;
  if (state.ws) state.ws.close(1000, "page closed");
});
