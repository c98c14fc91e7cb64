"""Answer extraction for the capability suites."""

from __future__ import annotations

from pearlpoint.eval.capability import extract_choice, extract_final_number, numbers_equal


def test_extract_choice_variants():
    ch = ["Venus", "Mercury", "Earth", "Mars"]
    assert extract_choice("Answer: B", ch) == "B"
    assert extract_choice("The answer is (c) because ...", ch) == "C"
    assert extract_choice("答案：D", ch) == "D"
    assert extract_choice("B. Mercury is closest.", ch) == "B"
    assert extract_choice("I think it's Mercury.", ch) == "B"
    assert extract_choice("", ch) is None
    assert extract_choice("no idea at all", ch) is None
    assert extract_choice("Answer: F", ch) is None  # not an option


def test_extract_final_number_variants():
    assert extract_final_number("24 - 18 = 6\n#### 6") == "6"
    assert extract_final_number("So she pays $1,250.50 in total. Answer: 1,250.50") == "1250.5"
    assert extract_final_number("答案：14") == "14"
    assert extract_final_number("first 3, then 5, so 8") == "8"
    assert extract_final_number("\\boxed{42}") == "42"
    assert extract_final_number("The answer is -7.") == "-7"
    assert extract_final_number("none") is None
    assert numbers_equal("30", "30.0") and not numbers_equal("3", "30") and not numbers_equal(None, "1")


def test_lm_eval_bridge_says_what_is_missing(tmp_path):
    import pytest

    from pearlpoint.errors import PearlError
    from pearlpoint.eval.capability import lm_eval_available, run_lm_eval

    if lm_eval_available():
        pytest.skip("lm-eval is installed here")
    with pytest.raises(PearlError, match="pip install lm-eval"):
        run_lm_eval(["mmlu"], base_url="http://127.0.0.1:9/v1", model_name="x")
