"""Tiny synthetic image folders, made fresh in a temp dir for each test that asks."""
import os

import numpy as np
import pytest
from PIL import Image

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def write_images(folder, count, size=(64, 64), seed=0):
    """`count` PNGs of coloured rectangles on white: structured enough for the loss to fall."""
    rng = np.random.default_rng(seed)
    os.makedirs(folder, exist_ok=True)
    for i in range(count):
        pixels = np.full((size[1], size[0], 3), 255, dtype=np.uint8)
        x0, y0 = rng.integers(0, size[0] // 2), rng.integers(0, size[1] // 2)
        pixels[y0:y0 + size[1] // 2, x0:x0 + size[0] // 2] = rng.integers(0, 256, 3)
        Image.fromarray(pixels).save(os.path.join(folder, f'img{i:03d}.png'))
    return folder


@pytest.fixture(autouse=True)
def away_from_the_checkout(tmp_path_factory, monkeypatch):
    """Every test starts in an empty folder of its own: a relative path (the default loss.txt, samples/,
    denoised/) never reaches the checkout, whatever a user has run there."""
    monkeypatch.chdir(tmp_path_factory.mktemp('cwd'))


@pytest.fixture
def image_folder(tmp_path):
    """An ImageFolder-style tree: tmp/data/shapes/img000.png ... (12 images)."""
    write_images(tmp_path / 'data' / 'shapes', 12)
    return tmp_path / 'data'


def train_args(tmp_path, data_dir, *extra):
    """Command-line arguments for a quick CPU run whose outputs stay in tmp_path."""
    return ['--data-dir', str(data_dir), '--output-dir', str(tmp_path / 'out'),
            '--loss-file', str(tmp_path / 'out' / 'loss.txt'), '--device', 'cpu', *map(str, extra)]


def call_main(main, argv, capsys):
    """A script's exit status, whether main() returns it or argparse exits; plus what it printed."""
    try:
        status = main([str(a) for a in argv])
    except SystemExit as exit_:
        status = exit_.code
    out, err = capsys.readouterr()
    return status, out, err


def signal_at(monkeypatch, iteration, signum):
    """Send this process `signum` during training iteration `iteration` (counted from this call on), as its
    noise is drawn, as a Ctrl-C or a kill would land: a real signal, caught by the run's own handler."""
    import asgn6
    real_noise, calls = asgn6.add_noise, []

    def noise(*args):
        calls.append(1)
        if len(calls) == iteration:
            os.kill(os.getpid(), signum)
        return real_noise(*args)
    monkeypatch.setattr(asgn6, 'add_noise', noise)
