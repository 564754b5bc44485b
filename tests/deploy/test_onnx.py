"""ONNX export of the backbone and the classifier, checked with ONNX Runtime."""
import numpy as np
import pytest
import torch

from shufflenet_det.deploy import export_onnx, max_abs_diff, onnxruntime_session
from shufflenet_det.models import ShuffleNetClassifier, ShuffleNetV1

from ..helpers import load_tool
from ..models.test_switch_to_deploy import trained_looking as _trained_looking

export_tool = load_tool('export_onnx')


@pytest.mark.parametrize('groups,widen', [(3, 1.0), (8, 0.5)])
def test_backbone_outputs_match_onnxruntime(tmp_path, groups, widen):
    model = _trained_looking(ShuffleNetV1(groups=groups, widen_factor=widen))
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


def test_classifier_cli_with_a_checkpoint(tmp_path, capsys):
    model = _trained_looking(ShuffleNetClassifier(
        backbone=dict(type='ShuffleNetV1', widen_factor=0.5, out_indices=(3, )), num_classes=10))
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
