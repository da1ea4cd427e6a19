"""Nothing a user has made is lost, no input gives a traceback: protected runs, the run lock, resumes that
take their settings from the checkpoint, quoted resume commands, file modes, one exit-status convention."""
import dataclasses
import os
import shlex
import signal
import subprocess
import sys

import pytest
import torch
from PIL import Image

import asgn6
import denoise
from dae import images
import plot_loss
from conftest import ROOT, call_main, signal_at, train_args, write_images
from dae.checkpoint import load_checkpoint
from dae.run_folder import LOCK_NAME

TINY = ('--latent-size', 16, '--batch-size', 4, '--log-interval', 1)


def one_error_line(err, prog='asgn6.py'):
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith(f'{prog}: error: '), err
    assert 'Traceback' not in err
    return lines[0]


# ----------------------------------------------------------------------------- a finished run is never replaced

def test_a_fresh_run_into_another_runs_folder_is_refused_and_overwrite_replaces_it(tmp_path, capsys, image_folder):
    assert call_main(asgn6.main, train_args(tmp_path, image_folder, '--epochs', 3, *TINY), capsys)[0] == 0
    out = tmp_path / 'out'
    before = {name: (out / name).read_bytes() for name in os.listdir(out)}
    assert 'sample-000009.png' in before
    status, _, err = call_main(asgn6.main, train_args(tmp_path, image_folder, '--epochs', 1, *TINY), capsys)
    assert status == 2
    line = one_error_line(err)
    assert '--resume' in line and '--output-dir' in line and '--overwrite' in line
    assert {name: (out / name).read_bytes() for name in os.listdir(out)} == before  # untouched

    status, printed, err = call_main(asgn6.main, train_args(tmp_path, image_folder, '--epochs', 1, *TINY,
                                                            '--overwrite'), capsys)
    assert status == 0, err
    kept = sorted(name for name in os.listdir(out) if not name.endswith('.lock'))  # the run's locks left out
    assert kept == ['checkpoint.pt', 'loss.txt', 'novel-000003.png', 'sample-000003.png']
    assert load_checkpoint(out / 'checkpoint.pt')['iteration'] == 3


def test_a_loss_file_of_another_run_is_protected_too(tmp_path, capsys, image_folder):
    shared_loss = tmp_path / 'loss.txt'
    first = ['--data-dir', image_folder, '--output-dir', tmp_path / 'a', '--loss-file', shared_loss, '--epochs', 1,
             *TINY]
    assert call_main(asgn6.main, first, capsys)[0] == 0
    losses = shared_loss.read_text()
    second = ['--data-dir', image_folder, '--output-dir', tmp_path / 'b', '--loss-file', shared_loss, '--epochs', 1,
              *TINY]
    status, _, err = call_main(asgn6.main, second, capsys)
    assert status == 2 and '--loss-file' in one_error_line(err)
    assert shared_loss.read_text() == losses and not (tmp_path / 'b').exists()


def test_a_run_writing_a_loss_file_holds_it_and_a_second_run_naming_it_is_refused_at_once(tmp_path, capsys,
                                                                                          image_folder):
    shared_loss = tmp_path / 'loss.txt'
    holder = subprocess.Popen([sys.executable, '-c', 'import filelock, sys, time; '
                               'lock = filelock.FileLock(sys.argv[1]); lock.acquire(); '
                               'print("held", flush=True); time.sleep(60)', str(tmp_path / '.loss.txt.lock')],
                              stdout=subprocess.PIPE, text=True)
    assert holder.stdout.readline().strip() == 'held'  # as run A holds it while it trains, before its first save
    argv = ['--data-dir', image_folder, '--output-dir', tmp_path / 'b', '--loss-file', shared_loss, *TINY]
    status, out, err = call_main(asgn6.main, argv, capsys)
    holder.kill()
    holder.wait()
    line = one_error_line(err)
    assert status == 2 and f'--loss-file {shared_loss}: another run is writing it' in line
    assert f'this run: --output-dir {tmp_path / "b"} --loss-file {shared_loss}' in line
    assert 'images from' not in out and not (tmp_path / 'b').exists()  # refused before the data was read


def test_a_resume_refuses_a_loss_file_that_another_run_wrote(tmp_path, capsys, image_folder):
    shared_loss = tmp_path / 'loss.txt'
    first = ['--data-dir', image_folder, '--output-dir', tmp_path / 'b', '--loss-file', shared_loss, '--epochs', 1,
             *TINY]
    assert call_main(asgn6.main, first, capsys)[0] == 0
    shared_loss.write_text('0.5\n0.4\n0.3\n0.2\n')  # run A's losses, written over run B's since
    status, _, err = call_main(asgn6.main, ['--resume', tmp_path / 'b', '--epochs', 2], capsys)
    assert status == 2 and "holds losses that are not this checkpoint's" in one_error_line(err)
    assert shared_loss.read_text() == '0.5\n0.4\n0.3\n0.2\n'


# ----------------------------------------------------------------------------- one run at a time in a folder

def test_a_run_is_refused_while_another_holds_the_folder_and_a_killed_ones_lock_is_free(tmp_path, capsys,
                                                                                        image_folder):
    out = tmp_path / 'out'
    out.mkdir()
    holder = subprocess.Popen([sys.executable, '-c', 'import filelock, sys, time; '
                               'lock = filelock.FileLock(sys.argv[1]); lock.acquire(); '
                               'print("held", flush=True); time.sleep(60)', str(out / LOCK_NAME)],
                              stdout=subprocess.PIPE, text=True)
    assert holder.stdout.readline().strip() == 'held'
    status, printed, err = call_main(asgn6.main, train_args(tmp_path, image_folder, '--epochs', 1, *TINY), capsys)
    assert status == 2 and 'another run is writing there' in one_error_line(err)
    assert os.listdir(out) == [LOCK_NAME] and 'images from' not in printed  # refused before the data was read
    holder.kill()  # kill -9: the operating system releases its lock
    holder.wait()
    status, printed, err = call_main(asgn6.main, train_args(tmp_path, image_folder, '--epochs', 1, *TINY), capsys)
    assert status == 0, err


@pytest.mark.slow
def test_two_runs_started_together_one_is_refused(tmp_path, image_folder):
    argv = [sys.executable, os.path.join(ROOT, 'asgn6.py'), *train_args(tmp_path, image_folder, '--epochs', 1,
                                                                        *map(str, TINY))]
    runs = [subprocess.Popen(argv, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            for _ in range(2)]
    results = [(run.wait(timeout=120), run.stderr.read()) for run in runs]
    assert sorted(code for code, _ in results) == [0, 2], results
    refused = next(err for code, err in results if code == 2)
    assert 'another run' in refused or 'holds another run' in refused
    assert len((tmp_path / 'out' / 'loss.txt').read_text().splitlines()) == 3


# ----------------------------------------------------------------------------- resuming

def test_resume_takes_the_paths_and_settings_it_is_not_given_from_the_checkpoint(tmp_path, capsys, image_folder,
                                                                                 monkeypatch):
    monkeypatch.chdir(tmp_path)
    first = ['--data-dir', image_folder, '--output-dir', 'x', '--loss-file', 'x/losses.txt', '--epochs', 1,
             '--save-interval', 2, *TINY]
    assert call_main(asgn6.main, first, capsys)[0] == 0
    status, printed, err = call_main(asgn6.main, ['--output-dir', 'x', '--epochs', 2, '--resume'], capsys)
    assert status == 0, err
    assert 'losses to x/losses.txt' in printed  # found beside the checkpoint, as the first run named it
    assert '--latent-size 16' in printed and '--batch-size 4' in printed
    assert '--save-interval' not in printed  # it changes no number, so it is not stored
    assert not (tmp_path / 'loss.txt').exists()
    assert len((tmp_path / 'x' / 'losses.txt').read_text().splitlines()) == 6
    assert (tmp_path / 'x' / 'sample-000006.png').exists() and not (tmp_path / 'x' / 'sample-000004.png').exists()


def test_resume_of_a_complete_run_says_so_and_how_to_extend_it(tmp_path, capsys, image_folder):
    assert call_main(asgn6.main, train_args(tmp_path, image_folder, '--epochs', 2, *TINY), capsys)[0] == 0
    losses = (tmp_path / 'out' / 'loss.txt').read_bytes()
    status, printed, err = call_main(asgn6.main, train_args(tmp_path, image_folder, '--epochs', 1, *TINY,
                                                            '--resume'), capsys)
    assert status == 0, err
    [line] = [line for line in printed.splitlines() if 'already' in line]
    assert 'already complete at iteration 6 of 3' in line and '--epochs' in line
    assert 'Iteration' not in printed
    assert (tmp_path / 'out' / 'loss.txt').read_bytes() == losses


@pytest.mark.slow
def test_sigterm_saves_everything_and_prints_a_resume_command_that_pastes_for_any_path(tmp_path, image_folder,
                                                                                      capsys, monkeypatch):
    """SIGTERM (kill) here; Ctrl-C (SIGINT) in
    test_interrupted_then_resumed_run_repeats_an_uninterrupted_one_exactly."""
    odd = tmp_path / "a b'c \u00e9"
    os.rename(image_folder, odd)
    monkeypatch.chdir(tmp_path)
    argv = ['--data-dir', odd, '--output-dir', odd / 'out', '--loss-file', odd / 'out' / 'loss.txt', '--epochs', 2,
            *TINY]
    with monkeypatch.context() as patch:
        signal_at(patch, 3, signal.SIGTERM)
        status, out, err = call_main(asgn6.main, argv, capsys)
    assert status == 143 and 'Traceback' not in err, err  # 128 + 15
    stopped_at = load_checkpoint(odd / 'out' / 'checkpoint.pt')['iteration']
    assert 3 <= stopped_at < 6 and len((odd / 'out' / 'loss.txt').read_text().splitlines()) == stopped_at
    command = out.strip().splitlines()[-1].strip()
    assert command.startswith('python ') and '--resume' in command and shlex.split(command)[3] == str(odd)
    env = {**os.environ, 'PATH': os.path.dirname(sys.executable) + os.pathsep + os.environ.get('PATH', '')}
    resumed = subprocess.run(command, shell=True, cwd=tmp_path, capture_output=True, text=True, env=env)
    assert resumed.returncode == 0, resumed.stderr
    assert len((odd / 'out' / 'loss.txt').read_text().splitlines()) == 6


# ----------------------------------------------------------------------------- what gets created, and its mode

@pytest.mark.parametrize('umask, mode', [(0o022, 0o644), (0o077, 0o600)])
def test_artefacts_get_the_mode_a_plain_open_would_give(tmp_path, capsys, image_folder, umask, mode):
    old = os.umask(umask)
    try:
        assert call_main(asgn6.main, train_args(tmp_path, image_folder, '--epochs', 1, *TINY), capsys)[0] == 0
    finally:
        os.umask(old)
    files = sorted(path for path in (tmp_path / 'out').iterdir() if not path.name.endswith('.lock'))  # the run's locks
    assert len(files) == 4
    assert {path.name: oct(path.stat().st_mode & 0o777) for path in files} == {path.name: oct(mode) for path in files}


def test_an_unwritable_loss_file_is_named_and_nothing_is_created(tmp_path, capsys, image_folder):
    blocker = tmp_path / 'a-file'
    blocker.write_text('')
    argv = ['--data-dir', image_folder, '--output-dir', tmp_path / 'new-out', '--loss-file', blocker / 'loss.txt',
            *TINY]
    status, _, err = call_main(asgn6.main, argv, capsys)
    assert status == 2 and f'--loss-file {blocker / "loss.txt"}' in one_error_line(err)
    assert not (tmp_path / 'new-out').exists()
    argv = ['--data-dir', tmp_path / 'missing', '--output-dir', tmp_path / 'new-out', *TINY]
    assert call_main(asgn6.main, argv, capsys)[0] == 2
    assert not (tmp_path / 'new-out').exists()  # a bad --data-dir leaves no empty output folder either


@pytest.mark.skipif(not os.path.isdir('/sys/kernel'), reason='needs a folder that refuses files to root too')
def test_a_loss_file_where_no_file_can_be_made_is_refused_before_training(tmp_path, capsys, image_folder):
    """/sys passes os.access for root, yet refuses to create a file: only a real write tells."""
    argv = ['--data-dir', image_folder, '--output-dir', tmp_path / 'out', '--loss-file', '/sys/kernel/loss.txt', *TINY]
    status, out, err = call_main(asgn6.main, argv, capsys)
    assert status == 2 and '--loss-file /sys/kernel/loss.txt: cannot write there' in one_error_line(err)
    assert 'Epoch' not in out and not (tmp_path / 'out').exists()


def test_a_loss_file_that_cannot_be_written_mid_run_keeps_the_checkpoint(tmp_path, capsys, image_folder,
                                                                        monkeypatch):
    def refuse(path, losses):
        raise PermissionError(13, 'Permission denied', path)
    monkeypatch.setattr(asgn6, 'save_losses', refuse)
    status, _, err = call_main(asgn6.main, train_args(tmp_path, image_folder, '--epochs', 1, *TINY), capsys)
    line = one_error_line(err)
    assert status == 1 and 'cannot write the losses (Permission denied)' in line
    assert f'{tmp_path / "out" / "checkpoint.pt"} was saved at iteration 3' in line
    assert len(load_checkpoint(tmp_path / 'out' / 'checkpoint.pt')['losses']) == 3  # every loss is in it


@pytest.mark.slow
def test_sigint_stops_a_run_started_with_sigint_ignored(tmp_path, image_folder):
    """As `python asgn6.py &` in a script starts it: the shell's 'ignore' gives way to the run's own handler."""
    argv = [sys.executable, os.path.join(ROOT, 'asgn6.py'), *map(str, train_args(tmp_path, image_folder)),
            '--epochs', '1000', *map(str, TINY)]
    run = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                           preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_IGN))
    for line in run.stdout:  # training has begun
        if line.startswith('Epoch'):
            break
    run.send_signal(signal.SIGINT)
    out, err = run.communicate(timeout=120)
    assert run.returncode == 130, err
    assert 'SIGINT: stopping after this iteration' in out and load_checkpoint(tmp_path / 'out' / 'checkpoint.pt')


# ----------------------------------------------------------------------------- images: large, animated

def test_an_image_over_the_decompression_bomb_limit_is_one_line_naming_file_and_limit(tmp_path, capsys,
                                                                                       monkeypatch):
    monkeypatch.setattr(Image, 'MAX_IMAGE_PIXELS', 1000)  # a 64x64 image is then over twice the limit
    write_images(tmp_path / 'data' / 'x', 3)
    big = tmp_path / 'data' / 'x' / 'img000.png'
    status, out, err = call_main(asgn6.main, train_args(tmp_path, tmp_path / 'data', '--epochs', 1, *TINY), capsys)
    assert status == 2  # all three are too large: nothing left to train on
    assert f'skipping {big}: too large (0 megapixels, over the limit of 0 megapixels' in err
    assert 'Traceback' not in err and 'DecompressionBomb' not in err


def test_decoding_says_in_one_line_when_an_image_is_very_large_or_animated(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(Image, 'MAX_IMAGE_PIXELS', 3000)  # 64x64 = 4096: over the limit, under twice it
    write_images(tmp_path, 1)
    images.load_image(tmp_path / 'img000.png', 64)
    err = capsys.readouterr().err
    assert err.count('\n') == 1 and 'a very large image; reading it anyway' in err
    frames = [Image.new('RGB', (32, 32), colour) for colour in ('red', 'blue', 'green')]
    frames[0].save(tmp_path / 'anim.gif', save_all=True, append_images=frames[1:])
    monkeypatch.setattr(Image, 'MAX_IMAGE_PIXELS', 10 ** 8)
    assert images.load_image(tmp_path / 'anim.gif', 64).getpixel((5, 5))[0] > 200  # red: the first frame
    assert f'{tmp_path / "anim.gif"}: has 3 frames; using the first' in capsys.readouterr().err


# ----------------------------------------------------------------------------- plot_loss.py

def test_plot_loss_save_problems_are_one_line_errors_with_status_2(tmp_path, capsys, monkeypatch):
    losses = tmp_path / 'loss.txt'
    losses.write_text(''.join(f'{0.5 - i / 100}\n' for i in range(24)))
    for save, words in ((losses / 'x.png', 'is a file, not a folder'),
                        (tmp_path / 'loss.xyz', "unknown figure format 'xyz'")):
        status, out, err = call_main(plot_loss.main, [losses, '--save', save], capsys)
        assert status == 2 and words in one_error_line(err, 'plot_loss.py')
        assert not save.exists()
    monkeypatch.setenv('MPLBACKEND', 'agg')  # what a machine without a display gets
    status, out, err = call_main(plot_loss.main, [losses], capsys)
    assert status == 2 and '--save' in one_error_line(err, 'plot_loss.py')
    status, out, err = call_main(plot_loss.main, [losses, '--save', tmp_path / 'new' / 'x.png'], capsys)
    assert status == 0 and (tmp_path / 'new' / 'x.png').exists()  # a missing folder is made, as asgn6.py makes its own
    status, out, err = call_main(plot_loss.main, [tmp_path / 'missing.txt', '--save', tmp_path / 'x.png'], capsys)
    assert status == 2 and 'missing.txt' in one_error_line(err, 'plot_loss.py')


def test_plot_loss_states_the_window_it_used(tmp_path, capsys):
    losses = tmp_path / 'loss.txt'
    losses.write_text(''.join(f'{0.5 - i / 100}\n' for i in range(24)))
    status, out, err = call_main(plot_loss.main, [losses, '--save', tmp_path / 'x.png', '--window', 200], capsys)
    assert status == 0 and 'smoothed (window 24)' in out  # capped by the file's length
    assert plot_loss.curve_label('loss.txt', 200, 24) == 'loss.txt (centred moving average of 24)'
    assert plot_loss.curve_label('loss.txt', 10, 24) == 'loss.txt (centred moving average of 10)'


# ----------------------------------------------------------------------------- one exit-status convention

def test_bad_input_is_status_2_in_every_script(tmp_path, capsys):
    junk = tmp_path / 'junk.png'
    junk.write_text('not an image')
    for main, argv, prog in ((asgn6.main, ['--data-dir', tmp_path / 'none'], 'asgn6.py'),
                             (plot_loss.main, [tmp_path / 'none.txt'], 'plot_loss.py')):
        status, _, err = call_main(main, argv, capsys)
        assert status == 2 and one_error_line(err, prog)
    status, _, err = call_main(denoise.main, [junk, '--checkpoint', junk, '--out', tmp_path / 'd'], capsys)
    assert status == 2 and one_error_line(err, 'denoise.py')
    assert not (tmp_path / 'd').exists()


def test_a_checkpoint_of_the_command_line_format_resumes_exactly_with_its_config(tmp_path, capsys, image_folder):
    """Format 1 stored every flag as 'args', paths and per-call flags too; upgrade() turns it into a RunConfig."""
    uninterrupted = train_args(tmp_path / 'a', image_folder, '--epochs', 2, *TINY)
    assert call_main(asgn6.main, uninterrupted, capsys)[0] == 0
    first = train_args(tmp_path / 'b', image_folder, '--epochs', 1, *TINY)
    assert call_main(asgn6.main, first, capsys)[0] == 0
    path = tmp_path / 'b' / 'out' / 'checkpoint.pt'
    checkpoint = load_checkpoint(path)
    args = {**dataclasses.asdict(checkpoint.pop('config')), 'data_dir': str(image_folder),
            'output_dir': str(path.parent), 'loss_file': str(path.parent / 'loss.txt'), 'device': 'cpu',
            'compile': False, 'resume': None, 'overwrite': False, 'log_interval': 1, 'save_interval': 100}
    del checkpoint['format'], checkpoint['loss_file']
    torch.save({**checkpoint, 'args': args}, path)
    status, printed, err = call_main(asgn6.main, ['--data-dir', image_folder, '--epochs', 2, '--resume', path], capsys)
    assert status == 0, err
    assert (tmp_path / 'b' / 'out' / 'loss.txt').read_bytes() == (tmp_path / 'a' / 'out' / 'loss.txt').read_bytes()
    saved = torch.load(path, weights_only=True)
    assert 'args' not in saved and saved['loss_file'] == 'loss.txt' and saved['config']['latent_size'] == 16


def test_asgn6_debug_shows_the_traceback_a_maintainer_needs(tmp_path, monkeypatch):
    from dae.cli import UsageError, report_errors
    monkeypatch.setenv('ASGN6_DEBUG', '1')
    with pytest.raises(UsageError, match='--data-dir .*none: no such folder'):
        asgn6.main(['--data-dir', tmp_path / 'none', '--output-dir', tmp_path / 'out'])
    with pytest.raises(FileNotFoundError):  # the machine's errors too, which are one line without it
        report_errors('x', lambda: open(tmp_path / 'nope'))
    monkeypatch.delenv('ASGN6_DEBUG')
    assert report_errors('x', lambda: open(tmp_path / 'nope')) == 1


def test_an_output_folder_inside_the_data_folder_is_left_out_of_its_images(tmp_path, capsys):
    nest = write_images(tmp_path / 'nest', 12)
    argv = ['--data-dir', nest, '--output-dir', nest / 'out', '--loss-file', nest / 'out' / 'loss.txt', '--epochs', 1,
            *TINY]
    status, out, err = call_main(asgn6.main, argv, capsys)
    assert status == 0, err
    assert 'is inside --data-dir' in out and '12 images from' in out
    status, out, err = call_main(asgn6.main, [*argv[:-len(TINY) - 2], '--epochs', 2, '--resume'], capsys)
    assert status == 0, err  # its grids are not training images: still 12, as the checkpoint says
    assert len((nest / 'out' / 'loss.txt').read_text().splitlines()) == 6


def test_run_from_anywhere_finds_the_embedded_data_and_resumes_where_it_wrote(tmp_path, capsys, image_folder,
                                                                             monkeypatch):
    monkeypatch.setattr(asgn6, 'EMBEDDED_DATA', str(image_folder))  # the data/ beside asgn6.py
    (tmp_path / 'here').mkdir()
    monkeypatch.chdir(tmp_path / 'here')  # no data/ in this folder
    first = ['--output-dir', 'run', '--loss-file', 'run/loss.txt', '--epochs', 1, *TINY]
    status, out, err = call_main(asgn6.main, first, capsys)
    assert status == 0, err
    assert f'training on the embedded images in {image_folder}' in out
    (tmp_path / 'there').mkdir()
    monkeypatch.chdir(tmp_path / 'there')
    status, out, err = call_main(asgn6.main, ['--epochs', 2, '--resume', '../here/run'], capsys)
    assert status == 0, err
    assert ('resuming ../here/run/checkpoint.pt: grids and checkpoint to ../here/run, losses to '
            '../here/run/loss.txt') in out
    assert len((tmp_path / 'here' / 'run' / 'loss.txt').read_text().splitlines()) == 6
    assert not (tmp_path / 'there' / 'run').exists()


def test_plot_loss_on_a_short_run_a_diverged_run_or_a_folder(tmp_path, capsys):
    short = tmp_path / 'short.txt'
    short.write_text(''.join(f'{0.8 * 0.99 ** i}\n' for i in range(226)))
    status, out, err = call_main(plot_loss.main, [short, '--save', tmp_path / 'short.png'], capsys)
    assert status == 0 and 'smoothed (window 11)' in out  # a twentieth of the file, not 200 of its 226
    diverged = tmp_path / 'diverged.txt'
    diverged.write_text('0.5\n0.4\nnan\n')
    status, out, err = call_main(plot_loss.main, [diverged, '--save', tmp_path / 'd.png'], capsys)
    assert status == 2 and 'loss 3 is nan' in one_error_line(err, 'plot_loss.py')
    zero = tmp_path / 'zero.txt'
    zero.write_text('0.5\n0.0\n')
    status, out, err = call_main(plot_loss.main, [zero, '--log-y', '--save', tmp_path / 'z.png'], capsys)
    assert status == 2 and 'logarithmic axis' in one_error_line(err, 'plot_loss.py')
    (tmp_path / 'folder').mkdir()
    status, out, err = call_main(plot_loss.main, [short, '--save', tmp_path / 'folder'], capsys)
    assert status == 2 and 'is a folder, not a file' in one_error_line(err, 'plot_loss.py')


def test_report_build_without_pandoc_stops_at_once_naming_the_packages(tmp_path):
    result = subprocess.run(['/bin/bash', os.path.join(ROOT, 'report', 'build')], capture_output=True, text=True,
                            env={'PATH': str(tmp_path)}, timeout=10)
    assert result.returncode == 2 and 'pandoc not found' in result.stderr and 'apt-get install' in result.stderr


def test_report_build_runs_the_interpreter_that_python_names(tmp_path):
    """regenerate runs the build with its own interpreter, which need not be the PATH's python."""
    for tool in ('pandoc', 'pdflatex'):
        (tmp_path / tool).write_text('#!/bin/sh\n')
        (tmp_path / tool).chmod(0o755)
    calls = tmp_path / 'calls.txt'
    interpreter = tmp_path / 'venv-python'
    interpreter.write_text(f'#!/bin/sh\necho "$@" >> {calls}\n')
    interpreter.chmod(0o755)
    result = subprocess.run(['/bin/bash', os.path.join(ROOT, 'report', 'build')], capture_output=True, text=True,
                            env={'PATH': f'{tmp_path}:/usr/bin:/bin', 'PYTHON': str(interpreter)}, timeout=10)
    assert result.returncode == 0, result.stderr
    assert calls.read_text().splitlines() == ['-m report.make_figures --pdf', '-m report.check_pdf']
