"""The playground page over HTTP (app/playground.py): served with a strict Content-Security-Policy,
made only of its own files (nothing names another host, no inline script or style), shipped by a
non-editable install, linked from `/`, and gone (404) with TERSE_PLAYGROUND=false."""

from __future__ import annotations

import asyncio
import json
import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import httpx
import pytest

from app.playground import FILES, STATIC

from .conftest import AUTH, REPO, assert_error

# Any URL that names a host: the SVG's XML namespace is an identifier, not something loaded.
EXTERNAL = re.compile(r"(?:https?:)?//(?!www\.w3\.org/2000/svg\")[\w.-]+\.[a-z]{2,}", re.I)


def csp(headers: httpx.Headers) -> dict[str, str]:
    policy = headers["content-security-policy"]
    return {d.split()[0]: " ".join(d.split()[1:]) for d in policy.split(";") if d.strip()}


def test_the_page_and_its_files_are_served_with_a_strict_policy(server):
    page = httpx.get(server.url + "/playground", timeout=10)
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    policy = csp(page.headers)
    assert policy["default-src"] == "'none'"
    for directive in ("script-src", "style-src", "connect-src", "img-src"):
        assert policy[directive] == "'self'", policy
    assert "unsafe" not in page.headers["content-security-policy"]
    assert policy["frame-ancestors"] == "'none'" and page.headers["x-content-type-options"] == "nosniff"
    for name, ctype in FILES.items():
        r = httpx.get(f"{server.url}/playground/{name}", timeout=10)
        assert r.status_code == 200 and r.headers["content-type"] == ctype, (name, r.headers)
        assert r.content == (STATIC / name).read_bytes()
    for other in ("/playground/settings.py", "/playground/..%2Fmain.py"):  # not public: 401, with a key 404
        assert_error(httpx.get(server.url + other, timeout=10), 401, "unauthorized")
        assert_error(httpx.get(server.url + other, headers=AUTH, timeout=10), 404)


def test_the_page_names_no_other_host_and_runs_no_inline_code():
    html = (STATIC / "index.html").read_text(encoding="utf-8")
    for path in STATIC.iterdir():
        assert not EXTERNAL.search(path.read_text(encoding="utf-8")), path.name
    assert re.findall(r"<script\b[^>]*>", html) == ['<script src="playground/app.js" defer>']
    assert "<style" not in html and " style=" not in html and not re.search(r"\son\w+=", html)
    assert sorted(p.name for p in STATIC.iterdir()) == sorted([*FILES, "index.html"])


def test_the_bundled_examples():
    examples = json.loads((STATIC / "examples.json").read_text(encoding="utf-8"))
    assert [e["settings"]["method"] for e in examples] == ["longllmlingua", "llmlingua"]
    rag, math = examples
    assert len(rag["documents"]) == 5 and "Röntgen" in "".join(rag["documents"])
    assert rag["question"].startswith("Question: ") and rag["instruction"]
    assert all("The answer is" in d for d in math["documents"]) and math["question"].startswith("Question: ")
    assert sum(len(d) for e in examples for d in e["documents"]) < 8000  # small: the page is for looking


def test_home_links_to_the_playground_and_the_docs(server):
    r = httpx.get(server.url + "/", timeout=10)
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    assert 'href="playground"' in r.text and 'href="docs"' in r.text


def test_the_setting_turns_the_page_off():
    from app.main import create_app
    from app.settings import Settings

    app = create_app(Settings(playground=False, model="unused"))

    async def get(path: str) -> httpx.Response:  # in-process: no lifespan, so no model
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://terse") as c:
            return await c.get(path)

    for path in ("/playground", "/playground/app.js"):
        assert_error(asyncio.run(get(path)), 404, "not_found")
    home = asyncio.run(get("/"))
    assert home.status_code == 200 and "playground" not in home.text and 'href="docs"' in home.text


@pytest.mark.timeout(120)
def test_a_non_editable_install_ships_the_page(tmp_path):
    src = tmp_path / "src"
    for part in ("app", "compressors"):
        shutil.copytree(REPO / part, src / part, ignore=shutil.ignore_patterns("__pycache__"))
    for part in ("pyproject.toml", "README.md"):
        shutil.copy(REPO / part, src / part)
    pip_wheel = [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation"]
    subprocess.run([*pip_wheel, str(src), "-w", str(tmp_path)], check=True, cwd=tmp_path)
    (wheel,) = Path(tmp_path).glob("terse-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    assert {f"app/static/playground/{n}" for n in [*FILES, "index.html"]} <= names
