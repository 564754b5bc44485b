#!/usr/bin/env bash
# Create (or reuse) the project's virtual environment at .venv/ with the pinned
# OpenMMLab stack, including mmcv 2.1.0 compiled with its ops.
#
# mmcv 2.1.0 is published only as source. Building it took 14 minutes on two
# cores here, so the built wheel is kept in a wheelhouse outside the repository
# ($SHUFFLENET_DET_WHEELHOUSE, default ~/.cache/shufflenet_det/wheels) and reused
# by every later setup on the same machine.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
venv="$root/.venv"
py="$venv/bin/python"
stamp="$venv/.shufflenet_det-ready"
torch_version=2.11.0
mmcv_version=2.1.0
wheelhouse="${SHUFFLENET_DET_WHEELHOUSE:-${XDG_CACHE_HOME:-$HOME/.cache}/shufflenet_det/wheels}/torch$torch_version"

say() { printf '[setup_env] %s\n' "$*"; }

inputs_digest() {
    cat "$root/tools/setup_env.sh" "$root/requirements/"*.txt "$root/setup.py" | sha256sum | cut -d' ' -f1
}

if [[ -f "$stamp" && "$(cat "$stamp")" == "$(inputs_digest)" ]]; then
    say ".venv is up to date"
    exit 0
fi

find_python311() {
    for cand in "${PYTHON:-}" python3.11 python3; do
        [[ -n "$cand" ]] || continue
        if command -v "$cand" >/dev/null 2>&1 &&
            "$cand" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))'; then
            command -v "$cand"
            return 0
        fi
    done
    return 1
}

if [[ ! -x "$py" ]]; then
    base=$(find_python311) || {
        echo "[setup_env] error: Python 3.11 is required (tried \$PYTHON, python3.11, python3)" >&2
        exit 1
    }
    say "creating .venv with $base"
    "$base" -m venv "$venv"
fi

pip=("$py" -m pip install --disable-pip-version-check --progress-bar off)

say "installing torch $torch_version and the mmcv build requirements"
"${pip[@]}" -q "torch==$torch_version" "torchvision==0.26.0" "setuptools==80.9.0" wheel ninja "numpy==2.4.6"

mmcv_wheel=$(ls "$wheelhouse"/mmcv-"$mmcv_version"-*.whl 2>/dev/null | head -n 1 || true)
if [[ -z "$mmcv_wheel" ]]; then
    say "building mmcv $mmcv_version with ops (about 15 min on 2 cores; cached in $wheelhouse)"
    mkdir -p "$wheelhouse"
    tmp=$(mktemp -d "$wheelhouse/.build.XXXXXX")
    trap 'rm -rf "$tmp"' EXIT
    MMCV_WITH_OPS=1 MAX_JOBS="${MAX_JOBS:-$(nproc)}" \
        "$py" -m pip wheel --disable-pip-version-check --no-deps --no-build-isolation \
        --no-binary mmcv -w "$tmp" "mmcv==$mmcv_version"
    built=$(ls "$tmp"/mmcv-"$mmcv_version"-*.whl)
    # Move into place only once complete, so an interrupted build leaves no wheel behind.
    mv "$built" "$wheelhouse/"
    mmcv_wheel="$wheelhouse/$(basename "$built")"
else
    say "reusing $mmcv_wheel"
fi

say "installing mmcv, mmengine, mmdet, test tools and shufflenet_det (editable)"
"${pip[@]}" -q "$mmcv_wheel" -r "$root/requirements/stack.txt" -r "$root/requirements/tests.txt"
"${pip[@]}" -q --no-build-isolation --no-deps -e "$root"

"$py" - <<'PY'
import torch, torchvision, mmcv, mmengine, mmdet
from mmcv.ops import RoIAlign, nms  # noqa: F401  (fails if mmcv was built without ops)
import shufflenet_det  # noqa: F401
print(f'[setup_env] torch {torch.__version__}, torchvision {torchvision.__version__}, '
      f'mmcv {mmcv.__version__}, mmengine {mmengine.__version__}, mmdet {mmdet.__version__}')
PY
inputs_digest >"$stamp"
say "ready: $py"
