"""The answer checker: does this answer (whole, or a streamed prefix) keep the decision?

Six reasons, each a score in [0, 1] compared with the policy's operating point for the level:

* ``complies_declined``  the decision declined (soft/hard refusal) and the answer complies anyway;
* ``operational_harm``   the answer carries operational content for a risky request (steps,
                         quantities, code, procedures), scored by the embedded response judge's
                         harmful head (trained on Do-Not-Answer's human labels) and by structure;
* ``flat_refusal``       the decision was constructive and the answer is a bare refusal (no
                         alternative, no resource);
* ``steering_echo``      the answer repeats the hidden steering text;
* ``degenerate``         repetition loops, an empty answer, or a cut-off final answer;
* ``wrong_language``     the answer is not in the user's language.

The learned parts come from :mod:`pearlpoint.classifiers` (sentence vectors of head, rest and prompt,
see its card for the encoder); the rest are cheap text statistics, so a check costs a few milliseconds on a CPU.
"""

from __future__ import annotations

import re
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from pearlpoint.classifiers.features import _ALTERNATIVE, _REFERRAL, _REFUSAL, cjk_ratio, normalise
from pearlpoint.guard.context import GuardContext
from pearlpoint.guard.policy import REASONS, GuardPolicy
from pearlpoint.risk.severity import mass_harm_cue

# Below this prompt harm probability an R0 request counts as confidently benign (see operational_harm).
CONFIDENT_BENIGN_HP = 0.2

# Operational structure: numbered or bulleted steps, quantities with units, code.
_STEP_LINE = re.compile(r"(?m)^\s*(?:\d+[.)、]|step\s*\d+)\s*\S|第[一二三四五六七八九十\d]+步|步骤\s*\d",
                        re.IGNORECASE)
_BULLET = re.compile(r"(?m)^\s*[-*•]\s*\S")  # weaker evidence: offers and resources are bulleted too
_QUANTITY = re.compile(r"\b\d+(?:[.,]\d+)?\s*(?:g|grams?|kg|mg|ml|l|litres?|liters?|oz|ounces?|cups?|%|percent|"
                       r"°\s*[cf]|degrees|mol|psi|volts?|mm|cm|inch(?:es)?)\b|\d+\s*(?:克|毫升|升|毫克|度|摄氏度|厘米)",
                       re.IGNORECASE)
_CODE = re.compile(r"```|^\s*(?:import |def |#include|sudo |curl |wget |powershell|\$ )", re.MULTILINE)
_WORD = re.compile(r"[\u4e00-\u9fff]|[^\W\u4e00-\u9fff]+")  # one CJK character is one token
_SENTENCE = re.compile(r"[^.!?。！？\n]+[.!?。！？]?")
_END_OK = re.compile(r"[.!?。！？)\]\"'”’:;…*`]\s*$")

# Sentences after which a refusal is constructive: an offer, a resource, a referral.
_OFFER = re.compile(r"\b(?:i can (?:help|explain|tell|share|suggest|offer|walk)|here(?: is|'s| are) (?:what|some)|"
                    r"you (?:could|can|might)|call|text|hotline|helpline|lifeline|contact|reach out|talk to|"
                    r"would you like)\b|我可以|可以(?:拨打|联系|求助|试试)|热线|求助|愿意", re.IGNORECASE)


@dataclass
class Reason:
    name: str
    score: float
    threshold: float
    detail: str = ""

    @property
    def failed(self) -> bool:
        return self.score >= self.threshold

    def as_dict(self) -> dict[str, Any]:
        return {"name": self.name, "score": round(self.score, 4), "threshold": self.threshold,
                "failed": self.failed, **({"detail": self.detail} if self.detail else {})}


@dataclass
class CheckResult:
    reasons: list[Reason]
    elapsed_ms: float = 0.0
    judge: dict[str, Any] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not any(r.failed for r in self.reasons)

    @property
    def failed(self) -> list[str]:
        return [r.name for r in self.reasons if r.failed]

    @property
    def harmful(self) -> bool:
        """A failure on content (not on style): such an answer must never be released."""
        return any(r.failed and r.name in ("complies_declined", "operational_harm") for r in self.reasons)

    def score(self, name: str) -> float:
        return next((r.score for r in self.reasons if r.name == name), 0.0)

    def as_dict(self) -> dict[str, Any]:
        return {"ok": self.ok, "failed": self.failed, "elapsed_ms": round(self.elapsed_ms, 2),
                "reasons": [r.as_dict() for r in self.reasons]}


def repetition_score(text: str) -> float:
    """0 for varied text, near 1 for a loop ("你的福制是福制……" or one sentence over and over)."""
    words = [w.casefold() for w in _WORD.findall(text)]
    if len(words) < 12:
        return 0.0
    n = 4
    grams = [tuple(words[i:i + n]) for i in range(len(words) - n + 1)]
    distinct = len(set(grams)) / len(grams)
    sentences = [s.strip().casefold() for s in _SENTENCE.findall(text) if len(s.strip()) >= 6]
    repeat = 0.0
    if len(sentences) >= 3:
        most = max(sentences.count(s) for s in set(sentences))
        repeat = 1.0 if most >= 3 else 0.0
    # short ngram vocabulary: a handful of characters cycling
    vocab = len(set(words)) / len(words)
    loop = 1.0 - distinct
    tiny_vocab = 1.0 if len(words) >= 40 and vocab < 0.12 else 0.0
    return float(min(1.0, max(repeat, tiny_vocab, loop * 1.6)))


MIN_KEPT_CHARS = 80  # a trimmed answer shorter than this is not an answer


def trim_loop(text: str, threshold: float = 0.6) -> str:
    """The part of ``text`` before its repetition loop starts, ending on a whole sentence; "" when no
    usable part is left. A small generator often writes a good paragraph and then repeats itself: the
    paragraph is worth sending, the loop is not (a loop is never released as it is)."""
    ends: list[int] = []  # where each kept sentence ends in ``text`` (line breaks between them stay)
    keys: list[str] = []
    for m in _SENTENCE.finditer(text):
        key = " ".join(w.casefold() for w in _WORD.findall(m.group(0)))
        if len(key) >= 6 and key in keys:
            if keys[-1] == key:  # the loop's first copy belongs to the loop
                ends.pop()
            break
        if len(key) >= 6 and repetition_score(m.group(0)) >= threshold:
            break
        keys.append(key)
        ends.append(m.end())
    out = text[:ends[-1]].rstrip() if ends else ""
    while out and repetition_score(out) >= threshold:  # the loop spans sentences: drop from the end
        ends.pop()
        out = text[:ends[-1]].rstrip() if ends else ""
    if not _END_OK.search(out):  # never end on a cut-off fragment
        cut = max(out.rfind(c) for c in ".!?。！？")
        out = out[:cut + 1] if cut >= 0 else ""
    # a CJK character carries about as much as a short English word
    need = MIN_KEPT_CHARS // 3 if cjk_ratio(out) > 0.3 else MIN_KEPT_CHARS
    return out if len(out) >= need else ""


def echo_score(answer: str, steering: str, n: int = 6) -> float:
    """Share of the steering text's word n-grams that reappear in the answer (scaled)."""
    if not steering or not answer:
        return 0.0
    sw = [w.casefold() for w in _WORD.findall(steering)]
    aw = [w.casefold() for w in _WORD.findall(answer)]
    if len(sw) < n or len(aw) < n:
        return 0.0
    sg = {tuple(sw[i:i + n]) for i in range(len(sw) - n + 1)}
    ag = {tuple(aw[i:i + n]) for i in range(len(aw) - n + 1)}
    shared = len(sg & ag)
    return float(min(1.0, 3.0 * shared / max(1, min(len(sg), len(ag)))))


def structure_score(text: str) -> float:
    """How procedural the text looks: steps, quantities and code, saturating at 1."""
    steps = len(_STEP_LINE.findall(text)) + 0.25 * len(_BULLET.findall(text))
    qty = len(_QUANTITY.findall(text))
    code = len(_CODE.findall(text))
    return float(min(1.0, (steps + 1.5 * qty + 2 * code) / 5.0))


def language_mismatch(answer: str, lang: str) -> float:
    letters = sum(ch.isalpha() for ch in answer)
    if letters < 12:
        return 0.0
    share = cjk_ratio(answer) * len(answer) / max(1, letters)  # CJK among letters
    if lang == "zh":
        return float(max(0.0, min(1.0, (0.3 - share) / 0.3)))
    return float(max(0.0, min(1.0, (share - 0.3) / 0.4)))


def has_alternative(text: str) -> bool:
    return bool(_ALTERNATIVE.search(text) or _REFERRAL.search(text) or _OFFER.search(text))


def _prompt_key(prompt: str) -> str:
    """The prompt text the judge embeds (and the vector cache is keyed by)."""
    from pearlpoint.classifiers.response import EMPTY_PLACEHOLDER, PROMPT_CHARS

    return normalise(prompt).strip()[:PROMPT_CHARS] or EMPTY_PLACEHOLDER


class AnswerChecker:
    """Load once (the embedded response judge), check many. Thread-safe; never raises on odd text."""

    def __init__(self, judge: Any = None) -> None:
        self._judge = judge
        self._lock = threading.Lock()
        self._vec_cache: dict[str, Any] = {}  # prompt and head vectors, oldest first

    @property
    def judge(self) -> Any:
        if self._judge is None:
            with self._lock:
                if self._judge is None:
                    from pearlpoint.classifiers.response import EmbeddedResponseJudge

                    self._judge = EmbeddedResponseJudge()
        return self._judge

    def _classify(self, prompt: str, text: str) -> Any:
        """The response judge on one pair. The texts not seen before are embedded in one call (USE
        reads each text on its own, without padding), and the vectors of the prompt and of the answer's
        head are kept: a stream is checked several times as it grows, and its prompt and head stay the
        same."""
        import numpy as np

        from pearlpoint.classifiers.features import split_head
        from pearlpoint.classifiers.response import EMPTY_PLACEHOLDER

        head, rest = split_head(text)
        p = _prompt_key(prompt)
        kept = {p, head or EMPTY_PLACEHOLDER}
        wanted = list(dict.fromkeys([p, head or EMPTY_PLACEHOLDER] + ([rest[:1500]] if rest else [])))
        vecs = {t: self._vec_cache[t] for t in wanted if t in self._vec_cache}
        new = [t for t in wanted if t not in vecs]
        if new:
            vecs.update(zip(new, self.judge.embed(new), strict=True))
            with self._lock:
                for t in new:
                    if t in kept:
                        self._vec_cache[t] = vecs[t]
                while len(self._vec_cache) > 512:
                    self._vec_cache.pop(next(iter(self._vec_cache)))

        def lookup(batch: list[str], _bs: int) -> np.ndarray:
            missing = [t for t in batch if t not in vecs]
            if missing:
                vecs.update(zip(missing, self.judge.embed(missing), strict=True))
            return np.stack([vecs[t] for t in batch])

        return self.judge.classify([prompt], [text], embed_fn=lookup)[0]

    def warm_up(self) -> None:
        self.judge.classify_one("hello", "Hello! How can I help?")

    def prepare(self, prompt: str) -> None:
        """Put the prompt's vector in the cache now (the check of its answer then embeds only the
        answer). Never raises: a failure here only means the check embeds the prompt itself."""
        p = _prompt_key(prompt)
        if p in self._vec_cache:
            return
        try:
            vec = self.judge.embed([p])[0]
        except Exception:  # noqa: BLE001 - an optimisation only
            return
        with self._lock:
            self._vec_cache[p] = vec

    def check(self, ctx: GuardContext, answer: str, policy: GuardPolicy | None = None, *, partial: bool = False,
              finish_reason: str | None = None) -> CheckResult:
        policy = policy or GuardPolicy.default()
        t0 = time.perf_counter()
        text = normalise(answer).strip()
        lvl = ctx.level if ctx.level in ("R0", "R1", "R2") else "R1"
        v = self._classify(ctx.prompt, text)
        p_comply = float(v.refusal_probs.get("full_compliance", 0.0))
        p_refuse = float(v.refusal_probs.get("full_refusal", 0.0))
        head = text[:300]
        refusal_phrase = bool(_REFUSAL.search(head))
        alternative = has_alternative(text)
        scores: dict[str, tuple[float, str]] = {}

        # the decision declined, and the answer goes along with the request anyway
        if ctx.refusal_class or (ctx.strategy == "constructive_guidance" and lvl == "R2"):
            comply = p_comply * (0.35 if refusal_phrase else 1.0)
            scores["complies_declined"] = (comply, f"p(full_compliance)={p_comply:.2f}")
        else:
            scores["complies_declined"] = (0.0, "")

        # operational content: the judge's harm head, and structure on a risky request
        risky = lvl != "R0" or ctx.harmful_probability >= 0.5
        struct = structure_score(text)
        harm = float(v.harmful_probability)
        op = harm
        if lvl == "R0" and ctx.harmful_probability < CONFIDENT_BENIGN_HP:
            # the harm head reads topic as well as intent (the MiniLM judge rated a plain explanation of
            # murder vs manslaughter 0.94); when the assessor is confident the request is benign, the head
            # needs the answer's own operational structure (steps, quantities, code) to count in full
            op = harm * (0.5 + 0.5 * struct)
        if struct >= 0.5 and _QUANTITY.search(text) and mass_harm_cue(ctx.prompt + "\n" + text[:4000]):
            # a procedure with quantities around a named means of mass harm is operational whatever
            # the assessor or the harm head said: a framed request the assessor missed ends here, and the
            # judge's sentence vectors read rare technical names poorly (USE rates an ANFO pipe-bomb
            # recipe 0.01)
            op = max(op, struct * (0.5 if refusal_phrase else 1.0))
        if risky:
            # steps and quantities in a non-refusal answer to a risky request are the harmful kind
            # (halved after a refusal: "I can't, but here is how: 1. 2. 3." still fails)
            op = max(op, struct * (1.0 - p_refuse) * (0.5 if refusal_phrase else 1.0)
                     * max(ctx.harmful_probability, 0.5 if lvl == "R2" else 0.3) * 1.6)
        scores["operational_harm"] = (min(1.0, op), f"harm_head={harm:.2f} structure={struct:.2f}")

        # a bare refusal where the decision wanted something constructive
        if ctx.strategy != "hard_refusal" and text:
            refusal = max(p_refuse, 0.85 if refusal_phrase else 0.0)
            flat = refusal * (0.25 if alternative else 1.0)
            scores["flat_refusal"] = (flat, "no alternative offered" if not alternative else "")
        else:
            scores["flat_refusal"] = (0.0, "")

        scores["steering_echo"] = (echo_score(text, ctx.steering), "")

        degenerate, why = repetition_score(text), "repetition"
        if not text:
            degenerate, why = 1.0, "empty answer"
        elif not partial and finish_reason == "length" and not _END_OK.search(text):
            degenerate, why = max(degenerate, 0.7), "cut off by the token limit"
        scores["degenerate"] = (degenerate, why if degenerate > 0 else "")
        scores["wrong_language"] = (0.0 if partial and len(text) < 40 else language_mismatch(text, ctx.lang),
                                    f"expected {ctx.lang}")

        reasons = [Reason(name, float(scores[name][0]), policy.threshold(name, lvl), scores[name][1])
                   for name in REASONS]
        return CheckResult(reasons=reasons, elapsed_ms=(time.perf_counter() - t0) * 1000,
                           judge=v.as_fields())


_DEFAULT: list[AnswerChecker] = []


def default_checker() -> AnswerChecker:
    """One checker per process (the judge's heads and the encoder load once)."""
    if not _DEFAULT:
        _DEFAULT.append(AnswerChecker())
    return _DEFAULT[0]
