import logging

import pytest
import torch
from mmengine.logging import MMLogger
from mmengine.registry import DefaultScope

import shufflenet_det  # noqa: F401  (registers the models)


def pytest_collection_modifyitems(config, items):
    """Skip the tests marked ``gpu`` where torch sees no GPU, saying so."""
    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason='needs a CUDA GPU (torch.cuda.is_available() is False)')
    for item in items:
        if item.get_closest_marker('gpu'):
            item.add_marker(skip)


@pytest.fixture(autouse=True)
def _mmdet_scope_and_seed():
    """Build everything in mmdet's registry scope, from a fixed seed."""
    torch.manual_seed(0)
    name = f'test-{id(object())}'
    DefaultScope.get_instance(name, scope_name='mmdet')
    yield
    DefaultScope._instance_dict.pop(name, None)


class _Records(logging.Handler):
    def __init__(self):
        super().__init__(level=logging.DEBUG)
        self.records = []

    def emit(self, record):
        self.records.append(record)

    @property
    def text(self):
        return '\n'.join(f'{r.levelname} {r.getMessage()}' for r in self.records)


@pytest.fixture
def mmlog():
    """Records of MMEngine's current logger (which does not propagate to ``logging``)."""
    logger = MMLogger.get_current_instance()
    handler = _Records()
    logger.addHandler(handler)
    yield handler
    logger.removeHandler(handler)
