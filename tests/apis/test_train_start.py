"""What ``tools/train.py`` settles before training starts: the ImageNet checkpoint is there or
training from scratch is chosen, and a lr set for another batch size is pointed out."""
from pathlib import Path

import pytest
from mmengine.logging import MMLogger
from torch.nn.modules.batchnorm import _BatchNorm

from shufflenet_det.apis.train import build_train_runner

from ..helpers import REPO, load_tool

C4_1X = str(REPO / 'configs/faster_rcnn_shufflenet1x_coco.py')


@pytest.fixture
def coco_root(tmp_path, monkeypatch):
    """An empty COCO 2017 layout (the paths the configs check), and a working directory
    without the configs' ``checkpoints/``."""
    root = tmp_path / 'coco'
    (root / 'annotations').mkdir(parents=True)
    for split in ('train2017', 'val2017'):
        (root / split).mkdir()
        (root / 'annotations' / f'instances_{split}.json').write_text('{}')
    monkeypatch.chdir(tmp_path)
    return root


def _build(tmp_path, coco_root, cfg_options=None, **options):
    """``build_train_runner`` for the 1x C4 config from scratch, with its own visualizer and
    logger (MMEngine keeps one per name for the whole process, and the default experiment name
    has a one-second timestamp, which two quick builds share)."""
    cfg_options = {'visualizer.name': f'visualizer_{tmp_path.name}',
                   'experiment_name': f'experiment_{tmp_path.name}', **(cfg_options or {})}
    return build_train_runner(C4_1X, work_dir=str(tmp_path / 'work'), data_root=str(coco_root),
                              from_scratch=True, cfg_options=cfg_options, **options)


def _runner_log(runner) -> list[str]:
    for handler in MMLogger.get_current_instance().handlers:
        handler.flush()
    return (Path(runner.log_dir) / f'{runner.timestamp}.log').read_text().splitlines()


def test_without_its_imagenet_checkpoint_a_coco_config_stops_before_anything_is_built(
        coco_root, tmp_path, capsys):
    train = load_tool('train')
    work = tmp_path / 'work'
    code = train.main([str(REPO / 'configs/faster_rcnn_shufflenet2x_coco.py'), '--data-root',
                       str(coco_root), '--work-dir', str(work)])
    err = capsys.readouterr().err
    assert code == 2
    assert err.count('error: ') == 1 and 'Traceback' not in err
    assert err.splitlines()[-1] == (
        'error: pretrained checkpoint checkpoints/shufflenet_v1_2x_g3_imagenet.pth '
        '(model.init_cfg) not found. To get it, download snetv1_group3_2.0x.pth.tar from '
        "Megvii's ShuffleNet-Series (https://1drv.ms/f/s!AgaP37NGYuEXhRfQxHRseR7eSxXo, folder "
        'ShuffleNetV1/) and run: python tools/convert_checkpoint.py snetv1_group3_2.0x.pth.tar '
        'checkpoints/shufflenet_v1_2x_g3_imagenet.pth. To train from scratch instead, pass '
        '--from-scratch to tools/train.py (it also lets every BN layer and stage train)')
    # Nothing was built: no log folder, no dumped config (only the work dir's lock may exist).
    assert [p.name for p in work.glob('*') if not p.name.startswith('.')] == []


def test_from_scratch_builds_a_model_whose_bn_layers_and_stages_all_train(coco_root, tmp_path):
    model = (runner := _build(tmp_path, coco_root)).model
    assert model.init_cfg is None
    model.init_weights()  # the missing file is not read
    model.train()
    assert model.backbone.norm_eval is False and model.backbone.frozen_stages == -1
    assert model.roi_head.shared_head.norm_eval is False
    assert all(p.requires_grad for p in model.parameters())
    assert all(m.training for m in model.modules() if isinstance(m, _BatchNorm))
    assert ('training from scratch (--from-scratch): model.init_cfg: '
            'checkpoints/shufflenet_v1_1x_g3_imagenet.pth not loaded; model.backbone: '
            'norm_eval=False, frozen_stages=-1; model.roi_head.shared_head: norm_eval=False'
            ) in '\n'.join(_runner_log(runner))


LR_LINE = ("lr 0.02 is set for a total batch of 16 images (auto_scale_lr.base_batch_size); "
           "this run's is 2 (1 process(es) x 2). Linear scaling would give lr 0.0025: pass "
           '--auto-scale-lr to use it.')


@pytest.mark.parametrize('options,expected', [
    (dict(), [LR_LINE]),
    (dict(auto_scale_lr=True), []),  # scaled: nothing to point out
    (dict(cfg_options={'train_dataloader.batch_size': 16}), []),  # the batch the lr is set for
])
def test_one_line_gives_the_lr_linear_scaling_would_use(coco_root, tmp_path, options, expected):
    runner = _build(tmp_path, coco_root, **options)
    lines = [line for line in _runner_log(runner) if 'auto_scale_lr.base_batch_size' in line]
    assert [line.split(' - mmengine - ', 1)[1] for line in lines] == \
        [f'WARNING - {line}' for line in expected]
