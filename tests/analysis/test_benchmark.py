import json
import types

import pytest
import torch

from shufflenet_det.analysis import benchmark
from shufflenet_det.analysis.benchmark import ABLATION_STEPS, TORCHVISION_320, torchvision_detector

from ..helpers import REPO, load_tool

bench_tool = load_tool('benchmark')



@pytest.mark.parametrize('proposals, expected', [(None, 150), (40, 40)])
def test_the_torchvision_peer_keeps_the_requested_proposals(proposals, expected):
    model = torchvision_detector(TORCHVISION_320, proposals)
    assert model.rpn._pre_nms_top_n['testing'] == model.rpn._post_nms_top_n['testing'] == expected
    seen = []
    model.roi_heads.box_roi_pool.register_forward_hook(
        lambda module, args, out: seen.append(len(args[1][0])))
    with torch.no_grad():
        model([torch.rand(3, 64, 64)])
    assert seen == [expected]  # NMS is lifted, so random weights keep every proposal



@pytest.mark.slow
def test_backbone_mode_reports_every_row_with_ratios_and_efficiency(tmp_path, capsys,
                                                                    monkeypatch):
    out_json, out_md = tmp_path / 'b.json', tmp_path / 'b.md'
    argv = ['backbone', '--shufflenet', '0.5x_g3', '--peers', 'mobilenet_v2', '--sizes', '64x96',
            '--threads', '1', '--repeats', '3', '--warmup', '1', '--ablation', '--onnx', '--int8',
            '--out-json', str(out_json), '--out-md', str(out_md)]
    monkeypatch.setattr('sys.argv', ['tools/benchmark.py', *argv])  # as the shell would run it
    bench_tool.main(argv)
    report = json.loads(out_json.read_text())
    rows = report['rows']
    variants = [(r['model'], r['variant']) for r in rows]
    assert variants[:3] == [('mobilenet_v2', 'torchvision'), ('mobilenet_v2', 'onnxruntime'),
                            ('mobilenet_v2', 'onnxruntime int8')]
    assert [v for m, v in variants if m == 'shufflenet_v1_0.5x_g3'] == \
        ['plain', 'onnxruntime', 'onnxruntime int8', *ABLATION_STEPS[1:]]
    by = {(r['model'], r['variant']): r for r in rows}
    peer = by['mobilenet_v2', 'torchvision']
    assert peer['ratio'] == 1.0 and peer['input'] == '1x3x64x96' and peer['threads'] == 1
    # Like against like: eager with eager, ONNX Runtime with ONNX Runtime, int8 with fp32.
    expected = {'torchvision': ('mobilenet_v2', 'torchvision'),
                'onnxruntime': ('mobilenet_v2', 'onnxruntime')}
    for r in rows:
        assert r['p25_ms'] <= r['median_ms'] <= r['p75_ms']
        assert r['mflops'] > 0 and r['matmul_gflops_per_s'] > 0
        # The matmul ceiling is PyTorch's: only PyTorch rows are put against it.
        assert (r['variant'].startswith('onnxruntime')) == ('pct_of_torch_matmul' not in r)
        reference = expected.get(r['variant'], ('mobilenet_v2', 'torchvision'))
        if r['variant'] == 'onnxruntime int8':
            reference = (r['model'], 'onnxruntime')
        assert (r['reference'], r['reference_variant']) == reference
        assert r['ratio'] == pytest.approx(r['median_ms'] / by[reference]['median_ms'], rel=0.01)
    # The provenance first, in the Markdown and in the JSON alike.
    header, table = out_md.read_text().split('\n\n', 1)
    assert table.startswith('| model | variant | input | threads |')
    assert '| % of PyTorch matmul rate |' in table.splitlines()[0]
    provenance = report['provenance']
    assert provenance['command'] == 'python tools/benchmark.py ' + ' '.join(argv)
    assert provenance['versions']['torch'] == torch.__version__
    assert provenance['cpu'].endswith(' cores') and provenance['commit']
    assert header.splitlines() == [
        f'- command: `{provenance["command"]}`', f'- commit: {provenance["commit"]}',
        f'- date: {provenance["date"]}', f'- CPU: {provenance["cpu"]}',
        '- versions: ' + ', '.join(f'{k} {v}' for k, v in provenance['versions'].items())]
    assert '[benchmark] 1 thread(s): measuring the dense matmul ceiling' in capsys.readouterr().out


@pytest.mark.slow
def test_detector_mode_times_configs_next_to_torchvision(tmp_path):
    out_json = tmp_path / 'd.json'
    bench_tool.main(['detector', str(REPO / 'configs/faster_rcnn_shufflenet1x_300_coco.py'),
                     '--deploy', '--threads', '1', '--repeats', '1', '--warmup', '0',
                     '--out-json', str(out_json)])
    rows = json.loads(out_json.read_text())['rows']
    assert [(r['model'], r['variant']) for r in rows] == [
        ('fasterrcnn_mobilenet_v3_large_320_fpn', 'torchvision'),
        ('faster_rcnn_shufflenet1x_300_coco', 'plain'),
        ('faster_rcnn_shufflenet1x_300_coco', 'deploy')]
    assert rows[1]['input'] == '300x400' and rows[1]['mflops'] > 1000
    assert rows[0]['input'] == '300x400'
    assert rows[1]['reference'] == 'fasterrcnn_mobilenet_v3_large_320_fpn' and rows[1]['ratio'] > 0
    assert rows[1]['reference_variant'] == 'torchvision'


@pytest.mark.slow
def test_detector_mode_names_the_peer_s_proposal_count_and_compares_at_the_config_s(tmp_path):
    out_json = tmp_path / 'd.json'
    bench_tool.main(['detector', str(REPO / 'configs/faster_rcnn_shufflenet_demo.py'),
                     '--peer-proposals', '50', '100', '--short-side', '128', '--threads', '1',
                     '--repeats', '1', '--warmup', '0', '--out-json', str(out_json)])
    rows = json.loads(out_json.read_text())['rows']
    peer = 'fasterrcnn_mobilenet_v3_large_320_fpn'
    assert [(r['model'], r['variant']) for r in rows] == [
        (f'{peer} (50 proposals)', 'torchvision'), (f'{peer} (100 proposals)', 'torchvision'),
        ('faster_rcnn_shufflenet_demo', 'plain')]
    # The demo config keeps 100 proposals (test_cfg.rpn.max_per_img).
    assert rows[2]['reference'] == f'{peer} (100 proposals)'


@pytest.mark.slow
def test_detector_mode_adds_onnxruntime_rows_on_both_sides(tmp_path):
    out_json = tmp_path / 'd.json'
    bench_tool.main(['detector', str(REPO / 'configs/faster_rcnn_shufflenet_demo.py'),
                     '--onnx', '--int8', '--threads', '1', '--repeats', '1', '--warmup', '0',
                     '--short-side', '128', '--out-json', str(out_json)])
    rows = {(r['model'], r['variant']): r for r in json.loads(out_json.read_text())['rows']}
    tv, ours = 'fasterrcnn_mobilenet_v3_large_320_fpn', 'faster_rcnn_shufflenet_demo'
    assert set(rows) == {(tv, 'torchvision'), (tv, 'onnxruntime'), (ours, 'plain'),
                         (ours, 'onnxruntime'), (ours, 'onnxruntime int8')}
    assert (rows[ours, 'onnxruntime']['reference'],
            rows[ours, 'onnxruntime']['reference_variant']) == (tv, 'onnxruntime')
    int8 = rows[ours, 'onnxruntime int8']
    assert (int8['reference'], int8['reference_variant']) == (ours, 'onnxruntime')
    assert int8['ratio'] == pytest.approx(
        int8['median_ms'] / rows[ours, 'onnxruntime']['median_ms'], rel=0.01)


@pytest.mark.parametrize('args, message', [
    (['--device', 'cuda:0', '--onnx'] if torch.cuda.is_available() else ['--device', 'cuda'],
     "error: --onnx times ONNX Runtime on the CPU; leave out --device cuda:0 for those rows"
     if torch.cuda.is_available() else 'error: --device cuda: torch sees no CUDA GPU here'),
    (['--device', 'gpu'], "error: --device takes 'cpu' or 'cuda[:N]', got 'gpu'"),
    (['--peer-proposals', '300', '0'], 'error: --peer-proposals 0: must be 1 or more'),
])
def test_detector_mode_refuses_a_device_it_cannot_time(args, message, capsys):
    config = str(REPO / 'configs/faster_rcnn_shufflenet_demo.py')
    assert bench_tool.main(['detector', config, *args]) == 2
    assert capsys.readouterr().err.strip() == message


def test_runs_report_the_median_of_each_run_s_median(tmp_path, monkeypatch):
    """With runs=3 the candidates are built anew and timed three times; the row gives the
    median of the runs' medians and each of them (10, 30 and 20 ms here, from a clock that
    each call of the candidate advances by its build's step)."""
    clock = types.SimpleNamespace(now=0.0)
    monkeypatch.setattr(benchmark, 'time', types.SimpleNamespace(perf_counter=lambda: clock.now))
    steps, built = iter([0.010, 0.030, 0.020]), []

    def build(workdir):
        step = next(steps)
        built.append(step)
        return [benchmark.Candidate('toy', 'plain', '1x1',
                                    lambda: setattr(clock, 'now', clock.now + step))]

    rows = benchmark.run([build], [1], 0, 4, str(tmp_path / 'r.md'), str(tmp_path / 'r.json'),
                         progress=lambda m: None, runs=3)
    assert built == [0.010, 0.030, 0.020]
    toy = next(r for r in rows if r['model'] == 'toy')
    assert toy['run_medians_ms'] == [10.0, 30.0, 20.0] and toy['median_ms'] == 20.0
    assert json.loads((tmp_path / 'r.json').read_text())['rows'][-1]['run_medians_ms'] == [
        10.0, 30.0, 20.0]
    assert '| 20.0 (10.0-30.0; 10.0, 30.0, 20.0) |' in (tmp_path / 'r.md').read_text()
