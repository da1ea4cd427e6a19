"""Training speed of asgn6.py against a starter-style loop, in one process, on one device.

    python -m benchmarks.bench_train                 # benchmarks/README.md says how long

Modes, each with the same model, batch size, seed and device, timed in alternating rounds so that
a machine that speeds up or slows down during the run affects all of them alike:
  starter        ImageFolder + DataLoader with the starter's transform (PIL decode and resize of every
                 image in every epoch), noise drawn on the CPU, batch copied to the device, loss.item()
                 every iteration
  asgn6-fp32     asgn6.py's way (its batch order, training.train_step and LossBuffer): the dataset decoded
                 once into a tensor on the device, noise drawn there, losses read back every 10 iterations
  asgn6-fp32-cl  the same in the channels_last memory format
  asgn6-bf16     the same under bf16 autocast
  asgn6-bf16-cl  bf16 autocast and channels_last together
Reports images per second (median, min-max over rounds), the ratio to the starter, the share of a
step spent outside forward/backward/optimiser, and the process's peak memory.
"""
import os
import resource
import statistics
import sys
import time

import torch
from torchvision import datasets, transforms

from dae import cli, training, variants
from dae.images import add_noise, load_dataset, to_unit_range
from dae.run import RunConfig
from dae.training import Streams


LOSS_READ_INTERVAL = 10  # asgn6.py's default --log-interval: how often the loop reads losses back


def synchronize(device):
    if device.type == 'cuda':
        torch.cuda.synchronize()


def make_model(config, device):
    Streams(config.seed).seed_weights()
    return training.build(config, device)


def starter_batches(data_dir, batch_size):
    """The starter's input pipeline, endlessly: every epoch decodes every PNG again."""
    transform = transforms.Compose([transforms.Resize(64), transforms.ToTensor(),
                                    transforms.Normalize((0.5, 0.5, 0.5), (0.5, 0.5, 0.5))])
    try:
        folder = datasets.ImageFolder(data_dir, transform)
    except (FileNotFoundError, RuntimeError) as error:  # the starter's ImageFolder wants DATA_DIR/CLASS/*.png
        raise cli.UsageError(f'--data-dir {data_dir}: the starter-style loop reads the ImageFolder layout '
                             f'(DATA_DIR/CLASS/*.png), as the course\'s data/pokemon/ is ({error})') from None
    loader = torch.utils.data.DataLoader(folder, batch_size=batch_size, shuffle=True)
    while True:
        for images, _ in loader:
            yield images


def timed(step_fn, device, seconds):
    """step_fn, adding the seconds of each call (forward, backward, optimiser) to seconds[0]."""
    def step(*args):
        synchronize(device)
        start = time.perf_counter()
        result = step_fn(*args)
        synchronize(device)
        seconds[0] += time.perf_counter() - start
        return result
    return step


def starter_mode(data_dir, config, device):
    """One iteration of a starter-style loop per call; returns (images, seconds inside the step)."""
    model, optimizers = make_model(config, device)
    batch_size = config.batch_size
    batches = starter_batches(data_dir, batch_size)
    core = [0.0]
    step_fn = timed(training.train_step, device, core)

    def step():
        core[0] = 0.0
        clean = next(batches)
        noisy = (clean + 2 * (torch.rand(clean.size()) - 0.5)).clamp(-1, 1)
        clean, noisy = clean.to(device), noisy.to(device)
        loss, _ = step_fn(model, optimizers, clean, noisy, config)
        loss.item()
        return clean.size(0), core[0]
    return step


def asgn6_mode(images, config, device):
    """One iteration as asgn6.py's loop takes it per call (its batch order, noise on the device, train_step,
    LossBuffer); returns (images, step seconds)."""
    model, optimizers = make_model(config, device)
    streams = Streams(config.seed)
    noise, core, losses = streams.training_noise(device), [0.0], training.LossBuffer()
    batches = training.batch_order(images.size(0), config.batch_size, streams, 1, sys.maxsize, device)
    step_fn = timed(training.train_step, device, core)
    memory_format = training.MEMORY_FORMATS[config.memory_format]

    def step():
        core[0] = 0.0
        iteration, indices = next(batches)
        clean = to_unit_range(images[indices]).contiguous(memory_format=memory_format)
        loss, _ = step_fn(model, optimizers, clean, add_noise(clean, config.noise_level, noise), config)
        losses.add(iteration, loss)
        if iteration % LOSS_READ_INTERVAL == 0:
            losses.flush()
        return clean.size(0), core[0]
    return step


def time_round(step, iterations):
    """(images per second, share of wall time outside the forward/backward/optimiser call)."""
    images, core = 0, 0.0
    start = time.perf_counter()
    for _ in range(iterations):
        count, seconds = step()
        images, core = images + count, core + seconds
    wall = time.perf_counter() - start
    return images / wall, 1 - core / wall


def peak_memory(device):
    resident = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux
    text = f'peak resident memory of this process: {resident:.0f} MiB'
    if device.type == 'cuda':
        text += f'; peak CUDA memory allocated: {torch.cuda.max_memory_allocated() / 2**20:.0f} MiB'
    return text


def main(argv=None):
    parser = cli.ArgumentParser('bench_train.py', __doc__)
    parser.add_argument('--data-dir', default='data', help='image folder in the ImageFolder layout (default: data)')
    cli.add_device_flag(parser)
    parser.add_argument('--batch-size', type=cli.positive_int(2), default=32, help='images per iteration (default: 32)')
    parser.add_argument('--rounds', type=cli.positive_int(), default=3, help='alternating rounds of every mode '
                        '(default: 3)')
    parser.add_argument('--iterations', type=cli.positive_int(), default=12, help='timed iterations per mode and '
                        'round (default: 12)')
    parser.add_argument('--bf16-iterations', type=cli.positive_int(), default=3, help='the same for the bf16 modes, '
                        'which are slow on CPUs without bf16 units (default: 3)')
    parser.add_argument('--seed', type=int, default=4680, help='seeds weights, data order and noise (default: 4680)')
    parser.add_argument('--models', nargs='+', choices=variants.MODEL_NAMES, metavar='MODEL', help='time these '
                        'networks instead, each in asgn6.py\'s default step (fp32, channels_last), to compare them at '
                        f'equal wall time; of {", ".join(variants.MODEL_NAMES)} (default: off)')
    parser.add_argument('--profile', type=cli.positive_int(0), default=0, metavar='STEPS', help='after the timing, '
                        'profile this many asgn6 fp32 steps and print where their time goes, by operator '
                        '(default: 0, off)')
    args = parser.parse_args(argv)
    return cli.report_errors('bench_train.py', lambda: run(args))


def run(args):
    device = cli.choose_device(args.device)
    start = time.perf_counter()
    images = load_dataset(args.data_dir, 64)[0].to(device)
    print(f'device {device}, torch {torch.__version__}, {torch.get_num_threads()} threads, {os.cpu_count()} cores; '
          f'{images.size(0)} images decoded once in {time.perf_counter() - start:.1f} s', flush=True)
    def config(precision, memory_format):
        return RunConfig(batch_size=args.batch_size, seed=args.seed, precision=precision, memory_format=memory_format)
    modes = {name: (asgn6_mode(images, RunConfig(model=name, batch_size=args.batch_size, seed=args.seed), device),
                    args.iterations) for name in args.models or ()} or {
        'starter': (starter_mode(args.data_dir, config('fp32', 'contiguous'), device), args.iterations),
        'asgn6-fp32': (asgn6_mode(images, config('fp32', 'contiguous'), device), args.iterations),
        'asgn6-fp32-cl': (asgn6_mode(images, config('fp32', 'channels_last'), device), args.iterations),
        'asgn6-bf16': (asgn6_mode(images, config('bf16', 'contiguous'), device), args.bf16_iterations),
        'asgn6-bf16-cl': (asgn6_mode(images, config('bf16', 'channels_last'), device), args.bf16_iterations),
    }
    for step, _ in modes.values():  # warm-up: first calls allocate and pick kernels
        for _ in range(2):
            step()
    results = {name: [] for name in modes}
    for round_ in range(args.rounds):
        for name, (step, iterations) in modes.items():
            results[name].append(time_round(step, iterations))
        print(f'round {round_ + 1}/{args.rounds}: ' + ', '.join(f'{name} {r[-1][0]:.1f} img/s'
                                                                 for name, r in results.items()), flush=True)
    report(results, device)
    if args.profile:
        profile_steps(next(iter(modes.values()))[0] if args.models else modes['asgn6-fp32'][0], args.profile, device)
    return 0


def profile_steps(step, steps, device):
    """Share of the profiled time per operator (self time, top 8): what the speed-up must come from."""
    activities = [torch.profiler.ProfilerActivity.CPU]
    if device.type == 'cuda':
        activities.append(torch.profiler.ProfilerActivity.CUDA)
    with torch.profiler.profile(activities=activities) as profiler:
        for _ in range(steps):
            step()
    events = [e for e in profiler.key_averages() if e.self_device_time_total or e.self_cpu_time_total]
    key = 'self_device_time_total' if device.type == 'cuda' else 'self_cpu_time_total'
    total = sum(getattr(e, key) for e in events)
    print(f'\nprofile of {steps} asgn6-fp32 steps, self time by operator:')
    for event in sorted(events, key=lambda e: getattr(e, key), reverse=True)[:8]:
        print(f'  {100 * getattr(event, key) / total:5.1f}%  {event.key}')


def report(results, device):
    """A table of every mode's speed, against the first mode's (the starter's, or the first of --models)."""
    first = next(iter(results))
    base = statistics.median(speed for speed, _ in results[first])
    print(f'\n| mode | images/s (median) | min-max | vs {first} | outside fwd/bwd/opt |')
    print('|---|---|---|---|---|')
    for name, rounds in results.items():
        speeds = [speed for speed, _ in rounds]
        outside = statistics.median(share for _, share in rounds)
        print(f'| {name} | {statistics.median(speeds):.1f} | {min(speeds):.1f}-{max(speeds):.1f} | '
              f'{statistics.median(speeds) / base:.2f}x | {100 * outside:.1f}% |')
    print(peak_memory(device))


if __name__ == '__main__':
    sys.exit(main())
