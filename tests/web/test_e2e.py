"""End to end in headless Chromium (Debian's /usr/bin/chromium, driven by Playwright for Python):
a real uvicorn server on a free loopback port, one browser for the whole module.

The tests type into the controls (by their data-testid), read the readouts, step the animation,
run the exported PyTorch snippet in a fresh Python, load resnet18 on the model page and click a
unit (the box must be inspect's field of that unit), and check that no page logs a console error.
They also *measure* (and print) the time from a changed control to the updated readout and the
resnet50 model page load; only very generous bounds are asserted (shared machines).
"""

from __future__ import annotations

import ast
import contextlib
import io
import socket
import statistics
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

CHROMIUM = Path("/usr/bin/chromium")
if not CHROMIUM.exists():
    pytest.skip("end-to-end tests need Debian's chromium at /usr/bin/chromium "
                "(apt-get install -y chromium; .ci/run installs it)", allow_module_level=True)

uvicorn = pytest.importorskip("uvicorn")
sync_api = pytest.importorskip("playwright.sync_api")

from stridelab.web import create_app  # noqa: E402

STUDY = Path(__file__).parent / "data" / "study_demo"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="module")
def server() -> Iterator[str]:
    port = free_port()
    app = create_app(runs=STUDY, allowed_hosts=["127.0.0.1", "localhost"])
    instance = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=instance.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not instance.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}"
    instance.should_exit = True
    thread.join(timeout=10)


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    with sync_api.sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


class Page:
    """A page plus the console errors and uncaught exceptions it logged."""

    def __init__(self, browser: object, base: str) -> None:
        self.page = browser.new_page(viewport={"width": 1400, "height": 1000})  # type: ignore[attr-defined]
        self.page.set_default_timeout(60_000)
        self.base = base
        self.errors: list[str] = []
        self.page.on("console", lambda m: self.errors.append(m.text) if m.type == "error" else None)
        self.page.on("pageerror", lambda e: self.errors.append(str(e)))

    def open(self, path: str) -> None:
        self.page.goto(self.base + path)

    def tid(self, name: str) -> object:
        return self.page.get_by_test_id(name)

    def text(self, name: str) -> str:
        return str(self.page.get_by_test_id(name).text_content()).strip()

    def wait_text(self, name: str, wanted: str, timeout: float = 10_000) -> None:
        self.page.wait_for_function(
            "([id, wanted]) => document.querySelector(`[data-testid=\"${id}\"]`)"
            "?.textContent.trim() === wanted", arg=[name, wanted], timeout=timeout)

    def set(self, name: str, value: str) -> None:
        self.page.get_by_test_id(name).fill(value)


@pytest.fixture()
def page(browser: object, server: str) -> Iterator[Page]:
    wrapped = Page(browser, server)
    yield wrapped
    wrapped.page.close()


def run_python(source: str) -> tuple[int, ...]:
    """Run a snippet copied from the page (in this interpreter: torch is already imported)."""
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        exec(compile(source, "<copied from the page>", "exec"), {})
    value = ast.literal_eval(printed.getvalue().strip().splitlines()[-1])
    return (value,) if isinstance(value, int) else tuple(value)


def test_arithmetic_page_floor_dropped_pixel_animation_and_export(page: Page) -> None:
    page.open("/")
    page.wait_text("output-size", "2")  # the page opens on input 6, kernel 3, stride 2
    page.set("input-size", "7")
    page.wait_text("output-size", "3")
    page.set("input-size", "6")
    page.set("kernel", "3")
    page.set("stride", "2")
    page.set("padding", "0")
    page.wait_text("output-size", "2")
    assert page.text("dropped") == "1"
    assert "floor(3 / 2) + 1 = 1 + 1 = 2" in page.text("formula")
    assert "DROPPED: input position 5" in page.text("formula")
    assert "dropped" in str(page.page.locator('[data-testid="input-grid"] [data-cell="0,5"]')
                            .get_attribute("class"))
    # step the animation: 2 windows; the second reads input 2, 3, 4 and writes output 1
    assert page.text("frame").startswith("step 1 / 2")
    page.tid("step").click()
    assert page.text("frame").startswith("step 2 / 2")
    taps = page.page.locator('[data-testid="input-grid"] .cell.tap')
    assert [taps.nth(i).get_attribute("data-cell") for i in range(taps.count())] == [
        "0,2", "0,3", "0,4"]
    assert page.page.locator('[data-testid="output-grid"] .cell.write').get_attribute(
        "data-cell") == "0,1"
    page.tid("step-back").click()
    assert page.text("frame").startswith("step 1 / 2")
    page.tid("scrub").fill("1")
    assert page.text("frame").startswith("step 2 / 2")
    # the exported PyTorch snippet, run in a fresh interpreter, gives the size shown
    assert run_python(page.text("code-pytorch")) == (2,)
    assert page.errors == []


def test_two_d_uneven_padding_export_runs(page: Page) -> None:
    page.open("/")
    page.wait_text("output-size", "2")
    page.set("input-size", "7x6")
    page.set("padding", "0,1x1,0")
    page.wait_text("output-size", "3x3")
    assert page.text("padding-pairs") == "0,1 x 1,0"
    assert "F.pad(x, (1, 0, 0, 1))" in page.text("code-pytorch")
    assert run_python(page.text("code-pytorch")) == (3, 3)
    page.tid("mode").select_option("transposed")
    page.set("padding", "1")
    page.set("output-padding", "1")
    page.wait_text("output-size", "14x12")
    assert run_python(page.text("code-pytorch")) == (14, 12)
    page.tid("mode").select_option("pool")
    page.set("input-size", "5")
    page.set("kernel", "2")
    page.set("padding", "0")
    page.tid("ceil").check()
    page.wait_text("output-size", "3")
    assert run_python(page.text("code-pytorch")) == (3,)
    assert page.errors == []


def test_bad_value_shows_the_message_next_to_the_control(page: Page) -> None:
    page.open("/")
    page.wait_text("output-size", "2")
    page.set("kernel", "9")
    page.wait_text("output-size", "–")
    assert "kernel" in page.text("error") and "Traceback" not in page.text("error")
    assert "bad" in str(page.tid("kernel").get_attribute("class"))
    page.set("kernel", "3")
    page.wait_text("output-size", "2")
    assert page.text("error") == ""
    # the only console entries are the browser's notes on the 422 answers themselves
    assert all("422" in error for error in page.errors), page.errors


def test_chain_editor(page: Page) -> None:
    page.open("/")
    page.set("chain-input", "224")
    page.set("layers", "c7s2p3,m3s2p1,c3s2p1,c1s2")
    page.page.wait_for_function("() => document.querySelectorAll('[data-testid=chain-table] tbody tr')"
                                ".length === 4")
    rows = page.page.locator('[data-testid="chain-table"] tbody tr')
    last = [rows.nth(3).locator("td").nth(i).text_content() for i in range(8)]
    assert last == ["c1s2", "28", "14", "0", "1", "19", "16", "9"]
    rows.nth(1).click()  # opens m3s2p1 in the layer controls
    page.wait_text("output-size", "56")
    assert page.tid("mode").input_value() == "pool"
    assert page.errors == []


def test_model_page_click_a_unit(page: Page) -> None:
    import stridelab
    from stridelab.nn.presets import presets

    page.open("/model?model-spec=resnet18&input=3x224x224")
    page.page.wait_for_selector('[data-testid="model-table"] tbody tr', timeout=60_000)
    assert page.page.locator('[data-testid="model-table"] tbody tr').count() == 11
    page.tid("model-layer").select_option("layer2.1.relu#2")
    page.page.wait_for_function("() => document.querySelector('[data-testid=rf-box]').dataset.layer"
                                " === 'layer2.1.relu#2'")
    box = page.tid("rf-box")
    before = box.get_attribute("data-unit")
    canvas = page.tid("photo-canvas").bounding_box()
    scale = canvas["width"] / 224
    page.tid("photo").click(position={"x": 150.0 * scale, "y": 60.0 * scale})
    page.page.wait_for_function("(before) => document.querySelector('[data-testid=rf-box]')"
                                ".dataset.unit !== before", arg=before)
    row, col = (int(v) for v in str(box.get_attribute("data-unit")).split(","))
    field = stridelab.inspect(presets["resnet18"](), (3, 224, 224)).field_at("layer2.1.relu#2")
    # the clicked pixel (row 60, column 150) is nearest this unit's centre, and the box is its field
    assert abs(field.center((row, col))[0] - 60) <= field.stride[0] / 2
    assert abs(field.center((row, col))[1] - 150) <= field.stride[1] / 2
    start = [float(v) for v in str(box.get_attribute("data-start")).split(",")]
    end = [float(v) for v in str(box.get_attribute("data-end")).split(",")]
    assert start == [float(v) for v in field.start((row, col))]
    assert end == [float(v) for v in field.end((row, col))]
    shown = box.bounding_box()
    left = max(float(field.start((row, col))[1]), 0)
    assert shown["x"] - canvas["x"] == pytest.approx(left * scale, abs=2)
    assert page.page.locator('[data-testid="rf-neighbour"]').count() == 24
    # fold: unfolding layer1 shows its two blocks
    page.page.locator('[data-testid="model-table"] tr[data-name="layer1"]').click()
    assert page.page.locator('[data-testid="model-table"] tr[data-name="layer1.0"]').count() == 1
    # sort by MACs, largest first
    header = page.page.locator('[data-testid="model-table"] th[data-key="macs"]')
    header.click()
    header.click()
    assert page.page.locator('[data-testid="model-table"] tbody tr').first.get_attribute(
        "data-name") == "layer1"
    assert page.errors == []


def test_model_page_refuses_code_specs(page: Page) -> None:
    page.open("/model")
    page.page.wait_for_selector('[data-testid="model-table"] tbody tr', timeout=60_000)
    page.set("model-spec", "evil.py:Model")
    page.tid("model-load").click()
    page.page.wait_for_function("() => document.querySelector('[data-testid=model-error]')"
                                ".textContent.includes('command line')")
    assert all("422" in error for error in page.errors), page.errors


def test_study_page(page: Page) -> None:
    page.open("/study")
    page.page.wait_for_selector('[data-testid="study-table"] tbody tr')
    assert page.page.locator('[data-testid="study-table"] tbody tr').count() == 3
    page.page.wait_for_function("() => [...document.querySelectorAll('[data-testid=study-plots] img')]"
                                ".every(img => img.complete && img.naturalWidth > 0)")
    assert page.errors == []


def test_measured_latencies(page: Page, capsys: pytest.CaptureFixture[str]) -> None:
    """Arithmetic change -> readout updated, and resnet50's model page load, in the browser."""
    page.open("/")
    page.wait_text("output-size", "2")
    latencies = []
    for size in list(range(7, 31)) + [6]:
        latencies.append(page.page.evaluate("""async (size) => {
            const input = document.querySelector('[data-testid="input-size"]');
            // the formula names the input size, so it changes on every change of it
            const out = document.querySelector('[data-testid="formula"]');
            const before = out.textContent;
            const t0 = performance.now();
            const changed = new Promise((resolve, reject) => {
                const watch = new MutationObserver(() => {
                    if (out.textContent !== before) { watch.disconnect(); resolve(); } });
                watch.observe(out, { childList: true, characterData: true, subtree: true });
                setTimeout(() => reject(new Error('no readout update within 20 s')), 20000);
            });
            input.value = String(size);
            input.dispatchEvent(new Event('input', { bubbles: true }));
            await changed;
            return performance.now() - t0;
        }""", size))
    page.open("/model?model-spec=resnet50&input=3x224x224")
    page.page.wait_for_selector('[data-testid="model-table"] tbody tr', timeout=60_000)
    page.page.wait_for_function("() => document.body.dataset.modelReadyMs")
    cold = float(page.page.evaluate("() => document.body.dataset.modelReadyMs"))
    page.open("/model?model-spec=resnet50&input=3x224x224")
    page.page.wait_for_function("() => document.body.dataset.modelReadyMs")
    cached = float(page.page.evaluate("() => document.body.dataset.modelReadyMs"))
    with capsys.disabled():
        print(f"\nexplore: arithmetic change -> readout: median {statistics.median(latencies):.1f} ms,"
              f" max {max(latencies):.1f} ms over {len(latencies)} changes; resnet50 model page "
              f"ready {cold:.0f} ms (first inspect), {cached:.0f} ms (cached report)")
    assert statistics.median(latencies) < 1000 and cold < 30_000  # generous: shared CI machines
    assert page.errors == []
