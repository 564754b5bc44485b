"""Helpers with no OpenMMLab imports.

Nothing here may import mmcv, mmengine, mmdet or the rest of this package:
``tools/setup_env.sh`` runs :mod:`.build_env` by file path before mmcv exists.
"""
