from .detections import draw_detections

__all__ = ['draw_detections']
