"""The web demo end to end: ``python src/demo.py`` serving its page to headless Chromium, used as a visitor would.
Skips where Chromium, its driver or selenium are missing (``bash scripts/install_browser.sh`` installs the first
two)."""

from __future__ import annotations

from pathlib import Path

import pytest

from conftest import write_images
from perceptual.demo.browser import DemoPage, chromium, missing_browser, served

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def browser_available() -> None:
    reason = missing_browser()
    if reason:
        pytest.skip(reason)


def test_page_runs_a_zoo_net_on_an_uploaded_photo(browser_available, tmp_path: Path) -> None:
    photo = write_images(tmp_path, 1, size=(30, 40))[0]
    unreadable = tmp_path / "notes.jpg"
    unreadable.write_text("not an image")
    with served("device=cpu", log=tmp_path / "server.log") as url, chromium() as driver:
        page = DemoPage(driver, url)
        assert page.about().startswith("zoo:candy: ")
        assert page.shown("strength")
        page.pick("zoo:sr_x4_pixel")
        page.wait(driver, 10).until(lambda _: not page.shown("strength"))  # no style controls for SR nets
        page.upload(unreadable)
        status = page.run()
        assert status.startswith("error: cannot read image notes.jpg") and "\n" not in status
        page.upload(photo)  # the server goes on after a bad file
        assert page.run() == "zoo:sr_x4_pixel: 160x120 px"
        assert page.result_size() == (160, 120)
