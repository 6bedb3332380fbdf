"""The live dashboard in a real headless Chromium (Debian's chromium + chromium-driver),
against the running cluster under load. Saves a screenshot to test-artifacts/."""

from __future__ import annotations

import os
import shutil
import threading
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.conftest import IN_CI, wait_for

pytestmark = pytest.mark.docker
ARTIFACTS = Path(os.environ.get("CRUCIBLE_ARTIFACTS", Path(__file__).parents[2] / "test-artifacts"))


@pytest.fixture
def browser() -> Iterator[object]:
    chromium, driver_path = shutil.which("chromium"), shutil.which("chromedriver")
    if not (chromium and driver_path):
        message = "chromium and chromium-driver are not installed"
        pytest.fail(message) if IN_CI else pytest.skip(message)
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for flag in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage",
                 "--window-size=1400,1100", "--disable-gpu"):  # fmt: skip
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(driver_path), options=options)
    try:
        yield driver
    finally:
        driver.quit()


@pytest.fixture
def load(service, token_for) -> Iterator[threading.Event]:
    """Eight callers in a closed loop of short sleepers: more than the four slots, so there is
    a queue to see."""
    stop = threading.Event()

    def caller(n: int) -> None:
        headers = {"Authorization": f"Bearer {token_for(f'load-{n}')}"}
        with httpx.Client(base_url=service, headers=headers, timeout=120) as client:
            while not stop.is_set():
                client.post("/api/eval?wait=true",
                            json={"code": "import time\ntime.sleep(1.5)\nprint('x')"})  # fmt: skip

    threads = [threading.Thread(target=caller, args=(n,), daemon=True) for n in range(8)]
    for thread in threads:
        thread.start()
    yield stop
    stop.set()
    for thread in threads:
        thread.join(timeout=120)


def text(driver, element_id: str) -> str:
    return driver.find_element("id", element_id).text


def test_dashboard_under_load(browser, service, token_for, load):
    driver = browser
    driver.get(f"{service}/dashboard#token={token_for('ops', roles=['operator'])}")
    assert wait_for(lambda: driver.find_element("tag name", "body").get_attribute("data-updated"),
                    timeout_s=30)  # fmt: skip
    assert "token=" not in driver.current_url  # the token left the address bar
    assert text(driver, "status") == "ok"
    assert text(driver, "capacity") == "16" and text(driver, "executors-ready") == "2"

    def busy() -> bool:
        return int(text(driver, "running") or 0) > 0 and int(text(driver, "queue") or 0) > 0

    assert wait_for(busy, timeout_s=60)  # queue depth against capacity, live
    assert text(driver, "utilisation").endswith("%") and text(driver, "slots") == "4"

    def finished_some() -> bool:
        rows = driver.find_elements("css selector", "#recent tbody tr")
        return len(rows) >= 5 and text(driver, "latency-p50").replace(".", "").isdigit()

    assert wait_for(finished_some, timeout_s=60)
    assert "succeeded" in driver.find_element("id", "recent").text
    assert len(driver.find_elements("css selector", "#chart rect")) >= 1
    assert len(driver.find_elements("css selector", "#executors tbody tr")) == 2
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    shot = ARTIFACTS / "dashboard.png"
    assert driver.save_screenshot(str(shot)) and shot.stat().st_size > 10_000
    errors = [e for e in driver.get_log("browser") if e["level"] == "SEVERE"]
    assert not errors, errors  # e.g. a Content-Security-Policy violation


def test_dashboard_asks_for_an_operator_token(browser, service, token_for):
    driver = browser
    driver.get(f"{service}/dashboard")
    assert wait_for(lambda: driver.find_element("id", "login").is_displayed(), timeout_s=20)
    driver.get(f"{service}/dashboard#token={token_for('someone')}")  # a user, not an operator
    driver.refresh()

    def refused() -> bool:
        return "operator" in text(driver, "login-error")

    assert wait_for(refused, timeout_s=20)
    assert not driver.find_element("id", "board").is_displayed()
