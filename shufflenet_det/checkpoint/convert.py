"""``tools/convert_checkpoint.py``: convert a ShuffleNetV1 ImageNet checkpoint, verified.

The format is told from the keys (``formats.detect_format``) and the architecture
from the shapes; a file of another architecture than the one requested is
refused before any work. An official Megvii file is converted and checked
feature by feature against the official network (``megvii``); an OpenMMLab
classifier file must load strictly and is written unchanged (``openmmlab``).
The output is written atomically, and only once every check has passed.
"""
from collections.abc import Callable
from typing import Optional

from .formats import (FORMAT_NAMES, MEGVII_FORMAT, cast_to_float32,
                      check_requested_architecture, describe_architecture, detect_format,
                      read_source, validate_requested, write_converted)
from .megvii import convert_megvii, prepare_megvii
from .openmmlab import check_openmmlab, prepare_openmmlab


def convert_file(src: str, dst: str, progress: Callable[[str], None] = print,
                 tolerance: float = 1e-4, groups: Optional[int] = None,
                 widen_factor: Optional[float] = None) -> dict:
    """Convert the checkpoint ``src`` into ``dst``, verified before it is written.

    Args:
        src (str): The checkpoint to read.
        dst (str): The file to write.
        progress (callable): Called with one message per step. Default: print.
        tolerance (float): Largest allowed feature difference from the official
            network (Megvii files). Default: 1e-4.
        groups (int, optional): The groups the caller expects; ``None`` accepts
            whatever the file holds.
        widen_factor (float, optional): The width the caller expects; ``None``
            accepts whatever the file holds.

    Returns:
        dict: the ``meta`` stored in ``dst``: ``source``, ``converted_from``,
        ``arch`` (``type``, ``groups``, ``widen_factor``, ``shuffle_order``),
        ``input_convention`` and, for Megvii files, the max difference found.

    Raises:
        InputFileNotFoundError: ``src`` does not exist.
        CheckpointFileError: ``src`` is not a readable PyTorch checkpoint.
        ConversionError: an unsupported requested architecture, a file of neither
            format, an architecture other than the requested one, or a failed check.
    """
    validate_requested(groups, widen_factor)
    state = read_source(src, progress)
    fmt = detect_format(state, src)
    state = cast_to_float32(state, src, progress)
    state, arch = prepare_megvii(state, src) if fmt == MEGVII_FORMAT else prepare_openmmlab(state)
    progress(f'{FORMAT_NAMES[fmt][1]}: ShuffleNetV1 '
             f'{describe_architecture(arch["groups"], arch["widen_factor"])} '
             f'(channels {arch["channels"]})')
    check_requested_architecture(arch, groups, widen_factor, src)
    if fmt == MEGVII_FORMAT:
        state, meta = convert_megvii(src, dst, state, arch, progress, tolerance)
    else:
        meta = check_openmmlab(src, dst, state, arch, progress)
    return write_converted(dst, state, meta, progress)
