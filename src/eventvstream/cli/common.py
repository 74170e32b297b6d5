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
from eventvstream.errors import ConfigError, EvsError
from eventvstream.media.urls import LIVE_SCHEMES, is_device, is_live_source

_FINGERPRINT_BYTES = 1 << 20
Subparsers = argparse._SubParsersAction  # type: ignore[type-arg]


def positive_int(text: str) -> int:
    """An argparse type: a whole number above zero (``-k 0`` would quietly find nothing)."""
    value = int(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be a whole number above 0, not {text}")
    return value


def positive_float(text: str) -> float:
    """An argparse type: a number above zero (seconds, rates, sizes)."""
    value = float(text)
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"must be a number above 0, not {text}")
    return value


def speed_factor(text: str) -> float:
    """An argparse type: a replay speed, 0 (as fast as possible) or more."""
    value = float(text)
    if not value >= 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"must be 0 (as fast as possible) or more, not {text}")
    return value


def port_number(text: str) -> int:
    """An argparse type: a TCP port, 0-65535 (0: the system picks a free one, as uvicorn does)."""
    value = int(text)
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"must be a port from 0 to 65535, not {text}")
    return value


# argparse names the type in its message ("invalid positive_int value"): say what is wanted.
positive_int.__name__ = "whole number above 0"
positive_float.__name__ = "number above 0"
port_number.__name__ = "port number"
speed_factor.__name__ = "speed"


def video_source(text: str, *, live: bool) -> str | Path:
    """The VIDEO argument: a file path (``file://`` URLs too), or a live source URL or capture
    device where the command reads them (``live``). Anything else is refused now, with what
    is accepted, rather than reported later as a missing file named ``ftp:/host/x``."""
    if text.startswith("file://"):
        from urllib.parse import unquote, urlsplit

        text = unquote(urlsplit(text).path)
    elif "://" in text or is_device(text):
        scheme = text.split("://", 1)[0].lower() if "://" in text else "device"
        if not live:
            raise EvsError(
                f"{scheme}: this command reads video files only; `evs run SOURCE` reads live "
                "sources",
                code="unsupported_source",
            )
        if not is_live_source(text):
            accepted = ", ".join(f"{s}://" for s in sorted(LIVE_SCHEMES))
            raise EvsError(
                f"unsupported URL scheme {scheme!r}: give a video file path, a live URL "
                f"({accepted}) or /dev/videoN",
                code="unsupported_source",
            )
        if is_device(text) and not Path(text).exists():
            raise EvsError(f"capture device not found: {text}", code="not_found")
        return text
    path = Path(text)
    if not path.exists():
        raise EvsError(f"video not found: {path}", code="not_found")
    if not path.is_file():
        raise EvsError(f"not a video file: {path}", code="not_found")
    return path


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
    data_dir = Path(settings.memory.data_dir).expanduser()
    if data_dir.exists() and not data_dir.is_dir():
        raise ConfigError(f"memory.data_dir (--data-dir) is a file, not a directory: {data_dir}")
    return settings


def require_memory(settings: Settings) -> None:
    """For commands that only read memory: a data directory that does not exist is a typo or a
    missing ``evs run``, said so, rather than created and answered from as empty memory."""
    data_dir = Path(settings.memory.data_dir).expanduser()
    if settings.memory.backend == "sqlite" and not (data_dir / "evs.sqlite3").exists():
        raise EvsError(
            f"no memory in {data_dir}: store events first with `evs run VIDEO` (with the same "
            "--data-dir, if any)",
            code="memory_empty",
        )


def require_events(bank: Any, settings: Settings) -> None:
    """For commands whose answer is events: memory that holds none is an error to act on."""
    if not bank.stats()["events"]:
        where = (
            Path(settings.memory.data_dir).expanduser()
            if settings.memory.backend == "sqlite"
            else "the shared database (memory.url)"
        )
        raise EvsError(
            f"memory in {where} holds no events yet: store some with `evs run VIDEO` (with the "
            "same --data-dir, if any)",
            code="memory_empty",
        )


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
