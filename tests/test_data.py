"""The dataset is kept as bytes, decoded in parallel with a progress line, and refused before decoding
when it cannot fit; every batch is the same floats as before."""
import pytest
import torch

import asgn6
import images
from conftest import call_main, train_args, write_images
from training import Streams, split_dataset


def float32_decode(paths):
    """The floats of the previous store: each image decoded to a float tensor, then stacked."""
    return torch.stack([images.to_tensor(images.load_image(path, 64)) for path in paths])


@pytest.mark.parametrize('parallel', [False, True])
def test_the_uint8_store_gives_the_floats_of_a_float32_decode_in_order(tmp_path, capsys, monkeypatch, parallel):
    folder = write_images(tmp_path / 'x', 9, size=(80, 50))
    (tmp_path / 'x' / 'img004b.png').write_text('not an image')  # skipped in the middle, named, order kept
    if parallel:
        monkeypatch.setattr(images, 'PARALLEL_FROM', 0)
    pixels, paths = images.load_dataset(folder, 64, workers=2 if parallel else 1)
    assert pixels.dtype == torch.uint8 and pixels.shape == (9, 3, 64, 64)
    assert 'img004b.png' not in ' '.join(paths) and 'skipping' in capsys.readouterr().err
    assert paths == sorted(paths)
    assert torch.equal(images.to_unit_range(pixels), float32_decode(paths))
    train, _, held_out = split_dataset(pixels, paths, val_split=0.3, noise_level=1.0, streams=Streams(1),
                                       device=torch.device('cpu'))
    assert train.dtype == torch.uint8 and held_out.clean.dtype == torch.float32
    assert torch.equal(held_out.clean, float32_decode(held_out.paths))


def test_a_dataset_too_large_for_the_memory_is_refused_before_decoding(tmp_path, capsys, monkeypatch, image_folder):
    monkeypatch.setattr(images, 'available_memory', lambda device: 100_000)  # 12 images need 147,456 bytes
    monkeypatch.setattr(images, 'decode_chunk', lambda job: pytest.fail('decoded anyway'))
    status, out, err = call_main(asgn6.main, train_args(tmp_path, image_folder, '--epochs', 1), capsys)
    assert status == 2 and 'Traceback' not in err
    assert '12 images of 64x64 need 0.00 GiB as bytes' in err and 'available' in err
    assert not (tmp_path / 'out').exists()


def test_slow_decoding_prints_count_speed_and_time_left(tmp_path, capsys):
    progress = images.DecodeProgress(total=10, every=0)
    progress(4)
    line = capsys.readouterr().out
    assert line.startswith('decoded 4/10 images | ') and 'images/s | ETA' in line
    quick = images.DecodeProgress(total=10)  # the default: silent unless decoding takes a couple of seconds
    quick(10)
    assert capsys.readouterr().out == ''
