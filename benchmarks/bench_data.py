"""How start-up, memory and step time of asgn6.py grow with the size of --data-dir.

    python benchmarks/bench_data.py                           # 1,000, 10,000 and 100,000 images: about 15 min
    python benchmarks/bench_data.py --counts 1000 --iterations 5

Synthetic folders of 256x256 JPEGs (coloured shapes, like photos of one object on a plain background)
are made once in --cache and reused. For each folder and each way of storing the decoded dataset, a
fresh process decodes the folder and trains a few iterations of the spec model, and reports the
decode time, images decoded per second, the process's peak resident memory, and the median time per
training iteration:
  float32  the previous code: one process decodes every image into a float32 tensor, then stacks them
  uint8    asgn6.py now: decoding in parallel (one worker per core) into one uint8 tensor, each batch
           turned into [-1, 1] floats when it is taken
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import time

import numpy as np
import torch
from PIL import Image

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
import cli  # noqa: E402
import training  # noqa: E402
from images import find_images, load_dataset, load_image, to_tensor  # noqa: E402
from run_state import TrainingState  # noqa: E402


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


def float32_store(folder, image_size):
    """The previous load_dataset: every image decoded in this process to floats, then stacked."""
    return torch.stack([to_tensor(load_image(path, image_size)) for path in find_images(folder)])


def measure(folder, store, iterations, seed=4680):
    """Runs in its own process: decode the folder, train `iterations` steps; returns the figures as a dict."""
    from torchvision.transforms import functional  # noqa: F401  imported before the clock, for both stores
    start = time.perf_counter()
    images = float32_store(folder, 64) if store == 'float32' else load_dataset(folder, 64)[0]
    decode = time.perf_counter() - start
    streams = training.Streams(seed)
    streams.seed_weights()
    model, optimizers = training.build('spec', 128, 64, torch.device('cpu'))
    state = TrainingState(model, optimizers, streams.training_noise('cpu'))
    times, last = [], time.perf_counter()
    for step in training.steps(state, images, iterations + 2, batch_size=32, noise_level=1.0, precision='fp32',
                               loss_kind='l1', streams=streams, memory_format=torch.contiguous_format):
        step.loss.item()
        now = time.perf_counter()
        times.append(now - last)
        last = now
    peak = resource_peak_mib()
    return {'images': images.size(0), 'decode_s': decode, 'images_per_s': images.size(0) / decode,
            'peak_mib': peak, 'step_s': statistics.median(times[2:])}  # the first two warm up


def resource_peak_mib():
    import resource
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--counts', type=cli.positive_int(2), nargs='+', default=[1000, 10000, 100000],
                        help='images per synthetic folder (default: 1000 10000 100000)')
    parser.add_argument('--cache', default=os.path.join(os.path.expanduser('~'), '.cache', 'asgn6-bench-data'),
                        help='where the synthetic folders are made once and kept (default: ~/.cache/asgn6-bench-data)')
    parser.add_argument('--iterations', type=cli.positive_int(), default=10, help='timed training iterations per '
                        'run (default: 10)')
    parser.add_argument('--stores', nargs='+', choices=['float32', 'uint8'], default=['float32', 'uint8'],
                        help='ways of storing the dataset to compare (default: float32 uint8)')
    parser.add_argument('--worker', nargs=2, metavar=('FOLDER', 'STORE'), help='internal: measure one folder '
                        'and store in this process and print the figures as JSON (default: off)')
    args = parser.parse_args(argv)
    return cli.report_errors('bench_data.py', lambda: run(args))


def run(args):
    if args.worker:
        print(json.dumps(measure(args.worker[0], args.worker[1], args.iterations)))
        return 0
    print(f'torch {torch.__version__}, {torch.get_num_threads()} threads, {os.cpu_count()} cores')
    print('| images | store | decode | images/s | peak RSS | time per iteration |\n|---|---|---|---|---|---|')
    for count in args.counts:
        folder = make_folder_of_images(os.path.join(args.cache, f'jpeg-{count}'), count)
        for store in args.stores:
            result = subprocess.run([sys.executable, os.path.abspath(__file__), '--worker', folder, store,
                                     '--iterations', str(args.iterations)], capture_output=True, text=True)
            if result.returncode:
                raise cli.Failure(f'{store} on {count} images: {result.stderr.strip().splitlines()[-1]}')
            figures = json.loads(result.stdout.strip().splitlines()[-1])
            print(f'| {count:,} | {store} | {figures["decode_s"]:.1f} s | {figures["images_per_s"]:.0f} | '
                  f'{figures["peak_mib"]:.0f} MiB | {1000 * figures["step_s"]:.0f} ms |', flush=True)
    return 0


if __name__ == '__main__':
    sys.exit(main())
