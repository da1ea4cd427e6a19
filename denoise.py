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

import asgn6
import models


def build_parser():
    p = argparse.ArgumentParser(prog='denoise.py', description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('images', nargs='*', metavar='IMAGE', help='image files or folders of images to denoise')
    p.add_argument('--checkpoint', default=os.path.join('samples', asgn6.CHECKPOINT_NAME),
                   help='checkpoint written by asgn6.py (default: samples/checkpoint.pt)')
    p.add_argument('--out', default='denoised', help='folder for the output PNGs (default: denoised)')
    p.add_argument('--add-noise', action='store_true', help="add the training noise first and print PSNRs "
                   'against the clean input (default: denoise the image as given)')
    p.add_argument('--noise-level', type=asgn6.positive_float, default=None, help='noise half-width for '
                   "--add-noise (default: the checkpoint's training noise level)")
    p.add_argument('--generate', type=asgn6.positive_int(), metavar='N', help='decode N random latent vectors '
                   'into one grid (default: off)')
    p.add_argument('--latent-source', choices=['uniform', 'data'], default='uniform', help="for --generate: "
                   "uniform in [-1, 1] as the starter draws them, or a Gaussian fitted to the encoded training "
                   'images of --data-dir (default: uniform)')
    p.add_argument('--data-dir', default='data', help='training images, for --latent-source data (default: data)')
    p.add_argument('--interpolate', nargs=2, metavar=('A', 'B'), help='decode points on the straight line '
                   'between the latent codes of images A and B (default: off)')
    p.add_argument('--steps', type=asgn6.positive_int(2), default=8, help='points for --interpolate (default: 8)')
    p.add_argument('--seed', type=int, default=4680, help='seeds the noise and the random latents (default: 4680)')
    p.add_argument('--device', default='auto', choices=['auto', 'cpu', 'cuda', 'mps'],
                   help='auto picks cuda, then mps, then cpu (default: auto)')
    return p


def load_model(path, device):
    """The trained auto-encoder in eval mode, on `device`, whatever device it was trained on."""
    checkpoint = asgn6.load_checkpoint(path, flag='--checkpoint')
    try:
        saved = checkpoint['args']
        model = models.build(saved.get('model', 'spec'), saved['latent_size'], saved['image_size'])
        model.encoder.load_state_dict(checkpoint['encoder'])
        model.decoder.load_state_dict(checkpoint['decoder'])
    except (KeyError, TypeError, ValueError, RuntimeError) as error:
        first_line = str(error).strip().splitlines()[0]
        raise asgn6.UsageError(f'--checkpoint {path}: not a checkpoint of this models.py ({first_line})')
    return model.to(device).eval(), saved


def image_paths(names):
    """Files as given; folders give the images in them."""
    paths = []
    for name in names:
        paths += asgn6.find_images(name, what='IMAGE') if os.path.isdir(name) else [name]
    return paths


def read_image(path, image_size):
    """[-1, 1] tensor of one image, square of side image_size (None: at its own size)."""
    if not os.path.isfile(path):
        raise asgn6.UsageError(f'{path}: no such image file')
    try:
        return asgn6.to_tensor(asgn6.load_image(path, image_size))
    except (OSError, ValueError, SyntaxError) as error:
        raise asgn6.UsageError(f'{path}: cannot decode it as an image ({error})')


@torch.no_grad()
def denoise_files(model, saved, args, device):
    """Denoise each image; an unreadable one is reported and skipped. Returns how many failed."""
    generator = torch.Generator(device=device).manual_seed(args.seed)
    level = args.noise_level or saved.get('noise_level', 1.0)
    failed = 0
    for path in image_paths(args.images):
        try:
            size = None if not model.has_latent else saved['image_size']  # fully convolutional: any size
            clean = read_image(path, size).unsqueeze(0).to(device)
        except asgn6.UsageError as error:
            print(f'denoise.py: error: {error}', file=sys.stderr)
            failed += 1
            continue
        noisy = asgn6.add_noise(clean, level, generator) if args.add_noise else clean
        output = model(noisy)
        stem = os.path.join(args.out, os.path.splitext(os.path.basename(path))[0])
        row = [clean, noisy, output] if args.add_noise else [clean, output]
        asgn6.save_grid(f'{stem}-compare.png', torch.cat(row), images_per_row=len(row))
        asgn6.save_grid(f'{stem}-denoised.png', output, images_per_row=1)
        gain = (f' | PSNR noisy {asgn6.psnr(noisy, clean):.2f} dB -> denoised {asgn6.psnr(output, clean):.2f} dB'
                if args.add_noise else '')
        print(f'{path} -> {stem}-denoised.png{gain}')
    return failed


@torch.no_grad()
def data_gaussian(model, data_dir, image_size, device):
    """Mean and covariance of the encoder's codes of the training images: where real codes live."""
    images = asgn6.load_dataset(data_dir, image_size)
    codes = torch.cat([model.encode(batch.to(device)).cpu() for batch in images.split(256)]).double()
    mean = codes.mean(0)
    covariance = torch.cov(codes.T) + 1e-6 * torch.eye(codes.size(1), dtype=torch.float64)
    return torch.distributions.MultivariateNormal(mean, covariance)


@torch.no_grad()
def generate(model, saved, args, device):
    torch.manual_seed(args.seed)
    if args.latent_source == 'uniform':
        latents = 2 * torch.rand(args.generate, saved['latent_size']) - 1
    else:
        latents = data_gaussian(model, args.data_dir, saved['image_size'], device).sample((args.generate,))
        latents = latents.float().clamp(-1, 1)  # the encoder's Tanh never leaves [-1, 1]
    path = os.path.join(args.out, 'generated.png')
    asgn6.save_grid(path, model.decode(latents.to(device)), images_per_row=8)
    print(f'{args.generate} images from {args.latent_source} latents -> {path}')


@torch.no_grad()
def interpolate(model, saved, args, device):
    ends = torch.stack([read_image(path, saved['image_size']) for path in args.interpolate]).to(device)
    start, end = model.encode(ends)
    weights = torch.linspace(0, 1, args.steps, device=device).unsqueeze(1)
    decoded = model.decode((1 - weights) * start + weights * end)
    path = os.path.join(args.out, 'interpolation.png')
    asgn6.save_grid(path, torch.cat([ends[:1], decoded, ends[1:]]), images_per_row=args.steps + 2)
    print(f'{args.interpolate[0]} -> {args.interpolate[1]} in {args.steps} steps -> {path}')


def main(argv=None):
    parser = build_parser()
    args = parser.parse_args(argv)
    modes = [bool(args.images), args.generate is not None, args.interpolate is not None]
    if sum(modes) != 1:
        parser.error('give IMAGE... to denoise, or --generate N, or --interpolate A B (exactly one of them)')
    try:
        device = asgn6.choose_device(args.device)
        model, saved = load_model(args.checkpoint, device)
        if (args.generate is not None or args.interpolate is not None) and not model.has_latent:
            raise asgn6.UsageError(f'--checkpoint {args.checkpoint}: a {saved["model"]} model has no latent code '
                                   'to generate or interpolate from')
        asgn6.check_writable(args.out, '--out')
        if args.generate is not None:
            generate(model, saved, args, device)
        elif args.interpolate is not None:
            interpolate(model, saved, args, device)
        else:
            return 1 if denoise_files(model, saved, args, device) else 0
    except asgn6.UsageError as error:
        print(f'denoise.py: error: {error}', file=sys.stderr)
        return 2
    return 0


if __name__ == '__main__':
    sys.exit(main())
