"""The pages a person opens in a browser: `/` (links to the playground and the API docs) and
`/playground`, one static page (app/static/playground/) that sends its form to /v1/compress with
`return_labels` and draws what compression dropped. No build step and nothing from outside terse
(deployments may be offline): every file is served from here, and a strict Content-Security-Policy
lets the page load scripts, styles and data from this origin only. TERSE_PLAYGROUND=false removes it."""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter
from fastapi.responses import FileResponse, HTMLResponse, Response
from starlette.exceptions import HTTPException

STATIC = Path(__file__).parent / "static" / "playground"
# The files the page is made of; nothing else under /playground/ is served.
FILES = {
    "app.js": "text/javascript; charset=utf-8",
    "style.css": "text/css; charset=utf-8",
    "examples.json": "application/json",
    "favicon.svg": "image/svg+xml",
}
CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; "
    "base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)
HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-cache",
}

HOME = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>terse</title>
<meta name="viewport" content="width=device-width, initial-scale=1"></head>
<body><h1>terse</h1><p>Prompt compression as an HTTP microservice.</p><ul>{links}</ul></body></html>
"""


def build_pages(playground: bool) -> APIRouter:
    router = APIRouter(include_in_schema=False)
    links = ['<li><a href="docs">API documentation</a> (<a href="openapi.json">OpenAPI</a>)</li>']
    if playground:
        links.insert(0, '<li><a href="playground">Playground</a>: see what compression keeps and drops</li>')
    home = HOME.format(links="".join(links))

    @router.get("/")
    async def index() -> Response:
        return HTMLResponse(home, headers=HEADERS)

    if not playground:
        return router

    @router.get("/playground")
    async def page() -> Response:
        return FileResponse(STATIC / "index.html", media_type="text/html; charset=utf-8", headers=HEADERS)

    @router.get("/playground/{name}")
    async def asset(name: str) -> Response:
        if name not in FILES:
            raise HTTPException(404, f"no such playground file: {name}")
        return FileResponse(STATIC / name, media_type=FILES[name], headers=HEADERS)

    return router
