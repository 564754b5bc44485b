"""What an exported detector records about itself, and the check that a file is one.

``tools/export_onnx.py CONFIG CHECKPOINT`` writes into the file's
``metadata_props`` everything a runtime needs besides the graph: the format, the
input and output conventions, the settings the graph was built from, the class
names and the config's test pipeline. :func:`read_detector_metadata` reads them
back, and refuses, with one message naming the file, anything that is not such a
detector: a missing or empty file, a folder, a file protobuf cannot parse (a
truncated download, a ``.pth`` renamed), or an ONNX model without this metadata
(a backbone or classifier export).
"""
import ast
import json
import os
from typing import Optional

from torch import nn

from ..errors import InputError, InputFileNotFoundError

INPUT_NAME = 'image'
OUTPUT_NAMES = ('boxes', 'scores', 'labels')
PROPOSAL_NAMES = ('proposals', 'proposal_scores')
#: The value of ``META_FORMAT`` this version writes and reads.
DETECTOR_FORMAT = 'faster_rcnn_detections/1'
META_FORMAT = 'shufflenet_det.format'
META_SETTINGS = 'shufflenet_det.settings'
META_TEST_PIPELINE = 'shufflenet_det.test_pipeline'
META_CLASSES = 'shufflenet_det.classes'
EXPORTED_BY = 'tools/export_onnx.py CONFIG CHECKPOINT'


class DetectorFileError(InputError, ValueError):
    """A file given as an exported detector that is not one (or not readable as one)."""


def test_pipeline_of(model: nn.Module) -> Optional[list]:
    """The config's test pipeline, when the model carries its config (``init_detector``)."""
    from mmengine.config import ConfigDict
    try:
        pipeline = model.cfg.test_dataloader.dataset.pipeline
    except AttributeError:
        return None
    return [step.to_dict() if isinstance(step, ConfigDict) else dict(step) for step in pipeline]


def detector_metadata(model: nn.Module, graph: nn.Module, outputs: list) -> dict:
    """The ``metadata_props`` of an exported detector: what a runtime needs to use it.

    Args:
        model (nn.Module): The exported detector (its classes and config, if it has them).
        graph (FasterRCNNGraph): Its graph (``settings()`` and ``layout``).
        outputs (list): The graph's output names.
    """
    metadata = {
        META_FORMAT: DETECTOR_FORMAT,
        'shufflenet_det.input': json.dumps(dict(
            name=INPUT_NAME, dtype='float32', shape=[1, 3, 'height', 'width'],
            channel_order='BGR', value_range=[0, 255],
            convention='the image after the test pipeline Resize; not normalised, not padded '
                       '(the graph normalises and pads)')),
        'shufflenet_det.outputs': json.dumps(dict(
            boxes='float32 [K, 4] x1 y1 x2 y2 in input-image pixels (predict rescale=False); '
                  'divide by the Resize scale factor for the original image',
            scores='float32 [K], best first', labels='int64 [K], class index',
            **({'proposals': 'float32 [P, 4] RPN proposals',
                'proposal_scores': 'float32 [P]'} if len(outputs) > 3 else {}))),
        META_SETTINGS: json.dumps(graph.settings()),
        'shufflenet_det.detector': type(model).__name__,
        'shufflenet_det.layout': graph.layout,
    }
    classes = (getattr(model, 'dataset_meta', None) or {}).get('classes')
    if classes is not None:
        metadata[META_CLASSES] = json.dumps(list(classes))
    pipeline = test_pipeline_of(model)
    if pipeline is not None:
        # A Python literal: mmcv's Resize needs its scale as a tuple, which JSON would lose.
        metadata[META_TEST_PIPELINE] = repr(pipeline)
    return metadata


def _parse_onnx(path: str):
    """``onnx.load`` of ``path`` without external data, its failures as DetectorFileError."""
    import onnx
    from google.protobuf.message import DecodeError
    if os.path.isdir(path):
        raise DetectorFileError(f'{path} is a folder; expected an .onnx file from {EXPORTED_BY}')
    if not os.path.isfile(path):
        raise InputFileNotFoundError(f'ONNX file not found: {path}')
    if os.path.getsize(path) == 0:
        raise DetectorFileError(f'{path} is empty (0 bytes); expected an .onnx file from '
                                f'{EXPORTED_BY}')
    try:
        return onnx.load(path, load_external_data=False)
    except DecodeError as exc:
        with open(path, 'rb') as f:
            zipped = f.read(4) == b'PK\x03\x04'  # torch.save's format
        raise DetectorFileError(
            f'{path} is not an ONNX file, or is truncated (protobuf: {exc})'
            f'{"; it is a zip archive: a PyTorch checkpoint?" if zipped else ""}; expected an '
            f'.onnx file from {EXPORTED_BY}') from exc


def _what_it_is(proto) -> str:
    """A short description of an ONNX model that is not an exported detector."""
    if not proto.graph.node:
        return 'it holds no ONNX graph (not an ONNX file, or truncated)'
    inputs = [i.name for i in proto.graph.input]
    outputs = [o.name for o in proto.graph.output]
    guess = ': a backbone or classifier export?' if inputs[:1] == ['input'] else ''
    return f'it is an ONNX model with inputs {inputs} and outputs {outputs}{guess}'


def read_detector_metadata(path: str | os.PathLike) -> dict[str, str]:
    """The ``metadata_props`` of the exported detector at ``path``, as a dict.

    Raises:
        InputFileNotFoundError: ``path`` does not exist.
        DetectorFileError: ``path`` is a folder, empty, not an ONNX file (or truncated),
            or an ONNX model that this project did not export as a detector.
    """
    path = os.fspath(path)
    proto = _parse_onnx(path)
    meta = {p.key: p.value for p in proto.metadata_props}
    recorded = meta.get(META_FORMAT)
    if recorded is None:
        raise DetectorFileError(f'{path} is not a detector exported by {EXPORTED_BY} (no '
                                f'{META_FORMAT} in its metadata); {_what_it_is(proto)}')
    if recorded != DETECTOR_FORMAT:
        raise DetectorFileError(f'{path} records {META_FORMAT} {recorded!r}; this version '
                                f'reads {DETECTOR_FORMAT!r}: export it again')
    return meta


def recorded_test_pipeline(path: str, meta: dict) -> Optional[list]:
    """The test pipeline recorded at export (None if the exported model had no config).

    Raises:
        DetectorFileError: the recorded pipeline is not a Python literal.
    """
    if META_TEST_PIPELINE not in meta:
        return None
    try:
        return ast.literal_eval(meta[META_TEST_PIPELINE])
    except (ValueError, SyntaxError) as exc:
        raise DetectorFileError(f'{path}: its recorded test pipeline cannot be read back '
                                f'({type(exc).__name__}: {exc}); pass test_pipeline') from exc


def recorded_classes(meta: dict) -> Optional[tuple]:
    """The class names recorded at export, or None."""
    return tuple(json.loads(meta[META_CLASSES])) if META_CLASSES in meta else None
