"""``/metrics`` in the Prometheus text format (0.0.4), written by hand.

Why by hand: the engine already keeps its counters (it must, to report status to clients), and
the exposition format is a few lines of text; a client library would add a dependency and a
second copy of every number.
"""

from __future__ import annotations

from typing import Any

from eventvstream.serving.facade import EngineFacade

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

COUNTERS = {
    "frames_received": "Frames received from clients (all, including skipped and dropped).",
    "frames_skipped": "Frames skipped because they arrived faster than the session fps.",
    "frames_dropped": "Frames dropped from a full session queue (oldest first).",
    "frames_bad": "Frames that were not a readable JPEG/PNG.",
    "frames_processed": "Frames encoded and fed to an event detector.",
    "batches": "Encoder forward passes over live frames.",
    "events": "Events stored in memory.",
    "decoder_calls_caption": "Decoder runs for captions.",
    "decoder_calls_answer": "Decoder runs for answers.",
    "caption_failures": "Captions that failed.",
    "caption_fallbacks": "Captions stored as the templated description (the decoder's failed "
    "the checks twice, e.g. naming what was not seen).",
    "phrasing_fallbacks": "Phrased answers that failed a grounding check (the template was given).",
    "phrasing_invented_content": "Of those, phrasings naming something not in the evidence.",
    "queries": "Questions answered.",
    "uploads": "Upload jobs accepted.",
    "sessions_opened": "Live sessions opened.",
    "alerts": "Alerts raised by watches.",
    "webhook_deliveries": "Webhook deliveries acknowledged (2xx).",
    "webhook_failures": "Webhook delivery attempts that failed (retried later).",
}
SUMMARIES = {
    "caption_latency_s": ("caption_latency_seconds", "Boundary known to caption stored."),
    "ingest_overhead_s": ("ingest_overhead_seconds", "Frame received to frame queued."),
    "alert_delivery_s": ("alert_delivery_seconds", "Alert raised to webhook acknowledged."),
}


def _line(name: str, value: float, labels: dict[str, str] | None = None) -> str:
    tag = ""
    if labels:
        tag = "{" + ",".join(f'{k}="{v}"' for k, v in labels.items()) + "}"
    return f"{name}{tag} {float(value):.6g}"


def render(engine: EngineFacade, extra: dict[str, Any]) -> str:
    counters, summaries = engine.metrics_snapshot()
    out: list[str] = []
    for key, help_text in COUNTERS.items():
        name = f"evs_{key}_total"
        out += [f"# HELP {name} {help_text}", f"# TYPE {name} counter"]
        out.append(_line(name, counters.get(key, 0)))
    for key, (metric, help_text) in SUMMARIES.items():
        name = f"evs_{metric}"
        data = summaries.get(key, {"count": 0, "sum": 0.0, "p50": 0.0, "p95": 0.0, "p99": 0.0})
        out += [f"# HELP {name} {help_text}", f"# TYPE {name} summary"]
        out.append(_line(name, data["p50"], {"quantile": "0.5"}))
        out.append(_line(name, data["p95"], {"quantile": "0.95"}))
        out.append(_line(name, data["p99"], {"quantile": "0.99"}))
        out.append(_line(f"{name}_sum", data["sum"]))
        out.append(_line(f"{name}_count", data["count"]))
    out += ["# HELP evs_queue_depth Items waiting, by queue.", "# TYPE evs_queue_depth gauge"]
    if engine.ready:
        for queue, depth in engine.queue_depths().items():
            out.append(_line("evs_queue_depth", depth, {"queue": queue}))
    out += [
        "# HELP evs_pull_sources Server-side pull sources, by state.",
        "# TYPE evs_pull_sources gauge",
    ]
    for state, count in engine.pulls_by_state().items():
        out.append(_line("evs_pull_sources", count, {"state": state}))
    lag, p95 = engine.lag() if engine.ready else (0.0, 0.0)
    ready = engine.ready and not engine.draining
    gauges = {
        "evs_lag_seconds": ("Worst live lag behind the newest frame.", lag),
        "evs_lag_p95_seconds": ("Worst per-session p95 lag.", p95),
        "evs_sessions": ("Live sessions.", engine.session_count),
        "evs_ready": ("1 when models are loaded and not draining.", ready),
        "evs_model_load_seconds": ("Seconds the engine took to load.", engine.load_s),
    }
    for name, value in extra.items():
        gauges[f"evs_{name}"] = (name.replace("_", " ").capitalize() + ".", value)
    for name, (help_text, value) in gauges.items():
        out += [f"# HELP {name} {help_text}", f"# TYPE {name} gauge", _line(name, float(value))]
    return "\n".join(out) + "\n"
