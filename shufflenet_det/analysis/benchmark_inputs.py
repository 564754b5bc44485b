"""The benchmarks' command-line values, checked before any model is built or timed.

A benchmark runs for minutes; a value that cannot work (``--threads 0``, an unknown
peer or ShuffleNet size, an output path in a read-only folder) fails in its first
second, with one line naming the value and what is allowed.
"""
import re
from typing import Optional, Sequence

from ..config import load_config
from ..errors import ConfigError
from ..fileio import check_writable
from ..models.backbones import GROUPS, WIDEN_FACTORS

SPEC_PATTERN = re.compile(r'^(\d+(?:\.\d+)?)x_g(\d+)$')


def check_report_paths(out_md: Optional[str], out_json: Optional[str]) -> None:
    """``--out-md`` and ``--out-json`` must be writable files (:func:`check_writable`)."""
    check_writable(out_md, '--out-md')
    check_writable(out_json, '--out-json')


def check_at_least(minimum: int, **values: Optional[int | Sequence[int]]) -> None:
    """Every value (or every item of a list) of the options named by the keywords is
    ``minimum`` or more; ``None`` passes.

    Raises:
        ConfigError: ``--threads 0: must be 1 or more``.
    """
    for name, value in values.items():
        for item in value if isinstance(value, (list, tuple)) else [value]:
            if item is not None and item < minimum:
                option = '--' + name.replace('_', '-')
                raise ConfigError(f'{option} {item}: must be {minimum} or more')


def parse_specs(specs: Sequence[str]) -> list[tuple[int, float]]:
    """``['1x_g3', '0.5x_g8']`` -> ``[(3, 1.0), (8, 0.5)]`` (groups, widen factor).

    Raises:
        ConfigError: a value that is not ``WIDTHx_gGROUPS`` with a width and groups
            ShuffleNetV1 supports, naming the supported ones.
    """
    parsed = []
    allowed = (f'WIDTHx_gGROUPS with WIDTH one of {", ".join(f"{w:g}" for w in WIDEN_FACTORS)} '
               f'and GROUPS one of {", ".join(map(str, GROUPS))}, e.g. 1x_g3')
    for text in specs:
        match = SPEC_PATTERN.match(text.lower())
        if not match:
            raise ConfigError(f'--shufflenet {text}: expected {allowed}')
        widen, groups = float(match.group(1)), int(match.group(2))
        if widen not in WIDEN_FACTORS or groups not in GROUPS:
            raise ConfigError(f'--shufflenet {text}: no such ShuffleNetV1 (width {widen:g}, '
                              f'groups {groups}); expected {allowed}')
        parsed.append((groups, widen))
    return parsed


def check_peers(peers: Sequence[str]) -> None:
    """Each peer must be one of torchvision's classification models.

    Raises:
        ConfigError: naming the peer and the close names torchvision has.
    """
    import difflib

    import torchvision
    if not hasattr(torchvision.models, 'list_models'):  # torchvision < 0.14
        return
    known = torchvision.models.list_models(module=torchvision.models)
    for peer in peers:
        if peer not in known:
            near = difflib.get_close_matches(peer, known, n=4)
            hint = f'did you mean {", ".join(near)}? ' if near else ''
            raise ConfigError(f'--peers {peer}: not a torchvision classification model; '
                              f'{hint}(all: torchvision.models.list_models(), e.g. '
                              'mobilenet_v2, shufflenet_v2_x1_0, resnet18)')


def check_configs(configs: Sequence[str], cfg_options: Optional[dict] = None) -> None:
    """Every config reads, and ``cfg_options`` fit each of them (:func:`load_config`)."""
    for config in configs:
        load_config(config, cfg_options)


def parse_sizes(values: Sequence[str]) -> list[tuple[int, int]]:
    """``['224x224', '480x640']`` -> ``[(224, 224), (480, 640)]``.

    Raises:
        ConfigError: a value that is not HEIGHTxWIDTH with positive integers.
    """
    sizes = []
    for text in values:
        parts = text.lower().split('x')
        if len(parts) != 2 or not all(p.isdigit() and int(p) > 0 for p in parts):
            raise ConfigError(f'--sizes takes HEIGHTxWIDTH values such as 224x224, got {text!r}')
        sizes.append((int(parts[0]), int(parts[1])))
    return sizes
