"""The COCO detection file's schema, checked in one pass with errors that name the file.

pycocotools trusts the file: malformed JSON surfaces as a bare ``json.JSONDecodeError``
(no file name), a missing ``annotations`` key as an empty dataset, an annotation
pointing at an unknown image as an instance that silently never appears, a duplicated
annotation id as one box counted twice and another lost. :func:`load_coco_json` and
:func:`validate_coco_dict` refuse all of these with an :class:`AnnotationError` naming
the file and, for an annotation, its id; :func:`category_ids_by_name` maps class names
to the file's category ids whatever the order of its ``categories``.
"""
import json
import math

from ..errors import InputError

#: What :class:`ValidatedCOCO` expects, quoted in its errors.
COCO_LAYOUT = ('a COCO detection file is a JSON object {"images": [{"id", "file_name", '
               '"width", "height"}, ...], "annotations": [{"id", "image_id", "category_id", '
               '"bbox": [x, y, w, h], "area"}, ...], "categories": [{"id", "name"}, ...]}')
#: How many annotation ids the skipped-box warning lists.
NUM_IDS_SHOWN = 5

_REQUIRED_LISTS = ('images', 'annotations', 'categories')
_IMAGE_KEYS = ('id', 'file_name', 'width', 'height')
_CATEGORY_KEYS = ('id', 'name')
_NUMBER = (int, float)
_ID = (int, str)


class AnnotationError(InputError, ValueError):
    """An annotation file that cannot be used: the message names the file and the problem."""


def _is_finite_number(value) -> bool:
    # type() rather than isinstance(): a JSON ``true`` is a bool, which isinstance counts
    # as an int.
    if type(value) not in _NUMBER:
        return False
    try:
        return math.isfinite(value)
    except OverflowError:  # an int too large for a float
        return False


def _is_box(bbox) -> bool:
    # Unrolled: this runs once per annotation (860k in COCO train2017).
    if type(bbox) is not list or len(bbox) != 4:
        return False
    x, y, w, h = bbox
    if not (type(x) in _NUMBER and type(y) in _NUMBER and type(w) in _NUMBER
            and type(h) in _NUMBER):
        return False
    try:
        return math.isfinite(x + y + w + h)  # any NaN or infinity makes the sum one
    except OverflowError:
        return False


def load_coco_json(path: str) -> dict:
    """Parse a COCO annotation file, with errors that name the file.

    Args:
        path (str): the annotation file.

    Returns:
        dict: the parsed top-level object (not validated beyond being an object).

    Raises:
        AnnotationError: the file is not valid UTF-8 JSON, or its top level is not an object.
    """
    with open(path, 'rb') as f:
        raw = f.read()
    try:
        # Bytes, so json detects UTF-8/16/32 and a BOM as the JSON standard allows.
        dataset = json.loads(raw)
    except json.JSONDecodeError as e:
        raise AnnotationError(
            f'{path} is not valid JSON: {e.msg} at line {e.lineno} column {e.colno} '
            f'(char {e.pos})') from e
    except UnicodeDecodeError as e:
        raise AnnotationError(f'{path} is not valid JSON: not UTF-8 text ({e})') from e
    if not isinstance(dataset, dict):
        raise AnnotationError(
            f'{path}: the top level is a JSON {type(dataset).__name__}, not an object; '
            f'expected {COCO_LAYOUT}')
    return dataset


def _check_records(path: str, records: list, key: str, required: tuple) -> set:
    """Check ``images`` or ``categories`` entries; return their ids."""
    ids = set()
    for i, record in enumerate(records):
        if not isinstance(record, dict):
            raise AnnotationError(
                f'{path}: {key}[{i}] is a {type(record).__name__}, not an object; '
                f'expected {COCO_LAYOUT}')
        missing = [k for k in required if k not in record]
        if missing:
            raise AnnotationError(
                f'{path}: {key}[{i}] (id {record.get("id")!r}) has no '
                f'{", ".join(map(repr, missing))}; expected {COCO_LAYOUT}')
        rid = record['id']
        if type(rid) not in _ID:
            raise AnnotationError(
                f'{path}: {key}[{i}] has id {rid!r}; ids must be integers or strings')
        if rid in ids:
            raise AnnotationError(f'{path}: {key} id {rid!r} appears more than once')
        ids.add(rid)
    return ids


def _check_annotation(path: str, i: int, ann, ann_ids: set, image_ids: set,
                      category_ids: set):
    """Check ``annotations[i]``; returns its id. Raises AnnotationError naming the problem."""
    if not isinstance(ann, dict):
        raise AnnotationError(
            f'{path}: annotations[{i}] is a {type(ann).__name__}, not an object; '
            f'expected {COCO_LAYOUT}')
    ann_id = ann.get('id')
    if type(ann_id) not in _ID:
        raise AnnotationError(
            f'{path}: annotations[{i}] has id {ann_id!r}; every annotation needs an '
            f'integer or string "id"')
    if ann_id in ann_ids:
        raise AnnotationError(f'{path}: annotation id {ann_id!r} appears more than once')
    bbox = ann.get('bbox')
    if not _is_box(bbox):
        raise AnnotationError(
            f'{path}: annotation id {ann_id!r} has bbox {bbox!r}; expected 4 finite '
            f'numbers [x, y, w, h]')
    if not _is_finite_number(ann.get('area')):
        raise AnnotationError(
            f'{path}: annotation id {ann_id!r} has area {ann.get("area")!r}; expected a '
            f'number')
    image_id = ann.get('image_id')
    if image_id not in image_ids:
        raise AnnotationError(
            f'{path}: annotation id {ann_id!r} has image_id {image_id!r}, which is not '
            f'among the {len(image_ids)} ids in "images"')
    category_id = ann.get('category_id')
    if category_id not in category_ids:
        raise AnnotationError(
            f'{path}: annotation id {ann_id!r} has category_id {category_id!r}, which is '
            f'not among the category ids {sorted(category_ids, key=str)}')
    return ann_id


def validate_coco_dict(dataset: dict, path: str) -> tuple[dict, list]:
    """Check a parsed COCO detection file and drop boxes with non-positive size.

    One pass over each list (COCO train2017's 860k annotations take about a second).

    Args:
        dataset (dict): the parsed file; not modified.
        path (str): the file's name, for the messages.

    Returns:
        tuple[dict, list]: a shallow copy of ``dataset`` whose ``annotations`` leave out
        the boxes with ``w <= 0`` or ``h <= 0``, and those boxes' annotation ids.

    Raises:
        AnnotationError: a missing or non-list ``images``/``annotations``/``categories``;
            an image or category without its required keys, or a duplicated id; an
            annotation that is not an object, has no or a duplicated ``id``, has no
            4-number finite ``bbox`` or numeric ``area``, or whose ``image_id`` /
            ``category_id`` is not among ``images`` / ``categories``.
    """
    for key in _REQUIRED_LISTS:
        if key not in dataset:
            raise AnnotationError(
                f'{path} has no {key!r} key (it has {sorted(dataset)}); '
                f'expected {COCO_LAYOUT}')
        if not isinstance(dataset[key], list):
            raise AnnotationError(
                f'{path}: {key!r} is a JSON {type(dataset[key]).__name__}, not a list; '
                f'expected {COCO_LAYOUT}')
    image_ids = _check_records(path, dataset['images'], 'images', _IMAGE_KEYS)
    category_ids = _check_records(path, dataset['categories'], 'categories', _CATEGORY_KEYS)

    kept, skipped, ann_ids = [], [], set()
    for i, ann in enumerate(dataset['annotations']):
        ann_id = _check_annotation(path, i, ann, ann_ids, image_ids, category_ids)
        ann_ids.add(ann_id)
        if ann['bbox'][2] <= 0 or ann['bbox'][3] <= 0:
            skipped.append(ann_id)
        else:
            kept.append(ann)
    checked = dict(dataset)
    checked['annotations'] = kept
    return checked, skipped


def _quoted(values, limit: int = NUM_IDS_SHOWN) -> str:
    shown = ', '.join(map(repr, list(values)[:limit]))
    return shown + (', ...' if len(values) > limit else '')


def category_ids_by_name(categories: list, names, path: str) -> list:
    """The id of the category named ``names[i]``, for every ``i``: label i means ``names[i]``.

    pycocotools' ``getCatIds(catNms=names)`` returns the ids in the order of the file's
    ``categories``, and MMDetection numbers the labels in that order: a file that lists
    the same categories in another order swaps the labels silently. Here the names
    decide the order.

    Args:
        categories (list[dict]): the file's ``categories`` (each with ``id`` and ``name``).
        names (Sequence[str]): the class names, in label order (``metainfo['classes']``).
        path (str): the file's name, for the messages.

    Returns:
        list: one category id per name.

    Raises:
        AnnotationError: a name that no category has, or that several categories share.
    """
    ids_of = {}
    for category in categories:
        ids_of.setdefault(category['name'], []).append(category['id'])
    missing = [name for name in names if name not in ids_of]
    if missing:
        raise AnnotationError(
            f'{path}: no category is named {_quoted(missing)} ({len(missing)} of the '
            f'{len(names)} class names in metainfo); the file\'s categories are named '
            f'{_quoted(list(ids_of), 10)}. Set metainfo=dict(classes=(...)) to the names '
            f'that the file uses')
    shared = [name for name in names if len(ids_of[name]) > 1]
    if shared:
        raise AnnotationError(
            f'{path}: categories {ids_of[shared[0]]} are all named {shared[0]!r}; a class '
            f'name must name one category')
    return [ids_of[name][0] for name in names]
