"""Kill replicas again and again: how many acknowledged events are lost, how fast streams move.

``--replicas`` real ``evs serve`` replicas (3; tiny profile) on one throwaway PostgreSQL server;
a killed replica restarts in the background and rejoins, so kills need not wait for a model
load when another replica is ready (at least two must be). ``--pulls``
MJPEG cameras pulled (spread over both) and one WebSocket client (``ws-cam``) that reconnects to
whichever replica accepts it. Each round:

1. every event either replica lists, and every ``event.boundary`` the client received, is
   *acknowledged* (both happen only after the PostgreSQL commit);
2. the replica holding the most streams is killed with SIGKILL;
3. **takeover**: seconds until every stream it fed is leased by the survivor (``leases_moved_s``)
   and until each has a new event stored through it (``takeover_s``; an event closes after at
   most ``events.max_event_s`` = 4 s of frames);
4. **lost**: acknowledged events no longer stored (target 0);
5. the killed replica is started again (``restart_ready_s``; it gets its share of the pull
   sources back: the others shed above their fair share).

Also measured all along: **commit on one replica -> visible on the other**: for each
``event.boundary`` the client receives from its replica, how long until a search on the *other*
replica (``GET /v1/streams/ws-cam/events?q=…`` scoped to the event's span) returns it.

    PYTHONPATH=src python scripts/bench_replicas.py --kills 20 --replicas 3 --pulls 4 \
        --json out.json
"""

from __future__ import annotations

import argparse
import contextlib
import json
import signal
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "e2e"))
from replica_support import (  # noqa: E402
    WS_STREAM,
    Replica,
    VisibilityProbe,
    WsClient,
    cameras,
    http,
    replica_profile,
    until,
)

from eventvstream.testdata.postgres import INSTALL_HINT, PostgresServer, pg_bin  # noqa: E402


def p95(values: list[float]) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]


def acknowledged(replicas: list[Replica], streams: list[str], client: WsClient) -> set[int]:
    alive = [r for r in replicas if r.proc is not None and r.proc.poll() is None]
    ids: set[int] = set()
    for stream in streams:
        for replica in alive:
            with contextlib.suppress(RuntimeError):
                ids |= replica.event_ids(stream)
    return ids | set(client.boundaries())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--kills", type=int, default=20)
    parser.add_argument("--pulls", type=int, default=4)
    parser.add_argument("--replicas", type=int, default=3, help="2-8; killed ones restart")
    parser.add_argument("--settle-s", type=float, default=8.0, help="ingest between kills")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    # SIGTERM (a background run's only way out: it ignores SIGINT) still stops the servers.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))

    bin_dir = pg_bin()
    if bin_dir is None:
        print(INSTALL_HINT, file=sys.stderr)
        return 2
    tmp = Path(tempfile.mkdtemp(prefix="evs-bench-replicas-"))
    server = PostgresServer(bin_dir)
    server.start()
    db = server.new_database()
    names = "abcdefgh"[: args.replicas]
    replicas = [
        Replica(n, replica_profile(tmp / f"{n}.yaml", tmp / f"data-{n}", db, n), tmp) for n in names
    ]
    ready = dict.fromkeys(names, False)

    def ready_replicas() -> list[Replica]:
        return [r for r in replicas if ready[r.name] and r.proc and r.proc.poll() is None]

    stopping = threading.Event()

    def restart(replica: Replica, record: dict[str, Any]) -> None:
        replica.start()
        try:
            record["restart_ready_s"] = round(replica.wait_ready(), 1)
        except RuntimeError:
            if stopping.is_set():  # the run ended while this replica was still loading
                return
            raise
        ready[replica.name] = True

    cams, client, probe = [], WsClient(), None
    rounds: list[dict[str, Any]] = []
    try:
        for replica in replicas:
            replica.wait_ready()
            ready[replica.name] = True
        cams = cameras(args.pulls)
        streams = [f"cam{i}" for i in range(args.pulls)]
        for i, (name, cam) in enumerate(zip(streams, cams, strict=True)):
            body = {"id": name, "source": {"url": cam.url, "fps": 2}}
            via = replicas[i % len(replicas)]
            status, reply = http(f"{via.url}/v1/streams", method="POST", body=body)
            assert status == 201, (status, reply)
        threading.Thread(target=client.run, args=([r.url for r in replicas],), daemon=True).start()
        every = [*streams, WS_STREAM]
        until(
            lambda: (
                all(s["events"] >= 1 for s in replicas[0].streams().values())
                and len(replicas[0].streams()) == len(every)
            ),
            240,
            "first events everywhere",
        )
        probe = VisibilityProbe(client, ready_replicas)
        for round_no in range(1, args.kills + 1):
            # a kill needs a ready replica to take over: wait for restarts when too few are up
            until(lambda: len(ready_replicas()) >= 2, 600, "two ready replicas", step=0.5)
            time.sleep(args.settle_s)
            up = ready_replicas()
            if len(up) < 2:
                continue
            listing = up[0].streams()
            held = {r.name: [s for s in every if listing[s]["replica"] == r.name] for r in up}
            victim = max(up, key=lambda r: len(held[r.name]))
            witness = next(r for r in up if r is not victim)
            acked = acknowledged(up, every, client)
            ready[victim.name] = False
            victim.kill9()
            killed = time.monotonic()
            moved = held[victim.name]
            before = {s: witness.event_ids(s) for s in moved}
            leased: list[float] = []

            def resumed(
                moved=moved, before=before, witness=witness, victim=victim, leased=leased,
                killed=killed,
            ) -> bool:  # fmt: skip
                now = witness.streams()
                if not all(now[s]["replica"] not in (None, victim.name) for s in moved):
                    return False
                if not leased:
                    leased.append(time.monotonic() - killed)
                return all(witness.event_ids(s) - before[s] for s in moved)

            until(resumed, 120, f"round {round_no}: streams resumed", step=0.1)
            takeover = time.monotonic() - killed
            stored = set().union(*(witness.event_ids(s) for s in every))
            lost = sorted(acked - stored)
            record = {
                "round": round_no,
                "killed": victim.name,
                "streams_moved": len(moved),
                "leases_moved_s": round(leased[0], 3),
                "takeover_s": round(takeover, 3),
                "acknowledged": len(acked),
                "lost": len(lost),
                "lost_ids": lost,
            }
            rounds.append(record)
            print(json.dumps(record), flush=True)
            threading.Thread(target=restart, args=(victim, record), daemon=True).start()
    finally:
        stopping.set()
        if probe is not None:
            probe.stop()
        client.stop()
        for cam in cams:
            cam.stop()
        for replica in replicas:
            replica.stop()
        server.stop()
    takeovers = [r["takeover_s"] for r in rounds]
    moves = [r["leases_moved_s"] for r in rounds]
    delays = probe.delays if probe is not None else []
    summary = {
        "kills": len(rounds),
        "pulls": args.pulls,
        "acknowledged_final": rounds[-1]["acknowledged"] if rounds else 0,
        "lost_total": sum(r["lost"] for r in rounds),
        "leases_moved_s_median": statistics.median(moves) if moves else None,
        "leases_moved_s_max": max(moves) if moves else None,
        "takeover_s_median": statistics.median(takeovers) if takeovers else None,
        "takeover_s_p95": p95(takeovers),
        "takeover_s_max": max(takeovers) if takeovers else None,
        "visible_elsewhere_n": len(delays),
        "visible_elsewhere_p50_s": statistics.median(delays) if delays else None,
        "visible_elsewhere_p95_s": p95(delays),
        "visible_elsewhere_missed": probe.missed if probe else 0,
        "rounds": rounds,
    }
    print(json.dumps({k: v for k, v in summary.items() if k != "rounds"}, indent=1))
    if args.json:
        args.json.write_text(json.dumps(summary, indent=1))
    return 0 if summary["lost_total"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
