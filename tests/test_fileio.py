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


@pytest.mark.parametrize('umask', [0o022, 0o027, 0o002], ids=['022', '027', '002'])
def test_outputs_get_the_mode_open_would_give_under_the_umask_at_write_time(tmp_path, umask):
    import os
    before = os.umask(umask)  # set after the import: the mask of the moment counts
    try:
        with open(tmp_path / 'plain.txt', 'w') as f:
            f.write('x')
        with atomic_open(tmp_path / 'out.txt') as f:
            f.write('x')
        assert os.umask(umask) == umask  # left as it was
    finally:
        os.umask(before)
    mode = (tmp_path / 'out.txt').stat().st_mode & 0o777
    assert mode == (tmp_path / 'plain.txt').stat().st_mode & 0o777 == 0o666 & ~umask


@pytest.mark.parametrize('name, directory, message', [
    ('folder', False, 'is a folder; expected a file name'),
    ('file', True, 'is a file; expected a folder'),
    ('file/out.json', False, 'is a file, not a folder'),
    ('file/sub/work', True, 'is a file, not a folder'),
], ids=['folder-as-file', 'file-as-folder', 'parent-is-a-file', 'ancestor-is-a-file'])
def test_check_writable_names_the_path_and_why(tmp_path, name, directory, message):
    from shufflenet_det.fileio import OutputPathError, check_writable
    (tmp_path / 'folder').mkdir()
    (tmp_path / 'file').write_text('x')
    with pytest.raises(OutputPathError, match=message) as info:
        check_writable(tmp_path / name, '--out', directory=directory)
    assert str(info.value).startswith(f'--out {tmp_path / name}: ')


def test_check_writable_accepts_new_files_and_folders_under_missing_parents(tmp_path):
    from shufflenet_det.fileio import check_writable
    check_writable(tmp_path / 'a' / 'b' / 'out.pkl')
    check_writable(tmp_path / 'a' / 'work', directory=True)
    check_writable(None)
    check_writable('s3://bucket/out.pkl')
    assert list(tmp_path.iterdir()) == []  # checking creates nothing


def test_check_writable_refuses_a_read_only_folder(tmp_path):
    import os

    from shufflenet_det.fileio import OutputPathError, check_writable
    folder = tmp_path / 'read_only'
    folder.mkdir(mode=0o500)
    if os.access(folder, os.W_OK):
        pytest.skip('this user may write into read-only folders (root)')
    with pytest.raises(OutputPathError, match=f'the folder {folder} is not writable'):
        check_writable(folder / 'out.json', '--out-json')
    with pytest.raises(OutputPathError, match='is not writable'):
        check_writable(folder, '--work-dir', directory=True)
