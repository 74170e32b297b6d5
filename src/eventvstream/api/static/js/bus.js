// The page's one message bus: server messages by their "type" (docs/protocol.md), plus the
// connection's lifecycle events. A pane subscribes to what it shows; nothing else needs to know
// it exists, so a new pane is a new module and one import in app.js.
//
// Lifecycle events (emitted by connection.js):
//   "session.start"  the user pressed Connect (a fresh session, not a reconnect)
//   "socket.open"    a socket opened and session.config was sent
//   "socket.close"   the current socket closed (before any reconnect is scheduled)

const handlers = new Map(); // type -> [fn]

export function on(type, fn) {
  if (!handlers.has(type)) handlers.set(type, []);
  handlers.get(type).push(fn);
}

// Run every handler of `type`, in subscription order. One failing handler does not stop the
// others; the first error is rethrown afterwards, for the caller to report.
export function emit(type, msg) {
  let failure = null;
  for (const fn of handlers.get(type) || []) {
    try {
      fn(msg);
    } catch (e) {
      failure = failure || e;
    }
  }
  if (failure) throw failure;
}
