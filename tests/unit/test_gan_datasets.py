"""The dataset builder: a zip of MIDI files → pieces.npz, index.json and a report that names every
rejected file; archives refused as a whole (bombs, limits); the per-file cache; the training's
tag filter and window count."""

from __future__ import annotations

import io
import json
import os
import struct
import zipfile
from pathlib import Path

import numpy as np
import pretty_midi
import pytest

from contracts import datasets as contract
from gan import data as gan_data
from gan import datasets
from gan.encoding import Windows
from gan.model import ModelConfig


def midi_bytes(tracks: int = 4, bars: int = 2, notes: bool = True, pitches=(72, 67, 64, 48)) -> bytes:
    """A 4/4 file of `tracks` tracks, one quarter note per beat alternating a semitone up."""
    song = pretty_midi.PrettyMIDI(resolution=96, initial_tempo=90)
    for voice in range(tracks):
        instrument = pretty_midi.Instrument(program=52, name=f"v{voice}")
        for beat in range(4 * bars) if notes else ():
            start = beat * 60 / 90
            instrument.notes.append(pretty_midi.Note(80, pitches[voice] + beat % 2, start, start + 60 / 90))
        song.instruments.append(instrument)
    out = io.BytesIO()
    song.write(out)
    return out.getvalue()


def make_zip(path: Path, members: dict[str, bytes], compression: int = zipfile.ZIP_DEFLATED) -> Path:
    with zipfile.ZipFile(path, "w", compression) as archive:
        for name, data in members.items():
            archive.writestr(zipfile.ZipInfo(name), data, compress_type=compression)
    return path


def declare(path: Path, member: str, size: int) -> None:
    """Rewrite the unpacked size `member` declares (local header and central directory): the
    lie a crafted archive tells."""
    data = bytearray(path.read_bytes())
    with zipfile.ZipFile(path) as archive:
        offset = archive.getinfo(member).header_offset
    struct.pack_into("<L", data, offset + 22, size)
    entry = data.find(b"PK\x01\x02")
    while entry != -1:
        name_length = struct.unpack_from("<H", data, entry + 28)[0]
        if data[entry + 46 : entry + 46 + name_length] == member.encode():
            struct.pack_into("<L", data, entry + 24, size)
        entry = data.find(b"PK\x01\x02", entry + 4)
    path.write_bytes(bytes(data))


@pytest.fixture
def build(tmp_path):
    def run(members: dict[str, bytes] | Path, **options):
        archive = members if isinstance(members, Path) else make_zip(tmp_path / "upload.zip", members)
        options.setdefault("cache_dir", tmp_path / "cache")
        options.setdefault("workers", 1)
        return datasets.build_zip(archive, tmp_path / "built", **options)

    return run


# --- what is accepted and what is rejected -------------------------------------------------------


def test_a_collection_builds_its_pieces_index_and_a_report_that_names_every_rejected_file(tmp_path, build):
    good, long = midi_bytes(), midi_bytes(bars=20)
    members = {
        "jazz/bebop/a.mid": good,
        "jazz/b.MIDI": long,
        "three-voices.mid": midi_bytes(tracks=3),
        "no-notes.mid": midi_bytes(notes=False),
        "garbage.mid": os.urandom(300),
        "notes.txt": b"not music",
        "../escape.mid": good,
        "/absolute.mid": good,
        "huge.mid": os.urandom(contract.MAX_MEMBER_BYTES + 1),
        "jazz/": b"",  # a directory entry
        "__MACOSX/jazz/._a.mid": b"\x00\x05\x16\x07",  # macOS's resource forks
        ".DS_Store": b"Bud1",
    }

    report = build(members)

    # Then every file is counted once: accepted or rejected with its reason; junk is listed apart
    assert set(contract.REPORT_FIELDS) <= set(report)
    reasons = {r["file"]: r["reason"] for r in report["rejected"]}
    assert report["files"] == 9 == report["accepted"] + len(report["rejected"])
    assert report["accepted"] == report["pieces"] == 2
    assert "3 note track(s) but 4 are needed" in reasons["three-voices.mid"]
    assert "has no notes" in reasons["no-notes.mid"]
    assert "not a readable MIDI file" in reasons["garbage.mid"]
    assert "not a MIDI file" in reasons["notes.txt"]
    assert (
        "leaves the archive" in reasons["../escape.mid"] and "leaves the archive" in reasons["/absolute.mid"]
    )
    assert f"at most {contract.MAX_MEMBER_BYTES}" in reasons["huge.mid"]
    assert report["ignored"] == ["__MACOSX/jazz/._a.mid", ".DS_Store"]
    # And the folders are tags of their own, beside the computed ones
    index = json.loads((tmp_path / "built" / datasets.INDEX_FILE).read_text())
    assert [(e["name"], e["bars"]) for e in index] == [("jazz/bebop/a.mid", 2), ("jazz/b.MIDI", 20)]
    assert index[0]["tags"][-2:] == ["jazz", "bebop"] and index[1]["tags"][-1] == "jazz"
    assert {t.split(":")[0] for t in index[0]["tags"][:3]} == {"mode", "key", "meter"}
    assert report["tags"]["jazz"] == 2 and report["tags"]["bebop"] == 1 and report["tags"]["meter:4/4"] == 2
    assert report["bars"] == 22 and report["windows"] == sum(e["windows"] for e in index)
    # And the pieces are what the training's own MIDI reader makes of the same files
    folder = tmp_path / "as-a-folder"
    folder.mkdir()
    (folder / "a.mid").write_bytes(good)
    (folder / "b.mid").write_bytes(long)
    expected, _ = gan_data.load_midi_folder(folder)
    built = datasets.load_built(tmp_path / "built")
    assert [(c.name, tags) for c, tags in built] == [(e["name"], e["tags"]) for e in index]
    for (chorale, _), reference in zip(built, expected, strict=True):
        assert np.array_equal(chorale.pitches, reference.pitches)
        assert np.array_equal(chorale.onsets, reference.onsets)
        assert chorale.steps_per_bar == reference.steps_per_bar == 16


def test_a_windows_backslash_or_drive_path_is_refused_too(build):
    report = build({"..\\up.mid": midi_bytes(), "C:/music/x.mid": midi_bytes(), "ok.mid": midi_bytes()})

    assert [r["file"] for r in report["rejected"]] == ["..\\up.mid", "C:/music/x.mid"]
    assert report["accepted"] == 1


def test_a_damaged_member_is_rejected_and_the_rest_still_builds(tmp_path, build):
    archive = make_zip(tmp_path / "upload.zip", {"a.mid": midi_bytes(), "b.mid": midi_bytes(bars=3)})
    with zipfile.ZipFile(archive) as opened:
        info = opened.getinfo("a.mid")
    data = bytearray(archive.read_bytes())
    start = info.header_offset + 30 + len("a.mid")
    data[start : start + 8] = b"\xff" * 8  # corrupt its deflated bytes
    archive.write_bytes(bytes(data))

    report = build(archive)

    assert report["accepted"] == 1
    assert report["rejected"][0]["file"] == "a.mid" and "damaged" in report["rejected"][0]["reason"]


# --- archives refused as a whole -------------------------------------------------------------------


def test_an_upload_that_is_not_a_zip_is_refused(tmp_path, build):
    (tmp_path / "upload.zip").write_bytes(midi_bytes())

    with pytest.raises(datasets.ArchiveError, match="not a readable zip"):
        build(tmp_path / "upload.zip")


def test_a_member_whose_compression_ratio_says_bomb_is_refused_before_inflating(tmp_path, build):
    with pytest.raises(datasets.ArchiveError, match="zip bomb"):
        build({"ok.mid": midi_bytes(), "bomb.mid": bytes(10 * 1024 * 1024)})

    assert not (tmp_path / "built" / datasets.PIECES_FILE).exists()


def test_a_member_that_declares_1_kb_but_inflates_to_100_mb_is_refused_while_inflating(tmp_path, build):
    archive = make_zip(
        tmp_path / "upload.zip", {"ok.mid": midi_bytes(), "liar.mid": bytes(100 * 1024 * 1024)}
    )
    declare(archive, "liar.mid", 1024)  # its ratio now looks harmless

    with pytest.raises(datasets.ArchiveError, match="declares 1024 bytes but inflates to more"):
        build(archive)

    assert not (tmp_path / "built" / datasets.PIECES_FILE).exists()


def test_an_archive_declaring_more_than_the_unpacked_limit_is_refused(tmp_path, build):
    names = [f"{n}.mid" for n in range(3)]
    archive = make_zip(tmp_path / "upload.zip", {name: midi_bytes() for name in names}, zipfile.ZIP_STORED)
    for name in names:
        declare(archive, name, 1024**3)

    with pytest.raises(datasets.ArchiveError, match=f"at most {contract.MAX_UNPACKED_BYTES}"):
        build(archive)


def test_an_archive_of_too_many_files_is_refused(tmp_path, build):
    archive = make_zip(
        tmp_path / "upload.zip",
        {f"{n}.txt": b"" for n in range(contract.MAX_FILES + 1)},
        zipfile.ZIP_STORED,
    )

    with pytest.raises(datasets.ArchiveError, match=f"{contract.MAX_FILES + 1} files; at most"):
        build(archive)


# --- parallel, cached ------------------------------------------------------------------------------


def test_two_workers_build_the_same_dataset_as_one(tmp_path):
    members = {
        f"set/{n}.mid": midi_bytes(bars=2 + n % 5, pitches=(72 - n % 7, 67, 64, 48)) for n in range(24)
    }
    members["bad.mid"] = b"MThd"
    archive = make_zip(tmp_path / "upload.zip", members)

    one = datasets.build_zip(archive, tmp_path / "one", workers=1, cache_dir=tmp_path / "cache-1")
    two = datasets.build_zip(archive, tmp_path / "two", workers=2, cache_dir=tmp_path / "cache-2")

    assert one == two and one["accepted"] == 24
    assert (tmp_path / "one" / "index.json").read_text() == (tmp_path / "two" / "index.json").read_text()
    for (a, _), (b, _) in zip(
        datasets.load_built(tmp_path / "one"), datasets.load_built(tmp_path / "two"), strict=True
    ):
        assert (
            a.name == b.name and np.array_equal(a.pitches, b.pitches) and np.array_equal(a.onsets, b.onsets)
        )


def test_a_rebuild_reuses_each_converted_file_from_the_cache(tmp_path, build, monkeypatch):
    members = {"a.mid": midi_bytes(), "b.mid": midi_bytes(tracks=2)}
    first = build(members)

    def must_not_convert(data: bytes):
        raise AssertionError("converted again")

    monkeypatch.setattr(datasets, "_convert", must_not_convert)
    assert build(members) == first  # the piece and the rejection both came from the cache
    assert len(list((tmp_path / "cache").rglob(f"*.v{datasets.PIECE_FORMAT}.npz"))) == 2


# --- the training's side -------------------------------------------------------------------------


def test_the_window_count_is_the_training_samplers(tmp_path):
    assert datasets.training_window() == ModelConfig().window  # the builder's, without torch

    splits = gan_data.load_chorales()
    chorales = splits.train[:40] + [
        gan_data.Chorale("short", np.full((4, 20), 60, np.uint8), np.ones((4, 20), bool), 16)
    ]
    config = ModelConfig()

    counted = sum(datasets.count_windows(c.pitches[0], config.window) for c in chorales)

    assert counted == len(Windows(chorales, config))


def test_the_tags_hyperparameter_is_read_as_sagemaker_and_the_sdk_send_it():
    assert datasets.parse_tags('["mode:minor", "jazz"]') == ["mode:minor", "jazz"]
    assert datasets.parse_tags(json.dumps('["mode:minor"]')) == ["mode:minor"]  # encoded twice
    assert datasets.parse_tags(["key:a-minor"]) == ["key:a-minor"]
    for bad in ("mode:minor", '"x"', '["Jazz"]', "[1]", json.dumps([f"t{n}" for n in range(11)])):
        with pytest.raises(ValueError, match="hyperparameter tags"):
            datasets.parse_tags(bad)


def test_a_filter_that_leaves_too_little_says_what_it_left():
    chorale = gan_data.Chorale("x", np.full((4, 64), 60, np.uint8), np.ones((4, 64), bool), 16)
    pieces = [(chorale, ["mode:major", "jazz"]), (chorale, ["mode:minor"])]

    with pytest.raises(ValueError, match=r'the tags \["jazz"\] leave 1 piece\(s\) and 1 training window'):
        datasets.select(pieces, ["jazz"], "the job's dataset")
    many = [(chorale, ["jazz"])] * contract.MIN_WINDOWS
    assert len(datasets.select(many, ["jazz"], "the job's dataset")) == contract.MIN_WINDOWS
