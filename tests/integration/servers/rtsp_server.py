"""A real RTSP server for the live-source tests: GStreamer's RTSP server (Debian packages
gir1.2-gst-rtsp-server-1.0, python3-gi, gstreamer1.0-plugins-{base,good,ugly}).

Run by Debian's own ``/usr/bin/python3`` (where python3-gi lives), not the project's venv:

    /usr/bin/python3 rtsp_server.py PORT [--fps 10] [--user U --password P]

serves a live H.264 test pattern at ``rtsp://127.0.0.1:PORT/cam`` (with Basic authentication
when a user is given) and prints ``ready`` once it listens.
"""

import argparse
import sys

import gi

gi.require_version("Gst", "1.0")
gi.require_version("GstRtspServer", "1.0")
from gi.repository import GLib, Gst, GstRtspServer  # noqa: E402

ap = argparse.ArgumentParser()
ap.add_argument("port", type=int)
ap.add_argument("--fps", type=int, default=10)
ap.add_argument("--user")
ap.add_argument("--password")
args = ap.parse_args()

Gst.init(None)
server = GstRtspServer.RTSPServer()
server.set_address("127.0.0.1")
server.set_service(str(args.port))
factory = GstRtspServer.RTSPMediaFactory()
factory.set_launch(
    f"( videotestsrc is-live=true pattern=ball ! video/x-raw,width=320,height=240,"
    f"framerate={args.fps}/1 ! x264enc tune=zerolatency speed-preset=ultrafast "
    f"key-int-max={args.fps} ! rtph264pay name=pay0 pt=96 config-interval=1 )"
)
factory.set_shared(True)
if args.user:
    auth = GstRtspServer.RTSPAuth()
    token = GstRtspServer.RTSPToken()
    token.set_string("media.factory.role", "viewer")
    auth.add_basic(GstRtspServer.RTSPAuth.make_basic(args.user, args.password), token)
    server.set_auth(auth)
    permissions = GstRtspServer.RTSPPermissions()
    role = "viewer,media.factory.access=true,media.factory.construct=true"
    permissions.add_role_from_structure(Gst.Structure.from_string(role)[0])
    factory.set_permissions(permissions)
server.get_mount_points().add_factory("/cam", factory)
if server.attach(None) == 0:
    print("cannot listen", flush=True)
    sys.exit(1)
print("ready", flush=True)
GLib.MainLoop().run()
