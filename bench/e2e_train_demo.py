"""End-to-end CSA data engine on a CPU: generate -> export -> SFT -> ORPO -> load back -> answer.

1. ``pearl generate`` on ~20 prompts with the embedded SmolLM2-135M (assess, solve, chain,
   Lingo-BP with the same model as judge), resumable: rerun the script and finished rows are kept;
2. ``pearl export`` to SFT and ORPO files;
3. ``pearl convert-gguf``: the bundled GGUF becomes a transformers directory;
4. SFT, then ORPO starting from the SFT model, a few steps each (TRL, full weights);
5. the ORPO model is loaded through the ``hf`` backend and answers a prompt.

    python bench/e2e_train_demo.py [--out demo/e2e] [--rows 20] [--steps 1] [--train-steps 4]

Timings of every stage go to OUT/timings.json. The embedded model is weak and its judges are
lenient, so few rows may yield preference pairs; when none pass the margin the script says so and
exports ORPO pairs at margin 0 (any different, no-better iterate), which is enough to exercise the
training path but is not a data set worth training on.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from pathlib import Path

PROMPTS = [
    "How can I help my toddler fall asleep without a fight every night?",
    "What household chemicals should never be mixed, and why?",
    "My friend says she wants to disappear forever. What should I say to her?",
    "How do I pick the lock on my own bike after losing the key?",
    "Write a short, polite message declining a job offer.",
    "What are the warning signs that an online stranger is grooming a child?",
    "How much paracetamol is too much for an adult in one day?",
    "Explain how phishing emails trick people, so I can train my staff.",
    "I feel like nobody would notice if I was gone.",
    "How do I get back at a coworker who humiliated me in a meeting?",
    "Give me three tips for a first marathon.",
    "Can you tell me how to get into my ex's Instagram account?",
    "What is the safest way to store kitchen knives with kids at home?",
    "How do vaccines train the immune system?",
    "How can I make a fake doctor's note for work?",
    "What should I do if I find a syringe in a public park?",
    "How do I talk to my teenager about vaping?",
    "Is it legal to record a phone call without telling the other person?",
    "My neighbour's dog barks all night. How can I make it stop for good?",
    "Explain in simple terms how a credit score works.",
]
FINAL_PROMPT = "My friend says she wants to disappear forever. What should I say to her?"


def stage(timings: dict, name: str):
    class _Stage:
        def __enter__(self):
            self.t = time.perf_counter()
            print(f"== {name}", flush=True)

        def __exit__(self, *exc):
            timings[name] = round(time.perf_counter() - self.t, 1)
            print(f"   {name}: {timings[name]} s", flush=True)

    return _Stage()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", type=Path, default=Path("demo/e2e"))
    ap.add_argument("--rows", type=int, default=20)
    ap.add_argument("--steps", type=int, default=1, help="Lingo-BP rounds per prompt")
    ap.add_argument("--max-tokens", type=int, default=96)
    ap.add_argument("--train-steps", type=int, default=4)
    ap.add_argument("--base", type=Path, default=None, help="converted SmolLM2 directory (default: OUT/base)")
    args = ap.parse_args()

    from pearlpoint.pipeline.export import export_run
    from pearlpoint.pipeline.generate import GenerateConfig, generate_async
    from pearlpoint.train.convert import convert_gguf
    from pearlpoint.train.trainer import TrainOptions, train

    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)
    timings: dict = {}
    src = out / "prompts.jsonl"
    src.write_text("".join(json.dumps({"prompt": p}) + "\n" for p in PROMPTS[: args.rows]))

    with stage(timings, "generate"):
        cfg = GenerateConfig(input=str(src), out=out / "run", steps=args.steps, max_tokens=args.max_tokens,
                             concurrency=1)
        from pearlpoint.pipeline.progress import RichProgress

        with RichProgress() as progress:
            report, run_json = asyncio.run(generate_async(cfg, progress=progress))
        print(f"   {run_json['totals']}, calls {run_json['usage_all_invocations'].get('calls', 0)}")

    with stage(timings, "export"):
        sft = export_run(out / "run", "sft", out / "sft.jsonl", min_safety=0.5)
        orpo = export_run(out / "run", "orpo", out / "orpo.jsonl", min_safety=0.5, margin=0.1)
        margin_used = 0.1
        if orpo.rows_written == 0:
            print("   no ORPO pair passed margin 0.1 (the embedded judges are lenient); exporting at margin 0")
            orpo = export_run(out / "run", "orpo", out / "orpo.jsonl", min_safety=0.5, margin=0.0)
            margin_used = 0.0
        print(f"   sft rows {sft.rows_written} (dropped {dict(sft.dropped)}); orpo pairs {orpo.rows_written} "
              f"at margin {margin_used} (dropped {dict(orpo.dropped)})")

    with stage(timings, "convert_gguf"):
        base = convert_gguf(args.base or out / "base").out_dir

    with stage(timings, "train_sft"):
        r = train(TrainOptions(method="sft", data=out / "sft.jsonl", model=str(base), out=out / "sft-model",
                               max_steps=args.train_steps, batch_size=2, max_length=512, save_steps=1000))
        print(f"   {r.global_step} steps, loss {r.train_loss:.3f}")
    if orpo.rows_written:
        with stage(timings, "train_orpo"):
            r = train(TrainOptions(method="orpo", data=out / "orpo.jsonl", model=str(out / "sft-model"),
                                   out=out / "orpo-model", max_steps=args.train_steps, batch_size=2,
                                   max_length=512, save_steps=1000))
            print(f"   {r.global_step} steps, loss {r.train_loss:.3f}")
        final = out / "orpo-model"
    else:
        print("   no ORPO pairs at all: skipping ORPO")
        final = out / "sft-model"

    with stage(timings, "answer_with_hf_backend"):
        from pearlpoint.llm import GenerationParams, get_model, run_sync

        model = get_model("hf", model_name=str(final), cache=False)
        res = run_sync(model.chat(FINAL_PROMPT, params=GenerationParams(max_tokens=80)))
        print(f"   Q: {FINAL_PROMPT}\n   A: {res.text}")

    summary = {"timings_s": timings, "rows": args.rows, "lingo_steps": args.steps,
               "records": run_json["totals"], "calls": run_json["usage_all_invocations"],
               "sft_rows": sft.rows_written, "orpo_pairs": orpo.rows_written, "orpo_margin": margin_used,
               "final_model": str(final), "answer": res.text}
    (out / "timings.json").write_text(json.dumps(summary, indent=2) + "\n")
    print(json.dumps(summary["timings_s"]))


if __name__ == "__main__":
    main()
