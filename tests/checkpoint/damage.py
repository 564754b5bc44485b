"""Damage a checkpoint file the way a disk, a copy or a download does: one bit of a tensor."""
import zipfile


def flip_tensor_bit(path, entry_index: int = -1, bit: int = 0) -> str:
    """Flip one bit in the middle of a tensor's bytes inside a ``torch.save`` zip archive.

    torch.save stores each tensor storage uncompressed as ``ARCHIVE/data/N``; its bytes
    start after the entry's local header (30 bytes, then the name and the extra field).

    Args:
        path: The checkpoint.
        entry_index (int): Which storage, in order of size (-1: the largest).
        bit (int): Which bit of the byte.

    Returns:
        str: The name of the changed entry.
    """
    with zipfile.ZipFile(path) as archive:
        entries = sorted((info for info in archive.infolist() if '/data/' in info.filename
                          and info.file_size > 0), key=lambda info: info.file_size)
    info = entries[entry_index]
    assert info.compress_type == zipfile.ZIP_STORED, 'torch.save stores tensors uncompressed'
    with open(path, 'r+b') as f:
        f.seek(info.header_offset + 26)
        name_len = int.from_bytes(f.read(2), 'little')
        extra_len = int.from_bytes(f.read(2), 'little')
        offset = info.header_offset + 30 + name_len + extra_len + info.file_size // 2
        f.seek(offset)
        byte = f.read(1)[0]
        f.seek(offset)
        f.write(bytes([byte ^ (1 << bit)]))
    return info.filename
