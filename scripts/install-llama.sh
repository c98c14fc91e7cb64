#!/usr/bin/env bash
# Build llama-cpp-python once per (version, CPU level) and install it into the given venv.
#
# Why: a default llama.cpp build uses GGML_NATIVE=ON, which compiles in every instruction the *build*
# CPU reports (AVX-512 BF16, AMX tiles, ...); on some VMs one of those faults at run time (SIGILL).
# The default here is a portable x86-64 baseline (AVX2 + FMA + F16C) that runs on any CPU of the
# last decade. PEARL_LLAMA_BUILD=native opts in to the native build; PEARL_LLAMA_CMAKE_ARGS adds flags.
#
# pip's own wheel cache keys a locally built wheel by the sdist only, not by CMAKE_ARGS, so a cached
# native wheel would silently come back. This script keeps its own cache, keyed by version and flags,
# under ${PEARL_WHEEL_CACHE:-~/.cache/pearlpoint/wheels}.
set -euo pipefail
PY="${1:?usage: install-llama.sh PATH/TO/python}"
VERSION="${PEARL_LLAMA_VERSION:-0.3.36}"
LEVEL="${PEARL_LLAMA_BUILD:-portable}"
case "$LEVEL" in
  portable) FLAGS="-DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON -DGGML_AVX512=OFF" ;;
  native)   FLAGS="-DGGML_NATIVE=ON" ;;
  *) echo "install-llama.sh: PEARL_LLAMA_BUILD must be 'portable' or 'native', not '$LEVEL'" >&2; exit 2 ;;
esac
FLAGS="-DLLAVA_BUILD=OFF $FLAGS ${PEARL_LLAMA_CMAKE_ARGS:-}"
KEY="$(printf '%s|%s|%s' "$VERSION" "$FLAGS" "$("$PY" -c 'import sys;print(sys.implementation.cache_tag)')" | sha256sum | cut -c1-16)"
CACHE="${PEARL_WHEEL_CACHE:-$HOME/.cache/pearlpoint/wheels}/llama-cpp-python-$VERSION-$LEVEL-$KEY"
if ! ls "$CACHE"/llama_cpp_python-*.whl >/dev/null 2>&1; then
  echo "building llama-cpp-python $VERSION ($LEVEL: $FLAGS); about 4 minutes on 2 cores"
  mkdir -p "$CACHE.tmp"
  CMAKE_ARGS="$FLAGS" "$PY" -m pip wheel --quiet --no-deps --no-cache-dir -w "$CACHE.tmp" "llama-cpp-python==$VERSION"
  rm -rf "$CACHE"; mv "$CACHE.tmp" "$CACHE"
  printf '%s\n' "$FLAGS" > "$CACHE/BUILD_FLAGS"
fi
"$PY" -m pip install --quiet --force-reinstall --no-deps "$CACHE"/llama_cpp_python-*.whl
# record what was built, for `pearl doctor` and the embedded backend's load check
"$PY" - "$LEVEL" "$FLAGS" "$VERSION" <<'PYEOF'
# find the package without importing it: its dependencies are installed later by pip install -e
import importlib.util, json, pathlib, sys
spec = importlib.util.find_spec("llama_cpp")
p = pathlib.Path(spec.origin).parent / "pearl_build.json"
version = sys.argv[3]
p.write_text(json.dumps({"level": sys.argv[1], "cmake_args": sys.argv[2], "version": version}))
PYEOF
echo "llama-cpp-python $VERSION installed ($LEVEL)"
