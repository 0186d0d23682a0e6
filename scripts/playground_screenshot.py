"""The README's screenshot of the playground (docs/img/playground.png): terse on the embedded model on
127.0.0.1, headless Debian Chromium (tests/browser.py), the bundled RAG example (NQ passages from
../shared/data, scripts/playground_examples.py) compressed with its own settings, the whole page.

    flock /tmp/terse-cpu.lock .venv/bin/python scripts/playground_screenshot.py [--out docs/img/playground.png]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
WIDTH = 1280


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, default=ROOT / "docs" / "img" / "playground.png")
    ap.add_argument("--example", type=int, default=0, help="index in examples.json (0: RAG)")
    args = ap.parse_args(argv)
    sys.path.insert(0, str(ROOT))
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select, WebDriverWait

    from loadtests.server import Service
    from tests.browser import chromium

    with tempfile.TemporaryDirectory(prefix="terse-shot-") as tmp:
        svc = Service(Path(tmp) / "server", {"model": "embedded", "log_level": "warning"})
        try:
            svc.wait()
            with chromium(Path(tmp) / "profile", width=WIDTH, height=900) as driver:
                driver.get(svc.url + "/playground")
                WebDriverWait(driver, 30).until(lambda d: len(d.find_elements(By.CSS_SELECTOR, "#example option")) > 1)
                Select(driver.find_element(By.ID, "example")).select_by_index(args.example + 1)
                driver.find_element(By.ID, "load-example").click()
                driver.find_element(By.ID, "compress").click()
                shown = lambda d: any(d.find_element(By.ID, i).is_displayed() for i in ("result", "error"))  # noqa: E731
                WebDriverWait(driver, 300).until(shown)
                error = driver.find_element(By.ID, "error")
                if error.is_displayed():
                    raise SystemExit(f"the page shows an error: {error.text}")
                driver.execute_script("document.activeElement.blur(); window.scrollTo(0, 0)")
                height = driver.execute_script("return document.documentElement.scrollHeight")
                driver.set_window_size(WIDTH, height + 140)  # the window's frame, beyond the page
                args.out.parent.mkdir(parents=True, exist_ok=True)
                driver.get_screenshot_as_file(str(args.out))
                print(driver.find_element(By.ID, "summary").text.replace("\n", " "))
        finally:
            svc.stop()
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
