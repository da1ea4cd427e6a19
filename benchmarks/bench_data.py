"""How start-up, memory and step time of asgn6.py grow with the size of --data-dir.

    python -m benchmarks.bench_data                           # 1,000, 10,000 and 100,000 images
    python -m benchmarks.bench_data --counts 1000 --iterations 5

Synthetic folders of 256x256 JPEGs (coloured shapes, like photos of one object on a plain background)
are made once in --cache and reused. For each folder a fresh process decodes it as asgn6.py does (into
one uint8 tensor, each batch turned into [-1, 1] floats when it is taken) and trains a few iterations
of the spec model; it reports the decode time, images decoded per second, the process's peak resident
memory, and the median time per training iteration.
"""
import json
import os
import statistics
import subprocess
import sys
import time

import numpy as np
import torch
from PIL import Image

from dae import cli, training
from dae.images import add_noise, load_dataset, to_unit_range
from dae.run import RunConfig
from dae.training import Streams

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
    """Runs in its own process: decode the folder, train `iterations` steps; returns the figures as a dict."""
    from torchvision.transforms import functional  # noqa: F401  imported before the clock
    start = time.perf_counter()
    images = load_dataset(folder, 64)[0]
    decode = time.perf_counter() - start
    config, cpu = RunConfig(memory_format='contiguous'), torch.device('cpu')
    streams = Streams(config.seed)
    streams.seed_weights()
    model, optimizers = training.build(config, cpu)
    noise, times = streams.training_noise(cpu), []
    for _, indices in training.batch_order(images.size(0), config.batch_size, streams, 1, iterations + 2, cpu):
        clean = to_unit_range(images[indices])
        start = time.perf_counter()
        training.train_step(model, optimizers, clean, add_noise(clean, config.noise_level, noise), config)
        times.append(time.perf_counter() - start)
    return {'images': images.size(0), 'decode_s': decode, 'images_per_s': images.size(0) / decode,
            'peak_mib': resource_peak_mib(), 'step_s': statistics.median(times[2:])}  # the first two warm up


def resource_peak_mib():
    import resource
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main(argv=None):
    parser = cli.ArgumentParser('bench_data.py', __doc__)
    parser.add_argument('--counts', type=cli.positive_int(2), nargs='+', default=[1000, 10000, 100000],
                        help='images per synthetic folder (default: 1000 10000 100000)')
    parser.add_argument('--cache', default=os.path.join(os.path.expanduser('~'), '.cache', 'asgn6-bench-data'),
                        help='where the synthetic folders are made once and kept (default: ~/.cache/asgn6-bench-data)')
    parser.add_argument('--iterations', type=cli.positive_int(), default=10, help='timed training iterations per '
                        'run (default: 10)')
    parser.add_argument('--worker', metavar='FOLDER', help='internal: measure one folder in this process and '
                        'print the figures as JSON (default: off)')
    args = parser.parse_args(argv)
    return cli.report_errors('bench_data.py', lambda: run(args))


def run(args):
    if args.worker:
        print(json.dumps(measure(args.worker, args.iterations)))
        return 0
    print(f'torch {torch.__version__}, {torch.get_num_threads()} threads, {os.cpu_count()} cores')
    print('| images | decode | images/s | peak RSS | time per iteration |\n|---|---|---|---|---|')
    for count in args.counts:
        folder = make_folder_of_images(os.path.join(args.cache, f'jpeg-{count}'), count)
        result = subprocess.run([sys.executable, '-m', 'benchmarks.bench_data', '--worker', folder,
                                 '--iterations', str(args.iterations)], cwd=ROOT, capture_output=True, text=True)
        if result.returncode:
            raise cli.Failure(f'{count} images: {result.stderr.strip().splitlines()[-1]}')
        figures = json.loads(result.stdout.strip().splitlines()[-1])
        print(f'| {count:,} | {figures["decode_s"]:.1f} s | {figures["images_per_s"]:.0f} | '
              f'{figures["peak_mib"]:.0f} MiB | {1000 * figures["step_s"]:.0f} ms |', flush=True)
    return 0


if __name__ == '__main__':
    sys.exit(main())
