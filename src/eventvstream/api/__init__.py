"""The HTTP + WebSocket API (FastAPI): ``create_app(settings)``; run it with ``evs serve``."""

from eventvstream.api.app import create_app

__all__ = ["create_app"]
