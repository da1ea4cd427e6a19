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
import os
import re
import subprocess
import sys

import numpy as np
from PIL import Image

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, ROOT)
from files import atomic_write, copy_atomic, write_text_atomic  # noqa: E402
from images import psnr  # noqa: E402
from run_state import convergence_stats, read_losses  # noqa: E402

RUN = os.path.join(HERE, 'run')
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
    text = re.sub(r'in \d+\.\d+s', 'in 0.NNNs', result.stderr.strip())  # the time changes from run to run
    return f'```\n$ python check_models.py\n{text}\n```'


def iterations_per_epoch():
    """As the report's run printed it at its start ('N iterations per epoch'), in its committed log."""
    with open(os.path.join(RUN, 'train.log')) as f:
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


def experiments_section():
    """The Q3(f) results table of experiments/run_experiments.py, and its figure."""
    results = os.path.join(ROOT, 'experiments', 'results')
    copy_atomic(os.path.join(results, 'denoised.png'), os.path.join(FIGURES, 'experiments-denoised.png'))
    with open(os.path.join(results, 'results.md')) as f:
        return f.read().strip()


# ----------------------------------------------------------------------------- collecting a run

def collect(run_dir, loss_file, log_file):
    """Copy what the report needs from a finished run, and make the images that need its checkpoint."""
    os.makedirs(RUN, exist_ok=True)
    copy_atomic(loss_file, os.path.join(RUN, 'loss.txt'))
    if log_file:
        copy_atomic(log_file, os.path.join(RUN, 'train.log'))
    for iteration in ITERATIONS:
        for kind in ('sample', 'novel'):
            name = f'{kind}-{iteration:06d}.png'
            copy_atomic(os.path.join(run_dir, name), os.path.join(RUN, name))
    checkpoint = os.path.join(run_dir, 'checkpoint.pt')
    pokemon = os.path.join(ROOT, 'data', 'pokemon')
    demos = [['--generate', '16', '--latent-source', 'uniform'],
             ['--generate', '16', '--latent-source', 'data'],
             [os.path.join(pokemon, '0025.png'), os.path.join(pokemon, '0133.png'), '--add-noise'],
             ['--interpolate', os.path.join(pokemon, '0001.png'), os.path.join(pokemon, '0004.png')]]
    for index, demo in enumerate(demos):
        out = os.path.join(RUN, f'demo{index}')
        result = subprocess.run([sys.executable, 'denoise.py', *demo, '--checkpoint', checkpoint, '--out', out],
                                cwd=ROOT, check=True, capture_output=True, text=True)
        # what it printed, PSNRs included
        write_text_atomic(os.path.join(out, 'output.txt'), result.stdout.replace(ROOT + os.sep, ''))


def replace_section(text, name, content):
    pattern = re.compile(rf'(<!-- BEGIN {name} -->\n)(.*?\n)?(<!-- END {name} -->)', re.S)
    if not pattern.search(text):
        raise SystemExit(f'report.md has no section {name}')
    return pattern.sub(lambda m: m.group(1) + content + '\n' + m.group(3), text)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--collect', metavar='RUN_DIR', help='first copy the outputs of the run in RUN_DIR '
                        '(default: use report/run/ as committed)')
    parser.add_argument('--loss-file', default='loss.txt', help='with --collect: the run\'s loss file (default: loss.txt)')
    parser.add_argument('--log', help='with --collect: the run\'s console output, kept as report/run/train.log '
                        '(default: none)')
    parser.add_argument('--pdf', action='store_true', help='then build report.pdf with pandoc and pdflatex '
                        '(default: off)')
    args = parser.parse_args()
    if args.collect:
        collect(args.collect, args.loss_file, args.log)
    os.makedirs(FIGURES, exist_ok=True)
    path = os.path.join(HERE, 'report.md')
    with open(path) as f:
        text = f.read()
    for name, make in (('layers', layer_table), ('check', check_models_output), ('loss', loss_section),
                       ('samples', samples_section), ('experiments', experiments_section)):
        text = replace_section(text, name, make())
    write_text_atomic(path, text)
    print(f'rewrote the generated sections of {path}; figures in {FIGURES}')
    if args.pdf:
        build_pdf()


def build_pdf():
    """report.pdf from report.md: pandoc with pdflatex, the same header and fonts every time."""
    def pandoc(tmp):
        subprocess.run(['pandoc', 'report.md', '--output', tmp, '--pdf-engine', 'pdflatex', '--include-in-header',
                        'header.tex', '--variable', 'colorlinks=true', '--variable', 'fontsize=10pt',
                        '--resource-path', '.'], cwd=HERE, check=True)
    atomic_write(os.path.join(HERE, 'report.pdf'), pandoc)
    print(f'built {os.path.join(HERE, "report.pdf")}')


if __name__ == '__main__':
    main()
