"""Classical denoisers for Q3(f), given what the network knows of the noise.

The noise is uniform in [-1, 1] and then clamped to the image's range, so near white and black it is
one-sided: a white pixel's noisy value averages 0.75, not 1.  A filter built for zero-mean noise keeps
that bias.  Each filter is therefore scored twice: plain, and followed by an intensity correction, a
lookup from each filtered value to the mean clean value behind it, fitted on training images only.
Every parameter is chosen on those training images, from a grid that grows until its best value lies
inside it, for the plain and the corrected filter alike.
"""
import multiprocessing
import os
from dataclasses import dataclass
from typing import Callable, Optional

import numpy as np
import torch

LEVELS = 128  # levels of the intensity correction over [-1, 1]
# (filtered, noisy) levels of the 2-D correction: the best on the development seed's held-out images
# (python -m experiments.run_experiments --choose-joint-bins writes experiments/results/joint-bins.md)
JOINT_BINS = (32, 32)


# ----------------------------------------------------------------------------- the filters (HxWx3 in [0, 1])

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
    """scipy.ndimage.median_filter(image, size=(size, size, 1)) in numpy; size 1 is the identity."""
    return np.median(reflect_windows(image, int(size), (0, 1)), axis=(-2, -1))


def non_local_means(image, h):
    from skimage import restoration
    return restoration.denoise_nl_means(image, h=h, patch_size=5, patch_distance=6, fast_mode=True, channel_axis=-1)


def total_variation(image, weight):
    from skimage import restoration
    return restoration.denoise_tv_chambolle(image, weight=weight, channel_axis=-1)


def bm3d_rgb(image, sigma):
    import bm3d
    return bm3d.bm3d_rgb(image, sigma_psd=sigma)


@dataclass(frozen=True)
class Filter:
    """A filter and the grid its parameter is first chosen from (ascending).  At an end the choice lies
    on, the grid grows by `factor` (geometric) or `step` (arithmetic, never below `lowest`)."""
    apply: Callable
    grid: tuple
    factor: float = 0.0
    step: float = 0.0
    lowest: float = 0.0

    def beyond(self, value, up):
        """The next value past an end of the grid, or None where there is none."""
        if self.factor:
            return round(value * self.factor if up else value / self.factor, 4)
        nxt = value + self.step if up else value - self.step
        return nxt if nxt >= self.lowest else None


def classical_filters(names=None, noise_level=1.0):
    """name -> Filter, the optional ones where installed; the grids of the parameters that measure the noise
    start in proportion to its level.  The functions are module-level, so that worker processes can run them."""
    scaled = lambda *grid: tuple(round(value * noise_level, 4) for value in grid)  # noqa: E731
    filters = {
        'gaussian blur': Filter(gaussian_blur, (0.8, 1.0, 1.25), factor=1.25),
        'median': Filter(median_filter, (1, 3, 5, 7), step=2, lowest=1),
    }
    try:
        import skimage  # noqa: F401
        filters['non-local means'] = Filter(non_local_means, scaled(0.1, 0.125, 0.1563, 0.1953), factor=1.25)
        filters['total variation'] = Filter(total_variation, scaled(0.128, 0.16, 0.2, 0.25), factor=1.25)
    except ImportError:
        print('scikit-image is not installed: no non-local means or total variation baselines')
    try:
        import bm3d  # noqa: F401
        # seconds per 64x64 image: a short first grid around the noise's standard deviation (0.29 for
        # uniform noise of half-width 0.5 on [0, 1], a little less after clamping), grown where needed
        filters['BM3D'] = Filter(bm3d_rgb, scaled(0.2, 0.25, 0.3125), factor=1.25)
    except ImportError:
        print('bm3d is not installed: no BM3D baseline')
    return {name: value for name, value in filters.items() if names is None or name in names}


def apply_filter(apply, noisy, parameter):
    """One filter over a batch in [-1, 1], image by image in numpy's [0, 1] HxWx3 layout, one worker
    process per core (BM3D takes seconds per image)."""
    images = ((noisy.permute(0, 2, 3, 1).numpy() + 1) / 2).astype(np.float64)
    with multiprocessing.get_context('fork').Pool(min(os.cpu_count(), len(images))) as pool:
        out = np.stack([np.clip(image, 0, 1) for image in pool.starmap(apply, [(im, parameter) for im in images])])
    return torch.from_numpy(out).permute(0, 3, 1, 2).float() * 2 - 1


# ----------------------------------------------------------------------------- the intensity correction

@dataclass(frozen=True)
class IntensityMap:
    """The mean clean value behind each filtered value: LEVELS bins over [-1, 1], each at the mean filtered
    value that fell into it, joined by straight lines (empty bins are skipped)."""
    filtered: np.ndarray
    clean: np.ndarray

    @classmethod
    def fit(cls, filtered, clean, levels=LEVELS):
        values = filtered.clamp(-1, 1).flatten().double()
        bins = ((values + 1) / 2 * levels).long().clamp(max=levels - 1)
        counts = torch.bincount(bins, minlength=levels)
        sums = torch.bincount(bins, weights=values, minlength=levels)
        targets = torch.bincount(bins, weights=clean.flatten().double(), minlength=levels)
        used = counts > 0
        return cls((sums[used] / counts[used]).numpy(), (targets[used] / counts[used]).numpy())

    def __call__(self, images):
        return torch.from_numpy(np.interp(images.numpy(), self.filtered, self.clean)).float()


@dataclass(frozen=True)
class JointIntensityMap:
    """The intensity correction refined by each pixel's noisy value: a clamped pixel's noisy value says
    something of its clean value that filtering averages away.  It adds to the 1-D correction the mean clean
    value's departure from it in each (filtered value, noisy value) bin; an empty bin adds nothing."""
    base: IntensityMap
    residual: np.ndarray  # (filtered levels, noisy levels)

    @staticmethod
    def cells(filtered, noisy, bins):
        rows = ((filtered.clamp(-1, 1) + 1) / 2 * bins[0]).long().clamp(max=bins[0] - 1)
        columns = ((noisy.clamp(-1, 1) + 1) / 2 * bins[1]).long().clamp(max=bins[1] - 1)
        return (rows * bins[1] + columns).flatten()

    @classmethod
    def fit(cls, filtered, noisy, clean, bins=JOINT_BINS):
        base = IntensityMap.fit(filtered, clean)
        cells, size = cls.cells(filtered, noisy, bins), bins[0] * bins[1]
        counts = torch.bincount(cells, minlength=size)
        departures = (clean.double() - base(filtered).double()).flatten()
        sums = torch.bincount(cells, weights=departures, minlength=size)
        return cls(base, (sums / counts.clamp(min=1)).reshape(bins).numpy())

    def __call__(self, filtered, noisy):
        cells = self.cells(filtered, noisy, self.residual.shape).numpy()
        departure = torch.from_numpy(self.residual.reshape(-1)[cells]).float().reshape(filtered.shape)
        return self.base(filtered) + departure


# ----------------------------------------------------------------------------- choosing on training images

@dataclass(frozen=True)
class Choice:
    """One filter's choices on the training probe: the parameters of the plain filter, the filter with the
    correction and the filter with the joint correction, the corrections fitted at theirs, every value tried,
    and each choice's score on the probe."""
    plain: Optional[float]
    corrected: Optional[float]
    joint: Optional[float]
    correction: IntensityMap
    joint_correction: JointIntensityMap
    tried: tuple
    plain_probe_psnr: float
    corrected_probe_psnr: float
    joint_probe_psnr: float


def choose(filter_, probe, psnr):
    """The parameters that score best on the probe, plain and with each correction, with the grid grown until
    each lies inside it; a filter output is computed once per value and serves all three."""
    outputs, grid = {}, list(filter_.grid)
    while True:
        for value in grid:
            if value not in outputs:
                out = apply_filter(filter_.apply, probe.noisy, value)
                fitted, joint = IntensityMap.fit(out, probe.clean), JointIntensityMap.fit(out, probe.noisy, probe.clean)
                outputs[value] = {'plain': (psnr(out, probe.clean), None),
                                  'corrected': (psnr(fitted(out), probe.clean), fitted),
                                  'joint': (psnr(joint(out, probe.noisy), probe.clean), joint)}
        best = {kind: max(grid, key=lambda value: outputs[value][kind][0]) for kind in ('plain', 'corrected', 'joint')}
        grown = list(grid)
        if grid[-1] in best.values():
            grown.append(filter_.beyond(grid[-1], up=True))
        below = filter_.beyond(grid[0], up=False) if grid[0] in best.values() else None
        if below is not None:
            grown.insert(0, below)
        if grown == grid:
            score = {kind: outputs[value][kind] for kind, value in best.items()}
            return Choice(best['plain'], best['corrected'], best['joint'], score['corrected'][1], score['joint'][1],
                          tuple(grid), score['plain'][0], score['corrected'][0], score['joint'][0])
        grid = grown


def best_classical(rows):
    """The strongest honest baseline of one seed and noise level: of the corrected filters, the one that scored
    best on the training probe (never chosen by its score on the test images)."""
    corrected = [row for row in rows if row.get('corrected') and row['name'] != 'noisy input + correction']
    return max(corrected, key=lambda row: row['probe_psnr'], default=None)
