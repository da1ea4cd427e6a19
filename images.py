"""Images in and out: finding image files, decoding any of them to RGB on white at the training size
(one decode path with one set of messages for training and denoising), the dataset tensor, the
noise of the assignment, PSNR, the PNGs the scripts write, and denoising a large image in tiles.
"""
import ctypes
import os
import re
import struct
import sys
import time
import warnings
import zlib

import numpy as np
import torch
from PIL import Image, ImageOps

from cli import UsageError
from files import atomic_write

# a fully convolutional model denoises in tiles of TILE pixels, each read with the model's tile_context
# pixels of context on every side that are then dropped: wider than its receptive field, so tiles join
# without a seam
TILE = 512
NOISE_BAND = 64  # rows of noise drawn together, so that a tile's noise is the same whichever tile asks
PARALLEL_FROM = 2000  # images: below this, starting worker processes costs more than it saves
IMAGE_EXTENSIONS = ('.png', '.jpg', '.jpeg', '.bmp', '.gif', '.webp', '.tif', '.tiff', '.ppm', '.pgm')
LAYOUT_HINT = 'a folder of images such as data/pokemon/*.png'


class UnreadableImage(Exception):
    """A file that is not an image we can decode; the message names the file and why."""


def find_images(folder, what='--data-dir'):
    """Every image file under `folder` and its sub-folders, sorted, so that an index means the same file."""
    folder = os.fspath(folder)
    if not os.path.exists(folder):
        raise UsageError(f'{what} {folder}: no such folder; expected {LAYOUT_HINT}')
    if not os.path.isdir(folder):
        raise UsageError(f'{what} {folder}: is a file, not {LAYOUT_HINT}')
    paths = [os.path.join(root, name) for root, dirs, names in os.walk(folder, followlinks=True)
             for name in names if name.lower().endswith(IMAGE_EXTENSIONS)]
    return sorted(paths)


def to_rgb_on_white(image):
    """Any PIL mode -> RGB, with transparent pixels on white as in the course's images."""
    if image.mode in ('I', 'I;16', 'I;16B', 'I;16L', 'I;16N'):
        # 16-bit grey: PIL's convert('L') clips to 255 instead of scaling
        grey = np.asarray(image, dtype=np.float64) / 257.0
        image = Image.fromarray(np.clip(np.round(grey), 0, 255).astype(np.uint8), 'L')
    if image.mode in ('RGBA', 'LA', 'PA', 'P') or 'transparency' in image.info:
        image = image.convert('RGBA')
        white = Image.new('RGBA', image.size, (255, 255, 255, 255))
        image = Image.alpha_composite(white, image)
    return image if image.mode == 'RGB' else image.convert('RGB')  # no copy of a large RGB image


def megapixels(count):
    return f'{count / 1e6:.0f} megapixels'


def open_image(path):
    """Decode one file, whatever its mode, with our one-line messages in place of PIL's warnings."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter('always', Image.DecompressionBombWarning)
        try:
            with Image.open(path) as image:
                frames = getattr(image, 'n_frames', 1)
                image.load()  # decode now, so a truncated file fails here and not later
                ImageOps.exif_transpose(image, in_place=True)
                image = to_rgb_on_white(image)
        except Image.DecompressionBombError as error:
            size = re.search(r'\((\d+) pixels\)', str(error))
            what = megapixels(int(size.group(1))) + ', ' if size else ''
            raise UnreadableImage(f'{path}: too large ({what}over the limit of '
                                  f'{megapixels(2 * Image.MAX_IMAGE_PIXELS)} that guards against decompression bombs)')
        except (OSError, ValueError, SyntaxError) as error:
            raise UnreadableImage(f'{path}: cannot decode it as an image ({error})') from None
    if any(issubclass(warning.category, Image.DecompressionBombWarning) for warning in caught):
        print(f'note: {path}: {megapixels(image.width * image.height)}, a very large image; reading it anyway',
              file=sys.stderr)
    if frames > 1:
        print(f'note: {path}: has {frames} frames; using the first', file=sys.stderr)
    return image


def load_image(path, image_size=None):
    """Decode one image file to RGB, square of side image_size unless None; raises UnreadableImage."""
    image = open_image(path)
    if image_size is None:
        return image
    from torchvision.transforms import functional as TF  # here: denoising a large image never needs it
    image = TF.resize(image, image_size, interpolation=TF.InterpolationMode.BILINEAR)  # short side
    return TF.center_crop(image, image_size)


def to_tensor(image):
    """PIL RGB -> 3 x H x W float in [-1, 1], the starter's ToTensor + Normalize(0.5, 0.5)."""
    from torchvision.transforms import functional as TF
    return TF.to_tensor(image) * 2 - 1


def read_image(path, image_size=None):
    """One image file as a [-1, 1] tensor; a missing or undecodable file is a UsageError naming it."""
    if not os.path.isfile(path):
        raise UsageError(f'{path}: no such image file')
    try:
        return to_tensor(load_image(path, image_size))
    except UnreadableImage as error:
        raise UsageError(str(error)) from None


def read_rgb(path):
    """One image file at its own size, RGB on white, as PIL holds it; a missing or undecodable file is a
    UsageError naming it."""
    if not os.path.isfile(path):
        raise UsageError(f'{path}: no such image file')
    try:
        return open_image(path)
    except UnreadableImage as error:
        raise UsageError(str(error)) from None


def read_pixels(path):
    """One image file at its own size as an H x W x 3 uint8 array; see read_rgb."""
    with read_rgb(path) as image:
        return np.asarray(image).copy()


def available_memory(device):
    """Bytes the device can still give us: MemAvailable on the CPU, the free memory of a GPU; None if unknown."""
    if device.type == 'cuda':
        return torch.cuda.mem_get_info(device)[0]
    if device.type == 'cpu':
        try:
            with open('/proc/meminfo') as f:
                return next(int(line.split()[1]) * 1024 for line in f if line.startswith('MemAvailable:'))
        except (OSError, StopIteration, ValueError):
            return os.sysconf('SC_AVPHYS_PAGES') * os.sysconf('SC_PAGE_SIZE') if hasattr(os, 'sysconf') else None
    return None


def check_dataset_fits(count, image_size, device, folder, share=0.8):
    """Refuse, before decoding, a dataset whose uint8 tensor would not fit the device (or the CPU that builds it)."""
    need = count * 3 * image_size * image_size
    for place in dict.fromkeys([torch.device('cpu'), device]):
        budget = available_memory(place)
        if budget is not None and need > share * budget:
            raise UsageError(f'--data-dir {folder}: {count:,} images of {image_size}x{image_size} need '
                             f'{need / 2**30:.2f} GiB as bytes, more than {share:.0%} of the {budget / 2**30:.2f} GiB '
                             f'the {place.type} has available; use fewer images or a device with more memory')


def decode_chunk(job):
    """Decode some files to 3 x S x S uint8 arrays; an unreadable one gives its message instead."""
    paths, image_size = job
    decoded = []
    for path in paths:
        try:
            decoded.append(np.asarray(load_image(path, image_size)).transpose(2, 0, 1))
        except UnreadableImage as error:
            decoded.append(str(error))
    return decoded


class DecodeProgress:
    """Count, images per second and time left, every couple of seconds once decoding has taken a couple."""

    def __init__(self, total, every=2.0):
        self.total, self.every, self.start = total, every, time.perf_counter()
        self.next_report = self.start + every

    def __call__(self, done):
        now = time.perf_counter()
        if now >= self.next_report or (done == self.total and now - self.start >= self.every):
            rate = done / (now - self.start)
            print(f'decoded {done:,}/{self.total:,} images | {rate:.0f} images/s | ETA '
                  f'{(self.total - done) / rate:.0f} s', flush=True)
            self.next_report = now + self.every


def cpu_cores():
    """The cores this process may run on (a container's share, where Linux tells it)."""
    return len(os.sched_getaffinity(0)) if hasattr(os, 'sched_getaffinity') else os.cpu_count() or 1


def decoded_chunks(paths, image_size, workers, chunk=256):
    """The decoded files in order, chunk by chunk: in worker processes for a large folder."""
    jobs = [(paths[start:start + chunk], image_size) for start in range(0, len(paths), chunk)]
    if workers <= 1 or len(paths) < PARALLEL_FROM:
        yield from map(decode_chunk, jobs)
        return
    import multiprocessing
    context = multiprocessing.get_context('fork' if 'fork' in multiprocessing.get_all_start_methods() else None)
    with context.Pool(workers) as pool:
        yield from pool.imap(decode_chunk, jobs)


def load_dataset(folder, image_size, device=torch.device('cpu'), workers=None):
    """(N x 3 x S x S uint8 tensor, the N paths) of every readable image under `folder`, decoded in parallel;
    unreadable ones are skipped with a warning. Bytes, not floats: 4x less memory (to_unit_range converts)."""
    from torchvision.transforms import functional  # noqa: F401  imported before the clock starts
    paths = find_images(folder)
    check_dataset_fits(len(paths), image_size, device, folder)
    pixels = np.empty((len(paths), 3, image_size, image_size), dtype=np.uint8)
    readable, done, progress = np.zeros(len(paths), dtype=bool), 0, DecodeProgress(len(paths))
    for decoded in decoded_chunks(paths, image_size, workers or cpu_cores()):
        for item in decoded:
            if isinstance(item, str):
                print(f'warning: skipping {item}', file=sys.stderr)
            else:
                pixels[done], readable[done] = item, True
            done += 1
        progress(done)
    if readable.sum() < 2:
        skipped = len(paths) - int(readable.sum())
        found = f'{int(readable.sum())} readable image(s)' + (f' ({skipped} unreadable)' if skipped else '')
        raise UsageError(f'--data-dir {folder}: found {found}; need at least 2 images ({", ".join(IMAGE_EXTENSIONS)}) '
                         'in it or its sub-folders, e.g. data/pokemon/*.png')
    if not readable.all():
        pixels = pixels[readable]
    return torch.from_numpy(pixels), [path for path, ok in zip(paths, readable) if ok]


def to_unit_range(images):
    """uint8 pixels -> float32 in [-1, 1], exactly as to_tensor computes them; floats pass through."""
    return images.float().div(255) * 2 - 1 if images.dtype == torch.uint8 else images


def add_noise(clean, noise_level, generator):
    """Uniform noise in [-level, level], drawn on the batch's device, then clamped to the image range."""
    noise = torch.rand(clean.shape, generator=generator, device=clean.device, dtype=clean.dtype)
    return (clean + noise_level * (2 * noise - 1)).clamp(-1, 1)


def psnr(images, reference):
    """Mean over the batch of the peak signal-to-noise ratio in dB, for pixels in [-1, 1] (peak-to-peak 2)."""
    images, reference = torch.as_tensor(images), torch.as_tensor(reference)
    # float32 tensors are measured in float32, float64 arrays (decoded PNG grids) in float64
    dtype = torch.promote_types(torch.promote_types(images.dtype, reference.dtype), torch.float32)
    mse = ((images.to(dtype) - reference.to(dtype)) ** 2).flatten(1).mean(1)
    return (10 * torch.log10(4 / mse)).mean().item()


def to_uint8(images):
    """[-1, 1] floats -> 0..255 bytes, rounded exactly as save_grid rounds them."""
    return ((images.float().clamp(-1, 1) + 1) / 2).mul(255).add_(0.5).clamp_(0, 255).to(torch.uint8)


def save_pixels(path, pixels, band_rows=256):
    """An H x W x 3 uint8 array as an RGB PNG."""
    height, width, _ = pixels.shape
    save_png_bands(path, width, height, (pixels[top:top + band_rows] for top in range(0, height, band_rows)))


def save_png_bands(path, width, height, bands):
    """An RGB PNG written from bands of rows (rows x width x 3 uint8) as they come, compressed as they come:
    a large image never needs to be in memory whole (PIL would first copy it to four bytes a pixel)."""
    def write(tmp):
        rows_written = 0
        with open(tmp, 'wb') as f:
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


def save_grid(path, images, images_per_row):
    """A PNG grid of images in [-1, 1], with that fixed range (no per-grid rescaling that would shift colours)."""
    from torchvision.utils import save_image
    images = images.detach().float().cpu()
    atomic_write(path, lambda tmp: save_image(images, tmp, nrow=images_per_row, normalize=True,
                                              value_range=(-1, 1), format='png'))


# ----------------------------------------------------------------------------- large images in tiles

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

    def band(self, index):
        if index not in self.bands:
            if len(self.bands) > 32:  # tiles go row by row: older bands are not asked for again
                self.bands.clear()
            generator = self.band_generator(index)
            self.bands[index] = torch.rand(3, NOISE_BAND, self.width, generator=generator)
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


def return_freed_memory():
    """glibc raises its mmap threshold to the largest block freed, then serves later tile-sized blocks from
    its heap, where freed memory is not given back: over a large image the process grows by hundreds of
    MB. A fixed threshold of 1 MiB keeps each large tensor in its own mapping, returned when freed."""
    try:
        ctypes.CDLL('libc.so.6').mallopt(-3, 1 << 20)  # M_MMAP_THRESHOLD
    except (OSError, AttributeError):  # not glibc: nothing to do
        pass


class TiledDenoiser:
    """Denoise an RGB image (PIL, or an H x W x 3 uint8 array) tile by tile, a band of tile rows at a time:
    bands() yields the output rows (and the noisy input's, if asked) as uint8 as each band is finished, so
    that a caller can write them out and only one band is ever held; the PSNRs are known at the end."""

    def __init__(self, model, image, *, noise=None, device, tile=TILE, margin=None, progress=None):
        self.model, self.image, self.noise, self.device = model, image, noise, device
        self.tile, self.margin, self.progress = tile, margin or model.tile_context, progress
        self.width, self.height = image.size if isinstance(image, Image.Image) else image.shape[1::-1]
        self.errors = {'noisy': 0.0, 'output': 0.0}

    def region(self, top, bottom, left, right):
        if isinstance(self.image, Image.Image):
            return np.asarray(self.image.crop((left, top, right, bottom))).copy()
        return np.array(self.image[top:bottom, left:right])  # a writable copy of one tile

    @torch.no_grad()
    def denoise(self, top, bottom, left, right):
        """(noisy input, output) of one read region, as [-1, 1] floats 3 x h x w."""
        clean = torch.from_numpy(self.region(top, bottom, left, right)).permute(2, 0, 1).float() / 255 * 2 - 1
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
        return 10 * np.log10(4 / mse) if mse else float('inf')


def denoise_tiled(model, pixels, **options):
    """The whole output of a TiledDenoiser as one H x W x 3 uint8 array, for images that fit in memory."""
    return np.concatenate([output for output, _ in TiledDenoiser(model, pixels, **options).bands()])


def side_by_side(images, padding=2):
    """uint8 images of one size in a row with black borders, as save_grid lays a row out."""
    height, width, _ = images[0].shape
    canvas = np.zeros((height + 2 * padding, len(images) * (width + padding) + padding, 3), dtype=np.uint8)
    for index, image in enumerate(images):
        left = padding + index * (width + padding)
        canvas[padding:padding + height, left:left + width] = image
    return canvas
