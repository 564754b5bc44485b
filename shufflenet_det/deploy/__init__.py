from .fast_path import (ChannelsLastPool, PointwiseMatmul, TorchvisionRoIAlign,
                        aten_channel_shuffle, deploy_detector, deploy_shufflenet)
from .onnx_export import export_onnx, max_abs_diff, onnxruntime_session

__all__ = ['ChannelsLastPool', 'PointwiseMatmul', 'TorchvisionRoIAlign', 'aten_channel_shuffle',
           'deploy_detector', 'deploy_shufflenet', 'export_onnx', 'max_abs_diff',
           'onnxruntime_session']
