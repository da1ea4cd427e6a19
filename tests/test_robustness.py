"""asgn6.py on bad input and interruption: clear errors, nothing lost, exact resume."""
import dataclasses
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import torch
from PIL import Image

import asgn6
from dae.files import atomic_write
from dae.images import load_image
from dae.errors import UsageError
from dae.checkpoint import load_checkpoint
from dae.config import RunConfig, batches_per_epoch, resumed_config
from conftest import ROOT, call_main, signal_at, train_args, write_images

TINY = ('--latent-size', 16, '--batch-size', 4)


def run_main(capsys, argv):
    return call_main(asgn6.main, argv, capsys)


def assert_usage_error(status, err, *words):
    assert status == 2
    assert 'Traceback' not in err
    lines = [line for line in err.splitlines() if line.startswith(('asgn6.py: error', 'usage'))]
    assert lines, err
    for word in words:
        assert word in err, (word, err)


# ----------------------------------------------------------------------------- the data folder

@pytest.mark.parametrize('case', ['missing', 'empty', 'file', 'only-text'])
def test_unusable_data_dir_is_a_one_line_error(tmp_path, capsys, case):
    data = tmp_path / 'data'
    if case == 'empty':
        data.mkdir()
    elif case == 'file':
        data.write_text('not a folder')
    elif case == 'only-text':
        (data / 'sub').mkdir(parents=True)
        (data / 'sub' / 'notes.txt').write_text('hello')
    status, out, err = run_main(capsys, train_args(tmp_path, data, *TINY))
    assert_usage_error(status, err, str(data), 'data/pokemon/*.png')
    assert len(err.strip().splitlines()) == 1


def test_flat_folder_of_images_is_accepted(tmp_path, capsys):
    data = write_images(tmp_path / 'flat', 6)
    status, out, err = run_main(capsys, train_args(tmp_path, data, '--epochs', 1, *TINY))
    assert status == 0, err
    assert '6 images' in out


def test_undecodable_files_are_skipped_with_a_warning_naming_each(tmp_path, capsys):
    data = write_images(tmp_path / 'data' / 'x', 6)
    good = open(data / 'img000.png', 'rb').read()
    (data / 'truncated.png').write_bytes(good[:len(good) // 2])
    (data / 'empty.png').write_bytes(b'')
    (data / 'text.png').write_text('this is not an image')
    status, out, err = run_main(capsys, train_args(tmp_path, tmp_path / 'data', '--epochs', 1, *TINY))
    assert status == 0, err
    for name in ('truncated.png', 'empty.png', 'text.png'):
        assert f'skipping {data / name}' in err
    assert '6 images' in out


def test_a_folder_of_only_broken_images_is_a_usage_error(tmp_path, capsys):
    data = tmp_path / 'data' / 'x'
    data.mkdir(parents=True)
    (data / 'a.png').write_bytes(b'')
    (data / 'b.jpg').write_text('nope')
    status, out, err = run_main(capsys, train_args(tmp_path, tmp_path / 'data', *TINY))
    assert status == 2 and 'Traceback' not in err
    assert '0 readable image(s) (2 unreadable)' in err


# ----------------------------------------------------------------------------- image modes and sizes

def test_rgba_transparency_becomes_white(tmp_path):
    pixels = np.zeros((64, 64, 4), dtype=np.uint8)
    pixels[:, 32:] = (200, 0, 0, 255)  # right half opaque red; left half transparent black
    Image.fromarray(pixels, 'RGBA').save(tmp_path / 'a.png')
    image = np.asarray(load_image(tmp_path / 'a.png', 64))
    assert image.shape == (64, 64, 3)
    assert tuple(image[10, 5]) == (255, 255, 255)
    assert tuple(image[10, 60]) == (200, 0, 0)


def test_palette_transparent_colour_becomes_white_not_its_key_colour(tmp_path):
    image = Image.new('P', (64, 64), 0)
    image.putpalette([0, 255, 0, 30, 60, 90] + [0] * 762)  # index 0: the bright green key colour
    image.paste(1, (32, 0, 64, 64))
    image.save(tmp_path / 'p.png', transparency=0)
    assert Image.open(tmp_path / 'p.png').mode == 'P'
    rgb = np.asarray(load_image(tmp_path / 'p.png', 64))
    assert tuple(rgb[5, 5]) == (255, 255, 255)
    assert tuple(rgb[5, 60]) == (30, 60, 90)


def test_grey_with_alpha_and_sixteen_bit_grey_and_cmyk(tmp_path):
    la = np.zeros((64, 64, 2), dtype=np.uint8)
    la[:, 32:] = (100, 255)
    Image.fromarray(la, 'LA').save(tmp_path / 'la.png')
    Image.fromarray(np.full((64, 64), 32896, dtype=np.uint16)).save(tmp_path / 'grey16.png')  # 32896/257 = 128
    Image.new('CMYK', (64, 64), (0, 0, 0, 0)).save(tmp_path / 'cmyk.jpg')  # no ink: white
    la_rgb = np.asarray(load_image(tmp_path / 'la.png', 64))
    assert tuple(la_rgb[0, 0]) == (255, 255, 255) and tuple(la_rgb[0, 63]) == (100, 100, 100)
    assert tuple(np.asarray(load_image(tmp_path / 'grey16.png', 64))[9, 9]) == (128, 128, 128)
    assert np.asarray(load_image(tmp_path / 'cmyk.jpg', 64)).min() >= 250


def test_any_size_and_aspect_ratio_is_resized_and_centre_cropped(tmp_path, capsys):
    data = tmp_path / 'data' / 'x'
    write_images(data, 3, size=(37, 91), seed=1)
    write_images(tmp_path / 'wide', 3, size=(300, 40), seed=2)
    for name in os.listdir(tmp_path / 'wide'):
        os.replace(tmp_path / 'wide' / name, data / f'wide-{name}')
    for path in data.iterdir():
        assert load_image(path, 64).size == (64, 64)
    status, out, err = run_main(capsys, train_args(tmp_path, tmp_path / 'data', '--epochs', 1, *TINY))
    assert status == 0, err


# ----------------------------------------------------------------------------- batch sizes and flags

def test_a_last_batch_of_one_image_is_skipped_not_a_batchnorm_error(tmp_path, capsys):
    data = write_images(tmp_path / 'data' / 'x', 33)
    assert batches_per_epoch(33, 32) == 1 and batches_per_epoch(34, 32) == 2
    status, out, err = run_main(capsys, train_args(tmp_path, data, '--epochs', 2, '--batch-size', 32,
                                                   '--latent-size', 16))
    assert status == 0, err
    assert len((tmp_path / 'out' / 'loss.txt').read_text().splitlines()) == 2


def test_batch_size_above_the_dataset_size_trains_on_the_whole_set(tmp_path, capsys):
    data = write_images(tmp_path / 'data' / 'x', 5)
    status, out, err = run_main(capsys, train_args(tmp_path, data, '--epochs', 3, '--batch-size', 64,
                                                   '--latent-size', 16))
    assert status == 0, err
    assert 'one batch per epoch' in out and '1 iteration per epoch' in out
    assert len((tmp_path / 'out' / 'loss.txt').read_text().splitlines()) == 3


@pytest.mark.parametrize('flag, value', [('--epochs', 0), ('--epochs', -3), ('--save-interval', 0),
                                         ('--log-interval', 0), ('--batch-size', 1), ('--image-size', 32),
                                         ('--noise-level', 0), ('--noise-level', 'inf'), ('--noise-level', 'nan'),
                                         ('--device', 'tpu'), ('--epoch', 1), ('--lr', 0.1)])
def test_bad_flag_values_are_argparse_errors_naming_the_flag(tmp_path, capsys, image_folder, flag, value):
    status, out, err = run_main(capsys, train_args(tmp_path, image_folder, flag, value))
    assert_usage_error(status, err, flag)
    assert err.count('\n') == 1 and err.startswith('asgn6.py: error: ') and err.endswith('(see asgn6.py --help)\n')


def test_unwritable_output_dir_fails_before_training(tmp_path, capsys, image_folder):
    blocker = tmp_path / 'a-file'
    blocker.write_text('')
    argv = train_args(tmp_path, image_folder, *TINY)
    argv[argv.index('--output-dir') + 1] = str(blocker / 'out')
    status, out, err = run_main(capsys, argv)
    assert_usage_error(status, err, '--output-dir', 'cannot write')
    assert 'Iteration' not in out


# ----------------------------------------------------------------------------- failures while training

def test_non_finite_loss_stops_with_the_iteration_and_keeps_the_last_good_save(tmp_path, capsys, image_folder,
                                                                               monkeypatch):
    real_loss, calls = asgn6.LOSSES['l1'], []

    def loss_that_diverges(*args):
        calls.append(1)
        return real_loss(*args) * (float('nan') if len(calls) >= 7 else 1)

    monkeypatch.setitem(asgn6.LOSSES, 'l1', loss_that_diverges)
    status, out, err = run_main(capsys, train_args(tmp_path, image_folder, '--epochs', 5, '--save-interval', 5,
                                                   '--log-interval', 1, *TINY))
    assert status == 1
    assert 'loss is nan at iteration 7' in err
    assert len((tmp_path / 'out' / 'loss.txt').read_text().splitlines()) == 5
    assert load_checkpoint(tmp_path / 'out' / 'checkpoint.pt')['iteration'] == 5


def test_a_write_that_dies_half_way_leaves_the_old_file_whole(tmp_path):
    target = tmp_path / 'loss.txt'
    target.write_text('0.5\n')

    def dies_half_way(tmp):
        open(tmp, 'w').write('0.4\n0.')
        raise OSError('disk gone')

    with pytest.raises(OSError):
        atomic_write(str(target), dies_half_way)
    assert target.read_text() == '0.5\n'
    assert os.listdir(tmp_path) == ['loss.txt']


# ----------------------------------------------------------------------------- interruption and resume

RUN = ('--epochs', 4, '--log-interval', 1, '--save-interval', 7, *TINY)  # 12 iterations on 12 images


@pytest.mark.slow
def test_interrupted_then_resumed_run_repeats_an_uninterrupted_one_exactly(tmp_path, image_folder, capsys, monkeypatch):
    assert asgn6.main(train_args(tmp_path / 'whole', image_folder, *RUN)) == 0
    with monkeypatch.context() as patch:
        signal_at(patch, 8, signal.SIGINT)  # Ctrl-C
        code, out, err = call_main(asgn6.main, train_args(tmp_path / 'split', image_folder, *RUN), capsys)
    assert code == 130 and 'Traceback' not in err and '--resume' in out, err
    stopped_at = load_checkpoint(tmp_path / 'split' / 'out' / 'checkpoint.pt')['iteration']
    assert 8 <= stopped_at < 12  # stopped mid-run, across epochs (3 iterations each) and a save (every 7)
    status, out, err = call_main(asgn6.main, train_args(tmp_path / 'split', image_folder, *RUN, '--resume'), capsys)
    assert status == 0, err
    assert f'starting at iteration {stopped_at + 1}' in out
    split = (tmp_path / 'split' / 'out' / 'loss.txt').read_bytes()
    assert split == (tmp_path / 'whole' / 'out' / 'loss.txt').read_bytes()
    assert len(split.splitlines()) == 12


def test_resume_without_a_checkpoint_or_with_other_settings_is_a_usage_error(tmp_path, capsys, image_folder):
    status, out, err = run_main(capsys, train_args(tmp_path, image_folder, *TINY, '--resume'))
    assert_usage_error(status, err, '--resume', 'no checkpoint')
    assert run_main(capsys, train_args(tmp_path, image_folder, '--epochs', 1, *TINY))[0] == 0
    status, out, err = run_main(capsys, train_args(tmp_path, image_folder, '--epochs', 2, '--latent-size', 32,
                                                   '--batch-size', 4, '--resume'))
    assert_usage_error(status, err, '--latent-size 16')
    (tmp_path / 'junk.pt').write_text('not a checkpoint')
    status, out, err = run_main(capsys, train_args(tmp_path, image_folder, *TINY, '--resume', tmp_path / 'junk.pt'))
    assert_usage_error(status, err, 'not a checkpoint written by asgn6.py')


def test_a_cosine_run_resumed_with_another_length_is_refused_and_a_constant_one_extends(tmp_path, capsys, image_folder):
    cosine = ('--lr-schedule', 'cosine', *TINY)
    assert run_main(capsys, train_args(tmp_path / 'c', image_folder, '--epochs', 2, *cosine))[0] == 0
    status, out, err = run_main(capsys, train_args(tmp_path / 'c', image_folder, '--epochs', 4, *cosine, '--resume'))
    assert_usage_error(status, err, '--epochs 2')  # the schedule's length: 4 would re-stretch it
    assert len((tmp_path / 'c' / 'out' / 'loss.txt').read_text().splitlines()) == 6  # untouched
    assert run_main(capsys, train_args(tmp_path / 'k', image_folder, '--epochs', 1, *TINY))[0] == 0
    status, out, err = run_main(capsys, train_args(tmp_path / 'k', image_folder, '--epochs', 2, *TINY, '--resume'))
    assert status == 0 and len((tmp_path / 'k' / 'out' / 'loss.txt').read_text().splitlines()) == 6


def test_a_checkpoint_of_another_device_resumes_with_a_note(tmp_path, capsys, image_folder, monkeypatch):
    import torch
    assert run_main(capsys, train_args(tmp_path, image_folder, '--epochs', 1, *TINY))[0] == 0
    path = tmp_path / 'out' / 'checkpoint.pt'
    checkpoint = torch.load(path, weights_only=True)
    torch.save({**checkpoint, 'noise_rng_device': 'cuda'}, path)  # as a GPU run saves it (its tensors: see below)
    real_load, seen = torch.load, []

    def load(*args, **kwargs):
        seen.append(kwargs.get('map_location'))
        return real_load(*args, **kwargs)
    monkeypatch.setattr(torch, 'load', load)
    status, out, err = run_main(capsys, train_args(tmp_path, image_folder, '--epochs', 2, *TINY, '--resume'))
    assert status == 0, err
    assert seen == ['cpu']  # a GPU's tensors are mapped to the CPU before anything reads them
    assert 'checkpoint written on cuda; the noise will not repeat exactly' in err
    assert len((tmp_path / 'out' / 'loss.txt').read_text().splitlines()) == 6


def test_a_resume_on_a_folder_with_another_number_of_images_is_refused(tmp_path, capsys, image_folder):
    assert run_main(capsys, train_args(tmp_path, image_folder, '--epochs', 1, *TINY))[0] == 0
    write_images(tmp_path / 'extra', 1)
    os.rename(tmp_path / 'extra' / 'img000.png', image_folder / 'shapes' / 'new.png')
    status, out, err = run_main(capsys, train_args(tmp_path, image_folder, '--epochs', 2, *TINY, '--resume'))
    assert_usage_error(status, err, 'trained on 12 images', 'has 13')


def test_a_model_too_large_for_the_memory_is_one_line_naming_it(tmp_path, capsys, image_folder):
    status, out, err = run_main(capsys, train_args(tmp_path, image_folder, '--latent-size', 100_000_000))
    assert_usage_error(status, err, '--latent-size 100000000: the spec model does not fit in memory')
    assert len(err.strip().splitlines()) == 1


def test_ctrl_c_before_the_first_save_says_nothing_was_saved(tmp_path, capsys, image_folder, monkeypatch):
    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt
    monkeypatch.setattr(asgn6, 'load_dataset', interrupted)  # Ctrl-C while the images are decoded
    status, out, err = run_main(capsys, train_args(tmp_path, image_folder, *TINY))
    assert status == 130 and 'stopped before the first save; nothing was saved' in err and 'Traceback' not in err


def test_ctrl_c_after_a_save_prints_the_command_that_continues(tmp_path, capsys, image_folder, monkeypatch):
    assert run_main(capsys, train_args(tmp_path, image_folder, '--epochs', 1, *TINY))[0] == 0

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt
    monkeypatch.setattr(asgn6, 'load_dataset', interrupted)  # a second Ctrl-C lands as a KeyboardInterrupt
    status, out, err = run_main(capsys, train_args(tmp_path, image_folder, '--epochs', 2, *TINY, '--resume'))
    assert status == 130 and 'the checkpoint hold the last save. To continue:' in err
    command = err.strip().splitlines()[-1].split()
    assert command[0] == 'python' and command[1].endswith('asgn6.py') and command[-1] == '--resume'
    assert command[command.index('--epochs') + 1] == '2'  # the flags of this call, which it continues


@pytest.mark.slow
@pytest.mark.parametrize('argv', [['--epoch', '5'], ['--help']])
def test_a_mistyped_flag_or_help_answers_before_torch_loads(tmp_path, argv):
    result = subprocess.run([sys.executable, '-X', 'importtime', os.path.join(ROOT, 'asgn6.py'), *argv],
                            cwd=tmp_path, capture_output=True, text=True)
    assert result.returncode == (0 if argv == ['--help'] else 2)
    imported = [line.split('|')[-1].strip() for line in result.stderr.splitlines() if line.startswith('import time')]
    assert 'argparse' in imported and not [name for name in imported if name.split('.')[0] == 'torch']


def test_ctrl_c_while_torch_loads_exits_130_without_a_traceback(tmp_path, image_folder):
    process = subprocess.Popen([sys.executable, os.path.join(ROOT, 'asgn6.py'), *train_args(tmp_path, image_folder)],
                               cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    time.sleep(0.3)  # torch takes a second or more to load
    process.send_signal(signal.SIGINT)
    out, err = process.communicate(timeout=60)
    assert process.returncode == 130 and out == ''
    assert err.strip() == 'asgn6.py: stopped while loading; nothing was saved'


def test_a_run_folder_stands_for_its_checkpoint_and_flags_are_printed_as_typed(tmp_path, capsys, image_folder):
    assert run_main(capsys, train_args(tmp_path, image_folder, '--epochs', 1, '--augment', *TINY))[0] == 0
    status, out, err = run_main(capsys, ['--data-dir', image_folder, '--epochs', 2, '--resume', tmp_path / 'out'])
    assert status == 0, err
    taken = next(line for line in out.splitlines() if line.startswith('from the checkpoint:'))
    assert ' --augment' in taken and 'True' not in taken


def test_a_resumed_config_takes_what_was_not_given_and_refuses_what_defines_the_run():
    saved = RunConfig(latent_size=16, epochs=2, seed=7)
    config, taken = resumed_config(saved, {'epochs': 4, 'seed': 7})
    assert config == dataclasses.replace(saved, epochs=4) and taken == {'latent_size': 16}
    with pytest.raises(UsageError, match="run has --latent-size 16; this one has --latent-size 32"):
        resumed_config(saved, {'latent_size': 32})
    with pytest.raises(UsageError, match='--epochs 2; this one has --epochs 4'):  # a cosine run's length is its own
        resumed_config(dataclasses.replace(saved, lr_schedule='cosine'), {'epochs': 4})
    with pytest.raises(UsageError, match='no --augment; this one has --augment'):
        resumed_config(saved, {'augment': True})


def test_a_checkpoint_of_format_2_loads_with_its_nested_model_settings(tmp_path):
    """Format 2 (weights/*.pt) nested the model's settings and kept the log and save intervals."""
    old = {'model': {'name': 'conv-encoder', 'latent_size': 16, 'image_size': 64}, 'batch_size': 4, 'epochs': 3,
           'log_interval': 1, 'save_interval': 100, 'augment': True}
    torch.save({'format': 2, 'config': old, 'iteration': 0}, tmp_path / 'old.pt')
    config = load_checkpoint(tmp_path / 'old.pt')['config']
    assert config == RunConfig(model='conv-encoder', latent_size=16, batch_size=4, epochs=3, augment=True)
