"""A trained detector in ONNX Runtime detects what it detects in PyTorch: the same held-out
bbox mAP (within 0.005) and the same confident detections (IoU >= 0.98, same class), for the
FPN and the C4 layout, through the real tools (train, export_onnx, test)."""
import json
import pickle

import pytest
import torch
from mmdet.structures.bbox import bbox_overlaps
from mmengine.config import Config

from shufflenet_det.datasets.synthetic_shapes import generate_shapes_dataset
from shufflenet_det.models import shufflenet_v1_channels

from ..helpers import REPO
from ..tools.test_end_to_end import run

pytestmark = pytest.mark.slow
DEMO = REPO / 'configs/faster_rcnn_shufflenet_demo.py'
LOADERS = [f'{split}_dataloader.{key}' for split in ('train', 'val', 'test')
           for key in ('num_workers=0', 'persistent_workers=False')]
# Eight epochs of 96 images of 128 px: about a minute on 2 cores, and enough for real
# detections (a mAP of a few percent, a dozen or more detections scoring 0.3 or more).
TRAINING = ['train_cfg.max_epochs=8', 'train_cfg.val_interval=8',
            'default_hooks.checkpoint.interval=8', 'param_scheduler.0.end=20',
            'param_scheduler.1.milestones=[7]', *LOADERS]


def c4_demo_config(path) -> str:
    """The demo detector in the paper's C4 layout: the C4 model base at 0.5x, demo data."""
    cfg = Config.fromfile(str(DEMO))
    c4 = Config.fromfile(str(REPO / 'configs/faster_rcnn_shufflenet1x_coco.py'))
    _, _, stage3, stage4 = shufflenet_v1_channels(3, 0.5)
    c4.merge_from_dict({f'model.{key}': value for key, value in {
        'init_cfg': None, 'data_preprocessor': dict(cfg.model.data_preprocessor),
        'backbone.widen_factor': 0.5, 'backbone.frozen_stages': -1, 'backbone.norm_eval': False,
        'roi_head.shared_head.widen_factor': 0.5, 'roi_head.shared_head.norm_eval': False,
        'rpn_head.in_channels': stage3, 'rpn_head.feat_channels': 64,
        'rpn_head.anchor_generator.scales': [1, 2, 4, 8],
        'roi_head.bbox_roi_extractor.out_channels': stage3,
        'roi_head.bbox_head.in_channels': stage4, 'roi_head.bbox_head.num_classes': 5,
        'train_cfg.rpn_proposal.max_per_img': 500, 'train_cfg.rcnn.sampler.num': 64,
        'test_cfg.rpn.max_per_img': 100, 'test_cfg.rcnn.max_per_img': 50}.items()})
    cfg.model = c4.model
    cfg.dump(str(path))
    return str(path)


@pytest.fixture(scope='module')
def shapes(tmp_path_factory):
    root = tmp_path_factory.mktemp('shapes')
    generate_shapes_dataset(str(root), num_train=96, num_val=16, image_size=128)
    return root


@pytest.fixture(scope='module', params=['fpn', 'c4'])
def trained(request, shapes, tmp_path_factory):
    work = tmp_path_factory.mktemp(request.param)
    config = str(DEMO) if request.param == 'fpn' else c4_demo_config(work / 'c4_demo.py')
    run('tools/train.py', config, '--work-dir', str(work), '--data-root', str(shapes),
        '--cfg-options', *TRAINING)
    return config, work / 'epoch_8.pth', work


def evaluate(config, checkpoint, shapes, work, name):
    out = work / f'{name}.pkl'
    run('tools/test.py', config, str(checkpoint), '--work-dir', str(work / name),
        '--data-root', str(shapes), '--out', str(out), '--cfg-options', *LOADERS)
    with open(out, 'rb') as f:
        predictions = pickle.load(f)
    return json.loads((work / name / 'metrics.json').read_text()), predictions


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


def test_onnxruntime_matches_pytorch_on_a_trained_detector(trained, shapes):
    config, checkpoint, work = trained
    metrics, torch_predictions = evaluate(config, checkpoint, shapes, work, 'pytorch')
    onnx_file = work / 'detector.onnx'
    proc = run('tools/export_onnx.py', config, str(checkpoint), '--out', str(onnx_file))
    assert 'default ONNX domain only' in proc.stdout
    onnx_metrics, onnx_predictions = evaluate(config, onnx_file, shapes, work, 'onnxruntime')

    assert metrics['coco/bbox_mAP'] > 0.0 and metrics['count/detections'] > 0
    assert onnx_metrics['count/images'] == metrics['count/images'] == 16
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
