#!/usr/bin/env python
"""Write the message reference of docs/protocol.md from the models in ``api/protocol.py``.

    python scripts/gen_protocol_docs.py          # rewrite the generated section in place
    python scripts/gen_protocol_docs.py --check  # exit 1 when the document is out of date

The section sits between the BEGIN/END markers; everything else in the document is prose kept by
hand. ``tests/unit/test_protocol.py`` runs the check, so a model change without a docs update
fails the tests.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from eventvstream.api.protocol import BEGIN, END, reference

DOC = Path(__file__).resolve().parents[1] / "docs" / "protocol.md"


def updated(text: str) -> str:
    """``text`` with its generated section replaced by the current reference."""
    start, end = text.find(BEGIN), text.find(END)
    if start < 0 or end < start:
        raise SystemExit(f"{DOC}: markers not found ({BEGIN!r} ... {END!r})")
    return text[:start] + reference() + text[end + len(END) :]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="only check, do not write")
    args = parser.parse_args()
    text = DOC.read_text(encoding="utf-8")
    new = updated(text)
    if args.check:
        if new != text:
            print(f"{DOC} is out of date: run scripts/gen_protocol_docs.py", file=sys.stderr)
            return 1
        return 0
    DOC.write_text(new, encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
