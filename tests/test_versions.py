"""The import-time check of torch, torchvision and NumPy against the classic stack's floors."""
from importlib.metadata import PackageNotFoundError

import pytest

from shufflenet_det.versions import MINIMUM_VERSIONS, check_version_floors, release

from .helpers import REPO


def fake_versions(**versions):
    def installed(name):
        if name not in versions:
            raise PackageNotFoundError(name)
        return versions[name]
    return installed


def test_release_drops_the_local_part():
    assert release('2.1.2+cu121') == (2, 1, 2)
    assert release('0.26.0') == (0, 26, 0)
    assert release('1.26.4') == (1, 26, 4)


@pytest.mark.parametrize('versions', [
    dict(torch='2.1.2+cu121', torchvision='0.16.2', numpy='1.26.4'),
    dict(torch='2.11.0+cu130', torchvision='0.26.0', numpy='2.4.6'),
], ids=['classic', 'pinned'])
def test_both_supported_stacks_pass(versions):
    check_version_floors(installed=fake_versions(**versions))


def test_an_old_torch_and_a_missing_numpy_are_named_in_one_error():
    installed = fake_versions(torch='2.0.1', torchvision='0.16.0')
    with pytest.raises(ImportError) as info:
        check_version_floors(installed=installed)
    assert str(info.value) == (
        'shufflenet_det needs torch >= 2.1, torchvision >= 0.16, numpy >= 1.26 (the classic '
        'MMDetection 3.3 stack or newer): torch 2.0.1 is older than 2.1; numpy is not '
        'installed (needs >= 1.26)')


def test_the_floors_are_the_classic_stack_ci_tests():
    pins = dict(line.split('==') for line in (REPO / 'requirements/classic.txt').read_text()
                .splitlines() if '==' in line and not line.startswith('#'))
    for name, floor in MINIMUM_VERSIONS.items():
        assert release(pins[name])[:2] == floor, name
