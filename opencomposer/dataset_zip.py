"""A dataset's zip as the client sends it: a folder zipped with its subfolders kept (they become
the pieces' tags, `contracts.datasets.folder_tags`), and the multipart form of a presigned S3 POST."""

from __future__ import annotations

import re
import tempfile
import uuid
import zipfile
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def zipped(source: Path) -> Iterator[Path]:
    """`source` itself when it is a zip; a folder zipped into a temporary file (deleted after),
    each file under its path relative to the folder. Hidden files and folders (`.DS_Store`,
    `.git/`) stay out: they are no music and would only be reported as rejected."""
    if source.is_file():
        if not zipfile.is_zipfile(source):
            raise ValueError(f"{source} is not a zip file (give a folder of MIDI files, or a zip of one)")
        yield source
        return
    if not source.is_dir():
        raise FileNotFoundError(f"{source} does not exist")
    files = sorted(path for path in source.rglob("*") if path.is_file()
                   and not any(part.startswith(".") for part in path.relative_to(source).parts))
    if not files:
        raise ValueError(f"{source} holds no files")
    with tempfile.TemporaryDirectory(prefix="opencomposer-dataset-") as work:
        archive = Path(work) / "collection.zip"
        with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as out:
            for path in files:
                out.write(path, path.relative_to(source).as_posix())
        yield archive


def multipart(fields: Mapping[str, str], path: Path) -> tuple[bytes, str]:
    """(body, Content-Type) of a multipart/form-data POST: every field, then the file as `file`
    (S3 ignores whatever follows the file)."""
    boundary = f"----opencomposer{uuid.uuid4().hex}"
    parts: list[bytes] = []
    for name, value in fields.items():
        header = f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n'
        parts.append(f"{header}{value}\r\n".encode())
    parts.append(
        f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="{path.name}"\r\n'
        "Content-Type: application/zip\r\n\r\n".encode()
    )
    parts.append(path.read_bytes())
    parts.append(f"\r\n--{boundary}--\r\n".encode())
    return b"".join(parts), f"multipart/form-data; boundary={boundary}"


def s3_error(raw: bytes) -> tuple[str, str]:
    """(code, message) of S3's XML error answer (`EntityTooLarge`, `AccessDenied`, ...)."""
    text = raw.decode(errors="replace")
    code = re.search(r"<Code>([^<]*)</Code>", text)
    message = re.search(r"<Message>([^<]*)</Message>", text)
    return (code.group(1) if code else "upload_failed",
            message.group(1) if message else (text[:300] or "no reason given"))
