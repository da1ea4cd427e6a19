"""Regenerate the report's figures and generated passages from committed run outputs.

    python report/make_figures.py --collect samples   # once, after a full run: copy what the report uses
    python report/make_figures.py                     # figures + the generated parts of report.md
    python report/make_figures.py --pdf               # the same, then report.pdf (what report/build runs)

--collect copies from a finished run (its output folder, ./loss.txt and the run's log) into
report/run/: the loss file, the sample and novel grids of the report's iterations, and images made
with the run's checkpoint (latent-source comparison, denoise.py demos).  Without --collect only
report/run/ is read, so the report rebuilds on a machine that never trained.  Passages of report.md
between <!-- BEGIN name --> and <!-- END name --> are rewritten; everything else is prose.
"""
import argparse
import json
import os
import re
import subprocess
import sys

import numpy as np
from PIL import Image

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, ROOT)
import torch  # noqa: E402

import cli  # noqa: E402
import models  # noqa: E402
import training  # noqa: E402
from files import atomic_write, copy_atomic, save_figure, write_text_atomic  # noqa: E402
from images import add_noise, load_dataset, psnr, save_grid, to_unit_range  # noqa: E402
from run_state import (convergence_stats, load_checkpoint, load_model, model_of, read_losses, read_validation,  # noqa: E402
                       save_weights)

RUN = os.path.join(HERE, 'run')  # the default run: 500 epochs on all 749 images
HELD_OUT = os.path.join(HERE, 'heldout')  # the same for 500 epochs with 10% held out
WEIGHTS = os.path.join(ROOT, 'weights')
FIGURES = os.path.join(HERE, 'figures')
ITERATIONS = (100, 1000, 5000, 12000)
CELL = 66  # save_image: 64-pixel images with 2 pixels of padding
CROP_COLUMNS = 12


# ----------------------------------------------------------------------------- generated text

def describe(layer):
    """A short name for a layer, as the assignment's table would write it."""
    kind = type(layer).__name__
    if hasattr(layer, 'in_features'):
        return f'{kind}({layer.in_features} → {layer.out_features})'
    if hasattr(layer, 'kernel_size'):
        k, s, p = layer.kernel_size[0], layer.stride[0], layer.padding[0]
        return f'{kind}({layer.in_channels} → {layer.out_channels}, {k}×{k}, stride {s}, padding {p})'
    if hasattr(layer, 'num_features'):
        return f'{kind}({layer.num_features})'
    return kind


def layer_table():
    """Every layer of the spec'd models with its output shape and parameter count, from models.py itself."""
    import torch
    from models import Decoder, Encoder
    rows = ['| block | layer | output shape (N = 32) | parameters |',
            '|--------------|------------------------------|--------------|--------|']  # widths for pandoc
    x = torch.zeros(32, 3 * 64 * 64)
    for model, blocks, name in ((Encoder(128, 64), ('hidden_layer', 'output_layer'), 'Encoder'),
                                (Decoder(128, 64), [f'layer{i}' for i in range(1, 6)], 'Decoder')):
        model.eval()
        if name == 'Decoder':
            x = torch.zeros(32, 128, 1, 1)
        for block in blocks:
            for layer in getattr(model, block):
                x = layer(x)
                params = sum(p.numel() for p in layer.parameters())
                rows.append(f'| {name}.{block} | {describe(layer)} | {tuple(x.shape)} | {params:,} |')
        total = sum(p.numel() for p in model.parameters())
        rows.append(f'| **{name} total** | | | **{total:,}** |')
    return '\n'.join(rows)


def check_models_output():
    result = subprocess.run([sys.executable, 'check_models.py'], cwd=ROOT, capture_output=True, text=True)
    text = re.sub(r' in \d+\.\d+s', '', result.stderr.strip())  # its time changes from run to run: left out
    return f'```\n$ python check_models.py\n{text}\n```'


def iterations_per_epoch(log=os.path.join(RUN, 'train.log')):
    """As the run printed it at its start ('N iterations per epoch'), in its committed log."""
    with open(log) as f:
        return int(re.search(r'(\d+) iterations per epoch', f.read()).group(1))


def loss_section(window_epochs=10):
    """The loss figure, drawn by plot_loss.py as a user would, and the numbers behind Q3(c)."""
    losses = read_losses(os.path.join(RUN, 'loss.txt'))
    per_epoch = iterations_per_epoch()
    window = window_epochs * per_epoch
    stats = convergence_stats(losses, window)
    subprocess.run([sys.executable, os.path.join(ROOT, 'plot_loss.py'), 'loss.txt', '--window', str(window),
                    '--per-epoch', str(per_epoch), '--log-y', '--ylabel', 'L1 loss',
                    '--title', 'Training loss, 500 epochs, embedded data, seed 4680',
                    '--save', os.path.join(FIGURES, 'loss.png')], cwd=RUN, check=True, stdout=subprocess.DEVNULL)
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
        '', f'(smoothing: trailing mean over {window} iterations = {window_epochs} epochs)'])


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


def samples_section():
    rows = ['| iteration | epoch | noisy vs clean | denoised vs clean |', '|---|---|---|---|']
    per_epoch = iterations_per_epoch()
    for iteration in ITERATIONS:
        source = os.path.join(RUN, f'sample-{iteration:06d}.png')
        clean, noisy, denoised = grid_cells(source, 3)
        crop_columns(source, os.path.join(FIGURES, f'sample-{iteration:06d}-crop.png'), CROP_COLUMNS, 3)
        crop_columns(os.path.join(RUN, f'novel-{iteration:06d}.png'),
                     os.path.join(FIGURES, f'novel-{iteration:06d}.png'), 8, 2)
        rows.append(f'| {iteration} | {(iteration - 1) // per_epoch + 1} | {psnr(noisy, clean):.2f} dB '
                    f'| {psnr(denoised, clean):.2f} dB |')
    return '\n'.join(rows)


def experiments_section(name='results.md'):
    """A Q3(f) results table of experiments/run_experiments.py (the main one also brings its figure)."""
    results = os.path.join(ROOT, 'experiments', 'results')
    if name == 'results.md':
        copy_atomic(os.path.join(results, 'denoised.png'), os.path.join(FIGURES, 'experiments-denoised.png'))
    with open(os.path.join(results, name)) as f:
        lines = f.read().strip().splitlines()
    steps = {step for step, _ in DENOISER_STEPS} - {'unet', DENOISER}  # shown in the next subsection
    return '\n'.join(line for line in lines if line.split('|')[1:2] == [] or
                      line.split('|')[1].strip().split(' (')[0] not in steps)


# (variant, the variant it changes one thing of); what each change is, the report's prose says
DENOISER_STEPS = (
    ('unet', None),
    ('unet+cosine', 'unet'),
    ('residual-unet', 'unet'),
    ('residual-unet+cosine', 'residual-unet'),
    ('residual-unet+cosine+mse', 'residual-unet+cosine'),
    ('residual-unet+cosine+mse+augment', 'residual-unet+cosine+mse'),
    ('residual-unet+cosine-150ep', 'residual-unet+cosine'),
    ('residual-unet+cosine+mse-150ep', 'residual-unet+cosine-150ep'),
    ('residual-unet+cosine+mse+augment-160ep', 'residual-unet+cosine+mse-150ep'),  # also 10 more epochs
)
DENOISER = 'residual-unet+cosine+mse+augment-160ep'  # the one shipped as weights/residual-unet.pt


def denoiser_section(results_path=os.path.join(ROOT, 'experiments', 'results', 'results.json')):
    """What each change towards the stronger denoiser bought (held-out PSNR at noise 1, compared on the seeds
    both runs have), and the final denoiser's margin over the best classical filter of each seed."""
    with open(results_path) as f:
        results = json.load(f)
    psnr_of = {}  # (name, seed) -> held-out PSNR
    runs = {}
    for row in results['networks']:
        if row['noise_level'] == 1.0:
            psnr_of[row['name'], row['seed']] = row['held_out_psnr']
            runs.setdefault(row['name'], []).append(row)
    lines = ['| | variant | iterations | train PSNR | held-out PSNR | gain | wall time |',
             '|--|----------------------|--------|-------------|-------------|------------------|---------|']
    numbers = {}
    for name, reference in DENOISER_STEPS:
        rows = runs.get(name)
        if not rows:
            continue
        numbers[name] = len(numbers) + 1
        seeds = sorted(row['seed'] for row in rows)
        common = [seed for seed in seeds if (reference, seed) in psnr_of and reference in numbers]
        gain = (f'{spread([psnr_of[name, s] - psnr_of[reference, s] for s in common], sign=True)} vs {numbers[reference]}'
                if common else '-')
        walls = [row['wall_seconds'] / 60 for row in rows]
        label = f'{name} ({len(seeds)} seed{"s" if len(seeds) > 1 else ""})'
        lines.append(f'| {numbers[name]} | {label} | {rows[0]["iterations"]:,} | '
                     f'{spread([row["train_psnr"] for row in rows])} | {spread([psnr_of[name, s] for s in seeds])} | '
                     f'{gain} | {max(walls):.1f} min |')
    return '\n'.join(lines + final_margins(runs.get(DENOISER, []), results['classical']))


def final_margins(final, classical):
    """Lines: the final denoiser over each seed's best filter; then its last save, as trained and averaged over
    the eight symmetries (where a checkpoint was there to measure it)."""
    lines = []
    margins = margins_over_filters(final, classical)
    if margins:
        lines += ['', f'{DENOISER}, against the best classical filter on the same held-out images and noise: '
                      + margin_summary(margins, [''] * len(margins)) + '.']
    measured = [row for row in final if 'self_ensemble_psnr' in row]
    margins = margins_over_filters(measured, classical, 'self_ensemble_psnr')
    if margins:
        lines += ['', 'Its last save, as trained → averaged over the eight symmetries of each input: ' + margin_summary(
            margins, [f'{row["last_save_psnr"]:.2f} → {row["self_ensemble_psnr"]:.2f} dB, ' for row in measured]) + '.']
    return lines


def margin_summary(margins, prefixes):
    each = '; '.join(f'seed {seed}: {prefix}{margin:+.2f} dB over {name}'
                     for (seed, margin, name), prefix in zip(margins, prefixes))
    return each + (f' (mean {spread([m for _, m, _ in margins], sign=True)} dB over {len(margins)} seeds)'
                   if len(margins) > 1 else ' (one seed so far)')


@torch.no_grad()
def self_ensemble_section(weights=os.path.join(WEIGHTS, 'residual-unet.pt'), data_dir=os.path.join(ROOT, 'data'),
                          results_path=os.path.join(ROOT, 'experiments', 'results', 'results.json')):
    """The shipped denoiser on its own run's held-out images and noise, as trained and averaged over the eight
    symmetries of each input (models.SelfEnsemble), against the best classical filter on the same images."""
    model, settings = load_model(weights, torch.device('cpu'))
    held_out, _, _ = training.split_of_run(settings, data_dir=data_dir)
    scores = [training.evaluate(net, held_out.clean, held_out.noisy)[1] for net in (model, models.SelfEnsemble(model))]
    with open(results_path) as f:
        classical = json.load(f)['classical']
    margins = margins_over_filters([{'seed': settings['seed'], 'psnr': score} for score in scores], classical, 'psnr')
    best = margins[0][2]
    lines = [f'| weights/residual-unet.pt (seed {settings["seed"]}, its last save) | held-out PSNR | over {best} |',
             '|----------------------------------------------|-----------|-----------|']
    for label, score, (_, margin, _) in zip(('as trained', 'averaged over the eight symmetries of each input'), scores,
                                            margins):
        lines.append(f'| {label} | {score:.2f} dB | {margin:+.2f} dB |')
    return '\n'.join(lines) + (f'\n\nThe {held_out.clean.size(0)} held-out images of its run, with the noise of the '
                               f'tables above; {best}: {scores[0] - margins[0][1]:.2f} dB.')


def spread(values, sign=False):
    """'mean ± sample std' of a few seeds' values, or the one value."""
    form = '+.2f' if sign else '.2f'
    if len(values) == 1:
        return format(values[0], form)
    return f'{format(np.mean(values), form)} ± {np.std(values, ddof=1):.2f}'


def margins_over_filters(runs, classical, key='held_out_psnr'):
    """(seed, the run's `key` PSNR over the seed's best filter, that filter) per run: the best on the held-out
    images themselves, so the margin is the smallest it can be."""
    margins = []
    for row in runs:
        filters = [c for c in classical if c['noise_level'] == 1.0 and c.get('seed') == row['seed']
                   and c['name'] != 'noisy input']
        if filters:
            best = max(filters, key=lambda c: c['held_out_psnr'])
            margins.append((row['seed'], row[key] - best['held_out_psnr'], best['name']))
    return margins


# ----------------------------------------------------------------------------- generalisation, latents

def held_out_section(marks=(1000, 2000, 3000, 5000, 8000, 11000)):
    """Figure and table of the 500-epoch run with 10% held out: PSNR on held-out and on as many training
    images, measured the same way at every save."""
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    rows = read_validation(os.path.join(HELD_OUT, 'validation.csv'))
    iterations = [row.iteration for row in rows]
    fig, ax = plt.subplots(figsize=(8, 3.6))
    ax.plot(iterations, [row.train_psnr for row in rows], label='training images (as many, fixed noise)')
    ax.plot(iterations, [row.psnr for row in rows], label='held-out images (fixed noise)')
    ax.axhline(rows[0].noisy_psnr, color='grey', linestyle='--', linewidth=1, label='noisy input (held out)')
    ax.set_xlabel('iteration')
    ax.set_ylabel('PSNR of the output (dB)')
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    save_figure(fig, os.path.join(FIGURES, 'heldout-psnr.png'))
    plt.close(fig)
    table = ['| iteration | epoch | training images | held-out images | gap |', '|---|---|---|---|---|']
    per_epoch = iterations_per_epoch(os.path.join(HELD_OUT, 'train.log'))
    for row in rows:
        if row.iteration in marks or row is rows[-1]:
            table.append(f'| {row.iteration} | {(row.iteration - 1) // per_epoch + 1} | {row.train_psnr:.2f} dB | '
                         f'{row.psnr:.2f} dB | {row.train_psnr - row.psnr:.2f} dB |')
    last = rows[-3:]
    table.append(f'| mean of the last 3 saves | | {np.mean([r.train_psnr for r in last]):.2f} dB | '
                 f'{np.mean([r.psnr for r in last]):.2f} dB | '
                 f'{np.mean([r.train_psnr - r.psnr for r in last]):.2f} dB |')
    best = max(rows, key=lambda row: row.psnr)
    return '\n'.join(table) + (f'\n\nNoisy input: {rows[0].noisy_psnr:.2f} dB (held out), '
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


def latent_histogram(codes, uniform, fitted, path):
    """How the coordinates of the three kinds of latent vector are spread over [-1, 1]."""
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(8, 3.2))
    bins = np.linspace(-1, 1, 41)
    for values, label in ((codes, 'encoder codes of the 749 images'), (uniform, 'uniform in [-1, 1] (the starter\'s)'),
                          (fitted, 'Gaussian fitted to the codes, clamped')):
        ax.hist(values.flatten().numpy(), bins=bins, density=True, histtype='step', linewidth=1.5, label=label)
    ax.set_xlabel('value of one latent coordinate')
    ax.set_ylabel('density')
    ax.legend(loc='upper center')
    ax.grid(alpha=0.3)
    fig.tight_layout()
    save_figure(fig, path)
    plt.close(fig)


@torch.no_grad()
def latent_section(count=2000):
    """Where the shipped model's encoder puts the 749 images, against where uniform draws land."""
    model, settings = load_model(os.path.join(WEIGHTS, 'spec.pt'), torch.device('cpu'))
    images, _ = load_dataset(os.path.join(ROOT, 'data'), settings['image_size'])
    codes = torch.cat([model.encode(to_unit_range(batch)) for batch in images.split(256)]).double()
    generator = torch.Generator().manual_seed(settings['seed'])
    uniform = 2 * torch.rand(count, codes.size(1), generator=generator, dtype=torch.float64) - 1
    mean, covariance = codes.mean(0), torch.cov(codes.T) + 1e-6 * torch.eye(codes.size(1), dtype=torch.float64)
    gaussian = torch.distributions.MultivariateNormal(mean, covariance)
    fitted = training.sample_clamped(gaussian, count, generator)  # as denoise.py --latent-source data draws them
    precision = torch.linalg.inv(covariance)

    def mahalanobis(points):
        centred = points - mean
        return ((centred @ precision) * centred).sum(1).sqrt().median().item()

    def nearest_code(points):
        return torch.cdist(points, codes).min(1).values.median().item()

    latent_histogram(codes, uniform, fitted, os.path.join(FIGURES, 'latent-histogram.png'))
    own = torch.cdist(codes, codes).fill_diagonal_(float('inf')).min(1).values.median().item()
    eigenvalues = torch.linalg.eigvalsh(covariance).flip(0)
    dims90 = int((eigenvalues.cumsum(0) / eigenvalues.sum() < 0.9).sum()) + 1
    rows = ['| | encoder codes of the 749 images | uniform in [-1, 1] | fitted Gaussian |', '|---|---|---|---|',
            f'| standard deviation per dimension (mean) | {codes.std(0).mean():.3f} | {uniform.std(0).mean():.3f} | '
            f'{fitted.std(0).mean():.3f} |',
            f'| share of coordinates beyond ±0.9 | {(codes.abs() > 0.9).double().mean():.1%} | '
            f'{(uniform.abs() > 0.9).double().mean():.1%} | {(fitted.abs() > 0.9).double().mean():.1%} |',
            f'| share of coordinates within ±0.5 | {(codes.abs() < 0.5).double().mean():.1%} | '
            f'{(uniform.abs() < 0.5).double().mean():.1%} | {(fitted.abs() < 0.5).double().mean():.1%} |',
            f'| median Mahalanobis distance under the fitted Gaussian | {mahalanobis(codes):.1f} | '
            f'{mahalanobis(uniform):.1f} | {mahalanobis(fitted):.1f} |',
            f'| median distance to the nearest code of an image | {own:.2f} (another image\'s) | '
            f'{nearest_code(uniform):.2f} | {nearest_code(fitted):.2f} |']
    return '\n'.join(rows) + (f'\n\n{codes.size(1)} dimensions; {dims90} principal directions hold 90% of the '
                              f'codes\' variance. {count} uniform and {count} Gaussian vectors, seed {settings["seed"]}.')


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
        result = subprocess.run([sys.executable, 'denoise.py', *demo, '--checkpoint', os.path.join(WEIGHTS, 'spec.pt'),
                                 '--out', out], cwd=ROOT, check=True, capture_output=True, text=True)
        # what it printed, PSNRs included
        write_text_atomic(os.path.join(out, 'output.txt'), result.stdout.replace(ROOT + os.sep, ''))


@torch.no_grad()
def ship(checkpoint_path, name, command):
    """weights/NAME from a run's checkpoint in half precision, with what a reader needs to trust it: how it
    was trained, and the PSNR its outputs lose to half precision on every image of the run's data."""
    checkpoint = load_checkpoint(checkpoint_path, flag='--collect')
    target = os.path.join(WEIGHTS, name)
    os.makedirs(WEIGHTS, exist_ok=True)
    save_weights(target, checkpoint, command)
    settings, cpu = checkpoint['args'], torch.device('cpu')
    full, _ = model_of(checkpoint, cpu, checkpoint_path)
    half, _ = load_model(target, cpu)
    images, _ = load_dataset(os.path.join(ROOT, 'data'), settings['image_size'])
    clean = to_unit_range(images)
    noisy = add_noise(clean, settings['noise_level'], training.Streams(settings['seed']).user_draws())
    scores = [psnr(torch.cat([model(batch) for batch in noisy.split(256)]), clean) for model in (full, half)]
    held_out = training.held_out_split(checkpoint['num_images'], settings['val_split'], training.Streams(settings['seed']))[1]
    lines = [f'{name}: {settings["model"]} model after {checkpoint["iteration"]} iterations, trained by `{command}` '
             f'on {checkpoint["num_images"] - held_out.numel()} of the {checkpoint["num_images"]} images of data/ '
             f'({held_out.numel()} held out; seed {settings["seed"]})',
             f'size: {os.path.getsize(target) / 2 ** 20:.1f} MiB (float16); the checkpoint: '
             f'{os.path.getsize(checkpoint_path) / 2 ** 20:.1f} MiB',
             f'PSNR of its outputs on all {clean.size(0)} images of data/ with one noise draw (seed {settings["seed"]}): '
             f'float32 {scores[0]:.4f} dB, float16 weights {scores[1]:.4f} dB, change {scores[1] - scores[0]:+.4f} dB',
             f'measured on: {cli.machine_name()}']
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
    checkpoint = load_checkpoint(os.path.join(run_dir, 'checkpoint.pt'), flag='--collect-held-out')
    model, settings = model_of(checkpoint, torch.device('cpu'), run_dir)
    images, paths = load_dataset(os.path.join(ROOT, 'data'), settings['image_size'])
    streams, cpu = training.Streams(settings['seed']), torch.device('cpu')
    train, train_paths, held_out = training.split_dataset(images, paths, val_split=settings['val_split'],
                                                          noise_level=settings['noise_level'], streams=streams,
                                                          device=cpu)
    probe = training.training_probe(train, train_paths, held_out.clean.size(0), noise_level=settings['noise_level'],
                                    streams=streams, device=cpu)
    rows = []
    for measured in (held_out, probe):
        rows += [measured.clean[:8], measured.noisy[:8], model(measured.noisy[:8])]
    save_grid(os.path.join(HELD_OUT, 'outputs.png'), torch.cat(rows), images_per_row=8)


def replace_section(text, name, content):
    pattern = re.compile(rf'(<!-- BEGIN {name} -->\n)(.*?\n)?(<!-- END {name} -->)', re.S)
    if not pattern.search(text):
        raise SystemExit(f'report.md has no section {name}')
    return pattern.sub(lambda m: m.group(1) + content + '\n' + m.group(3), text)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--collect', metavar='RUN_DIR', help='first copy the outputs of the default run in RUN_DIR '
                        'and ship its model as weights/spec.pt (default: use report/run/ as committed)')
    parser.add_argument('--loss-file', default='loss.txt', help='with --collect: the run\'s loss file (default: loss.txt)')
    parser.add_argument('--log', help='with --collect: the run\'s console output, kept as report/run/train.log '
                        '(default: none)')
    parser.add_argument('--collect-held-out', metavar='RUN_DIR', help='first copy the outputs of the 500-epoch run '
                        'with --val-split 0.1 in RUN_DIR (its loss.txt and train.log there too) into report/heldout/ '
                        '(default: use report/heldout/ as committed)')
    parser.add_argument('--ship-denoiser', metavar='CHECKPOINT', help='first write the model of CHECKPOINT as '
                        'weights/residual-unet.pt (default: keep the committed one)')
    parser.add_argument('--pdf', action='store_true', help='then build report.pdf with pandoc and pdflatex '
                        '(default: off)')
    args = parser.parse_args()
    if args.collect:
        collect(args.collect, args.loss_file, args.log)
    if args.collect_held_out:
        log = os.path.join(args.collect_held_out, 'train.log')
        collect_held_out(args.collect_held_out, os.path.join(args.collect_held_out, 'loss.txt'),
                         log if os.path.exists(log) else None)
    if args.ship_denoiser:
        ship(args.ship_denoiser, 'residual-unet.pt', f'python experiments/run_experiments.py --seeds 4680 --only {DENOISER}')
    os.makedirs(FIGURES, exist_ok=True)
    path = os.path.join(HERE, 'report.md')
    with open(path) as f:
        text = f.read()
    for name, make in (('layers', layer_table), ('check', check_models_output), ('loss', loss_section),
                       ('samples', samples_section), ('held-out', held_out_section), ('latents', latent_section),
                       ('experiments', experiments_section), ('denoiser', denoiser_section),
                       ('self-ensemble', self_ensemble_section),
                       ('experiments-noise', lambda: experiments_section('results-noise-0.5.md'))):
        if f'<!-- BEGIN {name} -->' in text:  # a section the report does not show is not computed
            text = replace_section(text, name, make())
    write_text_atomic(path, text)
    print(f'rewrote the generated sections of {path}; figures in {FIGURES}')
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
