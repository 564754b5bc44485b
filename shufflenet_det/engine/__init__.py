from .hooks import BNRecalibrationHook, NonFiniteLossHook, RecordInputConventionHook

__all__ = ['BNRecalibrationHook', 'NonFiniteLossHook', 'RecordInputConventionHook']
