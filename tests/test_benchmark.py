"""The benchmark scripts run end to end on tiny settings (their numbers are read by people, never asserted)."""
import pytest

import asgn6
from benchmarks import bench_data, bench_denoise, bench_train, starter_loop
from conftest import call_main, train_args


@pytest.mark.slow
def test_the_training_benchmark_times_each_mode_as_a_whole_process(image_folder, capsys):
    argv = ['--data-dir', image_folder, '--device', 'cpu', '--rounds', 1, '--images', 8, '--epochs', 2]
    status, out, err = call_main(bench_train.main, argv, capsys)
    assert status == 0, err
    rows = [line for line in out.splitlines() if line.startswith('| ')]
    assert rows[0].startswith('| mode | ms an iteration (median) | min-max | speed vs starter |')
    assert [row.split(' | ')[0] for row in rows[1:]] == ['| starter', '| asgn6-fp32', '| asgn6-bf16']
    assert rows[1].split(' | ')[3] == '1.00x' and rows[2].endswith(' MiB |')


@pytest.mark.slow
def test_the_training_benchmark_can_run_the_same_scripts_inside_its_own_process(image_folder, capsys):
    argv = ['--data-dir', image_folder, '--device', 'cpu', '--rounds', 1, '--images', 8, '--epochs', 2,
            '--modes', 'starter', 'asgn6-fp32', '--in-process']
    status, out, err = call_main(bench_train.main, argv, capsys)
    assert status == 0, err
    rows = [line for line in out.splitlines() if line.startswith('| ')]
    assert [row.split(' | ')[0] for row in rows[1:]] == ['| starter', '| asgn6-fp32']
    assert all(row.endswith(' | - |') for row in rows[1:])  # no process of their own: no peak memory


@pytest.mark.slow
def test_the_training_benchmark_times_networks_against_the_first_named(image_folder, capsys):
    argv = ['--data-dir', image_folder, '--device', 'cpu', '--rounds', 1, '--images', 8, '--epochs', 2,
            '--models', 'unet', 'residual-unet']
    status, out, err = call_main(bench_train.main, argv, capsys)
    assert status == 0, err
    rows = [line for line in out.splitlines() if line.startswith('| ')]
    assert rows[0].startswith('| mode | ms an iteration (median) | min-max | speed vs unet |')
    assert [row.split(' | ')[0] for row in rows[1:]] == ['| unet', '| residual-unet']  # and no pipeline modes


def test_the_starter_loop_trains_and_writes_its_losses(image_folder, tmp_path, capsys):
    argv = ['--data-dir', image_folder, '--epochs', 2, '--batch-size', 6, '--loss-file', tmp_path / 'loss.txt',
            '--device', 'cpu']
    status, out, err = call_main(starter_loop.main, argv, capsys)
    assert status == 0, err
    assert len((tmp_path / 'loss.txt').read_text().split()) == 4 and 'epoch 2/2: 4 iterations' in out


@pytest.mark.slow
def test_the_data_benchmark_makes_its_folder_once_and_measures_it(tmp_path, capsys):
    bench = bench_data
    status, out, err = call_main(bench.main, ['--counts', 8, '--iterations', 1, '--cache', tmp_path], capsys)
    assert status == 0, err
    assert '| 8 | ' in out and ' MiB | ' in out
    assert len(list((tmp_path / 'jpeg-8').iterdir())) == 9  # 8 images and the marker of a complete folder


@pytest.mark.slow
def test_the_denoise_benchmark_times_a_large_image_and_compares_tiled_with_whole(tmp_path, image_folder, capsys):
    assert asgn6.main(train_args(tmp_path, image_folder, '--epochs', 1, '--batch-size', 6, '--model', 'unet')) == 0
    bench = bench_denoise
    argv = ['--checkpoint', tmp_path / 'out' / 'checkpoint.pt', '--sizes', 130, '--compare-size', 130,
            '--data-dir', image_folder]
    status, out, err = call_main(bench.main, argv, capsys)
    assert status == 0, err
    assert '| 130x130 | 0 |' in out and 'MiB |' in out
    assert 'difference 0.0000 dB' in out


def test_the_starter_loop_on_a_flat_folder_says_which_layout_it_needs(tmp_path, capsys):
    from conftest import write_images
    flat = write_images(tmp_path / 'flat', 4)
    status, out, err = call_main(starter_loop.main, ['--data-dir', flat, '--device', 'cpu'], capsys)
    assert status == 2 and 'ImageFolder layout' in err and len(err.strip().splitlines()) == 1
