"""Time and peak memory of denoise.py on large images with a fully convolutional model (U-Net), and how
far its tiled output is from denoising the whole image at once.

    python asgn6.py --model unet --epochs 4 --output-dir unet --loss-file unet/loss.txt   # any U-Net checkpoint
    python -m benchmarks.bench_denoise --checkpoint unet/checkpoint.pt --sizes 4000 10000

For each size, a synthetic image (the embedded Pokemon tiled over the canvas) is written to a temporary
folder and denoised by `denoise.py IMAGE --checkpoint ...` in its own process; the table gives the wall
time and the peak resident memory of that process (what /usr/bin/time -v reports). Then, on an image
small enough to denoise whole (--compare-size), the PSNR of the tiled and of the whole-image output
against the clean image, with the same noise.
"""
import os
import subprocess
import sys
import tempfile
import time

import numpy as np
import torch
from PIL import Image

from dae import cli
from dae.denoising import load_model
from models import AutoEncoder
from dae.denoising import TILE, BandedNoise, TiledDenoiser, read_image, to_uint8
from dae.images import find_images, psnr, to_unit_range

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def synthetic_image(size, data_dir, seed=0):
    """size x size RGB: Pokemon from data_dir at random places on white, so the model sees real content."""
    rng = np.random.default_rng(seed)
    paths = find_images(data_dir)
    canvas = np.full((size, size, 3), 255, dtype=np.uint8)
    for top in range(0, size, 128):
        for left in range(0, size, 128):
            tile = np.asarray(read_image(paths[rng.integers(len(paths))]))[:size - top, :size - left]
            canvas[top:top + tile.shape[0], left:left + tile.shape[1]] = tile
    return canvas


def run_denoise(image_path, checkpoint, out, extra=()):
    """(wall seconds, peak resident memory in MiB, exit status) of one denoise.py process."""
    start = time.perf_counter()
    process = subprocess.Popen([sys.executable, os.path.join(ROOT, 'denoise.py'), image_path, '--checkpoint',
                                checkpoint, '--out', out, '--device', 'cpu', *extra], stdout=subprocess.DEVNULL)
    _, status, usage = os.wait4(process.pid, 0)
    process.returncode = os.waitstatus_to_exitcode(status)
    return time.perf_counter() - start, usage.ru_maxrss / 1024, process.returncode


@torch.no_grad()
def tiled_against_whole(checkpoint, size, data_dir, seed):
    """PSNR (dB) of the tiled and the whole-image output on one noisy image, and their largest pixel difference."""
    model, config = load_model(checkpoint, torch.device('cpu'))
    pixels = synthetic_image(size, data_dir, seed=1)
    noise = BandedNoise.seeded(config.noise_level, seed, size)
    denoiser = TiledDenoiser(model, pixels, noise=noise, device=torch.device('cpu'))
    tiled = np.concatenate([rows for rows, _ in denoiser.bands()])
    clean = to_unit_range(torch.from_numpy(pixels.copy()).permute(2, 0, 1))
    noisy = noise(clean, 0, 0)
    whole = model(noisy.unsqueeze(0))[0]
    whole_db = psnr(whole.double().unsqueeze(0), clean.double().unsqueeze(0))
    whole_pixels = to_uint8(whole).permute(1, 2, 0).numpy()
    return denoiser.psnr('output'), whole_db, int(np.abs(whole_pixels.astype(int) - tiled.astype(int)).max())


def main(argv=None):
    parser = cli.ArgumentParser('bench_denoise.py', __doc__)
    parser.add_argument('--checkpoint', required=True, help='a fully convolutional model: the shipped '
                        'weights/unet.pt, or the checkpoint of an asgn6.py --model unet or residual-unet run '
                        '(no default)')
    parser.add_argument('--sizes', type=cli.positive_int(), nargs='+', default=[4000, 10000], help='sides of the '
                        'square test images in pixels (default: 4000 10000)')
    parser.add_argument('--compare-size', type=cli.positive_int(), default=1500, help='side of the image denoised '
                        'both whole and in tiles (default: 1500)')
    parser.add_argument('--data-dir', default=os.path.join(ROOT, 'data'), help='images to tile the canvas with '
                        '(default: data)')
    parser.add_argument('--seed', type=int, default=4680, help='seeds the noise (default: 4680)')
    args = parser.parse_args(argv)
    return cli.report_errors('bench_denoise.py', lambda: run(args))


def run(args):
    model, _ = load_model(args.checkpoint, torch.device('cpu'))
    if isinstance(model, AutoEncoder):
        raise cli.UsageError(f'--checkpoint {args.checkpoint}: not a fully convolutional model (use --model unet)')
    print(f'torch {torch.__version__}, {torch.get_num_threads()} threads, {os.cpu_count()} cores; '
          f'tiles of {TILE} px with {model.tile_context} px of context')
    print('| image | megapixels | wall time | peak resident memory |\n|---|---|---|---|')
    with tempfile.TemporaryDirectory() as folder:
        for size in args.sizes:
            path = os.path.join(folder, f'big-{size}.png')
            Image.fromarray(synthetic_image(size, args.data_dir)).save(path)
            seconds, peak_mib, status = run_denoise(path, args.checkpoint, os.path.join(folder, 'out'))
            if status:
                raise cli.Failure(f'denoise.py exited with status {status} on a {size}x{size} image')
            print(f'| {size}x{size} | {size * size / 1e6:.0f} | {seconds:.0f} s | {peak_mib:.0f} MiB |', flush=True)
            os.unlink(path)
    tiled_db, whole_db, pixels = tiled_against_whole(args.checkpoint, args.compare_size, args.data_dir, args.seed)
    print(f'\n{args.compare_size}x{args.compare_size} with noise: tiled {tiled_db:.4f} dB, '
          f'whole image {whole_db:.4f} dB, '
          f'difference {abs(tiled_db - whole_db):.4f} dB; largest pixel difference {pixels}/255')
    return 0


if __name__ == '__main__':
    sys.exit(main())
