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
from pathlib import Path

import pytest
import torch

from shufflenet_det.checkpoint import DIGEST_KEY, atomic_save, load_checkpoint_file
from shufflenet_det.engine.work_dir_lock import LOCK_NAME, _process_start

from ..checkpoint.damage import flip_tensor_bit
from ..checkpoint.test_megvii import _official_file
from ..helpers import LOADERS, REPO
from .harness import Case, check, table

pytestmark = pytest.mark.slow
CLS_WEIGHT = 'roi_head.bbox_head.fc_cls.weight'


def _copy(p: dict, name: str) -> Path:
    path = p['tmp'] / name
    path.write_bytes(p['checkpoint'].read_bytes())
    return path


def _resave(p: dict, name: str, change, digest: bool = True) -> Path:
    ckpt = load_checkpoint_file(p['checkpoint'])
    change(ckpt)
    path = p['tmp'] / name
    if digest:
        atomic_save(ckpt, path)  # a valid file (its digest recorded) of other content
    else:
        ckpt['meta'].pop(DIGEST_KEY)  # as MMDetection's own runs write them
        torch.save(ckpt, path)
    return path


# Checkpoint files --------------------------------------------------------------------------

def _missing(p):
    return p['tmp'] / 'missing.pth'


def _directory(p):
    (p['tmp'] / 'folder.pth').mkdir()
    return p['tmp'] / 'folder.pth'


def _empty(p):
    (p['tmp'] / 'empty.pth').touch()
    return p['tmp'] / 'empty.pth'


def _truncated(p):
    path = p['tmp'] / 'cut.pth'
    path.write_bytes(p['checkpoint'].read_bytes()[:20000])
    return path


def _readme(p):
    return REPO / 'README.md'


def _unsafe(p):
    path = p['tmp'] / 'pickled_object.pth'
    torch.save({'state_dict': {}, 'meta': {'epoch': 1, 'iter': 4},
                'message_hub': argparse.Namespace()}, path)
    return path


def _flipped(p):
    path = _copy(p, 'flipped.pth')
    flip_tensor_bit(path)
    return path


def _without_digest(p):
    return _resave(p, 'mmdet_style.pth', lambda ckpt: None, digest=False)


def _other_config(p):
    def change(ckpt):
        state = ckpt['state_dict']
        state[CLS_WEIGHT] = torch.zeros(state[CLS_WEIGHT].shape[0] + 2, state[CLS_WEIGHT].shape[1])
        del state['roi_head.bbox_head.fc_cls.bias']
    return _resave(p, 'other_config.pth', change)


def _weights_only(p):
    def change(ckpt):  # what converted, exported and pretrained files hold
        for key in list(ckpt):
            if key != 'state_dict':
                del ckpt[key]
    return _resave(p, 'weights_only.pth', change)


def _megvii_fp16(p):
    _, path = _official_file(p['tmp'], 3, '0.5x')
    ckpt = torch.load(path, weights_only=True)
    ckpt['state_dict'] = {k: v.half() if v.is_floating_point() else v
                          for k, v in ckpt['state_dict'].items()}
    torch.save(ckpt, path)
    return path


# Tool invocations: each makes its input and returns the tool's arguments -------------------

def evaluate_with(make):
    return lambda p: ['{config}', str(make(p)), '--work-dir', '{tmp}/test_work',
                      '--data-root', '{data_root}', '--cfg-options', *LOADERS]


def train_with(make=None, last_checkpoint=None, lock=None, resume=True):
    """``tools/train.py [--resume [CKPT]]`` into a fresh work dir, with a ``last_checkpoint``
    file holding ``last_checkpoint(p)`` and a lock file holding ``lock`` if given."""
    def args(p):
        work = p['tmp'] / 'work'
        work.mkdir()
        if last_checkpoint is not None:
            (work / 'last_checkpoint').write_bytes(last_checkpoint(p))
        if lock is not None:
            (work / LOCK_NAME).write_text(json.dumps(lock))
        resuming = ['--resume', str(make(p))] if make else ['--resume'] if resume else []
        return ['{config}', '--work-dir', str(work), '--data-root', '{data_root}', *resuming,
                '--cfg-options', *LOADERS]
    return args


def demo_with(make):
    return lambda p: [str(next((p['data_root'] / 'val').iterdir())), '{config}', str(make(p)),
                      '--out-file', '{tmp}/drawn.png']


def src_dst(make, dst):
    return lambda p: [str(make(p)), f'{{tmp}}/{dst}']


LIVE_LOCK = dict(pid=os.getpid(), host=socket.gethostname(), since=0.0,
                 started=_process_start(os.getpid()), token='held')
CORRUPT = '{tmp}/flipped.pth is corrupt: its tensors do not match the digest'
TRUNCATED = '{tmp}/cut.pth (20000 bytes) is truncated or corrupt'
UNSAFE = '{tmp}/pickled_object.pth was refused: it contains an object of type argparse.Namespace'

# ``{tmp}``: the case's scratch folder; ``{config}``: the demo config; ``{size}``: README.md's.
CASES = [
    # tools/test.py CONFIG CHECKPOINT
    Case('test/missing-file', 'test', evaluate_with(_missing),
         says='checkpoint file not found: {tmp}/missing.pth'),
    Case('test/directory', 'test', evaluate_with(_directory),
         says='{tmp}/folder.pth is a directory, not a checkpoint file'),
    Case('test/empty-file', 'test', evaluate_with(_empty),
         says='{tmp}/empty.pth is empty (0 bytes), not a checkpoint'),
    Case('test/truncated-file', 'test', evaluate_with(_truncated), says=TRUNCATED),
    Case('test/readme-as-checkpoint', 'test', evaluate_with(_readme),
         says=f'{REPO}/README.md ' + '({size} bytes) is not a PyTorch checkpoint: it starts with'),
    Case('test/unsafe-pickle', 'test', evaluate_with(_unsafe), says=UNSAFE),
    Case('test/one-flipped-bit', 'test', evaluate_with(_flipped),
         says=CORRUPT + ' recorded when it was written'),
    Case('test/checkpoint-of-another-config', 'test', evaluate_with(_other_config),
         says='{tmp}/other_config.pth does not match FasterRCNN; nothing was loaded.'),
    Case('test/no-digest-loads-and-says-so', 'test', evaluate_with(_without_digest), 0,
         '{tmp}/mmdet_style.pth records no tensor digest (it was written by another program, '
         'e.g. Megvii, OpenMMLab or MMDetection): its content is loaded unverified'),
    # tools/train.py --resume [CKPT]
    Case('resume/one-flipped-bit', 'train', train_with(_flipped), says=CORRUPT),
    Case('resume/truncated-file', 'train', train_with(_truncated), says=TRUNCATED),
    Case('resume/unsafe-pickle', 'train', train_with(_unsafe), says=UNSAFE),
    Case('resume/checkpoint-of-another-config', 'train', train_with(_other_config), says=(
        '{tmp}/other_config.pth (written by the run faster_rcnn_shufflenet_demo_',
        ') does not fit the FasterRCNN that {config} builds; nothing was loaded: 1 shape '
        f'mismatches: {CLS_WEIGHT}: checkpoint (',
        '1 missing keys: roi_head.bbox_head.fc_cls.bias',
        '--resume continues a run with the config it was started with')),
    Case('resume/weights-only-file', 'train', train_with(_weights_only),
         says='{tmp}/weights_only.pth is not a training checkpoint: it lacks the state_dict and '
              'the meta epoch and iter that resuming needs'),
    Case('resume/last_checkpoint-names-a-missing-file', 'train',
         train_with(last_checkpoint=lambda p: str(p['tmp'] / 'work/epoch_9.pth').encode()),
         says='{tmp}/work/last_checkpoint names {tmp}/work/epoch_9.pth, which does not exist; '
              'it should hold the path of the newest checkpoint of the run'),
    Case('resume/last_checkpoint-binary', 'train',
         train_with(last_checkpoint=lambda p: bytes(range(0, 256, 5))),
         says="{tmp}/work/last_checkpoint holds b'\\x00\\x05\\n\\x0f\\x14"),
    Case('resume/last_checkpoint-empty', 'train', train_with(last_checkpoint=lambda p: b'\n'),
         says='{tmp}/work/last_checkpoint is empty; it should hold the path'),
    # tools/train.py into a work dir that another run holds
    Case('train/work-dir-locked', 'train', train_with(resume=False, lock=LIVE_LOCK),
         says=f'{{tmp}}/work is in use by another training run: pid {os.getpid()} on host '
              f'{socket.gethostname()} since 1970-01-01 00:00:00 UTC. '),
    Case('train/work-dir-locked-on-another-host', 'train',
         train_with(resume=False, lock=dict(LIVE_LOCK, host='gpu-node-7')),
         says='on host gpu-node-7 since 1970-01-01 00:00:00 UTC (another host: its process '
              'cannot be checked from here)'),
    # tools/demo.py, tools/export_backbone.py, tools/convert_checkpoint.py
    Case('demo/one-flipped-bit', 'demo', demo_with(_flipped), says=CORRUPT),
    Case('export_backbone/one-flipped-bit', 'export_backbone',
         src_dst(_flipped, 'backbone.pth'), says=CORRUPT),
    Case('convert/one-flipped-bit', 'convert_checkpoint', src_dst(_flipped, 'converted.pth'),
         says=CORRUPT),
    Case('convert/megvii-fp16-converts-as-float32', 'convert_checkpoint',
         src_dst(_megvii_fp16, 'converted.pth'), 0,
         ('{tmp}/snetv1_group3_0.5x.pth.tar: ', ' tensors are float16; converted to float32',
          'wrote {tmp}/converted.pth')),
]


@table(CASES)
def test_bad_checkpoint_input(case, trained_demo_detector, tmp_path, request, capsys):
    trained = trained_demo_detector
    check(case, dict(tmp=tmp_path, config=trained.config, checkpoint=trained.checkpoint,
                     data_root=trained.data_root, size=(REPO / 'README.md').stat().st_size),
          request, capsys)
