"""How start-up, memory and step time of asgn6.py grow with the size of --data-dir.

    python -m benchmarks.bench_data                           # 1,000, 10,000 and 100,000 images
    python -m benchmarks.bench_data --counts 1000 --iterations 5

Synthetic folders of 256x256 JPEGs (coloured shapes, like photos of one object on a plain background)
are made once in --cache and reused.  On each folder `python asgn6.py` runs as a user runs it, and is
stopped by a Ctrl-C (SIGINT) after --iterations iterations; from the times its lines arrive come the
decode time (from its device line to its model line), images decoded per second and the median time
between iterations (the first two left out), and from the operating system its peak resident memory.
"""
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time

import numpy as np
from PIL import Image

from dae import cli

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def make_folder_of_images(folder, count, size=256, seed=0):
    """`count` JPEGs in `folder`, made once: a marker file says the folder is complete."""
    done = os.path.join(folder, f'.complete-{count}')
    if os.path.exists(done):
        return folder
    os.makedirs(folder, exist_ok=True)
    rng = np.random.default_rng(seed)
    for index in range(count):
        pixels = np.empty((size, size, 3), dtype=np.uint8)
        pixels[:] = rng.integers(150, 256, 3)
        top, left = rng.integers(0, size // 2, 2)
        pixels[top:top + size // 2, left:left + size // 2] = rng.integers(0, 256, 3)
        Image.fromarray(pixels).save(os.path.join(folder, f'{index:06d}.jpg'), quality=90)
    open(done, 'w').close()
    return folder


def measure(folder, iterations):
    """(decode seconds, peak resident MiB, seconds an iteration) of asgn6.py on `folder`, stopped by SIGINT."""
    with tempfile.TemporaryDirectory() as out:
        command = [sys.executable, 'asgn6.py', '--data-dir', folder, '--output-dir', out, '--epochs', '1',
                   '--loss-file', os.path.join(out, 'loss.txt'), '--log-interval', '1', '--save-interval', '1000000',
                   '--device', 'cpu']
        process = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        times, lines = {'Iteration': []}, []
        for line in process.stdout:
            lines.append(line)
            now = time.perf_counter()
            if line.startswith('device ') or ' model on ' in line:  # the line before decoding, and the one after
                times['start' if line.startswith('device ') else 'model'] = now
            elif ' Iteration [' in line and not line.startswith('stopped'):
                times['Iteration'].append(now)
                if len(times['Iteration']) == iterations + 2:
                    process.send_signal(signal.SIGINT)
        _, status, usage = os.wait4(process.pid, 0)
    process.returncode = os.waitstatus_to_exitcode(status)
    if process.returncode not in (0, 128 + signal.SIGINT) or 'model' not in times:
        raise cli.Failure(f'asgn6.py on {folder} stopped with status {process.returncode}: {"".join(lines[-3:])}')
    steps = np.diff(times['Iteration'][2:]) if len(times['Iteration']) > 3 else np.diff(times['Iteration'])
    return times['model'] - times['start'], usage.ru_maxrss / 1024, statistics.median(steps) if steps.size else 0


def main(argv=None):
    parser = cli.ArgumentParser('bench_data.py', __doc__)
    parser.add_argument('--counts', type=cli.positive_int(2), nargs='+', default=[1000, 10000, 100000],
                        help='images per synthetic folder (default: 1000 10000 100000)')
    parser.add_argument('--cache', default=os.path.join(os.path.expanduser('~'), '.cache', 'asgn6-bench-data'),
                        help='where the synthetic folders are made once and kept (default: ~/.cache/asgn6-bench-data)')
    parser.add_argument('--iterations', type=cli.positive_int(), default=10, help='timed training iterations per '
                        'run (default: 10)')
    args = parser.parse_args(argv)
    return cli.report_errors('bench_data.py', lambda: run(args))


def run(args):
    print(f'{os.cpu_count()} cores; python asgn6.py, stopped after {args.iterations} iterations and 2 of warm-up')
    print('| images | decode | images/s | peak RSS | time per iteration |\n|---|---|---|---|---|')
    for count in args.counts:
        folder = make_folder_of_images(os.path.join(args.cache, f'jpeg-{count}'), count)
        decode, peak, step = measure(folder, args.iterations)
        print(f'| {count:,} | {decode:.1f} s | {count / decode:.0f} | {peak:.0f} MiB | {1000 * step:.0f} ms |',
              flush=True)
    return 0


if __name__ == '__main__':
    sys.exit(main())
