// MIDI playback (Tone.js PolySynth, no soundfont), piano rolls on a canvas, MIDI loading.
// Tone, Midi are the bundled classic scripts' globals (vendor/README.md).

const VOICE_COLOURS = ["#2f5bd3", "#c2410c", "#15803d", "#7e22ce", "#0e7490", "#a16207"];
const VOICE_NAMES = ["Melody", "Alto", "Tenor", "Bass"];

/** A presigned URL as the same-origin proxy serves it. */
export function proxied(url) {
  return "/console/fetch?url=" + encodeURIComponent(url);
}

/** Bytes → a parsed @tonejs/midi Midi. */
export function parseMidi(bytes) {
  return new window.Midi(bytes instanceof ArrayBuffer ? new Uint8Array(bytes) : bytes);
}

/** GET a MIDI file (already a same-origin path) and parse it. */
export async function loadMidi(path) {
  const reply = await fetch(path);
  if (!reply.ok) throw new Error(`could not fetch the MIDI file (HTTP ${reply.status})`);
  return parseMidi(await reply.arrayBuffer());
}

function tracksWithNotes(midi) {
  return midi.tracks.filter((t) => t.notes.length > 0);
}

/** Draw the tracks of `midi` as a piano roll on `canvas`; `at` (seconds) draws a playhead. */
export function drawRoll(canvas, midi, at = null) {
  const ratio = window.devicePixelRatio || 1;
  const width = canvas.clientWidth || 600;
  const height = canvas.clientHeight || 180;
  if (canvas.width !== Math.round(width * ratio)) canvas.width = Math.round(width * ratio);
  if (canvas.height !== Math.round(height * ratio)) canvas.height = Math.round(height * ratio);
  const g = canvas.getContext("2d");
  g.setTransform(ratio, 0, 0, ratio, 0, 0);
  g.clearRect(0, 0, width, height);
  const tracks = midi ? tracksWithNotes(midi) : [];
  const notes = tracks.flatMap((t) => t.notes);
  if (!notes.length) {
    g.fillStyle = "#5a6478";
    g.font = "13px system-ui, sans-serif";
    g.fillText(midi ? "No notes" : "Nothing loaded", 12, 22);
    return;
  }
  let low = Math.min(...notes.map((n) => n.midi)) - 1;
  let high = Math.max(...notes.map((n) => n.midi)) + 1;
  if (high - low < 12) { const pad = (12 - (high - low)) / 2; low -= pad; high += pad; }
  const duration = Math.max(midi.duration, 0.001);
  const left = 30;
  const x = (t) => left + (t / duration) * (width - left - 4);
  const row = (height - 4) / (high - low + 1);
  const y = (p) => 2 + (high - p) * row;
  // octave lines and labels
  g.font = "10px system-ui, sans-serif";
  for (let p = Math.ceil(low); p <= high; p++) {
    if (p % 12 === 0) {
      g.fillStyle = "#e6e9ef";
      g.fillRect(left, y(p) + row - 1, width - left, 1);
      g.fillStyle = "#5a6478";
      g.fillText(`C${p / 12 - 1}`, 2, y(p) + row);
    }
  }
  // bar lines from the first time signature, if any
  const ppq = midi.header.ppq;
  const ts = midi.header.timeSignatures[0];
  const barTicks = ts ? ppq * 4 * ts.timeSignature[0] / ts.timeSignature[1] : ppq * 4;
  const lastTick = Math.max(...notes.map((n) => n.ticks + n.durationTicks));
  g.fillStyle = "#f0f2f6";
  for (let tick = 0; tick <= lastTick && barTicks > 0; tick += barTicks) {
    g.fillRect(x(midi.header.ticksToSeconds(tick)), 0, 1, height);
  }
  tracks.forEach((track, i) => {
    g.fillStyle = VOICE_COLOURS[i % VOICE_COLOURS.length];
    for (const n of track.notes) {
      g.fillRect(x(n.time), y(n.midi), Math.max(2, x(n.time + n.duration) - x(n.time) - 1), Math.max(2, row - 1));
    }
  });
  if (at !== null) {
    g.fillStyle = "#b3261e";
    g.fillRect(x(Math.min(at, duration)), 0, 2, height);
  }
}

/** The legend under a roll: one colour per track that has notes. */
export function legend(midi) {
  const box = document.createElement("div");
  box.className = "legend";
  tracksWithNotes(midi).forEach((t, i) => {
    const item = document.createElement("span");
    const swatch = document.createElement("i");
    swatch.style.background = VOICE_COLOURS[i % VOICE_COLOURS.length];
    item.append(swatch, t.name || VOICE_NAMES[i] || `Track ${i + 1}`);
    box.append(item);
  });
  return box;
}

// One sound at a time, across the whole page.
let current = null;

/** Stop whatever is playing. */
export function stopAll() {
  if (current) current.stop();
}

/**
 * A player: play/stop, a state ("idle", "loading", "playing"; on the element as data-state),
 * a piano roll with a playhead and an optional download link.
 * `source` is a function returning a Promise of a Midi (loaded on first play) or a Midi.
 */
export class Player {
  constructor({ title = "", source = null, download = null, filename = "composition.mid", roll = true } = {}) {
    this.source = source;
    this.midi = null;
    this.synths = [];
    this.timer = null;
    this.frame = null;
    this.el = document.createElement("div");
    this.el.className = "player";
    this.el.dataset.state = "idle";
    const controls = document.createElement("div");
    controls.className = "controls";
    this.what = document.createElement("span");
    this.what.className = "what";
    this.what.textContent = title;
    this.button = document.createElement("button");
    this.button.type = "button";
    this.button.className = "primary small play";
    this.button.addEventListener("click", () => (this.el.dataset.state === "idle" ? this.play() : this.stop()));
    this.stateText = document.createElement("span");
    this.stateText.className = "state";
    this.stateText.setAttribute("aria-live", "polite");
    controls.append(this.what, this.button, this.stateText);
    if (download) {
      const link = document.createElement("a");
      link.className = "button small download";
      link.href = download;
      link.download = filename;
      link.textContent = "Download MIDI";
      link.setAttribute("aria-label", `Download ${title || "MIDI"} (${filename})`);
      controls.append(link);
      this.link = link;
    }
    this.el.append(controls);
    if (roll) {
      this.canvas = document.createElement("canvas");
      this.canvas.className = "roll";
      this.canvas.setAttribute("role", "img");
      this.canvas.setAttribute("aria-label", `Piano roll${title ? " of " + title : ""}`);
      this.el.append(this.canvas);
      new ResizeObserver(() => { if (this.midi && this.el.dataset.state !== "playing") drawRoll(this.canvas, this.midi); }).observe(this.canvas);
      this.legendBox = document.createElement("div");
      this.el.append(this.legendBox);
    }
    this.setState("idle");
  }

  /** A new address for the download link (a presigned URL expired and was renewed). */
  setDownload(href) {
    if (this.link) this.link.href = href;
  }

  setState(state, note = "") {
    this.el.dataset.state = state;
    this.button.textContent = state === "idle" ? "▶ Play" : "■ Stop";
    this.button.setAttribute("aria-label", `${state === "idle" ? "Play" : "Stop"}${this.what.textContent ? " " + this.what.textContent : ""}`);
    this.stateText.textContent = note || (state === "playing" ? "playing" : state === "loading" ? "loading…" : "");
  }

  async load() {
    if (this.midi) return this.midi;
    const got = typeof this.source === "function" ? await this.source() : this.source;
    this.setMidi(got);
    return got;
  }

  setMidi(midi) {
    this.midi = midi;
    if (this.canvas && midi) {
      drawRoll(this.canvas, midi);
      this.legendBox.replaceChildren(legend(midi));
      this.canvas.setAttribute("aria-label", `Piano roll: ${tracksWithNotes(midi).length} voices, ${midi.duration.toFixed(1)} s`);
    }
  }

  /** Load and draw without playing (e.g. to show the roll at once). */
  async show() {
    try { await this.load(); } catch (e) { this.setState("idle", e.message); }
  }

  async play() {
    stopAll();
    current = this;
    this.setState("loading");
    try {
      const midi = await this.load();
      await window.Tone.start();
      if (current !== this) return;
      const Tone = window.Tone;
      const now = Tone.now() + 0.08;
      tracksWithNotes(midi).forEach((track, i) => {
        const synth = new Tone.PolySynth(Tone.Synth, {
          oscillator: { type: i === 0 ? "triangle" : "sine" },
          envelope: { attack: 0.01, decay: 0.1, sustain: 0.6, release: 0.25 },
        }).toDestination();
        synth.volume.value = i === 0 ? -8 : -13;
        for (const n of track.notes) {
          synth.triggerAttackRelease(n.name, Math.max(0.05, n.duration), now + n.time, n.velocity);
        }
        this.synths.push(synth);
      });
      this.startedAt = now;
      this.setState("playing");
      this.timer = setTimeout(() => this.stop(), (midi.duration + 0.6) * 1000);
      const tick = () => {
        if (this.el.dataset.state !== "playing") return;
        if (this.canvas) drawRoll(this.canvas, midi, Math.max(0, Tone.now() - this.startedAt));
        this.frame = requestAnimationFrame(tick);
      };
      tick();
    } catch (e) {
      this.cleanup();
      this.setState("idle", `cannot play: ${e.message}`);
      if (current === this) current = null;
    }
  }

  cleanup() {
    clearTimeout(this.timer);
    cancelAnimationFrame(this.frame);
    for (const s of this.synths) { try { s.releaseAll(); s.dispose(); } catch (_) { /* already gone */ } }
    this.synths = [];
  }

  stop() {
    this.cleanup();
    if (current === this) current = null;
    this.setState("idle");
    if (this.canvas && this.midi) drawRoll(this.canvas, this.midi);
  }
}
