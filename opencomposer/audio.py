"""`opencomposer render`: a MIDI file as a WAV file you can play anywhere.

Two renderers:

- `fluidsynth`: the FluidSynth program with a General MIDI soundfont, each track in its own
  instrument (its program), where both are installed (Debian/Ubuntu: `apt-get install fluidsynth
  fluid-soundfont-gm`; macOS: `brew install fluid-synth` and a soundfont in
  `$OPENCOMPOSER_SOUNDFONT`). It runs `fluidsynth -ni -F out.wav -r 44100 SOUNDFONT FILE.mid`.
- `plain`: this module's own synthesizer, needing only numpy and pretty_midi. Every note is a sum
  of sine harmonics under an attack/decay/release envelope, its loudness from its velocity; the
  track's General MIDI program picks one of a few crude timbres (piano and plucked strings
  decay, organ, bowed strings, choir and brass sustain, reeds have odd harmonics only; drums are
  noise bursts). The mix is normalised to -1 dBFS and written as 16-bit mono WAV at 44.1 kHz
  with the standard library's `wave`. It is no orchestra, but every voice is audible.

`auto` (the default) uses FluidSynth when it finds both the program and a soundfont, else the
plain synthesizer; a FluidSynth run that fails or writes silence falls back to it too. A file
without a single note is an error, never a silent WAV.
"""

from __future__ import annotations

import math
import os
import shutil
import subprocess
import wave
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

SAMPLE_RATE = 44100
ENV_SOUNDFONT = "OPENCOMPOSER_SOUNDFONT"
SOUNDFONTS = (
    "/usr/share/sounds/sf2/FluidR3_GM.sf2",
    "/usr/share/sounds/sf2/default-GM.sf2",
    "/usr/share/soundfonts/FluidR3_GM.sf2",
    "/usr/share/soundfonts/default.sf2",
    "/opt/homebrew/share/soundfonts/default.sf2",
    "/usr/local/share/soundfonts/default.sf2",
)
RENDERERS = ("auto", "fluidsynth", "plain")
# Below this RMS (full scale = 1) a WAV counts as silence.
SILENCE_RMS = 1e-3
RELEASE_S = 0.25  # every note's release, and the tail after the last one
PEAK = 10 ** (-1 / 20)  # -1 dBFS
FLUIDSYNTH_TIMEOUT_S = 600


class RenderError(Exception):
    pass


@dataclass(frozen=True)
class Rendered:
    path: Path
    renderer: str  # "fluidsynth" or "plain"
    seconds: float
    note: str = ""  # why FluidSynth was not used, where it was not


def soundfont() -> Path | None:
    """`$OPENCOMPOSER_SOUNDFONT`, else the first General MIDI soundfont installed."""
    chosen = os.environ.get(ENV_SOUNDFONT)
    for candidate in ([chosen] if chosen else []) + list(SOUNDFONTS):
        if Path(candidate).is_file():
            return Path(candidate)
    return None


def fluidsynth_available() -> tuple[bool, str]:
    """Whether FluidSynth can render here, and if not why."""
    if shutil.which("fluidsynth") is None:
        return False, "no fluidsynth program (apt-get install fluidsynth fluid-soundfont-gm)"
    if soundfont() is None:
        return False, f"no General MIDI soundfont (fluid-soundfont-gm, or ${ENV_SOUNDFONT})"
    return True, ""


def render(midi: Path | str, output: Path | str, renderer: str = "auto") -> Rendered:
    """Render the MIDI file `midi` into the WAV file `output` (its folder created)."""
    if renderer not in RENDERERS:
        raise ValueError(f"renderer must be one of {', '.join(RENDERERS)}")
    source, target = Path(midi), Path(output)
    target.parent.mkdir(parents=True, exist_ok=True)
    note = ""
    if renderer in ("auto", "fluidsynth"):
        available, note = fluidsynth_available()
        if available:
            try:
                return render_fluidsynth(source, target)
            except RenderError as e:
                note = str(e)
        if renderer == "fluidsynth":
            raise RenderError(f"cannot render with FluidSynth: {note}")
    seconds = render_plain(source, target)
    return Rendered(target, "plain", seconds, note)


def render_fluidsynth(midi: Path, output: Path) -> Rendered:
    font = soundfont()
    program = shutil.which("fluidsynth")
    if font is None or program is None:
        raise RenderError(fluidsynth_available()[1])
    _load(midi)  # a file that is not MIDI or has no notes fails as it does for the plain synth
    partial = output.with_name(output.name + ".part.wav")
    rate = str(SAMPLE_RATE)
    command = [program, "-ni", "-q", "-g", "0.6", "-F", str(partial), "-r", rate, str(font), str(midi)]
    try:
        done = subprocess.run(command, capture_output=True, timeout=FLUIDSYNTH_TIMEOUT_S, check=False)
    except (OSError, subprocess.TimeoutExpired) as e:
        partial.unlink(missing_ok=True)
        raise RenderError(f"fluidsynth did not run: {e}") from None
    if done.returncode != 0 or not partial.is_file():
        partial.unlink(missing_ok=True)
        tail = (done.stderr or done.stdout).decode(errors="replace").strip()[-300:]
        raise RenderError(f"fluidsynth exited {done.returncode}: {tail}")
    try:
        level = wav_rms(partial)
    except (wave.Error, EOFError) as e:
        partial.unlink(missing_ok=True)
        raise RenderError(f"fluidsynth wrote no readable WAV: {e}") from None
    if level <= SILENCE_RMS:
        partial.unlink(missing_ok=True)
        raise RenderError("fluidsynth wrote silence")
    partial.replace(output)
    return Rendered(output, "fluidsynth", wav_seconds(output), f"soundfont {font}")


# --- the plain synthesizer ------------------------------------------------------------------------


@dataclass(frozen=True)
class Timbre:
    harmonics: tuple[float, ...]  # amplitude of harmonic 1, 2, ...
    attack_s: float
    decay_s: float | None  # time constant of the exponential decay; None: sustained


PIANO = Timbre((1.0, 0.5, 0.3, 0.18, 0.1, 0.06), 0.005, 0.9)
PLUCKED = Timbre((1.0, 0.6, 0.35, 0.2, 0.1), 0.003, 0.6)
ORGAN = Timbre((1.0, 0.7, 0.0, 0.45, 0.0, 0.25, 0.0, 0.2), 0.015, None)
BOWED = Timbre(tuple(1 / k for k in range(1, 9)), 0.06, None)  # a soft sawtooth
CHOIR = Timbre((1.0, 0.35, 0.15, 0.08), 0.08, None)
BRASS = Timbre(tuple(1 / k**0.8 for k in range(1, 9)), 0.04, None)
REED = Timbre(tuple((1 / k if k % 2 else 0.0) for k in range(1, 10)), 0.03, None)  # odd harmonics


def timbre(program: int) -> Timbre:
    """A crude timbre for a General MIDI program (0-based)."""
    if program < 16:
        return PIANO  # pianos, chromatic percussion
    if program < 24:
        return ORGAN
    if program < 40:
        return PLUCKED  # guitars, basses
    if program < 52:
        return BOWED  # strings, ensembles
    if program < 56:
        return CHOIR  # choir aahs, voice oohs, synth voice, orchestra hit
    if program < 64:
        return BRASS
    if program < 80:
        return REED  # reeds and pipes
    return BOWED


def _load(midi: Path) -> Any:
    import pretty_midi

    try:
        music = pretty_midi.PrettyMIDI(str(midi))
    except Exception as e:  # noqa: BLE001 - pretty_midi raises anything on a bad file
        raise RenderError(f"{midi} is not a MIDI file pretty_midi reads: {e}") from None
    if not any(instrument.notes for instrument in music.instruments):
        raise RenderError(f"{midi} has no notes to play")
    return music


def synthesize(midi: Path | str, sample_rate: int = SAMPLE_RATE) -> np.ndarray:
    """The mix of every note of `midi` as float samples in [-PEAK, PEAK], mono."""
    music = _load(Path(midi))
    end = music.get_end_time()
    total = int(math.ceil((end + RELEASE_S) * sample_rate)) + 1
    mix = np.zeros(total, dtype=np.float64)
    release = max(1, int(RELEASE_S * sample_rate))
    rng = np.random.default_rng(0)
    for instrument in music.instruments:
        sound = timbre(int(instrument.program))
        for note in instrument.notes:
            start = max(0, int(round(note.start * sample_rate)))
            held = max(1, int(round((note.end - note.start) * sample_rate)))
            length = min(held + release, total - start)
            if length <= 0:
                continue
            t = np.arange(length) / sample_rate
            if instrument.is_drum:
                wave_ = rng.uniform(-1.0, 1.0, length) * np.exp(-t / 0.05)
            else:
                frequency = 440.0 * 2 ** ((note.pitch - 69) / 12)
                wave_ = np.zeros(length)
                for k, amplitude in enumerate(sound.harmonics, start=1):
                    if amplitude and k * frequency < 0.45 * sample_rate:
                        wave_ += amplitude * np.sin(2 * np.pi * k * frequency * t)
                wave_ *= _envelope(sound, length, held, sample_rate)
            mix[start : start + length] += (note.velocity / 127) * wave_
    peak = float(np.max(np.abs(mix))) if mix.size else 0.0
    if peak <= 0:
        raise RenderError(f"{midi} has no audible notes")
    return mix * (PEAK / peak)


def _envelope(sound: Timbre, length: int, held: int, sample_rate: int) -> np.ndarray:
    t = np.arange(length) / sample_rate
    attack = np.clip(t / sound.attack_s, 0.0, 1.0)
    body = np.exp(-t / sound.decay_s) if sound.decay_s else np.ones(length)
    if sound.decay_s is None:
        body = body * 0.85 + 0.15 * np.exp(-t / 0.15)  # a small accent at the onset
    tail = np.ones(length)
    after = np.arange(length) - held
    releasing = after > 0
    tail[releasing] = np.clip(1.0 - after[releasing] / (RELEASE_S * sample_rate), 0.0, 1.0)
    result: np.ndarray = attack * body * tail
    return result


def render_plain(midi: Path | str, output: Path | str, sample_rate: int = SAMPLE_RATE) -> float:
    """Synthesize `midi` into the 16-bit mono WAV `output`; returns its length in seconds."""
    samples = synthesize(midi, sample_rate)
    target = Path(output)
    partial = target.with_name(target.name + ".part.wav")
    pcm = np.round(samples * 32767).astype("<i2")
    with wave.open(str(partial), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(sample_rate)
        out.writeframes(pcm.tobytes())
    partial.replace(target)
    return len(pcm) / sample_rate


# --- reading WAV back -------------------------------------------------------------------------------


def read_wav(path: Path | str) -> tuple[np.ndarray, int]:
    """Samples (frames × channels, full scale 1) and the sample rate of an integer PCM WAV."""
    with wave.open(str(path), "rb") as source:
        width, channels, rate = source.getsampwidth(), source.getnchannels(), source.getframerate()
        raw = source.readframes(source.getnframes())
    if width == 1:
        data = (np.frombuffer(raw, dtype=np.uint8).astype(np.float64) - 128) / 128
    elif width in (2, 4):
        kind = "<i2" if width == 2 else "<i4"
        data = np.frombuffer(raw, dtype=kind).astype(np.float64) / float(2 ** (8 * width - 1))
    else:
        raise wave.Error(f"unsupported sample width {width}")
    return data.reshape(-1, channels), rate


def wav_rms(path: Path | str) -> float:
    data, _ = read_wav(path)
    return float(np.sqrt(np.mean(np.square(data)))) if data.size else 0.0


def wav_seconds(path: Path | str) -> float:
    with wave.open(str(path), "rb") as source:
        return source.getnframes() / source.getframerate()
