// Event-VStream live page: camera or file -> JPEG frames over a WebSocket -> live event timeline.
// Plain browser JavaScript, no build step and no external resources. The wire protocol is the one
// in docs/protocol.md. Text that comes from the server (captions, answers, labels, errors) is only
// ever inserted with textContent, never as HTML.
"use strict";

(() => {
  const MAX_CARDS = 200; // event cards kept in the DOM (oldest removed)
  const FRAME_RING = 120; // recent frames kept for thumbnails (about a minute at 2 fps)
  const MAX_BUFFERED = 1 << 20; // skip a frame while more than 1 MB waits in the socket
  const TARGET_SHORT_SIDE = 320; // captured frames: short side scaled down to this (never up)
  const PLOT_POINTS = 80;
  const PING_MS = 25000;
  const KEY_STORAGE = "evs.apiKey";

  const $ = (id) => document.getElementById(id);
  const ui = {
    form: $("conn-form"), key: $("api-key"), stream: $("stream-id"), fps: $("fps"),
    generate: $("generate"), tau0: $("tau0"), tau0Val: $("tau0-val"),
    connect: $("connect-btn"), disconnect: $("disconnect-btn"), connMsg: $("conn-msg"),
    srcCamera: $("src-camera"), srcFile: $("src-file"), cameraControls: $("camera-controls"),
    fileControls: $("file-controls"), cameraSelect: $("camera-select"), fileInput: $("file-input"),
    video: $("video"), capture: $("capture"), cards: $("cards"), clear: $("clear-btn"),
    plot: $("score-plot"), askForm: $("ask-form"), question: $("question"), ask: $("ask-btn"),
    answerText: $("answer-text"), answerMeta: $("answer-meta"), citations: $("citations"),
    searchForm: $("search-form"), searchQ: $("search-q"), results: $("search-results"),
    toasts: $("toasts"),
    stConn: $("st-conn"), stSent: $("st-sent"), stDropped: $("st-dropped"), stQueue: $("st-queue"),
    stLag: $("st-lag"), stEvents: $("st-events"), stPending: $("st-pending"),
  };

  const state = {
    ws: null,
    want: false, // the user wants a connection (reconnect on recoverable closes)
    opened: false, // the current socket reached "open"
    reconnecting: false, // the current socket is a reconnect (session.config resume: true)
    attempt: 0,
    reconnectTimer: null,
    reconnectWhy: "",
    captureTimer: null,
    pingTimer: null,
    captureBusy: false,
    sessionStart: 0, // performance.now() at the session's start (camera timestamps)
    lastSentT: -Infinity,
    fileOffset: 0, // added to video.currentTime so timestamps never go back
    framesSent: 0,
    localDropped: 0,
    serverDropped: 0, // this socket's server count (cumulative per session)
    serverDroppedBase: 0, // counts of earlier sockets
    maxFrameBytes: Infinity,
    tooLargeWarned: false,
    frames: [], // ring of {t, blob}
    cards: new Map(), // event id (string) -> card record
    localEvents: 0,
    serverEvents: null,
    pendingCaptions: 0,
    plot: [], // {t, fused, thr}
    query: null, // {id, text}
    queryN: 0,
    highlighted: null,
    camera: null, // MediaStream
    source: "camera",
    fileUrl: null,
  };

  // ---------- small helpers ----------

  function el(tag, props, ...children) {
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
  function fmtTime(t, digits = 1) {
    if (typeof t !== "number" || !Number.isFinite(t)) return "?";
    const scale = 10 ** digits;
    const r = Math.round(Math.max(0, t) * scale) / scale;
    const m = Math.floor(r / 60);
    const s = (r - m * 60).toFixed(digits);
    return `${m}:${s.padStart(digits ? 3 + digits : 2, "0")}`;
  }

  function num(x, digits = 2) {
    return typeof x === "number" && Number.isFinite(x) ? x.toFixed(digits) : "–";
  }

  function apiKey() {
    return ui.key.value.trim();
  }

  function streamId() {
    return ui.stream.value.trim();
  }

  function authHeaders() {
    const key = apiKey();
    return key ? { Authorization: `Bearer ${key}` } : {};
  }

  function toast(message, kind = "error", ttlMs = 10000) {
    // Repeated identical messages (e.g. a burst of bad frames) are folded into one toast.
    for (const t of ui.toasts.children) {
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
    ui.toasts.append(node);
    while (ui.toasts.children.length > 5) ui.toasts.firstElementChild.remove();
    if (ttlMs > 0) setTimeout(() => node.remove(), ttlMs);
  }

  function setConn(text, cls) {
    ui.stConn.textContent = text;
    ui.stConn.className = `v ${cls}`;
    ui.stConn.dataset.state = cls.replace("conn-", "");
  }

  function setMsg(text) {
    ui.connMsg.textContent = text;
  }

  function setFormConnected(connected) {
    ui.connect.disabled = connected;
    ui.disconnect.disabled = !connected;
    ui.stream.disabled = connected;
    ui.key.disabled = connected;
  }

  // ---------- status bar ----------

  function renderCounters() {
    ui.stSent.textContent = String(state.framesSent);
    const dropped = state.localDropped + state.serverDroppedBase + state.serverDropped;
    ui.stDropped.textContent = String(dropped);
    ui.stDropped.title = `browser ${state.localDropped} + server ${state.serverDroppedBase + state.serverDropped}`;
    ui.stEvents.textContent = String(state.serverEvents ?? state.localEvents);
    ui.stPending.textContent = String(state.pendingCaptions);
  }

  function onStatus(msg) {
    if (typeof msg.frames_dropped === "number") state.serverDropped = msg.frames_dropped;
    if (typeof msg.events === "number") state.serverEvents = msg.events;
    if (typeof msg.captions_pending === "number") state.pendingCaptions = msg.captions_pending;
    ui.stQueue.textContent = typeof msg.queue_depth === "number" ? String(msg.queue_depth) : "–";
    const lag = msg.lag_s;
    if (typeof lag === "number" && Number.isFinite(lag)) {
      ui.stLag.textContent = `${lag.toFixed(2)} s`;
      ui.stLag.dataset.lag = String(lag);
      ui.stLag.classList.toggle("bad", lag >= 1);
      const p95 = typeof msg.lag_p95_s === "number" ? ` (p95 ${msg.lag_p95_s.toFixed(2)} s)` : "";
      ui.stLag.title = `behind live${p95}`;
    } else {
      ui.stLag.textContent = "–";
      delete ui.stLag.dataset.lag;
      ui.stLag.classList.remove("bad");
    }
    renderCounters();
  }

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
      if (state.ws) {
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

  // ---------- frame capture ----------

  function frameTime() {
    if (state.source === "file") return state.fileOffset + ui.video.currentTime;
    return (performance.now() - state.sessionStart) / 1000;
  }

  function rememberFrame(t, blob) {
    state.frames.push({ t, blob });
    if (state.frames.length > FRAME_RING) state.frames.shift();
  }

  function frameBefore(t) {
    let best = null;
    for (const f of state.frames) {
      if (f.t <= t + 1e-6) best = f;
      else break;
    }
    return best || state.frames[0] || null;
  }

  function captureTick() {
    const ws = state.ws;
    if (!ws || ws.readyState !== WebSocket.OPEN || state.captureBusy) return;
    const v = ui.video;
    if (v.readyState < 2 || !v.videoWidth || !v.videoHeight) return;
    if (state.source === "file" && (v.paused || v.ended)) return;
    const t = frameTime();
    if (!(t > state.lastSentT)) return; // a paused or re-wound file: nothing new to send
    if (ws.bufferedAmount > MAX_BUFFERED) {
      state.localDropped += 1;
      renderCounters();
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
        if (ws !== state.ws || ws.readyState !== WebSocket.OPEN) return;
        if (jpeg.byteLength + 8 > state.maxFrameBytes) {
          state.localDropped += 1;
          if (!state.tooLargeWarned) toast("frame larger than the server's limit: skipped");
          state.tooLargeWarned = true;
          renderCounters();
          return;
        }
        if (ws.bufferedAmount > MAX_BUFFERED) {
          state.localDropped += 1;
          renderCounters();
          return;
        }
        const msg = new Uint8Array(8 + jpeg.byteLength);
        new DataView(msg.buffer).setFloat64(0, t, false); // big-endian float64 seconds
        msg.set(new Uint8Array(jpeg), 8);
        ws.send(msg.buffer);
        state.lastSentT = t;
        state.framesSent += 1;
        rememberFrame(t, blob);
        renderCounters();
      }, () => {
        state.captureBusy = false;
      });
    }, "image/jpeg", 0.8);
  }

  function fps() {
    const f = Number(ui.fps.value);
    return Number.isFinite(f) && f > 0 ? Math.min(f, 30) : 2;
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

  // ---------- WebSocket session ----------

  function sessionConfig(resume) {
    return {
      type: "session.config",
      fps: fps(),
      generate: ui.generate.checked,
      events: { tau0: Number(ui.tau0.value) },
      resume,
    };
  }

  function send(obj) {
    const ws = state.ws;
    if (ws && ws.readyState === WebSocket.OPEN) {
      ws.send(JSON.stringify(obj));
      return true;
    }
    return false;
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
      state.serverDroppedBase += state.serverDropped;
      state.serverDropped = 0;
      ws.send(JSON.stringify(sessionConfig(resume)));
      startCapture();
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
        dispatch(msg);
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
    stopCapture();
    clearInterval(state.pingTimer);
    state.ws = null;
    state.opened = false;
    ui.stQueue.textContent = "–";
    ui.stLag.textContent = "–";
    ui.stLag.classList.remove("bad");
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
    if (!/^[A-Za-z0-9._-]{1,64}$/.test(id)) {
      toast("stream id: 1-64 characters of A-Z a-z 0-9 . _ -");
      return;
    }
    try {
      await ensureSource();
    } catch (e) {
      toast(`source: ${e.message}`);
      return;
    }
    state.want = true;
    state.reconnecting = false;
    state.attempt = 0;
    state.sessionStart = performance.now();
    state.lastSentT = -Infinity;
    state.frames = [];
    state.fileOffset = 0; // file frames carry the video's own currentTime
    state.tooLargeWarned = false;
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

  function dispatch(msg) {
    switch (msg.type) {
      case "session.ready": return onReady(msg);
      case "event.boundary": return onBoundary(msg);
      case "event.caption.delta": return onCaptionDelta(msg);
      case "event.caption.done": return onCaptionDone(msg);
      case "status": return onStatus(msg);
      case "response.delta": return onResponseDelta(msg);
      case "response.done": return onResponseDone(msg);
      case "error": return onError(msg);
      case "pong": return undefined;
      default: return undefined;
    }
  }

  function onReady(msg) {
    state.attempt = 0;
    state.reconnecting = false;
    setConn("live", "conn-live");
    const limits = msg.limits || {};
    state.maxFrameBytes = Number(limits.max_frame_bytes) || Infinity;
    const cfg = msg.config || {};
    const parts = [`session ${msg.session_id ?? "?"}`];
    if (msg.resumed) parts.push("resumed");
    if (typeof msg.events_in_memory === "number") parts.push(`${msg.events_in_memory} events in memory`);
    if (typeof cfg.fps === "number") parts.push(`${cfg.fps} fps`);
    setMsg(parts.join(" · "));
  }

  function onError(msg) {
    const text = `${msg.code || "error"}: ${msg.message || ""}`;
    if (msg.id && state.query && msg.id === state.query.id) {
      ui.answerMeta.textContent = text;
      ui.answerMeta.classList.add("bad");
      ui.ask.disabled = false;
    }
    toast(text);
  }

  // ---------- timeline ----------

  function labelText(labels) {
    if (!Array.isArray(labels)) return "";
    return labels
      .map((l) => (Array.isArray(l) ? `${l[0]} ${Math.round(Number(l[1]) * 100)}%` : String(l)))
      .join(" · ");
  }

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
    state.cards.delete(rec.id);
    if (state.highlighted === rec) state.highlighted = null;
  }

  function onBoundary(msg) {
    const id = String(msg.event_id);
    let rec = state.cards.get(id);
    const isNew = !rec;
    if (isNew) {
      rec = makeCard(id);
      state.cards.set(id, rec);
      ui.cards.prepend(rec.li);
      state.localEvents += 1;
      while (state.cards.size > MAX_CARDS) {
        dropCard(state.cards.values().next().value); // Map keeps insertion order: oldest first
      }
    }
    rec.start = msg.start;
    rec.end = msg.end;
    rec.span.textContent = `${fmtTime(msg.start)} – ${fmtTime(msg.end)}`;
    rec.merged.hidden = !msg.merged;
    rec.li.classList.toggle("is-merged", Boolean(msg.merged));
    rec.labels.textContent = labelText(msg.labels);
    const b = msg.boundary || null;
    rec.why.textContent = boundaryText(b);
    if (ui.generate.checked && !rec.captionDone) {
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
      if (fused !== null || thr !== null) {
        state.plot.push({ t: typeof b.t === "number" ? b.t : msg.end, fused, thr });
        if (state.plot.length > PLOT_POINTS) state.plot.shift();
        schedulePlot();
      }
    }
    renderCounters();
  }

  function onCaptionDelta(msg) {
    const rec = state.cards.get(String(msg.event_id));
    if (!rec) return;
    if (rec.caption.classList.contains("pending") || rec.captionDone) {
      rec.caption.textContent = "";
      rec.caption.classList.remove("pending");
      rec.captionDone = false;
    }
    rec.caption.textContent += msg.delta ?? "";
  }

  function onCaptionDone(msg) {
    const rec = state.cards.get(String(msg.event_id));
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
    if (state.highlighted && state.highlighted !== rec) state.highlighted.li.classList.remove("highlight");
    state.highlighted = rec;
    rec.li.classList.remove("highlight");
    void rec.li.offsetWidth; // restart the flash animation
    rec.li.classList.add("highlight");
  }

  function seekTo(start) {
    if (state.source !== "file" || !state.fileUrl || typeof start !== "number") return;
    const t = start - state.fileOffset;
    if (Number.isFinite(t) && t >= 0 && (!ui.video.duration || t <= ui.video.duration)) {
      ui.video.currentTime = t;
    }
  }

  function focusEvent(id, start) {
    const rec = state.cards.get(String(id));
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
    for (const rec of [...state.cards.values()]) dropCard(rec);
    state.localEvents = 0;
    state.plot = [];
    schedulePlot();
    renderCounters();
  }

  // ---------- score plot ----------

  let plotQueued = false;
  function schedulePlot() {
    if (plotQueued) return;
    plotQueued = true;
    requestAnimationFrame(() => {
      plotQueued = false;
      drawPlot();
    });
  }

  function drawPlot() {
    const canvas = ui.plot;
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
    const pts = state.plot;
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
    ctx.beginPath();
    let started = false;
    for (const p of pts) {
      if (p.thr === null) continue;
      if (!started) ctx.moveTo(x(p.t), y(p.thr));
      else ctx.lineTo(x(p.t), y(p.thr));
      started = true;
    }
    ctx.stroke();
    ctx.setLineDash([]);
    // fused score: line + dots
    ctx.strokeStyle = colFused;
    ctx.fillStyle = colFused;
    ctx.beginPath();
    started = false;
    for (const p of pts) {
      if (p.fused === null) continue;
      if (!started) ctx.moveTo(x(p.t), y(p.fused));
      else ctx.lineTo(x(p.t), y(p.fused));
      started = true;
    }
    ctx.stroke();
    for (const p of pts) {
      if (p.fused === null) continue;
      ctx.beginPath();
      ctx.arc(x(p.t), y(p.fused), 2.5, 0, Math.PI * 2);
      ctx.fill();
    }
  }

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
        `[#${c.id}] ${fmtTime(c.start, 0)}–${fmtTime(c.end, 0)}`,
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

  function onResponseDelta(msg) {
    if (!state.query || msg.id !== state.query.id) return;
    if (ui.answerMeta.textContent === "thinking…") ui.answerMeta.textContent = "answering…";
    ui.answerText.textContent += msg.delta ?? "";
  }

  function onResponseDone(msg) {
    if (!state.query || msg.id !== state.query.id) return;
    finishAnswer(msg);
  }

  async function ask(text) {
    state.queryN += 1;
    const id = `q${state.queryN}`;
    state.query = { id, text };
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
      if (state.query?.id !== id) return;
      if (!res.ok) throw new Error(body?.error?.message || `HTTP ${res.status}`);
      finishAnswer(body);
    } catch (e) {
      ui.answerMeta.textContent = `query failed: ${e.message}`;
      ui.answerMeta.classList.add("bad");
      ui.ask.disabled = false;
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
          el("span", { className: "ev-span", text: `${fmtTime(ev.start)} – ${fmtTime(ev.end)}` }),
          el("span", { className: "desc", text: desc }),
        );
        row.addEventListener("click", () => focusEvent(eid, ev.start));
        ui.results.append(el("li", null, row));
      }
    } catch (e) {
      ui.results.replaceChildren(el("li", { className: "bad", text: `search failed: ${e.message}` }));
    }
  }

  // ---------- wiring ----------

  function init() {
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
    const reconfigure = () => {
      if (state.ws && state.opened) send(sessionConfig(true));
    };
    ui.tau0.addEventListener("change", reconfigure);
    ui.generate.addEventListener("change", reconfigure);
    ui.fps.addEventListener("change", () => {
      reconfigure();
      if (state.captureTimer) startCapture();
    });
    ui.form.addEventListener("submit", (e) => {
      e.preventDefault();
      connect();
    });
    ui.disconnect.addEventListener("click", disconnect);
    ui.srcCamera.addEventListener("change", () => selectSource("camera"));
    ui.srcFile.addEventListener("change", () => selectSource("file"));
    ui.cameraSelect.addEventListener("change", () => {
      if (state.source === "camera" && (state.camera || state.ws)) {
        startCamera().catch((e) => toast(`camera: ${e.message}`));
      }
    });
    ui.fileInput.addEventListener("change", () => {
      const file = ui.fileInput.files && ui.fileInput.files[0];
      if (file) useFile(file);
    });
    ui.clear.addEventListener("click", clearTimeline);
    ui.askForm.addEventListener("submit", (e) => {
      e.preventDefault();
      const text = ui.question.value.trim();
      if (text) ask(text);
    });
    ui.searchForm.addEventListener("submit", (e) => {
      e.preventDefault();
      search(ui.searchQ.value.trim());
    });
    if (navigator.mediaDevices?.addEventListener) {
      navigator.mediaDevices.addEventListener("devicechange", refreshCameras);
    }
    window.addEventListener("resize", schedulePlot);
    window.matchMedia?.("(prefers-color-scheme: dark)").addEventListener?.("change", schedulePlot);
    window.addEventListener("pagehide", () => {
      state.want = false;
      if (state.ws) state.ws.close(1000, "page closed");
    });
    refreshCameras();
    renderCounters();
    drawPlot();
  }

  init();
})();
