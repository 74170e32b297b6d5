"""A writer process for the shared-store tests: opens a bank on a PostgreSQL database and adds
batches of events to one stream, printing one JSON line per acknowledged batch (after
``add_many`` returned, i.e. after the commit). Run as
``python pg_writer.py URL DATA_DIR STREAM BATCHES BATCH_SIZE SEED`` (BATCHES 0: until killed).
Every event carries the same vector, so consolidation merges whatever it is allowed to."""

from __future__ import annotations

import itertools
import json
import sys

import numpy as np

from eventvstream.config import MemorySettings
from eventvstream.memory import MemoryBank

DIM = 16


def main() -> None:
    url, data_dir, stream, batches, size, seed = sys.argv[1:7]
    vector = np.ones(DIM, np.float32) / np.sqrt(DIM)
    settings = MemorySettings(
        data_dir=data_dir, backend="postgres", url=url, checkpoint_every=10**9
    )
    rng = np.random.default_rng(int(seed))
    with MemoryBank(settings, visual_dim=DIM) as bank:
        count = itertools.count() if int(batches) == 0 else range(int(batches))
        t = 0.0
        for batch in count:
            events, starts = [], []
            for _ in range(int(size)):
                t += float(rng.choice([0.0, 0.5, 5.0]))  # adjacent (merge) or a gap (append)
                starts.append(t)
                events.append(
                    {
                        "start": t,
                        "end": t + 2.0,
                        "frames": 4,
                        "embedding": vector,
                        "keyframes": [{"t": t, "writer": seed}],
                        "labels": [],
                        "boundaries": {},
                    }
                )
                t += 2.0
            stored = bank.add_many(events, stream=stream)
            line = {
                "batch": batch,
                "ids": [s.id for s in stored],
                "merged": [s.merged for s in stored],
            }
            print(json.dumps(line | {"starts": starts}), flush=True)


if __name__ == "__main__":
    main()
