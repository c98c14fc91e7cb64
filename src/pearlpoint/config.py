"""Settings: defaults < config file (TOML or YAML) < PEARL_* environment variables < CLI flags.

The config file is found from an explicit path, else ``PEARL_CONFIG``, else ``./pearl.toml`` /
``./pearl.yaml`` in the working directory. Unknown keys and wrong types are reported with the file
and the key.
"""

from __future__ import annotations

import os
import tomllib
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import Field, SecretStr, ValidationError
from pydantic.fields import FieldInfo
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from pearlpoint.errors import ConfigError

BackendName = Literal["embedded", "openai", "hf"]
DEFAULT_CACHE = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "pearlpoint" / "llm-cache.sqlite"


def cache_dir() -> Path:
    """pearlpoint's cache folder (read at call time, so XDG_CACHE_HOME set later still counts)."""
    return Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "pearlpoint"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="PEARL_", extra="forbid", validate_default=True)

    # generator
    model: BackendName = Field("embedded", description="backend: embedded | openai | hf")
    model_name: str | None = Field(None, description="served model name (openai), directory (hf) or .gguf (embedded)")
    base_url: str | None = Field(None, description="OpenAI-compatible base URL, e.g. http://127.0.0.1:8000/v1")
    api_key: SecretStr | None = None
    # judge (defaults to the generator)
    judge_model: BackendName | None = None
    judge_model_name: str | None = None
    judge_base_url: str | None = None
    judge_api_key: SecretStr | None = None
    # reliability
    concurrency: int = Field(8, ge=1, le=1024)
    timeout_s: float = Field(120.0, gt=0)
    max_retries: int = Field(4, ge=0, le=20)
    cache: bool = True
    cache_path: Path = DEFAULT_CACHE
    budget_calls: int | None = Field(None, ge=1)
    budget_tokens: int | None = Field(None, ge=1)
    # sampling
    temperature: float = Field(0.0, ge=0.0, le=2.0)
    max_tokens: int = Field(512, ge=1)
    # embedded backend
    n_ctx: int = Field(4096, ge=512)
    n_threads: int | None = None
    # CSA
    lang: Literal["auto", "en", "zh"] = "auto"
    policy_file: Path | None = None
    payoffs_file: Path | None = None
    assessor: Literal["embedded", "llm", "cascade"] = "embedded"

    @classmethod
    def settings_customise_sources(cls, settings_cls: type[BaseSettings],
                                   init_settings: PydanticBaseSettingsSource,
                                   env_settings: PydanticBaseSettingsSource,
                                   dotenv_settings: PydanticBaseSettingsSource,
                                   file_secret_settings: PydanticBaseSettingsSource,
                                   ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (init_settings, env_settings, _FileSource(settings_cls))

    def judge_settings(self) -> Settings:
        """The judge's view: judge_* fields where set, otherwise the generator's."""
        upd: dict[str, Any] = {}
        if self.judge_model is not None:
            upd["model"] = self.judge_model
            upd["model_name"] = self.judge_model_name
            upd["base_url"] = self.judge_base_url or (self.base_url if self.judge_model == self.model else None)
            upd["api_key"] = self.judge_api_key or self.api_key
        else:
            for k in ("model_name", "base_url", "api_key"):
                v = getattr(self, f"judge_{k}")
                if v is not None:
                    upd[k] = v
        return self.model_copy(update=upd)

    def masked(self) -> dict[str, Any]:
        """The effective configuration with secrets masked, for display."""
        out = self.model_dump(mode="json")
        for k in ("api_key", "judge_api_key"):
            v = getattr(self, k)
            if v is not None:
                raw = v.get_secret_value()
                out[k] = ("****" + raw[-4:]) if len(raw) > 8 else "****"
        return out


_CONFIG_FILE: Path | None = None


def _read_file(path: Path) -> dict[str, Any]:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read config file: {exc.strerror}") from exc
    try:
        if path.suffix in (".yaml", ".yml"):
            data = yaml.safe_load(text) or {}
        else:
            data = tomllib.loads(text)
    except (yaml.YAMLError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"{path}: not valid {'YAML' if path.suffix in ('.yaml', '.yml') else 'TOML'}: {exc}") from exc
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: the config file must hold a table/mapping of settings")
    # Allow a [pearl] table so the file can be shared with other tools.
    if "pearl" in data and isinstance(data["pearl"], dict):
        data = data["pearl"]
    known = set(Settings.model_fields)
    for key in data:
        if key not in known:
            raise ConfigError(f"{path}: unknown setting '{key}' (known: {', '.join(sorted(known))})")
    return data


class _FileSource(PydanticBaseSettingsSource):
    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        return None, field_name, False

    def __call__(self) -> dict[str, Any]:
        return _read_file(_CONFIG_FILE) if _CONFIG_FILE is not None else {}


def find_config_file(explicit: str | Path | None = None) -> Path | None:
    if explicit:
        p = Path(explicit).expanduser()
        if not p.is_file():
            raise ConfigError(f"config file not found: {p}")
        return p
    env = os.environ.get("PEARL_CONFIG")
    if env:
        p = Path(env).expanduser()
        if not p.is_file():
            raise ConfigError(f"config file not found: {p} (from PEARL_CONFIG)")
        return p
    for name in ("pearl.toml", "pearl.yaml", "pearl.yml"):
        if Path(name).is_file():
            return Path(name)
    return None


def get_settings(config_file: str | Path | None = None, **overrides: Any) -> Settings:
    """Build the effective settings; ``overrides`` (CLI flags) that are None are ignored."""
    global _CONFIG_FILE
    path = find_config_file(config_file)
    _CONFIG_FILE = path
    clean = {k: v for k, v in overrides.items() if v is not None}
    try:
        return Settings(**clean)
    except ValidationError as exc:
        errs = []
        for e in exc.errors()[:5]:
            key = ".".join(str(p) for p in e["loc"])
            errs.append(f"'{key}': {e['msg']}")
        where = f"{path}: " if path else ""
        raise ConfigError(f"{where}invalid setting {'; '.join(errs)} "
                          "(sources: config file, PEARL_* environment, command-line flags)") from exc
    finally:
        _CONFIG_FILE = None
