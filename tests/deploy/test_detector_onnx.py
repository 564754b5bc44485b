"""A whole Faster R-CNN as one standard ONNX graph: ONNX Runtime equals mmdet's predict."""
import ast
import copy
import json

import numpy as np
import onnx
import pytest
import torch
from mmdet.registry import MODELS
from mmdet.structures import DetDataSample
from mmengine.config import Config

from shufflenet_det.deploy import (FasterRCNNGraph, export_detector_onnx, onnxruntime_session,
                                   torch_onnx_export_legacy)
from shufflenet_det.deploy.graph import DeltaCoder, RoiAlignOp, batched_nms_keep
from shufflenet_det.models import shufflenet_v1_channels

from ..helpers import REPO
from ..models.test_switch_to_deploy import trained_looking as _trained_looking

_, _, C4_STAGE3, C4_STAGE4 = shufflenet_v1_channels(3, 0.5)
# Each case: config, overrides (fewer proposals for CPU speed), fc_cls scale, whether to
# widen the RPN boxes, the tracing example's size, the two checked sizes (one not a
# multiple of the 32-pixel padding).
CASES = {
    # The paper's C4 layout, at 0.5x: RPN on Stage 3, Stage 4 per RoI, 80 classes.
    'c4': ('faster_rcnn_shufflenet1x_coco.py', {
        'model.backbone.widen_factor': 0.5,
        'model.rpn_head.in_channels': C4_STAGE3, 'model.rpn_head.feat_channels': 64,
        'model.roi_head.shared_head.widen_factor': 0.5,
        'model.roi_head.bbox_roi_extractor.out_channels': C4_STAGE3,
        'model.roi_head.bbox_head.in_channels': C4_STAGE4,
        'model.test_cfg.rpn.nms_pre': 300, 'model.test_cfg.rpn.max_per_img': 40},
        # Traced on a 1x1 image (one proposal, no detection): no step branches on the data.
        0.5, False, (1, 1), [(128, 160), (150, 203)]),
    # The demo's FPN: four RPN levels, RoIs mapped over three levels, 3 classes.
    'fpn': ('faster_rcnn_shufflenet_demo.py', {
        'model.test_cfg.rpn.nms_pre': 300, 'model.test_cfg.rpn.max_per_img': 300},
        1.0, True, (192, 224), [(256, 320), (237, 301)]),
}


def _build(case: str):
    name, overrides, cls_scale, widen_rpn_boxes, example_hw, sizes = CASES[case]
    cfg = Config.fromfile(str(REPO / 'configs' / name))
    cfg.merge_from_dict(overrides)
    model = _trained_looking(MODELS.build(cfg.model))
    bbox_head = model.roi_head.bbox_head
    with torch.no_grad():
        # Class scores that pass score_thr (real detections), not saturated at 1.0 (ties).
        bbox_head.fc_cls.weight.mul_(cls_scale)
        bbox_head.fc_cls.bias.uniform_(-cls_scale / 10, cls_scale / 10)
        # Box deltas of a trained head's size (|d| < 3, not 5-12 as PyTorch's default init
        # gives them): deltas scale a box by e^d, and float32 rounding of the features
        # (ONNX Runtime's convolutions sum in another order) with them. The clamp of large
        # deltas (wh_ratio_clip) has its own test.
        for layer in (bbox_head.fc_reg, model.rpn_head.rpn_reg):
            layer.weight.mul_(0.1 if layer is bbox_head.fc_reg else 0.25)
            layer.bias.mul_(0.1 if layer is bbox_head.fc_reg else 0.25)
        if widen_rpn_boxes:  # RPN boxes e^1 times the anchors: RoIs on every pyramid level
            model.rpn_head.rpn_reg.bias.view(-1, 4)[:, 2:] += 1.0
    model.dataset_meta = dict(classes=tuple(f'class{i}' for i in
                                            range(model.roi_head.bbox_head.num_classes)))
    model.cfg = cfg  # as mmdet's init_detector leaves it
    return model, example_hw, sizes


def _image(h: int, w: int, seed: int) -> torch.Tensor:
    """A resized BGR image as the test pipeline leaves it: integers 0-255, float32."""
    g = torch.Generator().manual_seed(seed)
    return torch.randint(0, 256, (1, 3, h, w), generator=g).float()


def _mmdet(model, image: torch.Tensor):
    """mmdet's own path: the data preprocessor, then predict(rescale=False)."""
    h, w = image.shape[2:]
    sample = DetDataSample(metainfo=dict(img_shape=(h, w), ori_shape=(h, w),
                                         scale_factor=(1.0, 1.0)))
    data = model.data_preprocessor({'inputs': [image[0]], 'data_samples': [sample]}, False)
    with torch.no_grad():
        pred = model.predict(data['inputs'], data['data_samples'], rescale=False)[0]
        feats = model.extract_feat(data['inputs'])
        proposals = model.rpn_head.predict(feats, data['data_samples'], rescale=False)[0]
    return data['inputs'], pred.pred_instances, proposals


def _assert_same_boxes(e_boxes, e_scores, e_labels, boxes, scores, labels, atol=1e-3):
    """Same count, best score first; each expected box matched greedily (same label) to one
    box whose coordinates and score are within ``atol``. Matching, not comparing in order:
    two scores 1e-7 apart may swap places between ONNX Runtime and PyTorch."""
    assert boxes.shape == (len(e_boxes), 4) and scores.shape == labels.shape == (len(e_boxes), )
    assert boxes.dtype == scores.dtype == np.float32
    assert np.all(np.diff(scores) <= 1e-6)
    unused = np.ones(len(boxes), bool)
    worst = 0.0
    for i in np.argsort(-e_scores, kind='stable'):
        cost = np.abs(boxes - e_boxes[i]).max(1) + np.abs(scores - e_scores[i])
        cost[~unused | (labels != e_labels[i])] = np.inf
        j = int(np.argmin(cost))
        assert np.isfinite(cost[j]), f'box {i} (label {e_labels[i]}) has no match'
        unused[j] = False
        worst = max(worst, float(np.abs(boxes[j] - e_boxes[i]).max()),
                    float(abs(scores[j] - e_scores[i])))
    assert worst <= atol, worst


def _assert_same_detections(expected, boxes, scores, labels):
    assert labels.dtype == np.int64
    _assert_same_boxes(expected.bboxes.numpy(), expected.scores.numpy(),
                       expected.labels.numpy(), boxes, scores, labels)


@pytest.fixture(scope='module', params=sorted(CASES))
def exported(request, tmp_path_factory):
    torch.manual_seed(0)
    model, example_hw, sizes = _build(request.param)
    path = tmp_path_factory.mktemp(request.param) / 'detector.onnx'
    info = export_detector_onnx(model, str(path), example_hw=example_hw, with_proposals=True)
    return request.param, model, path, info, sizes


def test_graph_is_standard_onnx(exported):
    case, model, path, info, _ = exported
    proto = onnx.load(str(path))
    assert {o.domain for o in proto.opset_import} <= {'', 'ai.onnx'}
    assert max(o.version for o in proto.opset_import) >= 17
    assert all(n.domain in ('', 'ai.onnx') for n in proto.graph.node)
    ops = {n.op_type for n in proto.graph.node}
    assert {'RoiAlign', 'NonMaxSuppression', 'TopK', 'Pad'} <= ops
    roi_align = [n for n in proto.graph.node if n.op_type == 'RoiAlign']
    assert len(roi_align) == (1 if case == 'c4' else 3)
    assert all(onnx.helper.get_attribute_value(a) == b'half_pixel' for n in roi_align
               for a in n.attribute if a.name == 'coordinate_transformation_mode')
    assert [i.name for i in proto.graph.input] == ['image']
    assert [o.name for o in proto.graph.output] == ['boxes', 'scores', 'labels', 'proposals',
                                                    'proposal_scores']
    dims = proto.graph.input[0].type.tensor_type.shape.dim
    assert [d.dim_value or d.dim_param for d in dims] == [1, 3, 'height', 'width']
    onnx.checker.check_model(proto)
    assert not [p for p in path.parent.iterdir() if p != path]  # no partial file left


def test_metadata_records_the_runtime_contract(exported):
    case, model, path, info, _ = exported
    meta = {p.key: p.value for p in onnx.load(str(path)).metadata_props}
    assert meta == info['metadata']
    record = ast.literal_eval(meta['shufflenet_det.config'])
    pre = model.data_preprocessor
    assert record['model.data_preprocessor.mean'] == pre.mean.flatten().tolist()
    assert record['model.data_preprocessor.pad_size_divisor'] == pre.pad_size_divisor == 32
    assert record['model.test_cfg.rpn.nms_pre'] == model.rpn_head.test_cfg.nms_pre
    assert record['model.test_cfg.rpn.nms.iou_threshold'] == \
        model.rpn_head.test_cfg.nms.iou_threshold
    assert record['model.test_cfg.rcnn.score_thr'] == model.roi_head.test_cfg.score_thr == 0.05
    assert record['model.test_cfg.rcnn.max_per_img'] == model.roi_head.test_cfg.max_per_img
    assert record['model.roi_head.bbox_head.num_classes'] == model.roi_head.bbox_head.num_classes
    assert record['classes'] == list(model.dataset_meta['classes'])
    assert json.loads(meta['shufflenet_det.input'])['channel_order'] == 'BGR'
    assert record['test_pipeline'][0] == dict(type='LoadImageFromFile')
    assert record['test_pipeline'][1] == dict(type='Resize', keep_ratio=True,
                                              scale=(256, 256) if case == 'fpn' else (1000, 600))
    assert meta['shufflenet_det.layout'] == ('FPN' if case == 'fpn' else 'C4')


def test_onnxruntime_equals_mmdet_predict_at_two_sizes(exported):
    case, model, path, _, sizes = exported
    session = onnxruntime_session(str(path), threads=1)
    graph = FasterRCNNGraph(model, with_proposals=True).eval()
    for seed, (h, w) in enumerate(sizes):
        image = _image(h, w, seed)
        inputs, expected, proposals = _mmdet(model, image)
        with torch.no_grad():
            assert torch.equal(graph.preprocess(image), inputs)  # normalised and padded
        boxes, scores, labels, ort_props, ort_prop_scores = session.run(
            None, {'image': image.numpy()})
        assert len(boxes) > 5, (case, h, w)
        _assert_same_detections(expected, boxes, scores, labels)
        # Intermediate: the RPN's proposals (best first, as mmdet's).
        no_labels = np.zeros(len(proposals), np.int64)
        _assert_same_boxes(proposals.bboxes.numpy(), proposals.scores.numpy(), no_labels,
                           ort_props, ort_prop_scores, np.zeros(len(ort_props), np.int64))
        # The traced module itself, in PyTorch, gives mmdet's results bit for bit.
        with torch.no_grad():
            e_boxes, e_scores, e_labels, e_props, _ = graph(image)
        assert torch.equal(e_boxes, expected.bboxes) and torch.equal(e_scores, expected.scores)
        assert torch.equal(e_labels, expected.labels) and torch.equal(e_props, proposals.bboxes)
        if case == 'fpn':  # the RoIs really spread over the pyramid levels
            levels = model.roi_head.bbox_roi_extractor.map_roi_levels(
                torch.cat([torch.zeros(len(ort_props), 1), torch.from_numpy(ort_props)], 1), 3)
            assert len(levels.unique()) >= 2
            np.testing.assert_array_equal(graph.roi_levels_of(torch.from_numpy(ort_props)),
                                          levels)


@pytest.mark.filterwarnings('ignore::torch.jit.TracerWarning')
def test_roi_align_matches_mmcv_aligned_and_not(tmp_path):
    """ONNX RoiAlign (half_pixel / output_half_pixel, sampling_ratio 0) equals mmcv's
    RoIAlign, tiny and out-of-image RoIs included."""
    from mmcv.ops import roi_align
    feats = torch.randn(1, 8, 13, 17)
    xy = torch.rand(30, 2) * torch.tensor([17.0, 13.0]) * 8 - 8
    boxes = torch.cat([xy, xy + torch.rand(30, 2) * 90], 1)
    boxes[:3, 2:] = boxes[:3, :2] + 0.2  # smaller than one feature pixel
    for aligned in (True, False):
        class Layer(torch.nn.Module):
            def forward(self, f, b):
                return RoiAlignOp.apply(f, b, torch.zeros_like(b[:, 0], dtype=torch.long),
                                       7, 6, 1 / 8, 0, aligned)
        path = tmp_path / f'roi_align_{aligned}.onnx'
        torch_onnx_export_legacy(Layer(), (feats, boxes), str(path), input_names=['f', 'b'],
                                dynamic_axes={'b': {0: 'n'}}, opset_version=17)
        got = onnxruntime_session(str(path)).run(None, {'f': feats.numpy(), 'b': boxes.numpy()})[0]
        rois = torch.cat([torch.zeros(30, 1), boxes], 1)
        expected = roi_align(feats, rois, (7, 6), 1 / 8, 0, 'avg', aligned)
        assert got.shape == (30, 8, 7, 6)
        np.testing.assert_allclose(got, expected.numpy(), atol=1e-5, rtol=0)


@pytest.mark.filterwarnings('ignore::torch.jit.TracerWarning')
def test_batched_nms_matches_mmcv(tmp_path):
    """NonMaxSuppression with mmcv's class offsets keeps mmcv's boxes, best first; no boxes
    give an empty result, not an error."""
    from mmcv.ops import batched_nms
    g = torch.Generator().manual_seed(3)
    xy = torch.rand(200, 2, generator=g) * 100
    boxes = torch.cat([xy, xy + 5 + torch.rand(200, 2, generator=g) * 30], 1)
    scores = torch.rand(200, generator=g)
    idxs = torch.randint(0, 4, (200, ), generator=g)

    class Layer(torch.nn.Module):
        def forward(self, b, s, i):
            return batched_nms_keep(b, s, i, 0.5)
    path = tmp_path / 'nms.onnx'
    torch_onnx_export_legacy(Layer(), (boxes, scores, idxs), str(path),
                            input_names=['b', 's', 'i'],
                            dynamic_axes={'b': {0: 'n'}, 's': {0: 'n'}, 'i': {0: 'n'}},
                            opset_version=17)
    session = onnxruntime_session(str(path))
    got = session.run(None, {'b': boxes.numpy(), 's': scores.numpy(), 'i': idxs.numpy()})[0]
    _, keep = batched_nms(boxes, scores, idxs, dict(type='nms', iou_threshold=0.5))
    assert 20 < len(keep) < 200
    np.testing.assert_array_equal(got, keep.numpy())
    empty = session.run(None, {'b': np.zeros((0, 4), np.float32),
                               's': np.zeros(0, np.float32), 'i': np.zeros(0, np.int64)})[0]
    assert empty.shape == (0, )


def test_delta_decoding_matches_mmdet_including_the_clamps(tmp_path):
    """Large deltas (wh_ratio_clip) and boxes past the image (clip to the unpadded size)."""
    from mmdet.models.task_modules.coders import DeltaXYWHBBoxCoder
    coder = DeltaXYWHBBoxCoder(target_means=(0.1, -0.1, 0.0, 0.05),
                               target_stds=(0.1, 0.1, 0.2, 0.2))
    ours = DeltaCoder(coder, 'test')
    g = torch.Generator().manual_seed(5)
    xy = torch.rand(500, 2, generator=g) * 300
    rois = torch.cat([xy, xy + torch.rand(500, 2, generator=g) * 200 + 1], 1)
    deltas = torch.randn(500, 4, generator=g) * 30
    expected = coder.decode(rois, deltas, max_shape=(201, 333))
    assert (deltas[:, 2:] * 0.2).abs().max() > ours.max_ratio  # the clamp is exercised

    class Decode(torch.nn.Module):
        def forward(self, r, d, image):
            hw = torch._shape_as_tensor(image)[2:].to(torch.float32)
            return ours.decode(r, d, torch.stack([hw[1], hw[0], hw[1], hw[0]]))
    image = torch.zeros(1, 3, 201, 333)
    torch.testing.assert_close(Decode()(rois, deltas, image), expected, rtol=0, atol=0)
    path = tmp_path / 'decode.onnx'
    torch_onnx_export_legacy(Decode(), (rois, deltas, torch.zeros(1, 3, 50, 60)), str(path),
                            input_names=['r', 'd', 'image'], opset_version=17,
                            dynamic_axes={'r': {0: 'n'}, 'd': {0: 'n'}, 'image': {2: 'h', 3: 'w'}})
    got = onnxruntime_session(str(path)).run(None, {'r': rois.numpy(), 'd': deltas.numpy(),
                                                     'image': image.numpy()})[0]
    np.testing.assert_allclose(got, expected.numpy(), rtol=1e-6, atol=1e-3)
    assert got[:, 2].max() == 333 and got[:, 3].max() == 201 and got.min() == 0


def test_no_proposals_and_no_detections(tmp_path):
    """Nothing passes the RPN's size filter: empty outputs of the right types, as mmdet."""
    model, _, _ = _build('fpn')
    model.rpn_head.test_cfg.min_bbox_size = 10000
    path = tmp_path / 'empty.onnx'
    export_detector_onnx(model, str(path), example_hw=(64, 96), with_proposals=True)
    image = _image(70, 90, 0)
    boxes, scores, labels, props, _ = onnxruntime_session(str(path)).run(
        None, {'image': image.numpy()})
    assert (boxes.shape, scores.shape, labels.shape, props.shape) == ((0, 4), (0, ), (0, ), (0, 4))
    assert (boxes.dtype, scores.dtype, labels.dtype) == (np.float32, np.float32, np.int64)
    _, expected, proposals = _mmdet(model, image)
    assert len(expected) == len(proposals) == 0


def test_class_agnostic_box_regression(tmp_path):
    """One box per RoI for every class (reg_class_agnostic): ONNX Runtime equals mmdet."""
    name, overrides, *_ = CASES['fpn']
    cfg = Config.fromfile(str(REPO / 'configs' / name))
    cfg.merge_from_dict({**overrides, 'model.roi_head.bbox_head.reg_class_agnostic': True})
    torch.manual_seed(0)
    model = _trained_looking(MODELS.build(cfg.model))
    assert model.roi_head.bbox_head.fc_reg.out_features == 4
    path = tmp_path / 'agnostic.onnx'
    export_detector_onnx(model, str(path), example_hw=(128, 160))
    image = _image(150, 170, 1)
    _, expected, _ = _mmdet(model, image)
    assert len(expected) > 5
    _assert_same_detections(expected, *onnxruntime_session(str(path)).run(
        None, {'image': image.numpy()}))


@pytest.mark.parametrize('name,kind', [('retinanet_shufflenet1x_fpn_coco.py', 'RetinaNet'),
                                       ('mask_rcnn_shufflenet2x_fpn_coco.py', 'MaskRCNN')])
def test_other_detectors_are_refused(tmp_path, name, kind):
    cfg = Config.fromfile(str(REPO / 'configs' / name))
    model = MODELS.build(cfg.model)
    with pytest.raises(ValueError, match=rf'detector {kind} is not supported '
                                         r'\(supported: FasterRCNN\)'):
        export_detector_onnx(model, str(tmp_path / 'x.onnx'))
    assert not list(tmp_path.iterdir())


def test_unsupported_settings_are_refused():
    model, _, _ = _build('fpn')
    graph = FasterRCNNGraph(model)
    with pytest.raises(ValueError, match=r'one image \[1, 3, H, W\], got \(2, 3, 64, 64\)'):
        graph(torch.zeros(2, 3, 64, 64))
    model.rpn_head.test_cfg.nms = dict(type='soft_nms', iou_threshold=0.7)
    with pytest.raises(ValueError, match=r"test_cfg.rpn.nms.type 'soft_nms' is not supported"):
        FasterRCNNGraph(model)
    with pytest.raises(ValueError, match='opset must be at least 16'):
        export_detector_onnx(model, 'unused.onnx', opset=13)


def test_models_after_the_eager_fast_path():
    """PointwiseMatmul is refused (slower in ONNX Runtime); BN folding, plain convolutions
    and torchvision's RoIAlign kernel give the same graph function."""
    from shufflenet_det.deploy import deploy_detector
    model, _, _ = _build('fpn')
    image = _image(96, 128, 0)
    with torch.no_grad():
        expected = FasterRCNNGraph(model)(image)
        with pytest.raises(ValueError, match="deploy\\(\\) with pointwise='matmul': export the "
                                             'plain model \\(ONNX Runtime runs grouped 1x1 '
                                             'convolutions faster as Conv'):
            FasterRCNNGraph(deploy_detector(copy.deepcopy(model)))
        got = FasterRCNNGraph(deploy_detector(copy.deepcopy(model), pointwise='conv',
                                              memory_format='contiguous'))(image)
    assert len(expected[0]) > 5
    for a, b in zip(got, expected):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-3)


FASTER_RCNN_CONFIGS = sorted(p.name for p in (REPO / 'configs').glob('faster_rcnn_*.py'))


@pytest.mark.slow
@pytest.mark.parametrize('name', FASTER_RCNN_CONFIGS)
def test_every_faster_rcnn_config_exports_to_a_default_domain_graph(name, tmp_path):
    cfg = Config.fromfile(str(REPO / 'configs' / name))
    cfg.model.test_cfg.rpn.max_per_img = 20  # CPU test speed; the graph does not depend on it
    model = MODELS.build(cfg.model).eval()
    path = tmp_path / 'detector.onnx'
    info = export_detector_onnx(model, str(path), example_hw=(96, 128))
    proto = onnx.load(str(path))
    assert {n.domain for n in proto.graph.node} <= {'', 'ai.onnx'}
    assert max(o.version for o in proto.opset_import) == 17
    layout = 'C4' if 'fpn' not in name and 'demo' not in name else 'FPN'
    assert info['metadata']['shufflenet_det.layout'] == layout
    boxes, scores, labels = onnxruntime_session(str(path), threads=1).run(
        None, {'image': np.random.default_rng(0).uniform(0, 255, (1, 3, 120, 150))
               .astype(np.float32)})
    assert boxes.shape == (len(scores), 4) and labels.dtype == np.int64
