from .complexity import PAPER_MFLOPS, classifier_complexity, count_complexity, detector_complexity

__all__ = ['PAPER_MFLOPS', 'classifier_complexity', 'count_complexity', 'detector_complexity']
