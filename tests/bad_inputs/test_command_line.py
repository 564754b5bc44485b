"""Bad command lines for every tool, as one table of :class:`.harness.Case`: each row is a
tool, its arguments and the outcome it must give (a warning row says what was skipped,
with a count).

Arguments name files through placeholders (``{file}``, ``{folder}``, ...), which the
``paths`` fixture fills in with a fresh temporary folder per row. Every row is cheap: it
fails before any model is built or timed, builds at most a small model, or (two rows)
trains for one iteration.
"""
import numpy as np
import pytest

from ..helpers import REPO, save_random_demo_detector
from .harness import NO_GPU, READ_ONLY, Case, check, table

DEMO = str(REPO / 'configs/faster_rcnn_shufflenet_demo.py')
CLASSIFIER = str(REPO / 'configs/pretrain/shufflenet0.5x_g3_imagenet.py')
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


CASES = [
    # ------------------------------------------------------------------ tools/train.py
    Case('train-missing-config', 'train', ['configs/missing.py'], 2,
         'config file not found: configs/missing.py'),
    Case('train-unreadable-config', 'train', ['{bad_config}'], 2,
         'cannot read config {bad_config}: SyntaxError'),
    Case('train-amp-without-gpu', 'train', [DEMO, '--amp', '--work-dir', '{folder}/w'], 2,
         '--amp needs a GPU', needs=(NO_GPU, )),
    Case('train-missing-data-root', 'train',
         [DEMO, '--work-dir', '{folder}/w', '--data-root', '{folder}/nowhere'], 2,
         'dataset not found'),
    Case('train-cfg-top-level-typo', 'train',
         [DEMO, '--work-dir', '{folder}/w', '--cfg-options', 'max_epoch=1'], 2,
         "--cfg-options max_epoch: {demo} has no 'max_epoch' and MMEngine's Runner reads no "
         'such setting; did you mean train_cfg.max_epochs?'),
    Case('train-cfg-nested-typo', 'train',
         [DEMO, '--work-dir', '{folder}/w', '--cfg-options', 'train_cfg.max_epoch=1'], 2,
         "--cfg-options train_cfg.max_epoch: EpochBasedTrainLoop (train_cfg) takes no "
         "'max_epoch' (it takes dynamic_intervals, max_epochs, val_begin, val_interval); "
         'did you mean train_cfg.max_epochs'),
    Case('train-cfg-without-equals', 'train',
         [DEMO, '--work-dir', '{folder}/w', '--cfg-options', 'train_cfg.max_epochs'], 2,
         '--cfg-options train_cfg.max_epochs: expected KEY=VALUE'),
    Case('train-cfg-unbalanced-brackets', 'train',
         [DEMO, '--cfg-options', 'param_scheduler.1.milestones=[1,2'], 2,
         '--cfg-options param_scheduler.1.milestones=[1,2: cannot parse the value'),
    Case('train-cfg-copied-variable', 'train',
         [DEMO, '--work-dir', '{folder}/w', '--cfg-options', 'max_epochs=1'], 2,
         'max_epochs is a variable of {demo} that train_cfg.max_epochs copied when the file '
         'was read, so changing it has no effect; set train_cfg.max_epochs instead'),
    Case('train-cfg-list-index', 'train', [DEMO, '--cfg-options', 'param_scheduler.5.end=1'],
         2, 'param_scheduler is a list of 2 items; index it with 0 to 1'),
    Case('train-cfg-key-below-a-value', 'train',
         [DEMO, '--cfg-options', 'model.backbone.groups.x=1'], 2,
         "model.backbone.groups is 3 in the config, not a dict, so it has no 'x'"),
    Case('train-cfg-backbone-typo', 'train',
         [DEMO, '--cfg-options', 'model.backbone.widen=1.0'], 2,
         ("ShuffleNetV1 (model.backbone) takes no 'widen' (it takes ",
          '); did you mean model.backbone.widen_factor')),
    Case('train-cfg-optimizer-typo', 'train',
         [DEMO, '--cfg-options', 'optim_wrapper.optimizer.lrr=0.1'], 2,
         ("SGD (optim_wrapper.optimizer) takes no 'lrr' (it takes ",
          '); did you mean optim_wrapper.optimizer.lr')),
    Case('train-work-dir-is-a-file', 'train', [DEMO, '--work-dir', '{file}'], 2,
         '--work-dir {file}: is a file; expected a folder'),
    Case('train-work-dir-under-a-file', 'train', [DEMO, '--work-dir', '{file}/w'], 2,
         '--work-dir {file}/w: cannot create it, {file} is a file, not a folder'),
    Case('train-work-dir-read-only', 'train', [DEMO, '--work-dir', '{read_only}/w'], 2,
         '--work-dir {read_only}/w: the nearest existing folder {read_only} is not writable',
         needs=(READ_ONLY, )),
    Case('train-allowed-cfg-options', 'train',
         [DEMO, '--work-dir', '{folder}/run', '--data-root', '{shapes}', '--cfg-options',
          *ALLOWED, *TINY_RUN], 0, needs=(SHAPES, ), creates=('{folder}/run/epoch_1.pth', )),
    # num_workers=0 alone, as users debug a dataset: the config's persistent_workers=True
    # is turned off (PyTorch's DataLoader refuses it), and the log says so per dataloader.
    Case('train-num-workers-zero-with-persistent-workers', 'train',
         [DEMO, '--work-dir', '{folder}/run', '--data-root', '{shapes}', '--cfg-options',
          'train_cfg.max_epochs=1', 'train_cfg.val_interval=1', 'train_dataloader.batch_size=2',
          'train_dataloader.num_workers=0', 'val_dataloader.num_workers=0'], 0,
         ('train_dataloader: num_workers=0, so persistent_workers is turned off',
          'val_dataloader: num_workers=0, so persistent_workers is turned off'),
         needs=(SHAPES, ), creates=('{folder}/run/epoch_1.pth', )),
    # ------------------------------------------------------------------ tools/test.py
    Case('test-missing-checkpoint', 'test', [DEMO, '{folder}/missing.pth'], 2,
         'checkpoint file not found: {folder}/missing.pth'),
    Case('test-out-not-pickle', 'test', [DEMO, '{checkpoint}', '--out', 'results.json'],
         2, '--out must name a .pkl or .pickle file, got results.json'),
    Case('test-out-is-a-folder', 'test', [DEMO, '{checkpoint}', '--out', '{folder}/r.pkl'],
         2, '--out {folder}/r.pkl: is a folder; expected a file name'),
    Case('test-out-under-a-file', 'test', [DEMO, '{checkpoint}', '--out', '{file}/r.pkl'],
         2, '--out {file}/r.pkl: cannot create it, {file} is a file, not a folder'),
    Case('test-out-read-only', 'test', [DEMO, '{checkpoint}', '--out', '{read_only}/r.pkl'],
         2, '--out {read_only}/r.pkl: the folder {read_only} is not writable',
         needs=(READ_ONLY, )),
    Case('test-show-dir-is-a-file', 'test', [DEMO, '{checkpoint}', '--show-dir', '{file}'],
         2, '--show-dir {file}: is a file; expected a folder'),
    Case('test-work-dir-is-a-file', 'test', [DEMO, '{checkpoint}', '--work-dir', '{file}'],
         2, '--work-dir {file}: is a file; expected a folder', needs=(CHECKPOINT, )),
    Case('test-cfg-typo', 'test',
         [DEMO, '{checkpoint}', '--cfg-options', 'test_dataloader.batch_sise=1'], 2,
         ("DataLoader (test_dataloader) takes no 'batch_sise' (it takes ",
          '); did you mean test_dataloader.batch_size'),
         needs=(CHECKPOINT, )),
    # ------------------------------------------------------------------ tools/demo.py
    Case('demo-not-an-image', 'demo',
         [str(REPO / 'README.md'), DEMO, '{checkpoint}', '--out-file', '{folder}/o.png'],
         2, f'cannot decode image {REPO / "README.md"}'),
    Case('demo-missing-image', 'demo',
         ['{folder}/missing.jpg', DEMO, '{checkpoint}', '--out-file', '{folder}/o.png'], 2,
         'image not found: {folder}/missing.jpg'),
    Case('demo-score-thr-above-1', 'demo',
         ['{image}', DEMO, '{checkpoint}', '--out-file', 'o.png', '--score-thr', '2'], 2,
         '--score-thr must be in [0, 1], got 2.0'),
    Case('demo-out-file-is-a-folder', 'demo',
         ['{image}', DEMO, '{checkpoint}', '--out-file', '{folder}'], 2,
         '--out-file {folder}: is a folder; expected a file name'),
    Case('demo-missing-checkpoint', 'demo',
         ['{image}', DEMO, '{folder}/missing.pth', '--out-file', '{folder}/o.png'], 2,
         'checkpoint file not found: {folder}/missing.pth'),
    Case('demo-folder-skips-an-empty-image', 'demo',
         ['{images}', DEMO, '{checkpoint}', '--out-dir', '{folder}/drawn'], 0,
         ('warning: skipped {images}/b_empty.jpg: cannot decode image {images}/b_empty.jpg',
          'warning: 1 of 3 images in {images} were skipped'), warns=True, needs=(CHECKPOINT, ),
         creates=('{folder}/drawn/a.png', '{folder}/drawn/c.jpg')),
    Case('demo-folder-of-bad-images', 'demo',
         ['{bad_images}', DEMO, '{checkpoint}', '--out-dir', '{folder}/drawn'], 2,
         'none of the 1 images in {bad_images} could be drawn', needs=(CHECKPOINT, )),
    Case('demo-folder-without-images', 'demo',
         ['{folder}', DEMO, '{checkpoint}', '--out-dir', '{folder}/drawn'], 2,
         'no images (.jpg, .jpeg, .png, .ppm, .bmp, .pgm, .tif, .tiff, .webp) in folder '
         '{folder}'),
    Case('demo-folder-into-an-image-file', 'demo',
         ['{images}', DEMO, '{checkpoint}', '--out-file', '{folder}/drawn.png'], 2,
         '{images} is a folder: its images are drawn into a folder, --out-dir DIR, not into '
         'the image file {folder}/drawn.png'),
    Case('demo-folder-into-a-file', 'demo',
         ['{images}', DEMO, '{checkpoint}', '--out-dir', '{file}'], 2,
         '--out-dir {file}: is a file; expected a folder'),
    # ------------------------------------------------------------------ tools/convert_checkpoint.py
    Case('convert-destination-is-a-folder', 'convert_checkpoint', ['{checkpoint}', '{folder}'],
         2, 'DST {folder}: is a folder; expected a file name'),
    Case('convert-destination-under-a-file', 'convert_checkpoint',
         ['{checkpoint}', '{file}/out.pth'], 2, 'is a file, not a folder'),
    Case('convert-destination-read-only', 'convert_checkpoint',
         ['{checkpoint}', '{read_only}/out.pth'], 2,
         'DST {read_only}/out.pth: the folder {read_only} is not writable', needs=(READ_ONLY, )),
    Case('convert-not-a-checkpoint', 'convert_checkpoint',
         [str(REPO / 'README.md'), '{folder}/out.pth'], 2, 'is not a PyTorch checkpoint'),
    # ------------------------------------------------------------------ tools/get_flops.py
    Case('flops-shape-zero', 'get_flops', [DEMO, '--shape', '0', '0'], 2,
         '--shape 0 0: every side must be 32 or more'),
    Case('flops-shape-negative', 'get_flops', [DEMO, '--shape', '-8', '600'], 2,
         '--shape -8 600: every side must be 32 or more'),
    Case('flops-size-zero', 'get_flops', ['--size', '0'], 2,
         '--size 0: every side must be 32 or more'),
    Case('flops-unknown-groups', 'get_flops', ['--groups', '5'], 2,
         'invalid choice: 5 (choose from 1, 2, 3, 4, 8)'),
    Case('flops-classifier-config', 'get_flops', [CLASSIFIER], 0,
         (f'{CLASSIFIER} at 224x224: ', 'M parameters', 'MFLOPs (multiply-adds, classifier)')),
    Case('flops-cfg-typo', 'get_flops', [DEMO, '--cfg-options', 'model.neck.out_channel=32'],
         2, ("FPN (model.neck) takes no 'out_channel' (it takes ",
             '); did you mean model.neck.out_channels')),
    Case('flops-cfg-key-of-another-wrapper', 'get_flops',
         [DEMO, '--cfg-options', 'optim_wrapper.loss_scale=dynamic'], 2,
         "OptimWrapper (optim_wrapper) takes no 'loss_scale'"),
    Case('flops-cfg-type-changed-with-its-keys', 'get_flops',
         [DEMO, '--shape', '32', '32', '--cfg-options', 'optim_wrapper.type=AmpOptimWrapper',
          'optim_wrapper.loss_scale=dynamic'], 0, 'at 32x32:'),
    Case('flops-allowed-cfg-options', 'get_flops',
         [DEMO, '--shape', '64', '64', '--cfg-options', *ALLOWED], 0, 'at 64x64:'),
    # ------------------------------------------------------------------ tools/benchmark.py
    Case('bench-threads-zero', 'benchmark', ['backbone', '--threads', '0'], 2,
         '--threads 0: must be 1 or more'),
    Case('bench-threads-negative', 'benchmark', ['backbone', '--threads', '2', '-1'], 2,
         '--threads -1: must be 1 or more'),
    Case('bench-repeats-zero', 'benchmark', ['backbone', '--repeats', '0'], 2,
         '--repeats 0: must be 1 or more'),
    Case('bench-warmup-negative', 'benchmark', ['backbone', '--warmup', '-1'], 2,
         '--warmup -1: must be 0 or more'),
    Case('bench-unknown-peer', 'benchmark', ['backbone', '--peers', 'mobilenet_v9'], 2,
         '--peers mobilenet_v9: not a torchvision classification model; did you mean '
         'mobilenet_v2'),
    Case('bench-unknown-shufflenet', 'benchmark', ['backbone', '--shufflenet', '3x_g5'], 2,
         '--shufflenet 3x_g5: no such ShuffleNetV1 (width 3, groups 5); expected '
         'WIDTHx_gGROUPS with WIDTH one of 0.25, 0.5, 1, 1.5, 2 and GROUPS one of 1, 2, 3, 4, 8'),
    Case('bench-malformed-shufflenet', 'benchmark', ['backbone', '--shufflenet', 'g3'], 2,
         '--shufflenet g3: expected WIDTHx_gGROUPS'),
    Case('bench-malformed-size', 'benchmark', ['backbone', '--sizes', '224'], 2,
         "--sizes takes HEIGHTxWIDTH values such as 224x224, got '224'"),
    Case('bench-out-json-is-a-folder', 'benchmark', ['backbone', '--out-json', '{folder}'],
         2, '--out-json {folder}: is a folder; expected a file name'),
    Case('bench-out-md-under-a-file', 'benchmark', ['backbone', '--out-md', '{file}/t.md'],
         2, '--out-md {file}/t.md: cannot create it, {file} is a file, not a folder'),
    Case('bench-out-md-read-only', 'benchmark', ['backbone', '--out-md', '{read_only}/t.md'],
         2, 'the folder {read_only} is not writable', needs=(READ_ONLY, )),
    Case('bench-detector-cfg-typo', 'benchmark',
         ['detector', DEMO, '--cfg-options', 'model.test_cfg.rpn.max_per_img=10', 'maxepochs=1'],
         2, "--cfg-options maxepochs: {demo} has no 'maxepochs'"),
    Case('bench-detector-cfg-without-equals', 'benchmark',
         ['detector', DEMO, '--cfg-options', 'model'], 2,
         '--cfg-options model: expected KEY=VALUE'),
    Case('bench-detector-short-side-zero', 'benchmark', ['detector', DEMO, '--short-side', '0'],
         2, '--short-side 0: must be 1 or more'),
    Case('bench-detector-missing-config', 'benchmark', ['detector', 'configs/missing.py'],
         2, 'config file not found: configs/missing.py'),
    Case('bench-detector-cuda-without-gpu', 'benchmark', ['detector', DEMO, '--device', 'cuda'],
         2, '--device cuda: torch sees no CUDA GPU here', needs=(NO_GPU, )),
    Case('bench-train-amp-on-cpu', 'benchmark', ['train', DEMO, '--amp'], 2,
         '--amp needs --device cuda'),
    Case('bench-train-iters-zero', 'benchmark', ['train', DEMO, '--iters', '0'], 2,
         '--iters 0: must be 1 or more'),
    Case('bench-train-second-config-missing', 'benchmark',
         ['train', DEMO, 'configs/missing.py'], 2,
         'config file not found: configs/missing.py'),
    Case('bench-train-bad-size', 'benchmark', ['train', DEMO, '--size', '0x0'], 2,
         "--size takes HEIGHTxWIDTH (600x800) or one side (256), got '0x0'"),
    Case('bench-loader-detector-config', 'benchmark', ['loader', DEMO, '--synthetic', '4'],
         2, 'is not an ImageNet pretraining config'),
    Case('bench-loader-negative-workers', 'benchmark',
         ['loader', CLASSIFIER, '--synthetic', '4', '--workers', '-1'], 2,
         '--workers -1: must be 0 or more'),
    Case('bench-loader-no-data', 'benchmark', ['loader', CLASSIFIER], 2,
         'give either --data-root (ImageNet with train/) or --synthetic N'),
]


# ---------------------------------------------------------------- tools/dist_*.sh
# The launch scripts check their arguments and the multi-node settings before torchrun
# starts. The stand-in interpreter records any launch: none may happen.
NOT_LAUNCHED = ('{tmp}/launched', )
DIST_CASES = [
    Case('dist-train-no-arguments', 'dist_train.sh', [], 2,
         'missing arguments: expected a config and the number of processes (GPUS)',
         absent=NOT_LAUNCHED),
    Case('dist-train-config-and-gpus-swapped', 'dist_train.sh', ['8', DEMO], 2,
         f"GPUS '{DEMO}' is not a number of processes: expected a whole number, 1 or more",
         absent=NOT_LAUNCHED),
    Case('dist-train-zero-gpus', 'dist_train.sh', [DEMO, '0'], 2,
         "GPUS '0' is not a number of processes", absent=NOT_LAUNCHED),
    Case('dist-train-zero-nodes', 'dist_train.sh', [DEMO, '2'], 2,
         'NNODES=0: expected a whole number, 1 or more', env={'NNODES': '0'},
         absent=NOT_LAUNCHED),
    Case('dist-train-port-out-of-range', 'dist_train.sh', [DEMO, '2'], 2,
         'PORT=70000: expected 1 to 65535', env={'PORT': '70000'}, absent=NOT_LAUNCHED),
    Case('dist-test-no-gpus', 'dist_test.sh', [DEMO, 'model.pth'], 2,
         'missing arguments: expected a config, a checkpoint and the number of processes (GPUS)',
         absent=NOT_LAUNCHED),
    Case('dist-test-node-rank-past-the-nodes', 'dist_test.sh', [DEMO, 'model.pth', '2'], 2,
         'NODE_RANK=2: expected 0 to 1 (NNODES=2)', env={'NNODES': '2', 'NODE_RANK': '2'},
         absent=NOT_LAUNCHED),
]


@pytest.fixture(scope='module')
def checkpoint(tmp_path_factory) -> str:
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
def paths(tmp_path) -> dict:
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
    yield dict(tmp=tmp_path, file=str(tmp_path / 'file'), folder=str(tmp_path / 'folder'),
               read_only=str(read_only), bad_config=str(bad_config), demo=DEMO,
               images=str(images), image=str(images / 'a.png'),
               bad_images=_write_images(tmp_path / 'bad_images', ['x_empty.png']),
               # elsewhere {checkpoint} is a missing file: never read
               checkpoint=str(tmp_path / 'no_checkpoint_needed.pth'))
    read_only.chmod(0o700)


@table(CASES)
def test_command_line(case: Case, paths, request, capsys):
    check(case, paths, request, capsys)


@table(DIST_CASES)
def test_dist_script_arguments(case: Case, tmp_path, request, capsys):
    check(case, dict(tmp=tmp_path), request, capsys)
