"""Images in and out: finding image files, decoding any of them to RGB on white at the training size
(one decode path, one set of messages, for training and denoising), the dataset tensor, the noise of
the assignment, PSNR and the grid PNGs.
"""
import logging
import os
import re
import warnings

import numpy as np
import torch
from PIL import Image, ImageOps
from torchvision.transforms import functional as TF  # here, not at the first image: its import takes seconds

from dae.errors import UsageError
from dae.files import atomic_write

log = logging.getLogger(__name__)
IMAGE_EXTENSIONS = ('.png', '.jpg', '.jpeg', '.bmp', '.gif', '.webp', '.tif', '.tiff', '.ppm', '.pgm')
LAYOUT_HINT = 'a folder of images such as data/pokemon/*.png'


class UnreadableImage(Exception):
    """A file that is not an image we can decode; the message names the file and why."""


def find_images(folder, skip=()):
    """Every image file under `folder` and its sub-folders, sorted, so that an index means the same file.
    A folder reached again through a link (a loop, or a second way in) is read once, a link to a folder
    above it not at all, and the folders in `skip` never."""
    folder = os.fspath(folder)
    if not os.path.exists(folder):
        raise UsageError(f'{folder}: no such folder; expected {LAYOUT_HINT}')
    if not os.path.isdir(folder):
        raise UsageError(f'{folder}: is a file, not {LAYOUT_HINT}')
    seen, paths, top = {os.path.realpath(path) for path in skip}, [], os.path.realpath(folder)
    for root, dirs, names in os.walk(folder, followlinks=True):
        real = os.path.realpath(root)
        if real in seen or top.startswith(real + os.sep):  # a link back up would take in the folders above
            dirs[:] = []
            continue
        seen.add(real)
        paths += [os.path.join(root, name) for name in names if name.lower().endswith(IMAGE_EXTENSIONS)]
    return sorted(paths)


def to_rgb_on_white(image):
    """Any PIL mode -> RGB, with transparent pixels on white as in the course's images."""
    if image.mode in ('I', 'I;16', 'I;16B', 'I;16L', 'I;16N'):
        # 16-bit grey: PIL's convert('L') clips to 255 instead of scaling
        grey = np.asarray(image, dtype=np.float64) / 257.0
        image = Image.fromarray(np.clip(np.round(grey), 0, 255).astype(np.uint8), 'L')
    if image.mode in ('RGBA', 'LA', 'PA', 'P') or 'transparency' in image.info:
        image = Image.alpha_composite(Image.new('RGBA', image.size, (255, 255, 255, 255)), image.convert('RGBA'))
    return image if image.mode == 'RGB' else image.convert('RGB')  # no copy of a large RGB image


def megapixels(count):
    return f'{count / 1e6:.0f} megapixels'


def open_image(path):
    """Decode one file, whatever its mode, with one-line messages in place of PIL's warnings."""
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
        log.warning('note: %s: %s, a very large image; reading it anyway', path, megapixels(image.width * image.height))
    if frames > 1:
        log.warning('note: %s: has %d frames; using the first', path, frames)
    return image


def load_image(path, image_size=None):
    """One image file as PIL RGB on white: at its own size, or resized on the short side and centre-cropped
    to image_size (the starter's Resize, plus a crop for non-square images); raises UnreadableImage."""
    image = open_image(path)
    if image_size is None:
        return image
    image = TF.resize(image, image_size, interpolation=TF.InterpolationMode.BILINEAR)
    return TF.center_crop(image, image_size)


def load_dataset(folder, image_size, skip=(), on_progress=None):
    """(N x 3 x S x S uint8 tensor, the N paths) of every readable image under `folder`; unreadable ones are
    skipped with a warning. Bytes, not floats: a quarter of the memory (to_unit_range converts each batch).
    on_progress(done, total) is called after each image, for a script to show progress as it likes."""
    paths = find_images(folder, skip)
    pixels = np.empty((len(paths), 3, image_size, image_size), dtype=np.uint8)
    readable = np.zeros(len(paths), dtype=bool)
    for index, path in enumerate(paths):
        try:
            pixels[index], readable[index] = np.asarray(load_image(path, image_size)).transpose(2, 0, 1), True
        except UnreadableImage as error:
            log.warning('warning: skipping %s', error)
        if on_progress:
            on_progress(index + 1, len(paths))
    if readable.sum() < 2:
        skipped = len(paths) - int(readable.sum())
        found = f'{int(readable.sum())} readable image(s)' + (f' ({skipped} unreadable)' if skipped else '')
        raise UsageError(f'{folder}: found {found}; need at least 2 images ({", ".join(IMAGE_EXTENSIONS)}) '
                         'in it or its sub-folders, e.g. data/pokemon/*.png')
    return torch.from_numpy(pixels[readable] if not readable.all() else pixels), \
        [path for path, ok in zip(paths, readable) if ok]


def to_unit_range(images):
    """uint8 pixels -> float32 in [-1, 1] (the one conversion of the repository); floats pass through."""
    return images.float().div(255) * 2 - 1 if images.dtype == torch.uint8 else images


def add_noise(clean, noise_level, generator):
    """Uniform noise in [-level, level], drawn on the batch's device, then clamped to the image range."""
    noise = torch.rand(clean.shape, generator=generator, device=clean.device, dtype=clean.dtype)
    return (clean + noise_level * (2 * noise - 1)).clamp(-1, 1)


def psnr_of_mse(mse):
    """PSNR in dB of mean squared errors (a tensor), for pixels in [-1, 1]: peak-to-peak 2, a peak power of 4."""
    return 10 * torch.log10(4 / mse)


def psnr(images, reference):
    """Mean over the batch of each image's PSNR in dB."""
    images, reference = torch.as_tensor(images), torch.as_tensor(reference)
    # float32 tensors are measured in float32, float64 arrays (decoded PNG grids) in float64
    dtype = torch.promote_types(torch.promote_types(images.dtype, reference.dtype), torch.float32)
    mse = ((images.to(dtype) - reference.to(dtype)) ** 2).flatten(1).mean(1)
    return psnr_of_mse(mse).mean().item()


def save_grid(path, images, images_per_row, value_range=(-1, 1)):
    """A PNG grid of images in [-1, 1], shown in that fixed range, or with value_range=None rescaled to the
    grid's own minimum and maximum, as the starter shows its grids."""
    from torchvision.utils import save_image
    images = images.detach().float().cpu()
    atomic_write(path, lambda tmp: save_image(images, tmp, nrow=images_per_row, normalize=True,
                                              value_range=value_range, format='png'))
