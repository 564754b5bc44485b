"""The converter, the classifier and the detectors on two real official Megvii files.

Megvii's 0.5x g=3 and 0.5x g=8 ImageNet checkpoints (megvii-model/ShuffleNet-Series,
MIT licence) are not part of the repository. These tests run when the environment
variable ``SHUFFLENET_DET_OFFICIAL_WEIGHTS`` names a folder holding them (``.ci/run``
sets it to ``../shared/weights/megvii`` where that exists), and skip otherwise.
``test_megvii.py`` covers all eight official files on synthetic stand-ins in the
official layout.

For each file: its published sha256; ``tools/convert_checkpoint.py`` run as a user
runs it; the converted classifier's logits against the reference network
(:func:`~shufflenet_det.checkpoint.megvii.megvii_forward`, written like
the official code) run on the original file; the converted file's ``meta``; and a
0.5x detector initialised from the converted file through the strict
``ShuffleNetPretrained`` path, whose backbone then computes the official network's
features on the detector's own preprocessed input.
"""
import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from mmdet.registry import MODELS
from mmdet.testing import demo_mm_inputs
from mmengine.config import Config

from shufflenet_det.apis import check_neck_in_channels
from shufflenet_det.checkpoint import load_checkpoint_file, load_model_checkpoint
from shufflenet_det.checkpoint.convert import strip_megvii_state
from shufflenet_det.checkpoint.megvii import megvii_forward
from shufflenet_det.models import ShuffleNetV1SharedHead, shufflenet_v1_channels

from ..helpers import REPO, run

ENV = 'SHUFFLENET_DET_OFFICIAL_WEIGHTS'
FOLDER = os.environ.get(ENV)
WIDEN = 0.5
# The official files' input: BGR in 0-255, not normalised.
MEGVII_CONVENTION = dict(mean=[0.0, 0.0, 0.0], std=[1.0, 1.0, 1.0], bgr_to_rgb=False)
# Logits: both networks run the same float32 arithmetic on the same tensors; only the order
# of the sums inside the reordered grouped convolutions differs (g=3), so the logits agree to
# float32 rounding. Measured on logits of magnitude up to 5.8: 2.1e-6 (g=3), 1.1e-6 (g=8).
# 1e-4 leaves 50 times that for other CPUs' kernels; a wrong channel order, BN statistic or
# shuffle changes logits by 0.1 or more.
LOGIT_TOLERANCE = 1e-4
# Feature maps (magnitudes up to 70 at 0-255 input): the converter's own tolerance, which it
# checks on every file it writes (measured: 1.9e-5 at g=3, exactly 0 at g=8, whose weights
# keep the official order).
FEATURE_TOLERANCE = 1e-4


@dataclass(frozen=True)
class OfficialFile:
    name: str
    sha256: str  # published in the folder's README.md
    groups: int
    shuffle_order: str  # what the converter must choose


OFFICIAL_FILES = [
    OfficialFile('ShuffleNetV1_Group3_0.5x.pth.tar',
                 'da5df689f1d8f278fd1446e73f3a63aa7809206fadc6678bfd7580aad412abde', 3, 'paper'),
    OfficialFile('ShuffleNetV1_Group8_0.5x.pth.tar',
                 '324922040c0ee642ce7168f32259aca0c9e16baf6b2abade4122edff6ba58382', 8, 'megvii'),
]
pytestmark = pytest.mark.skipif(
    not FOLDER, reason=f'{ENV} is not set; set it to a folder holding the official Megvii '
                       f'files {", ".join(f.name for f in OFFICIAL_FILES)} to run these tests')

# Detector configs at 1x g=3, and their settings that hold a width of the backbone's maps.
DETECTOR_WIDTHS = {
    'faster_rcnn_shufflenet1x_fpn_coco.py': ('neck.in_channels', ),
    'faster_rcnn_shufflenet1x_coco.py': ('rpn_head.in_channels',
                                         'roi_head.bbox_roi_extractor.out_channels',
                                         'roi_head.bbox_head.in_channels'),
}


@dataclass(frozen=True)
class Converted:
    official: OfficialFile
    src: Path
    dst: Path
    printed: str


@pytest.fixture(scope='module', params=OFFICIAL_FILES, ids=[f'g{f.groups}' for f in OFFICIAL_FILES])
def converted(request, tmp_path_factory) -> Converted:
    """The official file converted by ``tools/convert_checkpoint.py``, as a user runs it."""
    official = request.param
    src = Path(FOLDER) / official.name
    assert src.is_file(), f'{ENV}={FOLDER} holds no {official.name}'
    dst = tmp_path_factory.mktemp(f'converted_g{official.groups}') / 'imagenet.pth'
    proc = run('tools/convert_checkpoint.py', str(src), str(dst),
               '--groups', str(official.groups), '--widen-factor', str(WIDEN))
    return Converted(official, src, dst, proc.stdout)


def _reference_maps(src: Path, groups: int, images: torch.Tensor) -> tuple[list, dict]:
    """The reference network's stage maps on ``images``, run on the original file's
    tensors, and those tensors (``module.`` stripped)."""
    ckpt = torch.load(src, map_location='cpu', weights_only=True)  # saved on a GPU
    state = strip_megvii_state(ckpt['state_dict'])
    with torch.no_grad():
        return megvii_forward(state, images, groups), state


def _reference_logits(src: Path, groups: int, images: torch.Tensor) -> torch.Tensor:
    """The official network's logits: the reference maps, then the official head (7x7
    average pool, ``classifier.0``)."""
    maps, state = _reference_maps(src, groups, images)
    pooled = F.avg_pool2d(maps[-1], 7).flatten(1)
    return F.linear(pooled, state['classifier.0.weight'], state.get('classifier.0.bias'))


@pytest.mark.parametrize('official', OFFICIAL_FILES, ids=[f'g{f.groups}' for f in OFFICIAL_FILES])
def test_the_file_is_the_published_one(official):
    src = Path(FOLDER) / official.name
    assert src.is_file(), f'{ENV}={FOLDER} holds no {official.name}'
    assert hashlib.sha256(src.read_bytes()).hexdigest() == official.sha256


def test_the_converter_reports_what_it_found_and_verified(converted):
    g, order = converted.official.groups, converted.official.shuffle_order
    printed = converted.printed
    assert f'official Megvii checkpoint: ShuffleNetV1 {WIDEN}x g={g} (channels ' \
           f'{shufflenet_v1_channels(g, WIDEN)})' in printed
    assert 'unit 16/16' in printed
    assert f"verifying {WIDEN}x g={g}, shuffle_order='{order}', against the official " \
           'network' in printed
    assert ('cannot change such counts' in printed) == (order == 'megvii')
    assert f'wrote {converted.dst}' in printed


def test_the_converted_meta_records_architecture_order_and_input(converted):
    g, order = converted.official.groups, converted.official.shuffle_order
    meta = torch.load(converted.dst, map_location='cpu', weights_only=True)['meta']
    assert meta['arch'] == dict(type='ShuffleNetV1', groups=g, widen_factor=WIDEN,
                                shuffle_order=order)
    assert meta['input_convention'] == MEGVII_CONVENTION
    assert meta['source'] == 'megvii-model/ShuffleNet-Series'
    assert meta['converted_from'] == str(converted.src)
    assert meta['verified_max_abs_diff'] <= FEATURE_TOLERANCE


def test_converted_classifier_logits_equal_the_official_networks(converted):
    g, order = converted.official.groups, converted.official.shuffle_order
    cfg = Config.fromfile(str(REPO / 'configs/pretrain/shufflenet0.5x_g3_imagenet.py'))
    assert cfg.model.backbone.widen_factor == WIDEN
    cfg.model.backbone.update(groups=g, shuffle_order=order)
    classifier = MODELS.build(cfg.model)
    # As tools/test.py loads it: digest, shuffle order and every tensor checked.
    load_model_checkpoint(classifier, load_checkpoint_file(converted.dst), str(converted.dst))
    classifier.eval()
    # BGR 0-255, the official input; 224 px, where the official 7x7 pool is global.
    images = torch.rand(2, 3, 224, 224, generator=torch.Generator().manual_seed(0)) * 255
    with torch.no_grad():
        logits = classifier(images)
    expected = _reference_logits(converted.src, g, images)
    assert logits.shape == expected.shape == (2, 1000)
    assert (logits - expected).abs().max().item() <= LOGIT_TOLERANCE
    assert torch.equal(logits.argmax(1), expected.argmax(1))


def _half_width(cfg: Config, official: OfficialFile, widths: tuple) -> None:
    """Turn a 1x g=3 detector config into the official file's 0.5x network.

    Each width setting holds one of the 1x g=3 channel counts; it gets the count in
    the same position of the 0.5x table (whichever maps ``out_indices`` selects).
    """
    full = shufflenet_v1_channels(3, 1.0)
    half = shufflenet_v1_channels(official.groups, WIDEN)
    for key in widths:
        *parents, leaf = key.split('.')
        node = cfg.model
        for parent in parents:
            node = node[parent]
        value = node[leaf]
        node[leaf] = ([half[full.index(v)] for v in value] if isinstance(value, (list, tuple))
                      else half[full.index(value)])
    modules = [cfg.model.backbone]
    shared_head = cfg.model.get('roi_head', {}).get('shared_head')
    if shared_head is not None:
        assert shared_head.type == 'ShuffleNetV1SharedHead'
        modules.append(shared_head)
    for module in modules:
        assert module.widen_factor == 1.0 and module.get('groups', 3) == 3
        module.update(groups=official.groups, widen_factor=WIDEN,
                      shuffle_order=official.shuffle_order)
    cfg.model.test_cfg.rpn.max_per_img = 20  # CPU test speed


@pytest.mark.parametrize('config', sorted(DETECTOR_WIDTHS))
def test_half_width_detector_initialises_strictly_and_detects(converted, config, mmlog):
    official = converted.official
    cfg = Config.fromfile(str(REPO / 'configs' / config))
    assert cfg.model.init_cfg.type == 'ShuffleNetPretrained'
    assert cfg.model.init_cfg.get('strict', True) is True
    assert cfg.model.data_preprocessor.mean == MEGVII_CONVENTION['mean']
    _half_width(cfg, official, DETECTOR_WIDTHS[config])
    cfg.model.init_cfg.checkpoint = str(converted.dst)
    check_neck_in_channels(cfg.model)  # as the tools check a config before building it
    model = MODELS.build(cfg.model)
    model.init_weights()

    loaded = _assert_every_tensor_in_place(model, converted.dst)
    assert f'loaded {loaded} tensors from {converted.dst}' in mmlog.text

    model.eval()
    data = model.data_preprocessor(demo_mm_inputs(
        batch_size=1, image_shapes=[(3, 224, 256)], num_classes=80), False)
    with torch.no_grad():
        features = model.backbone(data['inputs'])
        result = model.predict(data['inputs'], data['data_samples'])[0]
    boxes = result.pred_instances.bboxes
    assert boxes.ndim == 2 and boxes.shape[1] == 4 and torch.isfinite(boxes).all()
    assert len(result.pred_instances.scores) == len(boxes)

    # The detector's backbone is the official network on the detector's own input
    # (BGR 0-255): each returned map equals the reference network's map of its stride.
    reference, _ = _reference_maps(converted.src, official.groups, data['inputs'])
    width = data['inputs'].shape[-1]
    by_stride = {width // m.shape[-1]: m for m in reference}
    assert len(features) == len(model.backbone.out_strides)
    for feature, stride in zip(features, model.backbone.out_strides):
        expected = by_stride[stride]
        assert feature.shape == expected.shape
        assert (feature - expected).abs().max().item() <= FEATURE_TOLERANCE, stride


def _assert_every_tensor_in_place(model, converted_file: Path) -> int:
    """Every ``backbone.*`` tensor of the file is in the detector: in the backbone, and
    Stage 4 in the RoI head in the C4 layout. Returns how many."""
    state = torch.load(converted_file, map_location='cpu', weights_only=True)['state_dict']
    backbone = model.backbone
    parts = [(backbone, 'backbone.')]
    shared_head = getattr(model.roi_head, 'shared_head', None)
    if isinstance(shared_head, ShuffleNetV1SharedHead):
        parts.append((shared_head.stage4, f'backbone.layers.{backbone.num_stages}.'))
    loaded = 0
    for module, prefix in parts:
        for key, value in module.state_dict().items():
            assert torch.equal(value, state[prefix + key]), prefix + key
            loaded += 1
    assert loaded == len([k for k in state if k.startswith('backbone.')])
    return loaded
