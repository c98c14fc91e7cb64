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


def test_heads_from_an_older_feature_set_read_their_own_columns() -> None:
    # a cue added to the feature vector must not shift the columns of heads trained before it
    import numpy as np

    from pearlpoint.risk import features as F
    from pearlpoint.risk.embedded import feature_columns

    assert feature_columns(list(F.FEATURE_NAMES)) is None and feature_columns(None) is None
    older = [n for n in F.FEATURE_NAMES if n != "distress_other"]
    cols = feature_columns(older)
    assert cols is not None and len(cols) == len(older)
    assert [F.FEATURE_NAMES[i] for i in cols] == older
    assert np.all(np.diff(cols) > 0)  # same relative order
    with pytest.raises(ConfigError, match="does not compute"):
        feature_columns([*older, "a_feature_from_the_future"])
