"""`_optional`: a missing sibling or extra degrades the demo; a broken sibling is a real error."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from pearlpoint.demo import _optional


@pytest.fixture()
def pkg_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.syspath_prepend(str(tmp_path))
    yield tmp_path
    for name in [m for m in sys.modules if m.startswith("pp_optional_probe")]:
        del sys.modules[name]


def test_missing_module_degrades(pkg_dir: Path) -> None:
    mod, why = _optional("pp_optional_probe_absent")
    assert mod is None and why is not None
    assert "pp_optional_probe_absent unavailable (ModuleNotFoundError" in why


def test_missing_optional_extra_degrades(pkg_dir: Path) -> None:
    (pkg_dir / "pp_optional_probe_extra.py").write_text("from pp_optional_probe_no_such_extra import thing\n")
    mod, why = _optional("pp_optional_probe_extra")
    assert mod is None and "pp_optional_probe_no_such_extra" in (why or "")


def test_present_module_loads(pkg_dir: Path) -> None:
    (pkg_dir / "pp_optional_probe_ok.py").write_text("VALUE = 42\n")
    mod, why = _optional("pp_optional_probe_ok")
    assert why is None and mod.VALUE == 42


@pytest.mark.parametrize("body, exc", [("x = 1 / 0\n", ZeroDivisionError),
                                       ("def broken(:\n", SyntaxError),
                                       ("raise RuntimeError('bug at import')\n", RuntimeError)])
def test_a_real_import_bug_propagates(pkg_dir: Path, body: str, exc: type[BaseException]) -> None:
    name = f"pp_optional_probe_bug_{exc.__name__.lower()}"
    (pkg_dir / f"{name}.py").write_text(body)
    with pytest.raises(exc):
        _optional(name)
