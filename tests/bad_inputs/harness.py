"""The bad-input tables' one case schema and the one runner that checks a case.

A case runs a real tool (``tools/NAME.py``'s ``main`` in this process, or a ``tools/*.sh``
script in a shell) or an API call, on arguments whose ``{placeholders}`` the table's
fixture fills in from its places (values by name), and states the outcome:

* a non-zero exit status: exactly one ``error: ...`` line on stderr (argparse's reads
  ``PROG: error: ...``), holding every text of ``says``, and no traceback;
* an exception type: the API call raises it, with every text of ``says`` in its message;
* status 0: every text of ``says`` in stdout, where MMEngine's log is pointed
  (:func:`tests.helpers.mmengine_console_to_stdout`); with ``warns``, each on one warning line.

After any case, no ``.partial`` file is left under ``{tmp}``.
"""
import os
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Optional, Union

import pytest
import torch

from ..helpers import REPO, load_tool, mmengine_console_to_stdout

NO_GPU = 'no_gpu'        # the case expects torch to see no GPU
READ_ONLY = 'read_only'  # the case needs {read_only}, a folder this user cannot write (not root)


@dataclass(frozen=True)
class Case:
    """One bad input and the outcome it must give.

    Attributes:
        id (str): The test id; docs/faq.md cites it in brackets.
        tool (str | callable): ``tools/TOOL.py`` (``'TOOL'``) or ``tools/TOOL.sh``
            (``'TOOL.sh'``), or the API call, given the filled ``args``.
        args: The arguments (a dict: keywords of an API call), or a callable of the places
            that makes the inputs and returns them.
        status (int | type): The exit status, or the exception type the API call raises.
        says (str | tuple): Texts of the error line, the exception or the output.
        setup (callable): Applied to the places before ``args``.
        then (callable): Called with an API call's result; must return True.
        warns (bool): On success, each text of ``says`` is on one line that warns.
        needs (tuple): :data:`NO_GPU`, :data:`READ_ONLY`, or fixtures whose values fill
            the placeholders of their names.
        env (dict): Environment variables of a script.
        creates (tuple): Files the run must leave; ``absent``: paths that must not exist.
    """
    id: str
    tool: Union[str, Callable]
    args: Any = ()
    status: Union[int, type] = 2
    says: Union[str, tuple] = ()
    setup: Optional[Callable[[dict], Any]] = None
    then: Optional[Callable[[Any], bool]] = None
    warns: bool = False
    needs: tuple = ()
    env: dict = field(default_factory=dict)
    creates: tuple = ()
    absent: tuple = ()


def table(cases: list) -> pytest.MarkDecorator:
    """Parametrise a test's ``case`` argument with ``cases``, under their ids."""
    return pytest.mark.parametrize('case', cases, ids=[c.id for c in cases])


def fill(value: Any, places: dict) -> Any:
    """``value`` with the ``{placeholders}`` in its strings and paths filled in."""
    if isinstance(value, str):
        return value.format(**places)
    if isinstance(value, Path):
        return Path(str(value).format(**places))
    if isinstance(value, (list, tuple)):
        return type(value)(fill(v, places) for v in value)
    if isinstance(value, dict):
        return {k: fill(v, places) for k, v in value.items()}
    return value


def run_tool(tool: str, args: list, capsys) -> tuple[int, str, str]:
    """Exit status, stdout and stderr of ``tools/TOOL.py ARGS``, run in this process."""
    mmengine_console_to_stdout()
    # Forget an earlier run's visualizer: mmdet's runtime names it 'visualizer', and
    # MMEngine would hand that instance, with its deleted work dir, to this run's Runner.
    from mmdet.visualization import DetLocalVisualizer
    from mmengine.visualization import Visualizer
    for cls in (Visualizer, DetLocalVisualizer):
        cls._instance_dict.pop('visualizer', None)
    capsys.readouterr()
    try:
        status = load_tool(tool).main(args)
    except SystemExit as exc:  # argparse's own errors
        status = exc.code
    out, err = capsys.readouterr()
    return status, out, err


def run_script(script: str, args: list, env: dict, tmp: Path) -> tuple[int, str, str]:
    """``bash tools/SCRIPT ARGS`` with ``env``, and a stand-in interpreter that records a
    launch in ``tmp/launched``."""
    stand_in = tmp / 'python'
    stand_in.write_text(f'#!/usr/bin/env bash\ntouch {tmp / "launched"}\n')
    stand_in.chmod(0o755)
    base = {k: v for k, v in os.environ.items()
            if k not in ('NNODES', 'NODE_RANK', 'PORT', 'MASTER_ADDR')}
    proc = subprocess.run(['bash', f'tools/{script}', *args], cwd=REPO, capture_output=True,
                          text=True, env=dict(base, PYTHON=str(stand_in), **env), timeout=60)
    return proc.returncode, proc.stdout, proc.stderr


def check(case: Case, places: dict, request, capsys) -> None:
    """Run ``case`` on ``places`` (``{tmp}``: the case's scratch folder) and assert its outcome."""
    places = dict(places, id=case.id)
    if NO_GPU in case.needs and torch.cuda.is_available():
        pytest.skip('torch sees a GPU here')
    if READ_ONLY in case.needs and os.access(places[READ_ONLY], os.W_OK):
        pytest.skip('this user may write into read-only folders (root)')
    for name in set(case.needs) - {NO_GPU, READ_ONLY}:
        places[name] = request.getfixturevalue(name)
    if case.setup:
        case.setup(places)
    args = fill(case.args(places) if callable(case.args) else case.args, places)
    says = fill((case.says, ) if isinstance(case.says, str) else case.says, places)
    if callable(case.tool):
        call = (lambda: case.tool(**args)) if isinstance(args, dict) else lambda: case.tool(*args)
        if isinstance(case.status, type):
            with pytest.raises(case.status) as error:
                call()
            # Callers catch the built-in types that InputError's subclasses derive from.
            assert isinstance(error.value, (ValueError, FileNotFoundError)), error.value
            assert all(text in str(error.value) for text in says), error.value
        else:
            assert case.then(call())
    else:
        if case.tool.endswith('.sh'):
            status, out, err = run_script(case.tool, args, case.env, Path(places['tmp']))
        else:
            status, out, err = run_tool(case.tool, args, capsys)
        report = f'exit status {status}\nstdout: {out[-3000:]}\nstderr: {err[-3000:]}'
        assert status == case.status, report
        errors = [line for line in err.splitlines()
                  if line.startswith('error: ') or ': error: ' in line]
        if status:
            assert 'Traceback' not in err, err
            assert len(errors) == 1, err
            assert all(text in errors[0] for text in says), errors[0]
        else:
            assert not errors, report
            assert all(text in out for text in says), report
        if case.warns:
            for text in says:
                lines = [line for line in out.splitlines() if text in line]
                assert len(lines) == 1 and 'warning' in lines[0].lower(), lines
    for path in fill(case.creates, places):
        assert os.path.isfile(path), path
    for path in fill(case.absent, places):
        assert not os.path.exists(path), path
    leftovers = [str(p) for p in Path(places['tmp']).rglob('*') if '.partial' in p.name]
    assert not leftovers, leftovers
