"""The benchmark script runs end to end (its numbers are read by people, never asserted here)."""
import os
import subprocess
import sys

from conftest import ROOT


def test_benchmark_runs_every_mode_on_a_tiny_folder(image_folder):
    command = [sys.executable, os.path.join(ROOT, 'benchmarks', 'bench_train.py'), '--data-dir', str(image_folder),
               '--device', 'cpu', '--rounds', '1', '--iterations', '1', '--bf16-iterations', '1', '--batch-size', '4', '--profile', '1']
    result = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    for mode in ('starter', 'asgn6-fp32', 'asgn6-fp32-cl', 'asgn6-bf16'):
        assert f'| {mode} |' in result.stdout
    assert 'peak resident memory' in result.stdout
    assert 'self time by operator' in result.stdout
