"""Regenerate the report's figures and generated passages from committed run outputs.

    python -m report.make_figures --collect samples   # once, after a full run: copy what the report uses
    python -m report.make_figures                     # figures + the generated parts of report.md
    python -m report.make_figures --pdf               # the same, then report.pdf (what report/build runs)

--collect copies from a finished run (its output folder, ./loss.txt and the run's log) into
report/run/: the loss file, the sample and novel grids of the report's iterations, and images made
with the run's checkpoint (latent-source comparison, denoise.py demos).  Without --collect only
report/run/ is read, so the report rebuilds on a machine that never trained.  Passages of report.md
between <!-- BEGIN name --> and <!-- END name --> are rewritten; everything else is prose.
"""
import dataclasses
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile

import numpy as np
from PIL import Image

import torch

from experiments.classical import best_classical
from experiments.run_experiments import Q3F_VARIANTS, split_of_run
from experiments.summary import follows_short_batch, seed_list, spread

from dae import cli, training
from dae.files import atomic_write, copy_atomic, save_figure, write_text_atomic
from dae.images import add_noise, load_dataset, psnr, save_grid, to_unit_range
from dae.latents import data_latents, fitted_gaussian, user_draws
from dae.loss_stats import centred_average, convergence_stats
from dae.machine import machine_name
from dae.checkpoint import FORMAT, load_checkpoint
from dae.denoising import load_model, model_of
from dae.config import RunConfig, batches_per_epoch
from dae.logs import read_losses, read_validation

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)

RUN = os.path.join(HERE, 'run')  # the default run: 500 epochs on all 749 images
HELD_OUT = os.path.join(HERE, 'heldout')  # the same for 500 epochs with 10% held out
WEIGHTS = os.path.join(ROOT, 'weights')
FIGURES = os.path.join(HERE, 'figures')
ITERATIONS = (100, 1000, 5000, 12000)
CELL = 66  # save_image: 64-pixel images with 2 pixels of padding


# ----------------------------------------------------------------------------- generated text

def describe(layer):
    """A short name for a layer, as the assignment's table would write it."""
    short = {'ConvTranspose2d': 'ConvT', 'Conv2d': 'Conv', 'BatchNorm1d': 'BN', 'BatchNorm2d': 'BN'}
    kind = short.get(type(layer).__name__, type(layer).__name__)
    if hasattr(layer, 'in_features'):
        return f'{kind}({layer.in_features}→{layer.out_features})'
    if hasattr(layer, 'kernel_size'):
        k, s, p = layer.kernel_size[0], layer.stride[0], layer.padding[0]
        return f'{kind}({layer.in_channels}→{layer.out_channels}, {k}×{k}' + (f', s{s}' if s > 1 else '') + \
            (f', p{p}' if p else '') + ')'
    return kind


def layer_table():
    """One row per block of the spec'd models: its layers, output shape and parameters, from models.py itself."""
    from models import Decoder, Encoder
    rows = ['| block | layers | output (N = 32) | parameters |',
            '|-------------|------------------------------------------------------------|-----------------|---------|']
    x = torch.zeros(32, 3 * 64 * 64)
    for model, blocks, name in ((Encoder(128, 64), ('hidden_layer', 'output_layer'), 'Encoder'),
                                (Decoder(128, 64), [f'layer{i}' for i in range(1, 6)], 'Decoder')):
        model.eval()
        if name == 'Decoder':
            x = torch.zeros(32, 128, 1, 1)
        for block in blocks:
            layers = getattr(model, block)
            with torch.no_grad():
                x = layers(x)
            params = sum(p.numel() for p in layers.parameters())
            text = ', '.join(describe(layer) for layer in layers)
            rows.append(f'| {block} | {text} | {tuple(x.shape)} | {params:,} |')
        rows.append(f'| **{name}** | | | **{sum(p.numel() for p in model.parameters()):,}** |')
    return '\n'.join(rows) + ('\n\n: The blocks of `models.py` (ConvT: ConvTranspose2d, Conv: Conv2d, BN: BatchNorm; '
                              'the kernel, then stride s and padding p where they are not 1 and 0). *Generated* by '
                              'running a batch of 32 through each block.')


def check_models_output():
    result = subprocess.run([sys.executable, 'check_models.py'], cwd=ROOT, capture_output=True, text=True)
    text = re.sub(r' in \d+\.\d+s', '', result.stderr.strip())  # its time changes from run to run: left out
    return f'```\n$ python check_models.py\n{text}\n```'


def iterations_per_epoch(log=os.path.join(RUN, 'train.log')):
    """As the run printed it at its start ('N iterations per epoch'), in its committed log."""
    with open(log) as f:
        return int(re.search(r'(\d+) iterations per epoch', f.read()).group(1))


def loss_table(losses, per_epoch, window_epochs=10, late=2000):
    """Q3(c)'s numbers for a loss file: the smoothed loss through training and the scatter of single losses
    about the trend over the last `late` iterations (the notebook builds it for its own run)."""
    window = window_epochs * per_epoch
    stats = convergence_stats(losses, window)
    start = max(0, losses.size - late)
    deviation = losses[start:] / centred_average(losses, window)[start:] - 1
    low, high = np.percentile(deviation, [5, 95])
    return '\n'.join([
        '| | value |', '|---|---|',
        f'| iterations | {stats["iterations"]} |',
        f'| first loss | {losses[0]:.4f} |',
        f'| smoothed loss at 50% (iteration {stats["iterations"] // 2}) | {stats["smoothed_50"]:.4f} |',
        f'| smoothed loss at 90% (iteration {int(0.9 * stats["iterations"])}) | {stats["smoothed_90"]:.4f} |',
        f'| smoothed loss at 100% | {stats["smoothed_final"]:.4f} |',
        f'| change of the smoothed loss over the last 10% | {100 * stats["last_10pct_change"]:+.2f}% |',
        f'| minimum single-batch loss | {stats["minimum"]:.4f} (iteration {stats["minimum_at"]}) |',
        f'| final single-batch loss | {stats["final"]:.4f} |',
        f'| single losses about the centred mean, iterations {start:,}–{losses.size:,}: standard deviation | '
        f'{100 * deviation.std():.1f}% |',
        f'| the same: 90% of iterations between | {100 * low:+.1f}% and {100 * high:+.1f}% |',
        '', f': The loss of the default run, every iteration\'s; smoothed: the trailing mean over {window} '
            f'iterations ({window_epochs} epochs).'])


def loss_section(window_epochs=10):
    """The loss figure, drawn by plot_loss.py as a user would, and the numbers behind Q3(c)."""
    per_epoch = iterations_per_epoch()
    subprocess.run([sys.executable, os.path.join(ROOT, 'plot_loss.py'), 'loss.txt', '--window',
                    str(window_epochs * per_epoch), '--per-epoch', str(per_epoch), '--log-y', '--ylabel', 'L1 loss',
                    '--title', 'Training loss, 500 epochs, embedded data, seed 4680',
                    '--save', os.path.join(FIGURES, 'loss.png')], cwd=RUN, check=True, stdout=subprocess.DEVNULL)
    return loss_table(read_losses(os.path.join(RUN, 'loss.txt')), per_epoch, window_epochs)


# ----------------------------------------------------------------------------- grids

def grid_cells(path, rows):
    """The images of a save_image grid as an array rows x columns x 64 x 64 x 3, in [-1, 1]."""
    with Image.open(path) as image:
        pixels = np.asarray(image.convert('RGB'), dtype=np.float64) / 127.5 - 1
    columns = (pixels.shape[1] - 2) // CELL
    return np.stack([np.stack([pixels[2 + r * CELL:r * CELL + CELL, 2 + c * CELL:c * CELL + CELL]
                               for c in range(columns)]) for r in range(rows)])


def crop_columns(source, target, columns, rows):
    with Image.open(source) as image:
        crop = image.crop((0, 0, min(image.width, 2 + columns * CELL), 2 + rows * CELL))
    atomic_write(target, lambda tmp: crop.save(tmp, format='png'))


TEXT_WIDTH = 475 / 72  # inches: the width of report.pdf's text (pdftotext -bbox, page 1)
PANEL_WIDTHS = {'samples.png': 0.86, 'novels.png': 0.62, 'variants.png': 0.8}  # their share of it in report.md


def panels(sources, titles, target, columns=2):
    """Several grids in one figure, each under its title, `columns` to a row; the titles sized to print at 7 pt
    in the report, whatever the figure is scaled by there."""
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    images = [np.asarray(Image.open(source).convert('RGB')) for source in sources]
    rows = -(-len(images) // columns)
    height, width = images[0].shape[:2]
    fontsize = 7 * (columns * width / 100) / (PANEL_WIDTHS[os.path.basename(target)] * TEXT_WIDTH)
    label = 1.45 * fontsize * 100 / 72  # the height of a title's row, in the figure's pixels
    fig, axes = plt.subplots(rows, columns, figsize=(columns * width / 100, rows * (height + label) / 100),
                             squeeze=False)
    for ax, image, title in zip(axes.flat, images, titles):
        ax.imshow(image, interpolation='nearest')
        ax.set_title(title, fontsize=fontsize, pad=3)
    for ax in axes.flat:
        ax.axis('off')
    fig.subplots_adjust(left=0.005, right=0.995, bottom=0.005, top=1 - label / (rows * (height + label)),
                        wspace=0.02, hspace=label / height)
    save_figure(fig, target, dpi=200)
    plt.close(fig)


def labelled_rows(source, target, labels):
    """A grid of images with each row's name to its left, the names sized to print at 7 pt in the report."""
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    image = np.asarray(Image.open(source).convert('RGB'))
    height, width = image.shape[:2]
    margin = 0.5 * width  # room for the names, in the grid's pixels
    fontsize = 7 * ((width + margin) / 100) / (PANEL_WIDTHS[os.path.basename(target)] * TEXT_WIDTH)
    fig = plt.figure(figsize=((width + margin) / 100, height / 100))
    ax = fig.add_axes([margin / (width + margin), 0, width / (width + margin), 1])
    ax.imshow(image, interpolation='nearest')
    ax.axis('off')
    for row, label in enumerate(labels):
        ax.text(-6, 2 + (row + 0.5) * CELL, label, ha='right', va='center', fontsize=fontsize)
    save_figure(fig, target, dpi=200)
    plt.close(fig)


def samples_section(run=RUN, iterations=ITERATIONS, figures=FIGURES, per_epoch=None, columns=8):
    """The PSNR table of Q3(d), and the sample and novel grids of its iterations as one figure each (the
    notebook draws them for its own run)."""
    rows = ['| iteration | epoch | noisy vs clean | denoised vs clean |', '|---|---|---|---|']
    per_epoch = per_epoch or iterations_per_epoch()
    crops, scratch, batch_sizes = {'sample': [], 'novel': []}, tempfile.mkdtemp(), {}
    for iteration in iterations:
        source = os.path.join(run, f'sample-{iteration:06d}.png')
        clean, noisy, denoised = grid_cells(source, 3)
        batch_sizes[iteration] = len(clean)
        for kind, grid_rows in (('sample', 3), ('novel', 2)):
            crops[kind].append(os.path.join(scratch, f'{kind}-{iteration:06d}.png'))
            crop_columns(os.path.join(run, f'{kind}-{iteration:06d}.png'), crops[kind][-1], columns, grid_rows)
        rows.append(f'| {iteration:,} | {(iteration - 1) // per_epoch + 1} | {psnr(noisy, clean):.2f} dB '
                    f'| {psnr(denoised, clean):.2f} dB |')
    titles = [f'iteration {iteration:,} (epoch {(iteration - 1) // per_epoch + 1})' for iteration in iterations]
    for kind, paths in crops.items():
        panels(paths, titles, os.path.join(figures, f'{kind}s.png'))
    shutil.rmtree(scratch)
    usual = max(batch_sizes.values(), key=list(batch_sizes.values()).count)
    short = ''.join(f', but {size} at iteration {iteration:,}, the last batch of epoch '
                    f'{(iteration - 1) // per_epoch + 1}'
                    for iteration, size in batch_sizes.items() if size != usual)
    return '\n'.join(rows) + ('\n\n: PSNR of the saved training batches (8-bit pixels, peak-to-peak 2), over every '
                              f'image of the batch: {usual}{short}.')


# the coda's long runs, one recipe (a cosine schedule, MSE, the eight symmetries) in one wall time: (name, label)
LONG_CODA = (('residual-unet+cosine+mse+augment-160ep', 'residual U-Net, cosine, MSE, symmetries'),
             ('unet+cosine+mse+augment-71ep', 'U-Net, the same recipe and time'))
DENOISER = LONG_CODA[1][0]  # make_figures --ship-denoiser's default run name: the shipped weights/unet.pt's run
RESULTS = os.path.join(ROOT, 'experiments', 'results', 'results.json')


def read_results(path=RESULTS):
    with open(path) as f:
        return json.load(f)


def machine_class(machine):
    """The CPU class a machine description names, for captions (report/NOTES.md describes the machines)."""
    return 'AVX-512' if 'AVX-512' in machine else 'AVX2' if 'AVX2' in machine else 'unknown'


# the report's names of run_experiments.Q3F_VARIANTS: the assignment's model and one change of it each, 60 epochs
VARIANT_LABELS = {'spec-60ep': "the assignment's model", 'latent-32-60ep': 'latent size 32',
                  'latent-512-60ep': 'latent size 512', 'conv-encoder-60ep': 'convolutional encoder',
                  'resize-decoder-60ep': 'resize-convolve decoder', 'mse-loss-60ep': 'MSE loss'}


def runs_by_name(results, tested_only=True, level=1.0):
    """{name: {seed: row}} of the network runs at one noise level, on the test seeds only unless told."""
    runs = {}
    for row in results['networks']:
        if row['noise_level'] == level and not (tested_only and row['seed'] in results.get('development_seeds', [])):
            runs.setdefault(row['name'], {})[row['seed']] = row
    return runs


RUNS = os.path.join(ROOT, 'experiments', 'results', 'runs')


def short_batch_drop(runs, runs_dir=RUNS):
    """The largest fall of held-out PSNR from a save to the next, where the next follows an epoch's short last
    batch, over the runs {name: {seed: row}}: what leaving such saves out of a score is worth."""
    drops = []
    for name, rows in runs.items():
        for seed, row in rows.items():
            saves = read_validation(os.path.join(runs_dir, name, f'seed-{seed}', 'validation.csv'))
            drops += [before.psnr - after.psnr for before, after in zip(saves, saves[1:])
                      if follows_short_batch(after.iteration, row['train_images'], RunConfig().batch_size)]
    return max(drops, default=0.0)


def score_until(saves, stop, train_images, last=3):
    """A run's score had it stopped at iteration `stop`: the mean held-out PSNR of its last saves up to there that
    do not follow a short batch (constant rates make a shorter run the same run stopped early; under a schedule
    it is only the run's state there)."""
    kept = [save for save in sorted(saves, key=lambda save: save.iteration) if save.iteration <= stop and
            not follows_short_batch(save.iteration, train_images, RunConfig().batch_size)][-last:]
    return float(np.mean([save.psnr for save in kept])), kept[-1].iteration


def variant_curves(runs, runs_dir=RUNS, held_out_dir=HELD_OUT, last_epochs=10):
    """heldout-curves.png, the ground of the 60-epoch budget: the 500-epoch run with images held out, and each
    variant's held-out PSNR over its 60 epochs (the mean of its seeds); returns a sentence on how far each
    variant's score moved over its last epochs."""
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    fig, (full, variants) = plt.subplots(1, 2, figsize=(9, 2.8), width_ratios=(1, 1.25))
    if os.path.exists(os.path.join(held_out_dir, 'validation.csv')):
        saves = read_validation(os.path.join(held_out_dir, 'validation.csv'))
        per_epoch = iterations_per_epoch(os.path.join(held_out_dir, 'train.log'))
        epochs = [save.iteration / per_epoch for save in saves]
        full.plot(epochs, [save.train_psnr for save in saves], linewidth=1, label='training images')
        full.plot(epochs, [save.psnr for save in saves], linewidth=1, label='held-out images')
        full.axvline(60, color='grey', linestyle='--', linewidth=1, label='60 epochs')
        full.legend(fontsize=7)
    full.set(title='the assignment\'s model, 500 epochs (seed 4680)', xlabel='epoch', ylabel='PSNR (dB)')
    changes = {}
    for name, rows in runs.items():
        curves, moved = [], []
        for seed, row in rows.items():
            saves = read_validation(os.path.join(runs_dir, name, f'seed-{seed}', 'validation.csv'))
            per_epoch = batches_per_epoch(row['train_images'], RunConfig().batch_size)
            stop = row['iterations'] - last_epochs * per_epoch
            moved.append(score_until(saves, row['iterations'], row['train_images'])[0]
                         - score_until(saves, stop, row['train_images'])[0])
            curves.append({save.iteration / per_epoch: save.psnr for save in saves
                           if not follows_short_batch(save.iteration, row['train_images'], RunConfig().batch_size)})
        epochs = sorted(set.intersection(*(set(curve) for curve in curves)))
        variants.plot(epochs, [np.mean([curve[epoch] for curve in curves]) for epoch in epochs], linewidth=1,
                      label=VARIANT_LABELS.get(name, name))
        changes[name] = float(np.mean(moved))
    variants.set(title=f'held-out PSNR, mean of seeds {seed_list(next(iter(runs.values())))}', xlabel='epoch')
    variants.legend(fontsize=6.5, ncol=2, loc='lower right')
    for ax in (full, variants):
        ax.grid(alpha=0.3)
    fig.tight_layout()
    save_figure(fig, os.path.join(FIGURES, 'heldout-curves.png'), dpi=200)
    plt.close(fig)
    least, most = min(changes, key=changes.get), max(changes, key=changes.get)
    return (f'Over the last {last_epochs} epochs the variants\' scores moved by {changes[least]:+.2f} '
            f'({VARIANT_LABELS.get(least, least)}) to {changes[most]:+.2f} dB ({VARIANT_LABELS.get(most, most)}; mean '
            'of the seeds; the curves are in the appendix).')


def variants_section(results_path=RESULTS, runs_dir=RUNS, held_out_dir=HELD_OUT):
    """Q3(f)'s table: each variant's held-out and training PSNR, its held-out change against the assignment's
    model on the same seeds, the memorisation gap and the checkerboard measure (on the seeds whose checkpoint
    was there to measure it)."""
    figure = os.path.join(ROOT, 'experiments', 'results', 'variants.png')
    if os.path.exists(figure):
        labelled_rows(figure, os.path.join(FIGURES, 'variants.png'),
                      ['clean', 'noisy'] + [VARIANT_LABELS[name] for name in Q3F_VARIANTS])
    runs = runs_by_name(read_results(results_path))
    base = runs[Q3F_VARIANTS[0]]
    drop = f'{short_batch_drop({name: runs[name] for name in Q3F_VARIANTS}, runs_dir):.1f} dB held out from the ' \
        'save before'
    long_runs = {name: runs[name] for name, _ in LONG_CODA if name in runs}
    if long_runs:
        drop += f' (in the coda\'s long runs, by up to {short_batch_drop(long_runs, runs_dir):.1f} dB)'
    flat = variant_curves({name: runs[name] for name in Q3F_VARIANTS}, runs_dir, held_out_dir)
    lines = ['| variant | parameters | training PSNR | held-out PSNR | change held out | gap | checkerboard |',
             '|------------------------|------------|---------------|---------------|---------------|-------------|'
             '---------------|']
    for name in Q3F_VARIANTS:
        rows = runs[name]
        seeds = sorted(rows)
        change = ('-' if name == Q3F_VARIANTS[0] else
                  spread([rows[s]['held_out_psnr'] - base[s]['held_out_psnr'] for s in seeds], sign=True))
        boards = {s: rows[s]['checkerboard_db'] for s in seeds if 'checkerboard_db' in rows[s]}
        board = spread(list(boards.values()), digits=1, sign=True) if boards else '-'
        if boards and len(boards) < len(seeds):
            board += f' ({seed_list(boards)})'
        lines.append(f'| {VARIANT_LABELS[name]} | {rows[seeds[0]]["parameters"]:,} | '
                     f'{spread([rows[s]["train_psnr"] for s in seeds])} | '
                     f'{spread([rows[s]["held_out_psnr"] for s in seeds])} | {change} | '
                     f'{spread([rows[s]["train_psnr"] - rows[s]["held_out_psnr"] for s in seeds])} | {board} |')
    first = base[min(base)]
    return '\n'.join(lines) + (
        f'\n\n: The assignment\'s model and one change of it a row, {first["iterations"]:,} iterations (60 epochs), '
        f'on the test seeds {seed_list(base)}: PSNR in dB, mean ± std; change held out: against the assignment\'s '
        f'model on the same seed; gap: training minus held-out PSNR; checkerboard: the outputs\' power at the '
        f'highest spatial frequency against the clean images\', in dB, on the seeds named where not all. A save '
        f'right after an epoch\'s 2-image last batch is left out of a score: in these runs it falls by up to '
        f'{drop}. {flat}')


def baselines_section(results_path=RESULTS):
    """The classical filters on the test seeds: plain, with the 1-D and with the 2-D correction."""
    results = read_results(results_path)
    development = results.get('development_seeds', [])
    rows = {}
    for row in results['classical']:
        if row['noise_level'] == 1.0 and row['seed'] not in development:
            rows.setdefault(row['name'], []).append(row)
    names = [name for name in rows if ' + ' not in name]
    lines = ['| filter | plain | + 1-D correction | + 2-D correction |',
             '|------------|--------------------|--------------------|--------------------|']
    labels = {'gaussian blur': 'Gaussian blur'}
    for name in names:
        cells = []
        for suffix in ('', ' + correction', ' + 2-D correction'):
            found = rows.get(name + suffix, [])
            parameters = ', '.join(sorted({f'{r["parameter"]:g}' for r in found if r.get('parameter') is not None}))
            cells.append(spread([r['held_out_psnr'] for r in found]) + (f' ({parameters})' if parameters else '')
                         if found else '-')
        lines.append(f'| {labels.get(name, name)} | ' + ' | '.join(cells) + ' |')
    seeds = seed_list({row['seed'] for found in rows.values() for row in found})
    return '\n'.join(lines) + (f'\n\n: Classical filters on the held-out images of the test seeds {seeds}, PSNR in dB, '
                               'mean ± std (the parameter chosen on each seed\'s training images in brackets).')


# U-Net over residual U-Net training speed at batch 32, fp32, channels_last (images per second, median of 5
# rounds): python -m benchmarks.bench_train --models unet residual-unet --rounds 5, on the 2-core AVX-512 EPYC
UNET_SPEED_RATIO = 67.4 / 151.7


def equal_time_unet(results, ratio, runs=RUNS):
    """The U-Net's held-out PSNR after the iterations it makes in the residual U-Net's 330-iteration time, from
    its own run's saves (constant rates, so a shorter run is the same run stopped early), per test seed."""
    scores = {}
    for seed, row in runs_by_name(results)['unet'].items():
        saves = read_validation(os.path.join(runs, 'unet', f'seed-{seed}', 'validation.csv'))
        scores[seed] = score_until(saves, round(row['iterations'] * ratio), row['train_images'])
    return scores


def long_run_ratio(runs, long_runs):
    """'; N in the long runs': a U-Net iteration's time over a residual U-Net iteration's, measured by the coda's
    two long runs (whole processes, saves included), where both are there."""
    per_iteration = {runs[name][min(runs[name])].get('model'): np.mean([r['wall_seconds'] / r['iterations']
                                                                     for r in runs[name].values()])
                     for name, _ in long_runs}
    if {'unet', 'residual-unet'} <= set(per_iteration):
        return f'; {per_iteration["unet"] / per_iteration["residual-unet"]:.2f} in the long runs'
    return ''


def coda_section(results_path=RESULTS, speed_ratio=UNET_SPEED_RATIO):
    """The stronger denoisers against the best corrected filter of each test seed (chosen on its training images):
    the U-Net and the residual U-Net at equal iterations and at equal wall time, then the long runs of one recipe
    in one wall time, each also averaged over the eight symmetries of its input."""
    results = read_results(results_path)
    runs = runs_by_name(results)
    best = {}
    for seed in {row['seed'] for row in results['classical']}:
        found = best_classical([c for c in results['classical'] if c['noise_level'] == 1.0 and c['seed'] == seed])
        if found:
            best[seed] = found
    lines = ['| model | iterations | held-out PSNR | against the best corrected filter |',
             '|--------------------------------------|----------|---------------|---------------|']

    def add(label, iterations, scores):
        margin = spread([value - best[seed]['held_out_psnr'] for seed, value in scores.items()], sign=True)
        lines.append(f'| {label} | {iterations} | {spread(list(scores.values()))} | {margin} |')
    unet, residual = runs['unet'], runs['residual-unet']
    add('U-Net', '330', {s: r['held_out_psnr'] for s, r in unet.items()})
    add('residual U-Net', '330', {s: r['held_out_psnr'] for s, r in residual.items()})
    if speed_ratio:
        equal = equal_time_unet(results, speed_ratio)
        stop = round(next(iter(unet.values()))['iterations'] * speed_ratio)
        add(f'U-Net in the residual U-Net\'s time (saves to {max(i for _, i in equal.values())})', f'{stop}',
            {s: value for s, (value, _) in equal.items()})
    long_runs = [(name, label) for name, label in LONG_CODA if name in runs]
    for name, label in long_runs:
        rows = runs[name]
        first = rows[min(rows)]
        epochs = round(first['iterations'] / batches_per_epoch(first['train_images'], RunConfig().batch_size))
        iterations = f'{first["iterations"]:,}'
        add(f'{label} ({epochs} epochs)', iterations,
            {s: r['held_out_psnr'] for s, r in rows.items()})
        add('the same, 8 symmetries averaged', iterations, {s: r['self_ensemble_psnr'] for s, r in rows.items()})
    names = sorted({best[seed]['name'] for rows in runs.values() for seed in rows if seed in best})
    named = (('unet', 'U-Net'), ('residual-unet', 'residual U-Net'), *long_runs)
    seeds = '; '.join(f'{label} {seed_list(runs[name])}' for name, label in named)
    minutes = '; '.join(f'{label.split(",")[0]}, {runs[name][min(runs[name])]["iterations"]:,}'
                        f'{" iterations" if i == 0 else ""}: '
                        f'{np.mean([r["wall_seconds"] for r in runs[name].values()]) / 60:.1f}'
                        for i, (name, label) in enumerate(named))
    return '\n'.join(lines) + (
        f'\n\n: Denoisers on the test seeds\' held-out images (PSNR in dB, mean ± std over the seeds: {seeds}). '
        f'Best corrected filter: the one that scored best on each seed\'s training images ({", ".join(names)}).'
        + (f' Equal time: a U-Net iteration takes {1 / speed_ratio:.2f} times as long (the benchmark on the 2-core '
           f'AVX-512 CPU{long_run_ratio(runs, long_runs)}); its run stopped there is scored by its last three saves '
           'before.' if speed_ratio else '')
        + f' Minutes a run, mean of the seeds (same CPU, alone): {minutes}.')


# ----------------------------------------------------------------------------- generalisation, latents

def held_out_section(marks=(1000, 2000, 3000, 5000, 8000, 11000)):
    """The table of the 500-epoch run with 10% held out: PSNR on held-out and on as many training images,
    measured the same way at every save (its curves are in heldout-curves.png, drawn with the variants')."""
    rows = read_validation(os.path.join(HELD_OUT, 'validation.csv'))
    table = ['| iteration | epoch | training images | held-out images | gap |', '|---|---|---|---|---|']
    per_epoch = iterations_per_epoch(os.path.join(HELD_OUT, 'train.log'))
    for row in rows:
        if row.iteration in marks or row is rows[-1]:
            table.append(f'| {row.iteration} | {(row.iteration - 1) // per_epoch + 1} | {row.train_psnr:.2f} dB | '
                         f'{row.psnr:.2f} dB | {row.train_psnr - row.psnr:.2f} dB |')
    with open(os.path.join(HELD_OUT, 'train.log')) as f:
        log = f.read()
    train_images, batch_size = (int(re.search(pattern, log).group(1)) for pattern in
                                (r'(\d+) images from', r'batch_size=(\d+)'))
    scored = [row for row in rows if not follows_short_batch(row.iteration, train_images, batch_size)]
    last = scored[-3:]
    table.append(f'| mean of the last 3 full-batch saves | | {np.mean([r.train_psnr for r in last]):.2f} dB | '
                 f'{np.mean([r.psnr for r in last]):.2f} dB | '
                 f'{np.mean([r.train_psnr - r.psnr for r in last]):.2f} dB |')
    best = max(scored, key=lambda row: row.psnr)
    return '\n'.join(table) + (f'\n\n: The assignment\'s model at its full budget with 75 images held out (seed 4680). '
                               f'Noisy input: {rows[0].noisy_psnr:.2f} dB (held out), '
                               f'{rows[0].train_noisy_psnr:.2f} dB (training images). Best held-out save: '
                               f'{best.psnr:.2f} dB at iteration {best.iteration}. ' + epoch_end_dips(rows, per_epoch))


def epoch_end_dips(rows, per_epoch):
    """How a save right after an epoch's last (remainder) batch differs from the save before it, against
    the other saves: the evidence for the jitter Q3(f) explains."""
    after, other = [], []
    for before, row in zip(rows, rows[1:]):
        change = (row.psnr - before.psnr, row.train_psnr - before.train_psnr)
        (after if row.iteration % per_epoch == 0 else other).append(change)
    if not after:
        return ''
    mean = lambda pairs, i: np.mean([pair[i] for pair in pairs])  # noqa: E731
    return (f'Change from the save before, for the {len(after)} saves that follow an epoch\'s last batch: '
            f'{mean(after, 0):+.2f} dB held out, {mean(after, 1):+.2f} dB training images; for the other '
            f'{len(other)} saves: {mean(other, 0):+.2f} and {mean(other, 1):+.2f} dB.')


@torch.no_grad()
def latent_section(count=2000):
    """Where the shipped model's encoder puts the 749 images, clean and under the training noise (the codes the
    decoder was trained on), against uniform draws and draws from a Gaussian fitted to the noisy codes."""
    model, config = load_model(os.path.join(WEIGHTS, 'spec.pt'), torch.device('cpu'))
    images, _ = load_dataset(os.path.join(ROOT, 'data'), config.image_size)
    clean = torch.cat([model.encode(to_unit_range(batch)) for batch in images.split(256)]).double()
    codes, fitted = data_latents(model, images, config.noise_level, count, user_draws(config.seed))
    gaussian = fitted_gaussian(codes)
    uniform = 2 * torch.rand(count, codes.size(1), generator=torch.Generator().manual_seed(config.seed),
                             dtype=torch.float64) - 1
    kinds = {'codes of the clean images': clean, 'codes of the noisy images': codes,
             'uniform in [-1, 1] (the starter\'s)': uniform, 'Gaussian fitted to the noisy codes': fitted}
    precision = torch.linalg.inv(gaussian.covariance_matrix)

    def mahalanobis(points):
        centred = points - gaussian.loc
        return ((centred @ precision) * centred).sum(1).sqrt().median().item()

    def nearest_code(points):
        distances = torch.cdist(points, codes)
        if points is codes:
            distances.fill_diagonal_(float('inf'))
        return distances.min(1).values.median().item()

    stats = (('standard deviation per dimension (mean)', lambda v: f'{v.std(0).mean():.3f}'),
             ('coordinates beyond ±0.9', lambda v: f'{(v.abs() > 0.9).double().mean():.1%}'),
             ('coordinates within ±0.5', lambda v: f'{(v.abs() < 0.5).double().mean():.1%}'),
             ('median Mahalanobis distance, noisy-code Gaussian', lambda v: f'{mahalanobis(v):.1f}'),
             ('median distance to the nearest noisy code', lambda v: f'{nearest_code(v):.2f}'))
    rows = ['| | clean codes | noisy codes | uniform | fitted Gaussian |',
            '|------------------------------------------|--------|--------|--------|--------|']
    rows += [f'| {label} | ' + ' | '.join(stat(values) for values in kinds.values()) + ' |' for label, stat in stats]
    eigenvalues = torch.linalg.eigvalsh(gaussian.covariance_matrix).flip(0)
    dims90 = int((eigenvalues.cumsum(0) / eigenvalues.sum() < 0.9).sum()) + 1
    return '\n'.join(rows) + (f'\n\n: Latent codes of the default run\'s model ({codes.size(1)} dimensions; {dims90} '
                              f'principal directions hold 90% of the noisy codes\' variance): the {codes.size(0)} '
                              f'images clean and with one draw of the training noise, {count} uniform vectors and '
                              f'{count} from the Gaussian fitted to the noisy codes (seed {config.seed}), '
                              'clamped to [-1, 1] as the encoder\'s Tanh is, which narrows their spread below '
                              'the noisy codes\'. A noisy code\'s nearest is another '
                              f'image\'s; a clean code\'s is its own image\'s noisy code.')


# ----------------------------------------------------------------------------- collecting a run

def collect(run_dir, loss_file, log_file):
    """Copy what the report needs from the default run, ship its model as weights/spec.pt, and make the
    images that need the model from those weights, as a reader without the checkpoint would."""
    os.makedirs(RUN, exist_ok=True)
    copy_atomic(loss_file, os.path.join(RUN, 'loss.txt'))
    if log_file:
        copy_atomic(log_file, os.path.join(RUN, 'train.log'))
    for iteration in ITERATIONS:
        for kind in ('sample', 'novel'):
            name = f'{kind}-{iteration:06d}.png'
            copy_atomic(os.path.join(run_dir, name), os.path.join(RUN, name))
    ship(os.path.join(run_dir, 'checkpoint.pt'), 'spec.pt', 'python asgn6.py')
    pokemon = os.path.join(ROOT, 'data', 'pokemon')
    demos = [['--generate', '16', '--latent-source', 'uniform'],
             ['--generate', '16', '--latent-source', 'data'],
             [os.path.join(pokemon, '0025.png'), os.path.join(pokemon, '0133.png'), '--add-noise'],
             ['--interpolate', os.path.join(pokemon, '0001.png'), os.path.join(pokemon, '0004.png')]]
    for index, demo in enumerate(demos):
        out = os.path.join(RUN, f'demo{index}')
        shutil.rmtree(out, ignore_errors=True)  # denoise.py numbers a second picture: start from none
        result = subprocess.run([sys.executable, 'denoise.py', *demo, '--checkpoint', os.path.join(WEIGHTS, 'spec.pt'),
                                 '--out', out], cwd=ROOT, check=True, capture_output=True, text=True)
        # what it printed, PSNRs included
        write_text_atomic(os.path.join(out, 'output.txt'), result.stdout.replace(ROOT + os.sep, ''))


@torch.no_grad()
def weights_psnr(model, config):
    """PSNR of a model's outputs on every image of data/ under one noise draw of its run's seed, as denoise.py
    --add-noise draws it."""
    clean = to_unit_range(load_dataset(os.path.join(ROOT, 'data'), config.image_size)[0])
    noisy = add_noise(clean, config.noise_level, user_draws(config.seed))
    return psnr(torch.cat([model(batch) for batch in noisy.split(256)]), clean)


def save_weights(path, checkpoint, command):
    """The trained model alone, in half precision (a quarter of a checkpoint): what denoise.py needs.
    load_model reads it like a checkpoint; asgn6.py --resume refuses it."""
    weights = {key: value.half() if value.is_floating_point() else value for key, value in checkpoint['model'].items()}
    shipped = {'format': FORMAT, 'model': weights, 'config': dataclasses.asdict(checkpoint['config']),
               'num_images': checkpoint['num_images'], 'iteration': checkpoint['iteration'], 'command': command,
               'weights_only': True}
    atomic_write(path, lambda tmp: torch.save(shipped, tmp))


@torch.no_grad()
def ship(checkpoint_path, name, command):
    """weights/NAME from a run's checkpoint in half precision, with what a reader needs to trust it: how it
    was trained, and the PSNR its outputs lose to half precision on every image of the run's data."""
    checkpoint = load_checkpoint(checkpoint_path)
    config = checkpoint['config']
    command = command.format(seed=config.seed)
    target = os.path.join(WEIGHTS, name)
    os.makedirs(WEIGHTS, exist_ok=True)
    save_weights(target, checkpoint, command)
    cpu = torch.device('cpu')
    trained, shipped = model_of(checkpoint, cpu, checkpoint_path), load_model(target, cpu)[0]
    scores = [weights_psnr(model, config) for model in (trained, shipped)]
    held_out = training.held_out_split(checkpoint['num_images'], config.val_split, training.Streams(config.seed))[1]
    lines = [f'{name}: {config.model} model after {checkpoint["iteration"]} iterations, trained by `{command}` '
             f'on {checkpoint["num_images"] - held_out.numel()} of the {checkpoint["num_images"]} images of data/ '
             f'({held_out.numel()} held out; seed {config.seed})',
             f'size: {os.path.getsize(target) / 2 ** 20:.1f} MiB (float16); the checkpoint: '
             f'{os.path.getsize(checkpoint_path) / 2 ** 20:.1f} MiB',
             f'PSNR of its outputs on all {checkpoint["num_images"]} images of data/ with one noise draw (seed '
             f'{config.seed}): float32 {scores[0]:.4f} dB, float16 weights {scores[1]:.4f} dB, change '
             f'{scores[1] - scores[0]:+.4f} dB',
             f'measured on: {machine_name()}']
    write_text_atomic(os.path.join(WEIGHTS, name.replace('.pt', '.txt')), '\n'.join(lines) + '\n')
    print('\n'.join(lines))


@torch.no_grad()
def collect_held_out(run_dir, loss_file, log_file):
    """The 500-epoch run with --val-split 0.1: its measurements, and the final model's outputs on held-out
    images next to its outputs on as many training images, both in eval mode with fixed noise."""
    os.makedirs(HELD_OUT, exist_ok=True)
    copy_atomic(os.path.join(run_dir, 'validation.csv'), os.path.join(HELD_OUT, 'validation.csv'))
    copy_atomic(loss_file, os.path.join(HELD_OUT, 'loss.txt'))
    if log_file:
        copy_atomic(log_file, os.path.join(HELD_OUT, 'train.log'))
    model, config = load_model(os.path.join(run_dir, 'checkpoint.pt'), torch.device('cpu'))
    split, _ = split_of_run(config, os.path.join(ROOT, 'data'))
    rows = []
    for measured in (split.held_out, split.probe):
        rows += [measured.clean[:8], measured.noisy[:8], model(measured.noisy[:8])]
    save_grid(os.path.join(HELD_OUT, 'outputs.png'), torch.cat(rows), images_per_row=8)


NOTEBOOK = os.path.join(ROOT, 'asgn6.ipynb')
ANSWER = re.compile(r'<!-- ANSWER (\S+) -->\n(.*?)\n<!-- END ANSWER \1 -->', re.S)
RUN_SOURCE = 'the 500-epoch run of seed 4680, whose outputs this notebook shows as committed (a run of yours differs)'
ANSWER_SOURCES = {  # which runs each written answer reads
    'c': RUN_SOURCE, 'd': RUN_SOURCE, 'e': RUN_SOURCE + ', and its weights, weights/spec.pt',
    'f': 'the experiments\' runs in experiments/results/, shown in the tables above',
    'f-findings': 'the experiments\' runs in experiments/results/, shown in the tables above',
    'f-coda': 'the experiments\' runs in experiments/results/, shown in the tables above',
}


def report_labels(report_text):
    """How report.pdf numbers its tables and figures, in order of appearance: {section name: 'Table N'} for the
    generated sections with a captioned table, {image file name: 'Figure N'} for each picture."""
    labels, tables, figures = {}, 0, 0
    pattern = re.compile(r'<!-- BEGIN (\S+) -->\n(.*?)<!-- END \1 -->|!\[[^\]]*\]\(([^)\s]+)\)', re.S)
    for match in pattern.finditer(report_text):
        if match.group(3):
            figures += 1
            labels[os.path.basename(match.group(3))] = f'Figure {figures}'
        elif re.search(r'^: ', match.group(2), re.M):
            tables += 1
            labels[match.group(1)] = f'Table {tables}'
    return labels


def labelled(table, label):
    """A generated table for a notebook: its pandoc caption (': ...') as a bold label above it, since Jupyter's
    markdown has no table captions."""
    rows, _, caption = table.partition('\n\n: ')
    return f'**{label}.** {caption}\n\n{rows}'


def report_table(name, path=os.path.join(HERE, 'report.md')):
    """One of report.md's generated tables as the report shows it, with its number: for the notebook's Q3(f),
    whose tables come from the committed experiment runs, not from the notebook's own run."""
    with open(path) as f:
        text = f.read()
    section = re.search(rf'<!-- BEGIN {name} -->\n(.*?)\n<!-- END {name} -->', text, re.S).group(1)
    return labelled(section, report_labels(text)[name])


def report_figure(name, path=os.path.join(HERE, 'report.md')):
    """(its number and caption as a bold-labelled line, the picture's path from the top folder) of the report's
    figure drawn from the file `name`: for the notebook, which shows the same figures."""
    with open(path) as f:
        text = f.read()
    caption, link = re.search(rf'!\[([^\]]*)\]\(([^)\s]*/{re.escape(name)})\)', text).groups()
    return f'**{report_labels(text)[name]}.** {caption}', os.path.relpath(os.path.join(os.path.dirname(path), link),
                                                                           ROOT)


def notebook_answer(name, text):
    """A notebook cell's text for one of report.md's written answers: the answer, and whose numbers it quotes."""
    return (f'<!-- ANSWER {name}: written in report/report.md; python -m report.make_figures copies it here -->\n'
            f'*The report\'s answer; its numbers are from {ANSWER_SOURCES[name]}.*\n\n{text}')


def sync_notebook(report_text, path=NOTEBOOK):
    """Copy report.md's written answers into the notebook's answer cells, so the two editions have one text;
    returns the answers a cell was missing for (raises for a cell whose answer report.md lacks)."""
    answers = dict(ANSWER.findall(report_text))
    with open(path) as f:
        notebook = json.load(f)
    placed = set()
    for cell in notebook['cells']:
        first = ''.join(cell['source']).split('\n', 1)[0]
        match = re.match(r'<!-- ANSWER (\S+?):', first)
        if cell['cell_type'] == 'markdown' and match:
            name = match.group(1)
            if name not in answers:
                raise ValueError(f'{path}: a cell holds answer {name!r}, which report.md does not have')
            cell['source'] = notebook_answer(name, answers[name]).splitlines(keepends=True)
            placed.add(name)
    write_text_atomic(path, json.dumps(notebook, indent=1, ensure_ascii=False) + '\n')
    return sorted(set(answers) - placed)


def replace_section(text, name, content):
    pattern = re.compile(rf'(<!-- BEGIN {name} -->\n)(.*?\n)?(<!-- END {name} -->)', re.S)
    if not pattern.search(text):
        raise SystemExit(f'report.md has no section {name}')
    return pattern.sub(lambda m: m.group(1) + content + '\n' + m.group(3), text)


def main(argv=None):
    parser = cli.ArgumentParser('make_figures.py', __doc__)
    parser.add_argument('--collect', metavar='RUN_DIR', help='first copy the outputs of the default run in RUN_DIR '
                        'and ship its model as weights/spec.pt (default: use report/run/ as committed)')
    parser.add_argument('--loss-file', default='loss.txt',
                        help='with --collect: the run\'s loss file (default: loss.txt)')
    parser.add_argument('--log', help='with --collect: the run\'s console output, kept as report/run/train.log '
                        '(default: none)')
    parser.add_argument('--collect-held-out', metavar='RUN_DIR', help='first copy the outputs of the 500-epoch run '
                        'with --val-split 0.1 in RUN_DIR (its loss.txt and train.log there too) into report/heldout/ '
                        '(default: use report/heldout/ as committed)')
    parser.add_argument('--ship-denoiser', metavar='CHECKPOINT', help='first write the model of CHECKPOINT as '
                        'weights/MODEL.pt (default: keep the committed one)')
    parser.add_argument('--run-name', default=DENOISER, help='with --ship-denoiser: the experiment whose run it is, '
                        f'for the command its note gives (default: {DENOISER})')
    parser.add_argument('--pdf', action='store_true', help='then build report.pdf with pandoc and pdflatex '
                        '(default: off)')
    args = parser.parse_args(argv)
    if args.collect:
        collect(args.collect, args.loss_file, args.log)
    if args.collect_held_out:
        log = os.path.join(args.collect_held_out, 'train.log')
        collect_held_out(args.collect_held_out, os.path.join(args.collect_held_out, 'loss.txt'),
                         log if os.path.exists(log) else None)
    if args.ship_denoiser:
        ship(args.ship_denoiser, f'{load_checkpoint(args.ship_denoiser)["config"].model}.pt',
             'python -m experiments.run_experiments --seeds {seed} --only ' + args.run_name)
    os.makedirs(FIGURES, exist_ok=True)
    path = os.path.join(HERE, 'report.md')
    with open(path) as f:
        text = f.read()
    for name, make in (('layers', layer_table), ('check', check_models_output), ('loss', loss_section),
                       ('samples', samples_section), ('held-out', held_out_section), ('latents', latent_section),
                       ('variants', variants_section), ('baselines', baselines_section), ('coda', coda_section)):
        if f'<!-- BEGIN {name} -->' in text:  # a section the report does not show is not computed
            text = replace_section(text, name, make())
    write_text_atomic(path, text)
    print(f'rewrote the generated sections of {path}; figures in {FIGURES}')
    missing = sync_notebook(text)
    print(f'copied its written answers into {NOTEBOOK}' + (f' (no cell for {", ".join(missing)})' if missing else ''))
    if args.pdf:
        build_pdf()


def build_pdf():
    """report.pdf from report.md: pandoc with pdflatex, the same header and fonts every time."""
    def pandoc(tmp):
        subprocess.run(['pandoc', 'report.md', '--output', tmp, '--pdf-engine', 'pdflatex', '--include-in-header',
                        'header.tex', '--lua-filter', 'keep-tables-whole.lua', '--variable', 'colorlinks=true',
                        '--variable', 'fontsize=10pt',
                        '--resource-path', '.'], cwd=HERE, check=True)
    atomic_write(os.path.join(HERE, 'report.pdf'), pandoc)
    print(f'built {os.path.join(HERE, "report.pdf")}')


if __name__ == '__main__':
    main()
