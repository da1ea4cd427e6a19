"""The benchmark scripts run end to end (their numbers are read by people, never asserted here)."""
import os
import subprocess
import sys

import asgn6
from conftest import ROOT, train_args


def test_benchmark_runs_every_mode_on_a_tiny_folder(image_folder):
    command = [sys.executable, os.path.join(ROOT, 'benchmarks', 'bench_train.py'), '--data-dir', str(image_folder),
               '--device', 'cpu', '--rounds', '1', '--iterations', '1', '--bf16-iterations', '1', '--batch-size', '4', '--profile', '1']
    result = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    for mode in ('starter', 'asgn6-fp32', 'asgn6-fp32-cl', 'asgn6-bf16', 'asgn6-bf16-cl'):
        assert f'| {mode} |' in result.stdout
    assert 'peak resident memory' in result.stdout
    assert 'self time by operator' in result.stdout


def test_data_benchmark_compares_both_stores_on_a_tiny_folder(tmp_path):
    command = [sys.executable, os.path.join(ROOT, 'benchmarks', 'bench_data.py'), '--counts', '40', '--iterations',
               '1', '--cache', str(tmp_path)]
    result = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert '| 40 | float32 |' in result.stdout and '| 40 | uint8 |' in result.stdout
    assert len(os.listdir(tmp_path / 'jpeg-40')) == 41  # 40 images and the marker of a complete folder


def test_denoise_benchmark_times_a_large_image_and_compares_tiled_with_whole(tmp_path, image_folder):
    assert asgn6.main(train_args(tmp_path, image_folder, '--epochs', 1, '--batch-size', 4, '--model', 'unet')) == 0
    command = [sys.executable, os.path.join(ROOT, 'benchmarks', 'bench_denoise.py'), '--checkpoint',
               str(tmp_path / 'out' / 'checkpoint.pt'), '--sizes', '300', '--compare-size', '200', '--data-dir',
               str(image_folder)]
    result = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert '| 300x300 | 0 |' in result.stdout and 'MiB |' in result.stdout
    assert 'difference 0.0000 dB' in result.stdout
