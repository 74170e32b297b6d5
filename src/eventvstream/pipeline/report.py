"""The timeline report ``evs run VIDEO`` writes: JSON for programs, Markdown and HTML for people.

Pure I/O on purpose (numpy, PIL and the standard library only): the report must be writable
and testable without loading a model. Captions come from a language model, so every piece of
text is treated as untrusted and escaped before it reaches Markdown or HTML. Every file is
written to a temporary name and renamed, so a crash mid-write never leaves a half report that
looks complete.
"""

from __future__ import annotations

import html
import io
import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from eventvstream.fsutil import write_atomic

THUMB_MAX_SIDE = 240
THUMB_QUALITY = 80


@dataclass
class TimelineEntry:
    """One event as the report shows it (built by the pipeline from memory bank + decoder)."""

    id: int  # memory bank event id
    start: float  # seconds
    end: float
    caption: str | None  # None if captioning was off or skipped
    labels: list[tuple[str, float]]  # top labels
    merged: bool  # True if this event merged into an earlier memory slot
    boundary: dict | None  # Boundary.to_dict() of the boundary that closed the event
    # (time, RGB uint8 HxWx3, or encode_thumbnail() bytes, or None)
    keyframes: list[tuple[float, np.ndarray | bytes | None]]
    caption_latency_s: float | None = None


def format_time(seconds: float) -> str:
    """``m:ss.s`` (or ``h:mm:ss.s``). Rounds to tenths first so 59.96 s becomes 1:00.0."""
    tenths = max(0, round(float(seconds) * 10))
    hours, rest = divmod(tenths, 36000)
    minutes, rest = divmod(rest, 600)
    secs = f"{rest // 10:02d}.{rest % 10}"
    return f"{hours}:{minutes:02d}:{secs}" if hours else f"{minutes}:{secs}"


def _jsonable(value: Any) -> Any:
    """Rounded to 3 decimals, numpy scalars unwrapped, NaN/inf as null (JSON has neither)."""
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        return round(float(value), 3) if math.isfinite(value) else None
    if isinstance(value, Path):
        return str(value)
    return value


def encode_thumbnail(image: np.ndarray) -> bytes:
    """JPEG bytes of ``image`` with the long side at most THUMB_MAX_SIDE (never upscaled).
    Callers that keep many keyframes (``evs run`` on a long video) store these small bytes
    instead of pixels and hand them back as the entry's keyframe."""
    array = np.asarray(image)
    if array.dtype != np.uint8:
        array = np.clip(array, 0, 255).astype(np.uint8)
    pil = Image.fromarray(array).convert("RGB")
    scale = THUMB_MAX_SIDE / max(pil.size)
    if scale < 1:
        size = (max(1, round(pil.width * scale)), max(1, round(pil.height * scale)))
        pil = pil.resize(size, Image.Resampling.BILINEAR)
    buffer = io.BytesIO()
    pil.save(buffer, format="JPEG", quality=THUMB_QUALITY)
    return buffer.getvalue()


def _save_thumb(image: np.ndarray | bytes, path: Path) -> None:
    """Save a thumbnail: pixels are encoded, bytes from :func:`encode_thumbnail` kept as is."""
    write_atomic(path, image if isinstance(image, bytes) else encode_thumbnail(image))


def _num(x: float) -> str:
    """Short human number: 7.2, 5.0, 0.35."""
    text = f"{x:.2f}".rstrip("0")
    return text + "0" if text.endswith(".") else text


def _boundary_line(boundary: dict | None) -> str | None:
    if not boundary:
        return None
    reason = str(boundary.get("reason", "?"))
    scores, threshold = boundary.get("scores"), boundary.get("threshold")
    if scores and scores.get("fused") is not None and threshold is not None:
        return f"boundary: {reason}, fused {_num(scores['fused'])} ≥ threshold {_num(threshold)}"
    return f"boundary: {reason}"


def _labels_text(labels: list[tuple[str, float]]) -> str:
    return ", ".join(f"{name} ({p:.2f})" for name, p in labels)


def _markdown(entries: list[TimelineEntry], thumbs: list[list[str | None]]) -> str:
    def cell(text: str) -> str:  # untrusted text: no raw HTML, no column breaks, one line
        return html.escape(" ".join(text.split()), quote=False).replace("|", "\\|")

    lines = ["| # | time | caption | labels | thumbnails |", "|---|---|---|---|---|"]
    for e, entry_thumbs in zip(entries, thumbs, strict=True):
        num = f"{e.id} (merged)" if e.merged else str(e.id)
        span = f"{format_time(e.start)}–{format_time(e.end)}"
        caption = cell(e.caption) if e.caption else "*(no caption)*"
        images = " ".join(f"![]({p})" for p in entry_thumbs if p)
        lines.append(f"| {num} | {span} | {caption} | {cell(_labels_text(e.labels))} | {images} |")
    return "\n".join(lines) + "\n"


_CSS = """
body{font-family:system-ui,sans-serif;margin:1.5em auto;max-width:1000px;color:#222}
header p{color:#555;margin:.2em 0} svg.bar{width:100%;height:28px;background:#eee;margin:1em 0}
.card{border:1px solid #ddd;border-radius:6px;padding:.6em .9em;margin:.7em 0}
.span{font-weight:600;font-variant-numeric:tabular-nums} .merged{color:#a60;font-size:.85em}
.caption{margin:.3em 0} .none{color:#999;font-style:italic} .labels,.meta{color:#666;
font-size:.85em} .thumbs img{height:90px;margin:.3em .3em 0 0;border-radius:3px}
"""


def _html(
    video: str,
    duration_s: float,
    elapsed_s: float,
    entries: list[TimelineEntry],
    thumbs: list[list[str | None]],
) -> str:
    esc = html.escape
    total = max([duration_s, *(e.end for e in entries), 1e-9])
    speed = f"{duration_s / elapsed_s:.1f}× real time" if elapsed_s > 0 else "n/a"
    segments, cards = [], []
    for i, (e, entry_thumbs) in enumerate(zip(entries, thumbs, strict=True)):
        x, w = 1000 * e.start / total, max(1000 * (e.end - e.start) / total, 0.5)
        colour = f"hsl({(i * 137.5) % 360:.0f},60%,55%)"  # golden angle: neighbours differ
        title = esc(f"{format_time(e.start)}–{format_time(e.end)} {e.caption or '(no caption)'}")
        segments.append(
            f'<rect class="seg" x="{x:.2f}" y="0" width="{w:.2f}" height="28" fill="{colour}">'
            f"<title>{title}</title></rect>"
        )
        caption = (
            f'<p class="caption">{esc(e.caption)}</p>'
            if e.caption
            else '<p class="caption none">(no caption)</p>'
        )
        imgs = "".join(
            f'<img src="{esc(p)}" alt="t={t:.1f}s" title="{esc(format_time(t))}">'
            for (t, _), p in zip(e.keyframes, entry_thumbs, strict=True)
            if p
        )
        meta = [_boundary_line(e.boundary)]
        if e.caption_latency_s is not None:
            meta.append(f"caption latency {e.caption_latency_s:.2f} s")
        merged = ' <span class="merged">merged into an earlier memory slot</span>' * e.merged
        cards.append(
            f'<div class="card" id="ev{e.id}"><div class="span">#{e.id} · '
            f"{format_time(e.start)}–{format_time(e.end)}{merged}</div>{caption}"
            f'<div class="labels">{esc(_labels_text(e.labels))}</div>'
            f'<div class="thumbs">{imgs}</div>'
            f'<div class="meta">{esc(" · ".join(m for m in meta if m))}</div></div>'
        )
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>{esc(video)} — timeline</title><style>{_CSS}</style></head><body>\n"
        f"<header><h1>{esc(Path(video).name or video)}</h1><p>{esc(video)}</p>"
        f"<p>duration {format_time(duration_s)} · {len(entries)} events · "
        f"processed in {elapsed_s:.1f} s ({speed})</p></header>\n"
        f'<svg class="bar" viewBox="0 0 1000 28" preserveAspectRatio="none" '
        f'xmlns="http://www.w3.org/2000/svg">{"".join(segments)}</svg>\n'
        + "\n".join(cards)
        + "\n</body></html>\n"
    )


def write_report(
    out_dir: Path,
    *,
    video: str,
    stream: str,
    profile: str,
    duration_s: float,
    elapsed_s: float,
    entries: list[TimelineEntry],
    extra: dict | None = None,
) -> dict[str, Path]:
    """Write timeline.json/.md/.html and thumbs/ into out_dir; return the three report paths."""
    out_dir = Path(out_dir)
    thumb_dir = out_dir / "thumbs"
    thumb_dir.mkdir(parents=True, exist_ok=True)
    # Per entry, not per id: should two entries ever share an id, neither loses its thumbnails.
    thumbs: list[list[str | None]] = []
    used: set[str] = set()
    for i, e in enumerate(entries):
        rels: list[str | None] = []
        for k, (_, image) in enumerate(e.keyframes):
            if image is None:
                rels.append(None)
                continue
            rel = f"thumbs/ev{e.id}_{k}.jpg"
            if rel in used:
                rel = f"thumbs/ev{e.id}_{k}_{i}.jpg"
            used.add(rel)
            _save_thumb(image, out_dir / rel)
            rels.append(rel)
        thumbs.append(rels)

    meta = {
        "video": video,
        "stream": stream,
        "profile": profile,
        "duration_s": duration_s,
        "elapsed_s": elapsed_s,
        "speed": duration_s / elapsed_s if elapsed_s > 0 else None,
        "events": len(entries),
    }
    if extra:
        meta["extra"] = extra
    doc = {
        "meta": meta,
        "entries": [
            {
                "id": e.id,
                "start": e.start,
                "end": e.end,
                "caption": e.caption,
                "caption_latency_s": e.caption_latency_s,
                "labels": [[name, p] for name, p in e.labels],
                "merged": e.merged,
                "boundary": e.boundary,
                "keyframes": [
                    {"t": t, "thumbnail": p} for (t, _), p in zip(e.keyframes, rels, strict=True)
                ],
            }
            for e, rels in zip(entries, thumbs, strict=True)
        ],
    }
    paths = {
        "json": out_dir / "timeline.json",
        "markdown": out_dir / "timeline.md",
        "html": out_dir / "timeline.html",
    }
    text = json.dumps(_jsonable(doc), indent=2, ensure_ascii=False, allow_nan=False)
    write_atomic(paths["json"], (text + "\n").encode())
    write_atomic(paths["markdown"], _markdown(entries, thumbs).encode())
    html_text = _html(video, duration_s, elapsed_s, entries, thumbs)
    write_atomic(paths["html"], html_text.encode())
    return paths
