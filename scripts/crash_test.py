#!/usr/bin/env python
"""kill -9 durability test for the memory bank::

    python scripts/crash_test.py --kills 50            # ~1 min on 2 cores
    python scripts/crash_test.py --kills 5 --dir /tmp/x

The parent starts a child (``--child``) that opens ``MemoryBank`` on one directory and inserts
events forever in random batches of 1-50, each batch one ``add_many``. An event counts as
acknowledged only once the parent has *received* the child's ack line, which the child writes
(and flushes) after ``add_many`` returned — exactly the promise the bank makes to its callers.
The parent SIGKILLs the child at a random moment, keeps the acks it got, and starts the next
child on the same directory. Most kills land while inserting; about one in ten lands while the
bank is opening (replaying or rebuilding its FAISS cache). ``checkpoint_every`` is tiny and
``exact_max`` low, so kills also hit index saves and the switch to IVF.

Every event's ``start`` is a unique token (child_no * 1e6 + counter) and its vector is derived
from the token, so the parent can check, after all kills, with one more open:

- every acknowledged (id, token) is in SQL with that token and vector (nothing lost or
  overwritten), and no token is stored twice, no id acknowledged for two tokens;
- the FAISS cache holds exactly the SQL ids, once each (it was replayed/rebuilt correctly);
- every acknowledged event is found by its own vector with ``search(vector, k=1)``, score ≈ 1;
- ``PRAGMA integrity_check`` is ok.

SIGKILL tests the commit protocol (WAL commit before ack, atomic index saves, replay), not
power loss: the OS page cache survives a killed process. Exit status 1 on any violation.
"""

from __future__ import annotations

import argparse
import json
import logging
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np

from eventvstream.config import MemorySettings
from eventvstream.memory.bank import MemoryBank

ROOT = Path(__file__).resolve().parents[1]
DIM = 32
TOKEN_BASE = 1_000_000  # tokens per child; a child never gets near it before it is killed


def settings(path: Path) -> MemorySettings:
    return MemorySettings(
        data_dir=path, consolidate=False, exact_max=3000, ivf_nprobe=8, checkpoint_every=200
    )


def vector_for(token: int) -> np.ndarray:
    """The event's embedding, recomputable from its token alone (no state shared with the
    child beyond the token)."""
    v = np.random.default_rng(token).standard_normal(DIM, dtype=np.float32)
    return v / np.linalg.norm(v)


# -- child -------------------------------------------------------------------------------------
def child(path: Path, child_no: int) -> None:
    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(levelname)s %(message)s")
    rng = np.random.default_rng(child_no)
    print("opening", flush=True)
    bank = MemoryBank(settings(path), visual_dim=DIM)
    print("ready", flush=True)
    counter = 0
    for _ in range(100_000):  # bounded; the parent kills us long before
        tokens = [child_no * TOKEN_BASE + counter + j for j in range(int(rng.integers(1, 51)))]
        counter += len(tokens)
        events = [
            {
                "start": float(t),
                "end": float(t) + 1,
                "frames": 1,
                "embedding": vector_for(t),
                "keyframes": [],
                "labels": [],
                "boundaries": {},
            }
            for t in tokens
        ]
        stored = bank.add_many(events, stream="crash")
        acks = [[s.id, t] for s, t in zip(stored, tokens, strict=True)]
        sys.stdout.write("ack " + json.dumps(acks) + "\n")
        sys.stdout.flush()  # the acknowledgement: only now may the caller rely on it
    bank.close()
    print("done", flush=True)


# -- parent ------------------------------------------------------------------------------------
class Reader(threading.Thread):
    """Collects the child's complete stdout lines; a line cut by the kill is not an ack."""

    def __init__(self, stream: Any) -> None:
        super().__init__(daemon=True)
        self.stream = stream
        self.lines: list[str] = []
        self.opening, self.ready = threading.Event(), threading.Event()

    def run(self) -> None:
        for raw in iter(self.stream.readline, b""):
            if not raw.endswith(b"\n"):
                break
            line = raw.decode()
            self.lines.append(line)
            if line.startswith("opening"):
                self.opening.set()
            elif line.startswith("ready"):
                self.ready.set()
        self.opening.set()
        self.ready.set()


def temp_files(path: Path) -> set[tuple[str, int, int]]:
    return {(f.name, f.stat().st_ino, f.stat().st_mtime_ns) for f in path.glob("*.tmp")}


def run_child(path: Path, child_no: int, rng: np.random.Generator, logs: Path) -> dict[str, Any]:
    during_open = rng.random() < 0.1
    log_file = logs / f"child-{child_no:03d}.log"
    before = temp_files(path)
    with open(log_file, "wb") as err:
        proc = subprocess.Popen(
            [sys.executable, __file__, "--child", "--dir", str(path), "--seed", str(child_no)],
            stdout=subprocess.PIPE,
            stderr=err,
        )
        reader = Reader(proc.stdout)
        reader.start()
        if during_open:
            reader.opening.wait(timeout=60)
            time.sleep(rng.uniform(0.0, 0.03))
        else:
            reader.ready.wait(timeout=60)
            time.sleep(rng.uniform(0.05, 0.6))
        exited_early = proc.poll()
        proc.kill()  # SIGKILL
        proc.wait(timeout=60)
        reader.join(timeout=60)
    # A new temp file left behind means the kill landed inside a checkpoint's save.
    mid_save = bool(temp_files(path) - before)
    acks = [pair for ln in reader.lines if ln.startswith("ack ") for pair in json.loads(ln[4:])]
    log = log_file.read_text(errors="replace")
    return {
        "child": child_no,
        "acks": acks,
        "ready": any(ln.startswith("ready") for ln in reader.lines),
        "during_open": during_open,
        "mid_save": mid_save,
        "exited_early": exited_early,
        "replayed": "replayed" in log,
        "rebuilt": "rebuilt the" in log,
        "cache_disagreed": "disagrees" in log or "unreadable" in log or "no saved state" in log,
        "log": str(log_file),
    }


class Captured(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


def verify(path: Path, acked: dict[int, int]) -> dict[str, Any]:
    """Open the bank once more and check everything acknowledged against SQL and FAISS."""
    handler = Captured()
    logging.getLogger("eventvstream").addHandler(handler)
    logging.getLogger("eventvstream").setLevel(logging.INFO)
    t0 = time.perf_counter()
    bank = MemoryBank(settings(path), visual_dim=DIM)
    out: dict[str, Any] = {"open_s": time.perf_counter() - t0, "open_log": handler.messages}
    try:
        conn = bank.store.conn
        out["integrity"] = conn.execute("PRAGMA integrity_check").fetchone()[0]
        rows = {
            i: (int(t), blob)
            for i, t, blob in conn.execute("SELECT id, t_start, embedding FROM events")
        }
        tokens = [t for t, _ in rows.values()]
        out["sql_events"] = len(rows)
        out["sql_duplicate_tokens"] = len(tokens) - len(set(tokens))
        lost = [(i, t) for t, i in acked.items() if i not in rows or rows[i][0] != t]
        out["lost"] = lost
        out["corrupt_vectors"] = [
            i
            for t, i in acked.items()
            if i in rows
            and not np.array_equal(np.frombuffer(rows[i][1], np.float32), vector_for(t))
        ]
        vindex = bank.indexes["visual"]
        index_ids, _ = vindex._all()
        out["index_kind"], out["index_len"] = vindex.kind, len(vindex)
        out["index_duplicate_ids"] = len(index_ids) - len(set(index_ids.tolist()))
        out["index_matches_sql"] = len(vindex) == len(rows) and set(index_ids.tolist()) == set(rows)
        not_found = []
        for t, i in acked.items():
            hits = bank.search(vector_for(t), k=1)
            if not hits or hits[0].event.id != i or hits[0].score < 0.999:
                not_found.append((i, t))
        out["not_found"] = not_found
    finally:
        bank.close()
        logging.getLogger("eventvstream").removeHandler(handler)
    return out


def parent(args: argparse.Namespace) -> int:
    started = time.perf_counter()
    made = args.dir is None
    if made:
        (ROOT / ".bench").mkdir(exist_ok=True)
    path = (
        Path(args.dir) if args.dir else Path(tempfile.mkdtemp(prefix="crash-", dir=ROOT / ".bench"))
    )
    path.mkdir(parents=True, exist_ok=True)
    if (path / "evs.sqlite3").exists():
        print(f"{path} already holds a memory bank; give an empty --dir", file=sys.stderr)
        return 2
    logs = path / "child-logs"
    logs.mkdir()
    rng = np.random.default_rng(args.seed)
    acked: dict[int, int] = {}  # token -> id
    id_clash: list[tuple[int, int, int]] = []
    runs = []
    by_id: dict[int, int] = {}
    for n in range(1, args.kills + 1):
        run = run_child(path, n, rng, logs)
        runs.append(run)
        for event_id, token in run["acks"]:
            if by_id.setdefault(event_id, token) != token:
                id_clash.append((event_id, by_id[event_id], token))
            acked[token] = event_id
        print(
            f"kill {n:3d}: {len(run['acks']):5d} acked"
            f"{' (during open)' if run['during_open'] else ''}",
            file=sys.stderr,
        )
    result = verify(path, acked)
    problems = []
    early = [r for r in runs if r["exited_early"] is not None]
    stuck = [r["child"] for r in runs if not r["during_open"] and not r["ready"]]
    if stuck:
        problems.append(f"children {stuck[:10]} never finished opening the bank (60 s)")
    if early:
        problems.append(
            f"{len(early)} children exited by themselves: "
            + ", ".join(f"{r['child']} rc={r['exited_early']} ({r['log']})" for r in early[:5])
        )
    lost, dups = len(result["lost"]), len(id_clash) + result["sql_duplicate_tokens"]
    if lost:
        problems.append(f"lost (id, token): {result['lost'][:10]}")
    if id_clash:
        problems.append(f"ids acknowledged for two tokens (id, first, second): {id_clash[:10]}")
    if result["sql_duplicate_tokens"]:
        problems.append(f"{result['sql_duplicate_tokens']} tokens stored twice in SQL")
    if result["corrupt_vectors"]:
        problems.append(f"stored vector differs for ids {result['corrupt_vectors'][:10]}")
    if result["integrity"] != "ok":
        problems.append(f"PRAGMA integrity_check: {result['integrity']}")
    if not result["index_matches_sql"] or result["index_duplicate_ids"]:
        problems.append(
            f"index holds {result['index_len']} vectors "
            f"({result['index_duplicate_ids']} duplicate ids) for "
            f"{result['sql_events']} SQL events, or other ids than SQL"
        )
    if result["not_found"]:
        problems.append(
            f"{len(result['not_found'])} acked events not found by their own "
            f"vector, e.g. {result['not_found'][:5]}"
        )
    consistent = result["index_matches_sql"] and not result["index_duplicate_ids"]
    print(f"# Crash test: kill -9 × {args.kills}\n")
    print(f"- Command: `python {' '.join(sys.argv)}`")
    print(f"- Directory: {path}")
    print(
        f"- Kills aimed at the open (0-30 ms after it began): "
        f"{sum(r['during_open'] for r in runs)}, of which "
        f"{sum(r['during_open'] and not r['ready'] for r in runs)} landed before it finished; "
        f"kills inside a checkpoint's save (a new *.tmp left behind): "
        f"{sum(r['mid_save'] for r in runs)}"
    )
    print(
        f"- Opens that replayed changes after the last save: "
        f"{sum(r['replayed'] for r in runs)}; rebuilt the index from SQL: "
        f"{sum(r['rebuilt'] for r in runs)}; found the cache unusable (warning): "
        f"{sum(r['cache_disagreed'] for r in runs)}"
    )
    print(f"- Final open: {result['open_s']:.2f} s; log: {result['open_log'] or 'nothing'}")
    print(
        f"- SQL events: {result['sql_events']} ({result['sql_events'] - len(acked)} durable "
        "but unacknowledged: committed, then killed before the ack reached the parent)"
    )
    print(
        f"- Index: {result['index_kind']}, {result['index_len']} vectors; integrity_check: "
        f"{result['integrity']}"
    )
    print(
        f"- Every acked event found by its own vector (k=1, score ≥ 0.999): "
        f"{len(acked) - len(result['not_found'])}/{len(acked)}"
    )
    print(f"- Runtime: {time.perf_counter() - started:.1f} s\n")
    print(
        f"**{args.kills} kills, {len(acked)} acknowledged, {lost} lost, {dups} duplicates, "
        f"index {'consistent' if consistent else 'INCONSISTENT'}**"
    )
    for p in problems:
        print(f"- VIOLATION: {p}")
    if made and not problems and not args.keep:
        shutil.rmtree(path, ignore_errors=True)
    return 1 if problems else 0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--kills", type=int, default=50)
    ap.add_argument("--dir", help="bank directory (default: a new temp dir under .bench/)")
    ap.add_argument("--seed", type=int, default=0, help="parent: kill timing; child: child_no")
    ap.add_argument("--keep", action="store_true", help="keep the default temp dir on success")
    ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.child:
        child(Path(args.dir), args.seed)
        return 0
    return parent(args)


if __name__ == "__main__":
    sys.exit(main())
