"""The README's screenshot of the web demo: ``python src/demo.py`` serving its page to headless Chromium, a real run of
a zoo net on a held-out photo, and the page saved as a small PNG (256 colours).

    .venv/bin/python experiments/demo/screenshot.py                       # zoo:starry_night on chicago.jpg
    .venv/bin/python experiments/demo/screenshot.py --net zoo:sr_x4_pixel --photo small.png --output sr.png

Needs Debian's chromium and chromium-driver (bash scripts/install_browser.sh) and selenium (the dev extra).
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from PIL import Image

from perceptual.demo.browser import DemoPage, chromium, missing_browser, served

HERE = Path(__file__).resolve().parent
CONTENT = HERE.parents[2] / "shared" / "data" / "content"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--net", default="zoo:starry_night", help="the net to pick on the page")
    parser.add_argument("--photo", type=Path, default=CONTENT / "chicago.jpg", help="the photo to upload")
    parser.add_argument("--output", type=Path, default=HERE / "screenshot.png")
    parser.add_argument("--size", default="1280x860", help="browser window, WIDTHxHEIGHT")
    args = parser.parse_args()
    reason = missing_browser()
    if reason:
        raise SystemExit(f"error: {reason}")
    width, height = (int(side) for side in args.size.split("x"))
    with tempfile.TemporaryDirectory() as folder, served("device=cpu") as url, chromium(width, height) as driver:
        page = DemoPage(driver, url)
        page.pick(args.net)
        page.upload(args.photo.resolve())
        start = time.monotonic()
        status = page.run()
        seconds = time.monotonic() - start
        print(f"{status} ({seconds:.1f} s from Run to result, result image {page.result_size()} px)")
        shot = Path(folder) / "page.png"
        driver.save_screenshot(str(shot))
        Image.open(shot).convert("RGB").quantize(256).save(args.output, optimize=True)
    print(f"wrote {args.output} ({args.output.stat().st_size / 1024:.0f} KB)")


if __name__ == "__main__":
    main()
