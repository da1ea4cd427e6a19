# COMP4680/8650 Assignment 6 -- Name: ____________________  Student ID: ____________
"""Use a model trained by asgn6.py: denoise your own images, generate new ones, interpolate between two.

    python denoise.py my_pokemon.png --add-noise          # noise it, denoise it, print the PSNR gain
    python denoise.py photos/                             # denoise every image in a folder, as given
    python denoise.py --generate 32 --latent-source data  # 32 novel images from the data's latent codes
    python denoise.py --interpolate a.png b.png           # a row decoded between two images' codes

Which model: --checkpoint, or by default for IMAGE... the shipped U-Net (weights/unet.pt),
which denoises every image at its own size and generalises to images it never saw; for --generate and
--interpolate, which need the latent code of the assignment's model, your finished run
(samples/checkpoint.pt), else the shipped weights/spec.pt.  With the assignment's model an image is read
as for training: transparency on white, short side resized and centre-cropped to its 64x64.  Outputs go to
--out: NAME-denoised.png and NAME-compare.png (input, noisy input if any, output), generated.png and
interpolation.png (numbered -2, -3 ... where an earlier one is, so that none is overwritten).
"""
import collections
import os
import sys
from dataclasses import dataclass

import numpy as np
import torch
from PIL import Image

from dae import cli
from dae.checkpoint import load_checkpoint
from dae.run_folder import CHECKPOINT_NAME
from dae.config import total_iterations
from dae.images import add_noise, find_images, load_dataset, psnr, save_grid
from dae.latents import data_latents, user_draws
from dae.training import uniform_latents
from dae.files import check_can_create, make_folder
from dae.denoising import (BandedNoise, SelfEnsemble, TiledDenoiser, model_of, read_image, save_pixels,
                           save_png_bands, side_by_side, to_tensor)
from models import AutoEncoder

COMPARE_LIMIT = 25_000_000  # pixels: above this NAME-compare.png (three copies side by side) is left out
DEFAULT_CHECKPOINT = os.path.join('samples', CHECKPOINT_NAME)  # where `python asgn6.py` leaves its model
WEIGHTS = os.path.join(os.path.dirname(os.path.abspath(__file__)), 'weights')
SHIPPED_SPEC = os.path.join(WEIGHTS, 'spec.pt')  # the assignment's model after the report's 500-epoch run
SHIPPED_DENOISER = os.path.join(WEIGHTS, 'unet.pt')  # the stronger denoiser of the report's Q3(f)


def build_parser():
    p = cli.ArgumentParser('denoise.py', __doc__)
    p.add_argument('images', nargs='*', metavar='IMAGE', help='image files or folders of images to denoise; a '
                   "folder's sub-folders are kept in --out")
    p.add_argument('--checkpoint', help='checkpoint written by asgn6.py, or shipped weights (default: to denoise '
                   'IMAGE..., the shipped weights/unet.pt; to generate or interpolate, '
                   f'{DEFAULT_CHECKPOINT} if a run there has finished, else the shipped weights/spec.pt)')
    p.add_argument('--out', default='denoised', help='folder for the output PNGs (default: denoised)')
    p.add_argument('--add-noise', action='store_true', help="add the training noise first and print PSNRs "
                   'against the clean input (default: denoise the image as given)')
    p.add_argument('--noise-level', type=cli.positive_float, default=None, help='noise half-width for '
                   "--add-noise (default: the checkpoint's training noise level)")
    p.add_argument('--self-ensemble', action='store_true', help='average the outputs for the eight mirror images '
                   'and quarter turns of each input: a little sharper, eight times slower (default: off)')
    p.add_argument('--generate', type=cli.positive_int(), metavar='N', help='decode N random latent vectors '
                   'into one grid (default: off)')
    p.add_argument('--latent-source', choices=['uniform', 'data'], default='uniform', help="for --generate: "
                   "uniform in [-1, 1] as the starter draws them, or a Gaussian fitted to the codes of the "
                   'training images of --data-dir under the training noise (default: uniform)')
    p.add_argument('--data-dir', default='data', help='training images, for --latent-source data (default: data)')
    p.add_argument('--interpolate', nargs=2, metavar=('A', 'B'), help='decode points on the straight line '
                   'between the latent codes of images A and B (default: off)')
    p.add_argument('--steps', type=cli.positive_int(2), default=8, help='points for --interpolate (default: 8)')
    p.add_argument('--seed', type=int, default=4680, help='seeds the noise and the random latents (default: 4680)')
    cli.add_device_flag(p)
    return p


OWN_OUTPUTS = ('-denoised.png', '-compare.png')


def image_paths(names, out):
    """{output name: path}: files as given, named by their stem; the images in a folder, named by their path
    inside it (sub-folders kept in --out). What this script wrote to --out is left out, so that a second run
    does not denoise its own outputs."""
    found, own = {}, os.path.realpath(out) + os.sep  # path: name; a file given twice counts once
    for name in names:
        with cli.about('IMAGE'):
            if not os.path.isdir(name):
                found.setdefault(name, os.path.basename(name))
                continue
            images = [path for path in find_images(name)
                      if not (path.endswith(OWN_OUTPUTS) and os.path.realpath(path).startswith(own))]
            if not images:
                raise cli.UsageError(f'{name}: no images to denoise in it or its sub-folders')
            for path in images:
                found.setdefault(path, os.path.relpath(path, name))
    return unique_names(found)


def unique_names(found):
    """{output name: path}: each file's stem; its full name where two stems meet (x.png, x.jpg), and a number
    where even those do, so that no output overwrites another."""
    stems = collections.Counter(os.path.splitext(name)[0] for name in found.values())
    names = {}
    for path, name in found.items():
        name = os.path.splitext(name)[0] if stems[os.path.splitext(name)[0]] == 1 else name
        unique, count = name, 1
        while unique in names:
            count += 1
            unique = f'{name}-{count}'
        names[unique] = path
    return names


def output_file(out, name):
    """A path in --out, its folder made on the first write, so that a refused run leaves no empty folder."""
    path = os.path.join(out, name)
    with cli.about('--out'):
        make_folder(os.path.dirname(path))
    return path


@dataclass(frozen=True)
class Denoising:
    """What denoise.py does to each image: with which model, at what size (None: its own, for a fully
    convolutional model), at what noise (None: the image as given), where to."""
    model: torch.nn.Module
    image_size: int
    noise_level: float
    seed: int
    device: torch.device
    out: str


@torch.no_grad()
def denoise_resized(job, path, name):
    """The assignment's model: the image resized and cropped to its 64 x 64, noised if asked, denoised."""
    clean = to_tensor(read_image(path, job.image_size)).unsqueeze(0).to(job.device)
    noisy = clean if job.noise_level is None else add_noise(clean, job.noise_level, user_draws(job.seed, job.device))
    output = job.model(noisy)
    if is_grey(path):  # the noise and the model are colour: a grey image's output is turned grey again
        output = output.mean(1, keepdim=True).expand_as(output)
    row = [clean, output] if job.noise_level is None else [clean, noisy, output]
    save_grid(output_file(job.out, f'{name}-compare.png'), torch.cat(row), images_per_row=len(row))
    save_grid(output_file(job.out, f'{name}-denoised.png'), output, images_per_row=1)
    return None if job.noise_level is None else (psnr(noisy, clean), psnr(output, clean))


def is_grey(path):
    """Whether the file holds a grey image (read from its header only)."""
    with Image.open(path) as image:
        return image.mode in ('1', 'L', 'LA', 'I', 'I;16', 'I;16B', 'I;16L', 'I;16N', 'F')


def as_grey(rows):
    """Rows of RGB bytes as grey ones, still three channels, so that the PNG shows the grey of the input."""
    return np.repeat(rows.mean(axis=2, keepdims=True).round().astype(np.uint8), 3, axis=2)


def input_notes(path, noise_level):
    """One-line notes on what the model cannot give back: transparency, and an input without the training noise."""
    with Image.open(path) as image:
        if image.mode in ('RGBA', 'LA', 'PA') or 'transparency' in image.info:
            print(f'note: {path}: transparent areas are denoised as white, and the output has no transparency')
        if noise_level is None:
            pixels = np.asarray(image.convert('RGB').reduce(max(1, min(image.size) // 256))).astype(np.int16)
            if np.abs(np.diff(pixels, axis=1)).mean() < 22:  # under the training noise about 50 of 255; clean, 10-20
                print(f'note: {path}: looks free of noise; the model expects the training noise (uniform in [-1, 1] '
                      'on pixels in [-1, 1]) and smooths a clean image; --add-noise adds it')


def tile_progress(path, tiles, every=3.0):
    """A progress line every few seconds, once an image has taken more than a few."""
    progress = cli.Progress(tiles, every=every, startup=False)

    def report(done):
        if progress.due(done):
            seconds, left = progress.update(done)
            print(f'{path}: {done}/{tiles} tiles, {seconds:.1f} s a tile, about {left} left', flush=True)
    return report


def denoise_full_size(job, path, name):
    """A fully convolutional model: the image at its own size, in tiles, in bounded memory."""
    image = read_image(path)
    width, height = image.size
    noise = None if job.noise_level is None else BandedNoise.seeded(job.noise_level, job.seed, width)
    denoiser = TiledDenoiser(job.model, image, noise=noise, device=job.device)
    denoiser.progress = tile_progress(path, denoiser.tiles())
    denoised_path = output_file(job.out, f'{name}-denoised.png')
    grey = is_grey(path)
    if height * width <= COMPARE_LIMIT:
        bands = [(as_grey(rows) if grey else rows, noisy)
                 for rows, noisy in denoiser.bands(keep_noisy=noise is not None)]
        output = np.concatenate([rows for rows, _ in bands])
        row = [np.asarray(image), output] if noise is None else \
            [np.asarray(image), np.concatenate([rows for _, rows in bands]), output]
        save_pixels(output_file(job.out, f'{name}-compare.png'), side_by_side(row))
        save_pixels(denoised_path, output)
    else:  # each band of output rows is compressed into the PNG as soon as it is denoised
        print(f'note: {path}: no {name}-compare.png for an image over {COMPARE_LIMIT / 1e6:.0f} megapixels')
        bands = (as_grey(rows) if grey else rows for rows, _ in denoiser.bands())
        save_png_bands(denoised_path, width, height, bands)
    image.close()
    return None if noise is None else (denoiser.psnr('noisy'), denoiser.psnr('output'))


def denoise_files(job, paths):
    """Denoise each image ({output name: path}); an unreadable one among several is skipped with a warning, as
    training skips it. Returns how many were skipped."""
    skipped = 0
    for name, path in paths.items():
        name = unused_stem(job.out, name, OWN_OUTPUTS)
        try:
            gains = (denoise_resized if job.image_size else denoise_full_size)(job, path, name)
        except cli.UsageError as error:
            if len(paths) == 1:  # the one image asked for: its own error, in one line
                raise
            print(f'warning: skipping {error}', file=sys.stderr)
            skipped += 1
            continue
        input_notes(path, job.noise_level)  # the file is an image: it was denoised
        gain = '' if gains is None else f' | PSNR noisy {gains[0]:.2f} dB -> denoised {gains[1]:.2f} dB'
        print(f'{path} -> {os.path.join(job.out, name)}-denoised.png{gain}')
    return skipped


def unused_stem(out, stem, endings):
    """`stem`, or stem-2, stem-3 ... so that no stem + ending is in --out yet: an earlier run's pictures stay."""
    candidate, count = stem, 1
    while any(os.path.exists(os.path.join(out, candidate + ending)) for ending in endings):
        count += 1
        candidate = f'{stem}-{count}'
    return candidate


def unused_name(out, name):
    stem, extension = os.path.splitext(name)
    return unused_stem(out, stem, [extension]) + extension


@torch.no_grad()
def generate(model, latents, source, out):
    """Decode latent vectors into one grid."""
    device = next(model.parameters()).device
    path = output_file(out, unused_name(out, 'generated.png'))
    save_grid(path, model.decode(latents.float().to(device)), images_per_row=8)
    print(f'{latents.size(0)} images from {source} latents -> {path}')


@torch.no_grad()
def interpolate(model, first, second, *, steps, image_size, out):
    device = next(model.parameters()).device
    ends = torch.stack([to_tensor(read_image(path, image_size)) for path in (first, second)]).to(device)
    start, end = model.encode(ends)
    weights = torch.linspace(0, 1, steps, device=device).unsqueeze(1)
    decoded = model.decode((1 - weights) * start + weights * end)
    path = output_file(out, unused_name(out, 'interpolation.png'))
    save_grid(path, torch.cat([ends[:1], decoded, ends[1:]]), images_per_row=steps + 2)
    print(f'{first} -> {second} in {steps} steps -> {path}')


def choose_weights(given, denoising):
    """(path, checkpoint, why it is the default or None): --checkpoint as given. Else, to denoise images, the
    shipped U-Net, which denoises images it never saw; to generate or interpolate, which need a
    latent code, your own finished run's model, else the shipped one of the assignment."""
    if given is not None:
        with cli.about('--checkpoint'):
            return given, load_checkpoint(given), None
    if denoising and os.path.exists(SHIPPED_DENOISER):
        return SHIPPED_DENOISER, load_checkpoint(SHIPPED_DENOISER), (
            "the default for your images: it denoises images it never saw, where the assignment's model turns them "
            'into blobs; --checkpoint FILE for another')
    if os.path.exists(DEFAULT_CHECKPOINT):
        with cli.about('--checkpoint'):
            checkpoint = load_checkpoint(DEFAULT_CHECKPOINT)
        total = total_iterations(checkpoint['config'], checkpoint['num_images'])
        if checkpoint['iteration'] >= total or not os.path.exists(SHIPPED_SPEC):
            return DEFAULT_CHECKPOINT, checkpoint, None
        print(f'note: {DEFAULT_CHECKPOINT} is an unfinished run ({checkpoint["iteration"]} of {total} iterations); '
              f'using the shipped model instead (--checkpoint {DEFAULT_CHECKPOINT} uses it)')
    if os.path.exists(SHIPPED_SPEC):
        return SHIPPED_SPEC, load_checkpoint(SHIPPED_SPEC), None
    raise cli.UsageError(f'no model: train one with `python asgn6.py` (it writes {DEFAULT_CHECKPOINT}) or give '
                         '--checkpoint FILE')


def run(args):
    device = cli.choose_device(args.device)
    args.checkpoint, checkpoint, why = choose_weights(args.checkpoint, denoising=bool(args.images))
    with cli.about('--checkpoint'):
        model = model_of(checkpoint, device, args.checkpoint)
    config = checkpoint['config']
    origin = f', trained by `{checkpoint["command"]}`' if checkpoint.get('command') else ''
    print(f'model: {args.checkpoint} ({config.model} after {checkpoint["iteration"]} iterations{origin})'
          + (f': {why}' if why else ''), flush=True)
    if args.self_ensemble and not args.images:
        raise cli.UsageError('--self-ensemble is for denoising IMAGE...: it does not apply to --generate or '
                             '--interpolate')
    if (args.generate is not None or args.interpolate is not None) and not isinstance(model, AutoEncoder):
        raise cli.UsageError(f'--checkpoint {args.checkpoint}: a {config.model} model has no latent code '
                             'to generate or interpolate from')
    with cli.about('--out'):
        check_can_create(args.out, is_folder=True)
    if args.generate is not None:
        draws = user_draws(args.seed)
        if args.latent_source == 'data':  # codes of noisy images, as the decoder saw them in training
            with cli.about('--data-dir'):
                images, _ = load_dataset(args.data_dir, config.image_size, on_progress=cli.decode_progress())
            latents = data_latents(model, images, config.noise_level, args.generate, draws)[1]
        else:
            latents = uniform_latents(args.generate, config.latent_size, draws)
        generate(model, latents, args.latent_source, args.out)
    elif args.interpolate is not None:
        interpolate(model, *args.interpolate, steps=args.steps, image_size=config.image_size, out=args.out)
    else:
        noise_level = (args.noise_level or config.noise_level) if args.add_noise else None
        image_size = config.image_size if isinstance(model, AutoEncoder) else None
        model = SelfEnsemble(model) if args.self_ensemble else model
        job = Denoising(model, image_size, noise_level, args.seed, device, args.out)
        paths = image_paths(args.images, args.out)
        skipped = denoise_files(job, paths)
        if skipped:
            raise cli.UsageError(f'skipped {skipped} of {len(paths)} images that could not be read (named above)')
    return 0


def main(argv=None):
    parser = build_parser()
    args = parser.parse_args(None if argv is None else [str(arg) for arg in argv])
    modes = [bool(args.images), args.generate is not None, args.interpolate is not None]
    if sum(modes) != 1:
        parser.error('give IMAGE... to denoise, or --generate N, or --interpolate A B (exactly one of them)')
    needs = {'--noise-level': (args.noise_level is not None, args.add_noise, '--add-noise'),
             '--latent-source': (args.latent_source != 'uniform', args.generate is not None, '--generate N'),
             '--data-dir': (args.data_dir != 'data', args.latent_source == 'data', '--latent-source data'),
             '--steps': (args.steps != 8, args.interpolate is not None, '--interpolate A B')}
    for flag, (given, needed, other) in needs.items():
        if given and not needed:
            parser.error(f'{flag} does nothing without {other}')
    return cli.report_errors('denoise.py', lambda: run(args))


if __name__ == '__main__':
    sys.exit(main())
