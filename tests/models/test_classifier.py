import pytest
import torch
import torch.nn.functional as F

from shufflenet_det.models import ClsDataPreprocessor, ShuffleNetClassifier


def test_modes_give_logits_loss_and_predictions():
    model = ShuffleNetClassifier(
        backbone=dict(type='ShuffleNetV1', widen_factor=0.5, out_indices=(2, )), num_classes=7,
        label_smoothing=0.1)
    x, y = torch.randn(3, 3, 64, 64), torch.tensor([0, 6, 2])
    logits = model(x)
    assert logits.shape == (3, 7)
    loss = model(x, y, mode='loss')['loss_cls']
    torch.testing.assert_close(loss, F.cross_entropy(logits, y, label_smoothing=0.1))
    assert not torch.allclose(loss, F.cross_entropy(logits, y))
    preds = model(x, y, mode='predict')
    assert [p['gt_label'] for p in preds] == [0, 6, 2]
    torch.testing.assert_close(torch.stack([p['pred_score'] for p in preds]), logits.softmax(1))


@pytest.mark.parametrize('kwargs,message', [
    (dict(num_classes=0), 'num_classes must be positive, got 0'),
    (dict(label_smoothing=1.0), r'label_smoothing must be in \[0, 1\), got 1.0'),
])
def test_bad_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        ShuffleNetClassifier(**kwargs)


def test_unknown_mode_and_missing_labels():
    model = ShuffleNetClassifier(backbone=dict(type='ShuffleNetV1', widen_factor=0.25,
                                               out_indices=(2, )), num_classes=2)
    with pytest.raises(ValueError, match="mode must be 'tensor', 'loss' or 'predict', got 'eval'"):
        model(torch.zeros(1, 3, 32, 32), mode='eval')
    with pytest.raises(ValueError, match="mode='loss' needs the labels"):
        model(torch.zeros(1, 3, 32, 32), mode='loss')


def test_preprocessor_normalises_and_reports_its_convention():
    rgb = ClsDataPreprocessor()
    images = torch.full((2, 3, 4, 4), 200, dtype=torch.uint8)
    images[:, 0] = 10
    out = rgb((images, [1, 0]))
    torch.testing.assert_close(out['inputs'][0, 0, 0, 0], torch.tensor((10 - 123.675) / 58.395))
    assert out['data_samples'].tolist() == [1, 0]
    assert rgb.input_convention() == dict(mean=[123.675, 116.28, 103.53],
                                          std=[58.395, 57.12, 57.375], bgr_to_rgb=True)
    bgr = ClsDataPreprocessor(mean=(0, 0, 0), std=(1, 1, 1), rgb_to_bgr=True)
    assert bgr((images, None))['inputs'][0, 2, 0, 0] == 10  # red moved to the last channel
    assert bgr.input_convention() == dict(mean=[0.0] * 3, std=[1.0] * 3, bgr_to_rgb=False)
    with pytest.raises(ValueError, match='mean and std need 3 values each'):
        ClsDataPreprocessor(std=(1, 0, 1))
