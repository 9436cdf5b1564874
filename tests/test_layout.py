"""The tests' layout: test files sit in folders named as flow/'s stages, each a package,
and share code only through tests/helpers/ and conftest.py, never by importing each other."""

from __future__ import annotations

import re

from tests.conftest import ROOT

TESTS = ROOT / "tests"


def test_no_test_file_imports_another() -> None:
    cross = re.compile(r"^\s*(from|import)\s+tests\.(\w+\.)*test_\w+", re.M)
    hits = [f"{p.relative_to(ROOT)}: {m.group(0).strip()}" for p in sorted(TESTS.rglob("*.py"))
            for m in cross.finditer(p.read_text())]
    assert hits == [], "import shared helpers from tests.helpers instead:\n" + "\n".join(hits)


def test_test_folders_are_packages() -> None:
    folders = {p.parent for p in TESTS.rglob("test_*.py")}
    assert sorted(str(f.relative_to(ROOT)) for f in folders if not (f / "__init__.py").is_file()) == []
    assert [p.name for p in TESTS.glob("test_*.py")] == ["test_layout.py"]  # the rest by stage
