"""Docs that work when pasted: every `steerbench` command in the README and docs/ parses with
today's command line (flags renamed or removed since a page was written fail here), and none
uses a deprecated spelling."""

from __future__ import annotations

import contextlib
import io
import re
import shlex
from pathlib import Path

import pytest

from steerbench.cli import build_parser

ROOT = Path(__file__).resolve().parents[1]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
COMMAND = re.compile(r"^\s*(?:\.venv/bin/)?steerbench\s+(.*)$")


def commands(page: Path) -> list[str]:
    """The steerbench command lines in the page's fenced code blocks, continuations joined."""
    out, in_code, text = [], False, page.read_text()
    for line in text.replace("\\\n", " ").splitlines():
        if line.lstrip().startswith("```"):
            in_code = not in_code
            continue
        m = COMMAND.match(line) if in_code else None
        synopsis = "..." in line or "[--" in line  # a usage line, not a command to paste
        if m and not synopsis and "$" not in line and "<" not in line:
            out.append(m[1].split(" #", 1)[0].strip())
    return out


CASES = [(p.relative_to(ROOT).as_posix(), c) for p in PAGES for c in commands(p)]


def test_the_docs_have_commands_to_check():
    assert len(CASES) > 20


@pytest.mark.parametrize("page, command", CASES)
def test_a_documented_command_parses(page, command):
    err = io.StringIO()
    with contextlib.redirect_stderr(err):
        try:
            build_parser().parse_args(shlex.split(command))
        except SystemExit as exc:
            if exc.code:  # --help exits 0
                pytest.fail(f"{page}: `steerbench {command}`: {err.getvalue().strip()}")
    assert "deprecated" not in err.getvalue(), f"{page}: `steerbench {command}`: {err.getvalue().strip()}"
