"""asgn6.py end to end on tiny synthetic folders, on the CPU, in seconds."""
import importlib
import os
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
from dae.denoising import load_model
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
    assert config.latent_size == 16 and isinstance(model, models.AutoEncoder) and not model.training


@pytest.mark.slow
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


@pytest.mark.slow
def test_import_has_no_side_effects(tmp_path):
    code = 'import asgn6, sys; sys.exit(0 if callable(asgn6.main) else 1)'
    result = subprocess.run([sys.executable, '-c', code], cwd=tmp_path, env={'PYTHONPATH': ROOT},
                            capture_output=True, text=True)
    assert result.returncode == 0 and result.stdout == ''
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize('script', ['asgn6', 'denoise', 'plot_loss', 'experiments.run_experiments',
                                    'benchmarks.bench_train', 'benchmarks.bench_data', 'benchmarks.bench_denoise',
                                    'report.make_figures'])
def test_every_script_answers_help(script, capsys):
    with pytest.raises(SystemExit) as exit_:
        importlib.import_module(script).main(['--help'])
    assert exit_.value.code == 0 and capsys.readouterr().out.startswith('usage: ')


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


def test_plot_loss_starts_without_torch():
    result = subprocess.run([sys.executable, '-X', 'importtime', os.path.join(ROOT, 'plot_loss.py'), '--help'],
                            capture_output=True, text=True)
    assert result.returncode == 0 and 'usage' in result.stdout
    imported = [line.split('|')[-1].strip() for line in result.stderr.splitlines() if line.startswith('import time')]
    assert 'numpy' in imported and not [name for name in imported if name.split('.')[0] == 'torch']
