"""Training speed as a user sees it: whole processes of asgn6.py against the course's loop (starter_loop.py).

    python -m benchmarks.bench_train                 # benchmarks/README.md says how long

Each mode runs as its own process on the same first --images images of --data-dir (copied into a temp
folder in the ImageFolder layout), twice: for one epoch and for --epochs.  The difference of the two wall
times, over the difference of their iterations, is the time an iteration costs once the process has started
(importing torch, decoding, building the model and the last save cancel out); the longer run's whole wall
time is reported too.  The modes alternate within each round, so that a machine that speeds up or slows
down affects them alike:
  starter      the course's loop (starter_loop.py): every PNG decoded again in every epoch, noise on the CPU
  asgn6-fp32   python asgn6.py: the dataset decoded once, noise drawn on the device (fp32, channels_last)
  asgn6-bf16   python asgn6.py --precision bf16: bf16 autocast, fast only with bf16 arithmetic in hardware
With --models, asgn6.py's default step for each named network instead (the report's equal-time comparison).
"""
import contextlib
import io
import math
import os
import re
import runpy
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

from dae import cli
from dae.config import MODEL_NAMES, batches_per_epoch
from dae.images import find_images

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MODES = {'starter': ['-m', 'benchmarks.starter_loop'], 'asgn6-fp32': ['asgn6.py'],
         'asgn6-bf16': ['asgn6.py', '--precision', 'bf16']}


def run_process(arguments, epochs, folder, device, in_process=False):
    """(wall seconds, peak resident MiB, what it printed) of one training run of `epochs` epochs: a process of its
    own, or with in_process the same script run inside this process, as runpy runs it (no peak memory then)."""
    out = tempfile.mkdtemp(dir=folder)
    command = [sys.executable, *arguments, '--data-dir', os.path.join(folder, 'images'), '--epochs', str(epochs),
               '--loss-file', os.path.join(out, 'loss.txt'), '--device', device]
    if arguments[0] == 'asgn6.py':
        command += ['--output-dir', out, '--save-interval', '1000000', '--log-interval', '1000000']
    if in_process:
        return run_here(command[1:], out)
    start = time.perf_counter()
    process = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    output = process.stdout.read()
    _, status, usage = os.wait4(process.pid, 0)
    wall = time.perf_counter() - start
    process.returncode = os.waitstatus_to_exitcode(status)
    if process.returncode != 0:
        raise cli.Failure(f'{" ".join(command)} stopped with status {process.returncode}:\n{output.strip()}')
    shutil.rmtree(out)
    return wall, usage.ru_maxrss / 1024, output


def run_here(arguments, out):
    """The script of `arguments` (['asgn6.py', ...] or ['-m', MODULE, ...]) run in this process, as its own
    process would run it, its output captured; for comparison with whole processes only."""
    script, argv = (arguments[1].replace('.', '/') + '.py', arguments[2:]) if arguments[0] == '-m' else \
        (arguments[0], arguments[1:])
    saved, printed = (sys.argv, os.getcwd()), io.StringIO()
    sys.argv, start = [script, *argv], time.perf_counter()
    os.chdir(ROOT)
    try:
        with contextlib.redirect_stdout(printed), contextlib.redirect_stderr(printed):
            runpy.run_path(os.path.join(ROOT, script), run_name='__main__')
        status = 0
    except SystemExit as exit_:
        status = exit_.code or 0
    finally:
        sys.argv = saved[0]
        os.chdir(saved[1])
    if status:
        raise cli.Failure(f'{" ".join(arguments)} stopped with status {status}:\n{printed.getvalue().strip()}')
    shutil.rmtree(out)
    return time.perf_counter() - start, float('nan'), printed.getvalue()


def copy_images(data_dir, count, folder):
    """The first `count` images of data_dir, in folder/images/all/ (the ImageFolder layout the starter reads)."""
    paths = find_images(data_dir)[:count]
    if len(paths) < 2:
        raise cli.UsageError(f'--data-dir {data_dir}: found {len(paths)} image(s); need at least 2')
    os.makedirs(os.path.join(folder, 'images', 'all'))
    for index, path in enumerate(paths):
        shutil.copyfile(path, os.path.join(folder, 'images', 'all', f'{index:06d}{os.path.splitext(path)[1]}'))
    return len(paths)


def main(argv=None):
    parser = cli.ArgumentParser('bench_train.py', __doc__)
    parser.add_argument('--data-dir', default='data', help='images to train on (default: data)')
    parser.add_argument('--images', type=cli.positive_int(2), default=192, help='how many of them, the first in '
                        'sorted order: 192 make 6 iterations an epoch (default: 192)')
    parser.add_argument('--epochs', type=cli.positive_int(2), default=9, help='epochs of the longer run of each '
                        'mode; the shorter has 1 (default: 9)')
    parser.add_argument('--rounds', type=cli.positive_int(), default=3, help='rounds, each mode once a round '
                        '(default: 3)')
    parser.add_argument('--modes', nargs='+', choices=list(MODES), default=list(MODES), metavar='MODE',
                        help=f'of {", ".join(MODES)} (default: all three)')
    parser.add_argument('--models', nargs='+', choices=MODEL_NAMES, metavar='MODEL', help="time asgn6.py's default "
                        f'step for these networks instead, the first as the baseline; of {", ".join(MODEL_NAMES)} '
                        '(default: off)')
    parser.add_argument('--in-process', action='store_true', help='run each script inside this one process, all of '
                        'them in turn, instead of as a process of its own: to see what sharing a process does to the '
                        'timings (benchmarks/README.md) (default: off)')
    cli.add_device_flag(parser)
    args = parser.parse_args(argv)
    return cli.report_errors('bench_train.py', lambda: run(args))


def run(args):
    device = cli.choose_device(args.device).type
    modes = {name: ['asgn6.py', '--model', name] for name in args.models} if args.models else \
        {name: MODES[name] for name in args.modes}
    results = {name: [] for name in modes}  # (seconds an iteration, wall time of the long run, peak MiB)
    loading = []  # the starter's share of its long run spent loading batches
    with tempfile.TemporaryDirectory() as folder:
        count = copy_images(args.data_dir, args.images, folder)
        per_epoch = batches_per_epoch(count, 32)
        iterations = (args.epochs - 1) * per_epoch
        print(f'{count} images, {per_epoch} iterations an epoch; each mode for 1 and {args.epochs} epochs, '
              f'{args.rounds} round(s), device {device}, {os.cpu_count()} cores', flush=True)
        for round_ in range(args.rounds):
            for name, arguments in modes.items():
                short, _, _ = run_process(arguments, 1, folder, device, args.in_process)
                long, peak, output = run_process(arguments, args.epochs, folder, device, args.in_process)
                results[name].append(((long - short) / iterations, long, peak))
                found = re.search(r'of which ([\d.]+) s loading', output)
                if found:
                    loading.append(float(found.group(1)) / long)
            print(f'round {round_ + 1}/{args.rounds}: ' + ', '.join(
                f'{name} {1000 * r[-1][0]:.0f} ms/it' for name, r in results.items()), flush=True)
    report(results, args.epochs * per_epoch)
    if loading:
        print(f'starter: {100 * statistics.median(loading):.1f}% of its long run went to loading batches (the '
              'DataLoader decoding and resizing every PNG)')
    return 0


def report(results, long_iterations):
    """A table of every mode's time an iteration, against the first mode's."""
    first = next(iter(results))
    base = statistics.median(seconds for seconds, _, _ in results[first])
    print(f'\n| mode | ms an iteration (median) | min-max | speed vs {first} | whole process, {long_iterations} '
          'iterations (median) | peak RSS |')
    print('|---|---|---|---|---|---|')
    for name, rounds in results.items():
        per_iteration = [1000 * seconds for seconds, _, _ in rounds]
        median, peak = statistics.median(per_iteration), max(peak for _, _, peak in rounds)
        memory = '-' if math.isnan(peak) else f'{peak:.0f} MiB'  # a run inside this process has none of its own
        print(f'| {name} | {median:.0f} | {min(per_iteration):.0f}-{max(per_iteration):.0f} | '
              f'{1000 * base / median:.2f}x | {statistics.median(wall for _, wall, _ in rounds):.1f} s | {memory} |')


if __name__ == '__main__':
    sys.exit(main())
