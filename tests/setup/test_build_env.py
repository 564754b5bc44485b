import importlib.util
import os
import re
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch

from ..helpers import REPO

# tools/setup_env.sh runs it by path: it is not part of the installed package.
_spec = importlib.util.spec_from_file_location('build_env', REPO / 'tools/setup/build_env.py')
build_env = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(build_env)
BuildEnvError = build_env.BuildEnvError
arch_token = build_env.arch_token
cuda_arch_list = build_env.cuda_arch_list
cuda_build = build_env.cuda_build
find_cuda_home = build_env.find_cuda_home
nvcc_problem = build_env.nvcc_problem
nvcc_release = build_env.nvcc_release
reusable_torch_dir = build_env.reusable_torch_dir
torch_release = build_env.torch_release
visible_arch_list = build_env.visible_arch_list
wheel_cache_key = build_env.wheel_cache_key

SITE = '/venv/lib/python3.12/site-packages'


def fake_cuda(*capabilities):
    """A stand-in for ``torch.cuda`` with one device per (major, minor) given."""
    return SimpleNamespace(is_available=lambda: bool(capabilities),
                           device_count=lambda: len(capabilities),
                           get_device_capability=lambda i: capabilities[i])


def key_for(cuda, env=None, python='3.11', torch_version='2.11.0+cu130', torch_cuda='13.0'):
    """The key as the setup computes it, from a fake ``torch.cuda`` and environment."""
    cuda_version, arch_list = cuda_build(cuda, env or {}, torch_cuda) or (None, None)
    return wheel_cache_key(python, torch_version, cuda_version, arch_list)


def test_without_a_gpu_the_key_says_cpu_even_for_the_cuda_build_of_torch():
    assert cuda_build(fake_cuda(), {}, '13.0') is None
    assert key_for(fake_cuda()) == 'py3.11-torch2.11.0-cpu'
    assert visible_arch_list(fake_cuda()) == ''


def test_a_gpu_gives_the_cuda_version_and_its_architecture():
    assert cuda_build(fake_cuda((9, 0)), {}, '13.0') == ('13.0', '9.0')
    assert key_for(fake_cuda((9, 0)), python='3.12') == 'py3.12-torch2.11.0-cu130-sm90'


def test_two_gpus_of_different_capabilities_give_the_sorted_unique_list():
    cuda = fake_cuda((9, 0), (8, 6), (9, 0), (12, 0))
    assert visible_arch_list(cuda) == '8.6;9.0;12.0'
    assert cuda_arch_list(cuda, {}) == '8.6;9.0;12.0'
    assert key_for(cuda) == 'py3.11-torch2.11.0-cu130-sm86_sm90_sm120'


def test_the_users_arch_list_wins_and_native_means_the_visible_gpus():
    cuda = fake_cuda((8, 0))
    assert cuda_arch_list(cuda, {'TORCH_CUDA_ARCH_LIST': '9.0;10.0+PTX'}) == '9.0;10.0+PTX'
    assert cuda_arch_list(cuda, {'TORCH_CUDA_ARCH_LIST': 'native'}) == '8.0'
    assert cuda_arch_list(cuda, {'TORCH_CUDA_ARCH_LIST': '  '}) == '8.0'
    assert key_for(cuda, {'TORCH_CUDA_ARCH_LIST': '9.0;10.0+PTX'}) == \
        'py3.11-torch2.11.0-cu130-sm90_sm100ptx'


def test_an_arch_list_without_a_gpu_and_without_force_cuda_is_still_a_cpu_build():
    # mmcv's setup.py compiles CUDA only if torch sees a GPU or FORCE_CUDA=1.
    assert key_for(fake_cuda(), {'TORCH_CUDA_ARCH_LIST': '9.0'}) == 'py3.11-torch2.11.0-cpu'


def test_force_cuda_builds_for_the_named_gpus_and_refuses_without_a_list():
    env = {'FORCE_CUDA': '1', 'TORCH_CUDA_ARCH_LIST': '9.0'}
    assert key_for(fake_cuda(), env) == 'py3.11-torch2.11.0-cu130-sm90'
    with pytest.raises(BuildEnvError, match=r"FORCE_CUDA=1 and no GPU is visible, so "
                                            r"TORCH_CUDA_ARCH_LIST must name the GPUs"):
        cuda_build(fake_cuda(), {'FORCE_CUDA': '1'}, '13.0')
    with pytest.raises(BuildEnvError, match=r'FORCE_CUDA=1, but this torch was built without CUDA'):
        cuda_build(fake_cuda(), env, None)
    with pytest.raises(BuildEnvError, match=r'torch sees a GPU, but this torch was built without'):
        cuda_build(fake_cuda((9, 0)), {}, None)


def test_the_key_changes_with_each_thing_that_changes_the_wheel():
    base = key_for(fake_cuda((9, 0)))
    others = [
        key_for(fake_cuda()),                                   # CPU
        key_for(fake_cuda((9, 0)), python='3.12'),              # Python
        key_for(fake_cuda((9, 0)), torch_version='2.10.0+cu130'),  # torch
        key_for(fake_cuda((9, 0)), torch_cuda='12.8'),          # CUDA
        key_for(fake_cuda((8, 0))),                             # architecture
        key_for(fake_cuda((8, 0), (9, 0))),                     # one more architecture
    ]
    assert base == 'py3.11-torch2.11.0-cu130-sm90'
    assert len({base, *others}) == 1 + len(others)
    assert others[3] == 'py3.11-torch2.11.0-cu128-sm90'


def test_the_key_ignores_the_order_and_repeats_of_the_arch_list_and_the_local_version():
    assert arch_token('9.0;8.0') == arch_token('8.0 9.0 8.0') == 'sm80_sm90'
    assert wheel_cache_key('3.11.7', '2.11.0+cu130', None, None) == 'py3.11-torch2.11.0-cpu'
    assert wheel_cache_key('3.11', '2.11.0', None, None) == 'py3.11-torch2.11.0-cpu'
    assert torch_release('2.11.0+cu130') == torch_release('2.11.0+cpu') == '2.11.0'


def test_arch_tokens_sort_numerically_and_keep_variants_apart():
    assert arch_token('10.0;9.0a;9.0;9.0+PTX;Hopper') == 'sm90_sm90ptx_sm90a_sm100_hopper'
    assert arch_token('Ampere+Tegra') == 'amperetegra'


@pytest.mark.parametrize('bad', ['sm_90', '9', '9.0;compute_90', '9.0+ptx'])
def test_an_arch_entry_torch_would_refuse_is_refused_by_name(bad):
    entry = [e for e in bad.split(';') if e not in ('9.0',)][0]
    message = f"TORCH_CUDA_ARCH_LIST='{bad}' has '{entry}': expected entries like 8.0, 9.0a"
    with pytest.raises(BuildEnvError, match=re.escape(message)):
        arch_token(bad)


def test_a_cuda_key_needs_an_arch_list():
    with pytest.raises(BuildEnvError, match='TORCH_CUDA_ARCH_LIST is empty'):
        wheel_cache_key('3.11', '2.11.0', '13.0', '')


def test_cuda_home_is_found_where_torch_looks():
    def which(path):
        return lambda name: path

    def exists(*paths):
        return lambda p: p in paths

    assert find_cuda_home({'CUDA_HOME': '/opt/cuda', 'CUDA_PATH': '/x'}, which('/y/bin/nvcc'),
                          exists()) == ('/opt/cuda', 'CUDA_HOME')
    assert find_cuda_home({'CUDA_PATH': '/x'}, which(None), exists()) == ('/x', 'CUDA_PATH')
    assert find_cuda_home({}, which('/usr/local/cuda-13.0/bin/nvcc'), exists()) == \
        ('/usr/local/cuda-13.0', 'the nvcc on PATH, /usr/local/cuda-13.0/bin/nvcc')
    assert find_cuda_home({}, which(None), exists('/usr/local/cuda')) == \
        ('/usr/local/cuda', 'the default')
    assert find_cuda_home({}, which(None), exists()) == \
        (None, 'none of CUDA_HOME, CUDA_PATH, an nvcc on PATH or /usr/local/cuda')


def test_nvcc_release_is_read_from_its_version_text():
    text = ('nvcc: NVIDIA (R) Cuda compiler driver\n'
            'Cuda compilation tools, release 13.0, V13.0.88\nBuild cuda_13.0.r13.0/compiler.0')
    assert nvcc_release(text) == '13.0'
    assert nvcc_release('command not found') is None


def toolkit(home, lib='lib64'):
    """``os.path.exists`` for a complete CUDA folder at ``home``."""
    return lambda p: p in (f'{home}/bin/nvcc', f'{home}/include/cuda_runtime_api.h',
                           f'{home}/{lib}/libcudart.so')


def test_missing_nvcc_names_the_nvcc_wheel_for_torchs_cuda_and_where_cuda_home_goes():
    msg = nvcc_problem(None, 'none of CUDA_HOME, CUDA_PATH, an nvcc on PATH or /usr/local/cuda',
                       lambda p: False, None, '2.11.0+cu130', '13.0', SITE)
    assert msg.startswith("mmcv's CUDA ops need nvcc, and there is none of CUDA_HOME, CUDA_PATH")
    assert 'torch 2.11.0+cu130 was built with CUDA 13.0' in msg
    assert ('-m pip install "nvidia-cuda-nvcc==13.0.*" "nvidia-cuda-crt==13.0.*" '
            '"nvidia-nvvm==13.0.*" "nvidia-cuda-cccl==13.0.*"`') in msg
    assert f'`ln -sf libcudart.so.13 {SITE}/nvidia/cu13/lib/libcudart.so`' in msg
    assert f'`export CUDA_HOME={SITE}/nvidia/cu13`' in msg
    assert 'or install the CUDA 13.0 toolkit' in msg
    assert '\n' not in msg


def test_cuda_home_without_nvcc_is_named():
    msg = nvcc_problem('/opt/cuda', 'CUDA_HOME', lambda p: False, None, '2.11.0+cu130', '13.0',
                       SITE)
    assert "CUDA_HOME /opt/cuda (from CUDA_HOME) has no bin/nvcc" in msg
    assert 'nvidia-cuda-nvcc==13.0.*' in msg


def test_older_cuda_majors_name_their_own_wheel_family():
    msg = nvcc_problem(None, 'none', lambda p: False, None, '2.7.1+cu128', '12.8', SITE)
    assert 'install the CUDA 12.8 toolkit' in msg and '"nvidia-cuda-nvcc-cu12==12.8.*"' in msg


def test_nvcc_of_another_major_version_names_both_versions():
    msg = nvcc_problem('/usr/local/cuda', 'the default', toolkit('/usr/local/cuda'), '12.8',
                       '2.11.0+cu130', '13.0', SITE)
    assert msg.startswith('/usr/local/cuda/bin/nvcc is CUDA 12.8, but torch 2.11.0+cu130 was '
                          'built with CUDA 13.0')
    assert 'nvidia-cuda-nvcc==13.0.*' in msg


def test_nvcc_of_the_same_major_version_is_accepted_as_torch_does():
    for release in ('13.0', '13.2'):
        assert nvcc_problem('/usr/local/cuda', 'the default', toolkit('/usr/local/cuda'),
                            release, '2.11.0+cu130', '13.0', SITE) is None
    # The pip wheels' layout: lib/, not lib64/.
    assert nvcc_problem('/v/nvidia/cu13', 'CUDA_HOME', toolkit('/v/nvidia/cu13', 'lib'),
                        '13.0', '2.11.0+cu130', '13.0', SITE) is None


def test_a_cuda_home_without_an_unversioned_libcudart_is_refused():
    def wheels_only(p):
        return p in ('/v/nvidia/cu13/bin/nvcc', '/v/nvidia/cu13/include/cuda_runtime_api.h')

    msg = nvcc_problem('/v/nvidia/cu13', 'CUDA_HOME', wheels_only, '13.0', '2.11.0+cu130',
                       '13.0', SITE)
    assert msg == ('CUDA_HOME /v/nvidia/cu13 (from CUDA_HOME) has no lib64/libcudart.so or '
                   'lib/libcudart.so, so the build would not link: add one, e.g. '
                   '`ln -s libcudart.so.13 /v/nvidia/cu13/lib/libcudart.so`')


def test_a_cuda_home_without_headers_is_refused_before_the_build():
    # A wrapper script /usr/local/bin/nvcc makes torch take /usr/local as CUDA_HOME.
    msg = nvcc_problem('/usr/local', 'the nvcc on PATH, /usr/local/bin/nvcc',
                       lambda p: p == '/usr/local/bin/nvcc', '13.0', '2.11.0+cu130', '13.0', SITE)
    assert msg == ('CUDA_HOME /usr/local (from the nvcc on PATH, /usr/local/bin/nvcc) has bin/nvcc '
                   'but no include/cuda_runtime_api.h, so the build would not find the CUDA '
                   'headers: set CUDA_HOME to the CUDA 13.0 toolkit folder; torch 2.11.0+cu130 '
                   'was built with CUDA 13.0')


def test_a_base_python_with_the_pinned_torch_lends_its_folder():
    def spec(folder):
        return SimpleNamespace(origin=f'{folder}/pkg/__init__.py')

    versions = {'torch': '2.11.0+cu130', 'torchvision': '0.26.0+cu130'}
    same = {'torch': spec('/opt/site'), 'torchvision': spec('/opt/site')}
    assert reusable_torch_dir('2.11.0', '0.26.0', versions.get, same.get) == '/opt/site'
    assert reusable_torch_dir('2.12.0', '0.26.0', versions.get, same.get) is None
    apart = {'torch': spec('/opt/site'), 'torchvision': spec('/home/u/.local/site')}
    assert reusable_torch_dir('2.11.0', '0.26.0', versions.get, apart.get) is None

    def missing(name):
        raise build_env.importlib.metadata.PackageNotFoundError(name)

    assert reusable_torch_dir('2.11.0', '0.26.0', missing, same.get) is None


def test_the_ops_check_runs_and_agrees_with_itself_on_the_cpu():
    # The GPU path is the same code with device='cuda'; this runs it where CI can.
    build_env.check_cuda_ops('cpu')


def test_the_ops_check_names_an_op_whose_device_result_differs(monkeypatch):
    import mmcv.ops
    real, calls = mmcv.ops.batched_nms, []

    def drops_one_box_the_first_time(*args, **kwargs):
        dets, keep = real(*args, **kwargs)
        calls.append(len(keep))
        return (dets[:-1], keep[:-1]) if len(calls) == 1 else (dets, keep)

    monkeypatch.setattr(mmcv.ops, 'batched_nms', drops_one_box_the_first_time)
    with pytest.raises(RuntimeError) as error:
        build_env.check_cuda_ops('cpu')
    assert str(error.value) == (f'mmcv.ops.batched_nms on cpu kept {calls[0] - 1} of 1000 boxes, '
                                f'the CPU {calls[0]} (or another set)')


@pytest.mark.gpu
def test_the_ops_check_passes_on_the_gpu():
    build_env.check_cuda_ops('cuda')


def test_a_bad_arch_list_exits_with_status_2_and_one_line(capsys):
    status = build_env.main(['arch-list'], {'FORCE_CUDA': '1', 'TORCH_CUDA_ARCH_LIST': '9.0;sm_90'})
    err = capsys.readouterr().err
    assert status == 2
    assert err == ("[setup_env] error: TORCH_CUDA_ARCH_LIST='9.0;sm_90' has 'sm_90': expected "
                   'entries like 8.0, 9.0a, 9.0+PTX or Hopper, separated by ";" or spaces\n')


def test_the_file_runs_by_path_before_mmcv_and_the_package_exist(tmp_path):
    # tools/setup_env.sh runs it before mmcv is installed: importing either must not happen.
    for name in ('mmcv', 'shufflenet_det'):
        (tmp_path / name).mkdir()
        (tmp_path / name / '__init__.py').write_text(f'raise ImportError("{name} imported")\n')
    env = {k: v for k, v in os.environ.items()
           if k not in ('TORCH_CUDA_ARCH_LIST', 'FORCE_CUDA')}
    env.update(PYTHONPATH=str(tmp_path), CUDA_VISIBLE_DEVICES='')
    path = Path(build_env.__file__)
    out = subprocess.run([sys.executable, str(path), 'key'], env=env, capture_output=True,
                         text=True, check=True).stdout
    python = f'{sys.version_info.major}.{sys.version_info.minor}'
    assert out == f'py{python}-torch{torch_release(torch.__version__)}-cpu\n'


def fake_wheel(path, extension):
    import zipfile
    with zipfile.ZipFile(path, 'w') as archive:
        archive.writestr('mmcv/__init__.py', '')
        if extension is not None:
            archive.writestr('mmcv/_ext.cpython-311-x86_64-linux-gnu.so', extension)
    return str(path)


def test_a_cuda_build_refuses_a_wheel_without_cuda_kernels(tmp_path):
    cpu = fake_wheel(tmp_path / 'cpu.whl', b'\x7fELF...roi_align_forward_impl...')
    cuda = fake_wheel(tmp_path / 'cuda.whl',
                      b'\x7fELF..._Z33ROIAlignForwardCUDAKernelLauncherN2at6TensorE...')
    assert build_env.check_wheel(cpu, '') == \
        '[setup_env] cpu.whl holds the CPU kernels of mmcv.ops'
    assert build_env.check_wheel(cuda, '9.0') == \
        '[setup_env] cuda.whl holds the CPU and CUDA kernels of mmcv.ops'
    with pytest.raises(BuildEnvError) as error:
        build_env.check_wheel(cpu, '9.0')
    assert str(error.value) == (f'{cpu} has no CUDA kernels, but this setup builds for '
                                'TORCH_CUDA_ARCH_LIST=9.0: delete it and run again')


def test_a_wheel_without_compiled_ops_is_refused_by_every_build(tmp_path):
    bare = fake_wheel(tmp_path / 'bare.whl', None)
    with pytest.raises(BuildEnvError, match='has no compiled mmcv/_ext'):
        build_env.check_wheel(bare, '')


def test_the_cached_cpu_wheel_holds_no_cuda_kernels():
    # The real wheel this machine's setup built: the marker must be absent from a CPU build
    # (and its CPU twin, ROIAlignForwardCPULauncher, present).
    wheels = sorted((Path.home() / '.cache/shufflenet_det/wheels').glob('*-cpu/mmcv-*.whl'))
    if not wheels:
        pytest.skip('no cached CPU wheel of mmcv on this machine')
    assert not build_env.wheel_has_cuda_kernels(str(wheels[0]))
    cpu_twin = build_env.CUDA_KERNEL_MARKER.replace(b'CUDAKernel', b'CPU')
    assert cpu_twin == b'ROIAlignForwardCPULauncher'
    import zipfile
    with zipfile.ZipFile(wheels[0]) as archive:
        extension = next(n for n in archive.namelist() if n.startswith('mmcv/_ext'))
        assert cpu_twin in archive.read(extension)


def test_library_headers_come_from_torch_s_wheels_when_cuda_home_lacks_them():
    toolkit = {f'/cuda/include/{h}' for h in build_env.TORCH_CUDA_LIBRARY_HEADERS}
    wheels = {f'/site/nvidia/cu13/include/{h}' for h in build_env.TORCH_CUDA_LIBRARY_HEADERS}
    assert build_env.cuda_library_include('/cuda', '/site', '13.0', toolkit.__contains__) == ''
    assert build_env.cuda_library_include('/cuda', '/site', '13.0', wheels.__contains__) == \
        '/site/nvidia/cu13/include'
    with pytest.raises(BuildEnvError) as error:
        build_env.cuda_library_include('/cuda', '/site', '13.0', set().__contains__)
    assert str(error.value) == (
        "CUDA_HOME /cuda has no include/cusparse.h, which torch's CUDA headers include, and "
        '/site/nvidia/cu13/include has none either: install the CUDA 13.0 toolkit and set '
        'CUDA_HOME to it')


def test_installed_from_tells_this_checkout_from_another(tmp_path):
    # `make test` sets up the environment first, which installs this checkout (editable).
    other = tmp_path / 'other_checkout'
    (other / 'shufflenet_det').mkdir(parents=True)
    (other / 'shufflenet_det' / '__init__.py').write_text('')

    def status(root) -> int:
        # -I as the setup script runs it; run inside `other`, whose package must not count.
        return subprocess.run([sys.executable, '-I', str(REPO / 'tools/setup/build_env.py'),
                               'installed-from', str(root)], cwd=other, timeout=120).returncode

    assert status(REPO) == 0
    assert status(other) == 1
