"""Images in and out: finding image files, decoding any of them to RGB on white at the training size
(one decode path with one set of messages for training and denoising), the dataset tensor, the
noise of the assignment, PSNR, and the PNG grids the scripts write.
"""
import os
import sys

import numpy as np
import torch
from PIL import Image, ImageOps
from torchvision.transforms import functional as TF
from torchvision.utils import save_image

from cli import UsageError
from files import atomic_write

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
    return image.convert('RGB')


def load_image(path, image_size=None):
    """Decode one image file to RGB, square of side image_size unless None; raises UnreadableImage."""
    try:
        with Image.open(path) as image:
            image.load()  # decode now, so a truncated file fails here and not later
            image = to_rgb_on_white(ImageOps.exif_transpose(image))
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as error:
        raise UnreadableImage(f'{path}: cannot decode it as an image ({error})') from None
    if image_size is None:
        return image
    image = TF.resize(image, image_size, interpolation=TF.InterpolationMode.BILINEAR)  # short side
    return TF.center_crop(image, image_size)


def to_tensor(image):
    """PIL RGB -> 3 x H x W float in [-1, 1], the starter's ToTensor + Normalize(0.5, 0.5)."""
    return TF.to_tensor(image) * 2 - 1


def read_image(path, image_size=None):
    """One image file as a [-1, 1] tensor; a missing or undecodable file is a UsageError naming it."""
    if not os.path.isfile(path):
        raise UsageError(f'{path}: no such image file')
    try:
        return to_tensor(load_image(path, image_size))
    except UnreadableImage as error:
        raise UsageError(str(error)) from None


def load_dataset(folder, image_size):
    """(N x 3 x S x S tensor, the N paths) of every readable image under `folder`; others are skipped with a warning."""
    tensors, paths, skipped = [], [], 0
    for path in find_images(folder):
        try:
            tensors.append(to_tensor(load_image(path, image_size)))
            paths.append(path)
        except UnreadableImage as error:
            print(f'warning: skipping {error}', file=sys.stderr)
            skipped += 1
    if len(tensors) < 2:
        found = f'{len(tensors)} readable image(s)' + (f' ({skipped} unreadable)' if skipped else '')
        raise UsageError(f'--data-dir {folder}: found {found}; need at least 2 images ({", ".join(IMAGE_EXTENSIONS)}) '
                         'in it or its sub-folders, e.g. data/pokemon/*.png')
    return torch.stack(tensors), paths


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


def save_grid(path, images, images_per_row):
    """A PNG grid of images in [-1, 1], with that fixed range (no per-grid rescaling that would shift colours)."""
    images = images.detach().float().cpu()
    atomic_write(path, lambda tmp: save_image(images, tmp, nrow=images_per_row, normalize=True,
                                              value_range=(-1, 1), format='png'))
