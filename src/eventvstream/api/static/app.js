// Event-VStream live page: camera or file -> JPEG frames over a WebSocket -> live event timeline.
// Plain browser ES modules, no build step and no external resources; the wire protocol is the one
// in docs/protocol.md. Text that comes from the server (captions, answers, labels, errors) is only
// ever inserted with textContent, never as HTML.
//
// One module per pane or job, under js/. Each subscribes to the server messages it shows on the
// bus (js/bus.js) and wires its own controls when imported, so a new pane (an alerts list, a
// watch editor, a pull-source status) is a new module plus one import line here.
//
//   js/dom.js         element helpers, time/number formatting, toasts
//   js/bus.js         server messages and connection lifecycle events, by type
//   js/settings.js    the connection form's values (key, stream, fps, captions, τ₀)
//   js/status.js      the status bar (connection state, counters, lag)
//   js/connection.js  the WebSocket session: connect, config, pings, reconnect with backoff
//   js/capture.js     camera or file source, and frames to the server
//   js/plot.js        the cue plot (fused score against the threshold)
//   js/timeline.js    event cards and their streaming captions
//   js/ask.js         questions (with citation chips) and search
//   js/alerts.js      the watch editor and the alerts pane (server-sent events)

import "./js/status.js";
import "./js/connection.js";
import "./js/capture.js";
import "./js/plot.js";
import "./js/timeline.js";
import "./js/ask.js";
import "./js/alerts.js";
