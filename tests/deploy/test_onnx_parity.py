"""A trained detector in ONNX Runtime detects what it detects in PyTorch: the same held-out
bbox mAP (within 0.005) and the same confident detections (IoU >= 0.98, same class), for the
FPN and the C4 layout, through the real tools (train, export_onnx, test). The FPN detector
is the session's shared one (tests/conftest.py)."""

import pytest
import torch
from mmdet.structures.bbox import bbox_overlaps
from mmengine.config import Config

from shufflenet_det.models import shufflenet_v1_channels

from ..helpers import (DEMO_CONFIG, LOADERS, REPO, read_test_results, run,
                       train_shapes_detector)

pytestmark = pytest.mark.slow
# The C4 run's schedule is the shared FPN run's (tests/conftest.py, trained_demo_detector):
# 8 epochs of 96 images of 128 px. On a CPU the C4 RoI head (Stage 4 on every sampled RoI)
# is most of the cost. Measured on the held-out 16 images, detections scoring 0.3 or more:
# from scratch with 64 RoIs an image, none (mAP 0.015); from the FPN detector's backbone,
# 16 with 64 RoIs, 25 with 32 (half the time: about 2 minutes on 2 cores), 1 with 16; none
# after 4 epochs.
C4_EPOCHS = 8


def c4_demo_config(path, backbone_checkpoint) -> str:
    """The demo detector in the paper's C4 layout: the C4 model base at 0.5x, demo data.

    Its backbone and RoI head (Stage 4) start from ``backbone_checkpoint``'s ``backbone.*``
    through ``ShuffleNetPretrained``, as the paper's C4 detector starts from ImageNet weights.
    """
    cfg = Config.fromfile(DEMO_CONFIG)
    c4 = Config.fromfile(str(REPO / 'configs/faster_rcnn_shufflenet1x_coco.py'))
    _, _, stage3, stage4 = shufflenet_v1_channels(3, 0.5)
    preprocessor = dict(cfg.model.data_preprocessor)
    init = dict(type='ShuffleNetPretrained', checkpoint=str(backbone_checkpoint),
                input_convention={k: preprocessor[k] for k in ('mean', 'std', 'bgr_to_rgb')})
    c4.merge_from_dict({f'model.{key}': value for key, value in {
        'init_cfg': init, 'data_preprocessor': preprocessor,
        'backbone.widen_factor': 0.5, 'backbone.frozen_stages': -1, 'backbone.norm_eval': False,
        'roi_head.shared_head.widen_factor': 0.5, 'roi_head.shared_head.norm_eval': False,
        'rpn_head.in_channels': stage3, 'rpn_head.feat_channels': 64,
        'rpn_head.anchor_generator.scales': [1, 2, 4, 8],
        'roi_head.bbox_roi_extractor.out_channels': stage3,
        'roi_head.bbox_head.in_channels': stage4, 'roi_head.bbox_head.num_classes': 5,
        'train_cfg.rpn_proposal.max_per_img': 500, 'train_cfg.rcnn.sampler.num': 32,
        'test_cfg.rpn.max_per_img': 100, 'test_cfg.rcnn.max_per_img': 50}.items()})
    cfg.model = c4.model
    cfg.dump(str(path))
    return str(path)


@pytest.fixture(scope='module')
def c4_detector(trained_demo_detector, tmp_path_factory):
    """The C4 layout, from the shared FPN detector's backbone, trained as that was, on the
    same images."""
    work = tmp_path_factory.mktemp('c4')
    config = c4_demo_config(work / 'c4_demo.py', trained_demo_detector.checkpoint)
    return train_shapes_detector(config, work,
                                 trained_demo_detector.data_root,
                                 trained_demo_detector.num_val, max_epochs=C4_EPOCHS,
                                 checkpoint_interval=C4_EPOCHS)


@pytest.fixture(params=['fpn', 'c4'])
def detector_and_onnx(request, tmp_path):
    """A trained detector, its ONNX file, what the export printed, and what ``tools/test.py``
    gave for the detector in PyTorch: its metrics and predictions."""
    if request.param == 'fpn':  # the shared detector, its shared export and evaluation
        exported = request.getfixturevalue('exported_demo_detector')
        tested = request.getfixturevalue('tested_demo_detector')
        return (request.getfixturevalue('trained_demo_detector'), exported.onnx, exported.log,
                read_test_results(tested.work_dir, tested.predictions))
    trained = request.getfixturevalue('c4_detector')
    onnx_file = tmp_path / 'detector.onnx'
    proc = run('tools/export_onnx.py', trained.config, str(trained.checkpoint), '--out',
               str(onnx_file))
    return (trained, onnx_file, proc.stdout,
            evaluate(trained, trained.checkpoint, tmp_path, 'pytorch'))


def evaluate(trained, checkpoint, work, name):
    out = work / f'{name}.pkl'
    run('tools/test.py', trained.config, str(checkpoint), '--work-dir', str(work / name),
        '--data-root', str(trained.data_root), '--out', str(out), '--cfg-options', *LOADERS)
    return read_test_results(work / name, out)


def matched_fraction(reference, candidate, score_thr=0.3, iou_thr=0.98) -> tuple[float, int]:
    """Share of ``reference``'s detections scoring >= ``score_thr`` that ``candidate`` has
    too: same image and class, IoU >= ``iou_thr``."""
    found = total = 0
    for ref, cand in zip(reference, candidate):
        assert ref['img_id'] == cand['img_id']
        r, c = ref['pred_instances'], cand['pred_instances']
        keep = r['scores'] >= score_thr
        for box, label in zip(r['bboxes'][keep], r['labels'][keep]):
            same = c['labels'] == label
            total += 1
            if same.any() and bbox_overlaps(box[None], c['bboxes'][same]).max() >= iou_thr:
                found += 1
    return found / max(total, 1), total


def test_onnxruntime_matches_pytorch_on_a_trained_detector(detector_and_onnx, tmp_path):
    trained, onnx_file, export_log, (metrics, torch_predictions) = detector_and_onnx
    assert 'default ONNX domain only' in export_log
    onnx_metrics, onnx_predictions = evaluate(trained, onnx_file, tmp_path, 'onnxruntime')

    assert metrics['coco/bbox_mAP'] > 0.0 and metrics['count/detections'] > 0
    assert onnx_metrics['count/images'] == metrics['count/images'] == trained.num_val
    assert abs(onnx_metrics['coco/bbox_mAP'] - metrics['coco/bbox_mAP']) <= 0.005
    fraction, confident = matched_fraction(torch_predictions, onnx_predictions)
    print(f'parity: PyTorch bbox mAP {metrics["coco/bbox_mAP"]:.4f}, ONNX Runtime '
          f'{onnx_metrics["coco/bbox_mAP"]:.4f}; {confident} detections >= 0.3, '
          f'{fraction:.3f} matched; detections {metrics["count/detections"]:.0f} vs '
          f'{onnx_metrics["count/detections"]:.0f}')
    assert confident >= 5, f'only {confident} detections score 0.3 or more: train longer'
    assert fraction >= 0.99, f'{fraction:.3f} of {confident} confident detections matched'
    # Boxes are in the original image's pixels on both sides.
    for p in onnx_predictions:
        boxes = p['pred_instances']['bboxes']
        assert torch.all(boxes[:, 2:] <= torch.tensor(p['ori_shape'][::-1]) + 1e-3)
