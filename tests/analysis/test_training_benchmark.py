"""Training images/s and the ImageNet loader's rate (tools/benchmark.py train / loader)."""
import json

import pytest

from shufflenet_det.analysis import benchmark as tb
from shufflenet_det.config import load_config

from ..helpers import REPO, load_tool

bench_tool = load_tool('benchmark')
DEMO = str(REPO / 'configs/faster_rcnn_shufflenet_demo.py')
IMAGENET = str(REPO / 'configs/pretrain/shufflenet1x_g3_imagenet.py')
R50_C4 = 'mmdet::faster_rcnn/faster-rcnn_r50-caffe_c4-1x_coco.py'


@pytest.mark.parametrize('config, shape', [
    ('configs/faster_rcnn_shufflenet2x_coco.py', (600, 800)),  # Resize (1000, 600), 4:3
    ('configs/faster_rcnn_shufflenet1x_fpn_300_coco.py', (300, 400)),
    (R50_C4, (800, 1067)),  # mmdet's (1333, 800)
    ('configs/pretrain/shufflenet1x_g3_imagenet.py', (224, 224)),
    ('configs/faster_rcnn_shufflenet_demo.py', (256, 256)),  # (256, 256) caps the long side
])
def test_the_training_shape_is_the_config_scale_on_a_4_by_3_image(config, shape):
    path = config if '::' in config else str(REPO / config)
    assert tb.training_shape(load_config(path)) == shape


def test_pretrained_initialisers_are_dropped_and_the_others_kept():
    model = load_config(R50_C4).model
    assert model.backbone.init_cfg.type == 'Pretrained'
    cleaned = tb.without_checkpoints(model)
    assert 'init_cfg' not in cleaned.backbone
    assert cleaned.roi_head.shared_head.type == model.roi_head.shared_head.type
    ours = load_config(str(REPO / 'configs/faster_rcnn_shufflenet2x_coco.py')).model
    assert ours.init_cfg.type == 'ShuffleNetPretrained' and 'init_cfg' not in \
        tb.without_checkpoints(ours)
    kept = dict(type='X', init_cfg=dict(type='Normal', std=0.01))
    assert tb.without_checkpoints(kept) == kept


def test_train_mode_times_each_config_through_its_optim_wrapper(tmp_path, capsys):
    out_json, out_md = tmp_path / 't.json', tmp_path / 't.md'
    status = bench_tool.main(['train', DEMO, IMAGENET, '--batch', '2', '--size', '96x128',
                              '--iters', '2', '--warmup', '1', '--threads', '1',
                              '--out-json', str(out_json), '--out-md', str(out_md)])
    assert status == 0
    rows = json.loads(out_json.read_text())['rows']
    assert [(r['config'], r['precision'], r['input'], r['batch']) for r in rows] == \
        [(DEMO, 'fp32', '96x128', 2), (IMAGENET, 'fp32', '96x128', 2)]
    for r in rows:
        assert r['device'] == 'cpu, 1 threads' and r['peak_memory_mib'] is None
        assert r['images_per_s'] == pytest.approx(2 / r['seconds_per_iter'], rel=0.01)
    out = capsys.readouterr().out
    assert '[benchmark]   round 2/2' in out and 'paramwise_options' not in out
    header, table = out_md.read_text().split('\n\n', 1)
    assert table.splitlines()[2].startswith(f'| {DEMO} | fp32 | cpu, 1 threads |')
    assert header.startswith('- command: `python ') and '\n- GPU:' not in header


def test_a_training_step_changes_the_weights_as_the_runner_would():
    cfg = load_config(DEMO)
    model = tb.build_randomly_initialised(cfg.model).train()
    wrapper = tb.benchmark_optim_wrapper(model, cfg.optim_wrapper, amp=False)
    assert wrapper.optimizer.param_groups[0]['lr'] == pytest.approx(0.02 * 1e-3)
    before = model.backbone.conv1.conv.weight.detach().clone()
    model.train_step(tb.random_batch(cfg, 2, 64, 64), wrapper)
    assert not model.backbone.conv1.conv.weight.detach().equal(before)


@pytest.mark.parametrize('args, message', [
    (['train', DEMO, '--amp'],
     "error: --amp needs --device cuda: MMEngine's AmpOptimWrapper runs on GPUs only"),
    (['train', DEMO, '--size', '12x'],
     "error: --size takes HEIGHTxWIDTH (600x800) or one side (256), got '12x'"),
    (['train', DEMO, '--device', 'tpu'], "error: --device takes 'cpu' or 'cuda[:N]', got 'tpu'"),
    (['loader', IMAGENET], 'error: give either --data-root (ImageNet with train/) or --synthetic N'),
    (['loader', DEMO, '--synthetic', '2'],
     f'error: {DEMO} is not an ImageNet pretraining config (model type FasterRCNN, expected '
     'ShuffleNetClassifier)'),
])
def test_bad_benchmark_options_give_one_line_and_status_2(args, message, capsys):
    assert bench_tool.main(args) == 2
    assert capsys.readouterr().err.strip() == message


def test_loader_mode_decodes_and_augments_the_imagenet_pipeline(tmp_path):
    out_json = tmp_path / 'l.json'
    status = bench_tool.main(['loader', IMAGENET, '--synthetic', '6', '--workers', '0', '1',
                              '--images', '12', '--out-json', str(out_json)])
    assert status == 0
    rows = json.loads(out_json.read_text())['rows']
    assert [(r['workers'], r['images'], r['data']) for r in rows] == \
        [(0, 12, 'synthetic JPEGs'), (1, 12, 'synthetic JPEGs')]
    assert all(r['images_per_s'] > 0 for r in rows)


def test_the_synthetic_folder_has_imagenet_s_layout_and_size(tmp_path):
    import cv2
    tb.write_jpeg_folder(str(tmp_path), 4, num_classes=2)
    files = sorted(p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob('*.JPEG'))
    assert files == ['n00000000/000000.JPEG', 'n00000000/000002.JPEG', 'n00000001/000001.JPEG',
                     'n00000001/000003.JPEG']
    assert cv2.imread(str(tmp_path / files[0])).shape == (375, 500, 3)
