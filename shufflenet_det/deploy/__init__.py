from .export import (build_for_export, calibration_images, export_detector, export_detector_onnx,
                     export_onnx, export_shufflenet_onnx, fp32_nodes_of, int8_path, max_abs_diff,
                     quantize_int8, torch_onnx_export_legacy)
from .fast_path import TorchvisionRoIAlign, deploy_detector, switch_model_to_deploy
from .graph import FasterRCNNGraph
from .runtime import (DetectorFileError, ImageArrayError, ONNXRuntimeDetector,
                      check_config_agrees, config_record, onnxruntime_session,
                      read_detector_metadata)

__all__ = ['DetectorFileError', 'FasterRCNNGraph', 'ImageArrayError', 'ONNXRuntimeDetector',
           'TorchvisionRoIAlign', 'build_for_export', 'calibration_images',
           'check_config_agrees', 'config_record', 'deploy_detector', 'export_detector',
           'export_detector_onnx', 'export_onnx', 'export_shufflenet_onnx', 'fp32_nodes_of',
           'int8_path', 'max_abs_diff', 'onnxruntime_session', 'quantize_int8',
           'read_detector_metadata', 'switch_model_to_deploy', 'torch_onnx_export_legacy']
