# COMP4680/8650 Assignment 6 -- Name: ____________________  Student ID: ____________
"""Plot the training loss written by asgn6.py (Assignment 6, Q3c) and print the numbers behind
a "has it converged?" judgement.

    python plot_loss.py loss.txt --save loss.png

The raw per-iteration loss is drawn faintly, a moving average centred on each point on top.  Printed
for each file: final, minimum and smoothed loss at 50%, 90% and 100% of training (a trailing moving
average there, which looks at no later loss), and the relative change of the smoothed loss over the
last 10% of iterations (near 0 means the curve has flattened out).
"""
import os
import sys
from dataclasses import dataclass

import numpy as np

from dae import cli
from dae.files import check_can_create, make_folder, save_figure
from dae.loss_stats import centred_average, convergence_stats
from dae.logs import read_losses

NON_INTERACTIVE_BACKENDS = {'agg', 'cairo', 'pdf', 'pgf', 'ps', 'svg', 'template'}


def describe(path, stats, window):
    return (f'{path}: {stats["iterations"]} iterations | final {stats["final"]:.4f} | minimum '
            f'{stats["minimum"]:.4f} (iteration {stats["minimum_at"]}) | smoothed (window {window}) at 50% '
            f'{stats["smoothed_50"]:.4f}, 90% {stats["smoothed_90"]:.4f}, 100% {stats["smoothed_final"]:.4f} '
            f'| change over the last 10%: {100 * stats["last_10pct_change"]:+.2f}%')


def curve_label(label, window, count):
    """The legend entry: the window actually used, which a short file caps."""
    return f'{label} (centred moving average of {min(window, count)})'


def window_for(window, count):
    """--window, or by default a twentieth of the file (at most 200): a short run keeps its shape."""
    return min(window or max(1, min(200, count // 20)), count)


@dataclass(frozen=True)
class Figure:
    """How the loss figure is drawn, and where it goes (None: a window)."""
    window: int = None
    per_epoch: int = 0
    log_y: bool = False
    title: str = ''
    ylabel: str = 'training loss'
    save: str = None


def draw(curves, figure):
    """Each curve raw and faint, its centred moving average on top; written to figure.save, else shown."""
    save = figure.save
    import matplotlib
    if save:
        matplotlib.use('Agg')  # no window needed to write a file
    import matplotlib.pyplot as plt
    if not save and plt.get_backend().lower() in NON_INTERACTIVE_BACKENDS:
        raise cli.UsageError('no display to show the figure on; write it to a file instead, e.g. --save loss.png')
    fig, ax = plt.subplots(figsize=(8, 4.5))
    for index, (label, losses) in enumerate(curves):
        colour = f'C{index}'
        iterations = np.arange(1, losses.size + 1)
        ax.plot(iterations, losses, color=colour, alpha=0.25, linewidth=0.6)
        window = window_for(figure.window, losses.size)
        ax.plot(iterations, centred_average(losses, window), color=colour, linewidth=1.6,
                label=curve_label(label, window, losses.size))
    ax.set_xlabel('iteration')
    ax.set_ylabel(figure.ylabel)
    if figure.log_y:
        ax.set_yscale('log')
    if figure.per_epoch:
        per_epoch = figure.per_epoch
        top = ax.secondary_xaxis('top', functions=(lambda i: i / per_epoch, lambda e: e * per_epoch))
        top.set_xlabel('epoch')
    ax.set_title(figure.title)
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    if save:
        make_folder(os.path.dirname(os.path.abspath(save)))
        save_figure(fig, save)
        print(f'saved {save}')
    else:
        plt.show()
    plt.close(fig)


def check_save_path(path):
    """A figure file we can write: a known format, in a folder we may write to."""
    from matplotlib.figure import Figure as MatplotlibFigure
    with cli.about('--save'):
        check_can_create(path)
    formats = MatplotlibFigure().canvas.get_supported_filetypes()
    extension = os.path.splitext(path)[1].lstrip('.').lower()
    if extension not in formats:
        raise cli.UsageError(f'--save {path}: unknown figure format {extension!r}; use one of '
                             f'{", ".join(sorted(formats))}')


def main(argv=None):
    parser = cli.ArgumentParser('plot_loss.py', __doc__)
    parser.add_argument('loss_files', nargs='*', default=['loss.txt'], metavar='LOSS_FILE',
                        help='loss files from asgn6.py, one curve each (default: loss.txt)')
    parser.add_argument('--window', type=cli.positive_int(), default=None, help='moving-average window in iterations, '
                        'centred on each point in the figure and trailing in the printed figures (default: a '
                        'twentieth of each file, at most 200)')
    parser.add_argument('--per-epoch', type=cli.positive_int(0), default=0, help='iterations per epoch, to add an '
                        "epoch axis on top; asgn6.py prints it at the start ('N iterations per epoch') "
                        '(default: 0, no axis)')
    parser.add_argument('--log-y', action='store_true', help='logarithmic loss axis (default: linear)')
    parser.add_argument('--title', default='De-noising auto-encoder: training loss', help='figure title '
                        '(default: %(default)s)')
    parser.add_argument('--ylabel', default='training loss', help="label of the loss axis, e.g. 'L1 loss' "
                        '(default: %(default)s)')
    parser.add_argument('--save', metavar='FILE', help='write the figure to FILE (.png, .pdf, .svg) instead of '
                        'opening a window (default: open a window)')
    args = parser.parse_args(None if argv is None else [str(arg) for arg in argv])
    return cli.report_errors('plot_loss.py', lambda: run(args))


def run(args):
    if args.save:
        check_save_path(args.save)
    curves = [(path, read_losses(path)) for path in args.loss_files]
    for path, losses in curves:
        if args.log_y and losses.min() <= 0:
            raise cli.UsageError(f'--log-y: {path} has a loss of {losses.min():g}, which a logarithmic axis '
                                 'cannot show')
        window = window_for(args.window, losses.size)
        print(describe(path, convergence_stats(losses, window), window))
    draw(curves, Figure(args.window, args.per_epoch, args.log_y, args.title, args.ylabel, args.save))
    return 0


if __name__ == '__main__':
    sys.exit(main())
