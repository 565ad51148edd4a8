"""A dataset through the whole local stack, as a user makes one: `opencomposer dataset upload` of a
folder with a `jazz/` subfolder (three usable 4-voice files, one that is not), moto's S3 event
starting the build function in the local runtime, and the report the CLI prints and the API
answers."""

from __future__ import annotations

import io
import time
from collections.abc import Iterator
from pathlib import Path

import pretty_midi
import pytest

from contracts import datasets
from opencomposer.client import ApiError, Client
from opencomposer.local.stack import LocalStack, LocalStackOptions

pytestmark = pytest.mark.slow

BAD = "jazz/two-voices.mid"


def four_voices(tracks: int = 4, transpose: int = 0, bars: int = 8) -> bytes:
    """`bars` bars of 4/4 quarters in `tracks` voices (a soprano over a C major / A minor pattern)."""
    base = (72, 67, 64, 48)
    midi = pretty_midi.PrettyMIDI(resolution=96, initial_tempo=100)
    beat = 60 / 100
    for voice in range(tracks):
        instrument = pretty_midi.Instrument(program=52, name=f"voice {voice}")
        for step in range(bars * 4):
            pitch = base[voice] + transpose + (0, 2, 4, 2)[step % 4] - (3 if (step // 8) % 2 else 0)
            instrument.notes.append(pretty_midi.Note(80, pitch, step * beat, (step + 1) * beat))
        midi.instruments.append(instrument)
    buffer = io.BytesIO()
    midi.write(buffer)
    return buffer.getvalue()


def chorale_files() -> dict[str, bytes]:
    """Three usable files (one in `jazz/`) and one with two voices only."""
    return {
        "first.mid": four_voices(),
        "second.mid": four_voices(transpose=2),
        "jazz/third.mid": four_voices(transpose=-3),
        BAD: four_voices(tracks=2),
    }


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalStack]:
    home = tmp_path_factory.mktemp("opencomposer-home")
    with LocalStack(LocalStackOptions(home=home, port=0, stop_grace_s=5)) as running:
        yield running


def test_a_folder_uploads_builds_and_reports_every_file(stack: LocalStack, tmp_path: Path,
                                                         capsys: pytest.CaptureFixture[str]) -> None:
    from opencomposer import cli

    folder = tmp_path / "my music"
    for name, data in chorale_files().items():
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_bytes(data)

    started = time.monotonic()
    code = cli.main(["--api", stack.api_url, "dataset", "upload", str(folder), "--name", "mine"])
    printed = capsys.readouterr().out

    assert code == 0, printed
    client = Client(stack.api_url)
    [listed] = client.datasets()["datasets"]
    dataset = client.dataset(listed["dataset_id"])
    summary = dataset["summary"]
    assert dataset["status"] == "READY" and dataset["name"] == "mine"
    assert (summary["files"], summary["accepted"], summary["pieces"]) == (4, 3, 3)
    [rejected] = summary["rejected"]
    assert rejected["file"] == BAD and "4 are needed" in rejected["reason"]
    assert summary["tags"]["jazz"] == 1 and summary["windows"] > 0
    # what the CLI printed is the same report, the reason included
    assert "accepted 3 of 4" in printed and BAD in printed and "4 are needed" in printed
    assert "jazz: 1" in printed
    # the zip is gone, the built files are there
    s3 = stack.client("s3")
    keys = {o["Key"] for o in s3.list_objects_v2(Bucket=stack.names.bucket)["Contents"]}
    dataset_id = dataset["dataset_id"]
    assert keys == {datasets.pieces_key(dataset_id), datasets.index_key(dataset_id),
                    datasets.report_key(dataset_id)}
    assert time.monotonic() - started < 120

    client.delete_dataset(dataset_id)
    assert "Contents" not in s3.list_objects_v2(Bucket=stack.names.bucket)
    with pytest.raises(ApiError) as gone:
        client.dataset(dataset_id)
    assert gone.value.status == 404
