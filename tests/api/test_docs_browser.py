"""/docs in a real browser (headless Debian Chromium, tests/browser.py) against the shared tiny-model
server: Swagger UI renders the API from files terse serves itself, every request the page makes stays
on this origin, and its Content-Security-Policy is never broken (offline clusters, issue 22)."""

from __future__ import annotations

from urllib.parse import urlsplit

import pytest

from tests.browser import chromium

pytestmark = pytest.mark.timeout(300)


def test_swagger_ui_renders_with_nothing_from_another_origin(server, tmp_path):
    from selenium.webdriver.support.ui import WebDriverWait

    with chromium(tmp_path / "profile") as driver:
        driver.get(server.url + "/docs")
        WebDriverWait(driver, 60).until(
            lambda d: d.execute_script("return document.querySelectorAll('.opblock').length") > 5
        )
        title = driver.execute_script("return document.querySelector('.info .title').textContent")
        assert title.startswith("terse"), title
        origin = "{0.scheme}://{0.netloc}".format(urlsplit(server.url))
        resources = driver.execute_script("return performance.getEntriesByType('resource').map(e => e.name)")
        assert any(r.endswith("/openapi.json") for r in resources), resources
        assert all(r.startswith(origin + "/") or r.startswith("data:") for r in resources), resources
        broken = [e for e in driver.get_log("browser") if "Content Security Policy" in e["message"]]
        assert not broken, broken
