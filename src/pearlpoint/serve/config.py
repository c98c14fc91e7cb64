"""The proxy's configuration file: one pydantic model, loaded from YAML or TOML.

Everything the proxy needs lives here (upstream, exposed models, client keys, policy, payoffs,
refine, limits, audit) so that a reload (SIGHUP or ``POST /admin/reload``) is one atomic swap of a
validated object. A bad file never replaces a good running config: it is rejected with a message
naming the file and the field.
"""

from __future__ import annotations

import os
import re
import tomllib
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field, ValidationError, field_validator, model_validator

from pearlpoint.errors import ConfigError

_ENV_REF = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


class UpstreamConfig(BaseModel):
    """The model the proxy steers. Any backend of ``pearlpoint.llm.get_model``."""

    model: Literal["embedded", "openai", "hf"] = "embedded"
    base_url: str | None = None
    model_name: str | None = None
    api_key: str | None = Field(None, description="upstream key; may be '${ENV_VAR}'; never leaves the server")
    timeout_s: float = Field(60.0, gt=0)
    max_retries: int = Field(1, ge=0, le=10)
    concurrency: int = Field(64, ge=1, le=4096)

    @model_validator(mode="after")
    def _openai_needs_url(self) -> UpstreamConfig:
        if self.model == "openai" and not self.base_url:
            raise ValueError("upstream.base_url is required when upstream.model is 'openai'")
        return self


class ClientKey(BaseModel):
    """A client API key, stored as a hash: ``sha256:<hex>`` or ``pbkdf2_sha256$<iter>$<salt>$<hex>``."""

    name: str
    hash: str
    rate_limit_rpm: float | None = Field(None, gt=0, description="requests per minute; None = auth.default_rpm")
    admin: bool = False

    @field_validator("hash")
    @classmethod
    def _known_scheme(cls, v: str) -> str:
        v = v.strip()
        if v.startswith("sha256:") and re.fullmatch(r"sha256:[0-9a-f]{64}", v):
            return v
        if v.startswith("pbkdf2_sha256$") and len(v.split("$")) == 4:
            return v
        raise ValueError("must be 'sha256:<64 hex>' or 'pbkdf2_sha256$<iterations>$<salt>$<hex>' "
                         "(make one with `pearl serve --hash-key KEY`); raw keys are not accepted")


class AuthConfig(BaseModel):
    keys: list[ClientKey] = Field(default_factory=list)
    default_rpm: float = Field(600.0, gt=0)
    burst: int = Field(60, ge=1, description="requests a key may send at once before the rate applies")
    allow_anonymous: bool = Field(False, description="serve without a key when no keys are configured")
    failed_auth_per_minute: float = Field(
        30.0, gt=0, description="wrong or missing keys one client IP may send per minute before it gets 429")
    failed_auth_burst: int = Field(10, ge=1, description="wrong keys one IP may send at once before that rate applies")
    rejected_cache_size: int = Field(
        4096, ge=0, description="recently rejected keys remembered (by sha256) so a repeated bad key costs no pbkdf2")


class LimitsConfig(BaseModel):
    max_body_bytes: int = Field(1_000_000, ge=1024)
    max_json_depth: int = Field(64, ge=4, le=10_000, description="deepest JSON nesting a body may have; "
                                "checked by a byte scan before parsing (deeper bodies get 400)")
    max_messages: int = Field(200, ge=1)
    max_message_chars: int = Field(50_000, ge=1)
    max_tokens_cap: int = Field(4096, ge=1)
    default_max_tokens: int = Field(512, ge=1)
    default_temperature: float = Field(0.7, ge=0.0, le=2.0, description="when a request does not say")


class RefineConfig(BaseModel):
    """Lingo-BP refinement at serving time. Off by default; never for levels not listed."""

    steps: int = Field(0, ge=0, le=10)
    levels: list[Literal["R0", "R1", "R2"]] = Field(default_factory=lambda: ["R1", "R2"])
    judge_model: Literal["embedded", "openai", "hf"] | None = None
    judge_base_url: str | None = None
    judge_model_name: str | None = None
    judge_api_key: str | None = None


class AuditConfig(BaseModel):
    enabled: bool = True
    path: str = "pearl-audit.sqlite"
    store_text: bool = Field(False, description="store full conversation text; only a hash by default")
    max_queue: int = Field(10_000, ge=1, description="entries waiting for the disk; beyond it the oldest is "
                                                     "dropped and counted in pearl_audit_dropped_total")
    file_mode: int = Field(0o600, description="permissions of a newly created audit database (and its -wal/-shm); "
                                              "write it quoted, e.g. '0640'")
    dir_mode: int = Field(0o700, description="permissions of audit directories the proxy creates (existing "
                                             "directories are left as they are)")

    @field_validator("file_mode", "dir_mode", mode="before")
    @classmethod
    def _octal(cls, v: object) -> object:
        """'0600', '600' and '0o600' are octal; an int (YAML reads an unquoted 0600 as octal) is taken as is."""
        if isinstance(v, str):
            try:
                v = int(v.strip().removeprefix("0o"), 8)
            except ValueError:
                raise ValueError(f"must be an octal permission such as '0600', got {v!r}") from None
        if isinstance(v, int) and not 0 <= v <= 0o777:
            raise ValueError(f"must be between 0000 and 0777, got {oct(v)}")
        return v


class CSAConfig(BaseModel):
    assessor: Literal["embedded", "llm", "cascade"] = "embedded"
    policy_file: str | None = None
    payoffs_file: str | None = None
    beta: float = Field(2.0, gt=0)
    steer: bool = True
    leak_filter: bool = True
    guard: bool = Field(True, description="check / compose answers with the guard stage (see guard_file)")
    guard_file: str | None = Field(None, description="guard policy YAML merged over the packaged default")
    assess_workers: int = Field(2, ge=1, le=64, description="threads that assess (and solve) requests")
    max_batch: int = Field(64, ge=1, le=1024, description="most requests embedded in one assessor call")


class MetricsConfig(BaseModel):
    """Access to ``/metrics`` (see serve/metrics_access.py and docs/serve-security.md)."""

    key_hash: str | None = Field(None, description="hash of a bearer key Prometheus must send for /metrics "
                                                   "('sha256:<hex>' or pbkdf2, from `pearl serve --hash-key`)")
    public: bool = Field(False, description="serve /metrics to anyone who can reach the port, even on a "
                                            "public bind (the pre-0.x behaviour)")

    @field_validator("key_hash")
    @classmethod
    def _hash_shape(cls, v: str | None) -> str | None:
        return None if v is None else ClientKey._known_scheme(v)


class ServeConfig(BaseModel):
    upstream: UpstreamConfig = Field(default_factory=UpstreamConfig)
    models: list[str] = Field(default_factory=lambda: ["pearlpoint"],
                              description="model names clients may ask for; all go to the upstream")
    auth: AuthConfig = Field(default_factory=AuthConfig)
    limits: LimitsConfig = Field(default_factory=LimitsConfig)
    csa: CSAConfig = Field(default_factory=CSAConfig)
    refine: RefineConfig = Field(default_factory=RefineConfig)
    audit: AuditConfig = Field(default_factory=AuditConfig)
    metrics: MetricsConfig = Field(default_factory=MetricsConfig)
    expose_pearl: bool = Field(True, description="add the 'pearl' object and x-pearl-* headers")
    drain_grace_s: float = Field(
        120.0, gt=0, description="after a reload, the old engine/audit log close when their last request ends, "
                                 "or after this many seconds at most")
    source: str | None = Field(None, exclude=True, description="file this config came from")

    @field_validator("models")
    @classmethod
    def _some_models(cls, v: list[str]) -> list[str]:
        if not v:
            raise ValueError("list at least one model name")
        return v


def _expand_env(value: object, where: str) -> object:
    """Replace ``${VAR}`` / ``${VAR:-default}`` in strings, so secrets can stay out of the file."""
    if isinstance(value, str):
        def sub(m: re.Match[str]) -> str:
            name, default = m.group(1), m.group(2)
            if name in os.environ:
                return os.environ[name]
            if default is not None:
                return default
            raise ConfigError(f"{where}: environment variable {name} is not set")
        return _ENV_REF.sub(sub, value)
    if isinstance(value, dict):
        return {k: _expand_env(v, f"{where}.{k}") for k, v in value.items()}
    if isinstance(value, list):
        return [_expand_env(v, f"{where}[{i}]") for i, v in enumerate(value)]
    return value


def _parse_file(path: Path) -> dict:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{path}: config file not found") from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read config file ({exc.strerror})") from None
    if path.suffix.lower() == ".toml":
        try:
            data = tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{path}: invalid TOML: {exc}") from None
    else:
        import yaml

        try:
            data = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            line = f":{mark.line + 1}" if mark is not None else ""
            raise ConfigError(f"{path}{line}: invalid YAML: {getattr(exc, 'problem', exc)}") from None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: top level must be a mapping, got {type(data).__name__}")
    # `pearl serve` may share a file with other settings: accept a `serve:` section.
    if isinstance(data.get("serve"), dict):
        data = data["serve"]
    return data


def load_config(path: str | Path | None = None, **overrides: object) -> ServeConfig:
    """Load and validate a serve config. ``path=None`` gives the defaults (embedded upstream)."""
    data: dict = {}
    if path is not None:
        p = Path(path).expanduser()
        data = _expand_env(_parse_file(p), str(p))  # type: ignore[assignment]
    for dotted, value in overrides.items():
        if value is None:
            continue
        cursor = data
        parts = dotted.split("__")
        for part in parts[:-1]:
            cursor = cursor.setdefault(part, {})
        cursor[parts[-1]] = value
    try:
        cfg = ServeConfig.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        field = ".".join(str(x) for x in first["loc"]) or "(top level)"
        more = f" (and {exc.error_count() - 1} more)" if exc.error_count() > 1 else ""
        raise ConfigError(f"{path or '<defaults>'}: field '{field}': {first['msg']}{more}") from None
    cfg.source = str(path) if path is not None else None
    return cfg
