import pytest

from shufflenet_det.analysis import PAPER_MFLOPS, classifier_complexity

from ..helpers import load_tool

get_flops = load_tool('get_flops')


@pytest.mark.parametrize('key,paper', sorted(PAPER_MFLOPS.items()))
def test_complexity_matches_table1_and_the_official_release_within_3_percent(key, paper):
    mflops = classifier_complexity(*key)['flops'] / 1e6
    assert abs(mflops - paper) / paper <= 0.03, f'{key}: {mflops:.1f} vs {paper}'


@pytest.mark.parametrize('groups,widen,params_m', [(3, 1.0, 1.9), (3, 2.0, 5.4), (8, 1.0, 2.4),
                                                   (3, 0.5, 0.7), (8, 0.5, 1.0)])
def test_parameter_counts_match_the_official_release(groups, widen, params_m):
    assert classifier_complexity(groups, widen)['params'] / 1e6 == pytest.approx(params_m, abs=0.06)


def test_shallow_and_se_variants():
    shallow = classifier_complexity(3, 0.5, shallow=True)['flops'] / 1e6
    full = classifier_complexity(3, 0.5)['flops'] / 1e6
    # Half the units of Stages 2-4, as the paper's text defines it; the stem and the
    # classifier stay, so a little over half the multiply-adds remain.
    assert 0.5 * full < shallow < 0.6 * full
    se = classifier_complexity(3, 2.0, with_se=True)['flops'] / 1e6
    assert 524 < se < 524 * 1.02  # the paper: 527 MFLOPs, +0.6%


def test_cli_prints_params_and_mflops(capsys):
    get_flops.main(['--groups', '8', '--widen-factor', '1.0'])
    out = capsys.readouterr().out
    assert out.startswith('ShuffleNetV1 1.0x g=8 at 224x224:')
    assert 'M parameters' in out and 'MFLOPs (multiply-adds)' in out


def test_cli_rejects_unknown_groups(capsys):
    with pytest.raises(SystemExit):
        get_flops.main(['--groups', '5'])
    assert "invalid choice: 5 (choose from 1, 2, 3, 4, 8)" in capsys.readouterr().err


def test_detector_count_grows_by_the_per_roi_cost_of_stage4_and_the_box_head():
    from pathlib import Path

    import torch
    from mmdet.registry import MODELS
    from mmengine.config import Config

    from shufflenet_det.analysis import count_complexity, detector_complexity

    cfg = Config.fromfile(str(Path(__file__).parents[2] / 'configs/faster_rcnn_shufflenet1x_coco.py'))
    counts = {}
    for n in (20, 40):
        cfg.model.test_cfg.rpn.max_per_img = n
        model = MODELS.build(cfg.model).eval()
        counts[n] = detector_complexity(model, 128, 160)
        assert counts[n]['rois'] == n
    head = model.roi_head
    per_roi = count_complexity(head.shared_head, torch.zeros(1, 480, 14, 14))['flops']
    per_roi += head.bbox_head.fc_cls.weight.numel() + head.bbox_head.fc_reg.weight.numel()
    added = counts[40]['flops'] - counts[20]['flops']
    assert abs(added - 20 * per_roi) <= 0.01 * added


def test_cli_counts_a_detector_config(capsys):
    from pathlib import Path
    config = str(Path(__file__).parents[2] / 'configs/faster_rcnn_shufflenet1x_fpn_coco.py')
    get_flops.main([config, '--shape', '128', '160',
                    '--cfg-options', 'model.test_cfg.rpn.max_per_img=10'])
    out = capsys.readouterr().out
    assert 'faster_rcnn_shufflenet1x_fpn_coco.py at 128x160:' in out
    assert 'GFLOPs (multiply-adds, box head on 10 proposals)' in out
