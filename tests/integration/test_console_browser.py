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
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from contracts import statuses, storage
from opencomposer.client import Client
from opencomposer.console import headless
from opencomposer.local.stack import LocalStack, LocalStackOptions

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
SCREENSHOTS = ROOT / "docs" / "screenshots"
WIDTH, HEIGHT = headless.WIDTH, headless.HEIGHT
PHONE_WIDTH = 375
TRAINING_TIMEOUT_S = 300


@pytest.fixture(scope="module")
def browser_ready() -> None:
    """Chromium, its driver and selenium, or a failure (a skip with OPENCOMPOSER_SKIP_BROWSER=1)."""
    needs = headless.missing()
    if needs:
        message = "the console's browser test needs " + ", ".join(needs)
        if os.environ.get("OPENCOMPOSER_SKIP_BROWSER") == "1":
            pytest.skip(message + " (skipped: OPENCOMPOSER_SKIP_BROWSER=1)")
        pytest.fail(message + "; set OPENCOMPOSER_SKIP_BROWSER=1 to skip it", pytrace=False)


@pytest.fixture(scope="module")
def stack(browser_ready: None, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalStack]:
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
def driver(browser_ready: None, downloads: Path) -> Iterator[Any]:
    browser = headless.chrome(downloads)
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


def _reaches_by_itself(driver: Any, status: str) -> None:
    """The job page open in `driver` shows `status`, without a reload."""
    driver.execute_script("window.__noReload = true")
    _wait(
        lambda: _css(driver, "h1 .badge").get_attribute("data-status") == status,
        timeout=TRAINING_TIMEOUT_S,
        what=f"the job to reach {status} on its page",
    )
    assert driver.execute_script("return window.__noReload") is True, "the page was reloaded"


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
    _reaches_by_itself(driver, statuses.COMPLETED)
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


# An element's accessible name, as far as these pages need it: aria-label, aria-labelledby,
# a <label for>, a wrapping <label>, or its own text.
_UNLABELLED = """
const name = (el) => (el.getAttribute("aria-label") || "").trim()
  || (el.getAttribute("aria-labelledby") || "").split(" ")
       .map((id) => document.getElementById(id)?.textContent || "").join(" ").trim()
  || (el.id && document.querySelector(`label[for="${CSS.escape(el.id)}"]`)?.textContent.trim())
  || el.closest("label")?.textContent.trim()
  || (["INPUT", "SELECT", "TEXTAREA"].includes(el.tagName) ? "" : el.textContent.trim());
return [...document.querySelectorAll("main a[href], main button, main input, main select, main textarea")]
  .filter((el) => el.offsetParent !== null && !name(el))
  .map((el) => el.outerHTML.slice(0, 120));
"""


# The page's width, and what sticks out past the screen's right edge (not clipped by a box of
# its own, as a chart's or a table's scroller clips).
_WIDER_THAN_THE_SCREEN = """
const clipped = (el) => {
  for (let a = el.parentElement; a && a !== document.body; a = a.parentElement)
    if (getComputedStyle(a).overflowX !== "visible") return true;
  return false;
};
return [document.documentElement.scrollWidth,
  [...document.querySelectorAll("main *")]
    .filter((el) => el.offsetParent !== null && !clipped(el)
      && el.getBoundingClientRect().right > innerWidth + 1)
    .slice(0, 3).map((el) => el.outerHTML.slice(0, 100))];
"""


def _pages(state: dict[str, Any]) -> dict[str, str]:
    job_id = state["job_id"]
    return {
        "jobs": "#/jobs",
        "new job": "#/new",
        "job": f"#/jobs/{job_id}",
        "compose": f"#/jobs/{job_id}/compose",
    }


def _ready(driver: Any) -> None:
    _wait(
        lambda: driver.execute_script("return performance.getEntriesByName('opencomposer:ready').length > 0"),
        what="the page's data",
    )


def test_every_control_is_labelled_and_each_page_fits_a_phone(
    driver: Any, base_url: str, state: dict[str, Any]
) -> None:
    for page, path in _pages(state).items():
        _open(driver, base_url + "/" + path)
        _ready(driver)
        assert not driver.execute_script(_UNLABELLED), f"the {page} page has unlabelled controls"
        driver.execute_cdp_cmd(
            "Emulation.setDeviceMetricsOverride",
            {"width": PHONE_WIDTH, "height": HEIGHT, "deviceScaleFactor": 1, "mobile": True},
        )
        try:
            time.sleep(0.4)  # charts and rolls follow the new width
            wide = driver.execute_script(_WIDER_THAN_THE_SCREEN)
            assert wide[0] <= PHONE_WIDTH and not wide[1], f"the {page} page is wider than a phone: {wide}"
        finally:
            driver.execute_cdp_cmd("Emulation.clearDeviceMetricsOverride", {})


def test_the_new_job_form_by_keyboard_alone(driver: Any, base_url: str) -> None:
    """Tab from the top of the page reaches every control, each one showing that it has the focus;
    the form is filled and sent with the keyboard, and its error read beside the field."""
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.keys import Keys

    _open(driver, base_url + "/#/new")
    _ready(driver)
    driver.execute_script("document.activeElement.blur(); window.scrollTo(0, 0)")
    seen: list[str] = []
    for _ in range(40):
        ActionChains(driver).send_keys(Keys.TAB).perform()
        focused = driver.switch_to.active_element
        key = focused.get_attribute("id") or focused.text or focused.tag_name
        # a visible focus ring: an outline or a box shadow where the element has the focus
        ring = driver.execute_script(
            "const s = getComputedStyle(arguments[0]);"
            "return (s.outlineStyle !== 'none' && parseFloat(s.outlineWidth) > 0) || s.boxShadow !== 'none'",
            focused,
        )
        assert ring, f"{key} shows no focus"
        seen.append(key)
        if key == "submit-job":
            break
    for control in ("job-source-sample", "job-sample", "job-name", "hp-epochs", "hp-seed", "submit-job"):
        assert control in seen, f"Tab never reached #{control}: {seen}"
    # back to the epochs field, a wrong value typed, Enter sends the form
    epochs = _css(driver, "#hp-epochs")
    while driver.switch_to.active_element != epochs:
        ActionChains(driver).key_down(Keys.SHIFT).send_keys(Keys.TAB).key_up(Keys.SHIFT).perform()
    ActionChains(driver).key_down(Keys.CONTROL).send_keys("a").key_up(Keys.CONTROL).send_keys(
        "0", Keys.ENTER
    ).perform()
    error = _wait(
        lambda: _css(driver, '[data-error-for="hyperparameters.epochs"]').text, what="the epochs error"
    )
    assert "1" in error and driver.switch_to.active_element == epochs, error
    # the sample melody plays from the keyboard: Space on its Play button
    play = _css(driver, "#new-job .player button.play")
    play.send_keys(Keys.SPACE)
    player = play.find_element("xpath", "ancestor::*[contains(@class,'player')][1]")
    _wait(lambda: player.get_attribute("data-state") == "playing", what="the melody to play")
    play.send_keys(Keys.SPACE)


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


def test_a_failed_job_shows_why(driver: Any, base_url: str, stack: LocalStack, state: dict[str, Any]) -> None:
    # Given a job whose melody in S3 is damaged before its training reads it (the stream's
    # mapping paused meanwhile, so nothing starts before the damage is done)
    lam = stack.client("lambda")
    assert stack.resources is not None
    lam.update_event_source_mapping(UUID=stack.resources.mapping_uuid, Enabled=False)
    try:
        job = Client(stack.api_url).submit({"name": "broken melody", "hyperparameters": {"epochs": 1}})
        stack.client("s3").put_object(
            Bucket=stack.names.bucket, Key=storage.melody_key(job["job_id"]), Body=b"this is not MIDI"
        )
    finally:
        lam.update_event_source_mapping(UUID=stack.resources.mapping_uuid, Enabled=True)
    state["failed_job_id"] = job["job_id"]
    # its page, open while it runs, turns to FAILED and says why, without a reload
    _open(driver, base_url + f"/#/jobs/{job['job_id']}")
    _reaches_by_itself(driver, statuses.FAILED)
    reason = _css(driver, "#failure-reason").text
    assert "not a readable MIDI file" in reason, reason
    failed_step = _css(driver, ".timeline li[aria-current=step]")
    assert failed_step.text == "failed" and "bad" in failed_step.get_attribute("class").split()
    assert not _all(driver, "[data-key=compose]"), "a failed job offers to compose"
    _screenshot(driver, "job-failed")


def test_delete_the_jobs_from_the_jobs_page(
    driver: Any, base_url: str, stack: LocalStack, state: dict[str, Any]
) -> None:
    _open(driver, base_url + "/#/jobs")
    for job_id in (state["job_id"], state["stopped_job_id"], state["failed_job_id"]):
        row = _wait(lambda job_id=job_id: _css(driver, f'tr[data-job-id="{job_id}"]'), what="the job's row")
        row.find_element("css selector", "button.danger").click()  # Delete, for a finished job
        driver.switch_to.alert.accept()
        _wait(lambda job_id=job_id: not _all(driver, f'tr[data-job-id="{job_id}"]'), what="the row to go")
    assert not Client(stack.api_url).list()["jobs"]
    assert "No jobs yet" in _css(driver, "table.jobs tbody").text


def test_the_jobs_page_pages_past_100(driver: Any, base_url: str, stack: LocalStack) -> None:
    # 105 jobs, none of which starts (the stream's mapping paused: the stack goes away after)
    assert stack.resources is not None
    stack.client("lambda").update_event_source_mapping(UUID=stack.resources.mapping_uuid, Enabled=False)
    client = Client(stack.api_url)
    ids = [client.submit({"name": f"page job {i:03d}"})["job_id"] for i in range(105)]
    _open(driver, base_url + "/#/jobs")

    def rows() -> list[str]:  # read in one go: the poll re-renders the table under a slower read
        return driver.execute_script(
            "return [...document.querySelectorAll('table.jobs tbody tr[data-job-id]')]"
            ".map((r) => r.dataset.jobId)"
        )

    _wait(lambda: len(rows()) == 100, what="the first 100 jobs")
    assert rows() == ids[::-1][:100], "not the newest 100, newest first"
    assert _css(driver, "#jobs-caption").text.startswith("Jobs 1–100")
    assert not _css(driver, "#jobs-newer").is_enabled()
    _css(driver, "#jobs-older").click()
    _wait(lambda: len(rows()) == 5, what="the 5 oldest jobs")
    assert rows() == ids[::-1][100:]
    assert _css(driver, "#jobs-caption").text.startswith("Jobs 101–105")
    assert not _css(driver, "#jobs-older").is_enabled()
    _css(driver, "#jobs-newer").click()
    _wait(lambda: rows() == ids[::-1][:100], what="the newest 100 again")


def test_no_script_errors(driver: Any) -> None:
    """Nothing the page ran threw or logged an error, all along (the 400s the tests asked for are
    the network's, not the page's)."""
    errors = [e for e in driver.get_log("browser") if e["level"] == "SEVERE" and e["source"] != "network"]
    assert not errors, errors
