"""Bad inputs to the ONNX tools and to ``ONNXRuntimeDetector``, as one table.

Each row (a :class:`.harness.Case`) runs a real tool or the API and states the outcome:
an exit status with the one ``error:`` line it prints, an ``InputError`` whose message
holds a given text, or success. One untrained demo detector is exported once
for the module (with its int8 copy), and the broken files are made from it.

    .venv/bin/python -m pytest tests/bad_inputs/test_onnx.py -q
"""
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from mmengine.config import Config
from PIL import Image

from shufflenet_det.datasets.synthetic_shapes import CLASSES, generate_shapes_dataset
from shufflenet_det.deploy import ONNXRuntimeDetector, export_onnx
from shufflenet_det.errors import InputError
from shufflenet_det.models import ShuffleNetV1

from ..helpers import REPO, load_tool
from .harness import READ_ONLY, Case, check, table

CONFIG = str(REPO / 'configs/faster_rcnn_shufflenet_demo.py')
COCO_CONFIG = str(REPO / 'configs/faster_rcnn_shufflenet1x_fpn_coco.py')
BACKBONE = ['--widen-factor', '0.5', '--shape', '1', '3', '64', '64']


@pytest.fixture(scope='module')
def files(tmp_path_factory) -> dict[str, str]:
    """The paths the table's rows name, by placeholder."""
    from mmdet.registry import MODELS
    root = tmp_path_factory.mktemp('onnx_bad_inputs')
    torch.manual_seed(0)
    model = MODELS.build(Config.fromfile(CONFIG).model)
    pth = root / 'demo.pth'
    torch.save(dict(state_dict=model.state_dict(), meta=dict(dataset_meta=dict(classes=CLASSES))),
               pth)
    rng = np.random.default_rng(0)
    (root / 'calib').mkdir()
    for i in range(2):
        Image.fromarray(rng.integers(0, 256, (96, 128, 3), dtype=np.uint8)).save(
            root / 'calib' / f'{i}.png')
    det = root / 'det.onnx'
    assert load_tool('export_onnx').main([CONFIG, str(pth), '--out', str(det), '--int8',
                                          '--calib-dir', str(root / 'calib'),
                                          '--calib-num', '2']) == 0
    backbone = root / 'backbone.onnx'
    export_onnx(ShuffleNetV1(widen_factor=0.5, out_indices=(0, 1, 2)).eval(), str(backbone),
                (1, 3, 64, 64))
    (root / 'truncated.onnx').write_bytes(det.read_bytes()[:det.stat().st_size // 2])
    shutil.copy(pth, root / 'checkpoint_renamed.onnx')
    (root / 'empty.onnx').write_bytes(b'')
    (root / 'folder.onnx').mkdir()
    (root / 'a_file').write_text('not a folder')
    (root / 'broken_calib').mkdir()
    (root / 'broken_calib' / '0.png').write_bytes(b'\x89PNG not really')
    (root / 'read_only').mkdir()
    (root / 'read_only').chmod(0o555)
    (root / 'int8_taken').mkdir()
    (root / 'int8_taken' / 'x_int8.onnx').mkdir()
    Image.fromarray(rng.integers(0, 256, (100, 120, 3), dtype=np.uint8)).save(root / 'image.png')
    generate_shapes_dataset(str(root / 'shapes'), num_train=1, num_val=2, image_size=64)
    return dict(tmp=root, root=str(root), det=str(det), int8=str(root / 'det_int8.onnx'),
                pth=str(pth), backbone=str(backbone), truncated=str(root / 'truncated.onnx'),
                renamed=str(root / 'checkpoint_renamed.onnx'), empty=str(root / 'empty.onnx'),
                folder=str(root / 'folder.onnx'), a_file=str(root / 'a_file'),
                calib=str(root / 'calib'), broken_calib=str(root / 'broken_calib'),
                image=str(root / 'image.png'), work=str(root / 'work'),
                read_only=str(root / 'read_only'), shapes=str(root / 'shapes'))


def gray(h, w):
    return np.random.default_rng(0).integers(0, 256, (h, w), dtype=np.uint8)


def detect(path, image):
    return ONNXRuntimeDetector(path)(image)


def shape(h, w):
    """Checks the detections of an ``(h, w)`` image."""
    return lambda result: (tuple(result.ori_shape) == (h, w)
                           and result.pred_instances.bboxes.shape[1] == 4)


NOT_A_DETECTOR = 'is not a detector exported by tools/export_onnx.py CONFIG CHECKPOINT'
NOT_ONNX = 'is not an ONNX file, or is truncated'
OTHER_CONFIG = 'was exported with another config'
TEST = ('{det}', '--work-dir', '{work}')
CASES = [
    # tools/test.py CONFIG FILE.onnx: the file and the config are checked before the data.
    Case('test-its_config', 'test', [
        CONFIG, *TEST, '--data-root', '{shapes}', '--cfg-options',
        'test_dataloader.num_workers=0', 'test_dataloader.persistent_workers=False'],
        0, 'metrics written to {work}/metrics.json'),
    Case('test-truncated_onnx', 'test', [CONFIG, '{truncated}', *TEST[1:]], 2, NOT_ONNX),
    Case('test-pth_renamed_onnx', 'test', [CONFIG, '{renamed}', *TEST[1:]], 2,
         'it is a zip archive: a PyTorch checkpoint?; expected an .onnx file'),
    Case('test-backbone_onnx', 'test', [CONFIG, '{backbone}', *TEST[1:]], 2,
         f'{NOT_A_DETECTOR} (no shufflenet_det.format in its metadata); it is an ONNX '
         "model with inputs ['input'] and outputs ['output0', 'output1', 'output2']: a "
         'backbone or classifier export?'),
    Case('test-empty_file', 'test', [CONFIG, '{empty}', *TEST[1:]], 2, 'is empty (0 bytes)'),
    Case('test-folder', 'test', [CONFIG, '{folder}', *TEST[1:]], 2, 'is a folder'),
    Case('test-missing_file', 'test', [CONFIG, '{root}/none.onnx', *TEST[1:]], 2,
         'ONNX file not found'),
    Case('test-config_of_other_classes', 'test', [COCO_CONFIG, *TEST], 2,
         f"{OTHER_CONFIG}: classes[0] is 'circle' in the file, 'person' in {COCO_CONFIG}"),
    Case('test-other_test_pipeline', 'test', [
        CONFIG, *TEST, '--cfg-options', 'test_dataloader.dataset.pipeline.1.scale=(320,320)'],
        2, f'{OTHER_CONFIG}: test_pipeline[1].scale is [256, 256] in the file, [320, 320] in'),
    Case('test-other_normalisation', 'test', [
        CONFIG, *TEST, '--cfg-options', 'model.data_preprocessor.mean=[0,0,0]'],
        2, f'{OTHER_CONFIG}: model.data_preprocessor.mean is [128, 128, 128] in the file, '
           '[0, 0, 0] in'),
    Case('test-other_score_threshold', 'test', [
        CONFIG, *TEST, '--cfg-options', 'model.test_cfg.rcnn.score_thr=0.5'],
        2, f'{OTHER_CONFIG}: model.test_cfg.rcnn.score_thr is 0.05 in the file, 0.5 in'),
    # tools/demo.py IMAGE CONFIG FILE.onnx
    Case('demo-its_config', 'demo', ['{image}', CONFIG, '{det}', '--out-file',
                                     '{root}/drawn.png'], 0, 'drawn to'),
    Case('demo-int8_file', 'demo', ['{image}', CONFIG, '{int8}', '--out-file',
                                    '{root}/drawn8.png'], 0, 'drawn to'),
    Case('demo-config_of_other_classes', 'demo', [
        '{image}', COCO_CONFIG, '{det}', '--out-file', '{root}/not_drawn.png'],
        2, f"{OTHER_CONFIG}: classes[0] is 'circle'", absent=('{root}/not_drawn.png', )),
    Case('demo-backbone_onnx', 'demo', ['{image}', CONFIG, '{backbone}',
                                        '--out-file', '{root}/not_drawn.png'],
         2, NOT_A_DETECTOR, absent=('{root}/not_drawn.png', )),
    # tools/export_onnx.py: destinations checked first; nothing under the final name
    # unless complete and checked.
    Case('export-out_is_a_folder', 'export_onnx', [CONFIG, '{pth}', '--out', '{folder}'], 2,
         '--out {folder}: is a folder'),
    Case('export-out_under_a_file', 'export_onnx', [
        CONFIG, '{pth}', '--out', '{a_file}/det.onnx'], 2, 'is a file, not a folder'),
    Case('export-int8_output_is_a_folder', 'export_onnx', [
        CONFIG, '{pth}', '--out', '{root}/int8_taken/x.onnx', '--int8', '--calib-dir',
        '{calib}'], 2, '--int8 output {root}/int8_taken/x_int8.onnx: is a folder',
        absent=('{root}/int8_taken/x.onnx', )),
    Case('export-out_in_a_read_only_folder', 'export_onnx', [
        CONFIG, '{pth}', '--out', '{read_only}/det.onnx'], 2,
        'the folder {read_only} is not writable', absent=('{read_only}/det.onnx', ),
        needs=(READ_ONLY, )),
    Case('export-backbone_above_the_tolerance', 'export_onnx', [
        *BACKBONE, '--out', '{root}/strict.onnx', '--tolerance', '1e-30'],
        1, 'above the tolerance 1e-30; {root}/strict.onnx was not written',
        absent=('{root}/strict.onnx', )),
    Case('export-detector_calibration_fails_after_the_export', 'export_onnx', [
        CONFIG, '{pth}', '--out', '{root}/det_fails.onnx', '--int8', '--calib-dir',
        '{broken_calib}', '--calib-num', '1'], 2, 'cannot decode image',
        absent=('{root}/det_fails.onnx', '{root}/det_fails_int8.onnx')),
    Case('export-backbone_calibration_fails_after_the_check', 'export_onnx', [
        *BACKBONE, '--out', '{root}/calib_fails.onnx', '--int8', '--calib-dir',
        '{broken_calib}', '--calib-num', '1'], 2, 'cannot decode image',
        absent=('{root}/calib_fails.onnx', '{root}/calib_fails_int8.onnx')),
    Case('export-negative_tolerance', 'export_onnx', [
        *BACKBONE, '--out', '{root}/b.onnx', '--tolerance', '-1'],
        2, '--tolerance must be >= 0, got -1.0', absent=('{root}/b.onnx', )),
    Case('export-4_channel_shape', 'export_onnx', [
        '--out', '{root}/b.onnx', '--shape', '1', '4', '64', '64'],
        2, '--shape must be N 3 H W with N, H, W >= 1 (a batch of BGR images), got 1 4 64 64',
        absent=('{root}/b.onnx', )),
    # tools/export_backbone.py SRC DST: DST checked before SRC is read.
    Case('export_backbone-dst_is_a_folder', 'export_backbone', ['{pth}', '{folder}'], 2,
         'DST {folder}: is a folder; expected a file name'),
    Case('export_backbone-dst_under_a_file', 'export_backbone', [
        '{pth}', '{a_file}/backbone.pth'], 2, 'is a file, not a folder'),
    Case('export_backbone-detector_checkpoint', 'export_backbone', [
        '{pth}', '{root}/backbone_only.pth'], 0, 'backbone tensors to {root}/backbone_only.pth'),
    # ONNXRuntimeDetector(...)
    Case('API-pathlib_path_file', ONNXRuntimeDetector, dict(path=Path('{det}')), 0,
         then=lambda detector: detector.classes == CLASSES),
    Case('API-pth_renamed_onnx', ONNXRuntimeDetector, dict(path='{renamed}'), InputError,
         NOT_ONNX),
    Case('API-backbone_onnx', ONNXRuntimeDetector, dict(path='{backbone}'), InputError,
         NOT_A_DETECTOR),
    Case('API-config_of_other_classes', ONNXRuntimeDetector,
         dict(path='{det}', config=COCO_CONFIG), InputError,
         f"{OTHER_CONFIG}: classes[0] is 'circle'"),
    Case('API-other_test_pipeline', ONNXRuntimeDetector, dict(path='{det}', test_pipeline=[
        dict(type='LoadImageFromFile'), dict(type='Resize', scale=(512, 512), keep_ratio=True),
        dict(type='PackDetInputs')]), InputError,
        f'{OTHER_CONFIG}: test_pipeline[1].scale is [256, 256] in the file, '
        '[512, 512] in the test pipeline given'),
    # ONNXRuntimeDetector(...)(image)
    Case('image-pathlib_path', detect, ('{det}', Path('{image}')), 0, then=shape(100, 120)),
    Case('image-2d_grayscale_array', detect, ('{det}', gray(90, 70)), 0, then=shape(90, 70)),
    Case('image-HxWx1_array', detect, ('{det}', gray(90, 70)[:, :, None]), 0,
         then=shape(90, 70)),
    Case('image-float_BGR_array', detect, ('{det}', np.full((60, 80, 3), 100.0)), 0,
         then=shape(60, 80)),
    Case('image-4_channel_array', detect, ('{det}', np.zeros((60, 80, 4), np.uint8)),
         InputError, 'got shape (60, 80, 4) (4 channels: drop the alpha channel'),
    Case('image-0x0_array', detect, ('{det}', np.zeros((0, 0), np.uint8)), InputError,
         'got an empty array of shape (0, 0)'),
    Case('image-0x0x3_array', detect, ('{det}', np.zeros((0, 0, 3), np.uint8)), InputError,
         'got an empty array of shape (0, 0, 3)'),
    Case('image-4d_batch', detect, ('{det}', np.zeros((1, 60, 80, 3), np.uint8)), InputError,
         'got shape (1, 60, 80, 3)'),
    Case('image-string_array', detect, ('{det}', np.array([['a']])), InputError,
         'of numbers, got dtype <U1'),
    Case('image-1x4000_array', detect, ('{det}', np.zeros((1, 4000, 3), np.uint8)), InputError,
         'the test pipeline cannot process an image of shape (1, 4000, 3)'),
    Case('image-a_list', detect, ('{det}', [[0, 1], [2, 3]]), InputError, 'got list'),
    Case('image-missing_file', detect, ('{det}', '{root}/none.png'), InputError,
         'image not found'),
]


@table(CASES)
def test_bad_input(case: Case, files, request, capsys):
    check(case, files, request, capsys)
