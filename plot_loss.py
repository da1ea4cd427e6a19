"""Plot the training loss written by asgn6.py (Assignment 6, Q3c) and print the numbers behind
a "has it converged?" judgement.

    python plot_loss.py loss.txt --save loss.png

The raw per-iteration loss is drawn faintly, a trailing moving average on top.  Printed for each
file: final, minimum and smoothed loss at 50%, 90% and 100% of training, and the relative change of
the smoothed loss over the last 10% of iterations (near 0 means the curve has flattened out).
"""
import argparse
import os
import sys

import numpy as np


def read_losses(path):
    """One float per line, as asgn6.py writes them."""
    try:
        with open(path) as f:
            losses = np.array([float(line) for line in f if line.strip()])
    except OSError as error:
        raise SystemExit(f'plot_loss.py: error: {path}: {error.strerror}')
    except ValueError as error:
        raise SystemExit(f'plot_loss.py: error: {path}: not one number per line ({error})')
    if losses.size == 0:
        raise SystemExit(f'plot_loss.py: error: {path}: no losses in it')
    return losses


def moving_average(values, window):
    """Trailing mean over `window` values; the first points average what there is so far."""
    window = max(1, min(window, values.size))
    sums = np.cumsum(np.insert(values, 0, 0.0))
    counts = np.minimum(np.arange(1, values.size + 1), window)
    return (sums[1:] - sums[np.maximum(np.arange(1, values.size + 1) - window, 0)]) / counts


def convergence_stats(losses, window):
    smooth = moving_average(losses, window)
    at = {share: smooth[max(int(round(share * losses.size)) - 1, 0)] for share in (0.5, 0.9, 1.0)}
    return {
        'iterations': losses.size, 'final': losses[-1], 'minimum': losses.min(),
        'minimum_at': int(losses.argmin()) + 1, 'smoothed_50': at[0.5], 'smoothed_90': at[0.9],
        'smoothed_final': at[1.0], 'last_10pct_change': (at[1.0] - at[0.9]) / at[0.9],
    }


def describe(path, stats, window):
    return (f'{path}: {stats["iterations"]} iterations | final {stats["final"]:.4f} | minimum '
            f'{stats["minimum"]:.4f} (iteration {stats["minimum_at"]}) | smoothed (window {window}) at 50% '
            f'{stats["smoothed_50"]:.4f}, 90% {stats["smoothed_90"]:.4f}, 100% {stats["smoothed_final"]:.4f} '
            f'| change over the last 10%: {100 * stats["last_10pct_change"]:+.2f}%')


def draw(curves, args):
    import matplotlib
    if args.save:
        matplotlib.use('Agg')  # no window needed to write a file
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(8, 4.5))
    for index, (label, losses) in enumerate(curves):
        colour = f'C{index}'
        iterations = np.arange(1, losses.size + 1)
        ax.plot(iterations, losses, color=colour, alpha=0.25, linewidth=0.6)
        ax.plot(iterations, moving_average(losses, args.window), color=colour, linewidth=1.6,
                label=f'{label} (moving average of {args.window})')
    ax.set_xlabel('iteration')
    ax.set_ylabel('L1 loss')
    if args.log_y:
        ax.set_yscale('log')
    if args.per_epoch:
        top = ax.secondary_xaxis('top', functions=(lambda i: i / args.per_epoch, lambda e: e * args.per_epoch))
        top.set_xlabel('epoch')
    ax.set_title(args.title)
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    if args.save:
        save_figure(fig, args.save)
        print(f'saved {args.save}')
    else:
        plt.show()


def save_figure(fig, path):
    """Atomic, like every artefact of this repository: a temp file beside `path`, then a rename."""
    root, extension = os.path.splitext(path)
    tmp = f'{root}.tmp{extension}'
    fig.savefig(tmp, dpi=150)
    os.replace(tmp, path)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('loss_files', nargs='*', default=['loss.txt'],
                        help='loss files from asgn6.py, one curve each (default: loss.txt)')
    parser.add_argument('--window', type=int, default=200, help='moving-average window in iterations (default: 200)')
    parser.add_argument('--per-epoch', type=int, default=0, help='iterations per epoch, to add an epoch axis on top; '
                        'asgn6.py prints it at the start (24 for the embedded data at batch 32) (default: 0, no axis)')
    parser.add_argument('--log-y', action='store_true', help='logarithmic loss axis (default: linear)')
    parser.add_argument('--title', default='De-noising auto-encoder: training loss', help='figure title')
    parser.add_argument('--save', metavar='FILE', help='write the figure to FILE (.png, .pdf, .svg) instead of '
                        'opening a window (default: open a window)')
    args = parser.parse_args(argv)
    if args.window < 1:
        parser.error('argument --window: must be at least 1')
    if args.per_epoch < 0:
        parser.error('argument --per-epoch: must not be negative')

    curves = [(path, read_losses(path)) for path in args.loss_files]
    for path, losses in curves:
        print(describe(path, convergence_stats(losses, args.window), args.window))
    draw(curves, args)
    return 0


if __name__ == '__main__':
    sys.exit(main())
