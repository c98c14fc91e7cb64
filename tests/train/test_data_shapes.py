"""A training row of the wrong shape is one InputError naming file, line and field, never a TypeError."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pearlpoint.errors import InputError
from pearlpoint.train.data import read_training_rows

GOOD_SFT = {"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"}]}
GOOD_PREF = {"prompt": [{"role": "user", "content": "hi"}], "chosen": [{"role": "assistant", "content": "a"}],
             "rejected": "b"}


def write_rows(tmp_path: Path, rows: list[object]) -> Path:
    path = tmp_path / "rows.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


@pytest.mark.parametrize("messages,needle", [
    (3, "non-empty list of {role, content} messages, got int 3"),
    ("hello", "got str"),
    ([], "got an empty list"),
    (["hi", "there"], "message 0 must be an object with role and content, got str"),
    ([{"role": "user", "content": "hi"}, 7], "message 1 must be an object"),
    ([{"content": "hi"}, {"role": "assistant", "content": "x"}], "message 0 has no 'role'"),
    ([{"role": "user"}, {"role": "assistant", "content": "x"}], "message 0 has no 'content'"),
    ([{"role": "user", "content": "hi"}, {"role": "assistant", "content": ["x"]}],
     "message 1 has a non-text (list) 'content'"),
])
def test_bad_sft_messages_name_file_line_and_field(tmp_path: Path, messages: object, needle: str) -> None:
    path = write_rows(tmp_path, [GOOD_SFT, {"messages": messages}])
    with pytest.raises(InputError) as info:
        read_training_rows(path, "sft")
    err = info.value
    assert (err.path, err.line, err.field) == (str(path), 2, "messages")
    assert needle in str(err)
    assert str(err).startswith(f"{path}:2, field 'messages': ")


@pytest.mark.parametrize("method", ["dpo", "orpo"])
@pytest.mark.parametrize("field,value,needle", [
    ("prompt", 3, "must be text or a list of {role, content} messages, got int 3"),
    ("chosen", [1, 2], "message 0 must be an object"),
    ("rejected", [{"role": "assistant"}], "message 0 has no 'content'"),
    ("rejected", None, "got NoneType null"),
])
def test_bad_preference_fields_name_the_field(tmp_path: Path, method: str, field: str, value: object,
                                              needle: str) -> None:
    path = write_rows(tmp_path, [GOOD_PREF, {**GOOD_PREF, field: value}])
    with pytest.raises(InputError) as info:
        read_training_rows(path, method)
    assert (info.value.line, info.value.field) == (2, field)
    assert needle in str(info.value)


def test_sft_text_must_be_text(tmp_path: Path) -> None:
    with pytest.raises(InputError, match=r"field 'text': must be text, got list"):
        read_training_rows(write_rows(tmp_path, [{"text": ["a"]}]), "sft")


def test_well_formed_rows_still_load(tmp_path: Path) -> None:
    rows = read_training_rows(write_rows(tmp_path, [GOOD_SFT, {"prompt": "q", "completion": "a"}]), "sft")
    assert rows[0] == {"prompt": [{"role": "user", "content": "hi"}],
                       "completion": [{"role": "assistant", "content": "hello"}]}
    assert rows[1] == {"prompt": "q", "completion": "a"}
    pref = read_training_rows(write_rows(tmp_path, [GOOD_PREF]), "dpo")
    assert pref[0]["rejected"] == "b" and pref[0]["chosen"] == [{"role": "assistant", "content": "a"}]
