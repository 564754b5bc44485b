"""The tensor digest that checkpoints record and the loaders check."""
import pytest
import torch

from shufflenet_det.checkpoint import CheckpointFileError, atomic_save, load_checkpoint_file
from shufflenet_det.checkpoint.digest import (ABSENT, DIGEST_KEY, MATCH, MISMATCH,
                                              UNKNOWN_ALGORITHM, check_tensor_digest,
                                              compute_tensor_digest, record_tensor_digest)

from .damage import flip_tensor_bit


def _checkpoint():
    torch.manual_seed(0)
    return dict(state_dict={'conv.weight': torch.randn(8, 4, 3, 3), 'bn.num': torch.tensor(3),
                            'half': torch.randn(5).half(), 'bf16': torch.randn(2, 2).bfloat16(),
                            'flags': torch.tensor([True, False])},
                optimizer={'state': {0: {'momentum_buffer': torch.randn(8, 4, 3, 3)}}},
                meta=dict(epoch=1, iter=10))


def test_the_digest_covers_names_dtypes_shapes_and_bytes_outside_meta():
    ckpt = _checkpoint()
    reference = compute_tensor_digest(ckpt)
    assert reference['algorithm'] == 'crc32' and len(reference['value']) == 8
    changed = []
    for change in (lambda c: c['state_dict']['conv.weight'].view(-1)[7].add_(1e-6),
                   lambda c: c['optimizer']['state'][0]['momentum_buffer'].view(-1)[0].neg_(),
                   lambda c: c['state_dict'].__setitem__('half', c['state_dict']['half'].float()),
                   lambda c: c['state_dict'].__setitem__(
                       'conv.weight', c['state_dict']['conv.weight'].reshape(4, 8, 3, 3)),
                   lambda c: c['state_dict'].__setitem__('renamed', c['state_dict'].pop('bn.num'))):
        ckpt = _checkpoint()
        change(ckpt)
        changed.append(compute_tensor_digest(ckpt)['value'])
    assert reference['value'] not in changed and len(set(changed)) == len(changed)
    ckpt = _checkpoint()
    ckpt['meta']['note'] = torch.ones(3)  # meta is where the digest lives: not covered
    assert compute_tensor_digest(ckpt) == reference


def test_check_reports_match_mismatch_absent_and_unknown_algorithm():
    ckpt = record_tensor_digest(_checkpoint())
    assert check_tensor_digest(ckpt) == MATCH
    ckpt['state_dict']['conv.weight'][0, 0, 0, 0] += 1
    assert check_tensor_digest(ckpt) == MISMATCH
    assert check_tensor_digest(_checkpoint()) == ABSENT
    assert check_tensor_digest({'w': torch.ones(2)}) == ABSENT  # a bare state dict
    ckpt = record_tensor_digest(_checkpoint())
    ckpt['meta'][DIGEST_KEY] = dict(algorithm='sha3-512', value='00')
    assert check_tensor_digest(ckpt) == UNKNOWN_ALGORITHM


def test_atomic_save_records_the_digest_without_changing_the_callers_dict(tmp_path):
    ckpt = _checkpoint()
    meta = ckpt['meta']
    atomic_save(ckpt, tmp_path / 'a.pth')
    assert DIGEST_KEY not in meta and DIGEST_KEY not in ckpt['meta']
    loaded = load_checkpoint_file(tmp_path / 'a.pth')
    assert loaded['meta'][DIGEST_KEY] == compute_tensor_digest(ckpt)
    assert loaded['meta']['epoch'] == 1


@pytest.mark.parametrize('entry', [0, -1], ids=['smallest-tensor', 'largest-tensor'])
def test_one_flipped_bit_in_any_tensor_is_an_error_naming_the_file(tmp_path, entry):
    path = tmp_path / 'a.pth'
    atomic_save(_checkpoint(), path)
    flip_tensor_bit(path, entry)
    loaded = torch.load(path, weights_only=True)  # torch itself notices nothing
    assert loaded['state_dict'].keys() == _checkpoint()['state_dict'].keys()
    with pytest.raises(CheckpointFileError, match=f'{path} is corrupt: its tensors do not '
                                                  'match the digest recorded when it was written'):
        load_checkpoint_file(path)


def test_files_without_a_digest_load_and_say_so_once(tmp_path, mmlog):
    path = tmp_path / 'mmdet.pth'
    torch.save(_checkpoint(), path)
    for _ in range(2):
        assert load_checkpoint_file(path)['meta'] == dict(epoch=1, iter=10)
    lines = [line for line in mmlog.text.splitlines() if str(path) in line]
    assert lines == [f'INFO {path} records no tensor digest (it was written by another '
                     'program, e.g. Megvii, OpenMMLab or MMDetection): its content is loaded '
                     'unverified']
