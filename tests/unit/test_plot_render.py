"""`opencomposer plot` (a job's curves as a PNG) and `opencomposer render` (MIDI as WAV: the plain
synthesizer always, FluidSynth where installed), against a scripted API."""

from __future__ import annotations

import json
import threading
import wave
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from opencomposer import audio, cli, plots

JOB = "b" * 32
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
END_S = 3.0  # the test file's last note ends here


def _metrics(wasserstein: bool = True, epochs: int = 6) -> dict[str, Any]:
    rows = []
    for epoch in range(1, epochs + 1):
        row = {
            "epoch": epoch,
            "generator_loss": -1.0 + 0.1 * epoch,
            "critic_loss": 2.0 - 0.2 * epoch,
            "similarity": 0.3 + 0.08 * epoch,
            "in_key_ratio": 0.7 + 0.03 * epoch,
            "consonance": 0.5 + 0.04 * epoch,
            "voice_crossing": 0.2 - 0.02 * epoch,
            "chord_agreement": 0.4,  # no panel of its own
        }
        if wasserstein:
            row["wasserstein"] = 1.5 - 0.2 * epoch
        rows.append(row)
    reference = {"similarity": 1.0, "in_key_ratio": 0.95, "consonance": 0.83, "voice_crossing": 0.01}
    return {"job_id": JOB, "epochs": rows, "reference": reference}


class _Api:
    """Scripted answers by path; `/files/...` serves bytes (the presigned URLs)."""

    def __init__(self) -> None:
        self.json: dict[str, Any] = {}
        self.files: dict[str, bytes] = {}
        api = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 - the base's name
                path = self.path.split("?", 1)[0]
                if path in api.files:
                    status, data = 200, api.files[path]
                elif path in api.json:
                    status, data = 200, json.dumps(api.json[path]).encode()
                else:
                    status, data = 404, b'{"error": {"code": "not_found", "message": "no"}}'
                self.send_response(status)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


@pytest.fixture
def api() -> Iterator[_Api]:
    server = _Api()
    yield server
    server.server.shutdown()
    server.server.server_close()


@pytest.fixture
def midi_file(tmp_path: Path) -> Path:
    """Four voices (choir, strings, a piano, a reed), the last note ending at END_S."""
    import pretty_midi

    music = pretty_midi.PrettyMIDI(initial_tempo=120)
    for program, base in ((52, 72), (48, 64), (0, 57), (71, 48)):
        instrument = pretty_midi.Instrument(program=program)
        for i in range(6):
            start = i * 0.5
            instrument.notes.append(
                pretty_midi.Note(velocity=90, pitch=base + i % 3, start=start, end=start + 0.5)
            )
        music.instruments.append(instrument)
    path = tmp_path / "four voices.mid"
    music.write(str(path))
    return path


# --- plot ---------------------------------------------------------------------------------------------


def test_the_figure_has_a_panel_per_reported_metric() -> None:
    metrics = _metrics()
    titles = [panel.title for panel in plots.panels(metrics)]
    # losses, Wasserstein, similarity, then in key, consonance, voice crossing
    assert len(titles) == 6 and titles[0] == "losses" and titles[1].startswith("Wasserstein")
    assert len(plots.figure(metrics).axes) == 6
    assert len(plots.figure(_metrics(wasserstein=False)).axes) == 5


def test_bachs_values_are_dashed_lines_beside_the_curves() -> None:
    drawn = plots.figure(_metrics())
    similarity = drawn.axes[2]
    dashed = [line for line in similarity.get_lines() if line.get_linestyle() == "--"]
    assert len(dashed) == 1 and list(dashed[0].get_ydata()) == [1.0, 1.0]
    assert not [line for line in drawn.axes[0].get_lines() if line.get_linestyle() == "--"]
    assert [len(line.get_xdata()) for line in drawn.axes[0].get_lines()] == [6, 6]


def test_plot_writes_the_png_of_the_jobs_metrics(
    api: _Api, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    api.json[f"/jobs/{JOB}/metrics"] = _metrics()

    assert cli.main(["--api", api.url, "plot", JOB]) == cli.EXIT_OK

    path = Path(capsys.readouterr().out.strip())
    assert path == Path("out") / JOB / "curves.png"
    assert (tmp_path / path).read_bytes().startswith(PNG_SIGNATURE)
    assert cli.main(["--api", api.url, "plot", JOB, "-o", "elsewhere/c.png"]) == cli.EXIT_OK
    assert (tmp_path / "elsewhere" / "c.png").read_bytes().startswith(PNG_SIGNATURE)


def test_plot_of_a_job_without_epochs_is_an_error(
    api: _Api, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    api.json[f"/jobs/{JOB}/metrics"] = {"job_id": JOB, "epochs": [], "reference": {}}

    assert cli.main(["--api", api.url, "plot", JOB]) == cli.EXIT_API
    assert "no per-epoch metrics" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


# --- render -------------------------------------------------------------------------------------------


def _check_wav(path: Path, minimum_s: float, maximum_s: float) -> None:
    with wave.open(str(path), "rb") as source:
        assert source.getframerate() == audio.SAMPLE_RATE and source.getsampwidth() == 2
        seconds = source.getnframes() / source.getframerate()
    assert minimum_s <= seconds <= maximum_s, seconds
    assert audio.wav_rms(path) > 0.005, "not silence"


def test_the_plain_synthesizer_plays_every_note(midi_file: Path, tmp_path: Path) -> None:
    rendered = audio.render(midi_file, tmp_path / "out.wav", renderer="plain")

    assert rendered.renderer == "plain" and rendered.path == tmp_path / "out.wav"
    _check_wav(rendered.path, END_S + audio.RELEASE_S - 0.01, END_S + audio.RELEASE_S + 0.01)
    samples, _ = audio.read_wav(rendered.path)
    assert np.max(np.abs(samples)) == pytest.approx(audio.PEAK, abs=1e-3)
    # sound all along: no quarter second of the notes' span is silent
    quarter = audio.SAMPLE_RATE // 4
    levels = [
        np.sqrt(np.mean(samples[i : i + quarter] ** 2))
        for i in range(0, int(END_S * audio.SAMPLE_RATE), quarter)
    ]
    assert min(levels) > 0.01


def test_every_timbre_sounds(tmp_path: Path) -> None:
    import pretty_midi

    for program in range(0, 128, 8):
        music = pretty_midi.PrettyMIDI()
        instrument = pretty_midi.Instrument(program=program)
        instrument.notes.append(pretty_midi.Note(velocity=40, pitch=40, start=0.0, end=0.4))
        music.instruments.append(instrument)
        path = tmp_path / f"p{program}.mid"
        music.write(str(path))
        assert audio.wav_rms(audio.render(path, tmp_path / f"p{program}.wav", "plain").path) > 0.01, program


def test_a_file_without_notes_is_an_error_not_silence(tmp_path: Path) -> None:
    import pretty_midi

    empty = tmp_path / "empty.mid"
    pretty_midi.PrettyMIDI().write(str(empty))
    with pytest.raises(audio.RenderError, match="no notes"):
        audio.render(empty, tmp_path / "empty.wav", renderer="plain")
    (tmp_path / "junk.mid").write_bytes(b"not midi")
    with pytest.raises(audio.RenderError, match="not a MIDI file"):
        audio.render(tmp_path / "junk.mid", tmp_path / "junk.wav", renderer="plain")
    assert not (tmp_path / "empty.wav").exists()


def test_auto_is_the_plain_synthesizer_without_fluidsynth(
    midi_file: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(audio.shutil, "which", lambda name: None)
    rendered = audio.render(midi_file, tmp_path / "auto.wav")
    assert rendered.renderer == "plain" and "no fluidsynth" in rendered.note
    with pytest.raises(audio.RenderError, match="FluidSynth"):
        audio.render(midi_file, tmp_path / "fs.wav", renderer="fluidsynth")


_FLUIDSYNTH, _WHY_NOT = audio.fluidsynth_available()


@pytest.mark.skipif(not _FLUIDSYNTH, reason=f"FluidSynth cannot render here: {_WHY_NOT}")
def test_fluidsynth_renders_with_the_soundfont(midi_file: Path, tmp_path: Path) -> None:
    rendered = audio.render(midi_file, tmp_path / "fs.wav", renderer="fluidsynth")

    assert rendered.renderer == "fluidsynth"
    # FluidSynth plays to the end of the file and lets the last notes ring out a little
    _check_wav(rendered.path, END_S - 0.05, END_S + 5.0)
    assert audio.render(midi_file, tmp_path / "auto.wav").renderer == "fluidsynth"


def test_render_a_file_prints_the_wav_and_the_renderer(
    midi_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.main(["render", str(midi_file), "--renderer", "plain"]) == cli.EXIT_OK

    captured = capsys.readouterr()
    assert Path(captured.out.strip()) == midi_file.with_suffix(".wav")
    assert "renderer: plain" in captured.err
    _check_wav(midi_file.with_suffix(".wav"), END_S, END_S + 1)


def test_render_a_job_fetches_its_final_composition(
    api: _Api,
    midi_file: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.chdir(tmp_path)
    api.files["/files/final.mid"] = midi_file.read_bytes()
    api.files["/files/mine.mid"] = midi_file.read_bytes()
    api.json[f"/jobs/{JOB}/compositions"] = {
        "compositions": [
            {
                "composition_id": "0190f3a1b2c3d4e5f601",
                "kind": "composition",
                "name": "my ode",
                "url": api.url + "/files/mine.mid?X-Amz-Signature=s",
            },
            {
                "composition_id": "final",
                "kind": "final",
                "name": "final",
                "url": api.url + "/files/final.mid?X-Amz-Signature=s",
            },
        ],
        "next_token": None,
    }

    assert cli.main(["--api", api.url, "render", JOB, "--renderer", "plain"]) == cli.EXIT_OK
    assert Path(capsys.readouterr().out.strip()) == Path("out") / JOB / "final.wav"
    _check_wav(tmp_path / "out" / JOB / "final.wav", END_S, END_S + 1)

    assert cli.main(["--api", api.url, "render", JOB, "--composition", "my ode", "-o", "ode.wav"]) == 0
    assert capsys.readouterr().out.strip() == "ode.wav"
    assert (tmp_path / "out" / JOB / "0190f3a1b2c3d4e5f601.mid").is_file()

    assert cli.main(["--api", api.url, "render", JOB, "--composition", "nope"]) == cli.EXIT_API
    assert "has no composition 'nope'" in capsys.readouterr().err
