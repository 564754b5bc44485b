"""The documentation's links and commands point at things that exist.

Every relative link and ``#anchor`` in README.md and docs/**/*.md resolves (anchors as
GitHub makes them from the headings), and every ``tools/...`` or ``configs/...`` path inside a
fenced code block names a file or folder of the repository.

    .venv/bin/python -m pytest tests/test_docs.py -v
"""
import json
import re
from pathlib import Path

import pytest

from .helpers import REPO

DOCS = sorted([REPO / 'README.md', *(REPO / 'docs').rglob('*.md')])
FENCE = re.compile(r'^ {0,3}(```|~~~)')
LINK = re.compile(r'!?\[(?:[^\[\]]|\[[^\]]*\])*\]\(\s*<?([^)\s>]+)>?(?:\s+"[^"]*")?\s*\)')
HTML_ANCHOR = re.compile(r'<a\s+(?:name|id)="([^"]+)"', re.IGNORECASE)
HEADING = re.compile(r'^ {0,3}(#{1,6})\s+(.*?)\s*#*\s*$')
# tools/x.py or configs/..., not inside a longer path (shufflenet_det/tools/...), with shell
# brace lists such as configs/faster_rcnn_shufflenet{1x,2x}_coco.py allowed.
REPO_PATH = re.compile(r'(?<![\w./:-])((?:tools|configs)/[\w./{},-]*[\w/}])')


def prose_and_blocks(text: str) -> tuple[list[str], list[str]]:
    """The lines outside fenced code blocks, and the fenced blocks' lines."""
    prose, code, fence = [], [], None
    for line in text.splitlines():
        match = FENCE.match(line)
        if fence is None and match:
            fence = match.group(1)
        elif fence is not None and line.strip().startswith(fence):
            fence = None
        elif fence is None:
            prose.append(line)
        else:
            code.append(line)
    return prose, code


def strip_inline_code(line: str) -> str:
    return re.sub(r'`[^`]*`', '', line)


def github_slug(heading: str) -> str:
    """GitHub's anchor for a heading: its rendered text, lower case, punctuation dropped,
    spaces as hyphens."""
    text = re.sub(r'!?\[([^\]]*)\]\([^)]*\)', r'\1', heading)  # links -> their text
    text = re.sub(r'<[^>]+>', '', text)                       # inline HTML
    text = text.replace('`', '').replace('*', '')
    text = text.strip().lower()
    text = re.sub(r'[^\w\- ]', '', text)
    return text.replace(' ', '-')


def anchors(path: Path) -> set[str]:
    prose, _ = prose_and_blocks(path.read_text(encoding='utf-8'))
    found, seen = set(), {}
    for line in prose:
        found |= set(HTML_ANCHOR.findall(line))
        match = HEADING.match(line)
        if not match:
            continue
        slug = github_slug(match.group(2))
        count = seen.get(slug, 0)
        seen[slug] = count + 1
        found.add(slug if count == 0 else f'{slug}-{count}')
    return found


def links(path: Path) -> list[str]:
    prose, _ = prose_and_blocks(path.read_text(encoding='utf-8'))
    return [target for line in prose for target in LINK.findall(strip_inline_code(line))]


def expand_braces(path: str) -> list[str]:
    match = re.search(r'\{([^{}]*)\}', path)
    if not match:
        return [path]
    return [p for option in match.group(1).split(',')
            for p in expand_braces(path[:match.start()] + option + path[match.end():])]


def command_paths(path: Path) -> list[str]:
    _, code = prose_and_blocks(path.read_text(encoding='utf-8'))
    return [p for line in code for found in REPO_PATH.findall(line) for p in expand_braces(found)]


def rel(path: Path) -> str:
    return str(path.relative_to(REPO))


def test_the_docs_exist():
    names = {rel(p) for p in DOCS}
    for page in ('get_started', 'model_zoo', 'weights', 'train_test_coco',
                 'finetune_custom_dataset', 'pretrain_imagenet', 'deploy', 'benchmarks', 'faq',
                 'development'):
        assert f'docs/{page}.md' in names


@pytest.mark.parametrize('doc', DOCS, ids=rel)
def test_relative_links_and_anchors_resolve(doc):
    broken = []
    for target in links(doc):
        if re.match(r'^[a-z][a-z0-9+.-]*:', target, re.IGNORECASE):
            continue  # https:, mailto: ...
        file_part, _, anchor = target.partition('#')
        linked = (doc.parent / file_part).resolve() if file_part else doc
        if not linked.exists():
            broken.append(f'{target}: {file_part} does not exist')
        elif anchor and linked.suffix == '.md' and anchor not in anchors(linked):
            broken.append(f'{target}: no heading with the anchor #{anchor} in {rel(linked)}')
    assert not broken, f'{rel(doc)}:\n' + '\n'.join(broken)


@pytest.mark.parametrize('doc', DOCS, ids=rel)
def test_paths_in_command_blocks_exist(doc):
    missing = sorted({p for p in command_paths(doc) if not (REPO / p).exists()})
    assert not missing, f'{rel(doc)} names paths that do not exist: {missing}'


def test_the_checks_catch_what_they_should(tmp_path):
    """The helpers find a broken anchor and a missing path (a checker that finds nothing
    would pass every page)."""
    page = tmp_path / 'page.md'
    page.write_text('# Train `tools/train.py` & test\n\n## Train `tools/train.py` & test\n\n'
                    '[a](#train-toolstrainpy--test-1) [b](other.md#x) [c](https://x.org)\n\n'
                    '```bash\npython tools/train.py configs/{a,b}.py  # shufflenet_det/tools/x\n'
                    '```\n')
    assert anchors(page) == {'train-toolstrainpy--test', 'train-toolstrainpy--test-1'}
    assert links(page) == ['#train-toolstrainpy--test-1', 'other.md#x', 'https://x.org']
    assert command_paths(page) == ['tools/train.py', 'configs/a.py', 'configs/b.py']


BENCHMARK_TABLES = sorted((REPO / 'docs' / 'benchmarks').glob('*.md'))
PROVENANCE_KEYS = ('command', 'commit', 'date', 'cpu', 'versions')


@pytest.mark.parametrize('table', BENCHMARK_TABLES, ids=rel)
def test_benchmark_tables_start_with_their_provenance(table):
    """Each table under docs/benchmarks/ is tools/benchmark.py's output: the Markdown opens
    with the command, commit, date, CPU and versions, and its JSON twin records the same."""
    lines = table.read_text().splitlines()
    head = lines[:5]
    labels = [line.partition(':')[0] for line in head]
    assert labels == ['- command', '- commit', '- date', '- CPU', '- versions'], head
    assert head[0].startswith('- command: `python tools/benchmark.py '), head[0]
    assert 'torch ' in head[4] and 'onnxruntime ' in head[4], head[4]
    record = json.loads(table.with_suffix('.json').read_text())
    assert all(record['provenance'].get(key) for key in PROVENANCE_KEYS), record['provenance']
    assert record['rows'], f'{rel(table)}: no rows'
    header = next(line for line in lines if line.startswith('| '))
    assert '| % of matmul |' not in header, 'the matmul column compares PyTorch rows only'


FIGURE = re.compile(r'(?<![\w.-])\d+(?:\.\d+)?(?![\w.])')


def table_rows(text: str, heading: str) -> list[list[str]]:
    """The body rows of the first table under ``heading``, as lists of cells."""
    section = text.split(f'\n{heading}\n', 1)[1]
    rows = []
    for line in section.splitlines():
        if line.startswith('|'):
            if not re.match(r'^\|[-| ]+\|$', line):
                rows.append([cell.strip() for cell in line.strip('|').split('|')])
        elif rows or line.startswith('#'):
            break
    return rows[1:]


def figures_missing_from(cell: str, sources: list[str]) -> list[str]:
    """The figures of ``cell`` that no figure of ``sources`` rounds to (at the cell's own
    number of decimals)."""
    found = {token for text in sources for token in FIGURE.findall(text)}
    missing = []
    for figure in FIGURE.findall(cell):
        decimals = len(figure.partition('.')[2])
        if not any(f'{float(token):.{decimals}f}' == figure for token in found):
            missing.append(figure)
    return missing


def linked_sources(row: list[str], page: Path) -> list[str]:
    """The text of the pages the row links to, and of the tables under docs/benchmarks/
    that those pages link to."""
    texts = []
    for target in LINK.findall(' '.join(row)):
        linked = (page.parent / target.partition('#')[0]).resolve()
        text = linked.read_text(encoding='utf-8')
        texts.append(text)
        for inner in LINK.findall(text):
            table = (linked.parent / inner.partition('#')[0]).resolve()
            if table.parent == REPO / 'docs' / 'benchmarks' and table.suffix == '.md':
                texts.append(table.read_text(encoding='utf-8'))
    return texts


def test_each_readme_result_is_in_the_table_it_links_to():
    """Every figure in the README's "measured" column is quoted (or rounded) from the page
    its row links to, or from a table under docs/benchmarks/ that page links to."""
    readme = REPO / 'README.md'
    rows = table_rows(readme.read_text(encoding='utf-8'), '## Results')
    assert rows, 'README.md has no results table under "## Results"'
    unsourced = []
    for row in rows:
        sources = linked_sources(row, readme)
        if not sources:
            unsourced.append(f'{row[0]}: links to no page')
        elif missing := figures_missing_from(row[1], sources):
            unsourced.append(f'{row[0]}: {missing} not found in the linked pages')
    assert not unsourced, '\n'.join(unsourced)


def test_the_figure_check_finds_a_figure_without_a_source():
    assert figures_missing_from('87 ms, MobileNetV3-320-FPN: 110 / 90 ms, fp32',
                                ['| 86.8 | 109.5 | 90.1 |']) == []
    assert figures_missing_from('87 ms and 0.391', ['| 86.8 | 0.390 |']) == ['0.391']
