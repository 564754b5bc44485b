"""The project's DetInferencer loads image files strictly (a bad file is named); MMDetection's own
DetInferencer keeps mmdet's loader, whatever this package registers."""
import numpy as np
import pytest
from mmdet.apis import DetInferencer
from mmdet.datasets.transforms import InferencerLoader

from shufflenet_det.apis import StrictDetInferencer
from shufflenet_det.datasets.image_loading import StrictInferencerLoader, StrictLoadImageFromFile
from shufflenet_det.images import ImageFileError

from ..helpers import REPO

DEMO = str(REPO / 'configs/faster_rcnn_shufflenet_demo.py')


@pytest.fixture(scope='module')
def inferencer():
    return StrictDetInferencer(model=DEMO, weights=None, device='cpu', show_progress=False)


def test_the_inferencer_builds_the_strict_loader(inferencer):
    loader = inferencer.pipeline.transforms[0]
    assert type(loader) is StrictInferencerLoader
    assert type(loader.from_file) is StrictLoadImageFromFile


def test_mmdets_inferencer_keeps_mmdets_loader():
    plain = DetInferencer(model=DEMO, weights=None, device='cpu', show_progress=False)
    assert type(plain.pipeline.transforms[0]) is InferencerLoader


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
