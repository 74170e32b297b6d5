"""A fake-free MJPEG IP camera for the tests: a real HTTP server sending
``multipart/x-mixed-replace`` JPEGs at a steady rate, with optional Basic authentication."""

from __future__ import annotations

import base64
import http.server
import socket
import threading
import time


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class MjpegCamera:
    """multipart/x-mixed-replace over HTTP at ``fps``, like most IP cameras and go2rtc; with
    Basic auth when ``credentials`` are given. ``stop()`` drops every connection (a camera
    reboot); ``start()`` again on the same port brings it back."""

    def __init__(self, frames: list[bytes], fps: float = 10.0, credentials: str | None = None):
        self.frames, self.fps, self.credentials = frames, fps, credentials
        self.port = free_port()
        self.requests = 0
        self.server: http.server.ThreadingHTTPServer | None = None
        self.alive = threading.Event()

    def start(self) -> MjpegCamera:
        camera = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                camera.requests += 1
                if camera.credentials:
                    expected = "Basic " + base64.b64encode(camera.credentials.encode()).decode()
                    if self.headers.get("Authorization") != expected:
                        self.send_response(401)
                        self.send_header("WWW-Authenticate", 'Basic realm="cam"')
                        self.send_header("Content-Length", "0")
                        self.end_headers()
                        return
                self.send_response(200)
                self.send_header("Content-Type", "multipart/x-mixed-replace; boundary=frame")
                self.end_headers()
                i = 0
                try:
                    while camera.alive.is_set():
                        jpeg = camera.frames[i % len(camera.frames)]
                        i += 1
                        head = b"--frame\r\nContent-Type: image/jpeg\r\n"
                        head += b"Content-Length: %d\r\n\r\n" % len(jpeg)
                        self.wfile.write(head + jpeg + b"\r\n")
                        self.wfile.flush()
                        time.sleep(1.0 / camera.fps)
                except OSError:
                    pass

            def log_message(self, *args: object) -> None:
                pass

        http.server.ThreadingHTTPServer.allow_reuse_address = True
        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self.server.daemon_threads = True
        self.alive.set()
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        self.alive.clear()  # every streaming handler ends its response
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()
            self.server = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/stream.mjpg"
