"""`opencomposer`: the command line of the API, for the local stack or a deployed API.

    opencomposer submit [--epochs N ...] [--sample NAME | --midi FILE] [--wait]
    opencomposer status JOB_ID | wait JOB_ID | list | metrics JOB_ID
    opencomposer download JOB_ID [--out DIR] | stop JOB_ID | delete JOB_ID

`--api URL` (or `OPENCOMPOSER_API_URL`) picks the API; the default is the local stack.
`status`, `list` and `metrics` print tables for people; `--json` prints the API's JSON instead.
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

from contracts import hyperparameters, statuses
from opencomposer.client import ApiError, Client, default_api_url

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
        ("created", job.get("created_at")),
        ("updated", job.get("updated_at")),
        ("hyperparameters", " ".join(f"{k}={v}" for k, v in (job.get("hyperparameters") or {}).items())),
        ("melody", melody.get("sample") or ("your MIDI file" if melody else None)),
        ("progress", progress_line(job).split(None, 2)[-1] if job.get("progress") else None),
        ("failure reason", job.get("failure_reason")),
        ("model", (job.get("outputs") or {}).get("model")),
        ("compositions", ", ".join((job.get("outputs") or {}).get("compositions") or []) or None),
    ]
    return "\n".join(f"{label + ':':<17}{value}" for label, value in lines if value)


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


def run(args: argparse.Namespace) -> int:
    client = Client(args.api)
    command = args.command
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
    elif command == "stop":
        _print_json(client.stop(args.job_id))
    elif command == "delete":
        client.delete(args.job_id)
        print(f"deleted {args.job_id}")
    return EXIT_OK


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
        prog="opencomposer", description="Train a Bach-chorale GAN and download its MIDI.", parents=[common]
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    submit = sub.add_parser("submit", parents=[common], help="start a training job, print its id")
    submit.add_argument("--name")
    for spec in hyperparameters.HYPERPARAMETERS:
        submit.add_argument(
            "--" + spec.name.replace("_", "-"),
            dest=spec.name,
            type=spec.kind,
            help=f"{spec.help}; range {spec.range_text()}, default {spec.default:g}".replace("%", "%%"),
        )
    melody = submit.add_mutually_exclusive_group()
    melody.add_argument("--sample", help="one of the shipped melodies (e.g. twinkle-twinkle)")
    melody.add_argument("--midi", help="your own MIDI file: its first track with notes is the melody")
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
    return parser


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
