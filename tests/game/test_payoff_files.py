"""Payoff files: a user's YAML merges over the defaults; every mistake is one error naming file, line, key."""

from __future__ import annotations

from pathlib import Path

import pytest

from pearlpoint.errors import InputError
from pearlpoint.game import default_payoffs_path, load_payoffs, solve
from pearlpoint.risk.schema import RiskAssessment, UserTypePosterior


def write(tmp_path: Path, text: str, name: str = "mine.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def error_for(path: Path) -> InputError:
    with pytest.raises(InputError) as info:
        load_payoffs(path)
    return info.value


def test_default_file_is_complete_and_every_number_is_commented() -> None:
    p = load_payoffs()
    assert p.type_ids == ["benign", "vulnerable", "malicious"]
    assert len(p.strategy_ids) == 6 and len(p.reaction_ids) == 6
    assert {"full_answer", "safe_framing", "correct_premise", "constructive_guidance", "soft_refusal",
            "hard_refusal"} == set(p.strategy_ids)
    for s in p.strategies:
        assert s.steering.get("en") and s.steering.get("zh"), s.id
        assert s.label_zh
        for lang in ("en", "zh"):
            safety, useful = s.phrases(lang)
            # the full answer carries no safety phrase: a benign chain is the short form
            assert (safety or s.id == "full_answer") and useful, (s.id, lang)
            assert all(len(x) <= 80 for x in safety + useful), "phrases are short, for a chain"
        assert s.phrases("zh") != s.phrases("en")
    text = default_payoffs_path().read_text(encoding="utf-8")
    lines = text.splitlines()
    # every per-item number carries its reason on the same line
    import re

    numeric = re.compile(r"^\s+(cost|exposure|retention|discount|severity_delta):\s*-?[\d.]+")
    for line in lines:
        if numeric.match(line):
            assert "#" in line, f"uncommented default: {line.strip()}"
    # every table of numbers (payoff tables, next states) has a comment block right above it
    start = lines.index("reaction_harm:")
    for i, line in enumerate(lines[start:], start=start):
        if re.match(r"^\s+(benign|vulnerable|malicious|type_likelihood|risk):\s*$|^\s+\{", line):
            assert any("#" in lines[j] for j in range(max(0, i - 3), i + 2)), f"line {i + 1}: {line.strip()}"
    for key in ("alpha", "beta", "gamma", "severity_scale", "safety_budget", "default_prior"):
        i = next(i for i, line in enumerate(lines) if line.strip().startswith(f"{key}:"))
        assert "#" in lines[i - 1] or "#" in lines[i], key


def test_user_file_overrides_only_what_it_names(tmp_path: Path) -> None:
    path = write(tmp_path, "parameters:\n  gamma: 0.0\n  safety_budget: {0: 1.0, 1: 0.3, 2: 0.2, 3: 0.12, 4: 0.5}\n")
    p = load_payoffs(path)
    assert p.parameters.gamma == 0.0
    assert p.budget(4) == 0.5
    assert p.parameters.alpha == 1.0  # untouched default
    assert p.source == str(path)
    # a looser budget for critical categories lets more forthcoming replies through
    a = RiskAssessment(category="violent_terror", user_types=UserTypePosterior(benign=0.2, vulnerable=0.1, malicious=0.7))
    assert not solve(a, payoffs=path).infeasible
    assert solve(a).infeasible


def test_user_file_can_add_a_strategy(tmp_path: Path) -> None:
    cells = "{accept_safely: 0.9, satisfied_leave: 0.8, rephrase_retry: 0.0, escalate: -0.5, migrate: -0.3, misuse: -1.0}"
    mal = "{accept_safely: 0.0, satisfied_leave: 0.0, rephrase_retry: 0.3, escalate: 0.4, migrate: 0.5, misuse: -0.5}"
    path = write(tmp_path, f"""
strategies:
  ask_clarifying_question:
    label: Ask what they need
    rank: 3
    cost: 0.2
    exposure: 0.0
    steering: {{en: Ask one short question about what the user is trying to achieve.}}
user_utility:
  benign: {{ask_clarifying_question: {cells}}}
  vulnerable: {{ask_clarifying_question: {cells}}}
  malicious: {{ask_clarifying_question: {mal}}}
""")
    p = load_payoffs(path)
    assert "ask_clarifying_question" in p.strategy_ids
    sol = solve(RiskAssessment(category="mental_health", user_types=UserTypePosterior(
        benign=0.3, vulnerable=0.6, malicious=0.1)), payoffs=p)
    assert len(sol.strategies) == 7
    assert sol.pearl_point == "ask_clarifying_question"  # cheap, accepted, nothing exposed
    assert sol.chosen.steer("zh").startswith("Ask")  # falls back to English


def test_missing_cell_names_file_and_key(tmp_path: Path) -> None:
    path = write(tmp_path, """
strategies:
  new_one: {label: New, rank: 2, cost: 0.5, exposure: 0.2, steering: {en: do it}}
user_utility:
  benign:
    new_one: {accept_safely: 0.9, satisfied_leave: 0.8, rephrase_retry: 0.0, escalate: -0.5, migrate: -0.3}
""")
    err = error_for(path)
    msg = str(err)
    assert str(path) in msg
    assert "user_utility.benign.new_one.misuse" in msg
    assert err.field == "user_utility.benign.new_one.misuse"
    assert err.line == 6  # the row that lacks the cell
    assert "missing" in msg


def test_missing_strategy_row_for_a_type(tmp_path: Path) -> None:
    path = write(tmp_path, """
strategies:
  new_one: {label: New, rank: 2, cost: 0.5, exposure: 0.2, steering: {en: do it}}
""")
    err = error_for(path)
    assert err.field == "user_utility.benign.new_one"
    assert "missing" in str(err)


def test_wrong_type_names_the_key_and_the_line(tmp_path: Path) -> None:
    path = write(tmp_path, "user_utility:\n  vulnerable:\n    hard_refusal:\n      migrate: lots\n")
    err = error_for(path)
    assert err.field == "user_utility.vulnerable.hard_refusal.migrate"
    assert err.line == 4
    assert "expected a number" in str(err) and "'lots'" in str(err)
    assert str(path) in str(err)


def test_boolean_is_not_a_number(tmp_path: Path) -> None:
    err = error_for(write(tmp_path, "parameters:\n  alpha: true\n"))
    assert err.field == "parameters.alpha"


def test_out_of_range_cost(tmp_path: Path) -> None:
    err = error_for(write(tmp_path, "strategies:\n  full_answer:\n    cost: 3\n"))
    assert err.field == "strategies.full_answer.cost" and err.line == 3
    assert "<= 1" in str(err)


def test_prior_not_summing_to_one(tmp_path: Path) -> None:
    path = write(tmp_path, "parameters:\n  default_prior: {benign: 0.7, vulnerable: 0.2, malicious: 0.2}\n")
    err = error_for(path)
    assert err.field == "parameters.default_prior"
    assert err.line == 2
    assert "sum to one" in str(err) and "1.1" in str(err)


def test_unknown_strategy_name_with_suggestion(tmp_path: Path) -> None:
    path = write(tmp_path, "user_utility:\n  benign:\n    full_anwser: {misuse: -1}\n")
    err = error_for(path)
    assert err.field == "user_utility.benign.full_anwser"
    assert err.line == 3
    assert "unknown strategy 'full_anwser'" in str(err)
    assert "did you mean 'full_answer'" in str(err)


def test_unknown_reaction_type_and_section(tmp_path: Path) -> None:
    assert error_for(write(tmp_path, "reaction_harm:\n  malicious: {misuses: 1.0}\n")).field == \
        "reaction_harm.malicious.misuses"
    assert error_for(write(tmp_path, "user_utility:\n  trolls: {}\n", "b.yaml")).field == "user_utility.trolls"
    err = error_for(write(tmp_path, "payofs: {}\n", "c.yaml"))
    assert "unknown section 'payofs'" in str(err)


def test_unknown_next_state(tmp_path: Path) -> None:
    err = error_for(write(tmp_path, "reactions:\n  escalate:\n    next_state: nowhere\n"))
    assert err.field == "reactions.escalate.next_state"
    assert "unknown next state 'nowhere'" in str(err)


def test_severity_level_table_must_cover_0_to_4(tmp_path: Path) -> None:
    err = error_for(write(tmp_path, "parameters:\n  safety_budget: {9: 0.1}\n"))
    assert err.field == "parameters.safety_budget.9"


def test_replace_mode_requires_every_section(tmp_path: Path) -> None:
    err = error_for(write(tmp_path, "replace: true\nparameters: {alpha: 1}\n"))
    assert "missing section" in str(err)


def test_replace_mode_with_a_full_copy_works(tmp_path: Path) -> None:
    text = default_payoffs_path().read_text(encoding="utf-8")
    path = write(tmp_path, "replace: true\n" + text.replace("gamma: 0.1", "gamma: 0.05"))
    assert load_payoffs(path).parameters.gamma == 0.05


def test_not_yaml_and_not_a_mapping_and_missing_file(tmp_path: Path) -> None:
    err = error_for(write(tmp_path, "parameters: [unclosed\n"))
    assert "not valid YAML" in str(err) and err.line is not None
    err = error_for(write(tmp_path, "- just\n- a list\n", "l.yaml"))
    assert "mapping" in str(err)
    err = error_for(tmp_path / "absent.yaml")
    assert "not found" in str(err)


def test_cli_reports_a_bad_payoff_file_in_one_line(tmp_path: Path) -> None:
    import subprocess
    import sys

    path = write(tmp_path, "user_utility:\n  benign:\n    full_anwser: {misuse: -1}\n")
    proc = subprocess.run([sys.executable, "-m", "pearlpoint", "solve", "--category", "cult", "--posterior",
                           "benign=1", "--payoffs", str(path)], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    assert f"{path}:3" in proc.stderr and "full_anwser" in proc.stderr


def test_distress_section_errors_name_the_key(tmp_path: Path) -> None:
    err = error_for(write(tmp_path, "distress:\n  type: worried\n"))
    assert err.field == "distress.type" and "unknown user type 'worried'" in str(err) and err.line == 2
    err = error_for(write(tmp_path, "distress:\n  share: {4: 1.5}\n", "b.yaml"))
    assert err.field == "distress.share.4" and "<= 1" in str(err)
    # a strategy newly listed must give every reaction cell (merging fills only the shipped rows)
    err = error_for(write(tmp_path, "distress:\n  user_utility:\n    soft_refusal: {migrate: 0.5}\n", "c.yaml"))
    assert err.field == "distress.user_utility.soft_refusal.accept_safely" and "missing" in str(err)
    err = error_for(write(tmp_path, "distress:\n  user_utility:\n    corect_premise: {}\n", "d.yaml"))
    assert err.field == "distress.user_utility.corect_premise" and "did you mean 'correct_premise'" in str(err)


def test_a_file_without_distress_section_lumps_the_vulnerable_type(tmp_path: Path) -> None:
    # the section is optional; without it a certain-vulnerable user on a critical topic gets the cheaper
    # correction, the behaviour the section exists to fix
    text = default_payoffs_path().read_text(encoding="utf-8")
    start, end = text.index("\ndistress:"), text.index("\n# Second turn")
    path = write(tmp_path, "replace: true\n" + text[:start] + text[end:])
    spec = load_payoffs(path)
    assert spec.distress is None and spec.distress_share(4) == 0.0
    a = RiskAssessment(category="mental_health", user_types=UserTypePosterior(benign=0, vulnerable=1, malicious=0))
    assert solve(a, payoffs=spec).pearl_point == "correct_premise"
    assert solve(a).pearl_point == "constructive_guidance"
