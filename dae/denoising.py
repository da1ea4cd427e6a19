"""Using a trained model (denoise.py, the experiments, the report, the benchmarks): loading it, the
self-ensemble, reading a file the user named, and denoising an image of any size with a fully convolutional
model in bounded memory: the image stays as bytes, tiles become floats one at a time, and each finished band
of output rows is compressed into the PNG at once by a small streaming PNG writer."""
import os
import struct
import zlib

import numpy as np
import torch
from PIL import Image
from torch import nn

from dae import variants
from dae.checkpoint import load_checkpoint
from dae.errors import UsageError
from dae.files import atomic_write
from dae.images import UnreadableImage, load_image, psnr_of_mse, to_unit_range


def model_of(checkpoint, device, path):
    """The trained model of a loaded checkpoint, in eval mode on `device`."""
    config = checkpoint['config']
    try:
        model = variants.build(config.model, config.latent_size, config.image_size).to(device)
        model.load_state_dict(checkpoint['model'])
    except (KeyError, TypeError, ValueError, RuntimeError) as error:
        raise UsageError(f'{path}: not a checkpoint of this models.py ({str(error).strip().splitlines()[0]})')
    return model.eval()


def load_model(path, device):
    """(the trained model in eval mode on `device`, its run's RunConfig), from a checkpoint of any device."""
    checkpoint = load_checkpoint(path)
    return model_of(checkpoint, device, path), checkpoint['config']


class SelfEnsemble(nn.Module):
    """A trained denoiser averaged over the eight mirror images and quarter turns of its input, each output
    turned back: the eight views make different errors, so their mean is nearer the clean image, for eight
    times the arithmetic (the 'geometric self-ensemble' of EDSR).  Needs square inputs for a model of fixed
    size (the assignment's); a fully convolutional one takes any."""

    def __init__(self, model):
        super().__init__()
        self.model = model
        self.tile_context = getattr(model, 'tile_context', 0)

    def forward(self, x):
        total = torch.zeros_like(x)
        for transpose in (False, True):
            for dims in ((), (-1,), (-2,), (-2, -1)):
                view = x.transpose(-1, -2) if transpose else x
                output = self.model(view.flip(dims)).flip(dims)
                total += output.transpose(-1, -2) if transpose else output
        return total / 8



def read_image(path, image_size=None):
    """load_image for a file the user named: a missing or undecodable one is a UsageError naming it."""
    if not os.path.isfile(path):
        raise UsageError(f'{path}: no such image file')
    try:
        return load_image(path, image_size)
    except UnreadableImage as error:
        raise UsageError(str(error)) from None


def to_tensor(image):
    """PIL RGB -> 3 x H x W float in [-1, 1], the starter's ToTensor + Normalize(0.5, 0.5)."""
    return to_unit_range(torch.from_numpy(np.array(image)).permute(2, 0, 1))


def to_uint8(images):
    """[-1, 1] floats -> 0..255 bytes, rounded exactly as save_grid rounds them."""
    return ((images.float().clamp(-1, 1) + 1) / 2).mul(255).add_(0.5).clamp_(0, 255).to(torch.uint8)


# tiles of TILE pixels, each read with the model's tile_context pixels of context on every side that are
# then dropped: wider than its receptive field, so tiles join without a seam
TILE = 512
NOISE_BAND = 64  # rows of noise drawn together, so that a tile's noise is the same whichever tile asks


def tile_spans(length, tile, margin):
    """(kept start, kept end, read start, read end) along one axis; read starts are multiples of 8, so that
    the U-Nets' halvings (three for the residual U-Net, with its unshuffle) line up with the whole image's."""
    assert tile % 8 == 0 and margin % 8 == 0
    return [(start, min(start + tile, length), max(0, start - margin), min(length, start + tile + margin))
            for start in range(0, length, tile)]


class BandedNoise:
    """The training noise for any region of a large image, drawn in bands of rows from their own seeds."""

    def __init__(self, level, band_generator, width):
        self.level, self.band_generator, self.width, self.bands = level, band_generator, width, {}

    @classmethod
    def seeded(cls, level, seed, width):
        """denoise.py's noise on a large image: band b draws from its own generator, of (seed, b) alone."""
        return cls(level, lambda band: torch.Generator().manual_seed(seed * 1_000_003 + band), width)

    def band(self, index):
        if index not in self.bands:
            if len(self.bands) > 32:  # tiles go row by row: older bands are not asked for again
                self.bands.clear()
            self.bands[index] = torch.rand(3, NOISE_BAND, self.width, generator=self.band_generator(index))
        return self.bands[index]

    def __call__(self, clean, top, left):
        """clean + noise, clamped, for the region of `clean` (3 x h x w) whose corner is (top, left)."""
        height, width = clean.shape[1:]
        first, last = top // NOISE_BAND, (top + height - 1) // NOISE_BAND
        rows = torch.cat([self.band(index) for index in range(first, last + 1)], dim=1)
        noise = rows[:, top - first * NOISE_BAND:top - first * NOISE_BAND + height, left:left + width]
        return (clean + self.level * (2 * noise - 1)).clamp(-1, 1)


def squared_error(images, reference):
    return float(((images.double() - reference.double()) ** 2).sum())


class TiledDenoiser:
    """Denoise an RGB image (PIL, or an H x W x 3 uint8 array) tile by tile, a band of tile rows at a time:
    bands() yields the output rows (and the noisy input's, if asked) as uint8 as each band is finished, so
    that only one band is ever held; the PSNRs are known at the end."""

    def __init__(self, model, image, *, noise=None, device, progress=None):
        self.model, self.image, self.noise, self.device, self.progress = model, image, noise, device, progress
        self.tile, self.margin = TILE, model.tile_context
        self.width, self.height = image.size if isinstance(image, Image.Image) else image.shape[1::-1]
        self.errors = {'noisy': 0.0, 'output': 0.0}

    def tiles(self):
        rows, columns = (tile_spans(side, self.tile, self.margin) for side in (self.height, self.width))
        return len(rows) * len(columns)

    def region(self, top, bottom, left, right):
        if isinstance(self.image, Image.Image):
            return np.asarray(self.image.crop((left, top, right, bottom))).copy()
        return np.array(self.image[top:bottom, left:right])  # a writable copy of one tile

    @torch.no_grad()
    def denoise(self, top, bottom, left, right):
        """(clean, noisy input, output) of one read region, as [-1, 1] floats 3 x h x w."""
        clean = to_unit_range(torch.from_numpy(self.region(top, bottom, left, right)).permute(2, 0, 1))
        noisy = clean if self.noise is None else self.noise(clean, top, left)
        return clean, noisy, self.model(noisy.unsqueeze(0).to(self.device)).squeeze(0).float().cpu()

    def bands(self, keep_noisy=False):
        done = 0
        for y0, y1, read_y0, read_y1 in tile_spans(self.height, self.tile, self.margin):
            output = np.empty((y1 - y0, self.width, 3), dtype=np.uint8)
            noisy_rows = np.empty_like(output) if keep_noisy else None
            for x0, x1, read_x0, read_x1 in tile_spans(self.width, self.tile, self.margin):
                clean, noisy, denoised = self.denoise(read_y0, read_y1, read_x0, read_x1)
                keep = (slice(None), slice(y0 - read_y0, y1 - read_y0), slice(x0 - read_x0, x1 - read_x0))
                output[:, x0:x1] = to_uint8(denoised[keep]).permute(1, 2, 0).numpy()
                if self.noise is not None:
                    self.errors['noisy'] += squared_error(noisy[keep], clean[keep])
                    self.errors['output'] += squared_error(denoised[keep], clean[keep])
                if keep_noisy:
                    noisy_rows[:, x0:x1] = to_uint8(noisy[keep]).permute(1, 2, 0).numpy()
                done += 1
                if self.progress:
                    self.progress(done)
            yield output, noisy_rows

    def psnr(self, which):
        """'noisy' or 'output' against the clean image, in dB, once bands() is exhausted."""
        mse = self.errors[which] / (3 * self.width * self.height)
        return psnr_of_mse(torch.tensor(mse, dtype=torch.float64)).item() if mse else float('inf')


def save_pixels(path, pixels, band_rows=256):
    """An H x W x 3 uint8 array as an RGB PNG."""
    height, width, _ = pixels.shape
    save_png_bands(path, width, height, (pixels[top:top + band_rows] for top in range(0, height, band_rows)))


def save_png_bands(path, width, height, bands):
    """An RGB PNG written from bands of rows (rows x width x 3 uint8), compressed as they come: a large image
    is never in memory whole (PIL would first copy it to four bytes a pixel)."""
    def write(tmp):
        rows_written = 0
        with open(tmp, 'xb') as f:
            f.write(b'\x89PNG\r\n\x1a\n')
            png_chunk(f, b'IHDR', struct.pack('>IIBBBBB', width, height, 8, 2, 0, 0, 0))  # 8-bit RGB
            compressor = zlib.compressobj(6)
            for band in bands:
                rows = band.reshape(-1, width * 3).astype(np.int16)
                rows[:, 3:] -= rows[:, :-3].copy()  # PNG's Sub filter: each byte less the one a pixel before
                filtered = np.concatenate([np.ones((rows.shape[0], 1), np.uint8), rows.astype(np.uint8)], axis=1)
                png_chunk(f, b'IDAT', compressor.compress(filtered.tobytes()))
                rows_written += rows.shape[0]
            png_chunk(f, b'IDAT', compressor.flush())
            png_chunk(f, b'IEND', b'')
        assert rows_written == height, (rows_written, height)
    atomic_write(path, write)


def png_chunk(f, kind, data):
    f.write(struct.pack('>I', len(data)) + kind + data + struct.pack('>I', zlib.crc32(kind + data)))


def side_by_side(images, padding=2):
    """uint8 images of one size in a row with black borders, as save_grid lays a row out."""
    height, width, _ = images[0].shape
    canvas = np.zeros((height + 2 * padding, len(images) * (width + padding) + padding, 3), dtype=np.uint8)
    for index, image in enumerate(images):
        left = padding + index * (width + padding)
        canvas[padding:padding + height, left:left + width] = image
    return canvas
