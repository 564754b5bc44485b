"""What ``tools/setup_env.sh`` builds mmcv 2.1.0 for, and whether nvcc can build it.

mmcv's ``setup.py`` compiles the CUDA kernels of ``mmcv.ops`` when ``torch.cuda.is_available()``
or ``FORCE_CUDA=1``, for ``TORCH_CUDA_ARCH_LIST``, else the CPU kernels only, so a wheel is
reusable only with the same Python, torch, CUDA and architectures: its key. The setup runs
this file by path before mmcv and the package exist (standard library only, torch in main)::

    build_env.py key          # the key, and for a CUDA build its arch list: 'KEY 8.0;9.0'
    build_env.py check-nvcc   # the nvcc the build will use, if torch accepts it

Errors print one line, ``[setup_env] error: ...``, and exit with status 2.
"""
from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import sysconfig
from collections.abc import Callable, Mapping

# Entries of TORCH_CUDA_ARCH_LIST as torch reads them: '8.6', '9.0a', '9.0+PTX', or a
# name it expands ('Hopper', 'Ampere+Tegra').
_ARCH_NUMBER = re.compile(r'(\d+)\.(\d+)([a-z]?)(\+PTX)?')
_ARCH_NAME = re.compile(r'[A-Z][A-Za-z]*(\+[A-Z][A-Za-z]*)?')


class BuildEnvError(ValueError):
    """A setting that makes the mmcv build impossible; the message says which and why."""


def arch_entries(arch_list: str) -> list[str]:
    """The entries of a ``TORCH_CUDA_ARCH_LIST`` (``;`` or spaces between them), each once,
    numbers in numeric order (9.0 before 10.0), then names; :class:`BuildEnvError` on an
    entry that torch would not accept either."""
    def order(entry: str) -> tuple:
        number = _ARCH_NUMBER.fullmatch(entry)
        if number:
            major, minor, suffix, ptx = number.groups()
            return (0, int(major), int(minor), suffix, bool(ptx))
        if _ARCH_NAME.fullmatch(entry):
            return (1, entry.lower())
        raise BuildEnvError(f'TORCH_CUDA_ARCH_LIST={arch_list!r} has {entry!r}: expected '
                            'entries like 8.0, 9.0a, 9.0+PTX or Hopper, separated by ";" '
                            'or spaces')

    return sorted(set(arch_list.replace(';', ' ').split()) or {''}, key=order)


def build_key(cuda, env: Mapping[str, str], python_version: str, torch_version: str,
              torch_cuda_version: str | None) -> tuple[str, str]:
    """The wheelhouse folder of one mmcv build, and the arch list of a CUDA build.

    mmcv's build compiles CUDA kernels when ``cuda.is_available()`` or ``FORCE_CUDA=1``,
    for the user's ``TORCH_CUDA_ARCH_LIST`` (``native`` counts as unset), else here for the
    visible GPUs' capabilities without ``+PTX``, so that another GPU gets a build of its own.

    Returns:
        ``('py3.11-torch2.11.0-cpu', '')`` without CUDA kernels, whatever torch's own build;
        ``('py3.12-torch2.11.0-cu130-sm80_sm90', '8.0;9.0')`` with them.

    Raises:
        BuildEnvError: A CUDA build with a torch without CUDA, or without architectures.
    """
    key = f'py{".".join(python_version.split(".")[:2])}-torch{torch_version.split("+")[0]}'
    forced = env.get('FORCE_CUDA', '0') == '1'
    if not (cuda.is_available() or forced):
        return f'{key}-cpu', ''
    if torch_cuda_version is None:  # e.g. a ROCm torch, whose is_available() is True too
        reason = 'FORCE_CUDA=1' if forced else 'torch sees a GPU'
        raise BuildEnvError(f'{reason}, but this torch was built without CUDA '
                            '(torch.version.cuda is None): expected a CUDA build of torch')
    arch_list = env.get('TORCH_CUDA_ARCH_LIST', '').strip()
    if arch_list in ('', 'native') and cuda.is_available():
        capabilities = {tuple(cuda.get_device_capability(i)) for i in range(cuda.device_count())}
        arch_list = ';'.join(f'{major}.{minor}' for major, minor in sorted(capabilities))
    if arch_list in ('', 'native'):
        raise BuildEnvError('FORCE_CUDA=1 and no GPU is visible, so TORCH_CUDA_ARCH_LIST must '
                            "name the GPUs to build for, e.g. TORCH_CUDA_ARCH_LIST='9.0'")
    entries = arch_entries(arch_list)
    archs = '_'.join(('sm' if entry[0].isdigit() else '')
                     + entry.replace('+PTX', 'ptx').replace('+', '').replace('.', '').lower()
                     for entry in entries)
    return f'{key}-cu{"".join(torch_cuda_version.split(".")[:2])}-{archs}', ';'.join(entries)


def find_cuda_home(env: Mapping[str, str], which: Callable[[str], str | None],
                   exists: Callable[[str], bool]) -> tuple[str | None, str]:
    """``(CUDA folder or None, how it was found)``, looked for as torch's extension builder
    does: ``CUDA_HOME``, ``CUDA_PATH``, the folder above the ``nvcc`` on ``PATH``, then
    ``/usr/local/cuda``. The build uses ``<that>/bin/nvcc``, so no other nvcc counts."""
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
    """``major.minor`` from ``nvcc --version`` (``'13.0'`` from "release 13.0, V13.0.88")."""
    match = re.search(r'release (\d+)\.(\d+)', version_output)
    return f'{match[1]}.{match[2]}' if match else None


def _install_hint(torch_cuda_version: str, site_packages: str) -> str:
    major, minor = torch_cuda_version.split('.')[:2]
    if int(major) < 13:  # the older nvidia-*-cu12 wheels put their files elsewhere
        return (f'install the CUDA {major}.{minor} toolkit and set CUDA_HOME to it (pip: '
                f'"nvidia-cuda-nvcc-cu{major}=={major}.{minor}.*")')
    # The compiler's wheels, pinned to torch's release (or pip takes the newest), install
    # beside torch's own CUDA wheels, making nvidia/cu13 a CUDA_HOME but for the
    # unversioned libcudart.so that the linker wants.
    home = os.path.join(site_packages, 'nvidia', f'cu{major}')
    wheels = ' '.join(f'"{name}=={major}.{minor}.*"' for name in (
        'nvidia-cuda-nvcc', 'nvidia-cuda-crt', 'nvidia-nvvm', 'nvidia-cuda-cccl'))
    return (f'get one with `{sys.executable} -m pip install {wheels}`, '
            f'`ln -sf libcudart.so.{major} {home}/lib/libcudart.so` and '
            f'`export CUDA_HOME={home}`, or install the CUDA {major}.{minor} toolkit '
            'and set CUDA_HOME to it')


def nvcc_problem(cuda_home: str | None, found_by: str, exists: Callable[[str], bool],
                 release: str | None, torch_version: str, torch_cuda_version: str,
                 site_packages: str) -> str | None:
    """One line saying why the mmcv build would fail on its CUDA compiler, or None.

    The build compiles with ``<cuda_home>/bin/nvcc`` and ``include/``, links ``-lcudart``
    from ``lib64/`` or ``lib/``, and torch refuses an nvcc of another CUDA major version.
    ``release`` is :func:`nvcc_release` of that nvcc (None if it did not run), and
    ``site_packages`` the environment's, for the hint.
    """
    wanted = f'torch {torch_version} was built with CUDA {torch_cuda_version}'
    hint = _install_hint(torch_cuda_version, site_packages)
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
        return (f'{where} has no lib64/libcudart.so or lib/libcudart.so, so the build would '
                f'not link: add one, e.g. `ln -s libcudart.so.{torch_cuda_version.split(".")[0]} '
                f'{cuda_home}/lib/libcudart.so`')
    if release is None:
        return f'could not read the CUDA release from `{nvcc} --version`; {wanted}: {hint}'
    if release.split('.')[0] != torch_cuda_version.split('.')[0]:
        return (f'{nvcc} is CUDA {release}, but {wanted} and refuses another major '
                f'version: {hint}')
    return None


def check_nvcc(torch, env: Mapping[str, str]) -> str:
    """One line naming the nvcc the build will use; :class:`BuildEnvError` if it cannot."""
    cuda_home, found_by = find_cuda_home(env, shutil.which, os.path.exists)
    nvcc = os.path.join(cuda_home or '', 'bin', 'nvcc')
    release = None
    if cuda_home and os.path.exists(nvcc):
        try:
            release = nvcc_release(subprocess.run([nvcc, '--version'], capture_output=True,
                                                  text=True, check=False).stdout)
        except OSError:  # e.g. not executable: nvcc_problem says it could not read it
            pass
    problem = nvcc_problem(cuda_home, found_by, os.path.exists, release, torch.__version__,
                           torch.version.cuda, sysconfig.get_paths()['purelib'])
    if problem:
        raise BuildEnvError(problem)
    return f'[setup_env] nvcc: {nvcc} (CUDA {release}; torch has CUDA {torch.version.cuda})'


def main(argv: list[str] | None = None, env: Mapping[str, str] | None = None) -> int:
    """Command line; see the module docstring. Returns the exit status."""
    argv = sys.argv[1:] if argv is None else argv
    env = os.environ if env is None else env
    try:
        if argv not in (['key'], ['check-nvcc']):
            raise BuildEnvError(f'unknown command {" ".join(argv)!r}: expected key or check-nvcc')
        import torch
        if argv == ['check-nvcc']:
            print(check_nvcc(torch, env))
        else:
            key = build_key(torch.cuda, env, '%d.%d' % sys.version_info[:2], torch.__version__,
                            torch.version.cuda)
            print(' '.join(key).rstrip())
    except BuildEnvError as exc:
        print(f'[setup_env] error: {exc}', file=sys.stderr)
        return 2
    return 0


if __name__ == '__main__':
    sys.exit(main())
