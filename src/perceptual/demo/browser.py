"""Drive the real demo page in headless Chromium: the end-to-end test and the README's screenshot
(``experiments/demo/screenshot.py``) both start ``src/demo.py`` in a new process and use the page as a visitor does.

Needs Debian's ``chromium`` and ``chromium-driver`` (``scripts/install_browser.sh``) and selenium (the ``dev`` extra);
:func:`missing_browser` says what is absent, so that callers can skip.
"""

from __future__ import annotations

import contextlib
import functools
import importlib.util
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from perceptual.optional import require

DEMO_SCRIPT = Path(__file__).resolve().parents[2] / "demo.py"
BROWSER, DRIVER = "chromium", "chromedriver"
START_TIMEOUT = 120  # s for the server to answer (importing torch and gradio on a busy 2-core machine)
RUN_TIMEOUT = 120  # s for a run of a net to show its result


def missing_browser() -> str | None:
    """Why the page cannot be driven here (no browser, no driver, no selenium), or ``None``."""
    for program in (BROWSER, DRIVER):
        if shutil.which(program) is None:
            return f"no {program} on PATH (bash scripts/install_browser.sh installs Debian's chromium and its driver)"
    if importlib.util.find_spec("selenium") is None:
        return "selenium is not installed (pip install 'perceptual[dev]')"
    return None


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@contextlib.contextmanager
def served(*overrides: str, log: Path | None = None) -> Iterator[str]:
    """``python src/demo.py <overrides>`` on a free port of 127.0.0.1 in a new process; yields the page's URL and
    stops the server afterwards. Its output goes to ``log`` (default: discarded)."""
    port = free_port()
    url = f"http://127.0.0.1:{port}/"
    command = [sys.executable, str(DEMO_SCRIPT), f"port={port}", *overrides]
    with contextlib.ExitStack() as stack:
        output = stack.enter_context(log.open("w")) if log else subprocess.DEVNULL
        server = subprocess.Popen(command, cwd=DEMO_SCRIPT.parents[1], stdout=output, stderr=subprocess.STDOUT)
        try:
            _wait_until_served(url, server)
            yield url
        finally:
            server.terminate()
            try:
                server.wait(timeout=20)
            except subprocess.TimeoutExpired:
                server.kill()
                server.wait()


def _wait_until_served(url: str, server: subprocess.Popen) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise RuntimeError(f"the demo server exited with code {server.returncode} before serving {url}")
        with contextlib.suppress(OSError), urllib.request.urlopen(url, timeout=5):
            return
        time.sleep(0.5)
    raise TimeoutError(f"the demo server did not answer at {url} within {START_TIMEOUT} s")


@contextlib.contextmanager
def chromium(width: int = 1400, height: int = 900) -> Iterator[Any]:
    """A headless Chromium WebDriver with a ``width`` x ``height`` window."""
    webdriver = require("selenium.webdriver", "driving the demo page")
    options = webdriver.ChromeOptions()
    options.binary_location = shutil.which(BROWSER)
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", f"--window-size={width},{height}"):
        options.add_argument(argument)
    driver = webdriver.Chrome(options=options, service=webdriver.ChromeService(shutil.which(DRIVER)))
    try:
        yield driver
    finally:
        driver.quit()


class DemoPage:
    """The demo page in ``driver``, used through its elements as a visitor would (ids set in
    :func:`perceptual.demo.app.build_app`)."""

    def __init__(self, driver: Any, url: str) -> None:
        self.driver = driver
        self.by = require("selenium.webdriver.common.by", "driving the demo page").By
        wait = require("selenium.webdriver.support.ui", "driving the demo page").WebDriverWait
        stale = require("selenium.common.exceptions", "driving the demo page").StaleElementReferenceException
        # Gradio re-renders components while it updates them: an element found a moment ago may be gone, which
        # only means "look again"
        self.wait = functools.partial(wait, ignored_exceptions=(stale,))
        driver.get(url)
        self.wait(driver, START_TIMEOUT).until(lambda _: self.about())  # the page has loaded and described its net

    def find(self, selector: str) -> Any:
        return self.driver.find_element(self.by.CSS_SELECTOR, selector)

    def shown(self, element_id: str) -> bool:
        """Whether the element ``element_id`` is on the page and visible."""
        return any(element.is_displayed() for element in self.driver.find_elements(self.by.ID, element_id))

    def about(self) -> str:
        return self.find("#about").text.strip()

    def pick(self, name: str) -> None:
        """Choose the net called ``name`` in the list and wait until the page describes it."""
        before = self.about()
        self.find("#model input").click()
        options = self.driver.find_elements(self.by.CSS_SELECTOR, "[role=option]")
        next(option for option in options if option.get_attribute("aria-label") == name).click()
        self.wait(self.driver, RUN_TIMEOUT).until(lambda _: self.about() != before)

    def upload(self, path: Path) -> None:
        """Put ``path`` in the upload box (replacing what is there) and wait for the upload to finish."""
        cleared = self.driver.find_elements(self.by.CSS_SELECTOR, "#upload button[aria-label=Clear]")
        for button in cleared:
            button.click()
        self.wait(self.driver, 30).until(lambda _: self.driver.find_elements(self.by.CSS_SELECTOR, "#upload input"))
        self.find("#upload input[type=file]").send_keys(str(path))
        self.wait(self.driver, 60).until(lambda _: path.name in "".join(self.find("#upload").text.split()))

    def status(self) -> str:
        return self.find("#status textarea").get_attribute("value")

    def run(self) -> str:
        """Press Run and wait for a status line other than the current one (so two runs in a row must differ in
        their file or net); returns it."""
        before = self.status()
        self.find("#run").click()
        self.wait(self.driver, RUN_TIMEOUT).until(lambda _: self.status() not in ("", before))
        return self.status()

    def result_size(self) -> tuple[int, int]:
        """(width, height) in pixels of the result image the page shows."""
        image = self.find("#after img")
        self.wait(self.driver, 30).until(lambda _: self.driver.execute_script("return arguments[0].complete", image))
        return int(image.get_attribute("naturalWidth")), int(image.get_attribute("naturalHeight"))
