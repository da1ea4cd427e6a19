"""asgn6.ipynb runs top to bottom, headless, on a tiny budget (one epoch on eight images): an error in any
cell fails the test."""
import os
import re

import pytest

from conftest import ROOT, write_images

nbformat = pytest.importorskip('nbformat')  # the README's test install brings it, nbclient and ipykernel
NotebookClient = pytest.importorskip('nbclient').NotebookClient


@pytest.mark.slow
def test_the_notebook_runs_top_to_bottom_on_a_tiny_budget(tmp_path, monkeypatch):
    write_images(tmp_path / 'data' / 'x', 8)
    monkeypatch.setenv('ASGN6_EPOCHS', '1')
    monkeypatch.setenv('ASGN6_DATA_DIR', str(tmp_path / 'data'))
    monkeypatch.setenv('ASGN6_OUTPUT_DIR', str(tmp_path / 'out'))
    notebook = nbformat.read(os.path.join(ROOT, 'asgn6.ipynb'), as_version=4)
    NotebookClient(notebook, timeout=120, kernel_name='python3', resources={'metadata': {'path': ROOT}}).execute()
    printed = '\n'.join(output.get('text', '') for cell in notebook.cells if cell.cell_type == 'code'
                        for output in cell.outputs)
    assert 'Ran 4 tests' in printed and 'exit status 0' in printed and 'done: 1 iterations' in printed
    images = sum('image/png' in output.get('data', {}) for cell in notebook.cells if cell.cell_type == 'code'
                 for output in cell.outputs)
    errors = [output for cell in notebook.cells if cell.cell_type == 'code' for output in cell.outputs
              if output.output_type == 'error']  # display() reports a missing picture as an output, not a raise
    assert not errors, [f'{error.ename}: {error.evalue}' for error in errors]
    assert images >= 7  # the loss, samples, novels, interpolation, held-out curves, variants, the denoiser's demo
    assert (tmp_path / 'out' / 'checkpoint.pt').exists() and (tmp_path / 'out' / 'shipped-denoiser').is_dir()
    # each table and figure that a written answer cites is shown above it, numbered as in the report
    shown = ''
    for cell in notebook.cells:
        if cell.cell_type == 'code':
            shown += ''.join(output.get('data', {}).get('text/markdown', '') for output in cell.outputs)
        elif cell.source.startswith('<!-- ANSWER'):
            cited = set(re.findall(r'(Table|Figure)s? (\d+)', cell.source))
            assert cited, cell.source[:40]
            for kind, number in cited:
                assert f'**{kind} {number}.**' in shown, (cell.source[:40], kind, number)
