"""pearlpoint: Constructive Safety Alignment (CSA) for language models.

The top-level names are imported lazily so that ``import pearlpoint`` and ``pearl --help`` stay fast
and do not pull in torch or llama.cpp.
"""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"

_LAZY = {
    "respond": ("pearlpoint.lingo", "respond"),
    "respond_async": ("pearlpoint.lingo", "respond_async"),
    "assess": ("pearlpoint.risk", "assess"),
    "solve": ("pearlpoint.game", "solve"),
    "get_model": ("pearlpoint.llm", "get_model"),
    "Settings": ("pearlpoint.config", "Settings"),
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        module, attr = _LAZY[name]
        return getattr(importlib.import_module(module), attr)
    raise AttributeError(f"module 'pearlpoint' has no attribute {name!r}")


__all__ = ["__version__", *_LAZY]
