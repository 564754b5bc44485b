from .channel_shuffle import channel_shuffle, channel_shuffle_indices

__all__ = ['channel_shuffle', 'channel_shuffle_indices']
