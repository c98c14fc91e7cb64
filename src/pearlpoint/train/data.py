"""Load an exported JSONL file as a ``datasets.Dataset`` shaped for one TRL trainer.

Export writes provenance under ``meta``; trainers only get the columns they use. SFT rows given as
``messages`` are split into a conversational prompt/completion pair so the loss falls on the
assistant's answer only (the user's words are not something the model should learn to write).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from pearlpoint.errors import InputError, PearlError

REQUIRED = {
    "sft": ({"messages"}, {"prompt", "completion"}, {"text"}),
    "dpo": ({"prompt", "chosen", "rejected"},),
    "orpo": ({"prompt", "chosen", "rejected"},),
}


def _split_messages(row: dict[str, Any]) -> dict[str, Any]:
    msgs = row["messages"]
    last = max((i for i, m in enumerate(msgs) if m.get("role") == "assistant"), default=None)
    if last is None or last == 0:
        return {"prompt": msgs, "completion": []}
    return {"prompt": msgs[:last], "completion": [msgs[last]]}


def _check_messages(value: Any, field: str, path: Path, line: int) -> None:
    """A conversation is a list of {role, content} objects with text in both; say which one is wrong."""
    if not isinstance(value, list) or not value:
        got = "an empty list" if isinstance(value, list) else f"{type(value).__name__} {json.dumps(value)[:40]}"
        raise InputError(f"must be a non-empty list of {{role, content}} messages, got {got}",
                         path=path, line=line, field=field)
    for i, m in enumerate(value):
        if not isinstance(m, dict):
            raise InputError(f"message {i} must be an object with role and content, got "
                             f"{type(m).__name__} {json.dumps(m)[:40]}", path=path, line=line, field=field)
        for key in ("role", "content"):
            if not isinstance(m.get(key), str):
                problem = "has no" if key not in m else f"has a non-text ({type(m[key]).__name__})"
                raise InputError(f"message {i} {problem} '{key}'", path=path, line=line, field=field)


def _check_field(value: Any, field: str, path: Path, line: int) -> None:
    """prompt/completion/chosen/rejected/text: plain text, or a conversation (list of messages)."""
    if isinstance(value, str):
        return
    if isinstance(value, list) and field != "text":
        _check_messages(value, field, path, line)
        return
    want = "text" if field == "text" else "text or a list of {role, content} messages"
    raise InputError(f"must be {want}, got {type(value).__name__} {json.dumps(value)[:40]}",
                     path=path, line=line, field=field)


def _clean_message(m: dict[str, Any]) -> dict[str, str]:
    out = {"role": str(m.get("role")), "content": str(m.get("content", ""))}
    if m.get("reasoning_content"):  # export --reasoning field: for templates that render it
        out["reasoning_content"] = str(m["reasoning_content"])
    return out


def read_training_rows(path: str | Path, method: str) -> list[dict[str, Any]]:
    """Read and check the rows; a wrong row names its file and line."""
    path = Path(path)
    if method not in REQUIRED:
        raise PearlError(f"unknown training method {method!r}; choose sft, orpo or dpo")
    if not path.is_file():
        raise PearlError(f"{path}: no such data file")
    shapes = REQUIRED[method]
    rows: list[dict[str, Any]] = []
    with open(path, "rb") as fh:
        for line_no, raw in enumerate(fh, start=1):
            if not raw.strip():
                continue
            try:
                obj = json.loads(raw)
            except (json.JSONDecodeError, UnicodeDecodeError) as exc:
                raise InputError(f"not a JSON object ({exc})", path=path, line=line_no) from exc
            if not isinstance(obj, dict):
                raise InputError("not a JSON object", path=path, line=line_no)
            shape = next((s for s in shapes if s <= obj.keys()), None)
            if shape is None:
                want = " or ".join("/".join(sorted(s)) for s in shapes)
                article = "an" if method[0] in "aeiou" else "a"
                raise InputError(f"{article} {method} row needs {want} (export with `pearl export --format {method}`)",
                                 path=path, line=line_no)
            row = {k: obj[k] for k in shape}
            for key, value in row.items():
                if key == "messages":
                    _check_messages(value, key, path, line_no)
                else:
                    _check_field(value, key, path, line_no)
            if method == "sft" and "messages" in row:
                row = _split_messages(row)
                if not row["completion"]:
                    raise InputError("conversation has no assistant answer to learn", path=path,
                                     line=line_no, field="messages")
            for key in ("prompt", "completion", "chosen", "rejected"):
                if isinstance(row.get(key), list):
                    row[key] = [_clean_message(m) for m in row[key]]
            rows.append(row)
    if not rows:
        raise InputError("no training rows", path=path)
    return rows


def load_training_dataset(path: str | Path, method: str):
    from datasets import Dataset  # noqa: PLC0415

    return Dataset.from_list(read_training_rows(path, method))
