# COMP4680/8650 Assignment 6 -- Name: ____________________  Student ID: ____________
"""Use a model trained by asgn6.py: denoise your own images, generate new ones, interpolate between two.

    python denoise.py my_pokemon.png --add-noise          # noise it, denoise it, print the PSNR gain
    python denoise.py photos/                             # denoise every image in a folder, as given
    python denoise.py --generate 32 --latent-source data  # 32 novel images from the data's latent codes
    python denoise.py --interpolate a.png b.png           # a row decoded between two images' codes

Images are read as for training: transparency on white, short side resized and centre-cropped to
the model's 64x64 (the assignment's decoder makes 64x64 images and no other size).  A fully
convolutional model (asgn6.py --model unet) denoises every image at its own size instead, and has no
latent code to generate or interpolate from.  Outputs go to
--out: NAME-denoised.png and NAME-compare.png (input, noisy input if any, output), generated.png,
interpolation.png.
"""
import argparse
import os
import sys
import time

import numpy as np
import torch

import cli
import models
from files import check_can_create, make_folder
from images import (TILE, BandedNoise, TiledDenoiser, add_noise, find_images, load_dataset, psnr, read_image,
                    read_rgb, return_freed_memory, save_grid, save_pixels, save_png_bands, side_by_side, tile_spans)
from run_state import CHECKPOINT_NAME, load_checkpoint, model_of
from training import Streams, fitted_gaussian, noisy_codes, sample_clamped

COMPARE_LIMIT = 25_000_000  # pixels: above this NAME-compare.png (three copies side by side) is left out
DEFAULT_CHECKPOINT = os.path.join('samples', CHECKPOINT_NAME)  # where `python asgn6.py` leaves its model
SHIPPED_SPEC = os.path.join(os.path.dirname(os.path.abspath(__file__)), 'weights', 'spec.pt')


def build_parser():
    p = argparse.ArgumentParser(prog='denoise.py', description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('images', nargs='*', metavar='IMAGE', help='image files or folders of images to denoise')
    p.add_argument('--checkpoint', help='checkpoint written by asgn6.py, or shipped weights such as '
                   f'weights/residual-unet.pt (default: {DEFAULT_CHECKPOINT} if a run has written it, else the '
                   'shipped weights/spec.pt)')
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


def image_paths(names):
    """Files as given; folders give the images in them."""
    paths = []
    for name in names:
        paths += find_images(name, what='IMAGE') if os.path.isdir(name) else [name]
    return paths


def output_file(out, name):
    """A path in --out, made on the first write, so that a refused run leaves no empty folder behind."""
    make_folder(out, '--out')
    return os.path.join(out, name)


def stem_of(path):
    return os.path.splitext(os.path.basename(path))[0]


@torch.no_grad()
def denoise_resized(model, path, *, image_size, noise_level, generator, out):
    """The assignment's model: the image resized and cropped to its 64 x 64, noised if asked, denoised."""
    clean = read_image(path, image_size).unsqueeze(0).to(generator.device)
    noisy = clean if noise_level is None else add_noise(clean, noise_level, generator)
    output = model(noisy)
    row = [clean, output] if noise_level is None else [clean, noisy, output]
    save_grid(output_file(out, f'{stem_of(path)}-compare.png'), torch.cat(row), images_per_row=len(row))
    save_grid(output_file(out, f'{stem_of(path)}-denoised.png'), output, images_per_row=1)
    return None if noise_level is None else (psnr(noisy, clean), psnr(output, clean))


class TileProgress:
    """A progress line every few seconds, once an image has taken more than a few."""

    def __init__(self, path, total, first_after=3.0, every=5.0):
        self.path, self.total, self.every = path, total, every
        self.start = time.perf_counter()
        self.next_report = self.start + first_after

    def __call__(self, done):
        now = time.perf_counter()
        if now >= self.next_report and done < self.total:
            elapsed = now - self.start
            print(f'{self.path}: {done}/{self.total} tiles, {elapsed:.0f} s, about '
                  f'{elapsed / done * (self.total - done):.0f} s left', flush=True)
            self.next_report = now + self.every


def denoise_full_size(model, path, *, noise_level, streams, device, out):
    """A fully convolutional model: the image at its own size, in tiles, in bounded memory."""
    return_freed_memory()
    image = read_rgb(path)
    width, height = image.size
    noise = None if noise_level is None else BandedNoise(noise_level, streams.noise_band, width)
    margin = model.tile_context
    progress = TileProgress(path, len(tile_spans(height, TILE, margin)) * len(tile_spans(width, TILE, margin)))
    denoiser = TiledDenoiser(model, image, noise=noise, device=device, progress=progress)
    denoised_path = output_file(out, f'{stem_of(path)}-denoised.png')
    if height * width <= COMPARE_LIMIT:
        bands = list(denoiser.bands(keep_noisy=noise is not None))
        output = np.concatenate([rows for rows, _ in bands])
        row = [np.asarray(image), output] if noise is None else \
            [np.asarray(image), np.concatenate([rows for _, rows in bands]), output]
        save_pixels(output_file(out, f'{stem_of(path)}-compare.png'), side_by_side(row))
        save_pixels(denoised_path, output)
    else:  # each band of output rows is compressed into the PNG as soon as it is denoised
        print(f'note: {path}: no {stem_of(path)}-compare.png for an image over {COMPARE_LIMIT / 1e6:.0f} megapixels')
        save_png_bands(denoised_path, width, height, (rows for rows, _ in denoiser.bands()))
    image.close()
    return None if noise is None else (denoiser.psnr('noisy'), denoiser.psnr('output'))


def denoise_files(model, paths, *, image_size, noise_level, streams, device, out):
    """Denoise each image (after adding noise unless noise_level is None); an unreadable one is reported and
    skipped. Returns how many were unreadable."""
    failed = 0
    for path in paths:
        try:
            if model.has_latent:
                gains = denoise_resized(model, path, image_size=image_size, noise_level=noise_level,
                                        generator=streams.user_draws(device), out=out)
            else:
                gains = denoise_full_size(model, path, noise_level=noise_level, streams=streams, device=device,
                                          out=out)
        except cli.UsageError as error:
            print(f'denoise.py: error: {error}', file=sys.stderr)
            failed += 1
            continue
        gain = '' if gains is None else f' | PSNR noisy {gains[0]:.2f} dB -> denoised {gains[1]:.2f} dB'
        print(f'{path} -> {os.path.join(out, stem_of(path))}-denoised.png{gain}')
    return failed


@torch.no_grad()
def generate(model, count, *, latent_size, gaussian, generator, out):
    """Decode `count` latent vectors: uniform as the starter draws them, or from `gaussian` (fitted to codes)."""
    device = next(model.parameters()).device
    if gaussian is None:
        latents = 2 * torch.rand(count, latent_size, generator=generator) - 1
    else:
        latents = sample_clamped(gaussian, count, generator).float()
    path = os.path.join(out, 'generated.png')
    save_grid(output_file(out, 'generated.png'), model.decode(latents.to(device)), images_per_row=8)
    print(f'{count} images from {"uniform" if gaussian is None else "data"} latents -> {path}')


@torch.no_grad()
def interpolate(model, first, second, *, steps, image_size, out):
    device = next(model.parameters()).device
    ends = torch.stack([read_image(path, image_size) for path in (first, second)]).to(device)
    start, end = model.encode(ends)
    weights = torch.linspace(0, 1, steps, device=device).unsqueeze(1)
    decoded = model.decode((1 - weights) * start + weights * end)
    path = os.path.join(out, 'interpolation.png')
    save_grid(output_file(out, 'interpolation.png'), torch.cat([ends[:1], decoded, ends[1:]]), images_per_row=steps + 2)
    print(f'{first} -> {second} in {steps} steps -> {path}')


def choose_weights(checkpoint):
    """--checkpoint as given; else your own run's model; else the shipped one, so denoising works before training."""
    if checkpoint is not None:
        return checkpoint
    if os.path.exists(DEFAULT_CHECKPOINT):
        return DEFAULT_CHECKPOINT
    if os.path.exists(SHIPPED_SPEC):
        return SHIPPED_SPEC
    raise cli.UsageError(f'no model: train one with `python asgn6.py` (it writes {DEFAULT_CHECKPOINT}) or give '
                         '--checkpoint FILE')


def run(args):
    device = cli.choose_device(args.device)
    args.checkpoint = choose_weights(args.checkpoint)
    checkpoint = load_checkpoint(args.checkpoint, '--checkpoint')
    model, saved = model_of(checkpoint, device, args.checkpoint)
    origin = f', trained by `{checkpoint["command"]}`' if checkpoint.get('command') else ''
    print(f'model: {args.checkpoint} ({saved.get("model", "spec")} after {checkpoint.get("iteration", "?")} '
          f'iterations{origin})', flush=True)
    if args.self_ensemble and not args.images:
        raise cli.UsageError('--self-ensemble is for denoising IMAGE...: it does not apply to --generate or '
                             '--interpolate')
    if (args.generate is not None or args.interpolate is not None) and not model.has_latent:
        raise cli.UsageError(f'--checkpoint {args.checkpoint}: a {saved["model"]} model has no latent code '
                             'to generate or interpolate from')
    check_can_create(args.out, '--out', is_folder=True)
    streams = Streams(args.seed)
    if args.generate is not None:
        draws, gaussian = streams.user_draws(), None
        if args.latent_source == 'data':  # codes of noisy images, as the decoder saw them in training
            images, _ = load_dataset(args.data_dir, saved['image_size'])
            gaussian = fitted_gaussian(noisy_codes(model, images, saved.get('noise_level', 1.0), draws))
        generate(model, args.generate, latent_size=saved['latent_size'], gaussian=gaussian, generator=draws,
                 out=args.out)
    elif args.interpolate is not None:
        interpolate(model, *args.interpolate, steps=args.steps, image_size=saved['image_size'], out=args.out)
    else:
        noise_level = (args.noise_level or saved.get('noise_level', 1.0)) if args.add_noise else None
        model = models.SelfEnsemble(model) if args.self_ensemble else model
        failed = denoise_files(model, image_paths(args.images), image_size=saved['image_size'],
                               noise_level=noise_level, streams=streams, device=device, out=args.out)
        return cli.EXIT_USAGE if failed else 0
    return 0


def main(argv=None):
    parser = build_parser()
    args = parser.parse_args(None if argv is None else [str(arg) for arg in argv])
    modes = [bool(args.images), args.generate is not None, args.interpolate is not None]
    if sum(modes) != 1:
        parser.error('give IMAGE... to denoise, or --generate N, or --interpolate A B (exactly one of them)')
    return cli.report_errors('denoise.py', lambda: run(args))


if __name__ == '__main__':
    sys.exit(main())
