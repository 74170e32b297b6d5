// The live timeline: one card per event slot (time span, thumbnail, labels, why the boundary
// fired, the caption as it streams in), newest first, at most MAX_CARDS. A merged event updates
// its slot's card. Other panes jump to a card with focusEvent.

import { $, el, fmtSpan, fmtTime, labelText, num, toast } from "./dom.js";
import { on } from "./bus.js";
import { frameBefore, seekTo } from "./capture.js";
import { addPoint, clearPlot } from "./plot.js";
import { generating } from "./settings.js";
import { countLocalEvent, resetLocalEvents } from "./status.js";

const MAX_CARDS = 200; // event cards kept in the DOM (oldest removed)

const list = $("cards");
const cards = new Map(); // event id (string) -> card record
let highlighted = null;

function boundaryText(b) {
  if (!b) return "";
  const s = b.scores;
  const reason = b.reason || "boundary";
  if (s && typeof s.fused === "number") {
    return `${reason}: fused ${num(s.fused)} vs τ ${num(b.threshold)} ` +
      `(sem ${num(s.semantic_norm)}, mot ${num(s.motion_norm)}, pred ${num(s.predictive_norm)})`;
  }
  return typeof b.threshold === "number" ? `${reason} (τ ${num(b.threshold)})` : reason;
}

function makeCard(id) {
  const rec = {
    id,
    li: el("li", { className: "card", id: `event-${id}`, tabindex: "-1", dataset: { eventId: id } }),
    title: el("span", { className: "ev-id" }),
    span: el("span", { className: "ev-span" }),
    merged: el("span", { className: "badge merged", text: "merged", hidden: "" }),
    img: el("img", { className: "thumb", alt: "", width: "160", height: "90" }),
    labels: el("p", { className: "labels" }),
    why: el("p", { className: "why" }),
    caption: el("p", { className: "caption pending" }),
    latency: el("span", { className: "latency" }),
    thumbUrl: null,
    captionDone: false,
    start: null,
    end: null,
  };
  rec.img.hidden = true;
  rec.li.append(
    rec.img,
    el("div", { className: "card-body" },
      el("div", { className: "card-head" }, rec.title, rec.span, rec.merged, rec.latency),
      rec.labels, rec.caption, rec.why),
  );
  rec.title.textContent = `#${id}`;
  rec.li.addEventListener("click", () => {
    highlight(rec);
    seekTo(rec.start);
  });
  return rec;
}

function dropCard(rec) {
  if (rec.thumbUrl) URL.revokeObjectURL(rec.thumbUrl);
  rec.li.remove();
  cards.delete(rec.id);
  if (highlighted === rec) highlighted = null;
}

function onBoundary(msg) {
  const id = String(msg.event_id);
  let rec = cards.get(id);
  if (!rec) {
    rec = makeCard(id);
    cards.set(id, rec);
    list.prepend(rec.li);
    countLocalEvent();
    while (cards.size > MAX_CARDS) {
      dropCard(cards.values().next().value); // Map keeps insertion order: oldest first
    }
  }
  rec.start = msg.start;
  rec.end = msg.end;
  rec.span.textContent = fmtSpan(msg);
  rec.merged.hidden = !msg.merged;
  rec.li.classList.toggle("is-merged", Boolean(msg.merged));
  rec.labels.textContent = labelText(msg.labels);
  const b = msg.boundary || null;
  rec.why.textContent = boundaryText(b);
  if (generating() && !rec.captionDone) {
    rec.caption.textContent = "captioning…";
    rec.caption.classList.add("pending");
  }
  const bt = b && typeof b.t === "number" ? b.t : msg.end;
  const frame = frameBefore(bt);
  if (frame) {
    if (rec.thumbUrl) URL.revokeObjectURL(rec.thumbUrl);
    rec.thumbUrl = URL.createObjectURL(frame.blob);
    rec.img.src = rec.thumbUrl;
    rec.img.alt = `frame at ${fmtTime(frame.t)}`;
    rec.img.hidden = false;
  }
  if (b) {
    const fused = b.scores && typeof b.scores.fused === "number" ? b.scores.fused : null;
    const thr = typeof b.threshold === "number" ? b.threshold : null;
    if (fused !== null || thr !== null) addPoint(typeof b.t === "number" ? b.t : msg.end, fused, thr);
  }
}

function onCaptionDelta(msg) {
  const rec = cards.get(String(msg.event_id));
  if (!rec) return;
  if (rec.caption.classList.contains("pending") || rec.captionDone) {
    rec.caption.textContent = "";
    rec.caption.classList.remove("pending");
    rec.captionDone = false;
  }
  rec.caption.textContent += msg.delta ?? "";
}

function onCaptionDone(msg) {
  const rec = cards.get(String(msg.event_id));
  if (!rec) return;
  rec.caption.textContent = msg.caption ?? rec.caption.textContent;
  rec.caption.classList.remove("pending");
  rec.caption.classList.add("done");
  rec.captionDone = true;
  rec.li.classList.add("captioned");
  if (typeof msg.latency_s === "number") rec.latency.textContent = `${msg.latency_s.toFixed(2)} s`;
  rec.latency.title = "caption latency";
}

function highlight(rec) {
  if (highlighted && highlighted !== rec) highlighted.li.classList.remove("highlight");
  highlighted = rec;
  rec.li.classList.remove("highlight");
  void rec.li.offsetWidth; // restart the flash animation
  rec.li.classList.add("highlight");
}

// Scroll to and flash event `id`'s card (a citation or search result), and seek the file there.
export function focusEvent(id, start) {
  const rec = cards.get(String(id));
  if (rec) {
    rec.li.scrollIntoView({ behavior: "smooth", block: "center" });
    highlight(rec);
    rec.li.focus({ preventScroll: true });
  } else {
    toast(`event #${id} is not in the live timeline`, "info", 4000);
  }
  seekTo(typeof start === "number" ? start : rec?.start);
}

function clearTimeline() {
  for (const rec of [...cards.values()]) dropCard(rec);
  resetLocalEvents();
  clearPlot();
}

on("event.boundary", onBoundary);
on("event.caption.delta", onCaptionDelta);
on("event.caption.done", onCaptionDone);
$("clear-btn").addEventListener("click", clearTimeline);
