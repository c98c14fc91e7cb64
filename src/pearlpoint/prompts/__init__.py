"""Prompt templates as files, rendered by a sandboxed jinja2 with strict undefined variables.

A user's text is always passed in as a variable; jinja2 inserts it as data and never parses it as a
template, so a query holding ``{{ x }}`` or ``{response}`` reaches the model verbatim.
"""

from __future__ import annotations

import functools
import re
from pathlib import Path
from typing import Any

from jinja2 import FileSystemLoader, StrictUndefined, TemplateNotFound, UndefinedError
from jinja2.sandbox import SandboxedEnvironment

from pearlpoint.errors import PearlError

TEMPLATE_DIR = Path(__file__).parent / "templates"
LANGS = ("en", "zh")
_CJK = re.compile(r"[\u4e00-\u9fff\u3400-\u4dbf]")


@functools.cache
def _env() -> SandboxedEnvironment:
    env = SandboxedEnvironment(loader=FileSystemLoader(str(TEMPLATE_DIR)), undefined=StrictUndefined,
                               autoescape=False, keep_trailing_newline=False, trim_blocks=True,
                               lstrip_blocks=True)
    env.filters["bullets"] = lambda items: "\n".join(f"- {x}" for x in items) if items else "- (none)"
    return env


def detect_language(text: str) -> str:
    """'zh' when CJK characters make up a noticeable share of the letters, else 'en'."""
    if not text:
        return "en"
    cjk = len(_CJK.findall(text))
    letters = sum(ch.isalpha() for ch in text) or 1
    return "zh" if cjk / letters > 0.2 or cjk >= 8 else "en"


def _template(name: str, lang: str) -> Any:
    lang = lang if lang in LANGS else "en"
    try:
        return _env().get_template(f"{lang}/{name}.j2")
    except TemplateNotFound:
        try:
            return _env().get_template(f"en/{name}.j2")
        except TemplateNotFound as exc:
            raise PearlError(f"prompt template '{name}' not found in {TEMPLATE_DIR}") from exc


def render(name: str, lang: str = "en", **context: Any) -> str:
    try:
        return _template(name, lang).render(**context).strip()
    except UndefinedError as exc:
        raise PearlError(f"prompt template '{name}' ({lang}): {exc}") from exc


def render_messages(name: str, lang: str = "en", **context: Any) -> list[Any]:
    """Render a template with optional ``system`` and ``user`` blocks into chat messages."""
    from pearlpoint.llm.base import Message

    tpl = _template(name, lang)
    if "user" not in tpl.blocks:
        return [Message(role="user", content=render(name, lang, **context))]
    ctx = tpl.new_context(context)
    out = []
    try:
        for role in ("system", "user"):
            if role in tpl.blocks:
                text = "".join(tpl.blocks[role](ctx)).strip()
                if text:
                    out.append(Message(role=role, content=text))
    except UndefinedError as exc:
        raise PearlError(f"prompt template '{name}' ({lang}): {exc}") from exc
    return out


def available_templates() -> dict[str, list[str]]:
    return {lang: sorted(p.stem for p in (TEMPLATE_DIR / lang).glob("*.j2")) for lang in LANGS}
