"""The detectors, the fast path and AMP on a CUDA GPU, compared with the CPU.

Skipped where torch sees no GPU (the ``gpu`` marker). Run them with ``pytest -m gpu``.
"""
import copy
import json

import pytest
import torch
from mmdet.testing import demo_mm_inputs

from shufflenet_det.analysis import benchmark as tb
from shufflenet_det.config import load_config
from shufflenet_det.deploy import deploy_detector

from ..helpers import REPO, load_tool

pytestmark = pytest.mark.gpu
DEVICE = 'cuda'
C4 = str(REPO / 'configs/faster_rcnn_shufflenet2x_coco.py')
FPN = str(REPO / 'configs/faster_rcnn_shufflenet1x_fpn_coco.py')


@pytest.fixture(autouse=True)
def _full_fp32():
    """cuDNN's TF32 convolutions round to 10 mantissa bits; compare in full fp32."""
    before = torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32
    torch.backends.cudnn.allow_tf32 = torch.backends.cuda.matmul.allow_tf32 = False
    yield
    torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32 = before


def detector(config):
    return tb.build_randomly_initialised(load_config(config).model)


def batch(num_classes, size=320, images=2):
    return demo_mm_inputs(batch_size=images, image_shapes=[(3, size, size + 64)] * images,
                          num_items=[3] * images, num_classes=num_classes)


def assert_close(actual, expected, what, rel=1e-3):
    scale = expected.abs().max().item() or 1.0
    error = (actual.detach().cpu() - expected.detach().cpu()).abs().max().item()
    assert error <= rel * scale, f'{what}: CUDA differs from the CPU by {error:.3g} (scale {scale:.3g})'


@pytest.mark.parametrize('config', [C4, FPN], ids=['c4', 'fpn'])
def test_features_and_box_head_outputs_on_cuda_equal_the_cpu(config):
    cpu = detector(config).eval()
    gpu = copy.deepcopy(cpu).to(DEVICE)
    data = cpu.data_preprocessor(batch(80), False)
    inputs, samples = data['inputs'], data['data_samples']
    with torch.no_grad():
        feats = cpu.extract_feat(inputs)
        gpu_feats = gpu.extract_feat(inputs.to(DEVICE))
        for level, (a, b) in enumerate(zip(gpu_feats, feats)):
            assert_close(a, b, f'features at level {level}')
        # The same proposals on both sides, so that NMS cannot make them differ: RoIAlign,
        # the shared head (C4) and the box head are compared directly.
        proposals = cpu.rpn_head.predict(feats, samples, rescale=False)
        cls_cpu, box_cpu = cpu.roi_head.forward(feats, proposals)[:2]
        cls_gpu, box_gpu = gpu.roi_head.forward(gpu_feats, [p.to(DEVICE) for p in proposals])[:2]
    assert cls_gpu.shape == cls_cpu.shape and cls_cpu.shape[0] == sum(len(p) for p in proposals)
    assert_close(cls_gpu, cls_cpu, 'class scores')
    assert_close(box_gpu, box_cpu, 'box deltas')
    results = gpu.predict(inputs.to(DEVICE), samples)
    assert all(r.pred_instances.bboxes.device.type == 'cuda' for r in results)


@pytest.mark.parametrize('config', [C4, FPN], ids=['c4', 'fpn'])
@pytest.mark.parametrize('amp', [False, True], ids=['fp32', 'amp'])
def test_training_steps_on_cuda_give_finite_losses_and_move_every_trained_layer(config, amp):
    cfg = load_config(config)
    model = detector(config).to(DEVICE).train()
    wrapper = tb.benchmark_optim_wrapper(model, cfg.optim_wrapper, amp)
    trained = {n: p.detach().clone() for n, p in model.named_parameters() if p.requires_grad}
    data = batch(80)
    for _ in range(5):  # a dynamic loss scale may skip the first steps on an overflow
        losses = model.train_step(data, wrapper)
        assert all(torch.isfinite(v).all() for v in losses.values()), losses
    moved = {n for n, p in model.named_parameters() if n in trained and not p.equal(trained[n])}
    for part in ('backbone.', 'rpn_head.', 'roi_head.bbox_head.'):
        assert any(n.startswith(part) for n in moved), f'no {part}* weight moved'
    if config == C4:
        assert any(n.startswith('roi_head.shared_head.') for n in moved)
    if amp:
        assert type(wrapper).__name__ == 'AmpOptimWrapper'
        assert wrapper.loss_scaler.get_scale() > 0


def test_the_fast_path_on_cuda_gives_the_eager_features():
    eager = detector(C4).to(DEVICE).eval()
    fast = deploy_detector(copy.deepcopy(eager))
    data = eager.data_preprocessor(batch(80, images=1), False)
    with torch.no_grad():
        plain = eager.extract_feat(data['inputs'])[0]
        deployed = fast.extract_feat(data['inputs'])[0]
    assert deployed.device.type == 'cuda'
    assert_close(deployed, plain, 'deployed backbone features')
    assert fast.backbone.deployed and fast.roi_head.shared_head.deployed


def test_benchmarks_run_on_cuda_and_name_the_device(tmp_path):
    bench = load_tool('benchmark')
    train_json, det_json = tmp_path / 't.json', tmp_path / 'd.json'
    assert bench.main(['train', FPN, '--device', DEVICE, '--amp', '--iters', '2', '--warmup', '1',
                       '--out-json', str(train_json)]) == 0
    rows = json.loads(train_json.read_text())['rows']
    assert [r['precision'] for r in rows] == ['fp32', 'amp']
    name = torch.cuda.get_device_name(0)
    assert all(r['device'] == name and r['peak_memory_mib'] > 0 for r in rows)
    assert bench.main(['detector', FPN, '--device', DEVICE, '--threads', '1', '--warmup', '1',
                       '--repeats', '3', '--out-json', str(det_json)]) == 0
    rows = json.loads(det_json.read_text())['rows']
    assert {r['device'] for r in rows} == {name} and all(r['median_ms'] > 0 for r in rows)
