"""The numbers behind plot_loss.py's figure: moving averages and the convergence figures of Q3(c).
No torch here, so that plot_loss.py starts in a fraction of a second.
"""
import numpy as np


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

