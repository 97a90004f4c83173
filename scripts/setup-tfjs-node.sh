#!/usr/bin/env bash
# Makes @tensorflow/tfjs-node (the native `tensorflow` TF.js backend) usable.
#
#   1. Already built?                                   -> done.
#   2. A TensorFlow CPU wheel available offline ($TF_WHEEL, or `pip download` from a local
#      package mirror)?                                 -> build the addon against the wheel's
#      libtensorflow (no internet needed).
#   3. Otherwise run tfjs-node's own installer, which downloads libtensorflow (needs internet).
#
# Never fails `npm install` when called with --best-effort: the wasm backend is the fallback.
# Extracted libraries are cached in ${STREAMREC_CACHE_DIR:-~/.cache/streamrec}/tfjs-node.
set -uo pipefail
best_effort=0
[ "${1:-}" = "--best-effort" ] && best_effort=1
root=$(cd "$(dirname "$0")/.." && pwd)
pkg="$root/node_modules/@tensorflow/tfjs-node"
cache="${STREAMREC_CACHE_DIR:-$HOME/.cache/streamrec}/tfjs-node"
tf_version="${TF_WHEEL_VERSION:-2.21.0}"
say() { echo "[setup-tfjs-node] $*" >&2; }
fail() { say "$*"; [ $best_effort = 1 ] && exit 0; exit 1; }

works() { (cd "$root" && TF_CPP_MIN_LOG_LEVEL=3 node -e "require('@tensorflow/tfjs-node')" >/dev/null 2>&1); }

[ -d "$pkg" ] || fail "@tensorflow/tfjs-node is not installed (optional dependency); the wasm backend will be used"
if works; then say "tfjs-node already works"; exit 0; fi

export PATH="$root/node_modules/.bin:$PATH"
# node-gyp needs Node's headers; use the system ones when present (no download).
if [ -z "${npm_config_nodedir:-}" ] && [ -f /usr/include/node/node.h ]; then export npm_config_nodedir=/usr; fi

stage_from_wheel() {
  local libdir="$cache/libtensorflow-$tf_version"
  if [ ! -f "$libdir/.complete" ]; then
    local wheel="${TF_WHEEL:-}"
    if [ -z "$wheel" ]; then
      command -v pip >/dev/null 2>&1 || return 1
      mkdir -p "$cache/wheels"
      wheel=$(ls "$cache"/wheels/tensorflow_cpu-"$tf_version"-*.whl 2>/dev/null | head -1)
      if [ -z "$wheel" ]; then
        say "looking for tensorflow-cpu==$tf_version in the local pip index"
        timeout 300 pip download --no-deps -q -d "$cache/wheels" "tensorflow-cpu==$tf_version" >/dev/null 2>&1 || return 1
        wheel=$(ls "$cache"/wheels/tensorflow_cpu-"$tf_version"-*.whl 2>/dev/null | head -1)
      fi
    fi
    [ -n "$wheel" ] && [ -f "$wheel" ] || return 1
    say "extracting libtensorflow from $(basename "$wheel")"
    rm -rf "$libdir.tmp" && mkdir -p "$libdir.tmp"
    (cd "$libdir.tmp" && unzip -q "$wheel" 'tensorflow/libtensorflow_framework.so.2' 'tensorflow/libtensorflow_cc.so.2' \
      'tensorflow/include/tensorflow/*' 'tensorflow/include/tsl/*' 'tensorflow/include/xla/*') || return 1
    mkdir -p "$libdir.tmp/lib" "$libdir.tmp/include"
    mv "$libdir.tmp"/tensorflow/*.so.2 "$libdir.tmp/lib/"
    mv "$libdir.tmp"/tensorflow/include/* "$libdir.tmp/include/"
    rm -rf "$libdir.tmp/tensorflow" "$libdir" && mv "$libdir.tmp" "$libdir" && touch "$libdir/.complete"
  fi
  # The addon links -ltensorflow and finds the libraries through rpath $ORIGIN/../../deps/lib.
  rm -rf "$pkg/deps" && mkdir -p "$pkg/deps/lib"
  ln -s "$libdir/include" "$pkg/deps/include"
  for f in libtensorflow_cc.so.2 libtensorflow_framework.so.2; do ln -s "$libdir/lib/$f" "$pkg/deps/lib/$f"; done
  (cd "$pkg/deps/lib" && ln -s libtensorflow_cc.so.2 libtensorflow.so.2.9.1 && ln -s libtensorflow_cc.so.2 libtensorflow.so \
    && ln -s libtensorflow_framework.so.2 libtensorflow_framework.so.2.9.1 && ln -s libtensorflow_framework.so.2 libtensorflow_framework.so)
  # A custom library means: build the addon from source instead of downloading a prebuilt one.
  echo '{"tf-lib": "local wheel libtensorflow '"$tf_version"'"}' > "$pkg/scripts/custom-binary.json"
  return 0
}

if stage_from_wheel; then
  say "building the tfjs-node addon against the wheel's libtensorflow"
  (cd "$pkg" && node scripts/install.js >/dev/null 2>&1) || fail "building the tfjs-node addon failed"
else
  say "no local TensorFlow wheel; running tfjs-node's own installer (downloads libtensorflow)"
  rm -f "$pkg/scripts/custom-binary.json"
  (cd "$pkg" && timeout 600 node scripts/install.js >/dev/null 2>&1) || fail "tfjs-node's installer failed (offline?); the wasm backend will be used"
fi
works || fail "tfjs-node was built but does not load"
say "tfjs-node ready"
