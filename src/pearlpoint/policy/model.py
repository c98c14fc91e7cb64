"""Typed policy objects: the taxonomy, per-category guidelines, and lookup by id or name."""

from __future__ import annotations

import difflib
import unicodedata

from pydantic import BaseModel, Field, field_validator

from pearlpoint.errors import PearlError

LANGS = ("en", "zh")


def _norm_lang(lang: str | None) -> str:
    lang = (lang or "en").lower()
    return "zh" if lang.startswith("zh") or lang == "cn" else "en"


class LocalizedText(BaseModel):
    """A short text in English and Chinese; falls back to English when Chinese is missing."""

    en: str = ""
    zh: str = ""

    def get(self, lang: str | None = "en") -> str:
        value = getattr(self, _norm_lang(lang))
        return value or self.en or self.zh

    def __getitem__(self, lang: str) -> str:
        return self.get(lang)


class Guideline(BaseModel):
    """What a response must never contain, what it may contain, and which constructive moves fit."""

    must_not: list[str] = Field(default_factory=list)
    may: list[str] = Field(default_factory=list)
    constructive_moves: list[str] = Field(default_factory=list)


class LocalizedGuideline(BaseModel):
    en: Guideline = Field(default_factory=Guideline)
    zh: Guideline = Field(default_factory=Guideline)

    def get(self, lang: str | None = "en") -> Guideline:
        g = getattr(self, _norm_lang(lang))
        if not (g.must_not or g.may or g.constructive_moves):
            return self.en
        return g

    def __getitem__(self, lang: str) -> Guideline:
        return self.get(lang)


_HEADINGS = {
    "en": ("Never give", "May give", "Constructive moves"),
    "zh": ("绝不提供", "可以提供", "建设性做法"),
}


class Category(BaseModel):
    """One level-2 risk category. ``severity`` (0-4) is how bad the worst realistic outcome is."""

    id: str
    group: str
    name: str
    name_zh: str = ""
    severity: int = Field(2, ge=0, le=4)
    aliases: list[str] = Field(default_factory=list)
    description: LocalizedText = Field(default_factory=LocalizedText)
    guideline: LocalizedGuideline = Field(default_factory=LocalizedGuideline)

    @field_validator("id")
    @classmethod
    def _id_shape(cls, v: str) -> str:
        v = v.strip()
        if not v or any(c.isspace() for c in v):
            raise ValueError(f"category id must be a non-empty word without spaces, got {v!r}")
        return v

    def display_name(self, lang: str | None = "en") -> str:
        return (self.name_zh or self.name) if _norm_lang(lang) == "zh" else self.name

    def guideline_text(self, lang: str | None = "en") -> str:
        """The guideline as a compact bulleted text block, ready to put into a prompt."""
        lang = _norm_lang(lang)
        g = self.guideline.get(lang)
        h_not, h_may, h_moves = _HEADINGS[lang]
        lines = [f"{self.display_name(lang)}: {self.description.get(lang)}"]
        for head, items in ((h_not, g.must_not), (h_may, g.may), (h_moves, g.constructive_moves)):
            if items:
                lines.append(f"{head}:")
                lines.extend(f"- {item}" for item in items)
        return "\n".join(lines)


class Group(BaseModel):
    id: str
    name: str
    name_zh: str = ""


def _key(text: str) -> str:
    text = unicodedata.normalize("NFKC", text).casefold().strip()
    return "".join(ch for ch in text if ch.isalnum())


class Policy(BaseModel):
    """The whole taxonomy: groups, categories, and the level/intent/form vocabularies."""

    version: int = 1
    levels: dict[str, LocalizedText] = Field(default_factory=dict)
    intents: dict[str, LocalizedText] = Field(default_factory=dict)
    interaction_forms: dict[str, LocalizedText] = Field(default_factory=dict)
    groups: dict[str, Group] = Field(default_factory=dict)
    categories: list[Category] = Field(default_factory=list)
    source: str = "default"

    def model_post_init(self, __context: object) -> None:
        self._index: dict[str, Category] = {}
        for cat in self.categories:
            for label in (cat.id, cat.name, cat.name_zh, *cat.aliases):
                if label and _key(label) and _key(label) not in self._index:
                    self._index[_key(label)] = cat
        for cat in self.categories:  # ids win over aliases of other categories
            self._index[_key(cat.id)] = cat

    @property
    def ids(self) -> list[str]:
        return [c.id for c in self.categories]

    def get(self, name_or_id: str) -> Category | None:
        """Like :meth:`find` but returns None instead of raising."""
        if not isinstance(name_or_id, str):
            return None
        return self._index.get(_key(name_or_id))

    def find(self, name_or_id: str) -> Category:
        """Look a category up by id, English or Chinese name, or alias (case and punctuation ignored)."""
        cat = self.get(name_or_id)
        if cat is not None:
            return cat
        labels = {}
        for c in self.categories:
            for label in (c.id, c.name, c.name_zh):
                if label:
                    labels[label] = c.id
        close = difflib.get_close_matches(str(name_or_id), list(labels), n=5, cutoff=0.4)
        if not close:
            key = _key(str(name_or_id))
            close = [lbl for lbl in labels if key and (key in _key(lbl) or _key(lbl) in key)][:5]
        hint = f"; did you mean: {', '.join(dict.fromkeys(close))}?" if close else ""
        raise PearlError(f"unknown risk category {name_or_id!r}{hint} (known ids: {', '.join(self.ids)})")

    def in_group(self, group: str) -> list[Category]:
        return [c for c in self.categories if c.group == group]

    @property
    def risky_categories(self) -> list[Category]:
        return [c for c in self.categories if c.id != "none"]
