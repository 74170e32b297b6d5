"""Source URLs: live or file, and never a secret in what is shown."""

from __future__ import annotations

from eventvstream.media.urls import is_live_source, redact_text, redact_url


def test_redaction_and_source_kinds():
    url = "rtsp://admin:hunter2@10.0.0.5:554/Streaming/Channels/101?token=abc&channel=1"
    shown = redact_url(url)
    assert "hunter2" not in shown and "admin" not in shown and "abc" not in shown
    assert shown.startswith("rtsp://***:***@10.0.0.5:554/Streaming/Channels/101?")
    assert "channel=1" in shown
    assert redact_text(f"could not open {url}: 401", url).count("hunter2") == 0
    assert redact_text("Server said hunter2 is wrong", url) == "Server said *** is wrong"
    assert all(map(is_live_source, ["rtsp://x/y", "rtmp://x/app/key", "https://x/a.m3u8",
                                    "/dev/video0", "http://cam/mjpg/video.mjpg"]))  # fmt: skip
    assert not any(map(is_live_source, ["clip.mp4", "/tmp/a.mkv", "file:///tmp/a.mp4"]))
