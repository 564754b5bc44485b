from .config_agreement import check_config_agrees
from .detector_export import export_detector, export_detector_onnx
from .detector_graph import FasterRCNNGraph
from .detector_metadata import DetectorFileError, read_detector_metadata
from .fast_path import TorchvisionRoIAlign, deploy_detector, switch_model_to_deploy
from .onnx_export import (build_for_export, export_onnx, export_shufflenet_onnx, max_abs_diff,
                          onnxruntime_session)
from .onnx_runtime import ImageArrayError, ONNXRuntimeDetector
from .quantize import calibration_images, int8_path, quantize_int8

__all__ = ['DetectorFileError', 'FasterRCNNGraph', 'ImageArrayError', 'ONNXRuntimeDetector',
           'TorchvisionRoIAlign', 'build_for_export', 'calibration_images',
           'check_config_agrees', 'deploy_detector', 'export_detector', 'export_detector_onnx',
           'export_onnx', 'export_shufflenet_onnx', 'int8_path', 'max_abs_diff',
           'onnxruntime_session', 'quantize_int8', 'read_detector_metadata',
           'switch_model_to_deploy']
