from .runner_config import check_neck_in_channels, prepare_config

__all__ = ['check_neck_in_channels', 'prepare_config']
