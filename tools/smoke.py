"""Smoke run of the backbone: build each official size, run a batch, print shapes and speed.

    python tools/smoke.py
"""
import time

import torch
from mmdet.registry import MODELS
from mmengine.registry import init_default_scope

import shufflenet_det  # noqa: F401  (registers the models)
from shufflenet_det.analysis import classifier_complexity


def main() -> None:
    init_default_scope('mmdet')
    torch.manual_seed(0)
    x = torch.randn(1, 3, 224, 224)
    for widen in (0.5, 1.0, 1.5, 2.0):
        cfg = dict(type='ShuffleNetV1', groups=3, widen_factor=widen, out_indices=(0, 1, 2, 3))
        model = MODELS.build(cfg)
        model.init_weights()
        model.eval()
        with torch.no_grad():
            model(x)
            start = time.perf_counter()
            outs = model(x)
            ms = 1000 * (time.perf_counter() - start)
        shapes = ', '.join('x'.join(map(str, o.shape[1:])) for o in outs)
        mflops = classifier_complexity(3, widen)['flops'] / 1e6
        print(f'ShuffleNetV1 {widen}x g=3: {shapes} | {mflops:.0f} MFLOPs | {ms:.1f} ms on CPU')


if __name__ == '__main__':
    main()
