"""Readers for OVO-Bench and StreamingBench question files, and multiple-choice scoring.

Both benchmarks ask multiple-choice questions about a video *at a time in it*: the model may only
have seen the video up to that moment. Each item is mapped to one :class:`MCItem` (video path,
question, options, the time it is asked at, the right option), which ``bench_mc.py`` replays
through the live API. The file formats (as the benchmarks publish them):

**OVO-Bench** (``ovo_bench_new.json``; lmms-eval's per-mode ``data.json`` files have the same
items): a JSON list of ``{"id", "task", "video", "realtime", "question", "options", "gt"}`` with
``task`` a code — backward tracing ``EPM``, ``ASI``, ``HLD``; real-time perception ``STU``,
``OJR``, ``ATR``, ``ACR``, ``OCR``, ``FPD``; forward active responding ``REC``, ``SSR``, ``CRR``
(those have ``test_info`` lists instead of options, and are skipped here). ``video`` is relative
to the benchmark's video folder, ``realtime`` is seconds into the video, ``gt`` the index of the
right option (``answer`` repeats its text).

**StreamingBench** (``questions_real.json`` and the other ``questions_*.json``): a JSON list of
``{"video_path", "video_categories", "questions": [{"task_type", "question", "time_stamp",
"options", "answer", "required_ability"}]}`` with ``time_stamp`` as ``"HH:MM:SS"``, options
written ``"A. ..."`` and ``answer`` the letter. Questions without options are skipped.

The engine answers in words, citing events; it is not asked to pick a letter. :func:`choose`
maps an answer to an option: a letter the answer states (a decoder told the options may give
one), a yes/no answer to yes/no options, else the option sharing the most words with the answer
and its cited events' captions — none when nothing matches or two options tie, which scores as
wrong. Report :func:`chance` next to the accuracy: the floor a random pick gets.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

OVO_BACKWARD = ("EPM", "ASI", "HLD")
OVO_REALTIME = ("STU", "OJR", "ATR", "ACR", "OCR", "FPD")
OVO_FORWARD = ("REC", "SSR", "CRR")
LETTERS = "ABCDEFGHIJ"
_STOP = (
    "a an the of in on at to is are was were be been it its this that these those there here "
    "and or with by for from as into onto over under me my i you your he she they them his her "
    "their what which who whom when where how do did does doing done not no yes can could "
    "would should will shall may might just now right currently video"
)
STOPWORDS = frozenset(_STOP.split(" "))


class FormatError(ValueError):
    """A question file that is not in the format its reader expects."""


@dataclass(frozen=True)
class MCItem:
    source: str  # "ovo" or "streamingbench"
    id: str
    task: str  # OVO task code or StreamingBench task_type
    mode: str  # "backward", "realtime" (OVO) or "streaming" (StreamingBench)
    video: Path
    question: str
    options: tuple[str, ...]  # option texts, without their "A." letters
    answer: int  # index of the right option
    at: float  # seconds into the video when the question is asked


def _load(path: Path) -> Any:
    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise FormatError(f"{path}: not JSON ({exc})") from None


def _video(video_dir: Path | None, relative: str) -> Path:
    """The video file: ``relative`` under ``video_dir`` (or as given without one)."""
    rel = Path(relative.removeprefix("./"))
    if video_dir is None:
        return rel
    candidate = Path(video_dir) / rel
    if candidate.exists() or rel.is_absolute():
        return candidate
    by_name = Path(video_dir) / rel.name  # folders flattened when unpacked
    return by_name if by_name.exists() else candidate


def read_ovo(
    path: Path, video_dir: Path | None = None, modes: tuple[str, ...] = ("backward", "realtime")
) -> tuple[list[MCItem], list[str]]:
    """OVO-Bench items of ``modes`` and why the others were skipped (one line each)."""
    data = _load(path)
    if isinstance(data, dict):  # {"backward": [...], "realtime": [...], "forward": [...]}
        data = [item for key in ("backward", "realtime", "forward") for item in data.get(key, [])]
    if not isinstance(data, list):
        raise FormatError(f"{path}: an OVO-Bench file is a JSON list of questions")
    items: list[MCItem] = []
    skipped: list[str] = []
    for k, raw in enumerate(data):
        where = f"{path.name}[{k}] (id {raw.get('id', '?') if isinstance(raw, dict) else '?'})"
        if not isinstance(raw, dict) or "task" not in raw or "video" not in raw:
            raise FormatError(f"{where}: needs 'task' and 'video'")
        task = str(raw["task"])
        mode = (
            "backward" if task in OVO_BACKWARD else "realtime" if task in OVO_REALTIME
            else "forward" if task in OVO_FORWARD else None
        )  # fmt: skip
        if mode is None:
            raise FormatError(f"{where}: unknown OVO-Bench task {task!r}")
        if mode not in modes:
            skipped.append(f"{where}: {task} is a {mode} task (not read)")
            continue
        options, gt, at = raw.get("options"), raw.get("gt"), raw.get("realtime")
        if not isinstance(options, list) or len(options) < 2:
            raise FormatError(f"{where}: 'options' must be a list of at least two answers")
        if not isinstance(gt, int) or not 0 <= gt < len(options):
            raise FormatError(f"{where}: 'gt' must index 'options' (got {gt!r})")
        if not isinstance(at, (int, float)) or at < 0:
            raise FormatError(f"{where}: 'realtime' must be seconds into the video")
        items.append(MCItem(
            "ovo", str(raw.get("id", k)), task, mode, _video(video_dir, str(raw["video"])),
            str(raw["question"]), tuple(str(o) for o in options), gt, float(at),
        ))  # fmt: skip
    return items, skipped


def parse_timestamp(text: str | float | int) -> float:
    """``"00:03:10"`` / ``"3:10"`` / ``"190"`` / ``190`` -> seconds."""
    if isinstance(text, (int, float)):
        return float(text)
    parts = str(text).strip().split(":")
    try:
        values = [float(p) for p in parts]
    except ValueError:
        raise FormatError(f"not a time stamp: {text!r}") from None
    if not 1 <= len(values) <= 3 or any(v < 0 for v in values):
        raise FormatError(f"not a time stamp: {text!r}")
    seconds = 0.0
    for value in values:
        seconds = seconds * 60 + value
    return seconds


_LETTERED = re.compile(r"^\s*\(?([A-J])\s*[.):]\s*")


def read_streamingbench(
    path: Path, video_dir: Path | None = None
) -> tuple[list[MCItem], list[str]]:
    """StreamingBench multiple-choice items and why the others were skipped."""
    data = _load(path)
    if not isinstance(data, list):
        raise FormatError(f"{path}: a StreamingBench file is a JSON list of videos")
    items: list[MCItem] = []
    skipped: list[str] = []
    for v, entry in enumerate(data):
        if not isinstance(entry, dict) or "video_path" not in entry or "questions" not in entry:
            raise FormatError(f"{path.name}[{v}]: needs 'video_path' and 'questions'")
        video = _video(video_dir, str(entry["video_path"]))
        for q, raw in enumerate(entry["questions"]):
            where = f"{path.name}[{v}].questions[{q}]"
            options = raw.get("options")
            if not options:
                skipped.append(f"{where}: open-ended (no options)")
                continue
            texts = tuple(_LETTERED.sub("", str(o), count=1).strip() for o in options)
            letter = str(raw.get("answer", "")).strip().upper()[:1]
            if not letter or letter not in LETTERS[: len(texts)]:
                raise FormatError(f"{where}: 'answer' must be one of the option letters")
            items.append(MCItem(
                "streamingbench", f"{v}.{q}", str(raw.get("task_type", "?")), "streaming",
                video, str(raw["question"]), texts, LETTERS.index(letter),
                parse_timestamp(raw["time_stamp"]),
            ))  # fmt: skip
    return items, skipped


def words(text: str) -> set[str]:
    """Content words, lowercased, a plural 's' dropped."""
    out = set()
    for word in re.findall(r"[a-z0-9]+", text.lower()):
        if word in STOPWORDS or len(word) < 2:
            continue
        out.add(word[:-1] if len(word) > 3 and word.endswith("s") else word)
    return out


_STATED = re.compile(
    r"(?:^\s*\(?([A-J])\s*[.):]|\b(?:answer|option)(?: is)?:?\s*\(?([A-J])\b|^\s*([A-J])\s*$)"
)


def choose(text: str, options: tuple[str, ...] | list[str], evidence: str = "") -> int | None:
    """The option an answer picks (see the module docstring), or None."""
    stated = _STATED.search(text)
    if stated:
        letter = next(g for g in stated.groups() if g)
        if LETTERS.index(letter) < len(options):
            return LETTERS.index(letter)
    lowered = [o.strip().lower().rstrip(".") for o in options]
    if set(lowered) <= {"yes", "no"}:
        first = re.match(r"\W*(yes|no)\b", text.lower())
        return lowered.index(first.group(1)) if first and first.group(1) in lowered else None
    said = words(f"{text} {evidence}")
    scores = []
    for option in options:
        own = words(option)
        scores.append(len(own & said) / len(own) if own else 0.0)
    best = max(scores, default=0.0)
    if best <= 0 or scores.count(best) > 1:
        return None
    return scores.index(best)


def chance(items: list[MCItem]) -> float:
    """Expected accuracy of a uniformly random pick over ``items``."""
    return sum(1 / len(i.options) for i in items) / len(items) if items else float("nan")


def question_text(item: MCItem, with_options: bool) -> str:
    """What is sent: the question alone, or with its lettered options (for a decoder that can
    pick one)."""
    if not with_options:
        return item.question
    listed = " ".join(f"{LETTERS[k]}. {o}" for k, o in enumerate(item.options))
    return f"{item.question} Options: {listed} Answer with the letter."
