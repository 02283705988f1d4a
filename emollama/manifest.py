"""The one reader of CSV manifests (``analyze --manifest``, ``annotate``, ``eval-model``).

What every manifest gets: a UTF-8 file with or without a byte-order mark; comma, semicolon or tab
separators (whichever the header line uses most; quoting is always the spreadsheet standard, so
a quoted cell may hold the other separators and doubled quotes); column names compared stripped and lower-cased; cell
values stripped; blank spreadsheet rows skipped; a row with more fields than the header (an
unquoted comma in a subtitle) is an error naming its line. Each consumer then checks the columns
it needs and raises its own message.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

from emollama.errors import InputError, ManifestError
from emollama.validate import check_input_file

#: A manifest lists clips; one this large is something else (a media file given by mistake).
MAX_BYTES = 200_000_000

__all__ = ["ManifestTable", "header_delimiter", "read_table"]


@dataclass(frozen=True)
class ManifestTable:
    path: Path
    fields: list[str]  # stripped, lower-case, in file order
    rows: list[tuple[int, dict[str, str]]]  # (line number in the file, {column: stripped value})

    def pick(self, options: tuple[str, ...]) -> str | None:
        """The first of ``options`` that is a column of this table."""
        return next((c for c in options if c in self.fields), None)


def read_table(path: str | Path, *, what: str = "manifest") -> ManifestTable:
    """Read ``path``; any problem is a one-line :class:`~emollama.errors.ManifestError` naming ``what`` and the file."""
    try:  # a folder, a FIFO, a device or a symlink loop is named as such, never read
        m = check_input_file(path, what=what, max_bytes=MAX_BYTES, directory_hint="give a CSV file")
    except InputError as exc:
        raise ManifestError(str(exc)) from None
    rows: list[tuple[int, dict[str, str]]] = []
    reader = None
    try:
        with open(m, newline="", encoding="utf-8-sig") as fh:
            delimiter = header_delimiter(fh.readline())
            fh.seek(0)
            reader = csv.DictReader(fh, delimiter=delimiter)
            fields = [(f or "").strip().lower() for f in reader.fieldnames or []]
            for raw in reader:
                n = reader.line_num  # the file line the row ends on (blank lines and quoted newlines count)
                if None in raw:
                    raise ManifestError(f"{what} {m}, line {n}: more fields than the header has columns "
                                        "(quote subtitles that contain commas)")
                row = {(k or "").strip().lower(): (v or "").strip() for k, v in raw.items()}
                if any(row.values()):  # a blank spreadsheet row is skipped
                    rows.append((n, row))
    except UnicodeDecodeError:
        raise ManifestError(f"{what} {m}: not UTF-8 text") from None
    except csv.Error as exc:  # e.g. a cell over the csv module's 128 KiB field limit
        raise ManifestError(f"{what} {m}, line {reader.line_num if reader else 1}: {exc}") from None
    return ManifestTable(m, fields, rows)


def header_delimiter(header: str, candidates: tuple[str, ...] = (",", ";", "\t")) -> str:
    """The separator that splits ``header`` into the most fields (the first candidate on a tie or one column).

    Why the header and not :class:`csv.Sniffer`: the sniffer also guesses the quoting from the data
    rows and, on real text (MELD utterances with doubled quotes), guessed ``doublequote=False`` and
    split rows wrongly. Column names never contain separators, so the header is a reliable witness.
    Shared with the prediction/reference readers of ``emollama evaluate``.
    """
    best, best_count = candidates[0], 1
    for delim in candidates:
        count = len(next(csv.reader([header], delimiter=delim)))
        if count > best_count:
            best, best_count = delim, count
    return best
