"""The data recipe for the embedded assessor: which rows, which labels, which split.

Sources (all optional; a missing file is skipped with a note):
- harmful prompts with categories from the public sets in ``--data-dir`` (Do-Not-Answer, HarmBench, JBB
  harmful, SimpleSafetyTests, Strata-Sword CN), mapped onto the pearlpoint policy ids below;
- benign prompts: JBB benign plus the project's own look-alikes, borderline, everyday, distress and
  benign-but-wrapped prompts shipped in ``pearlpoint/risk/data/*.txt``;
- adversarial variants the project generates from its own attack templates (``augment.py``).

Never used at all: rows that a public set copied from a benchmark the project is measured on
(``MEASURED_ON``: JBB-Behaviors' AdvBench rows).

Held out, never trained on: StrongREJECT (a whole public set, ``public_test``), ``heldout_style.txt``
(look-alikes in a different, chatty writing style, ``style_test``) and ``heldout_plain.txt`` (safe
look-alikes and plain harmful requests written by a second author in the styles of public over-refusal and
harmful-request lists, ``plain_test``). The rest is split train/calibration/test by *group* (a Strata-Sword base
instruction and all its attack variants share a group) with a fixed seed.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from importlib import resources
from pathlib import Path

from pearlpoint.io import iter_jsonl_strict

# Benchmarks pearlpoint is measured on: a public set's row whose stated source is one of these is never
# trained on (JBB-Behaviors takes 18 of its harmful rows from AdvBench and says so in its Source column).
MEASURED_ON = frozenset({"advbench", "xstest", "strongreject", "strata-sword-en"})

# --- label maps: public dataset categories -> policy category ids ---------------------------------
DNA_SPECIFIC = {
    "Explicit Sexual Content": "harmful_scenes", "Graphic Violence": "harmful_scenes",
    "Animal Abuse/Cruelty/Poaching": "biodiversity_protection", "Copyright Infringement": "intellectual_property",
    "Financial Crimes": "commercial_law_violations", "Illegal Digital Activities": "cybersecurity",
    "Illegal Drugs and Substances": "illegal_drugs", "Illegal Trade": "illegal_acts",
    "Illegitimate surveillance and censorship": "personal_rights_violation",
    "Sexual Exploitation and Pornography": "harmful_scenes", "Substance Abuse": "illegal_drugs",
    "Terrorist Activities": "violent_terror", "Threats and Intimidation": "personal_rights_violation",
    "Violence and Physical Harm": "bodily_harm", "Financial Advice": "investment_finance",
    "Legal Advice": "legal_consultation", "Medical Advice": "healthcare", "Unreliable Experts": "healthcare",
    "Biometric Data": "personal_data", "Educational Information": "personal_data", "Financial Information": "personal_data",
    "Medical Information": "personal_data", "Personal Identification Information (PII)": "personal_data",
    "Personal Life Information": "personal_data", "False News": "false_rumors",
    "Hazardous Activities": "common_sense_errors", "Misinterpretation or Wrong Context": "false_rumors",
    "Propaganda": "false_rumors", "Rumors": "false_rumors", "Self-Harm": "mental_health",
    "Defamatory Content": "personal_rights_violation", "Endorsement of Cyberbullying or Online Harassment": "hate_abuse",
    "Endorsement of Unsafe Health Practices": "healthcare",
    "Guide for Risky Pranks, Unsafe Behaviors or Destructive Behavior, Substance Misuse": "bodily_harm",
    "Trolling or Flame baiting": "hate_abuse", "Disinformation": "false_rumors", "Malinformation": "false_rumors",
    "Spam Content": "business_ethics", "Classified Information": "sensitive_data", "Confidential Operations": "sensitive_data",
    "Cybersecurity Vulnerabilities": "cybersecurity", "Financial and Budgetary Information": "business_data",
    "Internal Communications": "business_data", "Internal Policies and Procedures": "business_data",
    "Legal Information": "business_data", "Sensitive Technological Details": "business_data",
    "Body Shaming": "gender_occupation_age", "Disability Discrimination": "vulnerable_groups",
    "Gender/Sexual Discrimination": "gender_occupation_age", "Location Discrimination": "race_ethnicity_religion_region",
    "Other Forms of Discrimination": "gender_occupation_age", "Racial/Ethnic Discrimination": "race_ethnicity_religion_region",
    "Religious Discrimination": "race_ethnicity_religion_region", "Insult": "hate_abuse", "Obscene": "hate_abuse",
    "Other Severe Toxicity": "hate_abuse",
}
# Do-Not-Answer rows asking for support rather than harm: a vulnerable user, not a harmful request.
DNA_SUPPORT_SEEKING = ("Depression and Anxiety", "Advice of coping strategies", "Consult advice on psychotic disorders")
DNA_SKIP_TYPES = ("Treat Chatbot as a Human",)  # "do you love me?": not a safety risk in this taxonomy
HARMBENCH = {"chemical_biological": "hazardous_materials", "illegal": "illegal_acts",
             "misinformation_disinformation": "false_rumors", "harmful": "bodily_harm",
             "harassment_bullying": "hate_abuse", "cybercrime_intrusion": "cybersecurity", "copyright": "intellectual_property"}
JBB = {"Harassment/Discrimination": "hate_abuse", "Malware/Hacking": "cybersecurity", "Physical harm": "bodily_harm",
       "Economic harm": "commercial_law_violations", "Fraud/Deception": "illegal_acts", "Disinformation": "false_rumors",
       "Sexual/Adult content": "harmful_scenes", "Privacy": "personal_data", "Expert advice": "healthcare",
       "Government decision-making": "illegal_acts"}
SST = {"Suicide, Self-Harm, and Eating Disorders": "mental_health", "Physical harm and Violence": "bodily_harm",
       "Illegal and Highly Regulated items": "hazardous_materials", "Scams and fraud": "illegal_acts",
       "Child safety": "harmful_scenes"}
STRONGREJECT = {"Illegal goods and services": "illegal_acts", "Hate, harassment and discrimination": "hate_abuse",
                "Non-violent crimes": "illegal_acts", "Disinformation and Deception": "false_rumors",
                "Violence": "bodily_harm", "Sexual content": "harmful_scenes"}


@dataclass
class Example:
    text: str
    lang: str  # en | zh
    harmful: int  # 1: fully complying would cause harm
    category: str  # policy id, "none" for benign, "" when unknown
    adversarial: int  # 1: the request is wrapped in an attack form
    distress: int  # 1: the writer may be vulnerable / in distress
    source: str
    group: str  # rows sharing a group are never split across train/test
    kind: str = ""  # harmful | lookalike | borderline | everyday | distress | benign_wrapped | benign
    level: int = 0  # Strata-Sword level (1-3), 0 elsewhere
    split: str = ""  # train | calib | test | public_test | style_test

    def to_json(self) -> str:
        return json.dumps(asdict(self), ensure_ascii=False)


def _jsonl(path: Path) -> Iterator[dict]:
    for _, row in iter_jsonl_strict(path):
        yield row


def _lang(text: str) -> str:
    cjk = len(re.findall(r"[\u4e00-\u9fff]", text))
    return "zh" if cjk >= max(2, 0.15 * len(text.strip())) else "en"


def _gid(*parts: str) -> str:
    return hashlib.sha1("\x1f".join(parts).encode("utf-8")).hexdigest()[:12]


def _bigrams(text: str) -> set[str]:
    chars = re.findall(r"[\u4e00-\u9fff]", text)
    return {a + b for a, b in zip(chars, chars[1:], strict=False)}


def _closest_base(prompt: str, bases: list[str]) -> str:
    """The plain Strata-Sword instruction an attack variant wraps (so both land in the same split)."""
    from pearlpoint.risk.features import decode_views

    texts = [prompt] + [t for _, t in decode_views(prompt).views]
    grams = set().union(*(_bigrams(t) for t in texts))
    best, best_score = prompt, 0.0
    for b in bases:
        bg = _bigrams(b)
        if not bg:
            continue
        score = len(bg & grams) / len(bg)
        if score > best_score:
            best, best_score = b, score
    return best if best_score >= 0.5 else prompt


def load_shared(data_dir: Path, notes: list[str] | None = None) -> list[Example]:
    """Harmful (and JBB benign) rows from the public sets in ``data_dir``; StrongREJECT marked public_test."""
    notes = notes if notes is not None else []
    out: list[Example] = []

    def have(name: str) -> Path | None:
        p = data_dir / name
        if p.is_file():
            return p
        notes.append(f"missing {p}: skipped")
        return None

    if p := have("do_not_answer.jsonl"):
        for r in _jsonl(p):
            specific = r["specific_harms"].split(":")[0].strip()
            q = r["question"]
            if r["types_of_harm"] in DNA_SKIP_TYPES:
                continue
            if specific.startswith(DNA_SUPPORT_SEEKING):
                out.append(Example(q, _lang(q), 0, "none", 0, 1, "do_not_answer", _gid("dna", q), "distress"))
                continue
            cat = DNA_SPECIFIC.get(specific, "")
            out.append(Example(q, _lang(q), 1, cat, 0, int(cat == "mental_health"), "do_not_answer",
                               _gid("dna", q), "harmful"))
    if p := have("harmbench_behaviors_text_all.jsonl"):
        for r in _jsonl(p):
            q = r["Behavior"]
            out.append(Example(q, "en", 1, HARMBENCH.get(r["SemanticCategory"], ""), 0, 0, "harmbench",
                               _gid("hb", q), "harmful"))
    if p := have("jbb_behaviors.jsonl"):
        skipped = 0
        for r in _jsonl(p):
            q = r["Goal"]
            if str(r.get("Source", "")).strip().casefold() in MEASURED_ON:
                skipped += 1  # a row copied from a benchmark the project is measured on: never trained on
                continue
            if r["split"] == "benign":
                out.append(Example(q, "en", 0, "none", 0, 0, "jbb_benign", _gid("jbb", r["Index"]), "benign"))
            else:
                out.append(Example(q, "en", 1, JBB.get(r["Category"], ""), 0, 0, "jbb_harmful",
                                   _gid("jbb", r["Index"]), "harmful"))
        if skipped:
            notes.append(f"{p.name}: {skipped} rows taken from AdvBench left out (the project is measured on it)")
    if p := have("simplesafetytests.jsonl"):
        for r in _jsonl(p):
            q = r["prompts_final"]
            cat = SST.get(r["harm_area"], "")
            out.append(Example(q, "en", 1, cat, 0, int(cat == "mental_health"), "simplesafetytests",
                               _gid("sst", q), "harmful"))
    if p := have("strata_sword_cn.jsonl"):
        rows = list(_jsonl(p))
        bases = [r["prompt"] for r in rows if int(r["level"]) == 1]
        for r in rows:
            q = r["prompt"]
            base = q if int(r["level"]) == 1 else _closest_base(q, bases)
            out.append(Example(q, "zh", 1, "", int(r["level"] >= 2), 0, "strata_sword",
                               _gid("strata", base), "harmful", level=int(r["level"])))
    if p := have("strongreject_small.jsonl"):
        for r in _jsonl(p):
            q = r["forbidden_prompt"]
            out.append(Example(q, "en", 1, STRONGREJECT.get(r["category"], ""), 0, 0, "strongreject",
                               _gid("sr", q), "harmful", split="public_test"))
    return out


_HEADER = re.compile(r"^##\s+(.*)$")


def parse_prompt_file(text: str, source: str) -> list[Example]:
    """Parse the project's ``topic | prompt`` files (see the header of lookalikes_en.txt)."""
    meta: dict[str, str] = {}
    out: list[Example] = []
    for line in text.splitlines():
        line = line.rstrip()
        if not line or (line.startswith("#") and not line.startswith("##")):
            continue
        m = _HEADER.match(line)
        if m:
            meta = dict(kv.split("=", 1) for kv in m.group(1).split())
            continue
        topic, _, prompt = line.partition(" | ")
        prompt = prompt.replace("\\n", "\n").strip()
        if not prompt:
            continue
        kind = meta.get("kind", "lookalike")
        # "split=test" holds a block out as style_test; "split=test:NAME" as its own NAME_test split.
        held = meta.get("split", "")
        split = "style_test" if held == "test" else (f"{held[5:]}_test" if held.startswith("test:") else "")
        harmful = int(kind == "harmful_seed")
        category = topic.strip() if harmful else "none"
        distress = int(kind == "distress" or (harmful and category == "mental_health"))
        out.append(Example(prompt, meta.get("lang", _lang(prompt)), harmful, category, 0, distress,
                           f"pearlpoint_{kind}", _gid(source, topic.strip(), prompt), kind, split=split))
    return out


PROMPT_FILES = ("category_seeds.txt", "lookalikes_en.txt", "lookalikes_mixed.txt", "lookalikes_zh.txt", "distress.txt",
                "benign_wrapped.txt", "everyday_short.txt", "plain_harmful.txt", "lookalikes_more.txt", "harmful_more.txt",
                "lookalikes_chatty.txt",
                "heldout_style.txt", "heldout_plain.txt")
HELD_OUT_SPLITS = ("public_test", "style_test", "plain_test")  # never trained on, never used to calibrate


def load_own() -> list[Example]:
    """The project's own benign, borderline and distress prompts shipped in the package."""
    root = resources.files("pearlpoint.risk").joinpath("data")
    out: list[Example] = []
    for name in PROMPT_FILES:
        out.extend(parse_prompt_file(root.joinpath(name).read_text("utf-8"), name))
    return out


def recipe_rows(data_dir: Path, seed: int = 13, notes: list[str] | None = None) -> list[Example]:
    """Every row the heads' recipe uses: the public sets and the project's own prompts, split by group
    with ``seed``, plus the augmentations of the train, calib and test rows (each in its source's split)."""
    from pearlpoint.risk.augment import augment  # augment reads Example from this module

    rows = load_shared(data_dir, notes) + load_own()
    assign_splits(rows, seed=seed)
    return rows + augment([r for r in rows if r.split in ("train", "calib", "test")], seed=seed)


def assign_splits(rows: list[Example], seed: int = 13, calib: float = 0.15, test: float = 0.2) -> None:
    """Deterministic group split: the group hash (salted with the seed) picks the split."""
    for r in rows:
        if r.split:
            continue
        h = int(hashlib.sha1(f"{seed}:{r.group}".encode()).hexdigest()[:8], 16) / 0xFFFFFFFF
        r.split = "test" if h < test else ("calib" if h < test + calib else "train")
