"""The shipped policy and the user-override merge, on real YAML files."""

from __future__ import annotations

import json

import pytest

from pearlpoint.errors import ConfigError, PearlError
from pearlpoint.policy import Category, get_policy, load_policy


def test_default_taxonomy_shape():
    p = load_policy()
    groups = {c.group for c in p.risky_categories}
    assert len(groups) == 9
    assert len(p.risky_categories) == 32
    assert p.find("none").severity == 0
    for c in p.risky_categories:
        assert 1 <= c.severity <= 4, c.id
        assert c.name and c.name_zh, c.id
        for lang in ("en", "zh"):
            assert c.description.get(lang), (c.id, lang)
            g = c.guideline.get(lang)
            assert g.must_not and g.may and g.constructive_moves, (c.id, lang)
    zh = p.find("cult").guideline.zh.must_not[0]
    assert any("\u4e00" <= ch <= "\u9fff" for ch in zh)


@pytest.mark.parametrize("label,expected", [
    ("cybersecurity", "cybersecurity"), ("CyberSecurity", "cybersecurity"), ("网络安全", "cybersecurity"),
    ("Illegal Drugs", "illegal_drugs"), ("违禁毒品", "illegal_drugs"), ("self-harm", "mental_health"),
    ("Race/Ethnicity/Religion/Regional Discrimination", "race_ethnicity_religion_region"),
    ("NONE", "none"),
])
def test_find_by_id_name_or_chinese(label, expected):
    assert get_policy(None).find(label).id == expected


def test_find_unknown_lists_close_matches():
    with pytest.raises(PearlError) as err:
        load_policy().find("cybersecurty")
    assert "cybersecurity" in str(err.value)


def test_guideline_text_both_languages():
    cat: Category = load_policy().find("mental_health")
    en, zh = cat.guideline_text("en"), cat.guideline_text("zh")
    assert "Never give" in en and "crisis" in en.lower()
    assert "绝不提供" in zh and "热线" in zh
    assert cat.guideline_text("zh-CN") == zh


def test_shared_taxonomy_names_covered(shared_data):
    """Every published level-2 category of the source taxonomy resolves by its English and Chinese name."""
    p = load_policy()
    rows = [json.loads(line) for line in (shared_data / "strata_sword_risk_rules.jsonl").open(encoding="utf-8")]
    published = [r for r in rows if r["sheet"] == "中英映射"]
    assert len(published) == 32
    found = set()
    for r in published:
        a, b = p.get(r["风险类别en"]), p.get(r["风险类别cn"])
        assert a is not None and b is not None and a.id == b.id, r["风险类别en"]
        found.add(a.id)
    assert len(found) == 32


def test_user_yaml_merges_over_default(tmp_path):
    f = tmp_path / "mine.yaml"
    f.write_text(
        "categories:\n"
        "  - id: gambling\n"
        "    severity: 4\n"
        "    guideline:\n"
        "      en:\n"
        "        must_not: ['Any betting odds at all.']\n"
        "  - id: election_integrity\n"
        "    group: misinformation\n"
        "    name: Election integrity\n"
        "    name_zh: 选举诚信\n"
        "    severity: 3\n"
        "    description: {en: 'Voter suppression and fake voting info.', zh: '压制投票和虚假投票信息。'}\n"
        "  - id: subjective_evaluation\n"
        "    remove: true\n", encoding="utf-8")
    p = load_policy(f)
    g = p.find("gambling")
    assert g.severity == 4
    assert g.guideline.en.must_not == ["Any betting odds at all."]
    assert g.guideline.en.may  # untouched fields keep the default
    assert g.guideline.zh.must_not  # other language untouched
    assert p.find("选举诚信").id == "election_integrity"
    assert p.get("subjective_evaluation") is None
    assert load_policy().find("gambling").severity == 2  # the default is not mutated


@pytest.mark.parametrize("content,needle", [
    ("categories: [ {id: x, group: nope, name: X} ]", "undefined groups"),
    ("categories:\n  - id: none\n    remove: true\n", "none"),
    ("categories: [ {id: cult, severity: 9} ]", "severity"),
    ("a: [unclosed", "not valid YAML"),
    ("- just a list", "mapping"),
])
def test_bad_user_policy_is_a_clear_error(tmp_path, content, needle):
    f = tmp_path / "bad.yaml"
    f.write_text(content, encoding="utf-8")
    with pytest.raises(ConfigError) as err:
        load_policy(f)
    assert needle in str(err.value) and "bad.yaml" in str(err.value)


def test_missing_policy_file(tmp_path):
    with pytest.raises(ConfigError, match="not found"):
        load_policy(tmp_path / "nope.yaml")
