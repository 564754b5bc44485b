"""MMDetection's DetInferencer loads image files strictly: a bad file is named."""
import numpy as np
import pytest
from mmdet.apis import DetInferencer

from shufflenet_det.datasets.image_loading import StrictInferencerLoader
from shufflenet_det.images import ImageFileError

from ..helpers import REPO

DEMO = str(REPO / 'configs/faster_rcnn_shufflenet_demo.py')


@pytest.fixture(scope='module')
def inferencer():
    return DetInferencer(model=DEMO, weights=None, device='cpu', show_progress=False)


def test_the_inferencer_builds_the_strict_loader(inferencer):
    assert isinstance(inferencer.pipeline.transforms[0], StrictInferencerLoader)


def test_an_empty_image_file_is_named(inferencer, tmp_path):
    empty = tmp_path / 'empty.jpg'
    empty.write_bytes(b'')
    with pytest.raises(ImageFileError, match=r'empty\.jpg.*empty \(0 bytes\)'):
        inferencer(str(empty))


def test_arrays_and_good_files_still_load(inferencer, tmp_path):
    import cv2
    image = np.full((64, 96, 3), 127, np.uint8)
    cv2.imwrite(str(tmp_path / 'grey.png'), image)
    for inputs in (image, str(tmp_path / 'grey.png')):
        predictions = inferencer(inputs, return_datasamples=True)['predictions']
        assert predictions[0].metainfo['ori_shape'] == (64, 96)
