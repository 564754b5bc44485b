import pytest
import torch
import torch.nn.functional as F
from mmdet.registry import MODELS
from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm

from shufflenet_det.models import ShuffleNetV1, ShuffleUnit, shufflenet_v1_channels
from shufflenet_det.models.backbones import OFFICIAL_CHANNELS
from shufflenet_det.models.layers import channel_shuffle

GROUPS = (1, 2, 3, 4, 8)
WIDTHS = (0.25, 0.5, 1.0, 1.5, 2.0)
# Stage 2-4 channels at 1.0x in OpenMMLab's ShuffleNetV1 (mmpretrain), keyed by groups.
MMPRETRAIN_CHANNELS = {1: (144, 288, 576), 2: (200, 400, 800), 3: (240, 480, 960),
                       4: (272, 544, 1088), 8: (384, 768, 1536)}


def _bn_training_flags(module):
    return {m.training for m in module.modules() if isinstance(m, _BatchNorm)}


def _randomise_bn(model):
    """Give every BN layer non-trivial statistics so eval-mode outputs exercise them."""
    for m in model.modules():
        if isinstance(m, _BatchNorm):
            m.running_mean.uniform_(-0.5, 0.5)
            m.running_var.uniform_(0.5, 2.0)
            m.weight.data.uniform_(0.5, 1.5)
            m.bias.data.uniform_(-0.2, 0.2)


@pytest.mark.parametrize('groups', GROUPS)
@pytest.mark.parametrize('widen_factor', WIDTHS)
def test_output_shapes_for_every_group_and_width(groups, widen_factor):
    model = MODELS.build(dict(type='ShuffleNetV1', groups=groups, widen_factor=widen_factor,
                              out_indices=(0, 1, 2)))
    model.init_weights()
    _, *stages = model.stage_channels
    with torch.no_grad():
        outs = model(torch.randn(2, 3, 64, 96))
    assert isinstance(outs, tuple)
    assert [tuple(o.shape) for o in outs] == [
        (2, stages[0], 8, 12), (2, stages[1], 4, 6), (2, stages[2], 2, 3)]
    assert model.out_channels == tuple(stages)
    assert model.out_strides == (8, 16, 32)
    assert all(torch.isfinite(o).all() for o in outs)


@pytest.mark.parametrize('key,channels', sorted(OFFICIAL_CHANNELS.items()))
def test_official_channel_lists_are_used(key, channels):
    assert ShuffleNetV1(groups=key[0], widen_factor=key[1]).stage_channels == channels


@pytest.mark.parametrize('groups,widen,channels', [
    (1, 1.0, (24, 144, 288, 576)), (2, 1.0, (24, 200, 400, 800)), (4, 1.0, (24, 272, 544, 1088)),
    (3, 0.25, (6, 60, 120, 240)), (2, 0.5, (12, 104, 200, 400)), (4, 0.25, (8, 64, 144, 272)),
    (8, 0.25, (8, 96, 192, 384)), (1, 1.5, (36, 216, 432, 864)),
])
def test_table1_widths_and_documented_rounding(groups, widen, channels):
    assert shufflenet_v1_channels(groups, widen) == channels


def test_default_out_indices_are_mmpretrains_stage_4_only():
    model = ShuffleNetV1()
    assert model.out_indices == (2, )
    assert model.out_channels == (960, ) and model.out_strides == (32, )
    assert model.feature_info == [dict(channels=240, stride=8, module='layers.0'),
                                  dict(channels=480, stride=16, module='layers.1'),
                                  dict(channels=960, stride=32, module='layers.2')]
    assert all(model.get_submodule(f['module']) is model.layers[i]
               for i, f in enumerate(model.feature_info))
    outs = model(torch.randn(1, 3, 64, 64))
    assert [tuple(o.shape) for o in outs] == [(1, 960, 2, 2)]


@pytest.mark.parametrize('groups', GROUPS)
def test_out_indices_and_frozen_stages_mean_what_they_mean_in_mmpretrain(groups):
    """The shape and freezing checks of mmpretrain's own ShuffleNetV1 test, for every g:
    indices 0, 1, 2 are Stages 2, 3, 4 (28, 14, 7 px at 224), the default Stage 4 only."""
    c2, c3, c4 = MMPRETRAIN_CHANNELS[groups]
    imgs = torch.randn(1, 3, 224, 224)
    model = ShuffleNetV1(groups=groups, widen_factor=1.0, out_indices=(0, 1, 2))
    model.init_weights()
    model.train()
    assert all(isinstance(m, _BatchNorm) for m in model.modules()
               if isinstance(m, (_BatchNorm, nn.GroupNorm)))
    feat = model(imgs)
    assert len(feat) == 3
    assert feat[0].shape == (1, c2, 28, 28)
    assert feat[1].shape == (1, c3, 14, 14)
    assert feat[2].shape == (1, c4, 7, 7)
    assert model.out_channels == (c2, c3, c4) and model.out_strides == (8, 16, 32)

    model = ShuffleNetV1(groups=groups, widen_factor=1.0, out_indices=(1, 2))
    assert [o.shape for o in model(imgs)] == [(1, c3, 14, 14), (1, c4, 7, 7)]
    model = ShuffleNetV1(groups=groups, widen_factor=1.0)  # a config that omits out_indices
    assert [o.shape for o in model(imgs)] == [(1, c4, 7, 7)]

    # frozen_stages counts the stem first: 1 freezes the stem and Stage 2.
    model = ShuffleNetV1(groups=groups, frozen_stages=1, out_indices=(0, 1, 2))
    model.init_weights()
    model.train()
    assert not any(p.requires_grad for p in model.conv1.parameters())
    assert not any(p.requires_grad for p in model.layers[0].parameters())
    assert _bn_training_flags(model.layers[0]) == {False}
    assert all(p.requires_grad for s in model.layers[1:] for p in s.parameters())
    assert _bn_training_flags(model.layers[1]) == {True}

    # mmpretrain refuses the same values, negative indices included.
    for kwargs in (dict(frozen_stages=10), dict(out_indices=[5]), dict(out_indices=(-1, )),
                   dict(groups=10)):
        with pytest.raises(ValueError):
            ShuffleNetV1(**kwargs)


def test_unit_structure_follows_the_paper():
    model = ShuffleNetV1(groups=3, widen_factor=1.0)
    stage_widths = model.stage_channels[1:]
    for stage_index, stage in enumerate(model.layers):
        assert len(stage) == (4, 8, 4)[stage_index]
        for unit_index, unit in enumerate(stage):
            compress, dw, expand = (unit.g_conv_1x1_compress, unit.depthwise_conv3x3_bn,
                                    unit.g_conv_1x1_expand)
            assert unit.mid_channels == stage_widths[stage_index] // 4
            assert compress.conv.out_channels == dw.conv.in_channels == expand.conv.in_channels \
                == stage_widths[stage_index] // 4
            first_of_stage2 = stage_index == 0 and unit_index == 0
            assert compress.conv.groups == (1 if first_of_stage2 else 3)
            assert expand.conv.groups == 3
            assert dw.conv.groups == dw.conv.in_channels and dw.conv.kernel_size == (3, 3)
            assert compress.with_activation and not dw.with_activation \
                and not expand.with_activation
            assert unit.stride == (2 if unit_index == 0 else 1)
            assert dw.conv.stride == (unit.stride, unit.stride)
            assert hasattr(unit, 'avgpool') == (unit_index == 0)
    # The stride-2 unit's branch only makes the channels the shortcut does not carry.
    assert model.layers[0][0].g_conv_1x1_expand.conv.out_channels == 240 - 24
    assert model.layers[1][0].g_conv_1x1_expand.conv.out_channels == 480 - 240


def _unit_reference(unit, x, shuffle=True):
    """The unit of paper Fig. 2, written out with functional ops (eval-mode BN)."""
    def bn(y, m):
        return F.batch_norm(y, m.running_mean, m.running_var, m.weight, m.bias, eps=m.eps)
    c, d, e = unit.g_conv_1x1_compress, unit.depthwise_conv3x3_bn, unit.g_conv_1x1_expand
    y = F.relu(bn(F.conv2d(x, c.conv.weight, groups=c.conv.groups), c.bn))
    y = bn(F.conv2d(y, d.conv.weight, stride=unit.stride, padding=1, groups=y.shape[1]), d.bn)
    if shuffle:
        y = channel_shuffle(y, unit.groups)
    y = bn(F.conv2d(y, e.conv.weight, groups=e.conv.groups), e.bn)
    if unit.stride == 2:
        return torch.cat((F.avg_pool2d(x, 3, 2, 1), F.relu(y)), 1)
    return F.relu(x + y)


@pytest.mark.parametrize('stride,in_channels', [(1, 48), (2, 24)])
@pytest.mark.parametrize('shuffle', [True, False])
def test_unit_computes_fig2(stride, in_channels, shuffle):
    unit = ShuffleUnit(in_channels, 48, mid_channels=12, groups=3, stride=stride,
                       shuffle=shuffle).eval()
    _randomise_bn(unit)
    x = torch.randn(2, in_channels, 8, 8)
    with torch.no_grad():
        torch.testing.assert_close(unit(x), _unit_reference(unit, x, shuffle))
        if shuffle:  # the shuffle matters: leaving it out changes the result
            assert not torch.allclose(unit(x), _unit_reference(unit, x, shuffle=False))


def test_shuffle_false_removes_the_shuffle_everywhere_but_keeps_weights_compatible():
    shuffled, plain = ShuffleNetV1(), ShuffleNetV1(shuffle=False)
    assert shuffled.state_dict().keys() == plain.state_dict().keys()
    plain.load_state_dict(shuffled.state_dict())
    _randomise_bn(shuffled)
    plain.load_state_dict(shuffled.state_dict())
    shuffled.eval(), plain.eval()
    assert all(not u.shuffle for s in plain.layers for u in s)
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        assert not torch.allclose(shuffled(x)[-1], plain(x)[-1])


def test_se_variant_adds_one_se_block_per_unit():
    plain = ShuffleNetV1(groups=3, widen_factor=2.0)
    se = ShuffleNetV1(groups=3, widen_factor=2.0, with_se=True)
    units = [u for s in se.layers for u in s]
    assert len(units) == 16 and all(u.se is not None for u in units)
    # SE reduces each branch's channels 16-fold: first unit of Stage 2 has 480 - 48 = 432.
    assert units[0].se.conv1.conv.out_channels == 432 // 16
    extra = sum(p.numel() for p in se.parameters()) - sum(p.numel() for p in plain.parameters())
    assert extra == sum(p.numel() for u in units for p in u.se.parameters()) > 0
    assert [o.shape for o in se(torch.randn(1, 3, 64, 64))] == \
        [o.shape for o in plain(torch.randn(1, 3, 64, 64))]


def test_shallow_variant_halves_the_units():
    model = ShuffleNetV1(widen_factor=0.5, shallow=True)
    assert [len(s) for s in model.layers] == [2, 4, 2]
    assert model(torch.randn(1, 3, 64, 64))[-1].shape == (1, 480, 2, 2)


@pytest.mark.parametrize('frozen_stages', [-1, 0, 1, 2, 3])
def test_frozen_stages_freeze_parameters_and_bn_statistics(frozen_stages):
    model = ShuffleNetV1(frozen_stages=frozen_stages)
    model.train()
    parts = [model.conv1, *model.layers]
    for i, part in enumerate(parts):
        frozen = i <= frozen_stages
        assert all(p.requires_grad != frozen for p in part.parameters())
        assert _bn_training_flags(part) == {not frozen}
    # Statistics of a frozen stage do not move in a training forward.
    before = {k: v.clone() for k, v in model.state_dict().items() if 'running_mean' in k}
    model(torch.randn(2, 3, 64, 64))
    for k, v in before.items():
        stage = -1 if k.startswith('conv1') else int(k.split('.')[1])
        assert torch.equal(model.state_dict()[k], v) == (stage < frozen_stages)


def test_norm_eval_keeps_bn_in_eval_mode_but_trainable():
    model = ShuffleNetV1(norm_eval=True)
    model.train()
    assert _bn_training_flags(model) == {False}
    assert all(p.requires_grad for p in model.parameters())
    assert model.layers[0][0].g_conv_1x1_compress.conv.training
    model.eval()
    assert _bn_training_flags(model) == {False}
    assert _bn_training_flags(ShuffleNetV1(norm_eval=False).train()) == {True}


def test_group_norm_through_norm_cfg():
    model = ShuffleNetV1(norm_cfg=dict(type='GN', num_groups=3, requires_grad=True))
    norms = [m for m in model.modules() if isinstance(m, nn.GroupNorm)]
    assert len(norms) == 1 + 16 * 3 and not any(isinstance(m, _BatchNorm)
                                                for m in model.modules())
    assert all(n.num_groups == 3 for n in norms)
    model.train()
    out = model(torch.randn(1, 3, 64, 64))  # GN works at batch 1, unlike BN statistics
    assert out[-1].shape == (1, 960, 2, 2)
    # mmpretrain's GN case: all three stages at 224.
    model = ShuffleNetV1(groups=3, norm_cfg=dict(type='GN', num_groups=2, requires_grad=True),
                         out_indices=(0, 1, 2))
    model.train()
    assert [o.shape for o in model(torch.randn(1, 3, 224, 224))] == [
        (1, 240, 28, 28), (1, 480, 14, 14), (1, 960, 7, 7)]


def test_with_cp_gives_the_same_outputs_and_gradients():
    plain, cp = ShuffleNetV1(widen_factor=0.5), ShuffleNetV1(widen_factor=0.5, with_cp=True)
    cp.load_state_dict(plain.state_dict())
    assert all(u.with_cp for s in cp.layers for u in s)
    x = torch.randn(2, 3, 64, 64)
    outs = []
    for model in (plain, cp):
        model.train()
        model.zero_grad()
        out = model(x)
        sum(o.square().mean() for o in out).backward()
        outs.append((out, {n: p.grad.clone() for n, p in model.named_parameters()}))
    for a, b in zip(outs[0][0], outs[1][0]):
        torch.testing.assert_close(a, b)
    for name, grad in outs[0][1].items():
        torch.testing.assert_close(outs[1][1][name], grad, rtol=1e-4, atol=1e-5)


def test_num_stages_builds_only_the_requested_stages():
    model = ShuffleNetV1(widen_factor=2.0, num_stages=2, out_indices=(1, ))
    assert len(model.layers) == 2 and model.out_channels == (960, )
    assert [f['stride'] for f in model.feature_info] == [8, 16]
    assert not any(k.startswith('layers.2') for k in model.state_dict())
    assert model(torch.randn(1, 3, 64, 64))[0].shape == (1, 960, 4, 4)


def test_default_initialisation_follows_the_official_code():
    model = ShuffleNetV1()
    model.init_weights()
    assert model.conv1.conv.weight.std().item() == pytest.approx(0.01, rel=0.15)
    expand = model.layers[1][2].g_conv_1x1_expand.conv.weight
    assert expand.std().item() == pytest.approx(1.0 / expand.shape[1], rel=0.15)
    bn = model.layers[0][0].g_conv_1x1_compress.bn
    assert torch.all(bn.weight == 1) and torch.allclose(bn.bias, torch.full_like(bn.bias, 1e-4))


@pytest.mark.parametrize('kwargs,message', [
    (dict(groups=5), r'groups must be one of \(1, 2, 3, 4, 8\), got 5'),
    (dict(widen_factor=0.75),
     r'widen_factor must be one of \(0.25, 0.5, 1.0, 1.5, 2.0\), got 0.75'),
    (dict(out_indices=(1, 3)), r'out_indices must be .* from \(0, 1, 2\) .*got \(1, 3\)'),
    (dict(out_indices=(-1, )), r'out_indices must be .* from \(0, 1, 2\) .*got \(-1,\)'),
    # The numbering before the one of mmpretrain (0 was the stem) is refused, saying which
    # stage each index is.
    (dict(out_indices=(1, 2, 3)),
     r'from \(0, 1, 2\) \(with num_stages=3; 0 = Stage 2, 1 = Stage 3, 2 = Stage 4\), '
     r'got \(1, 2, 3\)'),
    (dict(out_indices=()), r'out_indices must be a non-empty'),
    (dict(out_indices=(1, 1)), r'distinct values'),
    (dict(out_indices=2), r'got 2'),
    (dict(num_stages=2), r'from \(0, 1\) \(with num_stages=2; 0 = Stage 2, 1 = Stage 3\), '
                         r'got \(2,\)'),
    (dict(num_stages=0), r'num_stages must be one of \(1, 2, 3\), got 0'),
    (dict(frozen_stages=4), r'frozen_stages must be one of \(-1, 0, 1, 2, 3\).*got 4'),
    (dict(frozen_stages=-2), r'got -2'),
    # The rows of the reliability issue's table of bad inputs.
    (dict(widen_factor=0), r'widen_factor must be one of \(0.25, 0.5, 1.0, 1.5, 2.0\), got 0'),
    (dict(out_indices=(4, )), r'out_indices must be .* from \(0, 1, 2\) .*got \(4,\)'),
    (dict(frozen_stages=9), r'frozen_stages must be one of \(-1, 0, 1, 2, 3\).*got 9'),
    (dict(shuffle_order='official'), r"shuffle_order must be one of \('paper', 'megvii'\).*"
                                     r"got 'official'"),
])
def test_bad_arguments_name_the_value_and_the_allowed_ones(kwargs, message):
    with pytest.raises(ValueError, match=message):
        ShuffleNetV1(**kwargs)


@pytest.mark.parametrize('kwargs,message', [
    (dict(in_channels=24, out_channels=48, mid_channels=12, stride=1), r'must equal'),
    (dict(in_channels=48, out_channels=48, mid_channels=12, stride=2), r'out_channels \(48\) >'),
    (dict(in_channels=48, out_channels=48, mid_channels=12, stride=3), r'stride must be 1 or 2'),
    (dict(in_channels=48, out_channels=48, mid_channels=10, stride=1), r'mid_channels \(10\)'),
])
def test_bad_unit_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        ShuffleUnit(groups=3, **kwargs)


def test_registered_in_mmdet_and_importable_through_custom_imports(tmp_path):
    from mmengine.config import Config
    cfg_file = tmp_path / 'cfg.py'
    cfg_file.write_text("custom_imports = dict(imports=['shufflenet_det'], "
                        "allow_failed_imports=False)\n"
                        "model = dict(type='ShuffleNetV1', groups=8, widen_factor=0.5)\n")
    cfg = Config.fromfile(str(cfg_file))
    model = MODELS.build(cfg.model)
    assert isinstance(model, ShuffleNetV1) and model.out_channels == (768, )  # Stage 4
    assert MODELS.get('ShuffleNetV1') is ShuffleNetV1


def test_shuffle_order_selects_the_permutation_of_every_unit():
    paper = ShuffleNetV1(groups=8, widen_factor=0.5, out_indices=(2, ))
    megvii = ShuffleNetV1(groups=8, widen_factor=0.5, out_indices=(2, ), shuffle_order='megvii')
    megvii.load_state_dict(paper.state_dict())  # same parameters, another network
    units = [m for m in megvii.modules() if isinstance(m, ShuffleUnit)]
    assert len(units) == 16 and all(u.shuffle_order == 'megvii' for u in units)
    mid = units[3].mid_channels
    x = torch.randn(4, mid, 5, 5)
    torch.testing.assert_close(units[3].channel_shuffle(x), channel_shuffle(x, mid // 8))
    paper.eval(), megvii.eval()
    image = torch.rand(1, 3, 64, 64) * 255
    with torch.no_grad():
        assert not torch.allclose(paper(image)[0], megvii(image)[0], atol=1e-3)
