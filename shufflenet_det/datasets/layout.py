"""Check a config's dataset paths before anything is built, and move its data root.

A missing COCO folder otherwise surfaces as a stack trace from deep inside a
dataset class, after the model has been built. :func:`check_dataset_paths`
reports every missing path at once, with the layout the config expects.
"""
import os.path as osp
from collections.abc import Iterator

from mmengine.config import Config, ConfigDict

from ..errors import InputFileNotFoundError


class DatasetLayoutError(InputFileNotFoundError):
    """A dataset file or folder named by the config does not exist."""


def _datasets(cfg: Config) -> Iterator[tuple[str, ConfigDict]]:
    """(dataloader name, dataset config) pairs, looking inside dataset wrappers."""
    for split in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        loader = cfg.get(split)
        stack = [loader.get('dataset')] if loader else []
        while stack:
            ds = stack.pop()
            if ds is None:
                continue
            if 'datasets' in ds:
                stack.extend(ds['datasets'])
            elif 'dataset' in ds:
                stack.append(ds['dataset'])
            else:
                yield split, ds


def _evaluators(cfg: Config) -> Iterator[ConfigDict]:
    for name in ('val_evaluator', 'test_evaluator'):
        evaluator = cfg.get(name)
        for e in (evaluator if isinstance(evaluator, (list, tuple)) else [evaluator]):
            if isinstance(e, dict):
                yield e


def _expected_paths(cfg: Config) -> list[tuple[str, str, str]]:
    """(path, what, used by) for every file or folder the config reads."""
    paths = []
    for split, ds in _datasets(cfg):
        root = ds.get('data_root') or ''
        if ds.get('ann_file'):
            paths.append((osp.join(root, ds['ann_file']), 'file', split))
        prefix = ds.get('data_prefix') or {}
        folder = prefix.get('img', prefix.get('img_path')) if isinstance(prefix, dict) else None
        if folder is not None:
            paths.append((osp.join(root, folder), 'folder', split))
        elif 'data_prefix' not in ds and root:
            paths.append((root, 'folder', split))
    for e in _evaluators(cfg):
        if e.get('ann_file'):
            paths.append((e['ann_file'], 'file', f'{e.get("type", "evaluator")}'))
    unique = {}
    for path, what, user in paths:
        unique.setdefault(osp.normpath(path), (what, []))[1].append(user)
    return [(p, what, ', '.join(dict.fromkeys(users))) for p, (what, users) in unique.items()]


def check_dataset_paths(cfg: Config, splits: tuple[str, ...] = ()) -> None:
    """Raise one :class:`DatasetLayoutError` listing every missing dataset path.

    Args:
        cfg (Config): A full training or test config.
        splits (tuple[str]): Only check paths used by these dataloaders or
            evaluators (e.g. ``('test_dataloader', 'CocoMetric')``); all if empty.
    """
    expected = _expected_paths(cfg)
    if splits:
        expected = [e for e in expected if any(s in e[2] for s in splits)]
    missing = [(p, what, user) for p, what, user in expected
               if not (osp.isdir(p) if what == 'folder' else osp.isfile(p))]
    if not missing:
        return
    lines = [f'  missing {what}: {p}  (used by {user})' for p, what, user in missing]
    layout = [f'  {p}{"/" if what == "folder" else ""}' for p, what, _ in expected]
    raise DatasetLayoutError('dataset not found:\n' + '\n'.join(lines)
                             + '\nThe config expects:\n' + '\n'.join(layout)
                             + '\nPoint it elsewhere with --data-root DIR.')


def set_data_root(cfg: Config, root: str) -> None:
    """Move every dataset and evaluator annotation path of ``cfg`` under ``root``.

    Datasets get ``data_root=root``; evaluator ``ann_file`` paths that started
    with a dataset's old root are rebased onto ``root``.
    """
    root = root if root.endswith('/') else root + '/'
    old_roots = set()
    for _, ds in _datasets(cfg):
        if 'data_root' in ds:
            old_roots.add(ds['data_root'])
            ds['data_root'] = root
    for e in _evaluators(cfg):
        ann = e.get('ann_file')
        for old in sorted(old_roots, key=len, reverse=True):
            if ann and old and ann.startswith(old):
                e['ann_file'] = root + ann[len(old):].lstrip('/')
                break
