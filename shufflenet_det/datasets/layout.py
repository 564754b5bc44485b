"""Check a config's dataset paths before anything is built, and move its data root."""
import os.path as osp
from collections.abc import Iterator

from mmengine.config import Config, ConfigDict

from ..errors import InputFileNotFoundError


class DatasetLayoutError(InputFileNotFoundError):
    """A dataset file or folder named by the config does not exist."""


def _datasets(cfg: Config) -> Iterator[tuple[str, ConfigDict]]:
    """(dataloader name, dataset config) pairs, looking inside dataset wrappers."""
    for split in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        stack = [cfg[split].get('dataset')] if cfg.get(split) else []
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


def check_dataset_paths(cfg: Config, splits: tuple[str, ...] = ()) -> None:
    """Raise one :class:`DatasetLayoutError` listing every missing dataset path, and the
    layout the config expects (a missing COCO folder otherwise fails deep in a dataset).

    Args:
        cfg (Config): A full training or test config.
        splits (tuple[str]): Only check paths used by these dataloaders or
            evaluators (e.g. ``('test_dataloader', 'CocoMetric')``); all if empty.
    """
    paths = []  # (path, 'file' or 'folder', used by)
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
    paths += [(e['ann_file'], 'file', str(e.get('type', 'evaluator')))
              for e in _evaluators(cfg) if e.get('ann_file')]
    unique = {}
    for path, what, user in paths:
        unique.setdefault(osp.normpath(path), (what, {}))[1][user] = None
    expected = [(p, what, ', '.join(users)) for p, (what, users) in unique.items()
                if not splits or any(s in ', '.join(users) for s in splits)]
    missing = [f'  missing {what}: {p}  (used by {users})' for p, what, users in expected
               if not (osp.isdir(p) if what == 'folder' else osp.isfile(p))]
    if missing:
        layout = [f'  {p}{"/" if what == "folder" else ""}' for p, what, _ in expected]
        raise DatasetLayoutError('dataset not found:\n' + '\n'.join(missing)
                                 + '\nThe config expects:\n' + '\n'.join(layout)
                                 + '\nPoint it elsewhere with --data-root DIR.')


def set_data_root(cfg: Config, root: str) -> None:
    """Give every dataset of ``cfg`` ``data_root=root``, and rebase the evaluators'
    ``ann_file`` paths that started with a dataset's old root onto ``root``."""
    root = root if root.endswith('/') else root + '/'
    old_roots = set()
    for _, ds in _datasets(cfg):
        if 'data_root' in ds:
            old_roots.add(ds['data_root'])
            ds['data_root'] = root
    for e in _evaluators(cfg):
        ann = e.get('ann_file')
        old = next((old for old in sorted(old_roots, key=len, reverse=True)
                    if ann and old and ann.startswith(old)), None)
        if old:
            e['ann_file'] = root + ann[len(old):].lstrip('/')
