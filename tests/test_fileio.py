import pytest

from shufflenet_det.fileio import atomic_open, atomic_path


def test_a_failed_write_keeps_the_old_file_and_leaves_no_temporary(tmp_path):
    target = tmp_path / 'metrics.json'
    target.write_text('old')
    with pytest.raises(RuntimeError, match='disk full'):
        with atomic_open(target) as f:
            f.write('half of the new con')
            raise RuntimeError('disk full')
    assert target.read_text() == 'old'
    assert [p.name for p in tmp_path.iterdir()] == ['metrics.json']


def test_a_complete_write_replaces_the_file_and_keeps_the_extension_for_writers(tmp_path):
    target = tmp_path / 'sub' / 'drawn.png'
    with atomic_path(target) as tmp:
        assert tmp.endswith('.partial.png') and tmp != str(target)
        with open(tmp, 'wb') as f:
            f.write(b'png bytes')
        assert not target.exists()
    assert target.read_bytes() == b'png bytes'
    assert [p.name for p in target.parent.iterdir()] == ['drawn.png']


def test_outputs_get_the_mode_open_would_give(tmp_path):
    import os
    mask = os.umask(0)
    os.umask(mask)
    with atomic_open(tmp_path / 'out.txt') as f:
        f.write('x')
    assert (tmp_path / 'out.txt').stat().st_mode & 0o777 == 0o666 & ~mask
