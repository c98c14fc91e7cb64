#!/usr/bin/env bash
# The integrations' tests, each in its own venv layered over the core one (.venv): the host tools pin
# versions that clash with the core's (huggingface-hub<2 for NeMo's fastembed and for LiteLLM), so they
# never go into .venv itself. An extra that cannot install here is reported as skipped, with pip's
# reason; a test that fails fails the run.
#   bash scripts/test-extras.sh [.venv] [inspect nemo litellm]
set -uo pipefail
cd "$(dirname "$0")/.."
CORE=${1:-.venv}
shift || true
EXTRAS=${*:-inspect nemo litellm}
SITE=$("$CORE/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
status=0

install_extra() {  # $1 extra, $2 venv python
  local pip="$2 -m pip install --quiet --disable-pip-version-check"
  case "$1" in
    inspect) $pip "inspect-ai==$(pin inspect inspect-ai)" ;;
    # NeMo without fastembed (its embeddings search, unused by these rails, pins huggingface-hub<2)
    nemo) $pip aiohttp aiohttp-retry "dataclasses-json>=0.6.7,<0.7" "jsonschema>=4.26,<5" lark nest-asyncio \
            prompt-toolkit "protobuf>=5.29.5" simpleeval && $pip --no-deps "nemoguardrails==$(pin nemo nemoguardrails)" ;;
    litellm) $pip "litellm[proxy]==$(pin litellm litellm)" "transformers<5.25" ;;
    *) echo "unknown extra $1" >&2; return 2 ;;
  esac
}

pin() {  # the == version of package $2 in extra $1 of pyproject.toml
  "$CORE/bin/python" - "$1" "$2" <<'EOF'
import re, sys, tomllib
deps = tomllib.load(open("pyproject.toml", "rb"))["project"]["optional-dependencies"][sys.argv[1]]
print(next(re.split(r"==", d)[1] for d in deps if re.match(re.escape(sys.argv[2]) + r"(\[.*\])?==", d)))
EOF
}

for extra in $EXTRAS; do
  venv=".venv-extras/$extra"
  stamp="$venv/.installed-$(sha1sum pyproject.toml | cut -c1-12)"
  if [ ! -f "$stamp" ]; then
    rm -rf "$venv" && "$CORE/bin/python" -m venv "$venv"
    # the core's packages, and this checkout's src (the core's editable install is a .pth of its own,
    # which a layered path does not run)
    printf '%s\n%s\n' "$SITE" "$PWD/src" > "$("$venv/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')/zz_core.pth"
    t0=$(date +%s)
    if ! log=$(install_extra "$extra" "$venv/bin/python" 2>&1); then
      echo "SKIPPED pearlpoint[$extra]: it does not install here: $(echo "$log" | grep -m1 -i error)"
      continue
    fi
    echo "pearlpoint[$extra] installed in $(( $(date +%s) - t0 )) s"
    touch "$stamp"
  fi
  echo "== tests/integrations/test_$extra.py in $venv"
  "$venv/bin/python" -m pytest -q "tests/integrations/test_$extra.py" || status=1
done
exit $status
