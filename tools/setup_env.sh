#!/usr/bin/env bash
# Create (or reuse) a virtual environment with one of the two supported OpenMMLab
# stacks, including mmcv 2.1.0 compiled with its ops: the CPU ops on a machine without
# a GPU, the CUDA ops too, for the visible GPUs, where torch sees one.
#
#   bash tools/setup_env.sh                    # .venv/: the pinned stack (requirements/stack.txt)
#   bash tools/setup_env.sh --stack classic    # .venv-classic/: torch 2.1.2, NumPy 1.26.4
#                                              # (requirements/classic.txt)
#
# mmcv 2.1.0 is published only as source. Building it is the slow step of a setup
# (docs/get_started.md, First-run times, has the times), so the built
# wheel is kept in a wheelhouse outside the repository ($SHUFFLENET_DET_WHEELHOUSE,
# default ~/.cache/shufflenet_det/wheels), in a folder named after what the wheel was
# built for (Python, torch, CUDA or "cpu", GPU architectures:
# tools/setup/build_env.py), and reused by every later setup that needs the same build.
#
# Settings, all optional:
#   PYTHON                     interpreter for a new venv (3.10, 3.11 or 3.12; the
#                              classic stack's torch 2.1.2 has wheels up to 3.11)
#   TORCH_CUDA_ARCH_LIST       GPUs to compile for (default: the visible ones)
#   FORCE_CUDA=1               compile the CUDA ops without a visible GPU (needs the list)
#   CUDA_HOME                  the CUDA toolkit whose nvcc builds them
#   MAX_JOBS                   parallel compile jobs (default: all cores)
#   SHUFFLENET_DET_REUSE_TORCH=0   install torch into .venv even if PYTHON already has it
#   PIP_NO_INDEX=1 PIP_FIND_LINKS=DIR   pip's own: install offline from wheels (and the
#                              mmcv-2.1.0.tar.gz source) carried in DIR
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
    pinned) venv="$root/.venv" stack="$root/requirements/stack.txt" build_setuptools=80.8.0
        pythons=(3.11 3.12 3.10) ;;
    # torch 2.1's cpp_extension imports pkg_resources.packaging, gone in setuptools 70.
    classic) venv="$root/.venv-classic" stack="$root/requirements/classic.txt"
        build_setuptools=69.5.1 pythons=(3.11 3.10) ;;
    *) die "--stack '$stack_name' is not a stack: expected pinned or classic" ;;
esac
py="$venv/bin/python"
stamp="$venv/.shufflenet_det-ready"
build_env="$root/tools/setup/build_env.py"
mmcv_version=2.1.0
wheel_root="${SHUFFLENET_DET_WHEELHOUSE:-${XDG_CACHE_HOME:-$HOME/.cache}/shufflenet_det/wheels}"

inputs_digest() {
    { echo "$stack_name"; cat "$root/tools/setup_env.sh" "$build_env" "$root/requirements/"*.txt \
        "$root/setup.py"; } | sha256sum | cut -d' ' -f1
}

# The stamp holds the inputs' digest and the build key, so a .venv set up without a
# GPU is out of date where one is visible (a home folder shared with GPU nodes). The
# package must also be this checkout's: a .venv linked into another checkout and set up
# there imports that one.
if [[ -f "$stamp" ]] && key=$("$py" "$build_env" key 2>/dev/null) &&
    [[ "$(cat "$stamp")" == "$(inputs_digest) $key" ]] &&
    "$py" -I "$build_env" installed-from "$root"; then
    say "$(basename "$venv") is up to date ($stack_name stack, $key)"
    exit 0
fi

python_version() { "$1" -c 'import sys; print("%d.%d" % sys.version_info[:2])' 2>/dev/null; }
# Every pin of the stack has wheels for these (3.10 through its own markers).
supported() { [[ " ${pythons[*]} " == *" $1 "* ]]; }

find_python() {
    local cand version
    if [[ -n "${PYTHON:-}" ]]; then
        version=$(python_version "$PYTHON") ||
            die "PYTHON=$PYTHON does not run: expected a Python ${pythons[*]} interpreter"
        supported "$version" ||
            die "PYTHON=$PYTHON is Python $version: the $stack_name stack needs ${pythons[*]}"
        command -v "$PYTHON"
        return
    fi
    for cand in "${pythons[@]/#/python}" python3; do
        # A pyenv shim exists for every installed version but runs only the active ones.
        version=$(python_version "$cand") && supported "$version" && { command -v "$cand"; return; }
    done
    die "the $stack_name stack needs Python ${pythons[*]} (tried ${pythons[*]/#/python}," \
        "python3); set PYTHON to one"
}

pin() { sed -n "s/^$1==\([^;[:space:]]*\).*/\1/p" "$stack" | head -n 1; }

if [[ ! -x "$py" ]]; then
    base=$(find_python)
    say "creating $(basename "$venv") ($stack_name stack) with $base" \
        "(Python $(python_version "$base"))"
    # The GPU machines' Python already holds the pinned torch with its CUDA wheels and
    # cannot download them: link that site-packages folder into .venv (a .pth line, which
    # also works where the base is itself a venv, unlike --system-site-packages).
    torch_site=""
    if [[ "${SHUFFLENET_DET_REUSE_TORCH:-1}" != 0 ]]; then
        torch_site=$("$base" "$build_env" torch-site "$(pin torch)" "$(pin torchvision)" \
            2>/dev/null) || torch_site=""
    fi
    "$base" -m venv "$venv"
    if [[ -n "$torch_site" ]]; then
        site=$("$py" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
        printf '%s\n' "$torch_site" >"$site/shufflenet_det_base_torch.pth"
        say "reusing torch $(pin torch) and torchvision $(pin torchvision) from $torch_site" \
            "(SHUFFLENET_DET_REUSE_TORCH=0 installs them into .venv)"
    fi
fi
version=$(python_version "$py") || die "$py does not run: delete .venv and run again"
supported "$version" ||
    die "$venv is Python $version: the $stack_name stack needs ${pythons[*]}; delete it and run again"

pip=("$py" -m pip install --disable-pip-version-check --progress-bar off)

say "installing torch $(pin torch), torchvision $(pin torchvision) and the mmcv build requirements"
# The pins come from the stack's file (numpy's depends on the Python version).
"${pip[@]}" -q -c "$stack" torch torchvision numpy "setuptools==$build_setuptools" wheel ninja

# Both exit 2 with one line on a setting that cannot build (see build_env.py).
arch_list=$("$py" "$build_env" arch-list)
key=$("$py" "$build_env" key)
wheelhouse="$wheel_root/$key"
if [[ -n "$arch_list" ]]; then
    what="CPU and CUDA ops for TORCH_CUDA_ARCH_LIST=$arch_list"
else
    what="CPU ops only (torch sees no GPU)"
fi

mmcv_wheel=$(ls "$wheelhouse"/mmcv-"$mmcv_version"-*.whl 2>/dev/null | head -n 1 || true)
# Before the key, wheels were cached per torch version only (wheels/torch2.11.0/). Any such
# wheel has the CPU kernels, so a CPU build adopts one for the same Python; a CUDA build
# does not, since that wheel may lack CUDA kernels or these GPUs' architectures.
torch_release=${key#*-torch}
torch_release=${torch_release%%-*}
old_wheel=$(ls "$wheel_root/torch$torch_release/mmcv-$mmcv_version-cp${version/./}-"*.whl \
    2>/dev/null | head -n 1 || true)
if [[ -z "$mmcv_wheel" && -z "$arch_list" && -n "$old_wheel" ]]; then
    mkdir -p "$wheelhouse"
    cp "$old_wheel" "$wheelhouse/"
    mmcv_wheel="$wheelhouse/$(basename "$old_wheel")"
    say "adopted $old_wheel (cached before the key; CPU ops) as $mmcv_wheel"
elif [[ -z "$mmcv_wheel" ]]; then
    build_vars=(MMCV_WITH_OPS=1 "MAX_JOBS=${MAX_JOBS:-$(nproc)}")
    if [[ -n "$arch_list" ]]; then
        # Before the build, not deep inside it: no nvcc, or one torch would refuse.
        "$py" "$build_env" check-nvcc
        build_vars+=(FORCE_CUDA=1 "TORCH_CUDA_ARCH_LIST=$arch_list")
        include=$("$py" "$build_env" cuda-include)
        if [[ -n "$include" ]]; then
            build_vars+=("CPATH=$include${CPATH:+:$CPATH}")
            say "CUDA_HOME lacks the CUDA library headers torch includes; using $include"
        fi
    fi
    say "building mmcv $mmcv_version with $what, for $key"
    say "the wheel goes to $wheelhouse (on 2 idle cores: 9 to 12 min with the CPU ops," \
        "22 with the CUDA ops for one architecture)"
    mkdir -p "$wheelhouse"
    tmp=$(mktemp -d "$wheelhouse/.build.XXXXXX")
    trap 'rm -rf "$tmp"' EXIT
    started=$SECONDS
    # --no-cache-dir: pip keys its own wheel cache by the source archive alone, so it would
    # hand a CUDA build the CPU wheel it built earlier (seen: a 1 s "build").
    env "${build_vars[@]}" "$py" -m pip wheel --disable-pip-version-check --no-deps \
        --no-cache-dir --no-build-isolation --no-binary mmcv -w "$tmp" "mmcv==$mmcv_version"
    built=$(ls "$tmp"/mmcv-"$mmcv_version"-*.whl)
    "$py" "$build_env" check-wheel "$built"
    # Move into place only once complete, so an interrupted build leaves no wheel behind.
    mv "$built" "$wheelhouse/"
    mmcv_wheel="$wheelhouse/$(basename "$built")"
    took=$((SECONDS - started))
    say "built $mmcv_wheel in $((took / 60)) min $((took % 60)) s"
else
    say "reusing $mmcv_wheel, built with $what"
    "$py" "$build_env" check-wheel "$mmcv_wheel"
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
if [[ -n "$arch_list" ]]; then
    # RoIAlign and nms on a CUDA tensor, compared with the CPU (skipped if no GPU is visible).
    check=$("$py" "$build_env" check-ops 2>&1) ||
        die "${check#\[setup_env\] error: } (delete $mmcv_wheel to rebuild it)"
    printf '%s\n' "$check"
fi
printf '%s %s\n' "$(inputs_digest)" "$key" >"$stamp"
say "ready: $py ($stack_name stack, $key)"
