#!/usr/bin/env bash
# Create (or reuse) a virtual environment with one of the two supported OpenMMLab stacks,
# with mmcv 2.1.0 compiled with its ops (CPU, and CUDA where torch sees a GPU or FORCE_CUDA=1):
#   bash tools/setup_env.sh                    # .venv/: requirements/stack.txt
#   bash tools/setup_env.sh --stack classic    # .venv-classic/: requirements/classic.txt
# mmcv 2.1.0 is published only as source, so the built wheel is kept for later setups in
# $SHUFFLENET_DET_WHEELHOUSE (default ~/.cache/shufflenet_det/wheels), in a folder named after
# what it was built for (tools/setup/build_env.py). Settings: docs/get_started.md.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
say() { printf '[setup_env] %s\n' "$*"; }
die() { printf '[setup_env] error: %s\n' "$*" >&2; exit 2; }

stack_name=pinned
case "${1:-}" in
    "") ;;
    --stack) stack_name=${2:-} ;;
    --stack=*) stack_name=${1#--stack=} ;;
    *) die "unknown argument '$1': expected --stack pinned or --stack classic" ;;
esac
case "$stack_name" in
    # setuptools: mmcv's setup.py imports pkg_resources, gone in 81. 80.9.0 made importing it
    # a UserWarning that every tool would print (mmengine imports it); 80.8.0 keeps it a
    # DeprecationWarning, which Python shows only for code run as __main__.
    pinned) venv=$root/.venv stack=$root/requirements/stack.txt setuptools=80.8.0
        pythons="3.11 3.12 3.10" ;;
    # torch 2.1's cpp_extension imports pkg_resources.packaging, gone in setuptools 70.
    classic) venv=$root/.venv-classic stack=$root/requirements/classic.txt setuptools=69.5.1
        pythons="3.11 3.10" ;;
    *) die "--stack '$stack_name' is not a stack: expected pinned or classic" ;;
esac
py=$venv/bin/python
stamp=$venv/.shufflenet_det-ready
build_env=$root/tools/setup/build_env.py
mmcv_version=2.1.0
wheel_root=${SHUFFLENET_DET_WHEELHOUSE:-${XDG_CACHE_HOME:-$HOME/.cache}/shufflenet_det/wheels}

# What the environment was set up from and by which checkout (a .venv linked into another
# checkout and set up there installs that one), and the build key: a .venv set up without a
# GPU is out of date where one is visible (a home folder shared with GPU nodes).
setup_state() {
    { echo "$stack_name $root"; cat "$root/tools/setup_env.sh" "$build_env" \
        "$root/requirements/"*.txt "$root/setup.py"; } | sha256sum | cut -d' ' -f1
    "$py" "$build_env" key
}
if [[ -f $stamp ]] && state=$(setup_state 2>/dev/null) && [[ "$(cat "$stamp")" == "$state" ]]; then
    say "$(basename "$venv") is up to date ($stack_name stack, ${state##*$'\n'})"
    exit 0
fi

python_version() { "$1" -c 'import sys; print("%d.%d" % sys.version_info[:2])' 2>/dev/null; }
# Every pin of the stack has wheels for these.
supported() { [[ " $pythons " == *" $1 "* ]]; }
pin() { sed -n "s/^$1==\([^;[:space:]]*\).*/\1/p" "$stack" | head -n 1; }

if [[ ! -x $py ]]; then
    read -ra candidates <<<"$(printf 'python%s ' $pythons) python3"
    [[ -z ${PYTHON:-} ]] || candidates=("$PYTHON")
    base=""
    for cand in "${candidates[@]}"; do
        # A pyenv shim exists for every installed version but runs only the active ones.
        version=$(python_version "$cand") && supported "$version" && { base=$cand; break; }
    done
    [[ -n $base ]] || die "the $stack_name stack needs Python $pythons: tried" \
        "${candidates[*]}; set PYTHON to one"
    say "creating $(basename "$venv") ($stack_name stack) with $(command -v "$base")" \
        "(Python $version)"
    "$base" -m venv "$venv"
    # The GPU machines ship a Python with the pinned torch and cannot download its CUDA
    # wheels: link its site-packages into the venv (a .pth line) instead of installing a copy.
    if [[ ${SHUFFLENET_DET_REUSE_TORCH:-1} != 0 ]] && torch_site=$("$base" - "$(pin torch)" \
            "$(pin torchvision)" 2>/dev/null <<'PY'
import os, sys, torch, torchvision
mods = (torch, torchvision)
folders = {os.path.dirname(os.path.dirname(m.__file__)) for m in mods}
assert [m.__version__.split('+')[0] for m in mods] == sys.argv[1:] and len(folders) == 1
print(folders.pop())
PY
    ); then
        "$py" -c 'import sys, sysconfig; open(sysconfig.get_paths()["purelib"]
            + "/shufflenet_det_base_torch.pth", "w").write(sys.argv[1] + "\n")' "$torch_site"
        say "reusing torch $(pin torch) and torchvision $(pin torchvision) from $torch_site" \
            "(SHUFFLENET_DET_REUSE_TORCH=0 installs them into the venv)"
    fi
fi
version=$(python_version "$py") || die "$py does not run: delete $(basename "$venv") and run again"
supported "$version" ||
    die "$venv is Python $version: the $stack_name stack needs $pythons; delete it and run again"

pip=("$py" -m pip install --disable-pip-version-check --progress-bar off)
say "installing torch $(pin torch), torchvision $(pin torchvision) and the mmcv build requirements"
# The pins come from the stack's file (numpy's depends on the Python version).
"${pip[@]}" -q -c "$stack" torch torchvision numpy "setuptools==$setuptools" wheel ninja

# Exits 2 with one line on a setting that cannot build; arch_list is empty for a CPU build.
build=$("$py" "$build_env" key)
read -r key arch_list <<<"$build"
wheelhouse=$wheel_root/$key
what="CPU ops only (torch sees no GPU)"
[[ -z $arch_list ]] || what="CPU and CUDA ops for TORCH_CUDA_ARCH_LIST=$arch_list"

mmcv_wheel=$(ls "$wheelhouse"/mmcv-"$mmcv_version"-*.whl 2>/dev/null | head -n 1 || true)
if [[ -n $mmcv_wheel ]]; then
    say "reusing $mmcv_wheel, built with $what"
else
    build_vars=(MMCV_WITH_OPS=1 "MAX_JOBS=${MAX_JOBS:-$(nproc)}")
    if [[ -n $arch_list ]]; then
        # Before the build, not deep inside it: no nvcc, or one torch would refuse.
        "$py" "$build_env" check-nvcc
        # torch's CUDA headers include cusparse.h and others, which a CUDA folder made of
        # NVIDIA's compiler wheels lacks; torch's own CUDA wheels put them beside torch.
        torch_dir=$("$py" -c 'import os, torch; print(os.path.dirname(torch.__path__[0]))')
        for inc in "$torch_dir"/nvidia/cu*/include; do
            [[ -f $inc/cusparse.h ]] || continue
            export CPATH=$inc${CPATH:+:$CPATH}
            say "adding $inc to CPATH (torch's CUDA library headers)"
            break
        done
        build_vars+=(FORCE_CUDA=1 "TORCH_CUDA_ARCH_LIST=$arch_list")
    fi
    say "building mmcv $mmcv_version with $what into $wheelhouse"
    mkdir -p "$wheelhouse"
    tmp=$(mktemp -d "$wheelhouse/.build.XXXXXX")
    trap 'rm -rf "$tmp"' EXIT
    started=$SECONDS
    # --no-cache-dir: pip keys its own wheel cache by the source archive alone, so it would
    # hand a CUDA build the CPU wheel it built earlier.
    env "${build_vars[@]}" "$py" -m pip wheel --disable-pip-version-check --no-deps \
        --no-cache-dir --no-build-isolation --no-binary mmcv -w "$tmp" "mmcv==$mmcv_version"
    # Moved into place only once complete, so an interrupted build leaves no wheel behind.
    mv "$tmp"/mmcv-"$mmcv_version"-*.whl "$wheelhouse/"
    mmcv_wheel=$(ls "$wheelhouse"/mmcv-"$mmcv_version"-*.whl | head -n 1)
    say "built $mmcv_wheel in $(((SECONDS - started) / 60)) min $(((SECONDS - started) % 60)) s"
fi

say "installing mmcv, mmengine, mmdet, test tools and shufflenet_det (editable)"
"${pip[@]}" -q "$mmcv_wheel" -r "$stack" -r "$root/requirements/tests.txt"
"${pip[@]}" -q --no-build-isolation --no-deps -e "$root"

"$py" - <<'PY'
import numpy, torch, torchvision, mmcv, mmengine, mmdet
from mmcv.ops import RoIAlign, nms  # noqa: F401  (fails if mmcv was built without ops)
import shufflenet_det  # noqa: F401
print(f'[setup_env] torch {torch.__version__}, torchvision {torchvision.__version__}, '
      f'NumPy {numpy.__version__}, mmcv {mmcv.__version__}, mmengine {mmengine.__version__}, '
      f'mmdet {mmdet.__version__}')
PY
setup_state >"$stamp"
say "ready: $py ($stack_name stack, $key)"
