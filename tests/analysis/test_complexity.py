import pytest

import get_flops
from shufflenet_det.analysis import PAPER_MFLOPS, classifier_complexity


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
