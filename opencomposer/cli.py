"""`opencomposer`: the command line of the API, for the local stack or a deployed API.

    opencomposer submit [--epochs N ...] [--sample NAME | --midi FILE] [--wait]
    opencomposer status JOB_ID | wait JOB_ID | list | metrics JOB_ID
    opencomposer download JOB_ID [--out DIR] | stop JOB_ID | delete JOB_ID
    opencomposer compose JOB_ID (--sample NAME | --midi FILE) [--seed N] [--temperature T]
                         [--instruments PRESET|JSON] [--name NAME] [-o out.mid]
    opencomposer compositions JOB_ID | delete-composition JOB_ID COMPOSITION_ID
    opencomposer model JOB_ID [-o model.tar.gz] | melodies
    opencomposer console [--port 8080]          the web console for the API, on 127.0.0.1
    opencomposer plot JOB_ID [-o curves.png]    the learning curves as a PNG
    opencomposer render (JOB_ID | FILE.mid) [--composition ID|NAME] [-o out.wav]
    opencomposer dataset upload (DIR | FILE.zip) [--name NAME] [--no-wait]
    opencomposer dataset list | show DATASET_ID | delete DATASET_ID

`--api URL` (or `OPENCOMPOSER_API_URL`) picks the API; the default is the local stack.
`status`, `list`, `metrics`, `compose`, `compositions` and `melodies` print tables for people;
`--json` prints the API's JSON instead.
Exit codes: 0 done, 1 the job ended FAILED or STOPPED, 2 bad usage, 3 the API said no.
"""

from __future__ import annotations

import argparse
import base64
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any, TextIO

from contracts import compositions, hyperparameters, statuses
from contracts import instruments as instrument_presets
from opencomposer.client import ApiError, Client, default_api_url, file_name

EXIT_OK, EXIT_JOB_FAILED, EXIT_USAGE, EXIT_API = 0, 1, 2, 3
DEFAULT_OUT = Path("out")


def progress_line(job: dict[str, Any]) -> str:
    """One line: status, epoch x/y, losses and similarity when the job reports them."""
    parts = [f"{job['job_id'][:8]} {job['status']:<9}"]
    progress = job.get("progress") or {}
    if progress.get("epochs"):
        epoch, epochs = int(progress.get("epoch") or 0), int(progress["epochs"])
        filled = round(20 * epoch / epochs) if epochs else 0
        parts.append(f"[{'#' * filled}{'.' * (20 - filled)}] epoch {epoch}/{epochs}")
    metrics = progress.get("metrics") or {}
    for key, label in (("generator_loss", "G"), ("critic_loss", "C"), ("similarity", "similarity")):
        if isinstance(metrics.get(key), int | float):
            parts.append(f"{label} {metrics[key]:.3f}")
    return "  ".join(parts)


class ProgressPrinter:
    """A live line on a terminal (rewritten in place), one line per change otherwise."""

    def __init__(self, stream: TextIO | None = None) -> None:
        self.stream = stream or sys.stderr
        self.tty = self.stream.isatty()
        self._last = ""

    def __call__(self, job: dict[str, Any]) -> None:
        line = progress_line(job)
        if line == self._last:
            return
        if self.tty:
            self.stream.write("\r\033[K" + line)
        else:
            self.stream.write(line + "\n")
        self.stream.flush()
        self._last = line

    def done(self) -> None:
        if self.tty and self._last:
            self.stream.write("\n")
            self.stream.flush()


def wait_and_report(client: Client, job_id: str, interval: float) -> int:
    printer = ProgressPrinter()
    try:
        job = client.wait(job_id, interval=interval, on_update=printer)
    finally:
        printer.done()
    if job["status"] == statuses.COMPLETED:
        print(f"job {job_id} {statuses.COMPLETED}")
        return EXIT_OK
    reason = job.get("failure_reason") or "stopped at the user's request"
    print(f"job {job_id} {job['status']}: {reason}", file=sys.stderr)
    return EXIT_JOB_FAILED


def _submit_body(args: argparse.Namespace) -> dict[str, Any]:
    body: dict[str, Any] = {}
    if args.name:
        body["name"] = args.name
    chosen = {
        name: getattr(args, name) for name in hyperparameters.BY_NAME if getattr(args, name) is not None
    }
    if chosen:
        body["hyperparameters"] = chosen
    if args.midi:
        body["melody"] = {"midi_base64": base64.b64encode(Path(args.midi).read_bytes()).decode()}
    elif args.sample:
        body["melody"] = {"sample": args.sample}
    if args.dataset:
        body["dataset"] = args.dataset
    if args.tags:
        body["tags"] = args.tags
    return body


def _print_json(value: Any) -> None:
    print(json.dumps(value, indent=2, default=str))


def _table(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    cells = [[str(c) for c in header]] + [["-" if c is None else str(c) for c in row] for row in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(header))]
    lines = ("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)) for row in cells)
    return "\n".join(line.rstrip() for line in lines)


def _number(value: Any, digits: int = 3) -> str | None:
    return f"{value:.{digits}f}" if isinstance(value, int | float) else None


def format_jobs(page: dict[str, Any]) -> str:
    rows = []
    for job in page.get("jobs", []):
        progress = job.get("progress") or {}
        epoch = f"{progress['epoch']}/{progress['epochs']}" if progress.get("epochs") else None
        similarity = _number((progress.get("metrics") or {}).get("similarity"))
        rows.append([job["job_id"], job.get("name"), job["status"], epoch, similarity, job.get("created_at")])
    text = _table(["JOB ID", "NAME", "STATUS", "EPOCH", "SIMILARITY", "CREATED"], rows)
    if page.get("next_token"):
        text += f"\nmore: --next-token {page['next_token']}"
    return text


def format_job(job: dict[str, Any]) -> str:
    melody = job.get("melody") or {}
    lines = [
        ("job", job["job_id"]),
        ("name", job.get("name")),
        ("status", job["status"]),
        ("waiting", job.get("status_message")),
        ("created", job.get("created_at")),
        ("updated", job.get("updated_at")),
        ("hyperparameters", " ".join(f"{k}={v}" for k, v in (job.get("hyperparameters") or {}).items())),
        ("melody", melody.get("sample") or ("your MIDI file" if melody else None)),
        ("training data", _training_data(job.get("training_data"))),
        ("progress", progress_line(job).split(None, 2)[-1] if job.get("progress") else None),
        ("failure reason", job.get("failure_reason")),
        ("model", _model_hint(job)),
        ("compositions", ", ".join((job.get("outputs") or {}).get("compositions") or []) or None),
    ]
    return "\n".join(f"{label + ':':<17}{value}" for label, value in lines if value)


def _training_data(data: dict[str, Any] | None) -> str | None:
    """`bach-chorales, tags mode:minor: 84 pieces, 2,310 windows` (the counts once known)."""
    if not data:
        return None
    text = data["dataset"] + (f", tags {' '.join(data['tags'])}" if data.get("tags") else ", all pieces")
    if data.get("pieces") is not None:
        text += f": {data['pieces']:,} pieces, {data['windows']:,} windows"
    return text


def _model_hint(job: dict[str, Any]) -> str | None:
    """Where the trained model is (`outputs.model`, the API path `/jobs/<id>/model`) and the
    command that downloads it."""
    model = (job.get("outputs") or {}).get("model")
    return f"{model}  (download: opencomposer model {job['job_id']})" if model else None


# The columns of `metrics`: the losses, the similarity index and the music metrics it is made of.
METRIC_COLUMNS = (
    ("generator_loss", "G loss"),
    ("critic_loss", "C loss"),
    ("similarity", "similarity"),
    ("in_key_ratio", "in key"),
    ("consonance", "consonant"),
    ("voice_crossing", "crossed"),
    ("parallel_fifths_octaves", "parallels"),
    ("pitch_classes_per_bar", "pcs/bar"),
    ("mean_note_length", "note len"),
    ("empty_bar_rate", "empty bars"),
)


def format_metrics(metrics: dict[str, Any]) -> str:
    rows = [
        [epoch["epoch"], *(_number(epoch.get(key)) for key, _ in METRIC_COLUMNS)]
        for epoch in metrics.get("epochs", [])
    ]
    reference = metrics.get("reference") or {}
    if reference:
        rows.append(["Bach", *(_number(reference.get(key)) for key, _ in METRIC_COLUMNS)])
    return _table(["epoch", *(label for _, label in METRIC_COLUMNS)], rows)


def _instruments(voices: Sequence[dict[str, Any]] | None) -> str | None:
    """Four voices in one line; a preset's name where they are exactly a preset."""
    if not voices:
        return None
    for preset, preset_voices in instrument_presets.PRESETS.items():
        if list(voices) == instrument_presets.as_json(preset_voices):
            return preset
    return ", ".join(f"{v.get('name')} ({v.get('program')})" for v in voices)


def format_composition(composition: dict[str, Any]) -> str:
    """A composition: what it is, then its music metrics beside Bach's reference values."""
    melody = composition.get("melody") or {}
    lines = [
        ("composition", composition["composition_id"]),
        ("name", composition.get("name")),
        ("kind", composition.get("kind")),
        ("melody", melody.get("sample") or ("your MIDI file" if melody else None)),
        ("bars", composition.get("bars")),
        ("seed", composition.get("seed")),
        ("temperature", composition.get("temperature")),
        ("instruments", _instruments(composition.get("instruments"))),
        ("created", composition.get("created_at")),
    ]
    text = "\n".join(f"{label + ':':<17}{value}" for label, value in lines if value is not None)
    metrics, reference = composition.get("metrics") or {}, composition.get("reference") or {}
    columns = [(key, label) for key, label in METRIC_COLUMNS if key in metrics or key in reference]
    if columns:
        rows = [["this", *(_number(metrics.get(key)) for key, _ in columns)]]
        if reference:
            rows.append(["Bach", *(_number(reference.get(key)) for key, _ in columns)])
        text += "\n\n" + _table(["", *(label for _, label in columns)], rows)
    return text


def format_compositions(page: dict[str, Any]) -> str:
    rows = [
        [c["composition_id"], c.get("kind"), c.get("name"), c.get("created_at"), c.get("bars"), c.get("seed")]
        for c in page.get("compositions", [])
    ]
    text = _table(["COMPOSITION ID", "KIND", "NAME", "CREATED", "BARS", "SEED"], rows)
    if page.get("next_token"):
        text += f"\nmore: --next-token {page['next_token']}"
    return text


def format_melodies(melodies: dict[str, Any]) -> str:
    rows = [
        [m["name"], m.get("title"), m.get("bars"), m.get("meter"), m.get("key"), m.get("tempo_bpm")]
        for m in melodies.get("melodies", [])
    ]
    return _table(["NAME", "TITLE", "BARS", "METER", "KEY", "BPM"], rows)


def _compose(client: Client, args: argparse.Namespace) -> int:
    composition = client.compose(
        args.job_id,
        sample=args.sample,
        midi=args.midi,
        seed=args.seed,
        temperature=args.temperature,
        instruments=args.instruments,
        name=args.name,
    )
    default = DEFAULT_OUT / args.job_id / file_name(composition)
    out = Path(args.output) if args.output else default
    path = client.fetch(composition["url"], out)
    if args.json:  # stdout stays the API's JSON
        print(path, file=sys.stderr)
        _print_json(composition)
    else:
        print(path)
        print(format_composition(composition))
    return EXIT_OK


def _model(client: Client, args: argparse.Namespace) -> int:
    link = client.model(args.job_id)
    out = Path(args.output) if args.output else DEFAULT_OUT / args.job_id / "model.tar.gz"
    path = client.fetch(link["url"], out)
    if args.json:
        print(path, file=sys.stderr)
        _print_json(link)
    else:
        print(path)
    return EXIT_OK


def _console(client: Client, args: argparse.Namespace) -> int:
    from opencomposer.console.server import ConsoleServer, describe

    console = ConsoleServer(client=client, port=args.port)
    print(describe(console), flush=True)
    try:
        console.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        console.stop()
    return EXIT_OK


def _plot(client: Client, args: argparse.Namespace) -> int:
    try:
        from opencomposer import plots
    except ImportError as e:  # pragma: no cover - the [media] extra is missing
        print(f"error: plot needs matplotlib ({e}): pip install 'opencomposer[media]'", file=sys.stderr)
        return EXIT_USAGE
    metrics = client.metrics(args.job_id)
    out = Path(args.output) if args.output else DEFAULT_OUT / args.job_id / "curves.png"
    try:
        path = plots.plot_metrics(metrics, out)
    except ImportError as e:  # pragma: no cover
        print(f"error: plot needs matplotlib ({e}): pip install 'opencomposer[media]'", file=sys.stderr)
        return EXIT_USAGE
    except ValueError as e:
        print(f"error: {e}", file=sys.stderr)
        return EXIT_API
    print(path)
    return EXIT_OK


def _pick_composition(client: Client, job_id: str, wanted: str) -> dict[str, Any]:
    """The job's composition whose id or name is `wanted` (`final`: the training's result)."""
    seen = []
    for composition in client.all_compositions(job_id):
        if wanted in (composition.get("composition_id"), composition.get("name")):
            return composition
        seen.append(str(composition.get("name") or composition.get("composition_id")))
    listed = ", ".join(seen[:12]) + (" ..." if len(seen) > 12 else "") or "none yet"
    raise ApiError(404, "not_found", f"job {job_id} has no composition {wanted!r} (it has: {listed})")


def _render(client: Client, args: argparse.Namespace) -> int:
    try:
        from opencomposer import audio
    except ImportError as e:  # pragma: no cover - the [media] extra is missing
        print(
            f"error: render needs numpy and pretty_midi ({e}): pip install 'opencomposer[media]'",
            file=sys.stderr,
        )
        return EXIT_USAGE
    source = Path(args.source)
    if source.suffix.lower() in (".mid", ".midi") or source.is_file():
        if not source.is_file():
            print(f"error: no such file: {source}", file=sys.stderr)
            return EXIT_USAGE
        if args.composition:
            print("error: --composition is for a job id, not a file", file=sys.stderr)
            return EXIT_USAGE
        midi = source
    else:
        composition = _pick_composition(client, args.source, args.composition or "final")
        midi = client.fetch(composition["url"], DEFAULT_OUT / args.source / file_name(composition))
    out = Path(args.output) if args.output else midi.with_suffix(".wav")
    try:
        rendered = audio.render(midi, out, renderer=args.renderer)
    except audio.RenderError as e:
        print(f"error: {e}", file=sys.stderr)
        return EXIT_USAGE
    print(rendered.path)
    why = f" ({rendered.note})" if rendered.note else ""
    print(f"renderer: {rendered.renderer}{why}, {rendered.seconds:.1f} s", file=sys.stderr)
    return EXIT_OK


# --- datasets ----------------------------------------------------------------------------------
def format_dataset(dataset: dict[str, Any]) -> str:
    """A dataset's status and build report: what was accepted, each rejected file with its
    reason, the pieces per tag."""
    lines = [f"dataset {dataset['dataset_id']}" + (f" ({dataset['name']})" if dataset.get("name") else ""),
             f"status: {dataset['status']}"]
    if dataset.get("failure_reason"):
        lines.append(f"failure: {dataset['failure_reason']}")
    summary = dataset.get("summary")
    if summary:
        lines.append(f"accepted {summary['accepted']} of {summary['files']} files: "
                     f"{summary['pieces']} pieces, {summary['bars']} bars, "
                     f"{summary['windows']} training windows")
        if summary["rejected_count"]:
            lines.append(f"rejected {summary['rejected_count']}:")
            lines += [f"  {item['file']}: {item['reason']}" for item in summary["rejected"]]
            hidden = summary["rejected_count"] - len(summary["rejected"])
            if hidden > 0:
                lines.append(f"  ... and {hidden} more (the full report: --json, report.url)")
        if summary["tags"]:
            lines.append("tags (pieces):")
            lines += [f"  {tag}: {count}" for tag, count in summary["tags"].items()]
    return "\n".join(lines)


def format_datasets(page: dict[str, Any]) -> str:
    rows = [[d["dataset_id"], d.get("name"), d["status"], (d.get("summary") or {}).get("pieces"),
             d.get("created_at")] for d in page.get("datasets", [])]
    text = _table(["DATASET ID", "NAME", "STATUS", "PIECES", "CREATED"], rows)
    if page.get("next_token"):
        text += f"\nmore: --next-token {page['next_token']}"
    return text


def _dataset(client: Client, args: argparse.Namespace) -> int:
    command = args.dataset_command
    if command == "upload":
        try:
            created = client.upload_dataset(args.source, name=args.name)
        except ValueError as e:
            print(f"error: {e}", file=sys.stderr)
            return EXIT_USAGE
        print(created["dataset_id"])
        if args.no_wait:
            return EXIT_OK
        dataset = client.wait_dataset(created["dataset_id"], interval=args.interval)
        _print_json(dataset) if args.json else print(format_dataset(dataset))
        return EXIT_OK if dataset["status"] == "READY" else EXIT_JOB_FAILED
    if command == "list":
        page = client.datasets(limit=args.limit, next_token=args.next_token)
        _print_json(page) if args.json else print(format_datasets(page))
    elif command == "show":
        dataset = client.dataset(args.dataset_id)
        _print_json(dataset) if args.json else print(format_dataset(dataset))
    elif command == "delete":
        client.delete_dataset(args.dataset_id)
        print(f"deleted {args.dataset_id}")
    return EXIT_OK


def run(args: argparse.Namespace) -> int:
    client = Client(args.api)
    command = args.command
    if command == "dataset":
        return _dataset(client, args)
    if command == "submit":
        job = client.submit(_submit_body(args), idempotency_key=args.idempotency_key)
        print(job["job_id"])
        return wait_and_report(client, job["job_id"], args.interval) if args.wait else EXIT_OK
    if command == "status":
        job = client.get(args.job_id)
        _print_json(job) if args.json else print(format_job(job))
    elif command == "wait":
        return wait_and_report(client, args.job_id, args.interval)
    elif command == "list":
        page = client.list(status=args.status, limit=args.limit, next_token=args.next_token)
        _print_json(page) if args.json else print(format_jobs(page))
    elif command == "metrics":
        metrics = client.metrics(args.job_id)
        _print_json(metrics) if args.json else print(format_metrics(metrics))
    elif command == "download":
        target = Path(args.out) / args.job_id
        for path in client.download(args.job_id, target):
            print(path)
    elif command == "compose":
        return _compose(client, args)
    elif command == "compositions":
        page = client.compositions(args.job_id, limit=args.limit, next_token=args.next_token)
        _print_json(page) if args.json else print(format_compositions(page))
    elif command == "delete-composition":
        client.delete_composition(args.job_id, args.composition_id)
        print(f"deleted {args.composition_id}")
    elif command == "melodies":
        melodies = client.melodies()
        _print_json(melodies) if args.json else print(format_melodies(melodies))
    elif command == "model":
        return _model(client, args)
    elif command == "console":
        return _console(client, args)
    elif command == "plot":
        return _plot(client, args)
    elif command == "render":
        return _render(client, args)
    elif command == "stop":
        _print_json(client.stop(args.job_id))
    elif command == "delete":
        client.delete(args.job_id)
        print(f"deleted {args.job_id}")
    return EXIT_OK


def _instruments_flag(text: str) -> str | list[Any]:
    """--instruments: a preset or four voices as JSON, checked here (`contracts.instruments`)
    so a typo fails before any request; sent as given."""
    try:
        instrument_presets.from_text(text)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None
    stripped = text.strip()
    return json.loads(stripped) if stripped.startswith("[") else stripped  # type: ignore[no-any-return]


def _seed_flag(text: str) -> int:
    try:
        seed = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if not compositions.SEED_MIN <= seed <= compositions.SEED_MAX:
        raise argparse.ArgumentTypeError(f"{seed} is outside {compositions.SEED_MIN}-{compositions.SEED_MAX}")
    return seed


def _temperature_flag(text: str) -> float:
    try:
        temperature = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    low, high = compositions.TEMPERATURE_MIN, compositions.TEMPERATURE_MAX
    if not low <= temperature <= high:  # also refuses nan
        raise argparse.ArgumentTypeError(f"{text} is outside {low:g}-{high:g}")
    return temperature


def build_parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--json", action="store_true", default=argparse.SUPPRESS, help="print the API's JSON, not a table"
    )
    common.add_argument(
        "--api",
        default=argparse.SUPPRESS,
        help=f"API base URL (default: $OPENCOMPOSER_API_URL or {default_api_url()})",
    )
    parser = argparse.ArgumentParser(
        prog="opencomposer",
        description="Train a Bach-chorale GAN, download its MIDI and compose with it.",
        parents=[common],
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    submit = sub.add_parser("submit", parents=[common], help="start a training job, print its id")
    submit.add_argument("--name")
    for spec in hyperparameters.HYPERPARAMETERS:
        submit.add_argument(
            "--" + spec.name.replace("_", "-"),
            dest=spec.name,
            type=spec.kind,
            # a hyperparameter may be a choice of words (model_size): no range, no `:g`
            help=(f"{spec.help}; one of {', '.join(spec.choices)}, default {spec.default}" if spec.choices
                  else f"{spec.help}; range {spec.range_text()}, default {spec.default:g}"
                  ).replace("%", "%%"),
        )
    melody = submit.add_mutually_exclusive_group()
    melody.add_argument("--sample", help="one of the shipped melodies (e.g. twinkle-twinkle)")
    melody.add_argument("--midi", help="your own MIDI file: its first track with notes is the melody")
    submit.add_argument(
        "--dataset", help="a dataset id of yours (opencomposer dataset list), default the Bach chorales"
    )
    submit.add_argument(
        "--tag", dest="tags", action="append", metavar="TAG",
        help="train only on the pieces with this tag (mode:minor, meter:3/4, key:g-minor, a folder "
             "name of your zip); repeat it: a piece must carry every one",
    )
    submit.add_argument("--idempotency-key", dest="idempotency_key")
    submit.add_argument("--wait", action="store_true", help="then show progress until the job ends")
    submit.add_argument("--interval", type=float, default=2.0, help=argparse.SUPPRESS)

    for name, text in (
        ("status", "show a job"),
        ("metrics", "per-epoch losses and music metrics, with Bach's reference values"),
        ("stop", "stop a job"),
        ("delete", "delete a finished job and its files"),
    ):
        sub.add_parser(name, parents=[common], help=text).add_argument("job_id")
    wait = sub.add_parser("wait", parents=[common], help="show live progress until the job ends")
    wait.add_argument("job_id")
    wait.add_argument("--interval", type=float, default=2.0, help="seconds between polls")
    download = sub.add_parser("download", parents=[common], help="fetch every composition into out/<job_id>/")
    download.add_argument("job_id")
    download.add_argument("--out", default=str(DEFAULT_OUT), help="parent folder (default: out)")
    listing = sub.add_parser("list", parents=[common], help="list your jobs, newest first")
    listing.add_argument("--status")
    listing.add_argument("--limit", type=int)
    listing.add_argument("--next-token", dest="next_token")

    compose = sub.add_parser(
        "compose", parents=[common], help="have a trained job's model accompany a melody, save the MIDI"
    )
    compose.add_argument("job_id")
    melody = compose.add_mutually_exclusive_group(required=True)
    melody.add_argument(
        "--sample", metavar="NAME", help="one of the shipped melodies (opencomposer melodies)"
    )
    melody.add_argument(
        "--midi", metavar="FILE", help="your own MIDI file: its first track with notes is the melody"
    )
    compose.add_argument(
        "--seed",
        type=_seed_flag,
        metavar="N",
        help=f"each seed its own accompaniment; {compositions.SEED_MIN}-{compositions.SEED_MAX}, "
        f"default {compositions.DEFAULT_SEED}",
    )
    compose.add_argument(
        "--temperature",
        type=_temperature_flag,
        metavar="T",
        help=f"how adventurous the voices are: 0 is the likeliest line; "
        f"{compositions.TEMPERATURE_MIN:g}-{compositions.TEMPERATURE_MAX:g}, "
        f"default {compositions.DEFAULT_TEMPERATURE:g}",
    )
    compose.add_argument(
        "--instruments",
        type=_instruments_flag,
        metavar="PRESET|JSON",
        help=f"a preset ({', '.join(sorted(instrument_presets.PRESETS))}; default "
        f"{instrument_presets.DEFAULT_PRESET}) or four voices, melody first, as JSON: "
        """'[{"program": 73, "name": "Flute"}, 71, 70, 58]' (General MIDI programs, 0-127)""",
    )
    compose.add_argument("--name", help="yours to choose (default: the melody and the seed)")
    compose.add_argument(
        "-o",
        "--output",
        metavar="FILE",
        help="where to write the MIDI (default: out/<job_id>/<composition_id>.mid)",
    )
    listed = sub.add_parser(
        "compositions", parents=[common], help="a job's MIDI, newest first: yours, then the training's"
    )
    listed.add_argument("job_id")
    listed.add_argument("--limit", type=int)
    listed.add_argument("--next-token", dest="next_token")
    delete_composition = sub.add_parser(
        "delete-composition", parents=[common], help="delete one of your compositions"
    )
    delete_composition.add_argument("job_id")
    delete_composition.add_argument("composition_id")
    sub.add_parser("melodies", parents=[common], help="the sample melodies --sample takes")
    model = sub.add_parser("model", parents=[common], help="download a completed job's model.tar.gz")
    model.add_argument("job_id")
    model.add_argument(
        "-o", "--output", metavar="FILE", help="where to write it (default: out/<job_id>/model.tar.gz)"
    )
    console = sub.add_parser(
        "console", parents=[common], help="serve the web console on 127.0.0.1, forwarding to the API"
    )
    console.add_argument("--port", type=int, default=8080, help="local port (default: 8080)")
    plot = sub.add_parser(
        "plot", parents=[common], help="a job's losses and music metrics per epoch, beside Bach's, as a PNG"
    )
    plot.add_argument("job_id")
    plot.add_argument(
        "-o", "--output", metavar="FILE", help="where to write it (default: out/<job_id>/curves.png)"
    )
    render = sub.add_parser(
        "render", parents=[common], help="a job's composition or a MIDI file as a WAV (FluidSynth or plain)"
    )
    render.add_argument("source", metavar="JOB_ID|FILE.mid", help="a job id, or a MIDI file")
    render.add_argument(
        "--composition",
        metavar="ID|NAME",
        help="which of the job's compositions (opencomposer compositions; default: final)",
    )
    render.add_argument(
        "-o", "--output", metavar="FILE", help="where to write the WAV (default: beside the MIDI, .wav)"
    )
    render.add_argument(
        "--renderer",
        choices=("auto", "fluidsynth", "plain"),
        default="auto",
        help="auto (default): FluidSynth with a General MIDI soundfont where installed, else plain",
    )
    _dataset_parser(sub, common)
    return parser


def _dataset_parser(sub: Any, common: argparse.ArgumentParser) -> None:
    dataset = sub.add_parser("dataset", parents=[common], help="your MIDI collections to train on")
    commands = dataset.add_subparsers(dest="dataset_command", required=True, metavar="COMMAND")
    upload = commands.add_parser(
        "upload", parents=[common],
        help="upload a folder of MIDI files (its subfolders become tags) or a zip, wait for the report")
    upload.add_argument("source", help="a folder of .mid files, or a .zip of one")
    upload.add_argument("--name")
    upload.add_argument("--no-wait", action="store_true", help="print the dataset's id and return")
    upload.add_argument("--interval", type=float, default=1.0, help="seconds between polls")
    listing = commands.add_parser("list", parents=[common], help="your datasets, newest first")
    listing.add_argument("--limit", type=int)
    listing.add_argument("--next-token")
    for name, text in (("show", "a dataset's status and build report"), ("delete", "delete a dataset")):
        commands.add_parser(name, parents=[common], help=text).add_argument("dataset_id")


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    args.api = getattr(args, "api", None)
    args.json = getattr(args, "json", False)
    try:
        return run(args)
    except ApiError as e:
        print(f"error: {e}", file=sys.stderr)
        return EXIT_API
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:  # `opencomposer metrics ID | head`: the reader has what it wanted
        sys.stderr.close()
        return EXIT_OK
    except OSError as e:
        print(f"error: {e}", file=sys.stderr)
        return EXIT_USAGE


if __name__ == "__main__":
    sys.exit(main())
