"""ONNX export of the backbone and the classifier, checked with ONNX Runtime."""
import numpy as np
import pytest
import torch

from shufflenet_det.deploy import (build_for_export, export_onnx, max_abs_diff,
                                   onnxruntime_session)
from shufflenet_det.models import ShuffleNetClassifier, ShuffleNetV1

from ..helpers import load_tool
from ..models.test_switch_to_deploy import trained_looking as _trained_looking

export_tool = load_tool('export_onnx')


@pytest.mark.parametrize('groups,widen', [(3, 1.0), (8, 0.5)])
def test_backbone_outputs_match_onnxruntime(tmp_path, groups, widen):
    model = _trained_looking(ShuffleNetV1(groups=groups, widen_factor=widen,
                                          out_indices=(0, 1, 2)))
    path = tmp_path / 'backbone.onnx'
    names = export_onnx(model, str(path), (1, 3, 128, 160))
    assert names == ['output0', 'output1', 'output2']
    x = torch.rand(1, 3, 128, 160) * 255
    assert max_abs_diff(model, str(path), x) <= 1e-4
    # The batch axis is dynamic.
    outs = onnxruntime_session(str(path)).run(None, {'input': np.random.rand(3, 3, 128, 160)
                                                     .astype(np.float32)})
    assert [o.shape for o in outs] == [(3, model.out_channels[i], 128 // s, 160 // s)
                                       for i, s in enumerate((8, 16, 32))]


def test_a_backbone_export_returns_stages_2_to_4_and_a_classifier_stage_4():
    backbone = build_for_export(groups=3, widen_factor=0.5)
    assert backbone.out_indices == (0, 1, 2) and backbone.out_strides == (8, 16, 32)
    classifier = build_for_export(groups=3, widen_factor=0.5, classifier=True, num_classes=10)
    assert classifier.backbone.out_indices == (2, )


def test_classifier_cli_with_a_checkpoint(tmp_path, capsys):
    model = _trained_looking(ShuffleNetClassifier(
        backbone=dict(type='ShuffleNetV1', widen_factor=0.5, out_indices=(2, )), num_classes=10))
    torch.save({'state_dict': model.state_dict()}, tmp_path / 'cls.pth')
    out = tmp_path / 'cls.onnx'
    assert export_tool.main(['--classifier', '--widen-factor', '0.5', '--num-classes', '10',
                             '--checkpoint', str(tmp_path / 'cls.pth'), '--out', str(out)]) == 0
    printed = capsys.readouterr().out
    diff = float(printed.rsplit('max abs diff ', 1)[1])
    assert diff <= 1e-4 and out.is_file()
    logits = onnxruntime_session(str(out)).run(None, {'input': np.full((1, 3, 224, 224), 100,
                                                                        np.float32)})[0]
    with torch.no_grad():
        expected = model(torch.full((1, 3, 224, 224), 100.0))
    np.testing.assert_allclose(logits, expected.numpy(), atol=1e-4)
    assert not [p for p in tmp_path.iterdir() if p.suffix == '.onnx' and p != out]


def test_the_channel_shuffle_exports_as_one_gather(tmp_path):
    import onnx
    model = _trained_looking(ShuffleNetV1(groups=3, widen_factor=0.5))
    path = tmp_path / 'backbone.onnx'
    export_onnx(model, str(path), (1, 3, 96, 128))
    ops = [n.op_type for n in onnx.load(str(path)).graph.node]
    # One Gather per unit; no shape arithmetic.
    assert ops.count('Gather') == 16
    assert not {'Shape', 'Reshape', 'Transpose', 'Unsqueeze', 'Slice', 'Div'} & set(ops)
    x = torch.rand(2, 3, 96, 128) * 255  # the batch axis stays dynamic
    with torch.no_grad():
        scale = max(float(o.abs().max()) for o in model(x))
    assert max_abs_diff(model, str(path), x) <= 1e-5 * scale


def test_int8_export_of_the_classifier_is_calibrated_on_images(tmp_path, capsys):
    import onnx
    from PIL import Image
    calib = tmp_path / 'calib'
    calib.mkdir()
    rng = np.random.default_rng(0)
    for i in range(4):
        Image.fromarray(rng.integers(0, 256, (40, 50, 3), dtype=np.uint8)).save(calib / f'{i}.png')
    out = tmp_path / 'cls.onnx'
    assert export_tool.main(['--classifier', '--widen-factor', '0.5', '--num-classes', '10',
                             '--shape', '1', '3', '64', '64', '--out', str(out), '--int8',
                             '--calib-dir', str(calib), '--calib-num', '3']) == 0
    printed = capsys.readouterr().out
    assert 'calibration: 3/3 images' in printed
    int8 = tmp_path / 'cls_int8.onnx'
    graph = onnx.load(str(int8)).graph
    ops = {n.op_type for n in graph.node}
    assert {'QuantizeLinear', 'DequantizeLinear', 'Conv', 'Gemm'} <= ops
    assert {n.domain for n in graph.node} <= {'', 'ai.onnx'}
    x = np.full((1, 3, 64, 64), 100, np.float32)
    fp32 = onnxruntime_session(str(out)).run(None, {'input': x})[0]
    quantized = onnxruntime_session(str(int8)).run(None, {'input': x})[0]
    assert quantized.shape == fp32.shape == (1, 10) and np.isfinite(quantized).all()


def test_int8_export_needs_enough_calibration_images(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_:
        export_tool.main(['--out', str(tmp_path / 'b.onnx'), '--int8'])
    assert exit_.value.code == 2
    assert '--int8 needs --calib-dir DIR' in capsys.readouterr().err
    assert export_tool.main(['--out', str(tmp_path / 'b.onnx'), '--int8', '--calib-dir',
                             str(tmp_path / 'none')]) == 2
    assert capsys.readouterr().err.strip() == \
        f'error: calibration folder not found: {tmp_path / "none"}'
    (tmp_path / 'empty').mkdir()
    assert export_tool.main(['--out', str(tmp_path / 'b.onnx'), '--int8', '--calib-dir',
                             str(tmp_path / 'empty'), '--calib-num', '2']) == 2
    assert 'holds 0 images' in capsys.readouterr().err
    assert not (tmp_path / 'b.onnx').exists()
