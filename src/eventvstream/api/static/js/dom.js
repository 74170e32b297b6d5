// Small DOM helpers shared by every pane: element lookup and creation, number and time
// formatting, and toasts. Text from the server is only ever inserted with textContent (el's
// "text" prop or text nodes), never as HTML.

export const $ = (id) => document.getElementById(id);

export function el(tag, props, ...children) {
  const node = document.createElement(tag);
  if (props) {
    for (const [k, v] of Object.entries(props)) {
      if (v === undefined || v === null) continue;
      if (k === "className") node.className = v;
      else if (k === "text") node.textContent = v;
      else if (k === "dataset") Object.assign(node.dataset, v);
      else if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
      else node.setAttribute(k, v);
    }
  }
  for (const c of children) {
    if (c === null || c === undefined) continue;
    node.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return node;
}

// m:ss.s (digits = 1) or m:ss (digits = 0)
export function fmtTime(t, digits = 1) {
  if (typeof t !== "number" || !Number.isFinite(t)) return "?";
  const scale = 10 ** digits;
  const r = Math.round(Math.max(0, t) * scale) / scale;
  const m = Math.floor(r / 60);
  const s = (r - m * 60).toFixed(digits);
  return `${m}:${s.padStart(digits ? 3 + digits : 2, "0")}`;
}

// A time of day in the browser's zone: "10:31:05", with the zone's name when asked ("10:31:05 UTC").
export function fmtClock(unix, zone = false) {
  // h23, not hour12: false (which some browsers print as "24:05:00" after midnight)
  const opts = { hour: "2-digit", minute: "2-digit", second: "2-digit", hourCycle: "h23" };
  if (zone) opts.timeZoneName = "short";
  return new Date(unix * 1000).toLocaleTimeString([], opts);
}

// An event's span as its user reads it: a live stream's events carry wall_start/wall_end (Unix
// seconds) and show the clock, as the answers do; a file's show stream time (m:ss.s).
export function fmtSpan(e, digits = 1, sep = " – ") {
  if (e && typeof e.wall_start === "number" && typeof e.wall_end === "number") {
    return `${fmtClock(e.wall_start)}${sep}${fmtClock(e.wall_end, true)}`;
  }
  return `${fmtTime(e?.start, digits)}${sep}${fmtTime(e?.end, digits)}`;
}

export function num(x, digits = 2) {
  return typeof x === "number" && Number.isFinite(x) ? x.toFixed(digits) : "–";
}

// An event's labels, [[name, p], ...], as "cat 91% · dog 4%".
export function labelText(labels) {
  if (!Array.isArray(labels)) return "";
  return labels
    .map((l) => (Array.isArray(l) ? `${l[0]} ${Math.round(Number(l[1]) * 100)}%` : String(l)))
    .join(" · ");
}

const toasts = $("toasts");

export function toast(message, kind = "error", ttlMs = 10000) {
  // Repeated identical messages (e.g. a burst of bad frames) are folded into one toast.
  for (const t of toasts.children) {
    if (t.dataset.message === message) {
      const n = Number(t.dataset.count || "1") + 1;
      t.dataset.count = String(n);
      t.querySelector(".toast-count").textContent = ` (×${n})`;
      return;
    }
  }
  const close = el("button", { type: "button", className: "toast-close", "aria-label": "Dismiss" }, "×");
  const node = el(
    "div",
    { className: `toast ${kind}`, role: kind === "error" ? "alert" : "status", dataset: { message } },
    el("span", { className: "toast-text", text: message }),
    el("span", { className: "toast-count" }),
    close,
  );
  close.addEventListener("click", () => node.remove());
  toasts.append(node);
  while (toasts.children.length > 5) toasts.firstElementChild.remove();
  if (ttlMs > 0) setTimeout(() => node.remove(), ttlMs);
}
