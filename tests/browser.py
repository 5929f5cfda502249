"""Real-browser helpers: a `tunechat` Streamlit server on a free localhost port, and headless
Chromium (Debian's chromium + chromium-driver, driven by selenium) windows on it.

`make test` installs Chromium (`make browser`); without it the modules that import this skip,
saying so."""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from contextlib import contextmanager
from pathlib import Path
from typing import Callable, Iterator

import pytest

from tests.conftest import ROOT

CHROMIUM, CHROMEDRIVER = Path("/usr/bin/chromium"), Path("/usr/bin/chromedriver")
if not (CHROMIUM.exists() and CHROMEDRIVER.exists()):
    pytest.skip("no Chromium: `make browser` installs Debian's chromium and chromium-driver (needs root and apt)",
                allow_module_level=True)
webdriver = pytest.importorskip("selenium.webdriver")
from selenium.common.exceptions import StaleElementReferenceException, TimeoutException  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.support.ui import WebDriverWait  # noqa: E402

ANSWER_TIMEOUT = 180  # seconds: two CPU cores, possibly shared with other tests


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextmanager
def serve(args: list[str], log: Path) -> Iterator[str]:
    """`tunechat ARGS --port P` in its own process group, up until Streamlit's health check answers."""
    port = free_port()
    with open(log, "w") as out:
        process = subprocess.Popen([sys.executable, "-m", "tunechat.cli", *args, "--port", str(port)],
                                   cwd=ROOT, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            assert process.poll() is None, f"the server exited: {log.read_text()}"
            try:
                with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as response:
                    if response.status == 200:
                        break
            except OSError:
                pass
            assert time.monotonic() < deadline, f"the server did not come up: {log.read_text()}"
            time.sleep(0.5)
        yield url
    finally:
        os.killpg(process.pid, signal.SIGTERM)  # the group this started, and nothing else
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


@contextmanager
def windows(profiles: Path) -> Iterator[Callable[..., "webdriver.Chrome"]]:
    """Opens headless Chromium windows (each its own Streamlit session); all closed at the end."""
    drivers = []

    def open_window(width: int = 1200, height: int = 900) -> "webdriver.Chrome":
        options = webdriver.ChromeOptions()
        options.binary_location = str(CHROMIUM)
        for flag in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                     "--disable-background-networking", "--disable-component-update", "--disable-sync",
                     "--disable-dev-shm-usage", f"--window-size={width},{height}",
                     f"--user-data-dir={profiles / f'profile{len(drivers)}'}"):
            options.add_argument(flag)
        driver = webdriver.Chrome(options=options, service=webdriver.ChromeService(str(CHROMEDRIVER)))
        drivers.append(driver)
        if width < 500:  # Chromium's windows are at least 500 px wide: a phone's width is emulated
            driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride",
                                   {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": True})
        return driver

    try:
        yield open_window
    finally:
        for driver in drivers:
            driver.quit()


def wait(driver, condition: Callable, timeout: float = ANSWER_TIMEOUT):
    try:
        return WebDriverWait(driver, timeout, poll_frequency=0.1,
                             ignored_exceptions=(StaleElementReferenceException,)).until(lambda d: condition(d))
    except TimeoutException:
        raise AssertionError(f"timed out; the page says:\n{driver.find_element(By.TAG_NAME, 'body').text}") from None

