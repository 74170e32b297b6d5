// The cue plot: the fused score at each boundary against the adaptive threshold τ, for the last
// PLOT_POINTS boundaries, drawn on a canvas (redrawn once per animation frame at most).

import { $, fmtTime } from "./dom.js";

const PLOT_POINTS = 80;

const canvas = $("score-plot");
let points = []; // {t, fused, thr}
let queued = false;

// A boundary at session time `t` with its fused score and threshold (either may be null).
export function addPoint(t, fused, thr) {
  points.push({ t, fused, thr });
  if (points.length > PLOT_POINTS) points.shift();
  schedulePlot();
}

export function clearPlot() {
  points = [];
  schedulePlot();
}

function schedulePlot() {
  if (queued) return;
  queued = true;
  requestAnimationFrame(() => {
    queued = false;
    drawPlot();
  });
}

function line(ctx, pts, x, y, key) {
  ctx.beginPath();
  let started = false;
  for (const p of pts) {
    if (p[key] === null) continue;
    if (!started) ctx.moveTo(x(p.t), y(p[key]));
    else ctx.lineTo(x(p.t), y(p[key]));
    started = true;
  }
  ctx.stroke();
}

function drawPlot() {
  const dpr = window.devicePixelRatio || 1;
  const cssW = canvas.clientWidth || 600;
  const cssH = canvas.clientHeight || 120;
  if (canvas.width !== Math.round(cssW * dpr) || canvas.height !== Math.round(cssH * dpr)) {
    canvas.width = Math.round(cssW * dpr);
    canvas.height = Math.round(cssH * dpr);
  }
  const ctx = canvas.getContext("2d");
  ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
  ctx.clearRect(0, 0, cssW, cssH);
  const css = getComputedStyle(document.documentElement);
  const colFused = css.getPropertyValue("--accent").trim() || "#3b82f6";
  const colThr = css.getPropertyValue("--warn").trim() || "#f59e0b";
  const colAxis = css.getPropertyValue("--muted").trim() || "#888";
  const pts = points;
  const pad = { l: 30, r: 8, t: 8, b: 16 };
  const W = cssW - pad.l - pad.r;
  const H = cssH - pad.t - pad.b;
  ctx.strokeStyle = colAxis;
  ctx.fillStyle = colAxis;
  ctx.lineWidth = 1;
  ctx.font = "10px system-ui, sans-serif";
  ctx.beginPath();
  ctx.moveTo(pad.l, pad.t);
  ctx.lineTo(pad.l, pad.t + H);
  ctx.lineTo(pad.l + W, pad.t + H);
  ctx.stroke();
  if (!pts.length) {
    ctx.fillText("no boundaries yet", pad.l + 8, pad.t + H / 2);
    return;
  }
  const t0 = pts[0].t;
  const t1 = Math.max(pts[pts.length - 1].t, t0 + 1);
  let ymax = 0;
  for (const p of pts) ymax = Math.max(ymax, p.fused ?? 0, p.thr ?? 0);
  ymax = ymax > 0 ? ymax * 1.15 : 1;
  const x = (t) => pad.l + ((t - t0) / (t1 - t0)) * W;
  const y = (v) => pad.t + H - (v / ymax) * H;
  ctx.fillText(ymax.toFixed(1), 2, pad.t + 8);
  ctx.fillText("0", 2, pad.t + H);
  ctx.fillText(fmtTime(t0, 0), pad.l, cssH - 3);
  const endLabel = fmtTime(t1, 0);
  ctx.fillText(endLabel, pad.l + W - ctx.measureText(endLabel).width, cssH - 3);
  // threshold: a step line, dashed
  ctx.strokeStyle = colThr;
  ctx.setLineDash([4, 3]);
  line(ctx, pts, x, y, "thr");
  ctx.setLineDash([]);
  // fused score: line + dots
  ctx.strokeStyle = colFused;
  ctx.fillStyle = colFused;
  line(ctx, pts, x, y, "fused");
  for (const p of pts) {
    if (p.fused === null) continue;
    ctx.beginPath();
    ctx.arc(x(p.t), y(p.fused), 2.5, 0, Math.PI * 2);
    ctx.fill();
  }
}

window.addEventListener("resize", schedulePlot);
window.matchMedia?.("(prefers-color-scheme: dark)").addEventListener?.("change", schedulePlot);
drawPlot();
