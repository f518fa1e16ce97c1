"""Screenshots of the three ``stridelab explore`` pages into docs/images/ (headless Chromium).

    python scripts/explore_screenshots.py [RUNS_FOLDER]

RUNS_FOLDER (default: the small study run the tests use) feeds the study page. Needs Debian's
chromium at /usr/bin/chromium and Playwright for Python.
"""

from __future__ import annotations

import socket
import sys
import threading
import time
from pathlib import Path

import uvicorn
from playwright.sync_api import sync_playwright

from stridelab.web import create_app

ROOT = Path(__file__).resolve().parents[1]
IMAGES = ROOT / "docs" / "images"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def main() -> None:
    runs = Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT / "tests" / "web" / "data" / "study_demo"
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(create_app(runs=runs), host="127.0.0.1", port=port,
                                           log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.05)
    base = f"http://127.0.0.1:{port}"
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path="/usr/bin/chromium", args=ARGS)
        page = browser.new_page(viewport={"width": 1360, "height": 900}, device_scale_factor=1)
        page.goto(f"{base}/?input-size=7x9&kernel=3&stride=2&padding=1,0x1,1&layers="
                  "c7s2p3,m3s2p1,c3s2p1,c1s2")
        page.wait_for_selector('[data-testid="chain-table"] tbody tr')
        for _ in range(5):
            page.get_by_test_id("step").click()
        page.screenshot(path=str(IMAGES / "explore_arith.png"), full_page=True)
        page.goto(f"{base}/model?model-spec=resnet18&input=3x224x224")
        page.wait_for_selector('[data-testid="model-table"] tbody tr', timeout=120_000)
        page.get_by_test_id("model-layer").select_option("layer3.1.relu#2")
        if page.get_by_test_id("erf-toggle-box").is_visible():
            page.get_by_test_id("erf-toggle").check()
        box = page.get_by_test_id("photo-canvas").bounding_box()
        assert box is not None
        page.get_by_test_id("photo").click(position={"x": box["width"] * 0.3,
                                                     "y": box["height"] * 0.45})
        page.wait_for_timeout(800)
        if page.get_by_test_id("erf-toggle").is_checked():
            page.wait_for_selector('[data-testid="erf-heat"]:not([hidden])', timeout=180_000)
        page.screenshot(path=str(IMAGES / "explore_model.png"), full_page=True)
        page.goto(f"{base}/study")
        page.wait_for_selector('[data-testid="study-table"] tbody tr')
        page.wait_for_timeout(800)
        page.screenshot(path=str(IMAGES / "explore_study.png"), full_page=True)
        browser.close()
    server.should_exit = True
    thread.join()
    for name in ("explore_arith.png", "explore_model.png", "explore_study.png"):
        print(IMAGES / name)


if __name__ == "__main__":
    main()
