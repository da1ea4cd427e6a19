"""Q3(f): the assignment's model, its variants and classical denoisers, on the same held-out Pokemon.

    pip install -r experiments/requirements.txt   # scikit-image and bm3d, for the classical baselines
    python experiments/run_experiments.py          # about an hour on 2 CPU cores

Every variant is trained by asgn6.py with the same 90/10 split of the embedded images (--val-split 0.1,
seed 4680), the same batch size and the same number of epochs, so the same number of iterations.
Then each checkpoint is evaluated on the held-out images with the one fixed noise draw asgn6.py uses
for them, and on the training images with another fixed draw.  The classical filters denoise the
same held-out noisy images; each filter's parameter is the best of a small grid on those very images,
which flatters the filters, not the networks.  Writes to experiments/results/: results.json,
results.md (the table) and denoised.png (clean / noisy / spec / best variant / best filter).
"""
import argparse
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
import asgn6  # noqa: E402
import denoise  # noqa: E402
import models  # noqa: E402

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


def train_variant(name, flags, args):
    """Train one variant with asgn6.py in its own process; returns its wall time in seconds."""
    out = os.path.join(args.out, 'runs', name)
    os.makedirs(out, exist_ok=True)
    command = [sys.executable, os.path.join(ROOT, 'asgn6.py'), '--data-dir', args.data_dir, '--val-split', '0.1',
               '--epochs', str(args.epochs), '--output-dir', out, '--loss-file', os.path.join(out, 'loss.txt'),
               '--log-interval', '50', '--save-interval', '100', '--device', 'cpu', *flags]
    print(f'--- {name}: {" ".join(command[1:])}', flush=True)
    start = time.perf_counter()
    with open(os.path.join(out, 'train.log'), 'w') as log:
        subprocess.run(command, stdout=log, stderr=subprocess.STDOUT, check=True)
    return time.perf_counter() - start


@torch.no_grad()
def evaluate_variant(name, args, wall_seconds):
    checkpoint = os.path.join(args.out, 'runs', name, asgn6.CHECKPOINT_NAME)
    model, saved = denoise.load_model(checkpoint, torch.device('cpu'))
    data = asgn6.prepare_data(argparse.Namespace(**saved), torch.device('cpu'))
    clean, noisy = data['held_out']
    train_clean = data['train']
    train_noisy = asgn6.add_noise(train_clean, saved['noise_level'], torch.Generator().manual_seed(saved['seed'] + 4))
    train_l1, train_psnr = asgn6.evaluate(model, train_clean, train_noisy)
    held_l1, held_psnr = asgn6.evaluate(model, clean, noisy)
    losses = [float(line) for line in open(os.path.join(args.out, 'runs', name, 'loss.txt'))]
    return {'name': name, 'kind': 'network', 'noise_level': saved['noise_level'], 'model': saved['model'],
            'latent_size': saved['latent_size'] if model.has_latent else None, 'loss': saved['loss'],
            'parameters': models.count_parameters(model), 'iterations': len(losses),
            'wall_seconds': round(wall_seconds, 1), 'train_l1': train_l1, 'train_psnr': train_psnr,
            'held_out_l1': held_l1, 'held_out_psnr': held_psnr, 'noisy_psnr': data['noisy_psnr'],
            'train_images': train_clean.size(0), 'held_out_images': clean.size(0)}


def classical_filters():
    """name -> (parameter grid, function(image HxWx3 in [0, 1], parameter) -> image)."""
    from scipy import ndimage
    from skimage import restoration
    filters = {
        'gaussian blur': ([0.5, 0.75, 1.0, 1.5, 2.0], lambda im, s: ndimage.gaussian_filter(im, sigma=(s, s, 0))),
        'median 3x3': ([3], lambda im, k: ndimage.median_filter(im, size=(k, k, 1))),
        'median 5x5': ([5], lambda im, k: ndimage.median_filter(im, size=(k, k, 1))),
        'non-local means': ([0.05, 0.1, 0.15, 0.2, 0.3], lambda im, h: restoration.denoise_nl_means(
            im, h=h, patch_size=5, patch_distance=6, fast_mode=True, channel_axis=-1)),
        'total variation': ([0.05, 0.1, 0.2, 0.3, 0.4], lambda im, w: restoration.denoise_tv_chambolle(
            im, weight=w, channel_axis=-1)),
    }
    try:
        import bm3d
        filters['BM3D'] = ([0.1, 0.15, 0.2, 0.25, 0.3], lambda im, s: bm3d.bm3d_rgb(im, sigma_psd=s))
    except ImportError:
        print('bm3d is not installed: no BM3D baseline')
    return filters


def run_baselines(noise_level, args):
    """Every classical filter at its best parameter on the held-out images of one noise level."""
    settings = argparse.Namespace(data_dir=args.data_dir, image_size=64, val_split=0.1, seed=4680,
                                  noise_level=noise_level, batch_size=32)
    data = asgn6.prepare_data(settings, torch.device('cpu'))
    clean, noisy = data['held_out']
    to_numpy = lambda t: ((t.permute(0, 2, 3, 1).numpy() + 1) / 2).astype(np.float64)  # noqa: E731
    noisy_np = to_numpy(noisy)
    rows, outputs = [], {'noisy input': noisy}
    rows.append(baseline_row('noisy input', None, noisy, clean, noise_level))
    for name, (grid, apply) in classical_filters().items():
        best = None
        for parameter in grid:
            out = np.stack([np.clip(apply(image, parameter), 0, 1) for image in noisy_np])
            out = torch.from_numpy(out).permute(0, 3, 1, 2).float() * 2 - 1
            score = asgn6.psnr(out, clean)
            if best is None or score > best[0]:
                best = (score, parameter, out)
        rows.append(baseline_row(name, best[1], best[2], clean, noise_level))
        outputs[name] = best[2]
        print(f'{name}: {rows[-1]["held_out_psnr"]:.2f} dB (parameter {best[1]})', flush=True)
    return rows, outputs, clean, noisy


def baseline_row(name, parameter, denoised, clean, noise_level):
    return {'name': name, 'kind': 'classical', 'noise_level': noise_level, 'parameter': parameter,
            'held_out_l1': (denoised - clean).abs().mean().item(), 'held_out_psnr': asgn6.psnr(denoised, clean)}


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
def comparison_figure(path, clean, noisy, network_names, classical_output, args, count=8):
    rows = [clean[:count], noisy[:count]]
    for name in network_names:
        model, _ = denoise.load_model(os.path.join(args.out, 'runs', name, asgn6.CHECKPOINT_NAME),
                                      torch.device('cpu'))
        rows.append(model(noisy[:count]))
    rows.append(classical_output[:count])
    asgn6.save_grid(path, torch.cat(rows), images_per_row=count)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--data-dir', default=os.path.join(ROOT, 'data'), help='images (default: data)')
    parser.add_argument('--epochs', type=int, default=15, help='epochs per network: 15 is 330 iterations, '
                        'about 2.5 (spec) to 4 (unet) minutes on 2 CPU cores (default: 15)')
    parser.add_argument('--out', default=os.path.join(HERE, 'results'), help='(default: experiments/results)')
    parser.add_argument('--only', nargs='+', choices=list(VARIANTS), help='train only these (default: all)')
    parser.add_argument('--skip-training', action='store_true', help='evaluate the runs already in --out')
    parser.add_argument('--table-only', action='store_true', help='only rewrite results.md from results.json')
    args = parser.parse_args()
    if args.table_only:
        with open(os.path.join(args.out, 'results.json')) as f:
            write_table(args.out, json.load(f))
        return
    torch.set_num_threads(os.cpu_count())
    names = args.only or list(VARIANTS)
    walls = json.load(open(os.path.join(args.out, 'wall.json'))) if os.path.exists(
        os.path.join(args.out, 'wall.json')) else {}
    for name in names:
        if not args.skip_training:
            walls[name] = train_variant(name, VARIANTS[name], args)
            asgn6.write_text_atomic(os.path.join(args.out, 'wall.json'), json.dumps(walls))
    networks = [evaluate_variant(name, args, walls.get(name, float('nan'))) for name in VARIANTS
                if os.path.exists(os.path.join(args.out, 'runs', name, asgn6.CHECKPOINT_NAME))]
    classical, figure_inputs = [], None
    for level in sorted({row['noise_level'] for row in networks}, reverse=True):
        rows, outputs, clean, noisy = run_baselines(level, args)
        classical += rows
        if level == 1.0:
            figure_inputs = (rows, outputs, clean, noisy)
    report(args, networks, classical, figure_inputs, machine_name())


def machine_name():
    """The CPU's model name where Linux tells it, the core count and torch: what the wall times depend on."""
    cpu = platform.processor() or platform.machine()
    try:
        with open('/proc/cpuinfo') as f:
            cpu = next(line.split(':', 1)[1].strip() for line in f if line.startswith('model name'))
    except (OSError, StopIteration):
        pass
    return f'{cpu}, {os.cpu_count()} CPU cores, torch {torch.__version__}'


def write_table(out, results):
    """results.md from the results.json dictionary; returns the table."""
    table = markdown_table(results['networks'], results['classical'], results['machine'], results['epochs'])
    asgn6.write_text_atomic(os.path.join(out, 'results.md'), table)
    return table


def report(args, networks, classical, figure_inputs, machine):
    results = {'machine': machine, 'epochs': args.epochs, 'networks': networks, 'classical': classical}
    asgn6.write_text_atomic(os.path.join(args.out, 'results.json'), json.dumps(results, indent=1))
    print(write_table(args.out, results))
    default = [row for row in networks if row['noise_level'] == 1.0]
    if figure_inputs and default:
        rows, outputs, clean, noisy = figure_inputs
        best_network = max(default, key=lambda row: row['held_out_psnr'])['name']
        best_filter = max(rows[1:], key=lambda row: row['held_out_psnr'])['name']
        comparison_figure(os.path.join(args.out, 'denoised.png'), clean, noisy, ['spec', best_network],
                          outputs[best_filter], args)
        print(f'figure rows: clean, noisy, spec, {best_network}, {best_filter}')


if __name__ == '__main__':
    main()
