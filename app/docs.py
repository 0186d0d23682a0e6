"""`/docs`: Swagger UI for the OpenAPI document, served by terse itself so that it works offline and
on air-gapped clusters. FastAPI's own page loads Swagger UI from a CDN; here the files come from the
`fastapi-offline` package's wheel (its static/ folder), each on a named route below /docs/assets/,
and a Content-Security-Policy keeps the page from loading or sending anything to another origin
(Swagger UI's online validator badge is turned off too: it would send the spec's URL away)."""

from __future__ import annotations

import base64
import hashlib
import re
from pathlib import Path

import fastapi_offline
from fastapi import APIRouter, Request
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import FileResponse, Response
from starlette.exceptions import HTTPException

STATIC = Path(fastapi_offline.__file__).parent / "static"
ASSETS_PATH = "/docs/assets"
# The files the page is made of; nothing else is served from the package's folder.
FILES = {
    "swagger-ui-bundle.js": "text/javascript; charset=utf-8",
    "swagger-ui.css": "text/css; charset=utf-8",
    "favicon.png": "image/png",
}
HEADERS = {"X-Content-Type-Options": "nosniff", "Referrer-Policy": "no-referrer"}
_INLINE_SCRIPT = re.compile(r"<script>(.*?)</script>", re.S)


def policy(html: str) -> str:
    """This origin only; the page's one inline script (it starts Swagger UI) allowed by its hash."""
    hashes = " ".join(
        "'sha256-" + base64.b64encode(hashlib.sha256(s.encode()).digest()).decode() + "'"
        for s in _INLINE_SCRIPT.findall(html)
    )
    return (
        f"default-src 'none'; script-src 'self' {hashes}; style-src 'self' 'unsafe-inline'; "
        "img-src 'self' data:; connect-src 'self'; font-src 'self'; base-uri 'none'; form-action 'self'; "
        "frame-ancestors 'none'"
    )


def build_docs(title: str, openapi_url: str) -> APIRouter:
    router = APIRouter(include_in_schema=False)

    @router.get("/docs")
    async def page(request: Request) -> Response:
        root = request.scope.get("root_path", "")
        html = get_swagger_ui_html(
            openapi_url=root + openapi_url,
            title=f"{title} - Swagger UI",
            swagger_js_url=f"{root}{ASSETS_PATH}/swagger-ui-bundle.js",
            swagger_css_url=f"{root}{ASSETS_PATH}/swagger-ui.css",
            swagger_favicon_url=f"{root}{ASSETS_PATH}/favicon.png",
            swagger_ui_parameters={"validatorUrl": None},
        )
        body = bytes(html.body).decode()
        return Response(
            body, media_type="text/html; charset=utf-8", headers={**HEADERS, "Content-Security-Policy": policy(body)}
        )

    @router.get(ASSETS_PATH + "/{name}")
    async def asset(name: str) -> Response:
        if name not in FILES:
            raise HTTPException(404, f"no such docs file: {name}")
        return FileResponse(STATIC / name, media_type=FILES[name], headers={**HEADERS, "Cache-Control": "max-age=3600"})

    return router
