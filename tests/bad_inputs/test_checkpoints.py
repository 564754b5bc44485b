"""Bad checkpoint inputs to the tools, as one table: each case states what the tool must do.

Every case runs the real tool in this process (``main([...])``) on an input built for it
from the shared demo detector, and checks the outcome it states: exit status 2 and one
line ``error: ...`` naming the file and what was expected, or success with the
documented log line.
"""
import argparse
import json
import os
import socket
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
import torch

from shufflenet_det.checkpoint import atomic_save, load_checkpoint_file
from shufflenet_det.checkpoint.digest import DIGEST_KEY
from shufflenet_det.engine.work_dir_lock import LOCK_NAME, _process_start

from ..checkpoint.damage import flip_tensor_bit
from ..checkpoint.test_megvii import _official_file
from ..helpers import REPO, load_tool

pytestmark = pytest.mark.slow
LOADERS = [f'{split}_dataloader.{key}' for split in ('train', 'val', 'test')
           for key in ('num_workers=0', 'persistent_workers=False')]
CLS_WEIGHT = 'roi_head.bbox_head.fc_cls.weight'


@dataclass
class World:
    """What the cases build their inputs from: the shared demo detector and a scratch folder."""
    config: str
    checkpoint: Path
    data_root: Path
    tmp: Path

    def copy(self, name: str) -> Path:
        path = self.tmp / name
        path.write_bytes(self.checkpoint.read_bytes())
        return path

    def resave(self, name: str, change: Callable[[dict], None], digest: bool = True) -> Path:
        ckpt = load_checkpoint_file(self.checkpoint)
        change(ckpt)
        path = self.tmp / name
        if digest:
            atomic_save(ckpt, path)  # a valid file (its digest recorded) of other content
        else:
            ckpt['meta'].pop(DIGEST_KEY)  # as MMDetection's own runs write them
            torch.save(ckpt, path)
        return path


# Checkpoint files --------------------------------------------------------------------------

def _missing(w):
    return w.tmp / 'missing.pth'


def _directory(w):
    (w.tmp / 'folder.pth').mkdir()
    return w.tmp / 'folder.pth'


def _empty(w):
    (w.tmp / 'empty.pth').touch()
    return w.tmp / 'empty.pth'


def _truncated(w):
    path = w.tmp / 'cut.pth'
    path.write_bytes(w.checkpoint.read_bytes()[:20000])
    return path


def _readme(w):
    return REPO / 'README.md'


def _unsafe(w):
    path = w.tmp / 'pickled_object.pth'
    torch.save({'state_dict': {}, 'meta': {'epoch': 1, 'iter': 4},
                'message_hub': argparse.Namespace()}, path)
    return path


def _flipped(w):
    path = w.copy('flipped.pth')
    flip_tensor_bit(path)
    return path


def _without_digest(w):
    return w.resave('mmdet_style.pth', lambda ckpt: None, digest=False)


def _other_config(w):
    def change(ckpt):
        state = ckpt['state_dict']
        state[CLS_WEIGHT] = torch.zeros(state[CLS_WEIGHT].shape[0] + 2, state[CLS_WEIGHT].shape[1])
        del state['roi_head.bbox_head.fc_cls.bias']
    return w.resave('other_config.pth', change)


def _weights_only(w):
    def change(ckpt):  # what converted, exported and pretrained files hold
        for key in list(ckpt):
            if key != 'state_dict':
                del ckpt[key]
    return w.resave('weights_only.pth', change)


def _megvii_fp16(w):
    _, path = _official_file(w.tmp, 3, '0.5x')
    ckpt = torch.load(path, weights_only=True)
    ckpt['state_dict'] = {k: v.half() if v.is_floating_point() else v
                          for k, v in ckpt['state_dict'].items()}
    torch.save(ckpt, path)
    return path


# Tool invocations --------------------------------------------------------------------------

def evaluate_with(make):
    return lambda w: [w.config, str(make(w)), '--work-dir', str(w.tmp / 'test_work'),
                      '--data-root', str(w.data_root), '--cfg-options', *LOADERS]


def train_with(make=None, last_checkpoint=None, lock=None, resume=True):
    """``tools/train.py [--resume [CKPT]]`` into a fresh work dir, with a ``last_checkpoint``
    file holding ``last_checkpoint(w)`` and a lock file holding ``lock`` if given."""
    def argv(w):
        work = w.tmp / 'work'
        work.mkdir()
        if last_checkpoint is not None:
            (work / 'last_checkpoint').write_bytes(last_checkpoint(w))
        if lock is not None:
            (work / LOCK_NAME).write_text(json.dumps(lock))
        resuming = ['--resume', str(make(w))] if make else ['--resume'] if resume else []
        return [w.config, '--work-dir', str(work), '--data-root', str(w.data_root), *resuming,
                '--cfg-options', *LOADERS]
    return argv


def demo_with(make):
    return lambda w: [str(next((w.data_root / 'val').iterdir())), w.config, str(make(w)),
                      '--out-file', str(w.tmp / 'drawn.png')]


def convert(make):
    return lambda w: [str(make(w)), str(w.tmp / 'converted.pth')]


def export_backbone(make):
    return lambda w: [str(make(w)), str(w.tmp / 'backbone.pth')]


LIVE_LOCK = dict(pid=os.getpid(), host=socket.gethostname(), since=0.0,
                 started=_process_start(os.getpid()), token='held')


@dataclass(frozen=True)
class Case:
    """One bad input: the tool, its arguments, the exit status and what the tool says.

    ``says`` (one part or several) is in the one ``error:`` line for status 2, in the
    output for 0; ``{tmp}`` stands for the case's scratch folder, ``{config}`` for the
    config.
    """
    id: str
    tool: str
    argv: Callable[[World], list]
    code: int
    says: str | tuple


CASES = [
    # tools/test.py CONFIG CHECKPOINT
    Case('test/missing-file', 'test', evaluate_with(_missing), 2,
         'checkpoint file not found: {tmp}/missing.pth'),
    Case('test/directory', 'test', evaluate_with(_directory), 2,
         '{tmp}/folder.pth is a directory, not a checkpoint file'),
    Case('test/empty-file', 'test', evaluate_with(_empty), 2,
         '{tmp}/empty.pth is empty (0 bytes), not a checkpoint'),
    Case('test/truncated-file', 'test', evaluate_with(_truncated), 2,
         '{tmp}/cut.pth (20000 bytes) is truncated or corrupt'),
    Case('test/readme-as-checkpoint', 'test', evaluate_with(_readme), 2,
         f"{REPO}/README.md " + '({size} bytes) is not a PyTorch checkpoint: it starts with'),
    Case('test/unsafe-pickle', 'test', evaluate_with(_unsafe), 2,
         '{tmp}/pickled_object.pth was refused: it contains an object of type '
         'argparse.Namespace'),
    Case('test/one-flipped-bit', 'test', evaluate_with(_flipped), 2,
         '{tmp}/flipped.pth is corrupt: its tensors do not match the digest recorded when it '
         'was written'),
    Case('test/checkpoint-of-another-config', 'test', evaluate_with(_other_config), 2,
         '{tmp}/other_config.pth does not match FasterRCNN; nothing was loaded.'),
    Case('test/no-digest-loads-and-says-so', 'test', evaluate_with(_without_digest), 0,
         '{tmp}/mmdet_style.pth records no tensor digest (it was written by another program, '
         'e.g. Megvii, OpenMMLab or MMDetection): its content is loaded unverified'),
    # tools/train.py --resume [CKPT]
    Case('resume/one-flipped-bit', 'train', train_with(_flipped), 2,
         '{tmp}/flipped.pth is corrupt: its tensors do not match the digest'),
    Case('resume/truncated-file', 'train', train_with(_truncated), 2,
         '{tmp}/cut.pth (20000 bytes) is truncated or corrupt'),
    Case('resume/unsafe-pickle', 'train', train_with(_unsafe), 2,
         '{tmp}/pickled_object.pth was refused: it contains an object of type '
         'argparse.Namespace'),
    Case('resume/checkpoint-of-another-config', 'train', train_with(_other_config), 2,
         ('{tmp}/other_config.pth (written by the run faster_rcnn_shufflenet_demo_',
          ') does not fit the FasterRCNN that {config} builds; nothing was loaded: 1 shape '
          f'mismatches: {CLS_WEIGHT}: checkpoint (',
          '1 missing keys: roi_head.bbox_head.fc_cls.bias',
          '--resume continues a run with the config it was started with')),
    Case('resume/weights-only-file', 'train', train_with(_weights_only), 2,
         '{tmp}/weights_only.pth is not a training checkpoint: it lacks the state_dict and '
         'the meta epoch and iter that resuming needs'),
    Case('resume/last_checkpoint-names-a-missing-file', 'train',
         train_with(last_checkpoint=lambda w: str(w.tmp / 'work/epoch_9.pth').encode()), 2,
         '{tmp}/work/last_checkpoint names {tmp}/work/epoch_9.pth, which does not exist; it '
         'should hold the path of the newest checkpoint of the run'),
    Case('resume/last_checkpoint-binary', 'train',
         train_with(last_checkpoint=lambda w: bytes(range(0, 256, 5))), 2,
         "{tmp}/work/last_checkpoint holds b'\\x00\\x05\\n\\x0f\\x14"),
    Case('resume/last_checkpoint-empty', 'train', train_with(last_checkpoint=lambda w: b'\n'),
         2, '{tmp}/work/last_checkpoint is empty; it should hold the path'),
    # tools/train.py into a work dir that another run holds
    Case('train/work-dir-locked', 'train', train_with(resume=False, lock=LIVE_LOCK), 2,
         f'{{tmp}}/work is in use by another training run: pid {os.getpid()} on host '
         f'{socket.gethostname()} since 1970-01-01 00:00:00 UTC. '),
    Case('train/work-dir-locked-on-another-host', 'train',
         train_with(resume=False, lock=dict(LIVE_LOCK, host='gpu-node-7')), 2,
         'on host gpu-node-7 since 1970-01-01 00:00:00 UTC (another host: its process cannot '
         'be checked from here)'),
    # tools/demo.py, tools/export_backbone.py, tools/convert_checkpoint.py
    Case('demo/one-flipped-bit', 'demo', demo_with(_flipped), 2,
         '{tmp}/flipped.pth is corrupt: its tensors do not match the digest'),
    Case('export_backbone/one-flipped-bit', 'export_backbone', export_backbone(_flipped), 2,
         '{tmp}/flipped.pth is corrupt: its tensors do not match the digest'),
    Case('convert/one-flipped-bit', 'convert_checkpoint', convert(_flipped), 2,
         '{tmp}/flipped.pth is corrupt: its tensors do not match the digest'),
    Case('convert/megvii-fp16-converts-as-float32', 'convert_checkpoint', convert(_megvii_fp16),
         0, ('{tmp}/snetv1_group3_0.5x.pth.tar: ', ' tensors are float16; converted to float32',
             'wrote {tmp}/converted.pth')),
]


@pytest.fixture
def no_visualizer_yet():
    """Forget the visualizer of an earlier Runner in this process: mmdet's runtime names it
    'visualizer', and MMEngine would hand that instance, with its deleted folder, to the
    next Runner."""
    from mmdet.visualization import DetLocalVisualizer
    from mmengine.visualization import Visualizer
    for cls in (Visualizer, DetLocalVisualizer):
        cls._instance_dict.pop('visualizer', None)


@pytest.fixture
def world(trained_demo_detector, tmp_path, no_visualizer_yet) -> World:
    trained = trained_demo_detector
    return World(trained.config, trained.checkpoint, trained.data_root, tmp_path)


@pytest.mark.parametrize('case', CASES, ids=[case.id for case in CASES])
def test_bad_checkpoint_input(case, world, capsys, mmlog):
    argv = case.argv(world)
    code = load_tool(case.tool).main(argv)
    out, err = capsys.readouterr()
    says = [part.replace('{tmp}', str(world.tmp)).replace('{config}', world.config).replace(
        '{size}', str((REPO / 'README.md').stat().st_size))
        for part in ((case.says, ) if isinstance(case.says, str) else case.says)]
    errors = [line for line in err.splitlines() if line.startswith('error: ')]
    if case.code == 2:
        assert code == 2, (out[-2000:], err[-2000:])
        assert len(errors) == 1 and all(part in errors[0] for part in says), err[-2000:]
        assert 'Traceback' not in err
    else:
        assert code == case.code and not errors, (out[-2000:], err[-2000:])
        assert all(part in out + mmlog.text for part in says), out[-2000:]
    assert not list(world.tmp.glob('**/.*partial*'))
