"""What ``tools/setup_env.sh`` builds mmcv for, and the checks around that build.

mmcv 2.1.0 is published only as source. Its ``setup.py`` compiles the CUDA
kernels of ``mmcv.ops`` when ``torch.cuda.is_available()`` or ``FORCE_CUDA=1``,
for the architectures in ``TORCH_CUDA_ARCH_LIST``, and the CPU kernels only
otherwise. A built wheel is therefore only reusable by a setup with the same
Python, torch, CUDA and architectures; :func:`wheel_cache_key` names the
wheelhouse folder after exactly those.

The setup script runs this file by path, *before* mmcv and this package are
installed (importing ``shufflenet_det`` imports mmcv), so it imports only the
standard library, and torch inside the commands that need it::

    python tools/setup/build_env.py key          # py3.11-torch2.11.0-cpu
    python tools/setup/build_env.py arch-list    # 8.0;9.0, or '' for a CPU build
    python tools/setup/build_env.py check-nvcc   # exit 2 with a hint if unusable
    python tools/setup/build_env.py cuda-include # CPATH for headers CUDA_HOME lacks
    python tools/setup/build_env.py check-wheel WHEEL  # CUDA kernels in a CUDA build
    python tools/setup/build_env.py check-ops    # after install: mmcv.ops on the GPU
    python tools/setup/build_env.py torch-site 2.11.0 0.26.0  # base Python's torch folder
    python -I tools/setup/build_env.py installed-from ROOT   # exit 1 unless ROOT's package

Errors print one line, ``[setup_env] error: ...``, and exit with status 2.
The functions take ``torch.cuda``, the environment and the like as arguments,
so tests pass fakes and need no GPU.
"""
from __future__ import annotations

import argparse
import importlib.metadata
import importlib.util
import os
import re
import shutil
import subprocess
import sys
import sysconfig
import zipfile
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Protocol

PREFIX = '[setup_env]'

# One entry of TORCH_CUDA_ARCH_LIST as torch.utils.cpp_extension accepts it:
# '8.6', '9.0a', '9.0+PTX', or a name it expands ('Hopper', 'Ampere+Tegra').
_ARCH_NUMBER = re.compile(r'(\d+)\.(\d+)([a-z]?)(\+PTX)?')
_ARCH_NAME = re.compile(r'[A-Z][A-Za-z]*(\+[A-Z][A-Za-z]*)?')
_NVCC_RELEASE = re.compile(r'release (\d+)\.(\d+)')


class BuildEnvError(ValueError):
    """A setting that makes the mmcv build impossible; the message says which and why."""


class CudaLike(Protocol):
    """The part of ``torch.cuda`` used here (tests pass a ``SimpleNamespace``)."""

    def is_available(self) -> bool: ...

    def device_count(self) -> int: ...

    def get_device_capability(self, device: int) -> tuple[int, int]: ...


def torch_release(version: str) -> str:
    """Drop the local part of a torch version.

    The PyPI build reports ``2.11.0+cu130`` even on a machine without a GPU;
    whether the wheel gets CUDA kernels is a separate part of the key.

    Args:
        version: ``torch.__version__``, e.g. ``'2.11.0+cu130'``.

    Returns:
        The public version, e.g. ``'2.11.0'``.
    """
    return version.split('+', 1)[0]


def cuda_tag(cuda_version: str | None) -> str:
    """Name a CUDA version the way PyTorch's wheel indexes do.

    Args:
        cuda_version: ``torch.version.cuda`` of a CUDA build (``'13.0'``), or
            None for a build without CUDA kernels.

    Returns:
        ``'cu130'`` for ``'13.0'``, ``'cpu'`` for None.
    """
    if cuda_version is None:
        return 'cpu'
    return 'cu' + ''.join(cuda_version.split('.')[:2])


def visible_arch_list(cuda: CudaLike) -> str:
    """The compute capabilities of the visible GPUs, as ``TORCH_CUDA_ARCH_LIST`` wants them.

    Only the exact architectures, without ``+PTX`` (torch's own default adds it
    to the newest one): the wheel is cached under these architectures, so a
    GPU of another architecture gets a key of its own and a build of its own
    rather than JIT-compiling PTX, and each extra target lengthens a build that
    is already the slowest step of the setup.

    Args:
        cuda: ``torch.cuda`` or a stand-in.

    Returns:
        The sorted unique ``major.minor`` of every visible device, joined by
        ``;`` (``'8.0;9.0'``); ``''`` when no GPU is visible.
    """
    if not cuda.is_available():
        return ''
    capabilities = {tuple(cuda.get_device_capability(i)) for i in range(cuda.device_count())}
    return ';'.join(f'{major}.{minor}' for major, minor in sorted(capabilities))


def cuda_arch_list(cuda: CudaLike, env: Mapping[str, str]) -> str:
    """The architectures to compile for: the user's ``TORCH_CUDA_ARCH_LIST``, else the visible GPUs.

    ``native`` counts as unset: it means "the visible GPUs" to torch as well.

    Args:
        cuda: ``torch.cuda`` or a stand-in.
        env: The environment (``os.environ``).

    Returns:
        The list as the user wrote it, or :func:`visible_arch_list`; ``''``
        when neither gives one.
    """
    user = env.get('TORCH_CUDA_ARCH_LIST', '').strip()
    if user and user != 'native':
        return user
    return visible_arch_list(cuda)


def cuda_build(cuda: CudaLike, env: Mapping[str, str],
               torch_cuda_version: str | None) -> tuple[str, str] | None:
    """Whether mmcv's build will compile CUDA kernels, and for what.

    mmcv 2.1.0's ``setup.py`` compiles them when ``torch.cuda.is_available()``
    or ``FORCE_CUDA=1``; the second case is a build for GPUs this machine does
    not have, so it needs an explicit ``TORCH_CUDA_ARCH_LIST``.

    Args:
        cuda: ``torch.cuda`` or a stand-in.
        env: The environment (``os.environ``).
        torch_cuda_version: ``torch.version.cuda``; None for a CPU-only torch.

    Returns:
        ``(cuda_version, arch_list)`` for a CUDA build, None for a CPU build.

    Raises:
        BuildEnvError: A CUDA build with a torch without CUDA, or ``FORCE_CUDA=1``
            without a GPU and without ``TORCH_CUDA_ARCH_LIST``.
    """
    forced = env.get('FORCE_CUDA', '0') == '1'
    if not (cuda.is_available() or forced):
        return None
    if torch_cuda_version is None:  # e.g. a ROCm torch, whose is_available() is True too
        reason = 'FORCE_CUDA=1' if forced else 'torch sees a GPU'
        raise BuildEnvError(f'{reason}, but this torch was built without CUDA '
                            '(torch.version.cuda is None): expected a CUDA build of torch')
    arch_list = cuda_arch_list(cuda, env)
    if not arch_list:
        raise BuildEnvError('FORCE_CUDA=1 and no GPU is visible, so TORCH_CUDA_ARCH_LIST must '
                            "name the GPUs to build for, e.g. TORCH_CUDA_ARCH_LIST='9.0'")
    return torch_cuda_version, arch_list


def _arch_order(entry: str) -> tuple:
    number = _ARCH_NUMBER.fullmatch(entry)
    if number:
        major, minor, suffix, ptx = number.groups()
        return (0, int(major), int(minor), suffix, bool(ptx))
    return (1, entry.lower())


def arch_token(arch_list: str) -> str:
    """Turn a ``TORCH_CUDA_ARCH_LIST`` into a file-name-safe, order-independent token.

    Args:
        arch_list: Entries separated by ``;`` or spaces, as torch reads them,
            e.g. ``'9.0 8.0;9.0+PTX'``.

    Returns:
        E.g. ``'sm80_sm90_sm90ptx'``: each entry once, numbers in numeric order
        (``sm90`` before ``sm100``), then names lower-cased (``hopper``).

    Raises:
        BuildEnvError: An entry that torch would not accept either.
    """
    entries = set(arch_list.replace(';', ' ').split())
    if not entries:
        raise BuildEnvError('TORCH_CUDA_ARCH_LIST is empty: expected entries like 8.0, 9.0a '
                            'or 9.0+PTX separated by ";" or spaces')
    tokens = []
    for entry in sorted(entries, key=_arch_order):
        number = _ARCH_NUMBER.fullmatch(entry)
        if number:
            major, minor, suffix, ptx = number.groups()
            tokens.append(f'sm{major}{minor}{suffix}' + ('ptx' if ptx else ''))
        elif _ARCH_NAME.fullmatch(entry):
            tokens.append(entry.lower().replace('+', ''))
        else:
            raise BuildEnvError(f'TORCH_CUDA_ARCH_LIST={arch_list!r} has {entry!r}: expected '
                                'entries like 8.0, 9.0a, 9.0+PTX or Hopper, separated by ";" '
                                'or spaces')
    return '_'.join(tokens)


def wheel_cache_key(python_version: str, torch_version: str, cuda_version: str | None,
                    arch_list: str | None) -> str:
    """Name the wheelhouse folder for one mmcv build.

    Args:
        python_version: ``'3.11'`` (a longer ``'3.11.7'`` is cut to major.minor).
        torch_version: ``torch.__version__``; a local part (``+cu130``) is dropped.
        cuda_version: ``torch.version.cuda`` when the build compiles CUDA
            kernels, None when it does not (no GPU: the wheel has CPU ops only,
            whatever torch's own build).
        arch_list: The ``TORCH_CUDA_ARCH_LIST`` of a CUDA build; ignored for a
            CPU build.

    Returns:
        ``py3.11-torch2.11.0-cpu`` or ``py3.12-torch2.11.0-cu130-sm90``.

    Raises:
        BuildEnvError: A CUDA build without architectures, or an unreadable list.
    """
    python = '.'.join(python_version.split('.')[:2])
    key = f'py{python}-torch{torch_release(torch_version)}-{cuda_tag(cuda_version)}'
    if cuda_version is None:
        return key
    return f'{key}-{arch_token(arch_list or "")}'


def find_cuda_home(env: Mapping[str, str], which: Callable[[str], str | None],
                   exists: Callable[[str], bool]) -> tuple[str | None, str]:
    """Find the CUDA folder that torch's extension builder will use, the way it looks for it.

    ``torch.utils.cpp_extension`` takes ``CUDA_HOME`` (or ``CUDA_PATH``), else
    the folder above the ``nvcc`` on ``PATH``, else ``/usr/local/cuda``, and
    then runs ``<that>/bin/nvcc`` with ``<that>/include``. Looking anywhere else
    could approve an nvcc that the build then does not use.

    Args:
        env: The environment (``os.environ``).
        which: ``shutil.which``.
        exists: ``os.path.exists``.

    Returns:
        ``(folder or None, how it was found)``.
    """
    for var in ('CUDA_HOME', 'CUDA_PATH'):
        if env.get(var):
            return env[var], var
    nvcc = which('nvcc')
    if nvcc:
        return os.path.dirname(os.path.dirname(nvcc)), f'the nvcc on PATH, {nvcc}'
    if exists('/usr/local/cuda'):
        return '/usr/local/cuda', 'the default'
    return None, 'none of CUDA_HOME, CUDA_PATH, an nvcc on PATH or /usr/local/cuda'


def nvcc_release(version_output: str) -> str | None:
    """Read ``major.minor`` from ``nvcc --version`` (``'13.0'`` from "release 13.0, V13.0.88")."""
    match = _NVCC_RELEASE.search(version_output)
    return f'{match[1]}.{match[2]}' if match else None


def nvcc_install_hint(torch_cuda_version: str, site_packages: str) -> str:
    """How to get an nvcc of torch's CUDA: NVIDIA's pip wheels, or the toolkit.

    From CUDA 13 the compiler is the ``nvidia-cuda-nvcc`` wheel, which needs
    ``nvidia-cuda-crt`` and ``nvidia-nvvm`` (pinned here to the same release, or
    pip takes the newest) and ``nvidia-cuda-cccl`` (thrust, cub and libcu++,
    which torch's CUDA headers include). They install into ``nvidia/cu13/``
    beside the headers and libraries of torch's own CUDA wheels, which makes
    that folder a CUDA_HOME, except for the unversioned ``libcudart.so`` that
    the linker wants. This recipe built and linked a small torch CUDA extension
    here. Before CUDA 13 the family was ``nvidia-cuda-nvcc-cu12`` (``-cu11``),
    with its files in other folders, so only the toolkit is suggested for those.

    Args:
        torch_cuda_version: ``torch.version.cuda``, e.g. ``'13.0'``.
        site_packages: The environment's ``site-packages`` folder.

    Returns:
        One sentence with the commands.
    """
    major, minor = torch_cuda_version.split('.')[:2]
    release = f'{major}.{minor}.*'
    if int(major) >= 13:
        home = os.path.join(site_packages, 'nvidia', f'cu{major}')
        wheels = ' '.join(f'"{name}=={release}"' for name in (
            'nvidia-cuda-nvcc', 'nvidia-cuda-crt', 'nvidia-nvvm', 'nvidia-cuda-cccl'))
        return (f'get one with `{sys.executable} -m pip install {wheels}`, '
                f'`ln -sf libcudart.so.{major} {home}/lib/libcudart.so` and '
                f'`export CUDA_HOME={home}`, or install the CUDA {major}.{minor} toolkit '
                'and set CUDA_HOME to it')
    return (f'install the CUDA {major}.{minor} toolkit and set CUDA_HOME to it (pip: '
            f'"nvidia-cuda-nvcc-cu{major}=={release}")')


def nvcc_problem(cuda_home: str | None, found_by: str, exists: Callable[[str], bool],
                 release: str | None, torch_version: str, torch_cuda_version: str,
                 site_packages: str) -> str | None:
    """Say why the mmcv build would fail on its CUDA compiler, before the build starts.

    The build compiles with ``<CUDA_HOME>/bin/nvcc`` and ``<CUDA_HOME>/include``
    and links ``-lcudart`` from ``<CUDA_HOME>/lib64`` (or ``lib``). torch refuses
    an nvcc of another CUDA major version than its own (another minor only
    gets a warning), so the same rule applies here.

    Args:
        cuda_home: The folder from :func:`find_cuda_home`, or None.
        found_by: How :func:`find_cuda_home` found it.
        exists: ``os.path.exists``.
        release: :func:`nvcc_release` of ``<cuda_home>/bin/nvcc --version``;
            None if it did not run.
        torch_version: ``torch.__version__``.
        torch_cuda_version: ``torch.version.cuda``.
        site_packages: The environment's ``site-packages`` folder, for the hint.

    Returns:
        One line naming what is wrong and how to fix it, or None if nvcc fits.
    """
    wanted = f'torch {torch_version} was built with CUDA {torch_cuda_version}'
    hint = nvcc_install_hint(torch_cuda_version, site_packages)
    if cuda_home is None:
        return f"mmcv's CUDA ops need nvcc, and there is {found_by}; {wanted}: {hint}"
    nvcc = os.path.join(cuda_home, 'bin', 'nvcc')
    where = f'CUDA_HOME {cuda_home} (from {found_by})'
    if not exists(nvcc):
        return f"mmcv's CUDA ops need nvcc, and {where} has no bin/nvcc; {wanted}: {hint}"
    if not exists(os.path.join(cuda_home, 'include', 'cuda_runtime_api.h')):
        # E.g. a wrapper script /usr/local/bin/nvcc makes torch take /usr/local.
        return (f'{where} has bin/nvcc but no include/cuda_runtime_api.h, so the build would '
                f'not find the CUDA headers: set CUDA_HOME to the CUDA {torch_cuda_version} '
                f'toolkit folder; {wanted}')
    if not any(exists(os.path.join(cuda_home, lib, 'libcudart.so')) for lib in ('lib64', 'lib')):
        # NVIDIA's pip wheels ship libcudart.so.13 only.
        return (f'{where} has no lib64/libcudart.so or lib/libcudart.so, so the build would '
                f'not link: add one, e.g. `ln -s libcudart.so.{torch_cuda_version.split(".")[0]} '
                f'{cuda_home}/lib/libcudart.so`')
    if release is None:
        return f'could not read the CUDA release from `{nvcc} --version`; {wanted}: {hint}'
    if release.split('.')[0] != torch_cuda_version.split('.')[0]:
        return (f'{nvcc} is CUDA {release}, but {wanted} and refuses another major '
                f'version: {hint}')
    return None


def _on_device(name: str, fn: Callable, device: str, *tensors):
    """``fn`` of ``tensors`` moved to ``device``, brought back to the CPU."""
    try:
        out = fn(*(t.to(device) for t in tensors))
    except Exception as exc:  # mmcv built without kernels for the device raises
        raise RuntimeError(f'mmcv.ops.{name} failed on {device}: {exc}'.splitlines()[0]) from exc
    return out.cpu() if hasattr(out, 'cpu') else tuple(o.cpu() for o in out)


def _check_roi_align(device: str, gen) -> None:
    """RoIAlign of 64 random RoIs on two feature maps at stride 16, as the C4 heads pool."""
    import torch
    from mmcv.ops import RoIAlign
    roi_align = RoIAlign(output_size=(7, 7), spatial_scale=1 / 16, sampling_ratio=0,
                         aligned=True)
    feats = torch.randn(2, 32, 38, 50, generator=gen)
    xy = torch.rand(64, 2, generator=gen) * torch.tensor([700.0, 500.0])
    wh = torch.rand(64, 2, generator=gen) * 200 + 4
    rois = torch.cat([torch.randint(0, 2, (64, 1), generator=gen).float(), xy, xy + wh], 1)
    pooled, expected = _on_device('RoIAlign', roi_align, device, feats, rois), \
        roi_align(feats, rois)
    if not torch.allclose(pooled, expected, atol=1e-4, rtol=1e-4):
        error = (pooled - expected).abs().max().item()
        raise RuntimeError(f'mmcv.ops.RoIAlign on {device} differs from the CPU by up to '
                           f'{error:.3g}')


def _check_nms(device: str, gen) -> None:
    """nms on a case with a known answer, batched_nms on 1000 random boxes of 10 classes."""
    import torch
    from mmcv.ops import batched_nms, nms
    boxes = torch.tensor([[0, 0, 10, 10], [1, 1, 11, 11], [20, 20, 30, 30.0]])
    _, keep = _on_device('nms', lambda b, s: nms(b, s, iou_threshold=0.5), device, boxes,
                         torch.tensor([0.9, 0.8, 0.7]))
    # Box 1 overlaps box 0 with IoU 0.68, so it goes; box 2 overlaps nothing.
    if keep.tolist() != [0, 2]:
        raise RuntimeError(f'mmcv.ops.nms on {device} kept boxes {keep.tolist()}, '
                           'expected [0, 2]')
    xy = torch.rand(1000, 2, generator=gen) * 600
    boxes = torch.cat([xy, xy + torch.rand(1000, 2, generator=gen) * 150 + 2], 1)
    scores = torch.rand(1000, generator=gen)
    labels = torch.randint(0, 10, (1000, ), generator=gen)
    nms_cfg = dict(type='nms', iou_threshold=0.5)
    _, kept = _on_device('batched_nms', lambda b, s, c: batched_nms(b, s, c, nms_cfg), device,
                         boxes, scores, labels)
    _, expected = batched_nms(boxes, scores, labels, nms_cfg)
    if kept.tolist() != expected.tolist():
        raise RuntimeError(f'mmcv.ops.batched_nms on {device} kept {len(kept)} of 1000 boxes, '
                           f'the CPU {len(expected)} (or another set)')


def check_cuda_ops(device: str = 'cuda') -> None:
    """Run ``mmcv.ops`` RoIAlign, ``nms`` and ``batched_nms`` on ``device`` and compare
    with the CPU: a small case whose answer is known, then random inputs of detector-like
    sizes (fixed seed), so that a build without the device's kernels, or with kernels for
    another architecture, is caught.

    Runs after the install only: mmcv is imported inside, not at the top, so the
    rest of this module works before mmcv exists (and torch too, so that
    ``torch-site`` runs on an interpreter without torch).

    Args:
        device: Where to run them; ``'cpu'`` exercises the check without a GPU.

    Raises:
        RuntimeError: One line naming the op, the device and what went wrong.
    """
    import torch
    gen = torch.Generator().manual_seed(0)
    _check_roi_align(device, gen)
    _check_nms(device, gen)


def reusable_torch_dir(torch_pin: str, torchvision_pin: str,
                       version: Callable[[str], str] = importlib.metadata.version,
                       find_spec: Callable[[str], Any] = importlib.util.find_spec) -> str | None:
    """The folder holding this interpreter's torch, if it is the pinned torch and torchvision.

    The GPU machines ship a Python with torch 2.11.0+cu130 and cannot download
    its gigabytes of CUDA wheels; the setup links that folder into the new
    environment instead of installing a copy. Any local part (``+cu130``) is
    accepted: the CUDA part of the wheel key follows whatever torch it is.

    Args:
        torch_pin: The pinned torch version, e.g. ``'2.11.0'``.
        torchvision_pin: The pinned torchvision version, e.g. ``'0.26.0'``.
        version: ``importlib.metadata.version``.
        find_spec: ``importlib.util.find_spec``.

    Returns:
        The ``site-packages`` folder holding both packages, or None when either
        is missing, of another version, or the two live in different folders.
    """
    try:
        if (torch_release(version('torch')) != torch_pin
                or torch_release(version('torchvision')) != torchvision_pin):
            return None
    except importlib.metadata.PackageNotFoundError:
        return None
    specs = [find_spec('torch'), find_spec('torchvision')]
    if not all(spec is not None and spec.origin for spec in specs):
        return None
    # origin is <site-packages>/torch/__init__.py
    folders = {os.path.dirname(os.path.dirname(spec.origin)) for spec in specs}
    return folders.pop() if len(folders) == 1 else None


def installed_from(root: str) -> bool:
    """Whether this interpreter imports ``shufflenet_det`` from the checkout at ``root``.

    A stamp alone cannot tell: a ``.venv`` linked into another checkout and set up
    there has an editable install of that checkout. Run with ``python -I`` so that
    neither the current folder nor ``PYTHONPATH`` hides what the install points to.
    """
    spec = importlib.util.find_spec('shufflenet_det')  # finds it without importing it
    expected = os.path.join(root, 'shufflenet_det', '__init__.py')
    return (spec is not None and spec.origin is not None
            and os.path.realpath(spec.origin) == os.path.realpath(expected))


def _site_packages() -> str:
    return sysconfig.get_paths()['purelib']


def _nvcc_release_of(nvcc: str) -> str | None:
    try:
        out = subprocess.run([nvcc, '--version'], capture_output=True, text=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        return None
    return nvcc_release(out)


def _key(torch: Any, env: Mapping[str, str]) -> str:
    build = cuda_build(torch.cuda, env, torch.version.cuda)
    python = f'{sys.version_info.major}.{sys.version_info.minor}'
    cuda_version, arch_list = build or (None, None)
    return wheel_cache_key(python, torch.__version__, cuda_version, arch_list)


def _arch_list(torch: Any, env: Mapping[str, str]) -> str:
    build = cuda_build(torch.cuda, env, torch.version.cuda)
    if build is None:
        return ''
    arch_token(build[1])  # refuse malformed entries now rather than deep inside the build
    return build[1]


def _check_nvcc(torch: Any, env: Mapping[str, str]) -> str:
    if torch.version.cuda is None:
        raise BuildEnvError(f'torch {torch.__version__} has no CUDA, so no nvcc can build '
                            'CUDA ops for it: expected a CUDA build of torch')
    cuda_home, found_by = find_cuda_home(env, shutil.which, os.path.exists)
    nvcc = os.path.join(cuda_home or '', 'bin', 'nvcc')
    release = _nvcc_release_of(nvcc) if cuda_home and os.path.exists(nvcc) else None
    problem = nvcc_problem(cuda_home, found_by, os.path.exists, release, torch.__version__,
                           torch.version.cuda, _site_packages())
    if problem:
        raise BuildEnvError(problem)
    return f'{PREFIX} nvcc: {nvcc} (CUDA {release}; torch has CUDA {torch.version.cuda})'


# Headers that torch's ATen/cuda/CUDAContextLight.h includes besides the runtime's. A toolkit
# has them; a CUDA folder made of NVIDIA's compiler wheels alone does not (seen here:
# "fatal error: cusparse.h: No such file or directory" 36 files into the mmcv build).
TORCH_CUDA_LIBRARY_HEADERS = ('cusparse.h', 'cublas_v2.h', 'cublasLt.h', 'cusolverDn.h')


def cuda_library_include(cuda_home: str, torch_site: str, torch_cuda_version: str,
                         exists: Callable[[str], bool]) -> str:
    """The folder to add to ``CPATH`` for the CUDA library headers, or ``''``.

    ``''`` when ``<cuda_home>/include`` has them all. Otherwise torch's own CUDA
    wheels (``nvidia/cu13/include`` beside torch, from CUDA 13 on) usually do.

    Args:
        cuda_home: The folder the build compiles with.
        torch_site: The ``site-packages`` folder torch is installed in.
        torch_cuda_version: ``torch.version.cuda``.
        exists: ``os.path.exists``.

    Raises:
        BuildEnvError: neither has them.
    """
    missing = [h for h in TORCH_CUDA_LIBRARY_HEADERS
               if not exists(os.path.join(cuda_home, 'include', h))]
    if not missing:
        return ''
    wheels = os.path.join(torch_site, 'nvidia', f'cu{torch_cuda_version.split(".")[0]}',
                          'include')
    if all(exists(os.path.join(wheels, h)) for h in missing):
        return wheels
    raise BuildEnvError(f'CUDA_HOME {cuda_home} has no include/{missing[0]}, which torch\'s CUDA '
                        f'headers include, and {wheels} has none either: install the CUDA '
                        f'{torch_cuda_version} toolkit and set CUDA_HOME to it')


# A function only mmcv's CUDA sources define (ops/csrc/pytorch/cuda/roi_align_cuda.cu): its
# (mangled) name is in the extension exactly when the CUDA kernels were compiled in.
CUDA_KERNEL_MARKER = b'ROIAlignForwardCUDAKernelLauncher'


def wheel_has_cuda_kernels(wheel: str) -> bool:
    """Whether the mmcv wheel's compiled extension holds the CUDA kernels.

    Raises:
        BuildEnvError: the wheel has no compiled ``mmcv/_ext*.so`` at all.
    """
    with zipfile.ZipFile(wheel) as archive:
        names = [n for n in archive.namelist() if re.fullmatch(r'mmcv/_ext[^/]*\.so', n)]
        if not names:
            raise BuildEnvError(f'{wheel} has no compiled mmcv/_ext*.so (built without '
                                'MMCV_WITH_OPS=1?): delete it and run again')
        with archive.open(names[0]) as extension:
            return CUDA_KERNEL_MARKER in extension.read()


def check_wheel(wheel: str, arch_list: str) -> str:
    """One line saying what ``wheel`` holds; an error if a CUDA build's wheel has no
    CUDA kernels (pip's own wheel cache once served a CPU build to a CUDA one)."""
    if not wheel_has_cuda_kernels(wheel):
        if arch_list:
            raise BuildEnvError(f'{wheel} has no CUDA kernels, but this setup builds for '
                                f'TORCH_CUDA_ARCH_LIST={arch_list}: delete it and run again')
        return f'{PREFIX} {os.path.basename(wheel)} holds the CPU kernels of mmcv.ops'
    return f'{PREFIX} {os.path.basename(wheel)} holds the CPU and CUDA kernels of mmcv.ops'


def _cuda_include(torch: Any, env: Mapping[str, str]) -> str:
    cuda_home, _ = find_cuda_home(env, shutil.which, os.path.exists)
    torch_site = os.path.dirname(os.path.dirname(torch.__file__))
    return cuda_library_include(cuda_home, torch_site, torch.version.cuda, os.path.exists)


def _check_ops(torch: Any) -> str:
    if not torch.cuda.is_available():
        return f'{PREFIX} no GPU visible, so the CUDA ops were not checked'
    check_cuda_ops('cuda')
    return (f'{PREFIX} mmcv.ops RoIAlign, nms and batched_nms run on '
            f'{torch.cuda.get_device_name(0)} and match the CPU')


def main(argv: Sequence[str] | None = None, env: Mapping[str, str] | None = None) -> int:
    """Command line; see the module docstring. Returns the exit status."""
    parser = argparse.ArgumentParser(prog='build_env.py', description=__doc__.split('\n')[0])
    commands = parser.add_subparsers(dest='command', required=True)
    commands.add_parser('key', help='the wheelhouse folder name for this build')
    commands.add_parser('arch-list', help="TORCH_CUDA_ARCH_LIST for this build; '' for CPU")
    commands.add_parser('check-nvcc', help='exit 2 with a hint unless nvcc fits torch')
    commands.add_parser('check-ops', help='run mmcv.ops RoIAlign, nms and batched_nms on the GPU')
    commands.add_parser('cuda-include', help="a folder for CPATH with the CUDA library headers "
                        "CUDA_HOME lacks; '' if it has them")
    wheel = commands.add_parser('check-wheel', help='a CUDA build\'s wheel has CUDA kernels')
    wheel.add_argument('wheel')
    site = commands.add_parser('torch-site', help="this Python's folder of the pinned torch")
    site.add_argument('torch_pin')
    site.add_argument('torchvision_pin')
    source = commands.add_parser('installed-from',
                                 help='exit 1 unless shufflenet_det is imported from ROOT')
    source.add_argument('root')
    args = parser.parse_args(argv)
    env = os.environ if env is None else env
    try:
        if args.command == 'installed-from':
            return 0 if installed_from(args.root) else 1
        if args.command == 'torch-site':
            print(reusable_torch_dir(args.torch_pin, args.torchvision_pin) or '')
            return 0
        import torch
        if args.command == 'key':
            print(_key(torch, env))
        elif args.command == 'arch-list':
            print(_arch_list(torch, env))
        elif args.command == 'check-nvcc':
            print(_check_nvcc(torch, env))
        elif args.command == 'cuda-include':
            print(_cuda_include(torch, env))
        elif args.command == 'check-wheel':
            print(check_wheel(args.wheel, _arch_list(torch, env)))
        else:
            print(_check_ops(torch))
    except (BuildEnvError, RuntimeError) as exc:
        print(f'{PREFIX} error: {exc}', file=sys.stderr)
        return 2
    return 0


if __name__ == '__main__':
    sys.exit(main())
