import argparse

import pytest
import torch

from shufflenet_det.checkpoint import CheckpointFileError, UnsafeCheckpointError
from shufflenet_det.errors import CheckpointMismatchError
from shufflenet_det.checkpoint import read_checkpoint, select_prefix
from shufflenet_det.models import ShuffleNetClassifier, ShuffleNetV1

BN = ('weight', 'bias', 'running_mean', 'running_var', 'num_batches_tracked')


def openmmlab_keys():
    """Key layout of OpenMMLab's 1.0x g=3 ShuffleNetV1 classifier (reference, section 6)."""
    keys = {'backbone.conv1.conv.weight', *(f'backbone.conv1.bn.{s}' for s in BN),
            'head.fc.weight', 'head.fc.bias'}
    for stage, units in enumerate((4, 8, 4)):
        for k in range(units):
            for layer in ('g_conv_1x1_compress', 'depthwise_conv3x3_bn', 'g_conv_1x1_expand'):
                p = f'backbone.layers.{stage}.{k}.{layer}'
                keys |= {f'{p}.conv.weight', *(f'{p}.bn.{s}' for s in BN)}
    return keys


def _random_classifier():
    model = ShuffleNetClassifier(backbone=dict(type='ShuffleNetV1', out_indices=(2, )))
    with torch.no_grad():
        for v in model.state_dict().values():
            if v.is_floating_point():
                v.uniform_(0.5, 1.5)
    return model


def test_parameter_names_are_openmmlab_names():
    assert set(_random_classifier().state_dict()) == openmmlab_keys()


def test_openmmlab_checkpoint_round_trip_through_init_cfg(tmp_path):
    source = _random_classifier()
    path = tmp_path / 'shufflenet_v1_openmmlab.pth'
    torch.save(dict(meta=dict(mmcls_version='0.x'), state_dict=source.state_dict()), path)
    backbone = ShuffleNetV1(init_cfg=dict(type='Pretrained', checkpoint=str(path),
                                          prefix='backbone.'))
    backbone.init_weights()
    for k, v in backbone.state_dict().items():
        assert torch.equal(v, source.state_dict()[f'backbone.{k}']), k
    x = torch.randn(1, 3, 64, 64)
    source.eval(), backbone.eval()
    with torch.no_grad():
        torch.testing.assert_close(backbone(x)[-1], source.backbone(x)[-1], rtol=0, atol=0)


def test_a_missing_key_is_an_error_and_nothing_is_loaded(tmp_path):
    state = _random_classifier().state_dict()
    del state['backbone.layers.1.3.g_conv_1x1_expand.bn.weight']
    path = tmp_path / 'partial.pth'
    torch.save(state, path)
    backbone = ShuffleNetV1(init_cfg=dict(type='Pretrained', checkpoint=str(path),
                                          prefix='backbone.'))
    before = {k: v.clone() for k, v in backbone.state_dict().items()}
    with pytest.raises(RuntimeError, match=r'nothing was loaded\. 1 missing keys: '
                                           r'layers\.1\.3\.g_conv_1x1_expand\.bn\.weight\. '
                                           r'Pass strict=False'):
        backbone.init_weights()
    assert all(torch.equal(v, before[k]) for k, v in backbone.state_dict().items())


def test_unexpected_keys_and_shape_mismatches_are_errors(tmp_path):
    state = _random_classifier().state_dict()
    path = tmp_path / 'wide.pth'
    torch.save(state, path)
    backbone = ShuffleNetV1(num_stages=2, out_indices=(1, ),
                            init_cfg=dict(type='Pretrained', checkpoint=str(path),
                                          prefix='backbone.'))
    with pytest.raises(RuntimeError, match=r'unexpected keys: layers\.2\.0\.'):
        backbone.init_weights()
    half = ShuffleNetV1(widen_factor=0.5, init_cfg=dict(type='Pretrained', checkpoint=str(path),
                                                        prefix='backbone.'))
    with pytest.raises(RuntimeError, match=r'shape mismatches: conv1\.bn\.bias: checkpoint '
                                           r'\(24,\) vs model \(12,\)'):
        half.init_weights()


def test_wrong_prefix_and_missing_file_are_reported(tmp_path):
    path = tmp_path / 'cls.pth'
    torch.save(_random_classifier().state_dict(), path)
    with pytest.raises(CheckpointMismatchError,
                       match=r"no keys starting with prefix 'model\.backbone\.'; "
                             r"its keys start with \['backbone\.', 'head\.'\]"):
        select_prefix(read_checkpoint(str(path))[0], 'model.backbone.', str(path))
    missing = tmp_path / 'nope.pth'
    with pytest.raises(FileNotFoundError, match='nope.pth'):
        ShuffleNetV1(init_cfg=dict(type='Pretrained', checkpoint=str(missing))).init_weights()


def test_missing_ok_falls_back_to_scratch_with_a_warning(tmp_path, mmlog):
    missing = tmp_path / 'not_downloaded.pth'
    backbone = ShuffleNetV1(init_cfg=dict(type='Pretrained', checkpoint=str(missing),
                                          prefix='backbone.', missing_ok=True))
    backbone.init_weights()
    assert f'WARNING pretrained checkpoint {missing} (init_cfg of ShuffleNetV1) not found: ' \
           'training from scratch (missing_ok=True). To get it, download' in mmlog.text
    # The official-code initialisation was applied.
    assert backbone.conv1.conv.weight.std().item() == pytest.approx(0.01, rel=0.15)


def test_strict_false_loads_the_matching_tensors_and_lists_the_rest(tmp_path, mmlog):
    source = _random_classifier()
    state = source.state_dict()
    del state['backbone.layers.1.3.g_conv_1x1_expand.bn.weight']
    state['backbone.extra.weight'] = torch.ones(2)
    path = tmp_path / 'partial.pth'
    torch.save(state, path)
    backbone = ShuffleNetV1(init_cfg=dict(type='Pretrained', checkpoint=str(path),
                                          prefix='backbone.', strict=False))
    before = backbone.layers[1][3].g_conv_1x1_expand.bn.weight.clone()
    backbone.init_weights()
    own = backbone.state_dict()
    assert torch.equal(own['conv1.conv.weight'], state['backbone.conv1.conv.weight'])
    assert torch.equal(own['layers.1.3.g_conv_1x1_expand.bn.weight'], before)
    assert f'partial load (strict=False) of {path}' in mmlog.text
    assert '1 missing keys: layers.1.3.g_conv_1x1_expand.bn.weight' in mmlog.text
    assert '1 unexpected keys: extra.weight' in mmlog.text
    assert f'loaded {len(own) - 1} tensors' in mmlog.text


def _write_bad_files(tmp_path):
    good = tmp_path / 'good.pth'
    torch.save({'state_dict': {'w': torch.ones(4096)}}, good)
    data = good.read_bytes()
    (tmp_path / 'truncated.pth').write_bytes(data[:len(data) // 2])
    (tmp_path / 'notes.pth').write_text('these are my notes, not a checkpoint\n')
    (tmp_path / 'empty.pth').write_bytes(b'')
    (tmp_path / 'folder.pth').mkdir()
    torch.save({'state_dict': {'w': torch.ones(1)}, 'args': argparse.Namespace(lr=1)},
               tmp_path / 'pickled_object.pth')


@pytest.mark.parametrize('name,error,message', [
    ('missing.pth', FileNotFoundError, r'checkpoint file not found: \S*missing\.pth'),
    ('truncated.pth', CheckpointFileError,
     r'truncated\.pth \(\d+ bytes\) is truncated or corrupt: '),
    ('notes.pth', CheckpointFileError, r'notes\.pth \(\d+ bytes\) is not a PyTorch checkpoint'),
    ('empty.pth', CheckpointFileError, r'empty\.pth is empty \(0 bytes\)'),
    ('folder.pth', CheckpointFileError, r'folder\.pth is a directory'),
    ('pickled_object.pth', UnsafeCheckpointError,
     r'pickled_object\.pth was refused: it contains an object of type argparse\.Namespace'),
])
def test_unreadable_checkpoints_are_named_with_the_reason(tmp_path, name, error, message):
    _write_bad_files(tmp_path)
    with pytest.raises(error, match=message):
        read_checkpoint(str(tmp_path / name))
    backbone = ShuffleNetV1(init_cfg=dict(type='Pretrained', checkpoint=str(tmp_path / name)))
    if name == 'missing.pth':  # the initialiser also says how to get an ImageNet checkpoint
        message = r'pretrained checkpoint \S*missing\.pth \(init_cfg of ShuffleNetV1\) not found\.'
    with pytest.raises(error, match=message):
        backbone.init_weights()
