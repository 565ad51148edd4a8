// The opencomposer console: a single page app on hash routes, talking to the API at this origin.
//   #/jobs            every job, live
//   #/new             a new training job
//   #/jobs/<id>       one job: timeline, charts, metrics, samples
//   #/jobs/<id>/compose   compose with a completed job's model
import { Player, loadMidi, proxied, stopAll } from "./player.js";
import { MelodyPicker } from "./melody.js";

const FINAL = new Set(["COMPLETED", "FAILED", "STOPPED"]);
const STOPPABLE = new Set(["SUBMITTED", "STARTING", "TRAINING"]);
const main = document.getElementById("main");

// ---------------------------------------------------------------- API

export class ApiError extends Error {
  constructor(status, body) {
    const e = (body && body.error) || {};
    super(e.message || (body && body.message) || `HTTP ${status}`);
    this.status = status;
    this.code = e.code;
    this.field = e.field;
  }
}

// Every API request this page made: `poll` spaces its rounds by how many each one made.
let apiRequests = 0;

async function api(method, path, body) {
  apiRequests += 1;
  const init = { method, headers: {} };
  if (body !== undefined) {
    init.headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  const reply = await fetch(path, init);
  if (reply.status === 204) return null;
  const text = await reply.text();
  let data = null;
  try { data = text ? JSON.parse(text) : null; } catch (_) { data = { message: text }; }
  if (!reply.ok) throw new ApiError(reply.status, data);
  return data;
}

let openapi = null;
async function schemas() {
  if (!openapi) openapi = await api("GET", "/openapi.json");
  return openapi.components.schemas;
}
let melodyList = null;
async function melodies() {
  if (!melodyList) melodyList = (await api("GET", "/melodies")).melodies;
  return melodyList;
}

// ---------------------------------------------------------------- helpers

function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === null || v === undefined || v === false) continue;
    if (k === "class") el.className = v;
    else if (k === "text") el.textContent = v;
    else if (k.startsWith("on")) el.addEventListener(k.slice(2), v);
    else if (k === "dataset") Object.assign(el.dataset, v);
    else el.setAttribute(k, v === true ? "" : v);
  }
  for (const c of children.flat()) if (c !== null && c !== undefined && c !== false) el.append(c);
  return el;
}

/** Re-render `container` with `fn` without losing the keyboard focus: the focused control's
 * `data-key` is focused again in the new content. */
function keepFocus(container, fn) {
  const active = document.activeElement;
  const key = active && container.contains(active) ? active.dataset.key : null;
  fn();
  if (key) container.querySelector(`[data-key="${CSS.escape(key)}"]`)?.focus();
}

function toast(message, error = false) {
  const box = document.getElementById("toast");
  const m = h("div", { class: `msg${error ? " error" : ""}`, text: message });
  box.append(m);
  setTimeout(() => m.remove(), error ? 8000 : 4000);
}

function badge(status) {
  return h("span", { class: `badge s-${status}`, "data-status": status, text: status.toLowerCase() });
}

function age(iso) {
  const s = Math.max(0, (Date.now() - Date.parse(iso)) / 1000);
  if (s < 60) return `${Math.floor(s)} s ago`;
  if (s < 3600) return `${Math.floor(s / 60)} min ago`;
  if (s < 86400) return `${Math.floor(s / 3600)} h ago`;
  return `${Math.floor(s / 86400)} d ago`;
}

function jobTitle(job) {
  return job.name || (job.melody.sample ? job.melody.sample : "uploaded melody");
}

function progressCell(job) {
  const p = job.progress;
  const epochs = p ? p.epochs : job.hyperparameters.epochs || 0;
  const epoch = p ? p.epoch : 0;
  const share = job.status === "COMPLETED" ? 1 : epochs ? epoch / epochs : 0;
  return h("div", { class: "progress" },
    h("div", { class: "bar", role: "progressbar", "aria-label": "epochs done", "aria-valuemin": 0, "aria-valuemax": epochs, "aria-valuenow": epoch },
      h("span", { style: `width:${Math.round(share * 100)}%` })),
    h("span", { class: "epochs small", text: `${epoch}/${epochs}` }));
}

/** Field errors: one element per field, found again by the API's dotted `field`. */
class FieldErrors {
  constructor(formError) {
    this.formError = formError;
    this.slots = new Map(); // field → {el, control}
  }
  slot(field, control = null) {
    const el = h("p", { class: "field-error", "data-error-for": field, id: `err-${field.replace(/[^a-z0-9]+/gi, "-")}` });
    this.slots.set(field, { el, control });
    if (control instanceof Element) control.setAttribute("aria-describedby", [control.getAttribute("aria-describedby"), el.id].filter(Boolean).join(" "));
    return el;
  }
  clear() {
    this.formError.textContent = "";
    for (const { el, control } of this.slots.values()) {
      el.textContent = "";
      const c = typeof control === "function" ? control() : control;
      c?.removeAttribute("aria-invalid");
    }
  }
  show(error) {
    this.clear();
    let field = error.field || "";
    while (field && !this.slots.has(field)) {
      const parent = field.replace(/(\.[^.[\]]+|\[\d+\])$/, "");
      field = parent === field ? "" : parent;
    }
    const slot = field && this.slots.get(field);
    if (slot) {
      slot.el.textContent = error.message;
      const control = typeof slot.control === "function" ? slot.control() : slot.control;
      control?.setAttribute("aria-invalid", "true");
      control?.focus();
    } else {
      this.formError.textContent = error.message;
      this.formError.focus();
    }
  }
}

function numberField({ id, name, label, schema, errors, value }) {
  const integer = schema.type === "integer";
  const input = h("input", {
    type: "number", id, name, step: integer ? "1" : "any",
    value: value ?? schema.default,
    min: schema.minimum ?? schema.exclusiveMinimum, max: schema.maximum ?? schema.exclusiveMaximum,
    inputmode: integer ? "numeric" : "decimal",
    "aria-describedby": `${id}-help`,
  });
  const low = schema.minimum ?? schema.exclusiveMinimum;
  const high = schema.maximum ?? schema.exclusiveMaximum;
  const exclusive = schema.exclusiveMinimum !== undefined;
  const range = low === undefined ? "" : exclusive ? `${low}–${high}, exclusive` : `${fmtBound(low)}–${fmtBound(high)}`;
  return {
    input,
    el: h("div", { class: "field" },
      h("label", { for: id }, label, " ", h("span", { class: "range", text: range ? `(${range})` : "" })),
      input,
      h("p", { class: "help", id: `${id}-help`, text: helpText(schema) }),
      errors.slot(name, input)),
  };
}

/** One of a few names (a schema with `enum`, e.g. model_size): a select of them. */
function choiceField({ id, name, label, schema, errors }) {
  const input = h("select", { id, name, "aria-describedby": `${id}-help` },
    schema.enum.map((choice) => h("option", { value: choice, text: choice, selected: choice === schema.default })));
  return {
    input,
    el: h("div", { class: "field" },
      h("label", { for: id, text: label }),
      input,
      h("p", { class: "help", id: `${id}-help`, text: helpText(schema) }),
      errors.slot(name, input)),
  };
}

function sentence(text) {
  return text ? text[0].toUpperCase() + text.slice(1).toLowerCase() : text;
}

/** A schema's description as a sentence, then its default. */
function helpText(schema) {
  let text = (schema.description || "").trim();
  if (text) text = text[0].toUpperCase() + text.slice(1) + (/[.!?]$/.test(text) ? "" : ".");
  return schema.default !== undefined ? `${text} Default ${schema.default}.`.trim() : text;
}

function fmtBound(v) {
  if (v >= 2 ** 31) return v === 2 ** 31 - 1 ? "2³¹−1" : v >= 2 ** 63 ? "2⁶³" : String(v);
  return String(v);
}

/** A number input's value for JSON: a number, or the raw text so the API can name what is wrong. */
function numberValue(input) {
  const raw = input.value.trim();
  if (raw === "") return undefined;
  const n = Number(raw);
  return Number.isFinite(n) ? n : raw;
}

function setNav(which) {
  for (const a of document.querySelectorAll("[data-nav]")) {
    if (a.dataset.nav === which) a.setAttribute("aria-current", "page"); else a.removeAttribute("aria-current");
  }
}

// ---------------------------------------------------------------- views

let cleanup = [];
function onLeave(fn) { cleanup.push(fn); }

// "opencomposer:ready" marks when a view first shows its data (what `make bench` times as the
// console's first load): at the end of its first poll round, or when it returns if it polls not.
let readyMarked = false;
let polls = 0;
function markReady() {
  if (readyMarked) return;
  readyMarked = true;
  performance.mark("opencomposer:ready", { detail: location.hash });
}

/** Call `fn` now and again after the delay (ms) it returns, until the view is left; `now()`
 * runs it at once (after the user changed something). A round that made n API requests waits at
 * least n seconds, so an open page costs the API at most one request a second on average
 * (`make bench` measures it); a hidden tab polls every 10 s and catches up when shown again. */
function poll(fn) {
  let timer = null;
  let alive = true;
  let busy = false;
  let again = false;
  polls += 1;
  const run = async () => {
    if (!alive) return;
    if (busy) { again = true; return; }
    busy = true;
    clearTimeout(timer);
    const before = apiRequests;
    let delay = 5000;
    try { delay = await fn(); } catch (e) { console.warn(e); }
    busy = false;
    if (!alive) return;
    markReady();
    if (again) { again = false; timer = setTimeout(run, 0); return; }
    delay = Math.max(delay, (apiRequests - before) * 1000);
    if (document.hidden) delay = Math.max(delay, 10000);
    timer = setTimeout(run, delay);
  };
  const shown = () => { if (!document.hidden) run(); };
  document.addEventListener("visibilitychange", shown);
  run();
  onLeave(() => { alive = false; clearTimeout(timer); document.removeEventListener("visibilitychange", shown); });
  return { now: run };
}

const JOBS_PAGE = 100; // GET /jobs's largest page

async function viewJobs() {
  setNav("jobs");
  document.title = "Jobs · opencomposer";
  const statusSchema = (await schemas()).JobStatus;
  const filter = h("select", { id: "status-filter", name: "status" },
    h("option", { value: "", text: "All statuses" }),
    statusSchema.enum.map((s) => h("option", { value: s, text: s.toLowerCase() })));
  filter.value = sessionStorage.getItem("jobs-filter") || "";
  const body = h("tbody");
  const table = h("table", { class: "jobs", "aria-describedby": "jobs-caption" },
    h("thead", {}, h("tr", {}, ["Job", "Status", "Progress", "Created", ""].map((t) => h("th", { scope: "col", text: t })))), body);
  const note = h("p", { id: "jobs-caption", class: "muted small", "aria-live": "polite" });
  const newer = h("button", { type: "button", class: "small", id: "jobs-newer", "data-key": "newer", text: "← Newer", disabled: true });
  const older = h("button", { type: "button", class: "small", id: "jobs-older", "data-key": "older", text: "Older →", disabled: true });
  const pager = h("nav", { class: "pager", "aria-label": "Pages of jobs" }, newer, older);
  main.replaceChildren(
    h("div", { class: "page-head" },
      h("div", {}, h("h1", { text: "Training jobs" }), h("p", { class: "muted", text: "Each job trains a model that writes alto, tenor and bass under a melody." })),
      h("div", { class: "actions" }, h("a", { class: "button primary", href: "#/new", text: "+ New job" }))),
    h("section", { class: "panel" },
      h("div", { class: "toolbar" }, h("div", { class: "field" }, h("label", { for: "status-filter", text: "Show" }), filter)),
      table, h("div", { class: "table-foot" }, note, pager)));

  const render = (jobs) => {
    if (!jobs.length) {
      body.replaceChildren(h("tr", {}, h("td", { colspan: 5, class: "empty" },
        filter.value ? `No ${filter.value.toLowerCase()} jobs.` : "No jobs yet. ", filter.value ? null : h("a", { href: "#/new", text: "Train your first model" }))));
      return;
    }
    body.replaceChildren(...jobs.map((job) => h("tr", { "data-job-id": job.job_id, "data-status": job.status },
      h("td", { class: "jobname", "data-label": "Job" },
        h("div", {}, h("a", { href: `#/jobs/${job.job_id}`, "data-key": `open-${job.job_id}`, text: jobTitle(job) }), h("span", { class: "mono", text: job.job_id.slice(0, 12) }))),
      h("td", { "data-label": "Status" }, badge(job.status),
        job.status_message ? h("span", { class: "note small muted", title: job.status_message, text: "waiting for capacity" }) : null),
      h("td", { "data-label": "Progress" }, progressCell(job)),
      h("td", { "data-label": "Created", title: job.created_at, text: age(job.created_at) }),
      h("td", { class: "actions" },
        job.status === "COMPLETED" ? h("a", { class: "button small", href: `#/jobs/${job.job_id}/compose`, "data-key": `compose-${job.job_id}`, "aria-label": `Compose with ${jobTitle(job)}`, text: "Compose" }) : null,
        STOPPABLE.has(job.status) ? h("button", { type: "button", class: "small danger", "data-key": `stop-${job.job_id}`, "aria-label": `Stop ${jobTitle(job)}`, onclick: () => stopJob(job, () => poller.now()), text: "Stop" }) : null,
        FINAL.has(job.status) ? h("button", { type: "button", class: "small danger", "data-key": `delete-${job.job_id}`, "aria-label": `Delete ${jobTitle(job)}`, onclick: () => deleteJob(job, () => poller.now()), text: "Delete" }) : null))));
  };
  // pages[i]: the token of page i (null: the newest); the poll reloads the page shown
  let pages = [null];
  let shown = 0;
  const go = (page) => { shown = page; poller.now(); };
  newer.addEventListener("click", () => go(shown - 1));
  older.addEventListener("click", () => go(shown + 1));
  filter.addEventListener("change", () => { sessionStorage.setItem("jobs-filter", filter.value); pages = [null]; go(0); });
  const poller = poll(async () => {
    const q = new URLSearchParams({ limit: String(JOBS_PAGE) });
    if (filter.value) q.set("status", filter.value);
    if (pages[shown]) q.set("next_token", pages[shown]);
    const page = await api("GET", `/jobs?${q}`);
    if (!page.jobs.length && shown > 0) { pages = pages.slice(0, shown); shown -= 1; return 0; } // that page emptied
    keepFocus(main, () => render(page.jobs));
    pages = [...pages.slice(0, shown + 1), ...(page.next_token ? [page.next_token] : [])];
    newer.disabled = shown === 0;
    older.disabled = pages.length <= shown + 1;
    pager.hidden = newer.disabled && older.disabled;
    const running = page.jobs.filter((j) => !FINAL.has(j.status)).length;
    const first = shown * JOBS_PAGE + 1;
    const range = shown || page.next_token ? `Jobs ${first}–${first + page.jobs.length - 1}` : `${page.jobs.length} job${page.jobs.length === 1 ? "" : "s"}`;
    note.textContent = `${range}; ${running ? `${running} running, updated every second` : "updated every 5 s"}.`;
    return running ? 1000 : 5000;
  });
}

async function stopJob(job, after) {
  if (!confirm(`Stop the job “${jobTitle(job)}”? Its training ends and the job becomes STOPPED.`)) return;
  try { await api("POST", `/jobs/${job.job_id}/stop`); toast("Stopping the job…"); } catch (e) { toast(e.message, true); }
  after?.();
}

async function deleteJob(job, after) {
  if (!confirm(`Delete the job “${jobTitle(job)}” with its model and every composition? This cannot be undone.`)) return;
  try { await api("DELETE", `/jobs/${job.job_id}`); toast("Job deleted."); } catch (e) { toast(e.message, true); }
  after?.();
}

async function viewNew() {
  setNav("new");
  document.title = "New job · opencomposer";
  const [all, samples] = await Promise.all([schemas(), melodies()]);
  const hp = all.Hyperparameters;
  const nameSchema = all.CreateJobRequest.properties.name.anyOf.find((x) => x.type === "string") || {};
  const formError = h("p", { class: "form-error", role: "alert", tabindex: "-1" });
  const errors = new FieldErrors(formError);
  const nameInput = h("input", { type: "text", id: "job-name", name: "name", maxlength: nameSchema.maxLength, placeholder: "e.g. my first bach", "aria-describedby": "job-name-help", autocomplete: "off" });
  const inputs = {};
  const hpFields = Object.entries(hp.properties).map(([name, schema]) => {
    const field = schema.enum ? choiceField : numberField;
    const f = field({ id: `hp-${name}`, name: `hyperparameters.${name}`, label: sentence(schema.title || name.replace(/_/g, " ")), schema, errors });
    inputs[name] = f.input;
    return f.el;
  });
  const picker = new MelodyPicker({ melodies: samples, idPrefix: "job", errorFor: (f) => errors.slot(f, () => picker.controlFor()) });
  onLeave(() => picker.destroy());
  const submit = h("button", { type: "submit", class: "primary", id: "submit-job", text: "Start training" });
  const form = h("form", { id: "new-job", novalidate: true, "aria-labelledby": "new-title" },
    h("section", { class: "panel" }, picker.el),
    h("section", { class: "panel" },
      h("h2", { text: "Training" }),
      h("div", { class: "field", style: "max-width:28rem" },
        h("label", { for: "job-name", text: "Name (optional)" }), nameInput,
        h("p", { class: "help", id: "job-name-help", text: "Letters, digits, spaces, - and _; up to 64 characters." }),
        errors.slot("name", nameInput)),
      h("h3", { text: "Hyperparameters" }),
      h("p", { class: "muted small", text: hp.description || "" }),
      h("div", { class: "fields" }, hpFields),
      errors.slot("hyperparameters")),
    formError,
    h("div", { class: "row" }, submit, h("a", { class: "button", href: "#/jobs", text: "Cancel" })));
  main.replaceChildren(
    h("div", { class: "page-head" }, h("div", {}, h("h1", { id: "new-title", text: "New training job" }),
      h("p", { class: "muted", text: "Pick a melody to train on, set how long and how hard to train, and start." }))),
    form);
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    errors.clear();
    stopAll();
    const body = { hyperparameters: {} };
    if (nameInput.value.trim()) body.name = nameInput.value.trim();
    for (const [name, input] of Object.entries(inputs)) {
      const v = input.tagName === "SELECT" ? input.value : numberValue(input);
      if (v !== undefined) body.hyperparameters[name] = v;
    }
    try { body.melody = await picker.value(); } catch (err) { errors.show({ field: "melody", message: err.message }); return; }
    submit.disabled = true;
    submit.textContent = "Starting…";
    try {
      const job = await api("POST", "/jobs", body);
      toast("Job submitted.");
      location.hash = `#/jobs/${job.job_id}`;
    } catch (err) {
      errors.show(err);
    } finally {
      submit.disabled = false;
      submit.textContent = "Start training";
    }
  });
}

const METRIC_LABELS = {
  similarity: "Similarity index", in_key_ratio: "Notes in the melody's key", consonance: "Consonant voice pairs on beats",
  voice_crossing: "Beats with crossed voices", parallel_fifths_octaves: "Parallel 5ths/octaves",
  pitch_classes_per_bar: "Pitch classes per bar", mean_note_length: "Mean note length (16ths)",
  empty_bar_rate: "Empty bars", polyphony: "Notes at a time", single_note_rate: "One note at a time",
  chord_agreement: "Chords with Bach's pitch classes",
  generator_loss: "Generator loss", critic_loss: "Critic loss", wasserstein: "Wasserstein estimate",
};
function label(m) {
  const voice = m.match(VOICE_PREFIX);
  const base = voice ? m.slice(voice[0].length) : m;
  const text = METRIC_LABELS[base] || base.replace(/_/g, " ");
  return text[0].toUpperCase() + text.slice(1);
}
const fmt = (v) => (v === null || v === undefined ? "–" : Math.abs(v) >= 100 ? v.toFixed(0) : v.toFixed(3));

const VOICE_PREFIX = /^(alto|tenor|bass)_/;

/** The metrics beside Bach's: the whole texture's in a table, each lower voice's in a fold. */
function metricTables(names, values, reference, column, id) {
  const table = (keys, tableId, caption) => h("table", { class: "metrics", id: tableId },
    caption ? h("caption", { class: "muted small", text: caption }) : null,
    h("thead", {}, h("tr", {}, h("th", { scope: "col", text: "metric" }), h("th", { scope: "col", class: "num", text: column }), h("th", { scope: "col", class: "num", text: "Bach" }))),
    h("tbody", {}, keys.map((k) => h("tr", { "data-metric": k },
      h("th", { scope: "row", text: label(k) }), h("td", { class: "num", text: fmt(values[k]) }),
      h("td", { class: "num", text: k === "similarity" ? fmt(1) : fmt(reference[k]) })))));
  const whole = names.filter((k) => !VOICE_PREFIX.test(k));
  const voices = names.filter((k) => VOICE_PREFIX.test(k));
  const out = [table(whole, id)];
  if (voices.length) {
    out.push(h("details", { class: "per-voice" }, h("summary", { text: "Each lower voice" }),
      ["alto", "tenor", "bass"].map((v) => {
        const keys = voices.filter((k) => k.startsWith(v + "_"));
        return keys.length ? table(keys, `${id}-${v}`, v[0].toUpperCase() + v.slice(1)) : null;
      })));
  }
  return out;
}

function lineChart(box, title, series, epochs) {
  box._resize?.disconnect();
  box._plot?.destroy();
  box._plot = null;
  box.replaceChildren();
  const present = series.filter((s) => epochs.some((e) => e[s.key] !== null && e[s.key] !== undefined));
  box.dataset.points = String(epochs.length);
  box.dataset.series = present.map((s) => s.key).join(",");
  if (!epochs.length || !present.length) {
    box.append(h("p", { class: "chart-empty", text: "No epochs reported yet." }));
    return;
  }
  const width = Math.max(240, box.clientWidth || 520);
  const data = [epochs.map((e) => e.epoch), ...present.map((s) => epochs.map((e) => e[s.key] ?? null))];
  const plot = new window.uPlot({
    width, height: 220,
    scales: { x: { time: false } },
    axes: [{ label: "epoch", values: (u, ticks) => ticks.map((t) => (Number.isInteger(t) ? t : "")) }, {}],
    series: [{ label: "epoch" }, ...present.map((s) => ({ label: s.label, stroke: s.colour, width: 2, points: { show: true, size: 6 } }))],
  }, data, box);
  // follow the box's width (a phone turned, a window resized)
  box._resize?.disconnect();
  box._resize = new ResizeObserver(() => {
    const w = Math.max(240, box.clientWidth);
    if (Math.abs(w - plot.width) > 2) plot.setSize({ width: w, height: 220 });
  });
  box._resize.observe(box);
  box._plot = plot;
  box.setAttribute("aria-label", `${title}: ${epochs.length} epoch${epochs.length === 1 ? "" : "s"}`);
  return plot;
}

/** `final` → "Final composition", `epoch-0005` → "Epoch 5". */
function sampleTitle(name) {
  if (name === "final") return "Final composition";
  const m = name.match(/^epoch-0*(\d+)$/);
  return m ? `Epoch ${m[1]}` : name;
}

async function viewJob(id) {
  setNav("jobs");
  const head = h("div", { class: "page-head" });
  const statusBox = h("section", { class: "panel", "aria-labelledby": "status-title" });
  const lossBox = h("div", { class: "chart", id: "loss-chart", role: "img" });
  const simBox = h("div", { class: "chart", id: "similarity-chart", role: "img" });
  const metricsBox = h("div", {});
  const samplesList = h("ul", { class: "samples", id: "samples" });
  const playerBox = h("div", { id: "sample-player" });
  // what the training reports: hidden for a job that ended before its first epoch
  const learning = [
    h("div", { class: "grid2" },
      h("section", { class: "panel" }, h("h2", { text: "Losses" }), lossBox),
      h("section", { class: "panel" }, h("h2", { text: "Similarity to Bach" }), simBox)),
    h("section", { class: "panel", style: "margin-top:1rem" }, h("h2", { text: "Music metrics, latest epoch, beside Bach" }), metricsBox),
    h("section", { class: "panel" }, h("h2", { text: "What it writes, epoch by epoch" }),
      h("div", { class: "grid2" }, h("div", {}, samplesList), playerBox))];
  main.replaceChildren(head, statusBox, ...learning);

  let job = null;
  let seenEpoch = -1;
  let seenStatus = "";
  let selected = null;
  const players = new Map();

  const renderHead = () => {
    document.title = `${jobTitle(job)} · opencomposer`;
    head.replaceChildren(
      h("div", {}, h("h1", {}, jobTitle(job), " ", badge(job.status)),
        h("p", { class: "muted small mono", text: job.job_id })),
      h("div", { class: "actions" },
        job.status === "COMPLETED" ? h("a", { class: "button primary", "data-key": "compose", href: `#/jobs/${id}/compose`, text: "Compose with this model" }) : null,
        STOPPABLE.has(job.status) ? h("button", { type: "button", class: "danger", "data-key": "stop", onclick: () => stopJob(job, () => poller.now()), text: "Stop" }) : null,
        FINAL.has(job.status) ? h("button", { type: "button", class: "danger", "data-key": "delete", onclick: () => deleteJob(job, () => { location.hash = "#/jobs"; }), text: "Delete" }) : null));
    const order = ["SUBMITTED", "STARTING", "TRAINING"];
    const end = job.status === "STOPPING" || job.status === "STOPPED" ? ["STOPPING", "STOPPED"] : [job.status === "FAILED" ? "FAILED" : "COMPLETED"];
    const steps = [...order, ...end];
    const reached = job.status === "FAILED" || job.status === "STOPPING" || job.status === "STOPPED"
      ? Math.max(steps.indexOf(job.status), job.progress ? 2 : 0) : steps.indexOf(job.status);
    const p = job.progress;
    statusBox.replaceChildren(...[
      h("h2", { id: "status-title", text: "Status" }),
      h("ol", { class: "timeline", "aria-label": "Status timeline" }, steps.map((s, i) => h("li", {
        class: [i <= reached || s === job.status ? "done" : "", s === job.status ? "current" : "", s === "FAILED" && s === job.status ? "bad" : ""].join(" "),
        "aria-current": s === job.status ? "step" : null, text: s.toLowerCase(),
      }))),
      job.failure_reason ? h("div", { class: "form-error failure", role: "alert", id: "failure-reason" }, h("strong", { text: "Failure: " }), job.failure_reason) : null,
      h("dl", { class: "facts", style: "margin-top:1rem" },
        job.status_message ? [h("dt", { text: "Waiting" }), h("dd", { id: "status-message", text: job.status_message })] : null,
        h("dt", { text: "Progress" }), h("dd", {}, progressCell(job)),
        h("dt", { text: "Melody" }), h("dd", { text: job.melody.sample ? job.melody.sample : `your MIDI file (${job.melody.notes} notes)` }),
        h("dt", { text: "Hyperparameters" }), h("dd", { class: "mono", text: Object.entries(job.hyperparameters).map(([k, v]) => `${k} ${v}`).join(" · ") }),
        h("dt", { text: "Created" }), h("dd", { title: job.created_at, text: `${age(job.created_at)} (${new Date(job.created_at).toLocaleString()})` }),
        h("dt", { text: "Updated" }), h("dd", { title: job.updated_at, text: age(job.updated_at) }),
        p && p.metrics.similarity !== undefined ? [h("dt", { text: `Epoch ${p.epoch}` }), h("dd", { text: `similarity index ${fmt(p.metrics.similarity)}` })] : null)].filter(Boolean));
  };

  const renderMetrics = (m) => {
    const epochs = m.epochs;
    for (const el of learning) el.hidden = !epochs.length && FINAL.has(job.status);
    lineChart(lossBox, "Generator and critic loss per epoch", [
      { key: "generator_loss", label: "generator", colour: "#2f5bd3" },
      { key: "critic_loss", label: "critic", colour: "#c2410c" },
      { key: "wasserstein", label: "Wasserstein estimate", colour: "#15803d" }], epochs);
    lineChart(simBox, "Similarity index per epoch (1 = Bach)", [{ key: "similarity", label: "similarity", colour: "#7e22ce" }], epochs);
    const last = epochs[epochs.length - 1] || {};
    const names = ["similarity", ...Object.keys(m.reference).filter((k) => k !== "similarity")];
    if (!epochs.length && !Object.keys(m.reference).length) {
      metricsBox.replaceChildren(h("p", { class: "muted", text: "Metrics appear after the first epoch." }));
      return;
    }
    metricsBox.replaceChildren(...metricTables(names, last, m.reference, last.epoch !== undefined ? `epoch ${last.epoch}` : "latest", "metrics-table"));
  };

  const select = (c) => {
    selected = c.composition_id;
    for (const li of samplesList.children) li.setAttribute("aria-current", String(li.dataset.compositionId === selected));
    let p = players.get(c.composition_id);
    if (!p) {
      const id = c.composition_id;
      p = new Player({ title: sampleTitle(c.name), source: () => loadMidi(proxied(urls.get(id))), download: proxied(c.url), filename: `${c.name}.mid` });
      players.set(id, p);
    }
    playerBox.replaceChildren(p.el);
    p.show();
    return p;
  };

  const urls = new Map(); // composition id → its latest presigned URL
  const renderSamples = (items) => {
    for (const c of items) {
      urls.set(c.composition_id, c.url);
      players.get(c.composition_id)?.setDownload(proxied(c.url));
    }
    const training = items.filter((c) => c.kind === "training").sort((a, b) => (a.name === "final" ? -1 : b.name === "final" ? 1 : b.name.localeCompare(a.name)));
    if (!training.length) {
      samplesList.replaceChildren(h("li", { class: "muted", text: "Each epoch's sample appears here as it is written." }));
      return;
    }
    samplesList.replaceChildren(...training.map((c) => h("li", { "data-composition-id": c.composition_id, "aria-current": String(c.composition_id === selected) },
      h("span", { class: "title", text: sampleTitle(c.name) }),
      h("button", { type: "button", class: "small", "data-key": `show-${c.composition_id}`, "aria-label": `Show ${sampleTitle(c.name)}`, onclick: () => select(c), text: "Show" }),
      h("button", { type: "button", class: "small primary", "data-key": `play-${c.composition_id}`, "aria-label": `Play ${sampleTitle(c.name)}`, onclick: () => select(c).play(), text: "▶ Play" }))));
    if (!selected || !training.some((c) => c.composition_id === selected)) select(training[0]);
  };

  let fetchedAt = 0;
  const poller = poll(async () => {
    try {
      job = await api("GET", `/jobs/${id}`);
    } catch (e) {
      if (e.status !== 404 && job) throw e; // the next round tries again
      const title = e.status !== 404 ? "Something went wrong" : job ? "This job is gone" : "Not found";
      main.replaceChildren(h("h1", { text: title }), e.status !== 404 ? h("p", { class: "form-error", role: "alert", text: e.message }) : null,
        h("p", {}, h("a", { href: "#/jobs", text: "Back to the jobs" })));
      return 24 * 3600 * 1000;
    }
    keepFocus(head, renderHead);
    const epoch = job.progress ? job.progress.epoch : 0;
    // the files' presigned URLs expire: fetch them again now and then
    if (epoch !== seenEpoch || job.status !== seenStatus || Date.now() - fetchedAt > 5 * 60 * 1000) {
      fetchedAt = Date.now();
      const [m, comps] = await Promise.all([api("GET", `/jobs/${id}/metrics`), api("GET", `/jobs/${id}/compositions?limit=100`)]);
      renderMetrics(m);
      keepFocus(samplesList, () => renderSamples(comps.compositions));
      seenEpoch = epoch;
      seenStatus = job.status;
    }
    return FINAL.has(job.status) ? 15000 : 1000;
  });
}

async function viewCompose(id) {
  setNav("jobs");
  const [all, samples, job] = await Promise.all([schemas(), melodies(), api("GET", `/jobs/${id}`)]);
  document.title = `Compose · ${jobTitle(job)} · opencomposer`;
  const req = all.CreateCompositionRequest.properties;
  const presets = req.instruments.anyOf.find((x) => x.type === "string").enum;
  const formError = h("p", { class: "form-error", role: "alert", tabindex: "-1" });
  const errors = new FieldErrors(formError);
  const picker = new MelodyPicker({ melodies: samples, idPrefix: "compose", errorFor: (f) => errors.slot(f, () => picker.controlFor()) });
  onLeave(() => picker.destroy());
  const seed = numberField({ id: "compose-seed", name: "seed", label: "Seed", schema: req.seed, errors });
  const temperature = numberField({ id: "compose-temperature", name: "temperature", label: "Temperature", schema: req.temperature, errors });
  temperature.input.step = "0.05";
  const preset = h("select", { id: "compose-preset", name: "instruments" },
    presets.map((p) => h("option", { value: p, text: p, selected: p === "choir" })),
    h("option", { value: "custom", text: "per voice (General MIDI programs)" }));
  const voices = ["Melody", "Alto", "Tenor", "Bass"].map((v, i) => {
    const input = h("input", { type: "number", id: `compose-voice-${i}`, min: 0, max: 127, step: 1, value: [73, 68, 71, 70][i], inputmode: "numeric" });
    return { input, el: h("div", { class: "field" }, h("label", { for: `compose-voice-${i}`, text: `${v} program (0–127)` }), input, errors.slot(`instruments[${i}]`, input)) };
  });
  const custom = h("div", { class: "fields", hidden: true }, voices.map((v) => v.el));
  preset.addEventListener("change", () => { custom.hidden = preset.value !== "custom"; });
  const nameInput = h("input", { type: "text", id: "compose-name", name: "name", maxlength: req.name.maxLength, autocomplete: "off", "aria-describedby": "compose-name-help" });
  const submit = h("button", { type: "submit", class: "primary", id: "submit-compose", text: "Compose" });
  const result = h("section", { class: "panel", id: "composition-result", hidden: true });
  const list = h("ul", { class: "samples", id: "compositions" });
  const listPlayer = h("div", {});
  const disabled = job.status !== "COMPLETED";
  const form = h("form", { id: "compose-form", novalidate: true },
    h("section", { class: "panel" }, picker.el),
    h("section", { class: "panel" },
      h("h2", { text: "How" }),
      h("div", { class: "fields" }, seed.el, temperature.el,
        h("div", { class: "field" }, h("label", { for: "compose-preset", text: "Instruments" }), preset,
          h("p", { class: "help", id: "compose-preset-help", text: helpText({ description: req.instruments.description }) }), errors.slot("instruments", preset)),
        h("div", { class: "field" }, h("label", { for: "compose-name", text: "Name (optional)" }), nameInput,
          h("p", { class: "help", id: "compose-name-help", text: helpText({ description: req.name.description }) }), errors.slot("name", nameInput))),
      custom),
    formError,
    h("div", { class: "row" }, submit, h("a", { class: "button", href: `#/jobs/${id}`, text: "Back to the job" })));
  if (disabled) submit.disabled = true;
  main.replaceChildren(
    h("div", { class: "page-head" }, h("div", {}, h("h1", {}, "Compose with ", h("a", { href: `#/jobs/${id}`, text: jobTitle(job) })),
      h("p", { class: "muted", text: disabled ? `This job is ${job.status.toLowerCase()}: only a completed job's model composes.` : "The model writes alto, tenor and bass under your melody, which stays exactly as given." }))),
    form, result,
    h("section", { class: "panel" }, h("h2", { text: "This job's compositions" }), h("div", { class: "grid2" }, list, listPlayer)));

  const players = new Map();
  const playerFor = (c) => {
    if (!players.has(c.composition_id)) players.set(c.composition_id, new Player({ title: c.name, source: () => loadMidi(proxied(c.url)), download: proxied(c.url), filename: `${c.name}.mid` }));
    return players.get(c.composition_id);
  };
  const refreshList = async () => {
    const page = await api("GET", `/jobs/${id}/compositions?limit=100`);
    const mine = page.compositions.filter((c) => c.kind === "composition");
    if (!mine.length) { list.replaceChildren(h("li", { class: "muted", text: "None yet." })); return; }
    list.replaceChildren(...mine.map((c) => h("li", { "data-composition-id": c.composition_id },
      h("span", { class: "title" }, c.name, h("span", { class: "muted small", text: ` · seed ${c.seed}, temperature ${c.temperature}, ${c.bars} bar${c.bars === 1 ? "" : "s"}` })),
      h("button", { type: "button", class: "small primary", "aria-label": `Play ${c.name}`, onclick: () => { const p = playerFor(c); listPlayer.replaceChildren(p.el); p.play(); }, text: "▶ Play" }),
      h("a", { class: "button small", href: proxied(c.url), download: `${c.name}.mid`, "aria-label": `Download ${c.name}`, text: "Download" }),
      h("button", { type: "button", class: "small danger", "aria-label": `Delete ${c.name}`, text: "Delete", onclick: async () => {
        if (!confirm(`Delete the composition “${c.name}”?`)) return;
        try { await api("DELETE", `/jobs/${id}/compositions/${c.composition_id}`); toast("Composition deleted."); } catch (e) { toast(e.message, true); }
        refreshList();
      } }))));
  };
  refreshList().catch((e) => toast(e.message, true));

  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    errors.clear();
    stopAll();
    const body = {};
    try { body.melody = await picker.value(); } catch (err) { errors.show({ field: "melody", message: err.message }); return; }
    const s = numberValue(seed.input); if (s !== undefined) body.seed = s;
    const t = numberValue(temperature.input); if (t !== undefined) body.temperature = t;
    body.instruments = preset.value === "custom" ? voices.map((v) => numberValue(v.input) ?? null) : preset.value;
    if (nameInput.value.trim()) body.name = nameInput.value.trim();
    submit.disabled = true;
    submit.textContent = "Composing…";
    try {
      const c = await api("POST", `/jobs/${id}/compositions`, body);
      const p = new Player({ title: c.name, source: () => loadMidi(proxied(c.url)), download: proxied(c.url), filename: `${c.name}.mid` });
      p.el.id = "composition-player";
      const names = ["similarity", ...Object.keys(c.reference).filter((k) => k !== "similarity")];
      result.hidden = false;
      result.replaceChildren(h("h2", { text: `Composed: ${c.name}` }),
        h("p", { class: "muted small", text: `${c.bars} bar${c.bars === 1 ? "" : "s"} · seed ${c.seed} · temperature ${c.temperature} · ${c.instruments.map((v) => v.name).join(", ")}` }),
        p.el,
        h("h3", { text: "Music metrics beside Bach" }),
        ...metricTables(names.filter((k) => k in c.metrics || k in c.reference), c.metrics, c.reference, "this", "composition-metrics"));
      p.show();
      result.scrollIntoView({ behavior: "smooth", block: "start" });
      toast("Composition ready.");
      refreshList();
    } catch (err) {
      errors.show(err);
    } finally {
      submit.disabled = disabled;
      submit.textContent = "Compose";
    }
  });
}

// ---------------------------------------------------------------- router

async function route() {
  for (const fn of cleanup.splice(0)) { try { fn(); } catch (_) { /* ignore */ } }
  stopAll();
  const hash = location.hash.replace(/^#\/?/, "");
  const parts = hash.split("/").filter(Boolean);
  readyMarked = false;
  const pollsBefore = polls;
  try {
    if (!parts.length || parts[0] === "jobs" && parts.length === 1) await viewJobs();
    else if (parts[0] === "new") await viewNew();
    else if (parts[0] === "jobs" && parts.length === 2) await viewJob(parts[1]);
    else if (parts[0] === "jobs" && parts[2] === "compose") await viewCompose(parts[1]);
    else main.replaceChildren(h("h1", { text: "Not found" }), h("p", {}, h("a", { href: "#/jobs", text: "Back to the jobs" })));
  } catch (e) {
    main.replaceChildren(h("h1", { text: e.status === 404 ? "Not found" : "Something went wrong" }),
      h("p", { class: "form-error", role: "alert", text: e.message }), h("p", {}, h("a", { href: "#/jobs", text: "Back to the jobs" })));
  }
  if (polls === pollsBefore) markReady();
  main.focus({ preventScroll: true });
  window.scrollTo(0, 0);
}

window.addEventListener("hashchange", route);
route();
