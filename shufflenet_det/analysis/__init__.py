from .complexity import (PAPER_MFLOPS, classifier_complexity, complexity_report, count_complexity,
                         detector_complexity, paper_table)

__all__ = ['PAPER_MFLOPS', 'classifier_complexity', 'complexity_report', 'count_complexity',
           'detector_complexity', 'paper_table']
