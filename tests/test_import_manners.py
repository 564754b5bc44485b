"""``import shufflenet_det`` registers its own names and changes nothing else in the process.

A fresh interpreter takes a snapshot of what an import could change for the rest of a user's
program, imports the package, takes another and reports every difference other than a
registry entry under a new name: a replaced registration, a patched MMEngine class, torch's
safe globals, MMEngine's checkpoint loaders, the umask, the warnings filters, the levels of
existing loggers, the environment and torch's global settings, and any call of ``os.umask``
during the import (a mask set and put back leaves no trace afterwards). The modules of other
packages that the import brings in (torchvision, ...) are imported before the first snapshot:
what they change is theirs.
"""
import json
import textwrap

from .helpers import run

SETUP = textwrap.dedent('''
    import importlib, json, logging, os, sys, warnings

    import mmdet.registry
    import mmengine.registry
    import torch
    from mmdet.utils import register_all_modules
    from mmengine.logging import HistoryBuffer
    from mmengine.runner.checkpoint import CheckpointLoader

    register_all_modules(init_default_scope=False)
''')

# The modules of other packages that the import brings in, in the order it imports them.
OTHER_MODULES = SETUP + textwrap.dedent('''
    loaded = set(sys.modules)
    import shufflenet_det  # noqa: E402,F401
    print(json.dumps([name for name in sys.modules if name not in loaded
                      and name.partition('.')[0] != 'shufflenet_det']))
''')

SNAPSHOT_AND_IMPORT = SETUP + textwrap.dedent('''
    # What those modules do when imported is theirs (torchvision 0.16 imports requests, which
    # adds warnings filters; torch._dynamo adds to torch's safe globals): import them first.
    for name in json.loads(sys.argv[1]):
        try:
            importlib.import_module(name)
        except Exception:  # some import only as part of their package, which brings them in
            pass


    def umask():
        try:
            with open('/proc/self/status') as f:
                return next(int(line.split()[1], 8) for line in f if line.startswith('Umask:'))
        except (OSError, StopIteration):
            mask = os.umask(0)
            os.umask(mask)
            return mask


    def snapshot():
        registries = {f'{module.__name__}.{name}': dict(value.module_dict)
                      for module in (mmengine.registry, mmdet.registry)
                      for name, value in vars(module).items()
                      if isinstance(value, mmengine.registry.Registry)}
        get_safe = getattr(torch.serialization, 'get_safe_globals', None)
        loggers = {name: (logger.level, logger.disabled)
                   for name, logger in logging.root.manager.loggerDict.items()
                   if isinstance(logger, logging.Logger)}
        loggers['<root>'] = (logging.root.level, logging.root.disabled)
        return dict(
            registries=registries,
            history_buffer=dict(vars(HistoryBuffer)),
            safe_globals=list(get_safe()) if get_safe else None,
            checkpoint_loaders=dict(CheckpointLoader._schemes),
            umask=umask(),
            warnings_filters=list(warnings.filters),
            loggers=loggers,
            environ=dict(os.environ),
            torch=(torch.get_default_dtype(), torch.get_num_threads(),
                   torch.are_deterministic_algorithms_enabled(),
                   torch.backends.cudnn.benchmark, torch.backends.cudnn.deterministic),
        )


    def changed(before, after):
        found = []
        for registry, entries in before['registries'].items():
            now = after['registries'][registry]
            found += [f'{registry}: {name!r} is no longer {cls.__module__}.{cls.__qualname__}'
                      for name, cls in entries.items()
                      if now.get(name) is not cls]
        old, new = before['history_buffer'], after['history_buffer']
        found += [f'HistoryBuffer.{name} was changed' for name in sorted(set(old) | set(new))
                  if old.get(name) is not new.get(name)]
        found += [f'the level of logger {name!r}: {level} -> {after["loggers"][name]}'
                  for name, level in before['loggers'].items()
                  if after['loggers'][name] != level]
        if before['safe_globals'] is not None:
            found += [f'torch safe globals: {item!r} added'
                      for item in set(after['safe_globals']) - set(before['safe_globals'])]
        for key in ('checkpoint_loaders', 'umask', 'warnings_filters', 'environ', 'torch'):
            if before[key] != after[key]:
                found.append(f'{key}: {before[key]!r} -> {after[key]!r}'[:500])
        return found


    # A umask set and put back within the import is invisible afterwards: record the calls.
    umask_calls, os_umask = [], os.umask


    def recording_umask(mask):
        umask_calls.append(oct(mask))
        return os_umask(mask)


    before = snapshot()
    os.umask = recording_umask
    import shufflenet_det  # noqa: E402,F401
    os.umask = os_umask
    after = snapshot()
    print(json.dumps(dict(
        changed=changed(before, after) + [f'os.umask({m}) called' for m in umask_calls],
        added=sorted(name for name in after['registries']['mmdet.registry.MODELS']
                     if name not in before['registries']['mmdet.registry.MODELS']))))
''')


def test_import_adds_registry_entries_and_changes_nothing_else():
    others = run('-c', OTHER_MODULES).stdout.strip().splitlines()[-1]
    report = json.loads(run('-c', SNAPSHOT_AND_IMPORT, others).stdout.strip().splitlines()[-1])
    assert not report['changed'], 'import shufflenet_det changed:\n' + '\n'.join(report['changed'])
    assert {'ShuffleNetV1', 'ShuffleNetV1SharedHead'} <= set(report['added'])
