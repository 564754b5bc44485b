"""Checkpoint conversion: Megvii files checked against the official network's
definition, OpenMMLab classifier files checked by strict loading, and the
requested-architecture check for both.

``MegviiShuffleNetV1`` below is written from the documented format of the
official release (reference file, section 6), independently of the package.
"""
import pytest
import torch
from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm

from shufflenet_det.checkpoint import (MEGVII_INPUT_CONVENTION, OPENMMLAB_INPUT_CONVENTION,
                                       load_strict)
from shufflenet_det.checkpoint.digest import compute_tensor_digest
from shufflenet_det.checkpoint.convert import infer_openmmlab_architecture
from shufflenet_det.models import ShuffleNetClassifier, ShuffleNetV1, shufflenet_v1_channels
from shufflenet_det.models.backbones import WIDEN_FACTORS

from ..helpers import load_tool

convert_checkpoint = load_tool('convert_checkpoint')
CHANNELS = {  # (groups, size) -> (stem, stage 2, 3, 4) of the official release
    (3, '0.5x'): (12, 120, 240, 480), (3, '1.0x'): (24, 240, 480, 960),
    (3, '1.5x'): (24, 360, 720, 1440), (3, '2.0x'): (48, 480, 960, 1920),
    (8, '0.5x'): (16, 192, 384, 768), (8, '1.0x'): (24, 384, 768, 1536),
    (8, '1.5x'): (24, 576, 1152, 2304), (8, '2.0x'): (48, 768, 1536, 3072),
}


class MegviiBlock(nn.Module):
    def __init__(self, inp, oup, group, first_group, mid, stride):
        super().__init__()
        self.stride, self.group = stride, group
        outputs = oup - inp if stride == 2 else oup
        self.branch_main_1 = nn.Sequential(
            nn.Conv2d(inp, mid, 1, groups=1 if first_group else group, bias=False),
            nn.BatchNorm2d(mid), nn.ReLU(inplace=True),
            nn.Conv2d(mid, mid, 3, stride, 1, groups=mid, bias=False), nn.BatchNorm2d(mid))
        self.branch_main_2 = nn.Sequential(nn.Conv2d(mid, outputs, 1, groups=group, bias=False),
                                           nn.BatchNorm2d(outputs))
        self.branch_proj = nn.AvgPool2d(3, 2, 1) if stride == 2 else None

    def forward(self, x):
        y = self.branch_main_1(x)
        b, c, h, w = y.shape  # the official shuffle: channels read as (c // g, g)
        y = y.reshape(b, c // self.group, self.group, h, w).permute(0, 2, 1, 3, 4)
        y = self.branch_main_2(y.reshape(b, c, h, w))
        if self.stride == 1:
            return torch.relu(x + y)
        return torch.cat((self.branch_proj(x), torch.relu(y)), 1)


class MegviiShuffleNetV1(nn.Module):
    def __init__(self, group, size):
        super().__init__()
        stem, *widths = CHANNELS[group, size]
        self.first_conv = nn.Sequential(nn.Conv2d(3, stem, 3, 2, 1, bias=False),
                                        nn.BatchNorm2d(stem), nn.ReLU(inplace=True))
        self.maxpool = nn.MaxPool2d(3, 2, 1)
        blocks, inp = [], stem
        for stage, (repeat, width) in enumerate(zip((4, 8, 4), widths)):
            for i in range(repeat):
                blocks.append(MegviiBlock(inp, width, group, stage == 0 and i == 0,
                                          width // 4, 2 if i == 0 else 1))
                inp = width
        self.features = nn.Sequential(*blocks)
        self.classifier = nn.Sequential(nn.Linear(widths[-1], 1000, bias=False))

    def stage_outputs(self, x):
        x = self.maxpool(self.first_conv(x))
        outs = []
        for i, block in enumerate(self.features):
            x = block(x)
            if i in (3, 11, 15):
                outs.append(x)
        return outs

    def forward(self, x):
        return self.classifier(self.stage_outputs(x)[-1].mean((2, 3)))


def _official_file(tmp_path, group, size):
    torch.manual_seed(group * 10 + len(size))
    net = MegviiShuffleNetV1(group, size)
    with torch.no_grad():
        for m in net.modules():  # non-trivial BN so that a wrong permutation shows
            if isinstance(m, _BatchNorm):
                m.running_mean.uniform_(-0.5, 0.5)
                m.running_var.uniform_(0.5, 2.0)
                m.weight.uniform_(0.5, 1.5)
                m.bias.uniform_(-0.2, 0.2)
    path = tmp_path / f'snetv1_group{group}_{size}.pth.tar'
    torch.save({'state_dict': {f'module.{k}': v for k, v in net.state_dict().items()}}, path)
    return net.eval(), path


# Megvii's inverse shuffle has an exact paper-order equivalent for every g=3 file and for
# 2.0x g=8; the other g=8 files keep the official order (shuffle_order='megvii').
OFFICIAL_FILES = [(3, '0.5x', 0.5, 'paper'), (3, '1.0x', 1.0, 'paper'), (3, '1.5x', 1.5, 'paper'),
                  (3, '2.0x', 2.0, 'paper'), (8, '0.5x', 0.5, 'megvii'),
                  (8, '1.0x', 1.0, 'megvii'), (8, '1.5x', 1.5, 'megvii'),
                  (8, '2.0x', 2.0, 'paper')]


@pytest.mark.parametrize('group,size,widen,order', OFFICIAL_FILES)
def test_every_official_file_converts_to_the_official_features(tmp_path, capsys, group, size,
                                                                widen, order):
    official, src = _official_file(tmp_path, group, size)
    dst = tmp_path / 'converted.pth'
    assert convert_checkpoint.main([str(src), str(dst)]) == 0
    printed = capsys.readouterr().out
    assert 'unit 16/16' in printed and f'{widen}x g={group}' in printed
    assert f"shuffle_order='{order}'" in printed
    assert ('cannot change such counts' in printed) == (order == 'megvii')

    ckpt = torch.load(dst, weights_only=True)
    assert ckpt['meta']['input_convention'] == MEGVII_INPUT_CONVENTION
    assert ckpt['meta']['arch'] == dict(type='ShuffleNetV1', groups=group, widen_factor=widen,
                                        shuffle_order=order)
    assert ckpt['meta']['verified_max_abs_diff'] <= 1e-4

    backbone = ShuffleNetV1(groups=group, widen_factor=widen, out_indices=(0, 1, 2),
                            shuffle_order=order,
                            init_cfg=dict(type='Pretrained', checkpoint=str(dst),
                                          prefix='backbone.'))
    backbone.init_weights()
    backbone.eval()
    image_bgr = torch.rand(2, 3, 96, 128) * 255  # the official input: BGR, 0-255
    with torch.no_grad():
        ours_all, theirs_all = backbone(image_bgr), official.stage_outputs(image_bgr)
        assert len(ours_all) == len(theirs_all) == 3  # Stages 2, 3 and 4
        for ours, theirs in zip(ours_all, theirs_all):
            assert ours.shape == theirs.shape
            assert (ours - theirs).abs().max().item() <= 1e-4

    # The same file evaluates as a classifier with identical logits.
    classifier = ShuffleNetClassifier(backbone=dict(
        type='ShuffleNetV1', groups=group, widen_factor=widen, out_indices=(2, ),
        shuffle_order=order))
    classifier.load_state_dict(ckpt['state_dict'], strict=True)
    classifier.eval()
    x = torch.rand(1, 3, 224, 224) * 255
    with torch.no_grad():
        torch.testing.assert_close(classifier(x), official(x), rtol=1e-4, atol=1e-4)


def test_official_order_files_refuse_a_paper_order_backbone_naming_both(tmp_path, capsys):
    _, src = _official_file(tmp_path, 8, '0.5x')
    dst = tmp_path / 'converted.pth'
    assert convert_checkpoint.main([str(src), str(dst)]) == 0
    backbone = ShuffleNetV1(groups=8, widen_factor=0.5, init_cfg=dict(
        type='Pretrained', checkpoint=str(dst), prefix='backbone.'))
    before = {k: v.clone() for k, v in backbone.state_dict().items()}
    with pytest.raises(RuntimeError, match=r"converted\.pth \(prefix 'backbone\.'\) holds weights "
                                           r"for shuffle_order='megvii'.*but ShuffleNetV1 is built "
                                           r"with shuffle_order='paper'.*Set shuffle_order="
                                           r"'megvii' on ShuffleNetV1 in the config"):
        backbone.init_weights()
    # Refused before anything was copied.
    assert all(torch.equal(v, before[k]) for k, v in backbone.state_dict().items())


ACCEPTED = ('the converter accepts official Megvii ShuffleNetV1 checkpoints (keys '
            'module.first_conv.*, module.features.N.branch_main_*, module.classifier.0.*) and '
            'OpenMMLab ShuffleNetV1 classifier checkpoints (keys backbone.conv1.*, '
            'backbone.layers.S.U.*, head.fc.*)')


def test_files_that_are_not_shufflenet_v1_checkpoints_are_refused(tmp_path, capsys):
    dst = tmp_path / 'out.pth'
    resnet = tmp_path / 'resnet_cls.pth'  # OpenMMLab layout, another network
    torch.save({'state_dict': {'backbone.conv1.weight': torch.zeros(64, 3, 7, 7),
                               'backbone.layer1.0.conv1.weight': torch.zeros(64, 64, 1, 1),
                               'head.fc.weight': torch.zeros(10, 64)}}, resnet)
    assert convert_checkpoint.main([str(resnet), str(dst)]) == 2
    err = capsys.readouterr().err
    assert err.startswith('error: ')
    assert 'is not an OpenMMLab ShuffleNetV1 classifier checkpoint: it lacks ' \
           'backbone.conv1.conv.weight, backbone.layers.0.0.g_conv_1x1_compress.conv.weight ' \
           '(its first keys are: backbone.conv1.weight' in err
    assert ACCEPTED in err

    headless = tmp_path / 'headless.pth.tar'  # Megvii layout without the classifier
    net = MegviiShuffleNetV1(3, '0.5x')
    torch.save({'state_dict': {f'module.{k}': v for k, v in net.state_dict().items()
                               if not k.startswith('classifier.')}}, headless)
    assert convert_checkpoint.main([str(headless), str(dst)]) == 2
    err = capsys.readouterr().err
    assert 'is not an official Megvii ShuffleNetV1 checkpoint: it lacks ' \
           'module.classifier.0.weight' in err
    assert ACCEPTED in err

    linear = tmp_path / 'linear.pth'
    torch.save(nn.Linear(4, 2).state_dict(), linear)
    assert convert_checkpoint.main([str(linear), str(dst)]) == 2
    err = capsys.readouterr().err
    assert 'is neither an official Megvii ShuffleNetV1 checkpoint nor an OpenMMLab ' \
           'ShuffleNetV1 classifier checkpoint (its first keys are: bias, weight)' in err
    assert ACCEPTED in err

    text = tmp_path / 'README.md'  # a text file is not mistaken for an unsafe pickle
    text.write_text('# notes\nnot a checkpoint\n')
    assert convert_checkpoint.main([str(text), str(dst)]) == 2
    err = capsys.readouterr().err
    assert f'{text} (25 bytes) is not a PyTorch checkpoint: it starts with b\'# no\'' in err
    assert 'pickled object' not in err

    assert convert_checkpoint.main([str(tmp_path / 'absent.pth.tar'), str(dst)]) == 2
    assert 'checkpoint file not found' in capsys.readouterr().err
    assert not dst.exists()


def test_checkpoints_with_nan_values_are_refused(tmp_path, capsys):
    net, src = _official_file(tmp_path, 3, '0.5x')
    state = torch.load(src, weights_only=True)
    state['state_dict']['module.features.5.branch_main_2.1.running_var'][0] = float('nan')
    torch.save(state, src)
    assert convert_checkpoint.main([str(src), str(tmp_path / 'out.pth')]) == 2
    err = capsys.readouterr().err
    assert '1 tensors hold NaN or inf values (features.5.branch_main_2.1.running_var)' in err


def test_a_half_precision_file_converts_in_float32_saying_so(tmp_path, capsys):
    official, src = _official_file(tmp_path, 3, '0.5x')
    ckpt = torch.load(src, weights_only=True)
    floating = sum(v.is_floating_point() for v in ckpt['state_dict'].values())
    ckpt['state_dict'] = {k: v.half() if v.is_floating_point() else v
                          for k, v in ckpt['state_dict'].items()}
    torch.save(ckpt, src)
    dst = tmp_path / 'converted.pth'
    assert convert_checkpoint.main([str(src), str(dst)]) == 0
    assert (f'{src}: {floating} tensors are float16; converted to float32'
            in capsys.readouterr().out)
    converted = torch.load(dst, weights_only=True)
    assert {v.dtype for v in converted['state_dict'].values() if v.is_floating_point()} == {
        torch.float32}
    # Checked against the official network with the same (half-precision) weights.
    assert converted['meta']['verified_max_abs_diff'] <= 1e-4


def _fails_without_output(argv, tmp_path, capsys) -> str:
    """Run the converter expecting exit 2 and no new file; return stderr."""
    before = set(tmp_path.iterdir())
    assert convert_checkpoint.main([str(a) for a in argv]) == 2
    assert set(tmp_path.iterdir()) == before  # neither DST nor a temporary file
    err = capsys.readouterr().err
    assert err.splitlines()[-1].startswith('error: ')  # one line, after any stray log output
    return err


def test_megvii_file_of_another_width_than_requested_is_refused(tmp_path, capsys):
    _, src = _official_file(tmp_path, 3, '1.0x')
    err = _fails_without_output(
        [src, tmp_path / 'out.pth', '--widen-factor', '2.0', '--groups', '3'], tmp_path, capsys)
    assert f'{src} is ShuffleNetV1 1.0x g=3 (channels (24, 240, 480, 960)), but 2.0x g=3 ' \
           'was requested' in err


@pytest.mark.parametrize('group,size,options,detected,requested', [
    (3, '0.5x', ['--groups', '8'], '0.5x g=3 (channels (12, 120, 240, 480))', 'g=8'),
    # Refused for the mismatch, before any conversion work.
    (8, '1.0x', ['--groups', '3', '--widen-factor', '1'],
     '1.0x g=8 (channels (24, 384, 768, 1536))', '1.0x g=3'),
])
def test_megvii_file_of_other_groups_than_requested_is_refused(
        tmp_path, capsys, group, size, options, detected, requested):
    _, src = _official_file(tmp_path, group, size)
    err = _fails_without_output([src, tmp_path / 'out.pth', *options], tmp_path, capsys)
    assert f'{src} is ShuffleNetV1 {detected}, but {requested} was requested' in err
    assert 'inverse channel shuffle' not in err


@pytest.mark.parametrize('options', [['--groups', '3', '--widen-factor', '0.5'],
                                     ['--widen-factor', '0.5'], ['--groups', '3']])
def test_megvii_file_of_the_requested_architecture_converts(tmp_path, capsys, options):
    _, src = _official_file(tmp_path, 3, '0.5x')
    dst = tmp_path / 'converted.pth'
    assert convert_checkpoint.main([str(src), str(dst), *options]) == 0
    assert 'official Megvii checkpoint: ShuffleNetV1 0.5x g=3' in capsys.readouterr().out
    meta = torch.load(dst, weights_only=True)['meta']
    assert meta['arch'] == dict(type='ShuffleNetV1', groups=3, widen_factor=0.5,
                                shuffle_order='paper')
    assert meta['input_convention'] == MEGVII_INPUT_CONVENTION


@pytest.mark.parametrize('options,message', [
    (['--groups', '5'], 'requested groups=5 is not supported; groups must be one of '
                        '(1, 2, 3, 4, 8)'),
    (['--widen-factor', '0.75'], 'requested widen_factor=0.75 is not supported; widen_factor '
                                 'must be one of (0.25, 0.5, 1.0, 1.5, 2.0)'),
])
def test_unsupported_requested_architectures_are_refused(tmp_path, capsys, options, message):
    _, src = _official_file(tmp_path, 3, '0.5x')
    err = _fails_without_output([src, tmp_path / 'out.pth', *options], tmp_path, capsys)
    assert message in err


def _classifier(groups, widen, num_classes=10):
    return ShuffleNetClassifier(num_classes=num_classes, backbone=dict(
        type='ShuffleNetV1', groups=groups, widen_factor=widen, out_indices=(2, )))


def _openmmlab_file(tmp_path, groups, widen, wrapped=True):
    """An OpenMMLab-layout classifier checkpoint with non-trivial BN statistics."""
    net = _classifier(groups, widen)  # PyTorch's default init; init_weights() would log
    with torch.no_grad():
        for m in net.modules():
            if isinstance(m, _BatchNorm):
                m.running_mean.uniform_(-0.5, 0.5)
                m.running_var.uniform_(0.5, 2.0)
                m.bias.uniform_(-0.2, 0.2)
    path = tmp_path / f'shufflenet-v1-{widen}x-g{groups}_in1k.pth'
    state = net.state_dict()
    torch.save({'state_dict': state, 'meta': {'epoch': 300}} if wrapped else state, path)
    return net.eval(), path


@pytest.mark.parametrize('groups,widen,wrapped', [(3, 0.5, True), (4, 1.0, False)])
def test_openmmlab_checkpoints_are_verified_and_written_unchanged(
        tmp_path, capsys, groups, widen, wrapped):
    original, src = _openmmlab_file(tmp_path, groups, widen, wrapped)
    dst = tmp_path / 'converted.pth'
    assert convert_checkpoint.main([str(src), str(dst)]) == 0
    out = capsys.readouterr().out
    channels = shufflenet_v1_channels(groups, widen)
    assert f'OpenMMLab classifier checkpoint: ShuffleNetV1 {widen}x g={groups} ' \
           f'(channels {channels})' in out
    assert f'loads strictly into ShuffleNetClassifier {widen}x g={groups}' in out
    assert f'wrote {dst}' in out

    ckpt = torch.load(dst, weights_only=True)
    assert ckpt['meta'].pop('tensor_digest') == compute_tensor_digest(ckpt)
    assert ckpt['meta'] == dict(
        source='openmmlab', converted_from=str(src), input_convention=OPENMMLAB_INPUT_CONVENTION,
        arch=dict(type='ShuffleNetV1', groups=groups, widen_factor=widen, shuffle_order='paper'))
    expected = original.state_dict()
    assert list(ckpt['state_dict']) == list(expected)
    for key, value in expected.items():
        assert torch.equal(ckpt['state_dict'][key], value), key

    loaded = _classifier(groups, widen)
    load_strict(loaded, ckpt['state_dict'], str(dst))
    loaded.eval()
    x = torch.rand(1, 3, 64, 64)
    with torch.no_grad():
        torch.testing.assert_close(loaded(x), original(x))


@pytest.mark.parametrize('options', [['--groups', '4', '--widen-factor', '1.0'],
                                     ['--widen-factor', '1'], ['--groups', '4']])
def test_openmmlab_file_of_the_requested_architecture_converts(tmp_path, capsys, options):
    _, src = _openmmlab_file(tmp_path, 4, 1.0)
    dst = tmp_path / 'converted.pth'
    assert convert_checkpoint.main([str(src), str(dst), *options]) == 0
    assert torch.load(dst, weights_only=True)['meta']['arch'] == \
        dict(type='ShuffleNetV1', groups=4, widen_factor=1.0, shuffle_order='paper')


@pytest.mark.parametrize('options,requested', [
    (['--widen-factor', '0.5'], '0.5x'),
    (['--groups', '4', '--widen-factor', '2.0'], '2.0x g=4'),
    (['--groups', '3', '--widen-factor', '1.0'], '1.0x g=3'),
])
def test_openmmlab_file_of_another_architecture_than_requested_is_refused(
        tmp_path, capsys, options, requested):
    _, src = _openmmlab_file(tmp_path, 4, 1.0)
    err = _fails_without_output([src, tmp_path / 'out.pth', *options], tmp_path, capsys)
    assert f'{src} is ShuffleNetV1 1.0x g=4 (channels (24, 272, 544, 1088)), but {requested} ' \
           'was requested' in err


def test_openmmlab_files_that_do_not_fit_shufflenet_classifier_are_refused(tmp_path, capsys):
    _, src = _openmmlab_file(tmp_path, 3, 0.5, wrapped=False)
    state = torch.load(src, weights_only=True)
    dst = tmp_path / 'out.pth'

    extra = tmp_path / 'extra.pth'
    torch.save({**state, 'backbone.layers.0.0.se.conv1.conv.weight': torch.zeros(1)}, extra)
    err = _fails_without_output([extra, dst], tmp_path, capsys)
    assert f'{extra} does not match ShuffleNetClassifier; nothing was loaded. 1 unexpected ' \
           f'keys: backbone.layers.0.0.se.conv1.conv.weight; {dst} was not written' in err

    wide_stem = tmp_path / 'wide_stem.pth'  # OpenMMLab's own rounding of some stems
    torch.save({**state, 'backbone.conv1.conv.weight': torch.zeros(36, 3, 3, 3)}, wide_stem)
    err = _fails_without_output([wide_stem, dst], tmp_path, capsys)
    assert 'channels (36, 120, 240, 480) with groups=3 match no supported ShuffleNetV1 ' \
           'setting' in err
    assert 'its stages are those of 0.5x g=3, whose stem has 12 channels here, not 36' in err

    shallow = tmp_path / 'shallow.pth'
    torch.save({k: v for k, v in state.items()
                if not k.startswith(('backbone.layers.0.2.', 'backbone.layers.0.3.'))}, shallow)
    err = _fails_without_output([shallow, dst], tmp_path, capsys)
    assert 'expected stages of (4, 8, 4) units under backbone.layers.S.U, found (2, 8, 4)' in err


@pytest.mark.parametrize('groups', [1, 2, 3, 4, 8])
def test_every_supported_setting_is_recognised_from_shapes(groups):
    for widen in WIDEN_FACTORS:
        state = {f'backbone.{k}': v for k, v in
                 ShuffleNetV1(groups=groups, widen_factor=widen).state_dict().items()}
        assert infer_openmmlab_architecture(state) == dict(
            groups=groups, widen_factor=widen, channels=shufflenet_v1_channels(groups, widen))
