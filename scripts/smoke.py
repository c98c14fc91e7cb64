"""CI smoke: prove the installed embedded model really generates, before the test suite runs.

Why: a llama.cpp build that faults on this CPU (SIGILL) can hide behind the response cache, which
answers prompts it has seen without touching the model. So this runs `pearl doctor`, then
`pearl chat` with the response cache off (PEARL_CACHE=0) and a prompt no test and no earlier run
used (it carries the current time), and fails unless the reply is non-empty and the exit status 0.

    .venv/bin/python scripts/smoke.py     # or: make smoke
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time


def _run(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "pearlpoint", *args], capture_output=True, text=True,
                          env=env, timeout=600, stdin=subprocess.DEVNULL)


def _why(rc: int) -> str:
    if rc < 0:
        try:
            return f"killed by {signal.Signals(-rc).name}"
        except ValueError:
            return f"killed by signal {-rc}"
    return f"exit status {rc}"


def main() -> int:
    env = {**os.environ, "PEARL_CACHE": "0", "COLUMNS": "200"}
    doctor = _run(["doctor"], env)
    if doctor.returncode != 0:
        print(doctor.stdout + doctor.stderr, file=sys.stderr)
        print(f"smoke: pearl doctor failed ({_why(doctor.returncode)})", file=sys.stderr)
        return 1
    stamp = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime())
    prompt = f"It is {stamp} UTC (smoke {os.getpid()}). In one sentence, what is a good name for a cat?"
    t0 = time.perf_counter()
    chat = _run(["chat", "--no-stream", "--max-tokens", "48", prompt], env)
    secs = time.perf_counter() - t0
    reply = chat.stdout.strip()
    if chat.returncode != 0 or not reply:
        print(chat.stdout + chat.stderr, file=sys.stderr)
        print(f"smoke: pearl chat failed ({_why(chat.returncode)}, {len(reply)} characters of reply)",
              file=sys.stderr)
        return 1
    print(f"smoke ok: pearl doctor passed; pearl chat (cache off) answered {len(reply)} characters "
          f"in {secs:.1f}s: {reply[:80]!r}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
