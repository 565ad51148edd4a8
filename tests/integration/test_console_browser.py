"""The console's web page in a real browser (headless Chromium through Selenium), against the
whole local stack in this process, as a person uses it: a form error beside its field, a
one-epoch job submitted from the form and watched to COMPLETED without a reload, its charts and
its sample playing, three notes recorded on the virtual keyboard and composed with the trained
model, the composition downloaded and deleted, and the job deleted from the jobs page.

Needs Debian's `chromium` and `chromium-driver` (`apt-get install -y chromium chromium-driver`)
and selenium (the `dev` extra). Without them the test fails saying so, unless
OPENCOMPOSER_SKIP_BROWSER=1. OPENCOMPOSER_SCREENSHOTS=1 writes docs/screenshots/*.png.
"""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from contracts import statuses
from opencomposer.client import Client
from opencomposer.local.stack import LocalStack, LocalStackOptions

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
SCREENSHOTS = ROOT / "docs" / "screenshots"
WIDTH, HEIGHT = 1280, 800
PHONE_WIDTH = 375
TRAINING_TIMEOUT_S = 300


def _browser_paths() -> tuple[str, str]:
    """Chromium and chromedriver, or a failure (a skip with OPENCOMPOSER_SKIP_BROWSER=1)."""
    missing = []
    try:
        import selenium  # noqa: F401
    except ImportError:
        missing.append("selenium (pip install -e '.[dev]')")
    chromium = next(
        (
            p
            for p in (
                "/usr/lib/chromium/chromium",
                shutil.which("chromium"),
                shutil.which("chromium-browser"),
                shutil.which("google-chrome"),
            )
            if p and os.path.exists(p)
        ),
        None,
    )
    driver = next(
        (
            p
            for p in (shutil.which("chromedriver"), "/usr/lib/chromium/chromedriver")
            if p and os.path.exists(p)
        ),
        None,
    )
    if chromium is None:
        missing.append("Chromium (apt-get install -y chromium)")
    if driver is None:
        missing.append("ChromeDriver (apt-get install -y chromium-driver)")
    if missing:
        message = "the console's browser test needs " + ", ".join(missing)
        if os.environ.get("OPENCOMPOSER_SKIP_BROWSER") == "1":
            pytest.skip(message + " (skipped: OPENCOMPOSER_SKIP_BROWSER=1)")
        pytest.fail(message + "; set OPENCOMPOSER_SKIP_BROWSER=1 to skip it", pytrace=False)
    assert chromium is not None and driver is not None
    return chromium, driver


@pytest.fixture(scope="module")
def browser_paths() -> tuple[str, str]:
    return _browser_paths()


@pytest.fixture(scope="module")
def stack(browser_paths: tuple[str, str], tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalStack]:
    home = tmp_path_factory.mktemp("opencomposer-console-home")
    with LocalStack(LocalStackOptions(home=home, port=0, stop_grace_s=5)) as running:
        yield running


@pytest.fixture(scope="module")
def base_url(stack: LocalStack) -> str:
    """The console, served by the stack's front door at `/` (and its files at `/console/...`)."""
    import urllib.error
    import urllib.request

    try:
        with urllib.request.urlopen(stack.api_url + "/", timeout=10) as reply:
            page = reply.read().decode()
    except urllib.error.HTTPError as e:
        pytest.fail(f"the front door does not serve the console: GET / is {e.code}", pytrace=False)
    assert "/console/app.js" in page, "GET / on the local stack's front door is not the console's page"
    return stack.api_url


@pytest.fixture(scope="module")
def downloads(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("console-downloads")


@pytest.fixture(scope="module")
def driver(browser_paths: tuple[str, str], downloads: Path) -> Iterator[Any]:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    chromium, chromedriver = browser_paths
    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for flag in (
        "--headless=new",
        f"--window-size={WIDTH},{HEIGHT}",
        "--no-sandbox",
        "--disable-dev-shm-usage",
        "--disable-gpu",
        "--autoplay-policy=no-user-gesture-required",
        "--mute-audio",
        "--force-device-scale-factor=1",
        "--lang=en-US",
    ):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    options.add_experimental_option(
        "prefs",
        {
            "download.default_directory": str(downloads),
            "download.prompt_for_download": False,
            "safebrowsing.enabled": False,
        },
    )
    browser = webdriver.Chrome(service=Service(executable_path=chromedriver), options=options)
    browser.set_window_size(WIDTH, HEIGHT)
    # the viewport, not the window, is 1280 x 800
    inner_width, inner_height = browser.execute_script("return [window.innerWidth, window.innerHeight]")
    browser.set_window_size(2 * WIDTH - inner_width, 2 * HEIGHT - inner_height)
    try:
        yield browser
    finally:
        browser.quit()


@pytest.fixture(scope="module")
def state() -> dict[str, Any]:
    return {}


def _wait(condition: Callable[[], Any], timeout: float = 20, what: str = "condition") -> Any:
    deadline = time.monotonic() + timeout
    last: Exception | None = None
    while time.monotonic() < deadline:
        try:
            value = condition()
            if value:
                return value
        except Exception as e:  # noqa: BLE001 - stale elements while the page re-renders
            last = e
        time.sleep(0.2)
    raise AssertionError(
        f"timed out after {timeout:.0f} s waiting for {what}" + (f" (last error: {last})" if last else "")
    )


def _css(driver: Any, selector: str) -> Any:
    from selenium.webdriver.common.by import By

    return driver.find_element(By.CSS_SELECTOR, selector)


def _all(driver: Any, selector: str) -> list[Any]:
    from selenium.webdriver.common.by import By

    return driver.find_elements(By.CSS_SELECTOR, selector)


def _screenshot(driver: Any, name: str, width: int = WIDTH) -> None:
    """docs/screenshots/<name>.png of the whole page at `width` CSS pixels (at least 800 tall), only
    with OPENCOMPOSER_SCREENSHOTS=1."""
    if os.environ.get("OPENCOMPOSER_SCREENSHOTS") != "1":
        return
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    metrics = {"deviceScaleFactor": 1, "mobile": width < 600}
    driver.execute_cdp_cmd(
        "Emulation.setDeviceMetricsOverride", {"width": width, "height": HEIGHT, **metrics}
    )
    time.sleep(0.5)  # charts and rolls redraw at the new width
    height = max(HEIGHT, int(driver.execute_script("return document.documentElement.scrollHeight")))
    driver.execute_cdp_cmd(
        "Emulation.setDeviceMetricsOverride", {"width": width, "height": min(height, 4000), **metrics}
    )
    driver.execute_script("window.scrollTo(0, 0)")
    time.sleep(0.3)
    driver.save_screenshot(str(SCREENSHOTS / f"{name}.png"))
    driver.execute_cdp_cmd("Emulation.clearDeviceMetricsOverride", {})
    time.sleep(0.2)


def _set(element: Any, value: str) -> None:
    from selenium.webdriver.common.keys import Keys

    element.send_keys(Keys.CONTROL, "a")
    element.send_keys(Keys.DELETE)
    element.send_keys(value)


def _open(driver: Any, url: str) -> None:
    """Load `url` afresh (the same URL again is a reload, not a no-op)."""
    if driver.current_url == url:
        driver.refresh()
    else:
        driver.get(url)
    _wait(lambda: not _all(driver, "main > p.muted") or _all(driver, "main h1"), what=f"{url} to render")


STATIC = ROOT / "opencomposer" / "console" / "static"


def test_page_uses_only_bundled_files() -> None:
    """Everything index.html and the modules load is a file here: no CDN at run time."""
    import re

    page = (STATIC / "index.html").read_text()
    referenced = re.findall(r'(?:src|href)="(/console/[^"]+)"', page)
    assert "/console/app.js" in referenced and "/console/vendor/Tone.js" in referenced
    for path in referenced:
        assert (STATIC / path.removeprefix("/console/")).is_file(), path
    for source in [page, *(p.read_text() for p in STATIC.glob("*.js"))]:
        assert not re.search(r'(?:src|href)="https?:|import .* from "https?:', source)
    for module in STATIC.glob("*.js"):
        for imported in re.findall(r'from "\./([^"]+)"', module.read_text()):
            assert (STATIC / imported).is_file(), f"{module.name} imports {imported}"


def test_sample_melodies_are_the_apis() -> None:
    """static/melodies/<name>.mid (what the page plays before a sample is chosen) is what the API
    renders for `melody.sample`."""
    from lambdas.common import melodies

    regenerate = (
        ".venv/bin/python -c 'from lambdas.common import melodies as m; "
        '[open(f"opencomposer/console/static/melodies/{n}.mid", "wb").write(m.render(s)) '
        "for n, s in m.SAMPLES.items()]'"
    )
    on_disk = {p.stem for p in (STATIC / "melodies").glob("*.mid")}
    assert on_disk == set(melodies.SAMPLES), f"regenerate them: {regenerate}"
    for name, melody in melodies.SAMPLES.items():
        assert (STATIC / "melodies" / f"{name}.mid").read_bytes() == melodies.render(melody), (
            f"{name}.mid is stale; regenerate: {regenerate}"
        )


def test_form_errors_are_shown_beside_their_fields(driver: Any, base_url: str, tmp_path: Path) -> None:
    _open(driver, base_url + "/#/new")
    epochs = _wait(lambda: _css(driver, "#hp-epochs"), what="the epochs field")
    # The range, default and help come from the OpenAPI document's Hyperparameters schema.
    label = _css(driver, "label[for=hp-epochs]").text
    assert "1" in label and "10000" in label, label
    assert epochs.get_attribute("value") == "20"
    _set(epochs, "0")
    _css(driver, "#submit-job").click()
    error = _wait(
        lambda: _css(driver, '[data-error-for="hyperparameters.epochs"]').text, what="the epochs error"
    )
    assert "1" in error, error  # the API's message: the range it allows
    assert epochs.get_attribute("aria-invalid") == "true"
    # the error sits in the epochs field's own box, beside the input
    assert error in _css(driver, "#hp-epochs").find_element("xpath", "..").text
    _screenshot(driver, "new-job")
    # A file that is not MIDI: the API names melody.midi_base64, shown beside the melody.
    _set(epochs, "20")
    not_midi = tmp_path / "not-midi.mid"
    not_midi.write_bytes(b"these are not the notes you are looking for")
    _css(driver, "#job-source-upload").click()
    _css(driver, "#job-file").send_keys(str(not_midi))
    _css(driver, "#submit-job").click()
    error = _wait(lambda: _css(driver, '[data-error-for="melody"]').text, what="the melody's error")
    assert "MIDI" in error, error
    assert _css(driver, "#job-file").get_attribute("aria-invalid") == "true"
    assert not _css(driver, '[data-error-for="hyperparameters.epochs"]').text


def test_submit_a_job_and_watch_it_complete(driver: Any, base_url: str, state: dict[str, Any]) -> None:
    _open(driver, base_url + "/#/new")
    _wait(lambda: _css(driver, "#hp-epochs"), what="the form")
    for field, value in (("epochs", "1"), ("batch_size", "16"), ("update_ratio", "1"), ("seed", "3")):
        _set(_css(driver, f"#hp-{field}"), value)
    _set(_css(driver, "#job-name"), "browser test")
    _css(driver, "#submit-job").click()
    _wait(lambda: "#/jobs/" in driver.current_url, what="the job's page")
    job_id = driver.current_url.rsplit("/", 1)[1]
    state["job_id"] = job_id
    driver.execute_script("window.__noReload = true")
    _wait(
        lambda: _css(driver, "h1 .badge").get_attribute("data-status") == statuses.COMPLETED,
        timeout=TRAINING_TIMEOUT_S,
        what="the job to reach COMPLETED on its page",
    )
    assert driver.execute_script("return window.__noReload") is True, "the page was reloaded"
    # One point per epoch on both charts: the loss chart with generator and critic.
    for chart in ("#loss-chart", "#similarity-chart"):
        _wait(
            lambda chart=chart: _css(driver, chart).get_attribute("data-points") == "1",
            what=f"{chart} with 1 epoch",
        )
        assert _all(driver, f"{chart} .uplot canvas"), f"{chart} has no uPlot canvas"
    series = _css(driver, "#loss-chart").get_attribute("data-series").split(",")
    assert {"generator_loss", "critic_loss"} <= set(series), series
    assert _css(driver, "#similarity-chart").get_attribute("data-series") == "similarity"
    # each music metric beside Bach's value
    rows = _all(driver, "#metrics-table tbody tr")
    assert len(rows) >= 4
    consonance = _css(driver, '#metrics-table tr[data-metric="consonance"]').find_elements(
        "css selector", "td"
    )
    assert all(cell.text not in ("", "–") for cell in consonance), [c.text for c in consonance]
    # the final composition and the epoch's sample are listed, with a piano roll
    _wait(lambda: len(_all(driver, "#samples li[data-composition-id]")) >= 2, what="final and epoch samples")
    assert _all(driver, "#sample-player canvas.roll")
    _screenshot(driver, "job")


def test_a_sample_plays(driver: Any, state: dict[str, Any]) -> None:
    player = _css(driver, "#sample-player .player")
    player.find_element("css selector", "button.play").click()
    _wait(lambda: player.get_attribute("data-state") == "playing", what="the player to report playing")
    player.find_element("css selector", "button.play").click()
    _wait(lambda: player.get_attribute("data-state") == "idle", what="the player to stop")


def test_jobs_page_lists_the_job(driver: Any, base_url: str, state: dict[str, Any]) -> None:
    _open(driver, base_url + "/#/jobs")
    row = _wait(lambda: _css(driver, f'tr[data-job-id="{state["job_id"]}"]'), what="the job's row")
    assert row.get_attribute("data-status") == statuses.COMPLETED
    assert "1/1" in row.text and "browser test" in row.text, row.text
    _screenshot(driver, "jobs")
    _screenshot(driver, "jobs-phone", width=PHONE_WIDTH)


def test_record_three_notes_and_compose_with_them(
    driver: Any, base_url: str, stack: LocalStack, downloads: Path, state: dict[str, Any]
) -> None:
    from selenium.webdriver.common.action_chains import ActionChains

    job_id = state["job_id"]
    _open(driver, base_url + f"/#/jobs/{job_id}/compose")
    _wait(lambda: _css(driver, "#compose-source-keyboard"), what="the compose form").click()
    record = _wait(lambda: _css(driver, ".keyboard-wrap button.rec"), what="the keyboard")
    record.click()
    actions = ActionChains(driver)
    for key in ("a", "d", "g"):  # C4, E4, G4 from the computer keyboard
        actions.key_down(key).pause(0.3).key_up(key).pause(0.1)
    actions.perform()
    record.click()  # stop recording
    summary = _css(driver, ".keyboard-wrap .recorded").text
    assert summary.startswith("3 notes recorded"), summary
    _set(_css(driver, "#compose-seed"), "1")
    _set(_css(driver, "#compose-name"), "three notes")
    _css(driver, "#submit-compose").click()
    player = _wait(lambda: _css(driver, "#composition-player"), timeout=60, what="the composition")
    _wait(lambda: _all(driver, "#compositions li[data-composition-id]"), what="the composition in the list")
    mine = [
        c for c in Client(stack.api_url).compositions(job_id)["compositions"] if c["kind"] == "composition"
    ]
    assert len(mine) == 1 and mine[0]["melody"] == {"upload": True, "notes": 3}, mine
    assert mine[0]["name"] == "three notes" and mine[0]["seed"] == 1
    _screenshot(driver, "compose")
    # play it, then download it
    player.find_element("css selector", "button.play").click()
    _wait(lambda: player.get_attribute("data-state") == "playing", what="the composition to play")
    player.find_element("css selector", "a.download").click()
    path = downloads / "three notes.mid"
    _wait(lambda: path.exists() and path.stat().st_size > 0, what="the downloaded MIDI file")
    assert path.read_bytes()[:4] == b"MThd"
    state["composition_id"] = mine[0]["composition_id"]


def test_instrument_error_and_composition_delete(
    driver: Any, stack: LocalStack, state: dict[str, Any]
) -> None:
    from selenium.webdriver.support.ui import Select

    job_id = state["job_id"]
    _css(driver, "#compose-source-sample").click()
    Select(_css(driver, "#compose-preset")).select_by_value("custom")
    _set(_css(driver, "#compose-voice-2"), "200")
    _css(driver, "#submit-compose").click()
    error = _wait(
        lambda: _css(driver, '[data-error-for="instruments[2]"]').text, what="the tenor program's error"
    )
    assert "200" in error, error
    # delete the composition from the list, with confirmation
    item = _css(driver, f'#compositions li[data-composition-id="{state["composition_id"]}"]')
    item.find_element("css selector", "button.danger").click()
    driver.switch_to.alert.accept()
    _wait(
        lambda: not _all(driver, f'#compositions li[data-composition-id="{state["composition_id"]}"]'),
        what="the composition to leave the list",
    )
    assert not [
        c for c in Client(stack.api_url).compositions(job_id)["compositions"] if c["kind"] == "composition"
    ]


def test_stop_a_running_job_from_the_jobs_page(
    driver: Any, base_url: str, stack: LocalStack, state: dict[str, Any]
) -> None:
    running = Client(stack.api_url).submit(
        {"hyperparameters": {"epochs": 200, "batch_size": 16, "update_ratio": 1}}
    )
    job_id = running["job_id"]
    _open(driver, base_url + "/#/jobs")
    row = _wait(lambda: _css(driver, f'tr[data-job-id="{job_id}"]'), what="the running job's row")
    row.find_element("css selector", "button.danger").click()  # Stop, while it runs
    driver.switch_to.alert.accept()
    _wait(
        lambda: _css(driver, f'tr[data-job-id="{job_id}"]').get_attribute("data-status") == statuses.STOPPED,
        timeout=60,
        what="the row to show STOPPED without a reload",
    )
    state["stopped_job_id"] = job_id


def test_delete_the_jobs_from_the_jobs_page(
    driver: Any, base_url: str, stack: LocalStack, state: dict[str, Any]
) -> None:
    _open(driver, base_url + "/#/jobs")
    for job_id in (state["job_id"], state["stopped_job_id"]):
        row = _wait(lambda job_id=job_id: _css(driver, f'tr[data-job-id="{job_id}"]'), what="the job's row")
        row.find_element("css selector", "button.danger").click()  # Delete, for a finished job
        driver.switch_to.alert.accept()
        _wait(lambda job_id=job_id: not _all(driver, f'tr[data-job-id="{job_id}"]'), what="the row to go")
    assert not Client(stack.api_url).list()["jobs"]
    assert "No jobs yet" in _css(driver, "table.jobs tbody").text


def test_no_script_errors(driver: Any) -> None:
    """Nothing the page ran threw or logged an error, all along (the 400s the tests asked for are
    the network's, not the page's)."""
    errors = [e for e in driver.get_log("browser") if e["level"] == "SEVERE" and e["source"] != "network"]
    assert not errors, errors
