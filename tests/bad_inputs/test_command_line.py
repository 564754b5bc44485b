"""Bad command lines for every tool, as one table: each row is a tool, its arguments and
the outcome it must give.

* ``EXIT2``: exit status 2 and one line ``error: ...`` (or argparse's ``usage`` and
  ``error:`` lines for a malformed command line) containing the expected text, with no
  traceback and, where the row says so, before any work;
* ``WARNS``: exit status 0 and a warning naming what was skipped, with a count;
* ``OK``: exit status 0 and the expected text on stdout.

Arguments name files through placeholders (``{file}``, ``{folder}``, ...), which the
``paths`` fixture fills in with a fresh temporary folder per row. Every row is cheap: it
fails before any model is built or timed, builds at most a small model, or (two rows)
trains for one iteration.
"""
import os
import subprocess
from dataclasses import dataclass

import numpy as np
import pytest
import torch

from ..helpers import REPO, load_tool, mmengine_console_to_stdout, save_random_demo_detector

DEMO = str(REPO / 'configs/faster_rcnn_shufflenet_demo.py')
CLASSIFIER = str(REPO / 'configs/pretrain/shufflenet0.5x_g3_imagenet.py')
EXIT2, WARNS, OK = 'exit 2', 'warns', 'ok'
NO_GPU = 'no_gpu'          # the row expects torch to see no GPU
READ_ONLY = 'read_only'    # the row needs a folder this user cannot write (not root)
CHECKPOINT = 'checkpoint'  # {checkpoint}: the demo detector with random weights
SHAPES = 'shapes'          # {shapes}: a generated dataset of 2 + 1 images
# Allowed --cfg-options a config does not hold, or holds nested: MMEngine reads each.
ALLOWED = ['randomness.seed=0', 'default_hooks.checkpoint.interval=1',
           'model.backbone.init_cfg=None', 'env_cfg.cudnn_benchmark=False',
           'work_dir={folder}/w', 'load_from=None', 'resume=False', 'auto_scale_lr.enable=True',
           'default_hooks.checkpoint.max_keep_ckpts=1', 'optim_wrapper.clip_grad=None']
TINY_RUN = ['train_cfg.max_epochs=1', 'train_cfg.val_interval=2',
            'train_dataloader.batch_size=2', 'train_dataloader.num_workers=0',
            'train_dataloader.persistent_workers=False', 'val_dataloader.num_workers=0',
            'val_dataloader.persistent_workers=False']


@dataclass(frozen=True)
class Case:
    id: str
    tool: str
    args: list
    outcome: str
    expect: str  # texts ('|' between them) in the error line (EXIT2) or stdout (WARNS, OK)
    needs: tuple = ()
    creates: tuple = ()  # files the run must leave


CASES = [
    # ------------------------------------------------------------------ tools/train.py
    Case('train-missing-config', 'train', ['configs/missing.py'], EXIT2,
         'config file not found: configs/missing.py'),
    Case('train-unreadable-config', 'train', ['{bad_config}'], EXIT2,
         'cannot read config {bad_config}: SyntaxError'),
    Case('train-amp-without-gpu', 'train', [DEMO, '--amp', '--work-dir', '{folder}/w'], EXIT2,
         '--amp needs a GPU', needs=(NO_GPU, )),
    Case('train-missing-data-root', 'train',
         [DEMO, '--work-dir', '{folder}/w', '--data-root', '{folder}/nowhere'], EXIT2,
         'dataset not found'),
    Case('train-cfg-top-level-typo', 'train',
         [DEMO, '--work-dir', '{folder}/w', '--cfg-options', 'max_epoch=1'], EXIT2,
         "--cfg-options max_epoch: {demo} has no 'max_epoch' and MMEngine's Runner reads no "
         'such setting; did you mean train_cfg.max_epochs?'),
    Case('train-cfg-nested-typo', 'train',
         [DEMO, '--work-dir', '{folder}/w', '--cfg-options', 'train_cfg.max_epoch=1'], EXIT2,
         "--cfg-options train_cfg.max_epoch: EpochBasedTrainLoop (train_cfg) takes no "
         "'max_epoch' (it takes dynamic_intervals, max_epochs, val_begin, val_interval); "
         'did you mean train_cfg.max_epochs'),
    Case('train-cfg-without-equals', 'train',
         [DEMO, '--work-dir', '{folder}/w', '--cfg-options', 'train_cfg.max_epochs'], EXIT2,
         '--cfg-options train_cfg.max_epochs: expected KEY=VALUE'),
    Case('train-cfg-unbalanced-brackets', 'train',
         [DEMO, '--cfg-options', 'param_scheduler.1.milestones=[1,2'], EXIT2,
         '--cfg-options param_scheduler.1.milestones=[1,2: cannot parse the value'),
    Case('train-cfg-copied-variable', 'train',
         [DEMO, '--work-dir', '{folder}/w', '--cfg-options', 'max_epochs=1'], EXIT2,
         'max_epochs is a variable of {demo} that train_cfg.max_epochs copied when the file '
         'was read, so changing it has no effect; set train_cfg.max_epochs instead'),
    Case('train-cfg-list-index', 'train', [DEMO, '--cfg-options', 'param_scheduler.5.end=1'],
         EXIT2, 'param_scheduler is a list of 2 items; index it with 0 to 1'),
    Case('train-cfg-key-below-a-value', 'train',
         [DEMO, '--cfg-options', 'model.backbone.groups.x=1'], EXIT2,
         "model.backbone.groups is 3 in the config, not a dict, so it has no 'x'"),
    Case('train-cfg-backbone-typo', 'train',
         [DEMO, '--cfg-options', 'model.backbone.widen=1.0'], EXIT2,
         "ShuffleNetV1 (model.backbone) takes no 'widen' (it takes |"
         '); did you mean model.backbone.widen_factor'),
    Case('train-cfg-optimizer-typo', 'train',
         [DEMO, '--cfg-options', 'optim_wrapper.optimizer.lrr=0.1'], EXIT2,
         "SGD (optim_wrapper.optimizer) takes no 'lrr' (it takes |"
         '); did you mean optim_wrapper.optimizer.lr'),
    Case('train-work-dir-is-a-file', 'train', [DEMO, '--work-dir', '{file}'], EXIT2,
         '--work-dir {file}: is a file; expected a folder'),
    Case('train-work-dir-under-a-file', 'train', [DEMO, '--work-dir', '{file}/w'], EXIT2,
         '--work-dir {file}/w: cannot create it, {file} is a file, not a folder'),
    Case('train-work-dir-read-only', 'train', [DEMO, '--work-dir', '{read_only}/w'], EXIT2,
         '--work-dir {read_only}/w: the nearest existing folder {read_only} is not writable',
         needs=(READ_ONLY, )),
    Case('train-allowed-cfg-options', 'train',
         [DEMO, '--work-dir', '{folder}/run', '--data-root', '{shapes}', '--cfg-options',
          *ALLOWED, *TINY_RUN], OK, '', needs=(SHAPES, ), creates=('{folder}/run/epoch_1.pth', )),
    # num_workers=0 alone, as users debug a dataset: the config's persistent_workers=True
    # is turned off (PyTorch's DataLoader refuses it), and the log says so per dataloader.
    Case('train-num-workers-zero-with-persistent-workers', 'train',
         [DEMO, '--work-dir', '{folder}/run', '--data-root', '{shapes}', '--cfg-options',
          'train_cfg.max_epochs=1', 'train_cfg.val_interval=1', 'train_dataloader.batch_size=2',
          'train_dataloader.num_workers=0', 'val_dataloader.num_workers=0'], OK,
         'train_dataloader: num_workers=0, so persistent_workers is turned off|'
         'val_dataloader: num_workers=0, so persistent_workers is turned off',
         needs=(SHAPES, ), creates=('{folder}/run/epoch_1.pth', )),
    # ------------------------------------------------------------------ tools/test.py
    Case('test-missing-checkpoint', 'test', [DEMO, '{folder}/missing.pth'], EXIT2,
         'checkpoint file not found: {folder}/missing.pth'),
    Case('test-out-not-pickle', 'test', [DEMO, '{checkpoint}', '--out', 'results.json'],
         EXIT2, '--out must name a .pkl or .pickle file, got results.json'),
    Case('test-out-is-a-folder', 'test', [DEMO, '{checkpoint}', '--out', '{folder}/r.pkl'],
         EXIT2, '--out {folder}/r.pkl: is a folder; expected a file name'),
    Case('test-out-under-a-file', 'test', [DEMO, '{checkpoint}', '--out', '{file}/r.pkl'],
         EXIT2, '--out {file}/r.pkl: cannot create it, {file} is a file, not a folder'),
    Case('test-out-read-only', 'test', [DEMO, '{checkpoint}', '--out', '{read_only}/r.pkl'],
         EXIT2, '--out {read_only}/r.pkl: the folder {read_only} is not writable',
         needs=(READ_ONLY, )),
    Case('test-show-dir-is-a-file', 'test', [DEMO, '{checkpoint}', '--show-dir', '{file}'],
         EXIT2, '--show-dir {file}: is a file; expected a folder'),
    Case('test-work-dir-is-a-file', 'test', [DEMO, '{checkpoint}', '--work-dir', '{file}'],
         EXIT2, '--work-dir {file}: is a file; expected a folder', needs=(CHECKPOINT, )),
    Case('test-cfg-typo', 'test',
         [DEMO, '{checkpoint}', '--cfg-options', 'test_dataloader.batch_sise=1'], EXIT2,
         "DataLoader (test_dataloader) takes no 'batch_sise' (it takes |"
         '); did you mean test_dataloader.batch_size',
         needs=(CHECKPOINT, )),
    # ------------------------------------------------------------------ tools/demo.py
    Case('demo-not-an-image', 'demo',
         [str(REPO / 'README.md'), DEMO, '{checkpoint}', '--out-file', '{folder}/o.png'],
         EXIT2, f'cannot decode image {REPO / "README.md"}'),
    Case('demo-missing-image', 'demo',
         ['{folder}/missing.jpg', DEMO, '{checkpoint}', '--out-file', '{folder}/o.png'], EXIT2,
         'image not found: {folder}/missing.jpg'),
    Case('demo-score-thr-above-1', 'demo',
         ['{image}', DEMO, '{checkpoint}', '--out-file', 'o.png', '--score-thr', '2'], EXIT2,
         '--score-thr must be in [0, 1], got 2.0'),
    Case('demo-out-file-is-a-folder', 'demo',
         ['{image}', DEMO, '{checkpoint}', '--out-file', '{folder}'], EXIT2,
         '--out-file {folder}: is a folder; expected a file name'),
    Case('demo-missing-checkpoint', 'demo',
         ['{image}', DEMO, '{folder}/missing.pth', '--out-file', '{folder}/o.png'], EXIT2,
         'checkpoint file not found: {folder}/missing.pth'),
    Case('demo-folder-skips-an-empty-image', 'demo',
         ['{images}', DEMO, '{checkpoint}', '--out-dir', '{folder}/drawn'], WARNS,
         'warning: skipped {images}/b_empty.jpg: cannot decode image {images}/b_empty.jpg|'
         'warning: 1 of 3 images in {images} were skipped', needs=(CHECKPOINT, ),
         creates=('{folder}/drawn/a.png', '{folder}/drawn/c.jpg')),
    Case('demo-folder-of-bad-images', 'demo',
         ['{bad_images}', DEMO, '{checkpoint}', '--out-dir', '{folder}/drawn'], EXIT2,
         'none of the 1 images in {bad_images} could be drawn', needs=(CHECKPOINT, )),
    Case('demo-folder-without-images', 'demo',
         ['{folder}', DEMO, '{checkpoint}', '--out-dir', '{folder}/drawn'], EXIT2,
         'no images (.jpg, .jpeg, .png, .ppm, .bmp, .pgm, .tif, .tiff, .webp) in folder '
         '{folder}'),
    Case('demo-folder-into-an-image-file', 'demo',
         ['{images}', DEMO, '{checkpoint}', '--out-file', '{folder}/drawn.png'], EXIT2,
         '{images} is a folder: its images are drawn into a folder, --out-dir DIR, not into '
         'the image file {folder}/drawn.png'),
    Case('demo-folder-into-a-file', 'demo',
         ['{images}', DEMO, '{checkpoint}', '--out-dir', '{file}'], EXIT2,
         '--out-dir {file}: is a file; expected a folder'),
    # ------------------------------------------------------------------ tools/convert_checkpoint.py
    Case('convert-destination-is-a-folder', 'convert_checkpoint', ['{checkpoint}', '{folder}'],
         EXIT2, 'DST {folder}: is a folder; expected a file name'),
    Case('convert-destination-under-a-file', 'convert_checkpoint',
         ['{checkpoint}', '{file}/out.pth'], EXIT2, 'is a file, not a folder'),
    Case('convert-destination-read-only', 'convert_checkpoint',
         ['{checkpoint}', '{read_only}/out.pth'], EXIT2,
         'DST {read_only}/out.pth: the folder {read_only} is not writable', needs=(READ_ONLY, )),
    Case('convert-not-a-checkpoint', 'convert_checkpoint',
         [str(REPO / 'README.md'), '{folder}/out.pth'], EXIT2, 'is not a PyTorch checkpoint'),
    # ------------------------------------------------------------------ tools/get_flops.py
    Case('flops-shape-zero', 'get_flops', [DEMO, '--shape', '0', '0'], EXIT2,
         '--shape 0 0: every side must be 32 or more'),
    Case('flops-shape-negative', 'get_flops', [DEMO, '--shape', '-8', '600'], EXIT2,
         '--shape -8 600: every side must be 32 or more'),
    Case('flops-size-zero', 'get_flops', ['--size', '0'], EXIT2,
         '--size 0: every side must be 32 or more'),
    Case('flops-unknown-groups', 'get_flops', ['--groups', '5'], EXIT2,
         'invalid choice: 5 (choose from 1, 2, 3, 4, 8)'),
    Case('flops-classifier-config', 'get_flops', [CLASSIFIER], OK,
         f'{CLASSIFIER} at 224x224: |M parameters|MFLOPs (multiply-adds, classifier)'),
    Case('flops-cfg-typo', 'get_flops', [DEMO, '--cfg-options', 'model.neck.out_channel=32'],
         EXIT2, "FPN (model.neck) takes no 'out_channel' (it takes |); did you mean "
         'model.neck.out_channels'),
    Case('flops-cfg-key-of-another-wrapper', 'get_flops',
         [DEMO, '--cfg-options', 'optim_wrapper.loss_scale=dynamic'], EXIT2,
         "OptimWrapper (optim_wrapper) takes no 'loss_scale'"),
    Case('flops-cfg-type-changed-with-its-keys', 'get_flops',
         [DEMO, '--shape', '32', '32', '--cfg-options', 'optim_wrapper.type=AmpOptimWrapper',
          'optim_wrapper.loss_scale=dynamic'], OK, 'at 32x32:'),
    Case('flops-allowed-cfg-options', 'get_flops',
         [DEMO, '--shape', '64', '64', '--cfg-options', *ALLOWED], OK, 'at 64x64:'),
    # ------------------------------------------------------------------ tools/benchmark.py
    Case('bench-threads-zero', 'benchmark', ['backbone', '--threads', '0'], EXIT2,
         '--threads 0: must be 1 or more'),
    Case('bench-threads-negative', 'benchmark', ['backbone', '--threads', '2', '-1'], EXIT2,
         '--threads -1: must be 1 or more'),
    Case('bench-repeats-zero', 'benchmark', ['backbone', '--repeats', '0'], EXIT2,
         '--repeats 0: must be 1 or more'),
    Case('bench-warmup-negative', 'benchmark', ['backbone', '--warmup', '-1'], EXIT2,
         '--warmup -1: must be 0 or more'),
    Case('bench-unknown-peer', 'benchmark', ['backbone', '--peers', 'mobilenet_v9'], EXIT2,
         '--peers mobilenet_v9: not a torchvision classification model; did you mean '
         'mobilenet_v2'),
    Case('bench-unknown-shufflenet', 'benchmark', ['backbone', '--shufflenet', '3x_g5'], EXIT2,
         '--shufflenet 3x_g5: no such ShuffleNetV1 (width 3, groups 5); expected '
         'WIDTHx_gGROUPS with WIDTH one of 0.25, 0.5, 1, 1.5, 2 and GROUPS one of 1, 2, 3, 4, 8'),
    Case('bench-malformed-shufflenet', 'benchmark', ['backbone', '--shufflenet', 'g3'], EXIT2,
         '--shufflenet g3: expected WIDTHx_gGROUPS'),
    Case('bench-malformed-size', 'benchmark', ['backbone', '--sizes', '224'], EXIT2,
         "--sizes takes HEIGHTxWIDTH values such as 224x224, got '224'"),
    Case('bench-out-json-is-a-folder', 'benchmark', ['backbone', '--out-json', '{folder}'],
         EXIT2, '--out-json {folder}: is a folder; expected a file name'),
    Case('bench-out-md-under-a-file', 'benchmark', ['backbone', '--out-md', '{file}/t.md'],
         EXIT2, '--out-md {file}/t.md: cannot create it, {file} is a file, not a folder'),
    Case('bench-out-md-read-only', 'benchmark', ['backbone', '--out-md', '{read_only}/t.md'],
         EXIT2, 'the folder {read_only} is not writable', needs=(READ_ONLY, )),
    Case('bench-detector-cfg-typo', 'benchmark',
         ['detector', DEMO, '--cfg-options', 'model.test_cfg.rpn.max_per_img=10', 'maxepochs=1'],
         EXIT2, "--cfg-options maxepochs: {demo} has no 'maxepochs'"),
    Case('bench-detector-cfg-without-equals', 'benchmark',
         ['detector', DEMO, '--cfg-options', 'model'], EXIT2,
         '--cfg-options model: expected KEY=VALUE'),
    Case('bench-detector-short-side-zero', 'benchmark', ['detector', DEMO, '--short-side', '0'],
         EXIT2, '--short-side 0: must be 1 or more'),
    Case('bench-detector-missing-config', 'benchmark', ['detector', 'configs/missing.py'],
         EXIT2, 'config file not found: configs/missing.py'),
    Case('bench-detector-cuda-without-gpu', 'benchmark', ['detector', DEMO, '--device', 'cuda'],
         EXIT2, '--device cuda: torch sees no CUDA GPU here', needs=(NO_GPU, )),
    Case('bench-train-amp-on-cpu', 'benchmark', ['train', DEMO, '--amp'], EXIT2,
         '--amp needs --device cuda'),
    Case('bench-train-iters-zero', 'benchmark', ['train', DEMO, '--iters', '0'], EXIT2,
         '--iters 0: must be 1 or more'),
    Case('bench-train-second-config-missing', 'benchmark',
         ['train', DEMO, 'configs/missing.py'], EXIT2,
         'config file not found: configs/missing.py'),
    Case('bench-train-bad-size', 'benchmark', ['train', DEMO, '--size', '0x0'], EXIT2,
         "--size takes HEIGHTxWIDTH (600x800) or one side (256), got '0x0'"),
    Case('bench-loader-detector-config', 'benchmark', ['loader', DEMO, '--synthetic', '4'],
         EXIT2, 'is not an ImageNet pretraining config'),
    Case('bench-loader-negative-workers', 'benchmark',
         ['loader', CLASSIFIER, '--synthetic', '4', '--workers', '-1'], EXIT2,
         '--workers -1: must be 0 or more'),
    Case('bench-loader-no-data', 'benchmark', ['loader', CLASSIFIER], EXIT2,
         'give either --data-root (ImageNet with train/) or --synthetic N'),
]


@pytest.fixture(scope='module')
def demo_checkpoint(tmp_path_factory) -> str:
    """The demo detector with random weights."""
    return save_random_demo_detector(tmp_path_factory.mktemp('checkpoint'))


@pytest.fixture(scope='module')
def shapes(tmp_path_factory) -> str:
    from shufflenet_det.datasets.synthetic_shapes import generate_shapes_dataset
    root = tmp_path_factory.mktemp('shapes')
    generate_shapes_dataset(str(root), num_train=2, num_val=1, image_size=64)
    return str(root)


def _write_images(folder, names):
    import cv2
    folder.mkdir()
    pixels = np.random.default_rng(0).integers(0, 256, (48, 64, 3), dtype=np.uint8)
    for name in names:
        if 'empty' in name:
            (folder / name).write_bytes(b'')
        else:
            cv2.imwrite(str(folder / name), pixels)
    return str(folder)


@pytest.fixture
def paths(tmp_path, request) -> dict:
    """The placeholders' files, made fresh for each row."""
    (tmp_path / 'file').write_text('not a folder')
    (tmp_path / 'folder').mkdir()
    (tmp_path / 'folder' / 'r.pkl').mkdir()  # a folder named like an output file
    read_only = tmp_path / 'read_only'
    read_only.mkdir(mode=0o500)
    bad_config = tmp_path / 'bad_config.py'
    bad_config.write_text('model = dict(type=\n')
    images = tmp_path / 'images'
    _write_images(images, ['a.png', 'b_empty.jpg', 'c.jpg'])
    (images / 'notes.txt').write_text('not an image, and not listed')
    yield dict(file=str(tmp_path / 'file'), folder=str(tmp_path / 'folder'),
               read_only=str(read_only), bad_config=str(bad_config), demo=DEMO,
               images=str(images), image=str(images / 'a.png'),
               bad_images=_write_images(tmp_path / 'bad_images', ['x_empty.png']),
               checkpoint=str(tmp_path / 'no_checkpoint_needed.pth'), shapes='')
    read_only.chmod(0o700)


def _skip_unless_possible(case: Case, paths: dict) -> None:
    if NO_GPU in case.needs and torch.cuda.is_available():
        pytest.skip('torch sees a GPU here')
    if READ_ONLY in case.needs and os.access(paths['read_only'], os.W_OK):
        pytest.skip('this user may write into read-only folders (root)')


def _run(tool: str, args: list, capsys) -> tuple[int, str, str]:
    """Exit status, stdout and stderr of ``tools/TOOL.py ARGS``."""
    mmengine_console_to_stdout()
    # Forget an earlier row's visualizer: mmdet's runtime names it 'visualizer', and MMEngine
    # would hand that instance, with its deleted work dir, to this row's Runner.
    from mmdet.visualization import DetLocalVisualizer
    from mmengine.visualization import Visualizer
    for cls in (Visualizer, DetLocalVisualizer):
        cls._instance_dict.pop('visualizer', None)
    try:
        status = load_tool(tool).main(args)
    except SystemExit as exc:  # argparse's own errors
        status = exc.code
    captured = capsys.readouterr()
    return status, captured.out, captured.err


@pytest.mark.parametrize('case', CASES, ids=[c.id for c in CASES])
def test_command_line(case: Case, paths, request, capsys):
    _skip_unless_possible(case, paths)
    if CHECKPOINT in case.needs:  # elsewhere {checkpoint} is a missing file: never read
        paths['checkpoint'] = request.getfixturevalue('demo_checkpoint')
    if SHAPES in case.needs:
        paths['shapes'] = request.getfixturevalue('shapes')
    args = [a.format(**paths) for a in case.args]
    status, out, err = _run(case.tool, args, capsys)
    expected = case.expect.format(**paths)
    if case.outcome == EXIT2:
        assert status == 2, f'exit status {status}\nstdout: {out[-2000:]}\nstderr: {err[-2000:]}'
        assert 'Traceback' not in err, err
        error_lines = [line for line in err.splitlines() if 'error: ' in line]
        assert len(error_lines) == 1, err
        for text in expected.split('|'):
            assert text in error_lines[0], error_lines[0]
    else:
        assert status == 0, f'exit status {status}\nstdout: {out[-2000:]}\nstderr: {err[-2000:]}'
        for text in expected.split('|'):
            assert text in out, out[-3000:]
    for path in case.creates:
        assert os.path.isfile(path.format(**paths)), path


# ---------------------------------------------------------------- tools/dist_*.sh
# The launch scripts check their arguments and the multi-node settings before torchrun
# starts. A stand-in interpreter records any launch: none may happen.
DIST_CASES = [
    ('dist-train-no-arguments', 'dist_train.sh', [], {},
     'missing arguments: expected a config and the number of processes (GPUS)'),
    ('dist-train-config-and-gpus-swapped', 'dist_train.sh', ['8', DEMO], {},
     f"GPUS '{DEMO}' is not a number of processes: expected a whole number, 1 or more"),
    ('dist-train-zero-gpus', 'dist_train.sh', [DEMO, '0'], {},
     "GPUS '0' is not a number of processes"),
    ('dist-train-zero-nodes', 'dist_train.sh', [DEMO, '2'], {'NNODES': '0'},
     'NNODES=0: expected a whole number, 1 or more'),
    ('dist-train-port-out-of-range', 'dist_train.sh', [DEMO, '2'], {'PORT': '70000'},
     'PORT=70000: expected 1 to 65535'),
    ('dist-test-no-gpus', 'dist_test.sh', [DEMO, 'model.pth'], {},
     'missing arguments: expected a config, a checkpoint and the number of processes (GPUS)'),
    ('dist-test-node-rank-past-the-nodes', 'dist_test.sh', [DEMO, 'model.pth', '2'],
     {'NNODES': '2', 'NODE_RANK': '2'}, 'NODE_RANK=2: expected 0 to 1 (NNODES=2)'),
]


@pytest.mark.parametrize('script,args,settings,expect', [c[1:] for c in DIST_CASES],
                         ids=[c[0] for c in DIST_CASES])
def test_dist_script_arguments(script, args, settings, expect, tmp_path):
    launched = tmp_path / 'launched'
    stand_in = tmp_path / 'python'
    stand_in.write_text(f'#!/usr/bin/env bash\ntouch {launched}\n')
    stand_in.chmod(0o755)
    env = {k: v for k, v in os.environ.items()
           if k not in ('NNODES', 'NODE_RANK', 'PORT', 'MASTER_ADDR')}
    proc = subprocess.run(['bash', f'tools/{script}', *args], cwd=REPO, capture_output=True,
                          text=True, env=dict(env, PYTHON=str(stand_in), **settings), timeout=60)
    assert proc.returncode == 2, proc.stderr
    error_lines = [line for line in proc.stderr.splitlines() if line.startswith('error: ')]
    assert len(error_lines) == 1 and expect in error_lines[0], proc.stderr
    assert not launched.exists()
