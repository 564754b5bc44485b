from .detections import draw_detections, draw_result

__all__ = ['draw_detections', 'draw_result']
