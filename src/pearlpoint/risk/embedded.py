"""The embedded assessor: MiniLM sentence embeddings + cheap features + small trained linear heads.

No LLM, offline, a few milliseconds per prompt. For each text we build *units*: the text itself (in
windows when long, see windows.py) plus every decoded view of it (features.decode_views), embed them in
one batch, and let each head read each unit. The harm score of a text is its most harmful unit, so an
obfuscated or buried request counts as much as a plain one.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from pearlpoint.errors import ConfigError
from pearlpoint.policy import Policy, get_policy
from pearlpoint.risk import features as F
from pearlpoint.risk.decision import decide, distress_floor
from pearlpoint.risk.heads import RiskHeads, sigmoid, softmax
from pearlpoint.risk.inputs import language_of, prepare
from pearlpoint.risk.schema import RiskAssessment, RiskLevel, RiskSignal
from pearlpoint.risk.severity import asks_how_to, mass_harm_cue
from pearlpoint.risk.windows import Windowing, last_segment, split_windows


@dataclass
class Unit:
    owner: int  # index of the text this unit belongs to
    label: str  # "text", "window 3/12", "decoded:base64"
    text: str


@dataclass
class TextScores:
    """Head outputs for one text, before the decision rules."""

    harm_logit: float
    p_harm: float  # calibrated
    p_adv: float
    p_distress: float
    category_probs: np.ndarray  # over heads.category_ids
    top_unit: str
    feats: F.FeatureResult
    windowing: Windowing


def build_units(texts: list[str], tokenizer: Any = None) -> tuple[list[Unit], list[F.FeatureResult], list[Windowing]]:
    units: list[Unit] = []
    feats: list[F.FeatureResult] = []
    wins: list[Windowing] = []
    for i, text in enumerate(texts):
        fr = F.extract(text)
        w = split_windows(text, tokenizer)
        feats.append(fr)
        wins.append(w)
        if len(w.windows) == 1:
            units.append(Unit(i, "text", w.windows[0]))
        else:
            units.extend(Unit(i, f"window {k + 1}/{w.read}", t) for k, t in enumerate(w.windows))
        for method, view in fr.views.views:
            vw = split_windows(view, tokenizer, max_windows=4)
            units.extend(Unit(i, f"decoded:{method}", t) for t in vw.windows)
    return units, feats, wins


def feature_columns(card_names: list[str] | None) -> np.ndarray | None:
    """Where each feature the heads were trained on sits in today's feature vector (None: the same
    order). Heads from an older card keep reading their own columns when a cue is added; a feature
    this version no longer computes is a ConfigError naming it."""
    if not card_names or list(card_names) == list(F.FEATURE_NAMES):
        return None
    index = {n: i for i, n in enumerate(F.FEATURE_NAMES)}
    missing = [n for n in card_names if n not in index]
    if missing:
        raise ConfigError(f"the risk heads' card names features this version does not compute: {missing}")
    return np.array([index[n] for n in card_names])


def fast_eligible(text: str, feats: F.FeatureResult) -> bool:
    """Distress wording (the writer's own or someone else's) and a named means of mass harm always get the
    full reading: the USE-only heads miss some distress told about others (a teacher asking about a pupil
    who wrote of wanting to die) and rare weapon names (TATP, napalm) that MiniLM knows."""
    if any(feats.value(n) > 0 for n in F.DISTRESS_FEATURES):
        return False
    return not any(mass_harm_cue(v) for v in [text] + [v for _, v in feats.views.views])


class EmbeddedAssessor:
    """Fast offline assessor. Thread-safe for reading; one encoder per process."""

    name = "embedded"

    def __init__(self, weights_dir: str | Path | None = None, policy: Policy | None = None,
                 encoder: Any = None, batch_size: int = 64, read_payload: bool = True,
                 operating_point: str = "balanced", fast_path: bool = True) -> None:
        self.read_payload = read_payload  # also assess the last segment (see _worse_with_payload)
        self.heads = RiskHeads.load(weights_dir)
        try:
            self.heads.threshold_for("en", operating_point)
        except ValueError as exc:
            raise ConfigError(str(exc)) from None
        self.operating_point = operating_point
        self.policy = policy or get_policy()
        self._encoder = encoder
        self.batch_size = batch_size
        self.category_ids = self.heads.category_ids
        self._feature_columns = feature_columns(self.heads.card.get("feature_names"))
        # A fine-tuned encoder these heads were blended with (``train --recalibrate --finetuned``): the card
        # says which sub-folder and how much of its harm logit is added. The packaged heads have none.
        ft = self.heads.card.get("finetuned") or {}
        if ft and weights_dir is None:
            raise ConfigError("the packaged risk heads name a fine-tuned encoder; the package does not ship one")
        self.finetuned_weight = float(ft.get("harm_weight", 0.0))
        self._finetuned_dir = Path(weights_dir) / str(ft.get("dir", "finetuned")) if ft else None
        self._finetuned: Any = None
        self.variant = "finetuned" if ft else "frozen"
        # The fast path (card ``fast_path``): heads on USE vectors alone read every text first, and a text
        # they call plainly benign (harm, distress and attack form all below the card's bounds, fitted on
        # calibration rows) is decided there; only the rest is read with both encoders.
        fp = self.heads.card.get("fast_path") or {}
        self.fast_heads: RiskHeads | None = None
        self.fast_bounds: dict[str, float] = {}
        # (bounds are fitted against the balanced point's decisions, so the strict point reads everything in full)
        if fp and fast_path and self.variant == "frozen" and operating_point == "balanced":
            self.fast_heads = RiskHeads.load(weights_dir, sub=str(fp.get("dir", "fast")))
            if (self.heads.card.get("encoder"), self.fast_heads.card.get("encoder")) != ("minilm+use-m3", "use-m3") \
                    or self.fast_heads.category_ids != self.category_ids:
                raise ConfigError("the risk heads' fast path needs minilm+use-m3 heads with use-m3 fast heads "
                                  "over the same categories; retrain it with python -m pearlpoint.risk.fast_path")
            self.fast_bounds = {k: float(fp[k]) for k in ("harm_below", "distress_below", "adversarial_below")}
            self._fast_columns = feature_columns(self.fast_heads.card.get("feature_names"))
        self.fast_counts = {"fast": 0, "full": 0}

    @property
    def encoder(self) -> Any:
        if self._encoder is None:
            from pearlpoint.embeddings import get_text_encoder

            # the encoder and precision the heads were fitted on (MiniLM fp32 for older cards)
            self._encoder = get_text_encoder(self.heads.card.get("encoder", "minilm"),
                                             self.heads.card.get("encoder_precision", "fp32"))
        return self._encoder

    @property
    def finetuned(self) -> Any:
        if self._finetuned is None and self.variant == "finetuned":
            from pearlpoint.risk.finetuned import load_finetuned

            self._finetuned = load_finetuned(self._finetuned_dir)
        return self._finetuned

    def embed(self, texts: list[str]) -> np.ndarray:
        if not texts:
            from pearlpoint.embeddings import embedding_dim

            return np.zeros((0, embedding_dim(self.encoder)), dtype=np.float32)
        return self._encode_with(self.encoder, texts)

    def score(self, texts: list[str]) -> list[TextScores]:
        units, feats, wins = build_units(texts, getattr(self.encoder, "tokenizer", None))
        if self.fast_heads is None or not units:
            return self._scores(self.heads, self._feature_columns, texts, units, feats, wins,
                                self.embed([u.text for u in units]))
        use_emb, fast = self._fast(texts, units, feats, wins)
        b = self.fast_bounds
        full = [i for i, s in enumerate(fast) if not (s.p_harm < b["harm_below"] and s.p_distress < b["distress_below"]
                                                       and s.p_adv < b["adversarial_below"]
                                                       and fast_eligible(texts[i], s.feats))]
        self.fast_counts["fast"] += len(texts) - len(full)
        self.fast_counts["full"] += len(full)
        if not full:
            return fast
        keep = np.flatnonzero(np.isin([u.owner for u in units], full))
        renum = {old: new for new, old in enumerate(full)}
        sub_units = [Unit(renum[units[k].owner], units[k].label, units[k].text) for k in keep]
        emb = np.hstack([self._encode_with(self.encoder.parts[0], [u.text for u in sub_units]), use_emb[keep]])
        rescored = self._scores(self.heads, self._feature_columns, [texts[i] for i in full], sub_units,
                                [feats[i] for i in full], [wins[i] for i in full], emb)
        for i, s in zip(full, rescored, strict=True):
            fast[i] = s
        return fast

    def _fast(self, texts: list[str], units: list[Unit], feats: list[F.FeatureResult],
              wins: list[Windowing]) -> tuple[np.ndarray, list[TextScores]]:
        assert self.fast_heads is not None
        use_emb = self._encode_with(self.encoder.parts[1], [u.text for u in units])  # minilm+use-m3: USE second
        return use_emb, self._scores(self.fast_heads, self._fast_columns, texts, units, feats, wins, use_emb)

    def score_fast(self, texts: list[str]) -> list[TextScores]:
        """The fast heads' reading of every text (what the fast path decides on; python -m pearlpoint.risk.fast_path fits its bounds on it)."""
        units, feats, wins = build_units(texts, getattr(self.encoder, "tokenizer", None))
        return self._fast(texts, units, feats, wins)[1]

    def _encode_with(self, encoder: Any, texts: list[str]) -> np.ndarray:
        return np.asarray(encoder.encode(texts, batch_size=self.batch_size, normalize_embeddings=True,
                                         convert_to_numpy=True, show_progress_bar=False), dtype=np.float32)

    def _scores(self, h: RiskHeads, columns: np.ndarray | None, texts: list[str], units: list[Unit],
                feats: list[F.FeatureResult], wins: list[Windowing], emb: np.ndarray) -> list[TextScores]:
        fmat = np.stack([feats[u.owner].vector for u in units]) if units else np.zeros((0, len(F.FEATURE_NAMES)))
        blocks = [emb, fmat[:, columns] if columns is not None else fmat]
        if h.ngram_buckets:
            nb = h.ngram_buckets
            blocks.append(np.stack([F.ngram_vector(u.text, nb) for u in units]) if units else np.zeros((0, nb)))
        X = np.hstack(blocks).astype(np.float32)
        harm_z = h.harm.logits(X)[:, 0]
        if self.variant == "finetuned" and units:
            harm_z = harm_z + self.finetuned_weight * self.finetuned.logits([u.text for u in units]).harm
        adv_p = sigmoid(h.adversarial.logits(X)[:, 0])
        dis_p = sigmoid(h.distress.logits(X)[:, 0])
        cat_p = softmax(h.category.logits(X))
        owners = np.array([u.owner for u in units])
        out: list[TextScores] = []
        for i in range(len(texts)):
            idx = np.flatnonzero(owners == i)
            harm_idx = idx
            if {m for m, _ in feats[i].views.views} & F.UNREADABLE_ENCODINGS:
                # As in training: an encoded blob is judged by what it decodes to, not by how it looks.
                decoded = np.array([k for k in idx if units[k].label.startswith("decoded:")])
                harm_idx = decoded if len(decoded) else idx
            j = harm_idx[int(np.argmax(harm_z[harm_idx]))]
            z = float(harm_z[j])
            a, b = h.calibration_for(language_of(texts[i]))
            # The distress head alone over-fires on short Chinese requests (MiniLM reads Chinese poorly);
            # without any distress wording its probability is damped by up to 45%.
            cue = min(1.0, sum(feats[i].value(n) for n in F.DISTRESS_FEATURES))
            p_dis = float(dis_p[idx].max()) * (0.55 + 0.45 * cue)
            p_dis = distress_floor(p_dis, feats[i])  # ... and explicit first-person distress always counts
            out.append(TextScores(harm_logit=z, p_harm=float(sigmoid(np.array(a * z + b))), p_adv=float(adv_p[idx].max()),
                                  p_distress=p_dis, category_probs=cat_p[j], top_unit=units[j].label,
                                  feats=feats[i], windowing=wins[i]))
        return out

    def _assessment(self, text: str, s: TextScores) -> RiskAssessment:
        signals = list(s.feats.signals)
        if s.windowing.total > 1:
            detail = f"read {s.windowing.read} of {s.windowing.total} windows"
            signals.append(RiskSignal(name="long_input", detail=detail, weight=round(s.windowing.coverage, 3)))
        if s.top_unit != "text":
            signals.append(RiskSignal(name="strongest_part", detail=s.top_unit, weight=round(s.p_harm, 3)))
        probs = {cid: float(s.p_harm * p) for cid, p in zip(self.category_ids, s.category_probs, strict=True)}
        probs["none"] = 1.0 - s.p_harm
        keep = sorted(probs.items(), key=lambda kv: -kv[1])
        category_probs = {k: round(v, 4) for n, (k, v) in enumerate(keep) if n < 3 or v >= 0.01}
        form = F.interaction_form(text)
        lang = language_of(text)
        views = [text] + [v for _, v in s.feats.views.views]
        mass_harm = next((c for v in views if (c := mass_harm_cue(v))), "")
        return decide(p_harm=s.p_harm, p_adv=s.p_adv, p_distress=s.p_distress, category_probs=category_probs,
                      form=form, language=lang, policy=self.policy, threshold=self.heads.threshold_for(lang, self.operating_point),
                      signals=signals, decoded_hit=s.top_unit.startswith("decoded:"), assessor=self.name,
                      opinion_cue=s.feats.value("opinion") > 0,
                      mass_harm=mass_harm,  # how_to only matters with a named means of mass harm
                      how_to=bool(mass_harm) and any(asks_how_to(v) for v in views))

    def assess_batch(self, items: list[Any]) -> list[RiskAssessment]:
        texts = [prepare(x) for x in items]
        live = [i for i, t in enumerate(texts) if t.strip()]
        tails = [(i, seg) for i in live if (seg := last_segment(texts[i]))] if self.read_payload else []
        # one encoder pass for the whole texts and their last segments
        scores = self.score([texts[i] for i in live] + [seg for _, seg in tails])
        out: list[RiskAssessment] = [self._empty(texts[i]) for i in range(len(texts))]
        for i, s in zip(live, scores[:len(live)], strict=True):
            out[i] = self._assessment(texts[i], s)
        for (i, seg), s in zip(tails, scores[len(live):], strict=True):
            out[i] = self._worse_with_payload(out[i], self._assessment(seg, s))
        return out

    @staticmethod
    def _worse_with_payload(whole: RiskAssessment, payload: RiskAssessment) -> RiskAssessment:
        """The last segment counts only when, read alone, it is R2 and the whole is not: a frame diluted a
        request that is plainly severe (measured in bench/bench_payload_reading.py: most of the recall a
        looser rule buys, for a fraction of its false positives)."""
        if payload.level != RiskLevel.R2 or whole.level == RiskLevel.R2 or whole.category == "mental_health":
            return whole  # (a distressed writer's safety comes first, as in decide())
        signal = RiskSignal(name="strongest_part", detail="last segment", weight=payload.harmful_probability)
        return payload.model_copy(update={
            "language": whole.language, "interaction_form": whole.interaction_form,
            "adversarial_probability": max(whole.adversarial_probability, payload.adversarial_probability),
            "signals": [*whole.signals, signal]})

    def _empty(self, text: str) -> RiskAssessment:
        return RiskAssessment(assessor=self.name, language="en", confidence=1.0, category_probs={"none": 1.0},
                              signals=[RiskSignal(name="empty_input", detail="nothing to assess")])

    def assess(self, text_or_messages: Any) -> RiskAssessment:
        return self.assess_batch([text_or_messages])[0]

    async def aassess(self, text_or_messages: Any) -> RiskAssessment:
        return await asyncio.to_thread(self.assess, text_or_messages)
