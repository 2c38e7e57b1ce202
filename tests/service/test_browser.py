"""The explorer in real headless Chromium (Selenium and chromedriver): figures move, formulas render."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.service.conftest import LiveServer

webdriver = pytest.importorskip("selenium.webdriver")
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.common.keys import Keys  # noqa: E402
from selenium.webdriver.support.ui import WebDriverWait  # noqa: E402

SCREENSHOT_DIR_VARIABLE = "LLM_PERF_OPT_SCREENSHOT_DIR"


def _executable(*names: str) -> str:
    for name in names:
        found = shutil.which(name)
        if found:
            return found
    pytest.skip(f"none of {', '.join(names)} is installed")


@pytest.fixture
def browser() -> Iterator[Any]:
    """Headless Chromium driven by chromedriver (Debian's chromium and chromium-driver)."""
    options = webdriver.ChromeOptions()
    options.binary_location = _executable("chromium", "chromium-browser")
    for argument in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                     "--window-size=1400,1300"):  # fmt: skip
        options.add_argument(argument)
    service = webdriver.ChromeService(executable_path=_executable("chromedriver"))
    driver = webdriver.Chrome(service=service, options=options)
    yield driver
    driver.quit()


def _text(driver: Any, element_id: str) -> str:
    return str(driver.find_element(By.ID, element_id).text)


def test_changing_the_frames_moves_the_figures_and_a_formula_renders(
    server: LiveServer, browser: Any, tmp_path: Path
) -> None:
    """Load the page, see the tiny workload's figures, set 17 frames, see them change, click the
    transformer and see its FLOPs formula typeset by KaTeX; save a screenshot."""
    browser.get(server.url + "/")
    wait = WebDriverWait(browser, 240, poll_frequency=0.3)
    wait.until(
        lambda d: _text(d, "status").startswith("report ") and _text(d, "peak-memory") not in ("–", "")
    )
    first = {name: _text(browser, name) for name in ("total-flops", "total-time", "total-activations")}
    assert first["total-flops"].endswith("FLOP") and first["total-time"].endswith(("ms", "s"))
    assert _text(browser, "error") == ""
    frames = browser.find_element(By.ID, "frames")
    frames.clear()
    frames.send_keys("17", Keys.TAB)
    wait.until(
        lambda d: _text(d, "total-flops") != first["total-flops"] and _text(d, "status").startswith("report ")
    )
    second = {name: _text(browser, name) for name in ("total-flops", "total-time", "total-activations")}
    assert second["total-time"] != first["total-time"]
    assert float(second["total-flops"].split()[0]) > float(first["total-flops"].split()[0])
    browser.find_element(By.CSS_SELECTOR, "[data-module-id='diffusion']").click()
    wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, "#formula .katex-display"))
    rendered = _text(browser, "formula")
    assert "frames" in rendered and "height" in rendered
    assert browser.find_elements(By.CSS_SELECTOR, "#curve-frames circle")
    screenshot = tmp_path / "explorer.png"
    assert browser.save_screenshot(str(screenshot))
    assert screenshot.stat().st_size > 10_000
    keep = os.environ.get(SCREENSHOT_DIR_VARIABLE)
    if keep:
        Path(keep).mkdir(parents=True, exist_ok=True)
        shutil.copy(screenshot, Path(keep) / "explorer.png")
