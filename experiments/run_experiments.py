"""Q3(f): the assignment's model, its variants and classical denoisers, on the same held-out Pokemon.

    pip install -r experiments/requirements.txt   # scikit-image and bm3d, for the classical baselines
    python experiments/run_experiments.py          # about an hour on 2 CPU cores

Every variant is trained by asgn6.py with the same 90/10 split of the embedded images (--val-split 0.1,
seed 4680), the same batch size and the same number of epochs, so the same number of iterations.
Then each checkpoint is evaluated on the held-out images with the one fixed noise draw asgn6.py uses
for them, and on the training images with another fixed draw.  The classical filters denoise the
same held-out noisy images, taken from a network run's own split (its checkpoint's settings), so the
two can never drift apart; each filter's parameter is the best of a small grid on those very images,
which flatters the filters, not the networks.  Only non-local means, total variation (scikit-image)
and BM3D need the packages of experiments/requirements.txt; without them those filters are left out.  Writes to experiments/results/: results.json,
results.md (the table) and denoised.png (clean / noisy / spec / best variant / best filter).
"""
import argparse
import hashlib
import json
import os
import platform
import subprocess
import sys
import time

import numpy as np
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, ROOT)
import cli  # noqa: E402
import models  # noqa: E402
import training  # noqa: E402
from files import write_text_atomic  # noqa: E402
from images import add_noise, load_dataset, psnr, save_grid, to_unit_range  # noqa: E402
from run_state import CHECKPOINT_NAME, load_checkpoint, load_model  # noqa: E402

VAL_SPLIT = 0.1
VARIANTS = {
    'spec': [],
    'latent-32': ['--latent-size', '32'],
    'latent-512': ['--latent-size', '512'],
    'conv-encoder': ['--model', 'conv-encoder'],
    'mse-loss': ['--loss', 'mse'],
    'unet': ['--model', 'unet'],
    'spec-noise-0.5': ['--noise-level', '0.5'],
    # beyond the common budget: does the bottleneck model generalise with more training, and what does
    # the U-Net reach in about 10 minutes of 2 CPU cores? (a later --epochs wins over the common one)
    'spec-long': ['--epochs', '60'],
    'unet-long': ['--model', 'unet', '--epochs', '36'],
}


def run_dir(out, name):
    return os.path.join(out, 'runs', name)


def train_variant(name, flags, *, data_dir, epochs, out):
    """Train one variant with asgn6.py in its own process; returns its wall time in seconds."""
    folder = run_dir(out, name)
    os.makedirs(folder, exist_ok=True)
    command = [sys.executable, os.path.join(ROOT, 'asgn6.py'), '--data-dir', data_dir, '--val-split', str(VAL_SPLIT),
               '--epochs', str(epochs), '--output-dir', folder, '--loss-file', os.path.join(folder, 'loss.txt'),
               '--log-interval', '50', '--save-interval', '100', '--device', 'cpu', '--overwrite', *flags]
    print(f'--- {name}: {" ".join(command[1:])}', flush=True)
    start = time.perf_counter()
    with open(os.path.join(folder, 'train.log'), 'w') as log:
        subprocess.run(command, stdout=log, stderr=subprocess.STDOUT, check=True)
    return time.perf_counter() - start


def split_of_run(settings):
    """(training images, HeldOut) of a run, on the CPU: asgn6.py's own split, from the run's own settings."""
    images, paths = load_dataset(settings['data_dir'], settings['image_size'])
    train_images, _, held_out = training.split_dataset(
        images, paths, val_split=settings['val_split'], noise_level=settings['noise_level'],
        streams=training.Streams(settings['seed']), device=torch.device('cpu'))
    return to_unit_range(train_images), held_out


def split_digest(held_out):
    """A short name for a set of held-out images, to show that two results used the same ones."""
    names = '\n'.join(os.path.basename(path) for path in held_out.paths)
    return hashlib.sha1(names.encode()).hexdigest()[:12]


@torch.no_grad()
def evaluate_variant(name, folder, wall_seconds):
    checkpoint = load_checkpoint(os.path.join(folder, CHECKPOINT_NAME), flag='run')
    model, settings = load_model(os.path.join(folder, CHECKPOINT_NAME), torch.device('cpu'), flag='run')
    train_images, held_out = split_of_run(settings)
    train_noisy = add_noise(train_images, settings['noise_level'],
                                     training.Streams(settings['seed']).training_subset_noise('cpu'))
    train_l1, train_psnr = training.evaluate(model, train_images, train_noisy)
    held_l1, held_psnr = training.evaluate(model, held_out.clean, held_out.noisy)
    return {'name': name, 'kind': 'network', 'noise_level': settings['noise_level'], 'model': settings['model'],
            'latent_size': settings['latent_size'] if model.has_latent else None, 'loss': settings['loss'],
            'parameters': models.count_parameters(model), 'iterations': len(checkpoint['losses']),
            'wall_seconds': round(wall_seconds, 1), 'train_l1': train_l1, 'train_psnr': train_psnr,
            'held_out_l1': held_l1, 'held_out_psnr': held_psnr, 'noisy_psnr': held_out.noisy_psnr,
            'train_images': train_images.size(0), 'held_out_images': held_out.clean.size(0),
            'held_out_set': split_digest(held_out)}


def reflect_windows(image, size, axes):
    """Sliding windows of `size` along `axes` with scipy.ndimage's 'reflect' border (half-sample symmetric)."""
    pad = [(size // 2, (size - 1) // 2) if axis in axes else (0, 0) for axis in range(image.ndim)]
    return np.lib.stride_tricks.sliding_window_view(np.pad(image, pad, mode='symmetric'), (size, size), axis=axes)


def gaussian_blur(image, sigma):
    """scipy.ndimage.gaussian_filter(image, (sigma, sigma, 0)) in numpy: a separable kernel of radius 4 sigma."""
    radius = int(4 * sigma + 0.5)
    kernel = np.exp(-0.5 * (np.arange(-radius, radius + 1) / sigma) ** 2)
    kernel /= kernel.sum()
    for axis in (0, 1):
        padded = np.pad(image, [(radius, radius) if a == axis else (0, 0) for a in range(3)], mode='symmetric')
        windows = np.lib.stride_tricks.sliding_window_view(padded, 2 * radius + 1, axis=axis)
        image = windows @ kernel
    return image


def median_filter(image, size):
    """scipy.ndimage.median_filter(image, size=(size, size, 1)) in numpy."""
    return np.median(reflect_windows(image, size, (0, 1)), axis=(-2, -1))


def classical_filters(names=None):
    """name -> (parameter grid, function(image HxWx3 in [0, 1], parameter) -> image); optional ones if installed."""
    filters = {
        'gaussian blur': ([0.5, 0.75, 1.0, 1.5, 2.0], gaussian_blur),
        'median 3x3': ([3], median_filter),
        'median 5x5': ([5], median_filter),
    }
    try:
        from skimage import restoration
        filters['non-local means'] = ([0.05, 0.1, 0.15, 0.2, 0.3], lambda im, h: restoration.denoise_nl_means(
            im, h=h, patch_size=5, patch_distance=6, fast_mode=True, channel_axis=-1))
        filters['total variation'] = ([0.05, 0.1, 0.2, 0.3, 0.4], lambda im, w: restoration.denoise_tv_chambolle(
            im, weight=w, channel_axis=-1))
    except ImportError:
        print('scikit-image is not installed: no non-local means or total variation baselines')
    try:
        import bm3d
        filters['BM3D'] = ([0.1, 0.15, 0.2, 0.25, 0.3], lambda im, s: bm3d.bm3d_rgb(im, sigma_psd=s))
    except ImportError:
        print('bm3d is not installed: no BM3D baseline')
    return {name: value for name, value in filters.items() if names is None or name in names}


def run_baselines(held_out, noise_level, filters):
    """Every classical filter at its best parameter on the held-out images of one run's split."""
    to_numpy = lambda t: ((t.permute(0, 2, 3, 1).numpy() + 1) / 2).astype(np.float64)  # noqa: E731
    clean, noisy = held_out.clean, held_out.noisy
    noisy_np, digest = to_numpy(noisy), split_digest(held_out)
    rows, outputs = [baseline_row('noisy input', None, noisy, clean, noise_level, digest)], {'noisy input': noisy}
    for name, (grid, apply) in filters.items():
        best = None
        for parameter in grid:
            out = np.stack([np.clip(apply(image, parameter), 0, 1) for image in noisy_np])
            out = torch.from_numpy(out).permute(0, 3, 1, 2).float() * 2 - 1
            score = psnr(out, clean)
            if best is None or score > best[0]:
                best = (score, parameter, out)
        rows.append(baseline_row(name, best[1], best[2], clean, noise_level, digest))
        outputs[name] = best[2]
        print(f'{name}: {rows[-1]["held_out_psnr"]:.2f} dB (parameter {best[1]})', flush=True)
    return rows, outputs


def baseline_row(name, parameter, denoised, clean, noise_level, digest):
    return {'name': name, 'kind': 'classical', 'noise_level': noise_level, 'parameter': parameter,
            'held_out_l1': (denoised - clean).abs().mean().item(), 'held_out_psnr': psnr(denoised, clean),
            'held_out_set': digest}


def markdown_table(networks, classical, machine, epochs):
    first = networks[0]
    lines = [f'Machine: {machine}. Budget: {epochs} epochs of the {first["train_images"]} training images, batch 32 '
             f'({first["iterations"]} iterations) per network unless the iterations column says otherwise; '
             f'PSNR in dB on the {first["held_out_images"]} held-out images, train PSNR on the training images.', '',
             '| method | noise | parameters | iterations | train L1 | train PSNR | held-out L1 | held-out PSNR | wall time |',
             '|--------------------|----|----------|------|------|------|------|------|------|']  # widths for pandoc
    for row in networks:
        lines.append(f'| {row["name"]} | {row["noise_level"]} | {row["parameters"]:,} | {row["iterations"]} | '
                     f'{row["train_l1"]:.4f} | {row["train_psnr"]:.2f} | {row["held_out_l1"]:.4f} | {row["held_out_psnr"]:.2f} | '
                     f'{row["wall_seconds"] / 60:.1f} min |')
    for row in classical:
        parameter = '' if row['parameter'] is None else f' ({row["parameter"]})'
        lines.append(f'| {row["name"]}{parameter} | {row["noise_level"]} | - | - | - | - | {row["held_out_l1"]:.4f} | '
                     f'{row["held_out_psnr"]:.2f} | - |')
    return '\n'.join(lines) + '\n'


@torch.no_grad()
def comparison_figure(path, held_out, network_folders, classical_output, count=8):
    count = min(count, held_out.clean.size(0))
    rows = [held_out.clean[:count], held_out.noisy[:count]]
    for folder in network_folders:
        model, _ = load_model(os.path.join(folder, CHECKPOINT_NAME), torch.device('cpu'), flag='run')
        rows.append(model(held_out.noisy[:count]))
    rows.append(classical_output[:count])
    save_grid(path, torch.cat(rows), images_per_row=count)


def machine_name():
    """The CPU's model name where Linux tells it, the core count and torch: what the wall times depend on."""
    cpu = platform.processor() or platform.machine()
    try:
        with open('/proc/cpuinfo') as f:
            cpu = next(line.split(':', 1)[1].strip() for line in f if line.startswith('model name'))
    except (OSError, StopIteration):
        pass
    return f'{cpu}, {os.cpu_count()} CPU cores, torch {torch.__version__}'


def read_json(path, default=None):
    if default is not None and not os.path.exists(path):
        return default
    with open(path) as f:
        return json.load(f)


def write_table(out, results):
    """results.md from the results.json dictionary; returns the table."""
    table = markdown_table(results['networks'], results['classical'], results['machine'], results['epochs'])
    write_text_atomic(os.path.join(out, 'results.md'), table)
    return table


def evaluate_all(out, names, walls, filters):
    """Network rows for every finished run; classical rows on the split of the first run at each noise level."""
    networks = [evaluate_variant(name, run_dir(out, name), walls.get(name, float('nan'))) for name in names
                if os.path.exists(os.path.join(run_dir(out, name), CHECKPOINT_NAME))]
    classical, figure_inputs = [], None
    for level in sorted({row['noise_level'] for row in networks}, reverse=True):
        first = next(row for row in networks if row['noise_level'] == level)
        _, held_out = split_of_run(load_checkpoint(os.path.join(run_dir(out, first['name']), CHECKPOINT_NAME),
                                                   flag='run')['args'])
        rows, outputs = run_baselines(held_out, level, filters)
        classical += rows
        if level == 1.0:
            figure_inputs = (rows, outputs, held_out)
    return networks, classical, figure_inputs


def report(out, epochs, networks, classical, figure_inputs):
    results = {'machine': machine_name(), 'epochs': epochs, 'networks': networks, 'classical': classical}
    write_text_atomic(os.path.join(out, 'results.json'), json.dumps(results, indent=1))
    print(write_table(out, results))
    default = [row for row in networks if row['noise_level'] == 1.0]
    if figure_inputs and default:
        rows, outputs, held_out = figure_inputs
        best_network = max(default, key=lambda row: row['held_out_psnr'])['name']
        best_filter = max(rows[1:], key=lambda row: row['held_out_psnr'], default=rows[0])['name']
        shown = [name for name in dict.fromkeys(['spec', best_network]) if any(r['name'] == name for r in networks)]
        comparison_figure(os.path.join(out, 'denoised.png'), held_out, [run_dir(out, name) for name in shown],
                          outputs[best_filter])
        print(f'figure rows: clean, noisy, {", ".join(shown)}, {best_filter}')


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--data-dir', default=os.path.join(ROOT, 'data'), help='images (default: data)')
    parser.add_argument('--epochs', type=cli.positive_int(), default=15, help='epochs per network: 15 is 330 '
                        'iterations, about 2.5 (spec) to 4 (unet) minutes on 2 CPU cores (default: 15)')
    parser.add_argument('--out', default=os.path.join(HERE, 'results'), help='folder for the runs and results '
                        '(default: experiments/results)')
    parser.add_argument('--only', nargs='+', choices=list(VARIANTS), help='train and evaluate only these '
                        '(default: all)')
    parser.add_argument('--filters', nargs='+', help='classical filters to compare, by name (default: all that '
                        'are installed)')
    parser.add_argument('--skip-training', action='store_true', help='evaluate the runs already in --out '
                        '(default: train first)')
    parser.add_argument('--table-only', action='store_true', help='only rewrite results.md from results.json '
                        '(default: off)')
    args = parser.parse_args(argv)
    return cli.report_errors('run_experiments.py', lambda: run(args))


def run(args):
    if args.table_only:
        write_table(args.out, read_json(os.path.join(args.out, 'results.json')))
        return 0
    torch.set_num_threads(os.cpu_count())
    names = args.only or list(VARIANTS)
    walls_path = os.path.join(args.out, 'wall.json')
    walls = read_json(walls_path, default={})
    for name in names:
        if not args.skip_training:
            walls[name] = train_variant(name, VARIANTS[name], data_dir=args.data_dir, epochs=args.epochs, out=args.out)
            write_text_atomic(walls_path, json.dumps(walls))
    networks, classical, figure_inputs = evaluate_all(args.out, names, walls, classical_filters(args.filters))
    report(args.out, args.epochs, networks, classical, figure_inputs)
    return 0


if __name__ == '__main__':
    sys.exit(main())
