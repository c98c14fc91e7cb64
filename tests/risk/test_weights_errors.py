"""A missing or corrupt weights file is one clear error naming the file, never a traceback."""

from __future__ import annotations

import shutil
from importlib import resources
from pathlib import Path

import pytest

from pearlpoint.errors import ConfigError
from pearlpoint.risk.heads import CARD_FILE, WEIGHTS_FILE, RiskHeads


def _copy(tmp_path: Path) -> Path:
    src = Path(str(resources.files("pearlpoint.risk").joinpath("weights")))
    for name in (WEIGHTS_FILE, CARD_FILE):
        shutil.copy(src / name, tmp_path / name)
    return tmp_path


def test_truncated_weights_name_the_file(tmp_path: Path) -> None:
    d = _copy(tmp_path)
    (d / WEIGHTS_FILE).write_bytes((d / WEIGHTS_FILE).read_bytes()[:500])
    with pytest.raises(ConfigError, match=rf"{WEIGHTS_FILE}.*cannot be read"):
        RiskHeads.load(d)


def test_a_card_that_is_not_json_names_the_file(tmp_path: Path) -> None:
    d = _copy(tmp_path)
    (d / CARD_FILE).write_text("{nope", encoding="utf-8")
    with pytest.raises(ConfigError, match="cannot be read"):
        RiskHeads.load(d)


def test_missing_weights_say_how_to_train(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not found"):
        RiskHeads.load(tmp_path)
