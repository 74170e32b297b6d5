"""Real servers the live-source tests start (RTSP via GStreamer, MJPEG over HTTP)."""
