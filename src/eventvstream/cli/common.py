"""What every command shares: the common flags, settings from flags, the progress switch.

stdout carries results only (human lines, or JSON lines with ``--json``); progress bars, logs and
errors go to stderr, so ``evs segment clip.mp4 --json > events.jsonl`` is always clean.
"""

from __future__ import annotations

import argparse
import hashlib
import sys
from pathlib import Path
from typing import Any

from eventvstream.config import Settings, load_settings

_FINGERPRINT_BYTES = 1 << 20
Subparsers = argparse._SubParsersAction  # type: ignore[type-arg]


def progress_arg(parser: argparse.ArgumentParser, help_text: str | None = None) -> None:
    parser.add_argument("--progress", choices=["auto", "on", "off"], default="auto", help=help_text)


def want_progress(choice: str) -> bool:
    """``--progress``: on, off, or auto (only when stderr is a terminal)."""
    return choice == "on" or (choice == "auto" and sys.stderr.isatty())


CONFIG_HELP = "profile (default, tiny, gpu, remote) or YAML path (default: $EVS_CONFIG or default)"
DATA_DIR_HELP = (
    "memory directory (default: the profile's memory.data_dir, ~/.local/share/eventvstream)"
)


def common_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", "-c", default=None, help=CONFIG_HELP)
    parser.add_argument("--data-dir", type=Path, help=DATA_DIR_HELP)
    parser.add_argument(
        "--owner",
        default=None,
        help="owner of the events: an API key id (k_...) to act as that key's streams "
        "(default: none, the owner a server without keys uses)",
    )


def scope_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--stream", help="only this stream (default: every stream)")
    parser.add_argument(
        "--from",
        dest="t0",
        type=float,
        metavar="SECONDS",
        help="only events still going at or after this time",
    )
    parser.add_argument(
        "--to", dest="t1", type=float, metavar="SECONDS", help="only events begun by this time"
    )


def settings_from_args(
    args: argparse.Namespace, *, language: dict[str, Any] | None = None
) -> Settings:
    """The profile named by ``--config`` with ``--data-dir`` and any language overrides."""
    settings = load_settings(args.config)
    if args.data_dir is not None:
        memory = settings.memory.model_copy(update={"data_dir": args.data_dir})
        settings = settings.model_copy(update={"memory": memory})
    if language:
        updated = settings.language.model_validate(settings.language.model_dump() | language)
        settings = settings.model_copy(update={"language": updated})
    return settings


def fingerprint(path: Path) -> str:
    """Identifies a file's content cheaply: size + first and last MiB. Re-running ``evs run`` on
    the same file (even renamed) is then recognised and skipped."""
    size = path.stat().st_size
    digest = hashlib.sha256(str(size).encode())
    with path.open("rb") as handle:
        digest.update(handle.read(_FINGERPRINT_BYTES))
        if size > _FINGERPRINT_BYTES:
            handle.seek(max(_FINGERPRINT_BYTES, size - _FINGERPRINT_BYTES))
            digest.update(handle.read(_FINGERPRINT_BYTES))
    return digest.hexdigest()[:32]
