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

import torch

import cli
from files import check_writable
from images import add_noise, find_images, load_dataset, psnr, read_image, save_grid
from run_state import CHECKPOINT_NAME, load_model
from training import Streams


def build_parser():
    p = argparse.ArgumentParser(prog='denoise.py', description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('images', nargs='*', metavar='IMAGE', help='image files or folders of images to denoise')
    p.add_argument('--checkpoint', default=os.path.join('samples', CHECKPOINT_NAME),
                   help='checkpoint written by asgn6.py (default: samples/checkpoint.pt)')
    p.add_argument('--out', default='denoised', help='folder for the output PNGs (default: denoised)')
    p.add_argument('--add-noise', action='store_true', help="add the training noise first and print PSNRs "
                   'against the clean input (default: denoise the image as given)')
    p.add_argument('--noise-level', type=cli.positive_float, default=None, help='noise half-width for '
                   "--add-noise (default: the checkpoint's training noise level)")
    p.add_argument('--generate', type=cli.positive_int(), metavar='N', help='decode N random latent vectors '
                   'into one grid (default: off)')
    p.add_argument('--latent-source', choices=['uniform', 'data'], default='uniform', help="for --generate: "
                   "uniform in [-1, 1] as the starter draws them, or a Gaussian fitted to the encoded training "
                   'images of --data-dir (default: uniform)')
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


@torch.no_grad()
def denoise_files(model, paths, *, image_size, noise_level, generator, out):
    """Denoise each image (after adding noise unless noise_level is None); an unreadable one is reported and
    skipped. Returns how many failed."""
    failed = 0
    for path in paths:
        try:
            clean = read_image(path, image_size).unsqueeze(0).to(generator.device)
        except cli.UsageError as error:
            print(f'denoise.py: error: {error}', file=sys.stderr)
            failed += 1
            continue
        noisy = clean if noise_level is None else add_noise(clean, noise_level, generator)
        output = model(noisy)
        stem = os.path.join(out, os.path.splitext(os.path.basename(path))[0])
        row = [clean, output] if noise_level is None else [clean, noisy, output]
        save_grid(f'{stem}-compare.png', torch.cat(row), images_per_row=len(row))
        save_grid(f'{stem}-denoised.png', output, images_per_row=1)
        gain = ('' if noise_level is None else
                f' | PSNR noisy {psnr(noisy, clean):.2f} dB -> denoised {psnr(output, clean):.2f} dB')
        print(f'{path} -> {stem}-denoised.png{gain}')
    return failed


@torch.no_grad()
def data_gaussian(model, data_dir, image_size, device):
    """Mean and covariance of the encoder's codes of the training images: where real codes live."""
    images, _ = load_dataset(data_dir, image_size)
    codes = torch.cat([model.encode(batch.to(device)).cpu() for batch in images.split(256)]).double()
    mean = codes.mean(0)
    covariance = torch.cov(codes.T) + 1e-6 * torch.eye(codes.size(1), dtype=torch.float64)
    return torch.distributions.MultivariateNormal(mean, covariance)


@torch.no_grad()
def generate(model, count, *, latent_size, source, data_dir, image_size, generator, out):
    """Decode `count` latent vectors: uniform as the starter draws them, or from the data's Gaussian."""
    device = next(model.parameters()).device
    if source == 'uniform':
        latents = 2 * torch.rand(count, latent_size, generator=generator) - 1
    else:
        gaussian = data_gaussian(model, data_dir, image_size, device)
        unit = torch.empty(count, latent_size, dtype=torch.float64).normal_(generator=generator)
        latents = gaussian.loc + (gaussian.scale_tril @ unit.unsqueeze(-1)).squeeze(-1)
        latents = latents.float().clamp(-1, 1)  # the encoder's Tanh never leaves [-1, 1]
    path = os.path.join(out, 'generated.png')
    save_grid(path, model.decode(latents.to(device)), images_per_row=8)
    print(f'{count} images from {source} latents -> {path}')


@torch.no_grad()
def interpolate(model, first, second, *, steps, image_size, out):
    device = next(model.parameters()).device
    ends = torch.stack([read_image(path, image_size) for path in (first, second)]).to(device)
    start, end = model.encode(ends)
    weights = torch.linspace(0, 1, steps, device=device).unsqueeze(1)
    decoded = model.decode((1 - weights) * start + weights * end)
    path = os.path.join(out, 'interpolation.png')
    save_grid(path, torch.cat([ends[:1], decoded, ends[1:]]), images_per_row=steps + 2)
    print(f'{first} -> {second} in {steps} steps -> {path}')


def run(args):
    device = cli.choose_device(args.device)
    model, saved = load_model(args.checkpoint, device)
    if (args.generate is not None or args.interpolate is not None) and not model.has_latent:
        raise cli.UsageError(f'--checkpoint {args.checkpoint}: a {saved["model"]} model has no latent code '
                             'to generate or interpolate from')
    check_writable(args.out, '--out')
    streams = Streams(args.seed)
    if args.generate is not None:
        generate(model, args.generate, latent_size=saved['latent_size'], source=args.latent_source,
                 data_dir=args.data_dir, image_size=saved['image_size'], generator=streams.user_draws(),
                 out=args.out)
    elif args.interpolate is not None:
        interpolate(model, *args.interpolate, steps=args.steps, image_size=saved['image_size'], out=args.out)
    else:
        noise_level = (args.noise_level or saved.get('noise_level', 1.0)) if args.add_noise else None
        size = saved['image_size'] if model.has_latent else None  # fully convolutional: any size
        failed = denoise_files(model, image_paths(args.images), image_size=size, noise_level=noise_level,
                               generator=streams.user_draws(device), out=args.out)
        return cli.EXIT_FAILURE if failed else 0
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
