// The melody picker (a sample, a MIDI upload or the virtual keyboard) and the keyboard itself.
import { Player, parseMidi, stopAll } from "./player.js";

// C4..C5, with the computer keys of one row of a QWERTY keyboard (black keys on the row above).
export const KEYS = [
  { midi: 60, name: "C4", key: "a" }, { midi: 61, name: "C♯4", key: "w", black: true },
  { midi: 62, name: "D4", key: "s" }, { midi: 63, name: "D♯4", key: "e", black: true },
  { midi: 64, name: "E4", key: "d" }, { midi: 65, name: "F4", key: "f" },
  { midi: 66, name: "F♯4", key: "t", black: true }, { midi: 67, name: "G4", key: "g" },
  { midi: 68, name: "G♯4", key: "y", black: true }, { midi: 69, name: "A4", key: "h" },
  { midi: 70, name: "A♯4", key: "u", black: true }, { midi: 71, name: "B4", key: "j" },
  { midi: 72, name: "C5", key: "k" },
];
const TEMPO = 100; // bpm written into a recorded file; the times are kept as played

function bytesToBase64(bytes) {
  let text = "";
  for (let i = 0; i < bytes.length; i += 0x8000) text += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  return btoa(text);
}

export async function fileToBase64(file) {
  return bytesToBase64(new Uint8Array(await file.arrayBuffer()));
}

/** Recorded notes [{midi, time, duration}] (seconds) → MIDI bytes (a single melody track). */
export function notesToMidi(notes) {
  const midi = new window.Midi();
  midi.header.setTempo(TEMPO);
  midi.header.timeSignatures.push({ ticks: 0, timeSignature: [4, 4] });
  const track = midi.addTrack();
  track.name = "melody";
  track.instrument.number = 0;
  for (const n of notes) track.addNote({ midi: n.midi, time: n.time, duration: Math.max(0.05, n.duration), velocity: 0.75 });
  return midi.toArray();
}

/** A playable on-screen keyboard: mouse/touch, and the computer keys A W S E D F T G Y H U J K. */
export class Keyboard {
  constructor() {
    this.recording = false;
    this.notes = [];
    this.open = new Map(); // midi → {start}
    this.synth = null;
    this.el = document.createElement("div");
    this.el.className = "keyboard-wrap";
    const help = document.createElement("p");
    help.className = "help small muted";
    help.id = `kb-help-${Math.random().toString(36).slice(2, 8)}`;
    help.innerHTML = "Click the keys or type <kbd>A</kbd> <kbd>W</kbd> <kbd>S</kbd> <kbd>E</kbd> <kbd>D</kbd> <kbd>F</kbd> <kbd>T</kbd> <kbd>G</kbd> <kbd>Y</kbd> <kbd>H</kbd> <kbd>U</kbd> <kbd>J</kbd> <kbd>K</kbd> (C4 to C5). Press Record, play, then Stop: each note keeps its length.";
    this.board = document.createElement("div");
    this.board.className = "keyboard";
    this.board.setAttribute("role", "group");
    this.board.setAttribute("aria-label", "Piano keyboard, C4 to C5");
    this.board.setAttribute("aria-describedby", help.id);
    const whites = KEYS.filter((k) => !k.black).length;
    let whiteIndex = 0;
    this.buttons = new Map();
    for (const k of KEYS) {
      const b = document.createElement("button");
      b.type = "button";
      b.className = `key ${k.black ? "black" : "white"}`;
      b.dataset.midi = k.midi;
      b.setAttribute("aria-label", `${k.name} (key ${k.key.toUpperCase()})`);
      b.innerHTML = k.black ? `<kbd>${k.key.toUpperCase()}</kbd>` : `<span class="note" aria-hidden="true">${k.name}</span><kbd>${k.key.toUpperCase()}</kbd>`;
      if (k.black) b.style.left = `calc(${(whiteIndex / whites) * 100}% - 3.75%)`;
      else whiteIndex += 1;
      b.addEventListener("pointerdown", (e) => { e.preventDefault(); b.setPointerCapture?.(e.pointerId); this.down(k.midi); });
      b.addEventListener("pointerup", () => this.up(k.midi));
      b.addEventListener("pointercancel", () => this.up(k.midi));
      b.addEventListener("keydown", (e) => { if ((e.key === " " || e.key === "Enter") && !e.repeat) { e.preventDefault(); this.down(k.midi); } });
      b.addEventListener("keyup", (e) => { if (e.key === " " || e.key === "Enter") { e.preventDefault(); this.up(k.midi); } });
      this.buttons.set(k.midi, b);
      this.board.append(b);
    }
    const controls = document.createElement("div");
    controls.className = "row";
    controls.style.marginTop = ".6rem";
    this.recButton = document.createElement("button");
    this.recButton.type = "button";
    this.recButton.className = "rec";
    this.recButton.setAttribute("aria-pressed", "false");
    this.recButton.textContent = "● Record";
    this.recButton.addEventListener("click", () => this.toggleRecord());
    this.clearButton = document.createElement("button");
    this.clearButton.type = "button";
    this.clearButton.textContent = "Clear";
    this.clearButton.addEventListener("click", () => { this.notes = []; this.changed(); });
    this.summary = document.createElement("span");
    this.summary.className = "muted small recorded";
    this.summary.setAttribute("aria-live", "polite");
    controls.append(this.recButton, this.clearButton, this.summary);
    this.player = new Player({ title: "Your recording", source: () => this.midi() });
    this.player.el.style.marginTop = ".6rem";
    this.el.append(help, this.board, controls, this.player.el);
    this.onKeyDown = (e) => this.computerKey(e, true);
    this.onKeyUp = (e) => this.computerKey(e, false);
    document.addEventListener("keydown", this.onKeyDown);
    document.addEventListener("keyup", this.onKeyUp);
    this.changed();
  }

  destroy() {
    document.removeEventListener("keydown", this.onKeyDown);
    document.removeEventListener("keyup", this.onKeyUp);
    if (this.synth) this.synth.dispose();
  }

  computerKey(e, pressed) {
    if (!this.el.isConnected || e.ctrlKey || e.metaKey || e.altKey) return;
    const t = e.target;
    // typing into a field types; from anywhere else (a button, a radio, the page) the keys play
    const typing = t && (t.tagName === "SELECT" || t.tagName === "TEXTAREA" || t.isContentEditable ||
      (t.tagName === "INPUT" && !["radio", "checkbox", "button", "submit", "range"].includes(t.type)));
    if (typing) return;
    const k = KEYS.find((x) => x.key === e.key.toLowerCase());
    if (!k) return;
    e.preventDefault();
    if (pressed && !e.repeat) this.down(k.midi);
    if (!pressed) this.up(k.midi);
  }

  async down(midi) {
    if (this.open.has(midi)) return;
    this.open.set(midi, performance.now());
    this.buttons.get(midi)?.classList.add("down");
    try {
      await window.Tone.start();
      if (!this.synth) {
        this.synth = new window.Tone.PolySynth(window.Tone.Synth, { oscillator: { type: "triangle" } }).toDestination();
        this.synth.volume.value = -8;
      }
      if (this.open.has(midi)) this.synth.triggerAttack(window.Tone.Frequency(midi, "midi").toNote());
    } catch (_) { /* no audio: recording still works */ }
  }

  up(midi) {
    const start = this.open.get(midi);
    if (start === undefined) return;
    this.open.delete(midi);
    this.buttons.get(midi)?.classList.remove("down");
    try { this.synth?.triggerRelease(window.Tone.Frequency(midi, "midi").toNote()); } catch (_) { /* no audio */ }
    if (this.recording) {
      const end = performance.now();
      if (this.recordStart === null) this.recordStart = start;
      this.notes.push({ midi, time: (start - this.recordStart) / 1000, duration: (end - start) / 1000 });
      this.notes.sort((a, b) => a.time - b.time);
      this.changed();
    }
  }

  toggleRecord() {
    this.recording = !this.recording;
    if (this.recording) { this.notes = []; this.recordStart = null; stopAll(); }
    this.recButton.setAttribute("aria-pressed", String(this.recording));
    this.recButton.textContent = this.recording ? "■ Stop recording" : "● Record";
    this.changed();
  }

  changed() {
    const n = this.notes.length;
    const length = n ? Math.max(...this.notes.map((x) => x.time + x.duration)) : 0;
    this.summary.textContent = this.recording
      ? `recording… ${n} note${n === 1 ? "" : "s"}`
      : n ? `${n} note${n === 1 ? "" : "s"} recorded, ${length.toFixed(1)} s` : "nothing recorded yet";
    this.el.dataset.notes = String(n);
    this.player.midi = null;
    if (n) this.player.show(); else if (this.player.canvas) this.player.setMidi(null);
  }

  midi() {
    if (!this.notes.length) throw new Error("record a melody first");
    return parseMidi(notesToMidi(this.notes));
  }

  base64() {
    if (this.recording) this.toggleRecord();
    if (!this.notes.length) return null;
    return bytesToBase64(notesToMidi(this.notes));
  }
}

/**
 * The melody field of both forms: a sample (with a player), a MIDI upload, or the keyboard.
 * `value()` is the request's `melody` or throws an Error with a message for the user.
 */
export class MelodyPicker {
  constructor({ melodies, idPrefix, errorFor }) {
    this.melodies = melodies;
    this.keyboard = null;
    this.el = document.createElement("fieldset");
    this.el.className = "melody";
    this.el.innerHTML = `<legend>Melody</legend>`;
    const choices = document.createElement("div");
    choices.className = "choices";
    choices.setAttribute("role", "radiogroup");
    choices.setAttribute("aria-label", "Where the melody comes from");
    this.sources = {};
    for (const [value, text] of [["sample", "Sample melody"], ["upload", "Upload MIDI"], ["keyboard", "Play it on the keyboard"]]) {
      const label = document.createElement("label");
      const input = document.createElement("input");
      input.type = "radio";
      input.name = `${idPrefix}-source`;
      input.value = value;
      input.id = `${idPrefix}-source-${value}`;
      input.checked = value === "sample";
      input.addEventListener("change", () => this.show());
      label.append(input, text);
      choices.append(label);
      this.sources[value] = input;
    }
    this.el.append(choices);

    // sample
    this.samplePane = document.createElement("div");
    const field = document.createElement("div");
    field.className = "field";
    field.innerHTML = `<label for="${idPrefix}-sample">Sample</label>`;
    this.select = document.createElement("select");
    this.select.id = `${idPrefix}-sample`;
    this.select.name = "melody.sample";
    for (const m of melodies) {
      const o = document.createElement("option");
      o.value = m.name;
      o.textContent = `${m.title} (${m.key}, ${m.meter}, ${m.bars} bars)`;
      this.select.append(o);
    }
    this.select.addEventListener("change", () => this.samplePlayerFor());
    field.append(this.select);
    this.samplePane.append(field);
    this.samplePlayerBox = document.createElement("div");
    this.samplePane.append(this.samplePlayerBox);
    this.samplePlayerFor();

    // upload
    this.uploadPane = document.createElement("div");
    const up = document.createElement("div");
    up.className = "field";
    up.innerHTML = `<label for="${idPrefix}-file">MIDI file</label>`;
    this.file = document.createElement("input");
    this.file.type = "file";
    this.file.id = `${idPrefix}-file`;
    this.file.accept = ".mid,.midi,audio/midi,audio/x-midi";
    this.file.setAttribute("aria-describedby", `${idPrefix}-file-help`);
    const help = document.createElement("p");
    help.className = "help";
    help.id = `${idPrefix}-file-help`;
    help.textContent = "Any length, tempo, key or meter: the first track with notes is the melody.";
    this.uploadPlayer = new Player({ title: "Your file", source: async () => parseMidi(await this.file.files[0].arrayBuffer()) });
    this.file.addEventListener("change", () => { this.uploadPlayer.midi = null; if (this.file.files[0]) this.uploadPlayer.show(); });
    up.append(this.file, help);
    this.uploadPane.append(up, this.uploadPlayer.el);

    this.keyboardPane = document.createElement("div");
    this.error = errorFor("melody");
    this.el.append(this.samplePane, this.uploadPane, this.keyboardPane, this.error);
    this.show();
  }

  samplePlayerFor() {
    const name = this.select.value;
    const m = this.melodies.find((x) => x.name === name);
    this.samplePlayer?.stop();
    this.samplePlayer = new Player({
      title: m ? m.title : name,
      source: async () => parseMidi(await (await fetchOk(`/console/melodies/${encodeURIComponent(name)}.mid`)).arrayBuffer()),
    });
    this.samplePlayer.el.classList.add("sample-player");
    this.samplePlayerBox.replaceChildren(this.samplePlayer.el);
    this.samplePlayer.show();
  }

  source() {
    return Object.values(this.sources).find((x) => x.checked).value;
  }

  show() {
    const s = this.source();
    this.samplePane.hidden = s !== "sample";
    this.uploadPane.hidden = s !== "upload";
    this.keyboardPane.hidden = s !== "keyboard";
    if (s === "keyboard" && !this.keyboard) {
      this.keyboard = new Keyboard();
      this.keyboardPane.append(this.keyboard.el);
    }
  }

  destroy() { this.keyboard?.destroy(); }

  async value() {
    const s = this.source();
    if (s === "sample") return { sample: this.select.value };
    if (s === "upload") {
      if (!this.file.files[0]) throw new Error("choose a MIDI file to upload");
      return { midi_base64: await fileToBase64(this.file.files[0]) };
    }
    const b64 = this.keyboard?.base64();
    if (!b64) throw new Error("record a melody on the keyboard first");
    return { midi_base64: b64 };
  }

  /** Where an error on `melody.*` is shown, and which control it belongs to. */
  controlFor() {
    const s = this.source();
    return s === "sample" ? this.select : s === "upload" ? this.file : this.keyboard?.recButton;
  }
}

async function fetchOk(path) {
  const r = await fetch(path);
  if (!r.ok) throw new Error(`not available (HTTP ${r.status})`);
  return r;
}
