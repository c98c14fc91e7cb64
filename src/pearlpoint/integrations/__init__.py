"""Adapters that plug pearlpoint's CSA decision into other frameworks (each behind its own extra).

The core package never imports these; an adapter imports its framework lazily through
:func:`require`, so a missing extra is one clear line instead of an ImportError traceback.
"""

from __future__ import annotations

import importlib
from types import ModuleType

from pearlpoint.errors import ConfigError


def require(extra: str, module: str) -> ModuleType:
    """Import ``module`` or raise ConfigError naming the ``pip install 'pearlpoint[extra]'`` that fixes it."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise ConfigError(f"{module} is not installed ({exc.name or exc}); "
                          f"pip install 'pearlpoint[{extra}]'") from None


__all__ = ["require"]
