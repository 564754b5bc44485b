import importlib.util
import os
import re
import subprocess
import sys
from types import SimpleNamespace

import pytest
import torch

from ..helpers import REPO

# tools/setup_env.sh runs it by path: it is not part of the installed package.
_spec = importlib.util.spec_from_file_location('build_env', REPO / 'tools/setup/build_env.py')
build_env = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(build_env)
BuildEnvError, nvcc_problem = build_env.BuildEnvError, build_env.nvcc_problem
SITE = '/venv/lib/python3.12/site-packages'


def fake_torch(*capabilities, cuda='13.0'):
    """A stand-in for ``torch`` with one visible GPU per (major, minor) given."""
    return SimpleNamespace(__version__=f'2.11.0+cu{cuda.replace(".", "")}',
                           version=SimpleNamespace(cuda=cuda),
                           cuda=SimpleNamespace(is_available=lambda: bool(capabilities),
                                                device_count=lambda: len(capabilities),
                                                get_device_capability=capabilities.__getitem__))


def key(*capabilities, env=None, cuda='13.0', python='3.11.7', torch_version='2.11.0+cu130'):
    """The key and arch list as the setup computes them, from a fake torch and environment."""
    return build_env.build_key(fake_torch(*capabilities).cuda, env or {}, python, torch_version,
                               cuda)


def test_the_key_names_the_cpu_build_or_the_cuda_version_and_the_visible_architectures():
    assert key() == ('py3.11-torch2.11.0-cpu', '')  # whatever torch's own CUDA
    assert key(python='3.11', torch_version='2.1.2') == ('py3.11-torch2.1.2-cpu', '')
    assert key((9, 0), python='3.12') == ('py3.12-torch2.11.0-cu130-sm90', '9.0')
    assert key((9, 0), (8, 6), (9, 0), (12, 0)) == \
        ('py3.11-torch2.11.0-cu130-sm86_sm90_sm120', '8.6;9.0;12.0')
    assert key((9, 0), cuda='12.8') == ('py3.11-torch2.11.0-cu128-sm90', '9.0')


def test_the_users_arch_list_wins_and_native_means_the_visible_gpus():
    assert key((8, 0), env={'TORCH_CUDA_ARCH_LIST': '9.0 10.0+PTX;9.0'}) == \
        ('py3.11-torch2.11.0-cu130-sm90_sm100ptx', '9.0;10.0+PTX')
    assert key((8, 0), env={'TORCH_CUDA_ARCH_LIST': 'native'}) == key((8, 0))
    # mmcv's setup.py compiles CUDA only if torch sees a GPU or FORCE_CUDA=1.
    assert key(env={'TORCH_CUDA_ARCH_LIST': '9.0'}) == key()
    assert key(env={'TORCH_CUDA_ARCH_LIST': '9.0', 'FORCE_CUDA': '1'}) == key((9, 0))


def test_arch_entries_sort_numerically_and_keep_variants_apart():
    env = {'TORCH_CUDA_ARCH_LIST': '10.0;9.0a;9.0;9.0+PTX;Hopper;Ampere+Tegra'}
    assert key((8, 0), env=env)[0] == \
        'py3.11-torch2.11.0-cu130-sm90_sm90ptx_sm90a_sm100_amperetegra_hopper'


def test_a_cuda_build_that_cannot_happen_is_refused():
    with pytest.raises(BuildEnvError, match=r"FORCE_CUDA=1 and no GPU is visible, so "
                                            r"TORCH_CUDA_ARCH_LIST must name the GPUs"):
        key(env={'FORCE_CUDA': '1'})
    with pytest.raises(BuildEnvError, match=r'torch sees a GPU, but this torch was built without'):
        key((9, 0), cuda=None)


@pytest.mark.parametrize('bad', ['sm_90', '9', '9.0;compute_90', '9.0+ptx', ';'])
def test_an_arch_entry_torch_would_refuse_exits_2_with_one_line_naming_it(bad, capsys):
    entry = ([e for e in bad.split(';') if e != '9.0'] + [''])[0]
    assert build_env.main(['key'], {'FORCE_CUDA': '1', 'TORCH_CUDA_ARCH_LIST': bad}) == 2
    assert capsys.readouterr().err == (
        f"[setup_env] error: TORCH_CUDA_ARCH_LIST='{bad}' has '{entry}': expected entries like "
        '8.0, 9.0a, 9.0+PTX or Hopper, separated by ";" or spaces\n')


def test_the_file_runs_by_path_before_mmcv_and_the_package_exist(tmp_path):
    for name in ('mmcv', 'shufflenet_det'):
        (tmp_path / name).mkdir()
        (tmp_path / name / '__init__.py').write_text(f'raise ImportError("{name} imported")\n')
    env = {k: v for k, v in os.environ.items() if k not in ('TORCH_CUDA_ARCH_LIST', 'FORCE_CUDA')}
    env.update(PYTHONPATH=str(tmp_path), CUDA_VISIBLE_DEVICES='')
    out = subprocess.run([sys.executable, str(REPO / 'tools/setup/build_env.py'), 'key'], env=env,
                         capture_output=True, text=True, check=True).stdout
    python = '%d.%d' % sys.version_info[:2]
    assert out == f'py{python}-torch{torch.__version__.split("+")[0]}-cpu\n'


def test_cuda_home_is_found_where_torch_looks():
    def find(env, nvcc=None, *existing):
        return build_env.find_cuda_home(env, lambda name: nvcc, existing.__contains__)

    assert find({'CUDA_HOME': '/opt/cuda', 'CUDA_PATH': '/x'}, '/y/bin/nvcc') == \
        ('/opt/cuda', 'CUDA_HOME')
    assert find({'CUDA_PATH': '/x'}) == ('/x', 'CUDA_PATH')
    assert find({}, '/usr/local/cuda-13.0/bin/nvcc') == \
        ('/usr/local/cuda-13.0', 'the nvcc on PATH, /usr/local/cuda-13.0/bin/nvcc')
    assert find({}, None, '/usr/local/cuda') == ('/usr/local/cuda', 'the default')
    assert find({}) == (None, 'none of CUDA_HOME, CUDA_PATH, an nvcc on PATH or /usr/local/cuda')
    assert build_env.nvcc_release('Cuda compilation tools, release 13.0, V13.0.88') == '13.0'
    assert build_env.nvcc_release('command not found') is None


def toolkit(home, lib='lib64'):
    """``os.path.exists`` for a complete CUDA folder at ``home``."""
    return {f'{home}/bin/nvcc', f'{home}/include/cuda_runtime_api.h',
            f'{home}/{lib}/libcudart.so'}.__contains__


def test_missing_nvcc_names_the_nvcc_wheels_for_torchs_cuda_and_where_cuda_home_goes():
    msg = nvcc_problem(None, 'none of CUDA_HOME, CUDA_PATH, an nvcc on PATH or /usr/local/cuda',
                       lambda p: False, None, '2.11.0+cu130', '13.0', SITE)
    assert msg == (
        "mmcv's CUDA ops need nvcc, and there is none of CUDA_HOME, CUDA_PATH, an nvcc on PATH or "
        '/usr/local/cuda; torch 2.11.0+cu130 was built with CUDA 13.0: get one with '
        f'`{sys.executable} -m pip install "nvidia-cuda-nvcc==13.0.*" "nvidia-cuda-crt==13.0.*" '
        f'"nvidia-nvvm==13.0.*" "nvidia-cuda-cccl==13.0.*"`, `ln -sf libcudart.so.13 '
        f'{SITE}/nvidia/cu13/lib/libcudart.so` and `export CUDA_HOME={SITE}/nvidia/cu13`, or '
        'install the CUDA 13.0 toolkit and set CUDA_HOME to it')
    msg = nvcc_problem('/opt/cuda', 'CUDA_HOME', lambda p: False, None, '2.7.1+cu128', '12.8', SITE)
    assert msg == ("mmcv's CUDA ops need nvcc, and CUDA_HOME /opt/cuda (from CUDA_HOME) has no "
                   'bin/nvcc; torch 2.7.1+cu128 was built with CUDA 12.8: install the CUDA 12.8 '
                   'toolkit and set CUDA_HOME to it (pip: "nvidia-cuda-nvcc-cu12==12.8.*")')


def test_nvcc_of_another_major_version_is_refused_and_of_the_same_major_accepted():
    def problem(release, home='/usr/local/cuda', exists=None):
        return nvcc_problem(home, 'the default', exists or toolkit(home), release,
                            '2.11.0+cu130', '13.0', SITE)

    assert problem('12.8').startswith('/usr/local/cuda/bin/nvcc is CUDA 12.8, but torch '
                                      '2.11.0+cu130 was built with CUDA 13.0 and refuses another')
    assert problem(None).startswith('could not read the CUDA release from '
                                    '`/usr/local/cuda/bin/nvcc --version`')
    assert problem('13.0') is problem('13.2') is None
    assert problem('13.0', '/v/nvidia/cu13', toolkit('/v/nvidia/cu13', 'lib')) is None


def test_a_cuda_home_without_an_unversioned_libcudart_or_headers_is_refused():
    msg = nvcc_problem('/v/nvidia/cu13', 'CUDA_HOME', {
        '/v/nvidia/cu13/bin/nvcc', '/v/nvidia/cu13/include/cuda_runtime_api.h'}.__contains__,
        '13.0', '2.11.0+cu130', '13.0', SITE)
    assert msg == ('CUDA_HOME /v/nvidia/cu13 (from CUDA_HOME) has no lib64/libcudart.so or '
                   'lib/libcudart.so, so the build would not link: add one, e.g. '
                   '`ln -s libcudart.so.13 /v/nvidia/cu13/lib/libcudart.so`')
    # A wrapper script /usr/local/bin/nvcc makes torch take /usr/local as CUDA_HOME.
    msg = nvcc_problem('/usr/local', 'the nvcc on PATH, /usr/local/bin/nvcc',
                       lambda p: p == '/usr/local/bin/nvcc', '13.0', '2.11.0+cu130', '13.0', SITE)
    assert msg == ('CUDA_HOME /usr/local (from the nvcc on PATH, /usr/local/bin/nvcc) has bin/nvcc '
                   'but no include/cuda_runtime_api.h, so the build would not find the CUDA '
                   'headers: set CUDA_HOME to the CUDA 13.0 toolkit folder; torch 2.11.0+cu130 '
                   'was built with CUDA 13.0')


def test_check_nvcc_runs_the_nvcc_the_build_will_use(tmp_path):
    for path in ('bin/nvcc', 'include/cuda_runtime_api.h', 'lib/libcudart.so'):
        (tmp_path / path).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / path).write_text('#!/bin/sh\necho "Cuda compilation tools, release 13.0"\n')
    nvcc, env = tmp_path / 'bin/nvcc', {'CUDA_HOME': str(tmp_path)}
    nvcc.chmod(0o755)
    assert build_env.check_nvcc(fake_torch((9, 0)), env) == \
        f'[setup_env] nvcc: {nvcc} (CUDA 13.0; torch has CUDA 13.0)'
    nvcc.write_text('#!/bin/sh\necho "Cuda compilation tools, release 12.8"\n')
    with pytest.raises(BuildEnvError, match=re.escape(f'{nvcc} is CUDA 12.8, but torch 2.11')):
        build_env.check_nvcc(fake_torch((9, 0)), env)
