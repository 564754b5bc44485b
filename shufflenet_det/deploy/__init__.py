from .fast_path import TorchvisionRoIAlign, deploy_detector, switch_model_to_deploy
from .onnx_export import (build_for_export, export_onnx, export_shufflenet_onnx, max_abs_diff,
                          onnxruntime_session)

__all__ = ['TorchvisionRoIAlign', 'build_for_export', 'deploy_detector', 'export_onnx',
           'export_shufflenet_onnx', 'max_abs_diff', 'onnxruntime_session',
           'switch_model_to_deploy']
