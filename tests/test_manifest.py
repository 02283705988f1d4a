"""The one CSV manifest reader: separators, BOM, quoting, blank rows, errors with line numbers."""

from __future__ import annotations

from pathlib import Path

import pytest

from emollama.errors import ManifestError
from emollama.manifest import read_table


@pytest.mark.parametrize("sep", [",", ";", "\t"])
def test_separator_from_the_header(tmp_path: Path, sep: str):
    m = tmp_path / "m.csv"
    m.write_text(f"\ufeffPath{sep} Label \na.mp4{sep}happy\r\n\r\nb.mp4{sep}sad\n", encoding="utf-8")
    table = read_table(m)
    assert table.fields == ["path", "label"]
    assert [(n, r["path"], r["label"]) for n, r in table.rows] == [(2, "a.mp4", "happy"), (4, "b.mp4", "sad")]


def test_quoted_cells_keep_separators_and_doubled_quotes(tmp_path: Path):
    """Real MELD lines: a doubled quote inside a quoted cell, commas and semicolons in the text.

    csv.Sniffer guessed ``doublequote=False`` on such a file and split the row (the reader used to
    reject MELD dev at line 96)."""
    m = tmp_path / "m.csv"
    m.write_text('text,label\n"Hey, what\'s up?",neutral\n"""Wanted. Female roommate; non-smoker."" Nice!",joy\n'
                 "Yeah?,neutral\n", encoding="utf-8")
    rows = [r for _, r in read_table(m).rows]
    assert rows[1] == {"text": '"Wanted. Female roommate; non-smoker." Nice!', "label": "joy"}
    assert [r["label"] for r in rows] == ["neutral", "joy", "neutral"]


def test_errors_name_the_file_and_line(tmp_path: Path):
    with pytest.raises(ManifestError, match="manifest .*nope.csv: no such file"):
        read_table(tmp_path / "nope.csv")
    bad = tmp_path / "bad.csv"
    bad.write_text("path,subtitle\na.mp4,hello, world\n")
    with pytest.raises(ManifestError, match="line 2: more fields"):
        read_table(bad)
    latin = tmp_path / "latin.csv"
    latin.write_bytes("path\ncaf\xe9.mp4\n".encode("latin-1"))
    with pytest.raises(ManifestError, match="not UTF-8"):
        read_table(latin, what="labels file")
