#!/usr/bin/env bash
# Compiles serving_check against the C++ library inside the TensorFlow wheel.
#
# Usage: tools/serving_check/build.sh [OUTPUT]
#   OUTPUT   where the binary goes (default: /tmp/keras_gen_serving_check/serving_check).
#   PYTHON   the Python whose TensorFlow to link (default: .venv/bin/python of this checkout).
#   CXX      the C++ compiler (default: g++).
# Exits 77 (the "skipped" status of automake test harnesses) when the compiler, the headers or the
# libraries are missing, so a test can tell "cannot build here" from "the build broke".
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../.." && pwd)
python=${PYTHON:-$root/.venv/bin/python}
cxx=${CXX:-g++}
output=${1:-/tmp/keras_gen_serving_check/serving_check}

cannot_build() {
    echo "serving_check cannot be built here: $*" >&2
    exit 77
}

command -v "$cxx" >/dev/null || cannot_build "no C++ compiler '$cxx' (set CXX)"
[ -x "$python" ] || cannot_build "no Python at '$python' (set PYTHON)"
# find_spec locates the package without importing TensorFlow, which takes seconds.
tf_dir=$("$python" -c 'import importlib.util; print(importlib.util.find_spec("tensorflow").submodule_search_locations[0])' 2>/dev/null) \
    || cannot_build "TensorFlow is not installed for $python"
[ -f "$tf_dir/include/tensorflow/cc/saved_model/loader.h" ] || cannot_build "no C++ headers under $tf_dir/include"
for library in libtensorflow_framework.so.2 libtensorflow_cc.so.2; do
    [ -f "$tf_dir/$library" ] || cannot_build "no $library in $tf_dir"
done

mkdir -p "$(dirname "$output")"
# The flags are those of tf.sysconfig.get_compile_flags(), with the headers as -isystem so that their
# many deprecation warnings do not bury ours; --no-as-needed keeps libtensorflow_cc,
# whose static initialisers register the kernels even though nothing names them directly.
# Written beside the target and renamed, so a failed build never leaves a half-written binary.
partial="$output.partial.$$"
trap 'rm -f "$partial"' EXIT
"$cxx" -std=c++17 -O1 -D_GLIBCXX_USE_CXX11_ABI=1 -DEIGEN_MAX_ALIGN_BYTES=64 -Wall -Wextra \
    -isystem "$tf_dir/include" \
    "$here/serving_check.cc" -o "$partial" \
    -Wl,--no-as-needed -L"$tf_dir" -l:libtensorflow_framework.so.2 -l:libtensorflow_cc.so.2 -Wl,-rpath,"$tf_dir"
mv "$partial" "$output"
echo "$output"
