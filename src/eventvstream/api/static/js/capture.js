// The video source (a camera, or a local video file) and frame capture: every 1/fps seconds the
// current picture, short side scaled to 320 px, goes to the server as one binary message
// (8-byte big-endian float64 time in seconds, then JPEG bytes). Recent frames are kept so the
// timeline can show the frame at each boundary. Timestamps never go back within a session.

import { $, el, toast } from "./dom.js";
import { on } from "./bus.js";
import { beforeConnect, socket } from "./connection.js";
import { fps, onFpsChange } from "./settings.js";
import { countLocalDrop, countSent } from "./status.js";

const FRAME_RING = 120; // recent frames kept for thumbnails (about a minute at 2 fps)
const MAX_BUFFERED = 1 << 20; // skip a frame while more than 1 MB waits in the socket
const TARGET_SHORT_SIDE = 320; // captured frames: short side scaled down to this (never up)

const ui = {
  srcCamera: $("src-camera"), srcFile: $("src-file"), cameraControls: $("camera-controls"),
  fileControls: $("file-controls"), cameraSelect: $("camera-select"), fileInput: $("file-input"),
  video: $("video"), capture: $("capture"),
};
const state = {
  source: "camera",
  camera: null, // MediaStream
  fileUrl: null,
  captureTimer: null,
  captureBusy: false,
  sessionStart: 0, // performance.now() at the session's start (camera timestamps)
  lastSentT: -Infinity,
  fileOffset: 0, // added to video.currentTime so timestamps never go back
  maxFrameBytes: Infinity,
  tooLargeWarned: false,
  frames: [], // ring of {t, blob}
};

// ---------- sources ----------

async function refreshCameras() {
  if (!navigator.mediaDevices?.enumerateDevices) return;
  let devices = [];
  try {
    devices = await navigator.mediaDevices.enumerateDevices();
  } catch {
    return;
  }
  const current = ui.cameraSelect.value;
  const cams = devices.filter((d) => d.kind === "videoinput");
  ui.cameraSelect.replaceChildren(el("option", { value: "" }, "default camera"));
  cams.forEach((d, i) => {
    ui.cameraSelect.append(el("option", { value: d.deviceId }, d.label || `camera ${i + 1}`));
  });
  if ([...ui.cameraSelect.options].some((o) => o.value === current)) ui.cameraSelect.value = current;
}

function stopCamera() {
  if (state.camera) {
    for (const track of state.camera.getTracks()) track.stop();
    state.camera = null;
  }
}

async function startCamera() {
  if (!navigator.mediaDevices?.getUserMedia) {
    throw new Error("this browser has no camera access (needs https or localhost)");
  }
  stopCamera();
  const deviceId = ui.cameraSelect.value;
  const video = deviceId
    ? { deviceId: { exact: deviceId } }
    : { width: { ideal: 640 }, height: { ideal: 360 } };
  const stream = await navigator.mediaDevices.getUserMedia({ video, audio: false });
  state.camera = stream;
  if (state.fileUrl) {
    ui.video.removeAttribute("src");
  }
  ui.video.srcObject = stream;
  ui.video.controls = false;
  await ui.video.play().catch(() => {});
  refreshCameras();
}

function useFile(file) {
  stopCamera();
  if (state.fileUrl) URL.revokeObjectURL(state.fileUrl);
  state.fileUrl = URL.createObjectURL(file);
  ui.video.srcObject = null;
  ui.video.src = state.fileUrl;
  ui.video.controls = true;
  // Timestamps never go back within a session: a new file continues after the last frame.
  state.fileOffset = Number.isFinite(state.lastSentT) ? state.lastSentT + 0.5 : 0;
  ui.video.play().catch(() => {});
}

async function ensureSource() {
  if (state.source === "camera") {
    if (!state.camera || !state.camera.active) await startCamera();
  } else if (!state.fileUrl) {
    throw new Error("choose a video file first");
  } else if (ui.video.paused && !ui.video.ended) {
    ui.video.play().catch(() => {});
  }
}

function selectSource(kind) {
  state.source = kind;
  ui.cameraControls.hidden = kind !== "camera";
  ui.fileControls.hidden = kind !== "file";
  if (kind === "camera") {
    if (socket()) {
      // Camera timestamps continue after whatever the file sent.
      if (Number.isFinite(state.lastSentT)) {
        state.sessionStart = performance.now() - (state.lastSentT + 0.5) * 1000;
      }
      startCamera().catch((e) => toast(`camera: ${e.message}`));
    }
  } else {
    stopCamera();
    ui.video.srcObject = null;
    if (state.fileUrl) {
      ui.video.src = state.fileUrl;
      ui.video.controls = true;
    }
  }
}

// Show the file at session time `start` (a clicked event); cameras cannot seek.
export function seekTo(start) {
  if (state.source !== "file" || !state.fileUrl || typeof start !== "number") return;
  const t = start - state.fileOffset;
  if (Number.isFinite(t) && t >= 0 && (!ui.video.duration || t <= ui.video.duration)) {
    ui.video.currentTime = t;
  }
}

// ---------- frame capture ----------

function frameTime() {
  if (state.source === "file") return state.fileOffset + ui.video.currentTime;
  return (performance.now() - state.sessionStart) / 1000;
}

function rememberFrame(t, blob) {
  state.frames.push({ t, blob });
  if (state.frames.length > FRAME_RING) state.frames.shift();
}

// The last sent frame at or before session time `t` ({t, blob}), for a boundary's thumbnail.
export function frameBefore(t) {
  let best = null;
  for (const f of state.frames) {
    if (f.t <= t + 1e-6) best = f;
    else break;
  }
  return best || state.frames[0] || null;
}

function captureTick() {
  const ws = socket();
  if (!ws || ws.readyState !== WebSocket.OPEN || state.captureBusy) return;
  const v = ui.video;
  if (v.readyState < 2 || !v.videoWidth || !v.videoHeight) return;
  if (state.source === "file" && (v.paused || v.ended)) return;
  const t = frameTime();
  if (!(t > state.lastSentT)) return; // a paused or re-wound file: nothing new to send
  if (ws.bufferedAmount > MAX_BUFFERED) {
    countLocalDrop();
    return;
  }
  const scale = Math.min(1, TARGET_SHORT_SIDE / Math.min(v.videoWidth, v.videoHeight));
  const w = Math.max(2, Math.round(v.videoWidth * scale));
  const h = Math.max(2, Math.round(v.videoHeight * scale));
  const canvas = ui.capture;
  if (canvas.width !== w || canvas.height !== h) {
    canvas.width = w;
    canvas.height = h;
  }
  canvas.getContext("2d").drawImage(v, 0, 0, w, h);
  state.captureBusy = true;
  canvas.toBlob((blob) => {
    if (!blob) {
      state.captureBusy = false;
      return;
    }
    blob.arrayBuffer().then((jpeg) => {
      state.captureBusy = false;
      if (ws !== socket() || ws.readyState !== WebSocket.OPEN) return;
      if (jpeg.byteLength + 8 > state.maxFrameBytes) {
        if (!state.tooLargeWarned) toast("frame larger than the server's limit: skipped");
        state.tooLargeWarned = true;
        countLocalDrop();
        return;
      }
      if (ws.bufferedAmount > MAX_BUFFERED) {
        countLocalDrop();
        return;
      }
      const msg = new Uint8Array(8 + jpeg.byteLength);
      new DataView(msg.buffer).setFloat64(0, t, false); // big-endian float64 seconds
      msg.set(new Uint8Array(jpeg), 8);
      ws.send(msg.buffer);
      state.lastSentT = t;
      rememberFrame(t, blob);
      countSent();
    }, () => {
      state.captureBusy = false;
    });
  }, "image/jpeg", 0.8);
}

function startCapture() {
  stopCapture();
  state.captureTimer = setInterval(captureTick, 1000 / fps());
}

function stopCapture() {
  if (state.captureTimer) clearInterval(state.captureTimer);
  state.captureTimer = null;
  state.captureBusy = false;
}

// ---------- wiring ----------

beforeConnect(ensureSource);
on("session.start", () => {
  state.sessionStart = performance.now();
  state.lastSentT = -Infinity;
  state.frames = [];
  state.fileOffset = 0; // file frames carry the video's own currentTime
  state.tooLargeWarned = false;
});
on("session.ready", (msg) => {
  state.maxFrameBytes = Number(msg.limits?.max_frame_bytes) || Infinity;
});
on("socket.open", startCapture);
on("socket.close", stopCapture);
onFpsChange(() => {
  if (state.captureTimer) startCapture();
});
ui.srcCamera.addEventListener("change", () => selectSource("camera"));
ui.srcFile.addEventListener("change", () => selectSource("file"));
ui.cameraSelect.addEventListener("change", () => {
  if (state.source === "camera" && (state.camera || socket())) {
    startCamera().catch((e) => toast(`camera: ${e.message}`));
  }
});
ui.fileInput.addEventListener("change", () => {
  const file = ui.fileInput.files && ui.fileInput.files[0];
  if (file) useFile(file);
});
if (navigator.mediaDevices?.addEventListener) {
  navigator.mediaDevices.addEventListener("devicechange", refreshCameras);
}
refreshCameras();
