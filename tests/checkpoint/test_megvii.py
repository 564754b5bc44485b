"""Megvii checkpoint conversion, checked against the official network's definition.

``MegviiShuffleNetV1`` below is written from the documented format of the
official release (reference file, section 6), independently of the package.
"""
import pytest
import torch
from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm

import convert_checkpoint
from shufflenet_det.checkpoint.megvii import MEGVII_INPUT_CONVENTION
from shufflenet_det.models import ShuffleNetClassifier, ShuffleNetV1

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
        outs = [x]
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


@pytest.mark.parametrize('group,size,widen', [
    (3, '0.5x', 0.5), (3, '1.0x', 1.0), (3, '1.5x', 1.5), (3, '2.0x', 2.0), (8, '2.0x', 2.0)])
def test_converted_backbone_gives_the_official_features(tmp_path, capsys, group, size, widen):
    official, src = _official_file(tmp_path, group, size)
    dst = tmp_path / 'converted.pth'
    assert convert_checkpoint.main([str(src), str(dst)]) == 0
    printed = capsys.readouterr().out
    assert 'unit 16/16' in printed and f'{widen}x g={group}' in printed

    ckpt = torch.load(dst, weights_only=True)
    assert ckpt['meta']['input_convention'] == MEGVII_INPUT_CONVENTION
    assert ckpt['meta']['arch'] == dict(type='ShuffleNetV1', groups=group, widen_factor=widen)

    backbone = ShuffleNetV1(groups=group, widen_factor=widen, out_indices=(0, 1, 2, 3),
                            init_cfg=dict(type='Pretrained', checkpoint=str(dst),
                                          prefix='backbone.'))
    backbone.init_weights()
    backbone.eval()
    image_bgr = torch.rand(2, 3, 96, 128) * 255  # the official input: BGR, 0-255
    with torch.no_grad():
        for ours, theirs in zip(backbone(image_bgr), official.stage_outputs(image_bgr)):
            assert ours.shape == theirs.shape
            assert (ours - theirs).abs().max().item() <= 1e-4

    # The same file evaluates as a classifier with identical logits.
    classifier = ShuffleNetClassifier(
        backbone=dict(type='ShuffleNetV1', groups=group, widen_factor=widen, out_indices=(3, )))
    classifier.load_state_dict(ckpt['state_dict'], strict=True)
    classifier.eval()
    x = torch.rand(1, 3, 224, 224) * 255
    with torch.no_grad():
        torch.testing.assert_close(classifier(x), official(x), rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize('size', ['0.5x', '1.0x', '1.5x'])
def test_g8_checkpoints_without_an_exact_equivalent_are_refused_with_the_reason(
        tmp_path, capsys, size):
    _, src = _official_file(tmp_path, 8, size)
    dst = tmp_path / 'converted.pth'
    assert convert_checkpoint.main([str(src), str(dst)]) == 1
    err = capsys.readouterr().err
    assert 'Megvii applies the inverse channel shuffle' in err
    assert 'no exact equivalent in the paper-shuffle network' in err
    assert not dst.exists() and list(tmp_path.iterdir()) == [src]


def test_files_that_are_not_official_checkpoints_are_refused(tmp_path, capsys):
    dst = tmp_path / 'out.pth'
    cls = tmp_path / 'openmmlab.pth'
    torch.save({'state_dict': ShuffleNetClassifier().state_dict()}, cls)
    assert convert_checkpoint.main([str(cls), str(dst)]) == 1
    assert 'is not an official Megvii ShuffleNetV1 checkpoint: it lacks ' \
           'module.first_conv.0.weight' in capsys.readouterr().err

    text = tmp_path / 'notes.txt'
    text.write_text('not a checkpoint')
    assert convert_checkpoint.main([str(text), str(dst)]) == 1
    assert 'could not be read as a PyTorch checkpoint' in capsys.readouterr().err

    assert convert_checkpoint.main([str(tmp_path / 'absent.pth.tar'), str(dst)]) == 1
    assert 'no such checkpoint file' in capsys.readouterr().err
    assert not dst.exists()


def test_checkpoints_with_nan_values_are_refused(tmp_path, capsys):
    net, src = _official_file(tmp_path, 3, '0.5x')
    state = torch.load(src, weights_only=True)
    state['state_dict']['module.features.5.branch_main_2.1.running_var'][0] = float('nan')
    torch.save(state, src)
    assert convert_checkpoint.main([str(src), str(tmp_path / 'out.pth')]) == 1
    err = capsys.readouterr().err
    assert '1 tensors hold NaN or inf values (features.5.branch_main_2.1.running_var)' in err
