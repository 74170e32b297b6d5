"""``/docs`` (Swagger UI) and ``/redoc`` (ReDoc) from local files, so they work offline.

FastAPI's own pages load both from a CDN and start Swagger UI with an inline script — blank on a
machine without internet, and against the Content-Security-Policy the server sends. Here the
assets come from the ``fastapi-offline`` package (Swagger UI, Apache-2.0; ReDoc, MIT; about
2.8 MB, installed as a dependency), served under ``/docs-assets``, and Swagger UI starts from a
script file of ours (``static/docs/swagger-init.js``). Without the package both pages answer 404
with a message saying what to install; the API itself does not need them.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

from fastapi import FastAPI
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

from eventvstream.errors import EvsError

ASSETS_PACKAGE = "fastapi_offline"

SWAGGER_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{title} - API docs</title>
<link rel="stylesheet" href="/docs-assets/swagger-ui.css">
<link rel="icon" href="/docs-assets/favicon.png"></head>
<body><div id="swagger-ui"></div>
<script src="/docs-assets/swagger-ui-bundle.js"></script>
<script src="/static/docs/swagger-init.js"></script></body></html>
"""
REDOC_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{title} - ReDoc</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<link rel="icon" href="/docs-assets/favicon.png"></head>
<body><redoc spec-url="/openapi.json"></redoc>
<script src="/docs-assets/redoc.standalone.js"></script></body></html>
"""


def assets_dir() -> Path | None:
    spec = importlib.util.find_spec(ASSETS_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        return None
    folder = Path(next(iter(spec.submodule_search_locations))) / "static"
    return folder if (folder / "swagger-ui-bundle.js").is_file() else None


def install(app: FastAPI) -> None:
    assets = assets_dir()
    if assets is not None:
        app.mount("/docs-assets", StaticFiles(directory=assets), name="docs-assets")
    title = app.title

    def page(template: str) -> HTMLResponse:
        if assets is None:
            raise EvsError(
                f"the API docs need the {ASSETS_PACKAGE} package (pip install fastapi-offline); "
                "the schema is at /openapi.json",
                code="not_found",
            )
        return HTMLResponse(template.format(title=title))

    @app.get("/docs", include_in_schema=False)
    async def swagger_ui() -> HTMLResponse:
        return page(SWAGGER_PAGE)

    @app.get("/redoc", include_in_schema=False)
    async def redoc() -> HTMLResponse:
        return page(REDOC_PAGE)
