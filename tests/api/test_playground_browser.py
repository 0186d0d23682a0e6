"""The playground in a real browser (headless Debian Chromium, tests/browser.py) against the shared
tiny-model server: fill the form from the keyboard, compress, and find a shorter prompt, struck-through
words and the per-document table; the page loads nothing from another origin and breaks no rule of its
Content-Security-Policy; errors appear as the API worded them; a bundled example fills the form."""

from __future__ import annotations

from urllib.parse import urlsplit

import httpx
import pytest

from tests.browser import chromium

from .conftest import KEYS, text

pytestmark = pytest.mark.timeout(300)
WAIT_S = 60  # a compression on a busy 2-core machine


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    with chromium(tmp_path_factory.mktemp("chromium-profile")) as driver:
        yield driver


def by_id(driver, id_: str):
    from selenium.webdriver.common.by import By

    return driver.find_element(By.ID, id_)


def wait_for(driver, condition, seconds: float = WAIT_S):
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(driver, seconds).until(condition)


def open_page(driver, server) -> None:
    driver.get(server.url + "/playground")
    wait_for(driver, lambda d: d.execute_script("return document.querySelectorAll('#example option').length") == 3)


def type_into(element, value: str) -> None:
    element.clear()
    element.send_keys(value)


def fill_and_compress(driver, server, key: str, documents: list[str]) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    open_page(driver, server)
    type_into(by_id(driver, "instruction"), "Answer from the documents.")
    type_into(by_id(driver, "document-1"), documents[0])
    for i, doc in enumerate(documents[1:], start=2):
        by_id(driver, "add-document").send_keys(Keys.ENTER)  # keyboard: a focused button and Enter
        box = by_id(driver, f"document-{i}")
        assert driver.switch_to.active_element == box  # focus moves to the new box
        box.send_keys(doc)
    type_into(by_id(driver, "question"), "Question: what did the students paint?\nAnswer:")
    type_into(by_id(driver, "rate"), "0.4")
    type_into(by_id(driver, "api-key"), key)
    labels = {e.get_attribute("for") for e in driver.find_elements(By.TAG_NAME, "label")}
    for control in ("instruction", "document-1", "question", "method", "ranker", "reorder", "api-key"):
        assert control in labels, control  # every field has its label
    by_id(driver, "compress").send_keys(Keys.ENTER)


def test_compress_in_the_browser_shows_what_was_dropped(browser, server, tmp_path):
    from selenium.webdriver.common.by import By

    documents = [text(71, 45), text(72, 45), text(73, 45)]
    fill_and_compress(browser, server, KEYS["alice"], documents)
    wait_for(browser, lambda d: by_id(d, "result").is_displayed() or by_id(d, "error").is_displayed())
    assert not by_id(browser, "error").is_displayed(), by_id(browser, "error").text

    compressed = by_id(browser, "compressed").text
    original = "\n\n".join(["Answer from the documents.", *documents, "Question: what did the students paint?"])
    assert 0 < len(compressed) < len(original)
    assert compressed.startswith("Answer from the documents.")
    summary = by_id(browser, "summary").text
    assert "Ratio" in summary and "Tokens saved" in summary and "token level" in summary

    labels = by_id(browser, "labels")
    struck = labels.find_elements(By.TAG_NAME, "del")
    assert struck and all(s.value_of_css_property("text-decoration-line") == "line-through" for s in struck)
    assert labels.find_elements(By.CSS_SELECTOR, "span.s0, span.s1, span.s2, span.s3, span.s4")
    for i, doc in enumerate(documents):  # struck and kept words together are the document sent
        shown = labels.find_elements(By.CSS_SELECTOR, ".doc p")[i].text
        assert shown.split() == doc.split()

    rows = by_id(browser, "doc-table").find_elements(By.CSS_SELECTOR, "tbody tr")
    assert len(rows) == 3
    cells = [[c.text for c in r.find_elements(By.CSS_SELECTOR, "th, td")] for r in rows]
    assert [c[0] for c in cells] == ["1", "2", "3"] and {c[1] for c in cells} <= {"yes", "no"}
    assert all(int(c[4]) >= int(c[5]) >= 0 for c in cells)  # tokens before, after
    assert sorted(c[2] for c in cells) == ["0", "1", "2"]  # ranks

    shot = tmp_path / "playground.png"
    assert browser.get_screenshot_as_file(str(shot)) and shot.stat().st_size > 10_000


def test_the_page_loads_nothing_from_another_origin(browser, server):
    open_page(browser, server)
    origin = "{0.scheme}://{0.netloc}".format(urlsplit(server.url))
    values = browser.execute_script(
        "return Array.from(document.querySelectorAll('[src], [href]'))"
        ".map(e => new URL(e.getAttribute('src') || e.getAttribute('href'), location.href).href)"
    )
    assert values and all(v.startswith(origin + "/") for v in values), values
    resources = browser.execute_script("return performance.getEntriesByType('resource').map(e => e.name)")
    assert resources and all(r.startswith(origin + "/") for r in resources), resources
    policy = httpx.get(server.url + "/playground", timeout=10).headers["content-security-policy"]
    assert "default-src 'none'" in policy and "script-src 'self'" in policy
    broken = [e for e in browser.get_log("browser") if "Content Security Policy" in e["message"]]
    assert not broken, broken


def test_errors_appear_as_the_api_worded_them(browser, server):
    fill_and_compress(browser, server, "not-a-key", [text(74, 30)])
    error = by_id(browser, "error")
    wait_for(browser, lambda d: error.is_displayed())
    api = httpx.post(
        server.url + "/v1/compress", json={"context": "x"}, headers={"Authorization": "Bearer not-a-key"}, timeout=10
    ).json()["error"]
    assert error.text == f"401 {api['type']}: {api['message']}"
    assert not by_id(browser, "result").is_displayed()


def test_a_bundled_example_fills_the_form(browser, server):
    from selenium.webdriver.support.ui import Select

    open_page(browser, server)
    Select(by_id(browser, "example")).select_by_index(2)  # the few-shot math prompt
    by_id(browser, "load-example").click()
    boxes = browser.execute_script("return Array.from(document.querySelectorAll('#document-list textarea'))")
    assert len(boxes) == 3 and all("The answer is" in b.get_attribute("value") for b in boxes)
    assert by_id(browser, "question").get_attribute("value").startswith("Question: ")
    assert Select(by_id(browser, "method")).first_selected_option.get_attribute("value") == "llmlingua"
    remove = boxes[1].find_element("xpath", "..").find_element("css selector", "button.remove")
    assert remove.get_attribute("aria-label") == "Remove document 2"
    remove.click()
    assert len(browser.execute_script("return document.querySelectorAll('#document-list textarea')")) == 2
