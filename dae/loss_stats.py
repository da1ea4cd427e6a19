"""The numbers behind plot_loss.py's figure: reading a loss file, moving averages and the convergence
figures of Q3(c).  No torch here, so that plot_loss.py starts in a fraction of a second.
"""
import numpy as np

from dae.cli import UsageError


def read_losses(path):
    """One float per line, as asgn6.py writes them."""
    try:
        with open(path) as f:
            losses = np.array([float(line) for line in f if line.strip()])
    except OSError as error:
        raise UsageError(f'{path}: {error.strerror}')
    except (ValueError, UnicodeDecodeError) as error:
        raise UsageError(f'{path}: not one number per line ({error})')
    if losses.size == 0:
        raise UsageError(f'{path}: no losses in it')
    bad = np.flatnonzero(~np.isfinite(losses))
    if bad.size:
        raise UsageError(f'{path}: loss {bad[0] + 1} is {losses[bad[0]]} (a run that diverged?)')
    return losses


def moving_average(values, window):
    """Trailing mean over `window` values; the first points average what there is so far."""
    window = max(1, min(window, values.size))
    sums = np.cumsum(np.insert(values, 0, 0.0))
    counts = np.minimum(np.arange(1, values.size + 1), window)
    return (sums[1:] - sums[np.maximum(np.arange(1, values.size + 1) - window, 0)]) / counts


def centred_average(values, window):
    """Mean over `window` values centred on each point (fewer at the ends): unlike a trailing mean it does
    not lag behind a falling curve, so the smooth line runs through the raw points, not above them."""
    window = max(1, min(window, values.size))
    sums = np.cumsum(np.insert(values, 0, 0.0))
    index = np.arange(values.size)
    lo, hi = np.maximum(index - window // 2, 0), np.minimum(index + (window - 1) // 2 + 1, values.size)
    return (sums[hi] - sums[lo]) / (hi - lo)


def convergence_stats(losses, window):
    """Final and minimum loss, the trailing average at 50%, 90% and 100% of training, and its relative
    change over the last 10% (near 0: the curve has flattened out)."""
    smooth = moving_average(losses, window)
    at = {share: smooth[max(int(round(share * losses.size)) - 1, 0)] for share in (0.5, 0.9, 1.0)}
    return {
        'iterations': losses.size, 'final': losses[-1], 'minimum': losses.min(),
        'minimum_at': int(losses.argmin()) + 1, 'smoothed_50': at[0.5], 'smoothed_90': at[0.9],
        'smoothed_final': at[1.0], 'last_10pct_change': (at[1.0] - at[0.9]) / at[0.9],
    }

