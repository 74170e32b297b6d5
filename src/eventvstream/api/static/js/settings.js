// The connection form's values: API key (kept in sessionStorage), stream id, fps, captions on or
// off, threshold τ₀. Read where needed; nothing here talks to the server.

import { $ } from "./dom.js";

const KEY_STORAGE = "evs.apiKey";
const ui = {
  key: $("api-key"), stream: $("stream-id"), fps: $("fps"), generate: $("generate"),
  tau0: $("tau0"), tau0Val: $("tau0-val"),
};

export function apiKey() {
  return ui.key.value.trim();
}

export function streamId() {
  return ui.stream.value.trim();
}

export function authHeaders() {
  const key = apiKey();
  return key ? { Authorization: `Bearer ${key}` } : {};
}

export function fps() {
  const f = Number(ui.fps.value);
  return Number.isFinite(f) && f > 0 ? Math.min(f, 30) : 2;
}

export function generating() {
  return ui.generate.checked;
}

export function sessionConfig(resume) {
  return {
    type: "session.config",
    fps: fps(),
    generate: generating(),
    events: { tau0: Number(ui.tau0.value) },
    resume,
  };
}

// Key and stream id are fixed while connected (a session belongs to one of each).
export function lockIdentity(locked) {
  ui.stream.disabled = locked;
  ui.key.disabled = locked;
}

// `fn` runs when a setting the live session uses changes (fps, captions, τ₀).
export function onSessionSettingChange(fn) {
  ui.tau0.addEventListener("change", fn);
  ui.generate.addEventListener("change", fn);
  ui.fps.addEventListener("change", fn);
}

export function onFpsChange(fn) {
  ui.fps.addEventListener("change", fn);
}

try {
  ui.key.value = sessionStorage.getItem(KEY_STORAGE) || "";
} catch { /* storage may be disabled */ }
ui.key.addEventListener("input", () => {
  try {
    const k = apiKey();
    if (k) sessionStorage.setItem(KEY_STORAGE, k);
    else sessionStorage.removeItem(KEY_STORAGE);
  } catch { /* ignore */ }
});
ui.tau0.addEventListener("input", () => {
  ui.tau0Val.textContent = Number(ui.tau0.value).toFixed(1);
});
