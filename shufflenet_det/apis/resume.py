"""What ``--resume`` reads, checked before the Runner loads anything.

MMEngine's Runner resumes from ``WORK_DIR/last_checkpoint`` or ``load_from`` and
loads non-strictly. Here the file it will read is fixed first (``cfg.load_from``),
read once safely with its tensor digest verified, and its tensors are compared
with the model the config builds, so that a damaged file, garbage in
``last_checkpoint`` or a checkpoint of another config stops the run with one
line instead of a partial load.
"""
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Optional

from mmengine.config import Config
from mmengine.runner import Runner

from ..checkpoint import CheckpointFileError, load_checkpoint_file
from ..checkpoint.model_match import check_checkpoint_fits_model, state_shapes
from ..engine.checkpointing import read_last_checkpoint


@dataclass
class ResumeCheckpoint:
    """The checkpoint a run resumes from: its path, tensor shapes and ``meta``."""
    path: str
    shapes: dict
    meta: dict


def read_resume_checkpoint(cfg: Config) -> Optional[ResumeCheckpoint]:
    """Fix and check the checkpoint a ``resume=True`` run will read.

    ``cfg.load_from`` is set to the file ``WORK_DIR/last_checkpoint`` names unless a
    checkpoint was given, so that the Runner resumes from the file checked here.

    Returns:
        ResumeCheckpoint or None: None if the run does not resume, resumes from a URL,
        or (auto-resume) the work dir holds no ``last_checkpoint`` (a fresh start, as
        in MMEngine).

    Raises:
        CheckpointFileError: garbage in ``last_checkpoint``; a missing, damaged or unsafe
            checkpoint; or one without the ``meta`` epoch and iteration a resume needs.
    """
    if not cfg.get('resume'):
        return None
    if not cfg.get('load_from'):
        cfg.load_from = read_last_checkpoint(cfg.work_dir)
    path = cfg.load_from
    if not path or '://' in str(path):
        return None
    ckpt = load_checkpoint_file(path)
    state, meta = ckpt.get('state_dict'), ckpt.get('meta')
    if not isinstance(state, Mapping) or not isinstance(meta, Mapping) \
            or not {'epoch', 'iter'} <= set(meta):
        raise CheckpointFileError(
            f'{path} is not a training checkpoint: it lacks the state_dict and the meta epoch '
            'and iter that resuming needs (converted, exported and pretrained files hold '
            'weights only). To start a new run from its weights, set load_from instead')
    return ResumeCheckpoint(str(path), state_shapes(state), dict(meta))


def check_resume_fits(runner: Runner, resumed: ResumeCheckpoint, config: str) -> None:
    """Refuse a resume checkpoint whose tensors do not fit ``runner``'s model exactly.

    Raises:
        CheckpointMismatchError: counting and naming the first mismatches.
    """
    model = getattr(runner.model, 'module', runner.model)
    check_checkpoint_fits_model(model, resumed.shapes, resumed.path, config, resumed.meta)
