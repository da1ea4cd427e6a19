"""The dataset is kept as bytes, decoded with a progress line, and gives the floats of the starter's
ToTensor + Normalize for every batch."""
import torch
from torchvision.transforms import functional as TF

from dae import images
from dae.cli import Progress, decode_progress
from dae.config import RunConfig
from dae.training import split_dataset
from conftest import write_images


def starter_floats(paths):
    """The floats the starter's transform gives each image (torchvision's ToTensor, then 2x - 1)."""
    return torch.stack([TF.to_tensor(images.load_image(path, 64)) * 2 - 1 for path in paths])


def test_the_uint8_store_gives_the_starters_floats_in_order_and_skips_a_bad_file(tmp_path, capsys):
    folder = write_images(tmp_path / 'x', 9, size=(80, 50))
    (tmp_path / 'x' / 'img004b.png').write_text('not an image')  # skipped in the middle, named, order kept
    pixels, paths = images.load_dataset(folder, 64)
    assert pixels.dtype == torch.uint8 and pixels.shape == (9, 3, 64, 64)
    assert 'img004b.png' not in ' '.join(paths) and 'skipping' in capsys.readouterr().err
    assert paths == sorted(paths)
    assert torch.equal(images.to_unit_range(pixels), starter_floats(paths))
    split = split_dataset(pixels, paths, RunConfig(seed=1, val_split=0.3), torch.device('cpu'))
    assert split.train.dtype == torch.uint8 and split.held_out.clean.dtype == torch.float32
    assert torch.equal(split.held_out.clean, starter_floats(split.held_out.paths))


def test_a_progress_line_is_due_only_after_its_interval_and_estimates_the_time_left_after_the_first():
    progress = Progress(total=10, every=0)
    assert progress.due(4)
    seconds, left = progress.update(4)
    assert seconds >= 0 and left == 'estimating'  # the first interval holds the start-up
    seconds, left = progress.update(6)
    assert left.count(':') == 2
    assert not Progress(total=10, every=60).due(4)  # the first line waits for its interval
    assert not Progress(total=10, every=0).due(10)  # nothing to say once done
    assert Progress(total=10).update(10)[1] == '0:00:00'  # a run whose only line is its last: nothing left
    assert Progress(total=10, startup=False).update(5)[1].count(':') == 2  # decoding: no start-up to wait out


def test_a_short_decode_prints_no_progress_line(tmp_path, capsys):
    write_images(tmp_path / 'few', 20)
    images.load_dataset(tmp_path / 'few', 64, on_progress=decode_progress())
    assert 'decoded' not in capsys.readouterr().out


def test_a_symlink_loop_or_a_second_way_in_reads_each_folder_once(tmp_path):
    import os
    write_images(tmp_path / 'looped' / 'sub', 2)
    os.symlink('..', tmp_path / 'looped' / 'sub' / 'up')  # a loop, which also leads above the folder
    os.symlink('sub', tmp_path / 'looped' / 'again')  # the same folder twice
    (tmp_path / 'elsewhere.png').write_bytes((tmp_path / 'looped' / 'sub' / 'img000.png').read_bytes())
    found = images.find_images(tmp_path / 'looped')
    assert len(found) == 2 and {os.path.basename(path) for path in found} == {'img000.png', 'img001.png'}
