"""End to end on the real embedded model (SmolLM2-135M): the proof that the pieces work together.

Small max_tokens keep it quick; calls at temperature 0 are cached, so the CLI test reuses the
API test's calls. Assertions are on properties, never on exact strings.
"""

from __future__ import annotations

import json

import pytest

from pearlpoint.lingo import LingoConfig, Record, respond
from pearlpoint.lingo.judges import JudgeResult, judge
from pearlpoint.lingo.step_control import count_changes

pytestmark = pytest.mark.slow

QUERY = "How can I calm down before a job interview?"
CONFIG = dict(steps=1, max_tokens=96)


def test_respond_end_to_end_on_embedded_model(embedded_model):
    # early stop off: the small judge tends to rate everything perfect, and the backward step must
    # run on the real model too
    rec = respond(QUERY, generator=embedded_model, judge=embedded_model,
                  config=LingoConfig(**CONFIG, early_stop=False, adaptive=False))
    assert rec.assessment is not None and rec.solution and rec.pearl_point
    assert len(rec.iterates) == 2 and rec.iterates[0].mode == "seed"
    assert rec.usage["calls"] + rec.usage["cache_hits"] <= 5  # 2 to initialise + at most 3 for one round
    step = rec.iterates[1]
    if not step.failed:  # the real backward answer went through step-size control
        assert step.backward is not None
        changes = count_changes(rec.iterates[0].chain, step.chain)
        assert changes["safety"] <= 1 and changes["usefulness"] <= 1
    judged = [it for it in rec.iterates if it.judged]
    assert judged, [it.error for it in rec.iterates]
    for it in judged:
        assert -1.0 <= it.satisfaction <= 1.0 and it.safety in (0.0, 0.5, 1.0)
        assert it.answer.strip()
        JudgeResult.model_validate(it.judges)
    assert rec.chosen is not None and rec.answer.strip()
    assert Record.model_validate_json(rec.model_dump_json()).answer == rec.answer


async def test_judge_on_embedded_model(embedded_model):
    verdict = await judge("What is the capital of France?", "The capital of France is Paris.",
                          model=embedded_model, lang="en")
    assert -1.0 <= verdict.satisfaction.score <= 1.0
    assert verdict.safety.verdict in ("safe", "partly_safe", "unsafe")
    assert len(verdict.satisfaction.suggestions) == len(verdict.satisfaction.failing)


def test_cli_respond_json(embedded_model):
    from typer.testing import CliRunner

    from pearlpoint.cli import app

    result = CliRunner().invoke(app, ["respond", QUERY, "--steps", "1", "--max-tokens", "96", "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout[result.stdout.index("{"):])
    rec = Record.model_validate(data)
    assert rec.query == QUERY and rec.answer.strip() and rec.chosen_index is not None


def test_cli_respond_readable_output(embedded_model):
    from typer.testing import CliRunner

    from pearlpoint.cli import app

    # same query and settings as the JSON run: every call is a cache hit
    result = CliRunner().invoke(app, ["respond", QUERY, "--steps", "1", "--max-tokens", "96"])
    assert result.exit_code == 0, result.output
    for heading in ("Risk assessment", "Pearl Point", "Lingo-BP steps", "Answer"):
        assert heading in result.output


def test_cli_rejects_bad_flags():
    from typer.testing import CliRunner

    from pearlpoint.cli import app
    from pearlpoint.errors import PearlError

    result = CliRunner().invoke(app, ["respond", QUERY, "--schedule", "sideways"])
    # cli.main() turns a PearlError into one printed line; the bare app lets it through
    assert isinstance(result.exception, PearlError) and "schedule" in str(result.exception)
    result = CliRunner().invoke(app, ["respond"])
    assert isinstance(result.exception, PearlError) and "--messages" in str(result.exception)
