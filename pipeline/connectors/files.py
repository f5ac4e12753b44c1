"""JSONL and CSV file replay, paced by the posts' own `created_at`; resumes at a byte offset.

JSONL: one JSON object per line with RawPost fields (``schema``/``v`` may be omitted).
CSV: a header row naming any of `CSV_COLUMNS` (id, source, created_at and text required); empty
cells mean "absent"; quoted cells may span lines. A malformed line goes to the dead-letter topic
with its line number and bytes, and the replay goes on.
"""

from __future__ import annotations

import csv
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

from pipeline.connectors.base import Connector, Emit
from pipeline.connectors.pacing import Pacer
from pipeline.connectors.validation import post_from_json, post_from_mapping
from pipeline.schemas import RawPost, Reason, Rejection
from pipeline.settings import Settings

METRIC_COLUMNS = ("pageviews", "likes", "reposts", "comments", "looking_at")
CSV_COLUMNS = ("id", "source", "account", "author", "created_at", "text", "lang", "url", "title", *METRIC_COLUMNS)
REQUIRED_CSV_COLUMNS = ("id", "source", "created_at", "text")


@dataclass(frozen=True)
class FileRecord:
    line: int
    """1-based line number where the record starts (the dead letter's offset)."""
    data: bytes
    parsed: RawPost | Rejection
    end_offset: int
    end_line: int


class FileConnector(Connector):
    """Shared replay loop; subclasses read records starting at a byte offset."""

    def __init__(self, settings: Settings, *, path: str | Path, speed: float = 0.0, **options: Any) -> None:
        self.path = Path(path).resolve()
        options.setdefault("name", f"{self.kind}-{self.path.stem}")
        super().__init__(settings, **options)
        self.speed = speed

    def records(self, fh: BinaryIO, offset: int, line: int) -> Iterator[FileRecord]:
        raise NotImplementedError

    def _start(self, position: Any) -> tuple[int, int]:
        if position is None:
            return 0, 0
        if position["path"] != str(self.path):
            raise ValueError(
                f"checkpoint {self.checkpoints.path} belongs to {position['path']}, not {self.path}; pass another name="
            )
        return position["offset"], position["line"]

    async def stream(self, position: Any) -> AsyncIterator[Emit]:
        offset, line = self._start(position)
        pacer = Pacer(self.speed)
        with open(self.path, "rb") as fh:
            for record in self.records(fh, offset, line):
                if isinstance(record.parsed, RawPost):
                    await pacer.wait_for(record.parsed.created_at)
                resume = {"path": str(self.path), "offset": record.end_offset, "line": record.end_line}
                yield Emit.of(record.parsed, record.data, origin=str(self.path), offset=record.line, position=resume)


class JsonlFileConnector(FileConnector):
    kind = "jsonl"

    def records(self, fh: BinaryIO, offset: int, line: int) -> Iterator[FileRecord]:
        fh.seek(offset)
        for raw in fh:
            offset += len(raw)
            line += 1
            data = raw.strip()
            if data:
                yield FileRecord(line, data, post_from_json(data, self.settings), offset, line)


class _TrackedLines:
    """Feeds decoded lines to csv.reader while remembering the bytes and offset of the current record."""

    def __init__(self, fh: BinaryIO, offset: int, line: int) -> None:
        self._fh = fh
        self.offset = offset
        self.line = line
        self.record_bytes: list[bytes] = []

    def __iter__(self) -> _TrackedLines:
        return self

    def __next__(self) -> str:
        raw = self._fh.readline()
        if not raw:
            raise StopIteration
        self.offset += len(raw)
        self.line += 1
        self.record_bytes.append(raw)
        return raw.decode("utf-8")


def _fields_from_row(header: list[str], row: list[str]) -> dict | Rejection:
    if len(row) != len(header):
        return Rejection(reason=Reason.INVALID_VALUE, detail=f"expected {len(header)} fields, got {len(row)}")
    fields: dict[str, Any] = {}
    metrics: dict[str, int] = {}
    for column, cell in zip(header, row):
        if cell == "":
            continue
        if column in METRIC_COLUMNS:
            if not cell.strip().isdigit():
                return Rejection(reason=Reason.WRONG_TYPE, detail=f"{column}: {cell!r} is not a non-negative integer")
            metrics[column] = int(cell)
        else:
            fields[column] = cell
    if metrics:
        fields["metrics"] = metrics
    return fields


def read_csv_header(fh: BinaryIO) -> tuple[list[str], int]:
    """The column names and the byte length of the header line; refuses files that are not ours."""
    fh.seek(0)
    raw = fh.readline()
    header = next(csv.reader([raw.decode("utf-8-sig")]), [])
    unknown = sorted(set(header) - set(CSV_COLUMNS))
    missing = [c for c in REQUIRED_CSV_COLUMNS if c not in header]
    if unknown or missing:
        raise ValueError(f"CSV header {header}: unknown columns {unknown}, missing {missing}; allowed: {CSV_COLUMNS}")
    return header, len(raw)


class CsvFileConnector(FileConnector):
    kind = "csv"

    def records(self, fh: BinaryIO, offset: int, line: int) -> Iterator[FileRecord]:
        header, header_end = read_csv_header(fh)
        if offset < header_end:
            offset, line = header_end, 1
        fh.seek(offset)
        lines = _TrackedLines(fh, offset, line)
        reader = csv.reader(lines)
        while True:
            start_line = lines.line + 1
            lines.record_bytes = []
            try:
                row = next(reader)
            except StopIteration:
                return
            except UnicodeDecodeError as exc:
                parsed: RawPost | Rejection = Rejection(reason=Reason.INVALID_UTF8, detail=str(exc))
            except csv.Error as exc:
                parsed = Rejection(reason=Reason.INVALID_VALUE, detail=f"CSV: {exc}")
            else:
                if not row:
                    continue
                fields = _fields_from_row(header, row)
                parsed = fields if isinstance(fields, Rejection) else post_from_mapping(fields, self.settings)
            yield FileRecord(start_line, b"".join(lines.record_bytes), parsed, lines.offset, lines.line)
