"""The web page in a real browser (Debian's chromium + chromium-driver through Selenium).

One browser session and one analysis: the page is loaded from the real server of
tests/serve/conftest.py, the example clip is uploaded through the file input and everything the
page shows is checked against the result it received. A screenshot is saved under the test's
tmp dir (the path is printed; run with ``-s`` to see it).
"""

from __future__ import annotations

import hashlib
import re
import shutil
from pathlib import Path

import pytest

from tests.clips import EXAMPLE

STATIC = Path(__file__).resolve().parents[2] / "emollama" / "serve" / "static"
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMEDRIVER = shutil.which("chromedriver")
# The server runs without speech recognition (conftest); the subtitle stands in for it.
SUBTITLE = "Oh, this is wonderful news. I am so happy, thank you all so much."
ANALYSIS_TIMEOUT_S = 240  # one clip on two shared cores, models already loaded


def test_page_loads_nothing_from_outside() -> None:
    """The machines are offline: the page's files must not name any other host (no CDN, no fonts)."""
    for name in ("index.html", "app.js", "app.css"):
        text = (STATIC / name).read_text(encoding="utf-8")
        assert not re.search(r"https?://|(src|href)=[\"']//|url\(\s*[\"']?(https?:)?//", text), name


@pytest.fixture(scope="module")
def browser():
    if not (CHROMIUM and CHROMEDRIVER):
        pytest.skip("chromium and chromedriver are not installed (Debian: apt-get install chromium chromium-driver)")
    webdriver = pytest.importorskip("selenium.webdriver", reason="selenium is not installed (pip install -e '.[dev]')")
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    # Naming both binaries keeps Selenium Manager from looking for (or downloading) a browser.
    options.binary_location = CHROMIUM
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu", "--mute-audio",
                "--window-size=1280,1400"):
        options.add_argument(arg)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    try:
        yield driver
    finally:
        driver.quit()


def test_page_analyzes_the_example_clip(browser, live_server, tmp_path: Path) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    def wait(condition, timeout: float = 20, message: str = ""):
        return WebDriverWait(browser, timeout, poll_frequency=0.2).until(lambda _d: condition(), message)

    def js(script: str, *args):
        return browser.execute_script(script, *args)

    def element(css: str):
        return browser.find_element(By.CSS_SELECTOR, css)

    live_server.wait_ready()  # an earlier test may have killed a worker
    browser.get(f"{live_server.url}/")
    wait(lambda: element("#labels").find_elements(By.TAG_NAME, "option"), message="/v1/models never filled the form")
    wait(lambda: element("#server-status").text == "Server ready.", message="the page never saw /v1/health ready")
    assert element("#labels").get_attribute("value") == "merr9"

    element("#file").send_keys(str(EXAMPLE.resolve()))
    element("#subtitle").send_keys(SUBTITLE)
    element("#analyze").click()
    wait(lambda: js("return document.body.dataset.state") in ("done", "error"), ANALYSIS_TIMEOUT_S,
         "the analysis did not finish")
    assert js("return document.body.dataset.state") == "done", element("#error").text

    # What the page received (its module state) against what it shows.
    result = js("return state.result")
    assert result["upload"]["name"] == EXAMPLE.name
    assert result["upload"]["sha256"] == hashlib.sha256(EXAMPLE.read_bytes()).hexdigest()
    assert result["clues"]["words"]["source"] == "subtitle"
    assert element("#label").get_attribute("textContent") == result["label"]
    shown = [li.find_element(By.CLASS_NAME, "name").get_attribute("textContent")
             for li in browser.find_elements(By.CSS_SELECTOR, "#scores li")]
    assert sorted(shown) == sorted(result["scores"])
    assert [result["scores"][k] for k in shown] == sorted(result["scores"].values(), reverse=True)  # best first
    assert element("#reasoning").get_attribute("textContent") == result["reasoning"]

    # The streamed progress went through the pipeline's stages.
    stages = [li.get_attribute("textContent") for li in browser.find_elements(By.CSS_SELECTOR, "#stages li")]
    assert "face" in stages, stages

    # A time cue seeks the video to that moment, once the video can seek.
    cues = browser.find_elements(By.CSS_SELECTOR, "#reasoning button.cue")
    assert cues, result["reasoning"]
    cue_s = float(cues[0].get_attribute("data-time"))
    assert abs(cue_s - result["clues"]["face"]["peak"]["time_s"]) < 0.06  # "At 2.9 s, the most expressive moment"
    wait(lambda: js("return document.getElementById('player').readyState") >= 1, message="the video never loaded")
    assert js("return document.getElementById('player').currentTime") == 0
    cues[0].click()
    wait(lambda: js("const v = document.getElementById('player'); return !v.seeking && Math.abs(v.currentTime - "
                    "arguments[0]) < 0.05", cue_s), message="the cue did not seek the video")

    # The AU plot was painted, with its strongest AU in the first highlight colour (orange).
    painted, orange = js("""
        const c = document.getElementById('au-plot');
        const px = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
        let painted = 0, orange = 0;
        for (let i = 0; i < px.length; i += 4) {
          if (px[i + 3] > 0) painted++;
          if (px[i + 3] > 200 && px[i] > 180 && px[i + 1] < 110 && px[i + 2] < 60) orange++;
        }
        return [painted / (c.width * c.height), orange];""")
    assert element("#au-plot").get_attribute("data-drawn") == "true"
    assert painted > 0.05 and orange > 50, (painted, orange)
    legend = element("#au-legend").text
    assert "AU12" in legend and "Peak frame" in legend, legend

    rows = browser.find_elements(By.CSS_SELECTOR, "#evidence tbody tr")
    assert len(rows) == len(result["modality_scores"]) > 0

    # Nothing came from anywhere but the server, and nothing went wrong in the page's own code.
    sources = js("return performance.getEntriesByType('resource').map(e => e.name)")
    assert all(s.startswith((live_server.url, "blob:", "data:")) for s in sources), sources
    problems = [e["message"] for e in browser.get_log("browser") if e["level"] == "SEVERE"]
    assert not problems, problems

    wide = tmp_path / "serve.png"
    browser.set_window_size(1280, js("return document.documentElement.scrollHeight") + 140)
    browser.save_screenshot(str(wide))

    # A phone's width: one column, no sideways scrolling, the plot redrawn to fit.
    browser.set_window_size(390, 900)
    wait(lambda: js("return document.documentElement.scrollWidth <= window.innerWidth"),
         message="the page scrolls sideways at 390 px")
    wait(lambda: js("const c = document.getElementById('au-plot'); return c.width <= c.clientWidth * "
                    "devicePixelRatio + 1"), message="the AU plot was not redrawn at the narrow width")
    js("document.getElementById('result').scrollIntoView()")
    browser.save_screenshot(str(tmp_path / "serve-narrow.png"))
    print(f"screenshots: {wide} and {tmp_path / 'serve-narrow.png'}")
