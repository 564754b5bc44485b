from .complexity import (PAPER_MFLOPS, classifier_complexity, complexity_report, count_complexity,
                         detector_complexity)

__all__ = ['PAPER_MFLOPS', 'classifier_complexity', 'complexity_report', 'count_complexity',
           'detector_complexity']
