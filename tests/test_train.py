"""asgn6.py end to end on tiny synthetic folders, on the CPU, in seconds."""
import importlib.util
import os
import re
import subprocess
import sys

import numpy as np
import pytest
import torch
from PIL import Image

import asgn6
import models
import plot_loss
from dae.checkpoint import load_checkpoint
from dae.trained import load_model
from dae.loss_stats import centred_average, convergence_stats, moving_average
from conftest import ROOT, train_args, write_images


def read_losses(path):
    return [float(line) for line in open(path).read().splitlines()]


def test_short_run_writes_every_artefact(tmp_path, image_folder):
    # 12 images, batch 5: batches of 5, 5 and 2 -> 3 iterations per epoch, 9 in all
    args = train_args(tmp_path, image_folder, '--epochs', 3, '--batch-size', 5, '--save-interval', 4,
                      '--latent-size', 16)
    assert asgn6.main(args) == 0
    out = tmp_path / 'out'
    losses = read_losses(out / 'loss.txt')
    assert len(losses) == 9 and all(np.isfinite(losses))
    # save_image: images of 64 px with 2 px padding around each
    assert Image.open(out / 'sample-000004.png').size == (5 * 66 + 2, 3 * 66 + 2)  # clean/noisy/denoised rows
    assert Image.open(out / 'novel-000004.png').size == (5 * 66 + 2, 66 + 2)  # 5 latents fit in one row of 8
    assert (out / 'sample-000009.png').exists() and (out / 'novel-000009.png').exists()  # the last iteration
    checkpoint = load_checkpoint(out / 'checkpoint.pt')
    assert checkpoint['iteration'] == 9 and checkpoint['losses'] == losses
    model, config = load_model(out / 'checkpoint.pt', torch.device('cpu'))
    assert config.model.latent_size == 16 and isinstance(model, models.AutoEncoder) and not model.training


def test_loss_falls_on_a_tiny_fixed_dataset(tmp_path):
    data = write_images(tmp_path / 'data' / 'x', 8)
    args = train_args(tmp_path, data, '--epochs', 30, '--batch-size', 8, '--latent-size', 32, '--save-interval', 1000)
    assert asgn6.main(args) == 0
    losses = read_losses(tmp_path / 'out' / 'loss.txt')
    assert len(losses) == 30
    assert np.mean(losses[-5:]) < 0.6 * np.mean(losses[:5])


def test_same_seed_gives_identical_losses(tmp_path, image_folder):
    runs = []
    for name in ('a', 'b'):
        args = train_args(tmp_path / name, image_folder, '--epochs', 2, '--batch-size', 4, '--latent-size', 16)
        assert asgn6.main(args) == 0
        runs.append((tmp_path / name / 'out' / 'loss.txt').read_text())
    assert runs[0] == runs[1]
    args = train_args(tmp_path / 'c', image_folder, '--epochs', 2, '--batch-size', 4, '--latent-size', 16,
                      '--seed', 1)
    assert asgn6.main(args) == 0
    assert (tmp_path / 'c' / 'out' / 'loss.txt').read_text() != runs[0]


def test_import_has_no_side_effects(tmp_path):
    code = 'import asgn6, sys; sys.exit(0 if callable(asgn6.main) else 1)'
    result = subprocess.run([sys.executable, '-c', code], cwd=tmp_path, env={'PYTHONPATH': ROOT},
                            capture_output=True, text=True)
    assert result.returncode == 0 and result.stdout == ''
    assert list(tmp_path.iterdir()) == []


def help_entries(text):
    """The --help text of a script as {flag: its description}, read as a user reads it."""
    entries, flag = {}, None
    for line in text.split('options:', 1)[1].splitlines():
        match = re.match(r'  (-\S*?)[ ,=]|  (-\S+)$', line)
        if match:
            flag = match.group(1) or match.group(2)
            entries[flag] = line
        elif flag:
            entries[flag] += line
    return entries


def load_script(path):
    """A script of a sub-folder as a module, to call its main() in this process."""
    spec = importlib.util.spec_from_file_location(os.path.splitext(os.path.basename(path))[0], os.path.join(ROOT, path))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize('script', ['asgn6.py', 'denoise.py', 'plot_loss.py',
                                    os.path.join('experiments', 'run_experiments.py'),
                                    os.path.join('benchmarks', 'bench_train.py'),
                                    os.path.join('benchmarks', 'bench_data.py'),
                                    os.path.join('benchmarks', 'bench_denoise.py')])
def test_help_documents_every_flag_with_its_default(script, capsys):
    with pytest.raises(SystemExit) as exit_:
        load_script(script).main(['--help'])
    assert exit_.value.code == 0
    entries = {flag: text for flag, text in help_entries(capsys.readouterr().out).items() if flag != '-h'}
    source = open(os.path.join(ROOT, script)).read()
    declared = set(re.findall(r"add_argument\('(--[a-z0-9-]+)'", source)) | ({'--device'} if 'add_device_flag' in source else set())
    assert declared and declared == set(entries), (script, declared ^ set(entries))  # every flag is in the help
    for flag, text in entries.items():
        assert 'default' in text, (script, flag)


def test_plot_loss_saves_a_figure_and_prints_the_numbers(tmp_path, capsys):
    losses = 0.1 + 0.5 * np.exp(-np.arange(1000) / 100)
    (tmp_path / 'loss.txt').write_text(''.join(f'{v}\n' for v in losses.tolist()))
    figure = tmp_path / 'loss.png'
    argv = [str(tmp_path / 'loss.txt'), '--save', str(figure), '--window', '10', '--per-epoch', '24']
    assert plot_loss.main(argv) == 0
    assert figure.stat().st_size > 10_000
    assert Image.open(figure).size[0] > 500
    printed = capsys.readouterr().out
    assert 'final 0.1000' in printed and 'minimum 0.1000' in printed


def test_convergence_stats_on_a_known_curve():
    losses = np.concatenate([np.full(900, 2.0), np.full(100, 1.0)])
    stats = convergence_stats(losses, window=1)
    assert stats['smoothed_90'] == 2.0 and stats['smoothed_final'] == 1.0
    assert stats['last_10pct_change'] == -0.5
    assert stats['minimum_at'] == 901
    np.testing.assert_allclose(moving_average(np.array([1.0, 3.0, 5.0, 7.0]), 2), [1, 2, 4, 6])


def test_the_centred_average_does_not_lag_a_falling_curve():
    falling = np.arange(100, 0, -1, dtype=float)
    np.testing.assert_allclose(centred_average(falling, 11)[5:-5], falling[5:-5])  # a straight line is kept
    np.testing.assert_allclose(centred_average(np.array([1.0, 3.0, 5.0, 7.0]), 3), [2, 3, 5, 6])  # fewer at the ends
    assert (moving_average(falling, 11)[10:] > falling[10:]).all()  # what a trailing mean does: sits above


def test_the_first_losses_of_a_tiny_seeded_run_are_pinned(tmp_path, image_folder):
    """A change to the random streams (training.Streams), the split, the batch order or the step shows here.
    The first loss is the same on every CPU class; later ones differ between classes in the last digits."""
    assert asgn6.main(train_args(tmp_path, image_folder, '--epochs', 2, '--batch-size', 4, '--latent-size', 16)) == 0
    losses = read_losses(tmp_path / 'out' / 'loss.txt')
    assert losses[0] == 0.9298922419548035
    assert losses[1:] == pytest.approx([0.9148007035255432, 0.8199610710144043, 0.7448695302009583,
                                        0.7280918955802917, 0.6894538998603821], rel=1e-4)


def test_plot_loss_starts_without_torch():
    result = subprocess.run([sys.executable, '-X', 'importtime', os.path.join(ROOT, 'plot_loss.py'), '--help'],
                            capture_output=True, text=True)
    assert result.returncode == 0 and 'usage' in result.stdout
    imported = [line.split('|')[-1].strip() for line in result.stderr.splitlines() if line.startswith('import time')]
    assert 'numpy' in imported and not [name for name in imported if name.split('.')[0] == 'torch']


def test_no_function_takes_more_than_six_parameters():
    """A function that needs more is missing an object (a config, a job); up_block keeps the columns of the
    assignment's table."""
    import ast
    import subprocess as sp
    files = sp.run(['git', 'ls-files', '*.py'], cwd=ROOT, capture_output=True, text=True).stdout.split()
    files += [os.path.join('dae', name) for name in os.listdir(os.path.join(ROOT, 'dae')) if name.endswith('.py')]
    crowded = []
    for path in sorted(set(files)):
        for node in ast.walk(ast.parse(open(os.path.join(ROOT, path)).read())):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                args = node.args
                names = [a.arg for a in args.posonlyargs + args.args + args.kwonlyargs + [args.vararg, args.kwarg] if a]
                if len([name for name in names if name not in ('self', 'cls')]) > 6 and node.name != 'up_block':
                    crowded.append(f'{path}:{node.lineno} {node.name}')
    assert crowded == []


def test_check_models_help_says_what_it_checks(capsys, monkeypatch):
    import runpy
    monkeypatch.setattr(sys, 'argv', ['check_models.py', '--help'])
    with pytest.raises(SystemExit) as exit_:
        runpy.run_path(os.path.join(ROOT, 'check_models.py'), run_name='__main__')
    assert exit_.value.code == 0 and capsys.readouterr().out.startswith('Size checker for models.py')


def test_run_experiments_help_lists_its_runs_once(capsys):
    with pytest.raises(SystemExit):
        load_script(os.path.join('experiments', 'run_experiments.py')).main(['--help'])
    assert capsys.readouterr().out.count('residual-unet+cosine-150ep') == 1
