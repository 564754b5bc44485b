"""A trained detector in ONNX Runtime detects what it detects in PyTorch, through the real
tools (train, export_onnx, test), for the FPN and the C4 layout: every detection of every
held-out image, at any score, has its counterpart on the other side with the same label, a
score within 1e-4 and a box within 0.01 px.

Nothing here depends on how well the detectors trained: the comparison holds for whatever
they output, so it holds on any CPU. The FPN detector is the session's shared one
(tests/conftest.py); a graph broken on purpose, in its boxes, scores or labels, must fail it.
"""
import onnx
import pytest
import torch
from mmengine.config import Config
from onnx import helper, numpy_helper

from shufflenet_det.models import shufflenet_v1_channels

from ..helpers import (DEMO_CONFIG, LOADERS, REPO, read_test_results, run,
                       train_shapes_detector)

pytestmark = pytest.mark.slow
# The C4 run's schedule is the shared FPN run's (tests/conftest.py, trained_demo_detector),
# from that detector's backbone: real, varied scores, whatever their quality.
C4_EPOCHS = 8
# Float rounding between two runtimes: what test_detector_onnx.py measures on the graph
# itself is about 100 times smaller.
BOX_ATOL_PX = 0.01
SCORE_ATOL = 1e-4


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
        return fpn_detector_and_onnx(request)
    trained = request.getfixturevalue('c4_detector')
    onnx_file = tmp_path / 'detector.onnx'
    proc = run('tools/export_onnx.py', trained.config, str(trained.checkpoint), '--out',
               str(onnx_file))
    return (trained, onnx_file, proc.stdout,
            evaluate(trained, trained.checkpoint, tmp_path, 'pytorch'))


def fpn_detector_and_onnx(request):
    exported = request.getfixturevalue('exported_demo_detector')
    tested = request.getfixturevalue('tested_demo_detector')
    return (request.getfixturevalue('trained_demo_detector'), exported.onnx, exported.log,
            read_test_results(tested.work_dir, tested.predictions))


def evaluate(trained, checkpoint, work, name):
    out = work / f'{name}.pkl'
    run('tools/test.py', trained.config, str(checkpoint), '--work-dir', str(work / name),
        '--data-root', str(trained.data_root), '--out', str(out), '--cfg-options', *LOADERS)
    return read_test_results(work / name, out)


def unmatched_detections(reference, candidate) -> list[str]:
    """Every detection of ``reference`` or ``candidate`` (``tools/test.py --out`` lists) that
    has no counterpart on the other side: same image and label, a score within
    :data:`SCORE_ATOL` and every box coordinate within :data:`BOX_ATOL_PX`. Each counterpart
    is used once."""
    assert [r['img_id'] for r in reference] == [c['img_id'] for c in candidate]
    missing = []
    for ref, cand in zip(reference, candidate):
        r, c = ref['pred_instances'], cand['pred_instances']
        unused = torch.ones(len(c['scores']), dtype=torch.bool)
        for box, score, label in zip(r['bboxes'], r['scores'], r['labels']):
            close = (unused & (c['labels'] == label) &
                     ((c['scores'] - score).abs() <= SCORE_ATOL) &
                     ((c['bboxes'] - box).abs().amax(dim=1) <= BOX_ATOL_PX))
            if close.any():
                unused[close.nonzero()[0, 0]] = False
            else:
                missing.append(f'image {ref["img_id"]}: only in the reference: label '
                               f'{int(label)} score {float(score):.6f} box {box.tolist()}')
        for box, score, label in zip(c['bboxes'][unused], c['scores'][unused],
                                     c['labels'][unused]):
            missing.append(f'image {ref["img_id"]}: only in the candidate: label {int(label)} '
                           f'score {float(score):.6f} box {box.tolist()}')
    return missing


def test_onnxruntime_matches_pytorch_on_a_trained_detector(detector_and_onnx, tmp_path):
    trained, onnx_file, export_log, (metrics, torch_predictions) = detector_and_onnx
    assert 'default ONNX domain only' in export_log
    onnx_metrics, onnx_predictions = evaluate(trained, onnx_file, tmp_path, 'onnxruntime')

    count = metrics['count/detections']
    print(f'parity: PyTorch bbox mAP {metrics["coco/bbox_mAP"]:.4f}, ONNX Runtime '
          f'{onnx_metrics["coco/bbox_mAP"]:.4f}; detections {count:.0f} vs '
          f'{onnx_metrics["count/detections"]:.0f}')
    assert count > 0  # what a detector with any weights outputs: the score threshold is 0.05
    assert onnx_metrics['count/images'] == metrics['count/images'] == trained.num_val
    assert unmatched_detections(torch_predictions, onnx_predictions) == []
    assert onnx_metrics == pytest.approx(metrics, abs=1e-4)
    # Boxes are in the original image's pixels on both sides.
    for p in onnx_predictions:
        boxes = p['pred_instances']['bboxes']
        assert torch.all(boxes[:, 2:] <= torch.tensor(p['ori_shape'][::-1]) + 1e-3)


def break_output(onnx_file, out_file, output: str) -> None:
    """Copy of ``onnx_file`` whose ``output`` is changed slightly at the end of the graph:
    boxes moved by half a pixel, scores multiplied by 0.99, or labels shifted by one
    class."""
    model = onnx.load(str(onnx_file))
    graph = model.graph
    producer = next(node for node in graph.node if output in node.output)
    raw = f'{output}_unbroken'
    producer.output[list(producer.output).index(output)] = raw
    if output == 'labels':
        one = numpy_helper.from_array(torch.tensor(1).numpy(), 'one')
        classes = numpy_helper.from_array(torch.tensor(5).numpy(), 'classes')
        shifted = f'{output}_shifted'
        graph.initializer.extend([one, classes])
        graph.node.extend([helper.make_node('Add', [raw, 'one'], [shifted]),
                           helper.make_node('Mod', [shifted, 'classes'], [output])])
    else:
        op, value = {'boxes': ('Add', 0.5), 'scores': ('Mul', 0.99)}[output]
        graph.initializer.append(numpy_helper.from_array(torch.tensor(value).numpy(), 'change'))
        graph.node.append(helper.make_node(op, [raw, 'change'], [output]))
    onnx.checker.check_model(model)
    onnx.save(model, str(out_file))


@pytest.mark.parametrize('output', ['boxes', 'scores', 'labels'])
def test_a_graph_broken_in_one_output_fails_the_comparison(output, request, tmp_path):
    """The comparison above on the shared FPN detector's export, changed on purpose: every
    detection is reported, although the scores' change alone leaves the ranking, and so the
    mAP, as it was."""
    trained, onnx_file, _, (_, torch_predictions) = fpn_detector_and_onnx(request)
    broken = tmp_path / f'broken_{output}.onnx'
    break_output(onnx_file, broken, output)
    _, broken_predictions = evaluate(trained, broken, tmp_path, 'broken')
    detections = sum(len(p['pred_instances']['scores']) for p in torch_predictions)
    missing = unmatched_detections(torch_predictions, broken_predictions)
    assert sum('only in the reference' in line for line in missing) == detections
