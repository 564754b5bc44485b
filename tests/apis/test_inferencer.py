"""MMDetection's own inference API takes every detection config of this project."""
import numpy as np
import pytest
from mmengine.config import Config

from ..helpers import REPO

CONFIGS = sorted(p.name for p in (REPO / 'configs').glob('*.py'))


@pytest.mark.slow
@pytest.mark.parametrize('name', CONFIGS)
def test_det_inferencer_runs_every_config(name, tmp_path):
    from mmdet.apis import DetInferencer
    cfg = Config.fromfile(str(REPO / 'configs' / name))
    if cfg.model.get('test_cfg', {}).get('rpn'):
        cfg.model.test_cfg.rpn.max_per_img = 20  # CPU test speed; the pipeline is the config's
    inferencer = DetInferencer(model=cfg, weights=None, device='cpu', show_progress=False)
    image = np.random.default_rng(0).integers(0, 256, (120, 160, 3), dtype=np.uint8)
    result = inferencer(image, return_vis=True, no_save_pred=True)
    prediction = result['predictions'][0]
    assert len(prediction['labels']) == len(prediction['scores']) == len(prediction['bboxes'])
    assert result['visualization'][0].shape == image.shape
