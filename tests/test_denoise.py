"""denoise.py with a checkpoint from a tiny CPU training run."""
import pytest
import torch
from PIL import Image

import asgn6
import denoise
from images import psnr
from run_state import load_checkpoint
from conftest import call_main, train_args, write_images


@pytest.fixture(scope='module')
def trained(tmp_path_factory):
    """(checkpoint path, data folder) of a 2-epoch run on 8 images."""
    root = tmp_path_factory.mktemp('trained')
    data = write_images(root / 'data' / 'x', 8)
    assert asgn6.main(train_args(root, root / 'data', '--epochs', 2, '--batch-size', 4, '--latent-size', 16)) == 0
    return root / 'out' / 'checkpoint.pt', data


def run(capsys, *argv):
    return call_main(denoise.main, argv, capsys)


def test_psnr_matches_a_hand_computed_value():
    # pixels in [-1, 1]: an error of 0.2 everywhere is MSE 0.04 over a peak-to-peak range of 2 -> 10 log10(4 / 0.04)
    assert psnr(torch.zeros(2, 3, 4, 4), torch.full((2, 3, 4, 4), 0.2)) == pytest.approx(20.0, abs=1e-4)


def test_denoise_an_image_with_added_noise(tmp_path, capsys, trained):
    checkpoint, data = trained
    status, out, err = run(capsys, data / 'img000.png', '--checkpoint', checkpoint, '--out', tmp_path, '--add-noise')
    assert status == 0, err
    assert 'PSNR noisy' in out and 'dB -> denoised' in out
    assert Image.open(tmp_path / 'img000-compare.png').size == (3 * 66 + 2, 68)  # clean, noisy, denoised
    assert Image.open(tmp_path / 'img000-denoised.png').size == (64, 64)  # one image: no grid padding


def test_a_folder_gives_its_images_and_a_bad_file_is_reported(tmp_path, capsys, trained):
    checkpoint, data = trained
    (tmp_path / 'broken.png').write_text('not an image')
    status, out, err = run(capsys, data, tmp_path / 'broken.png', '--checkpoint', checkpoint, '--out', tmp_path / 'o')
    assert status == 1
    assert 'broken.png: cannot decode' in err
    assert len(list((tmp_path / 'o').glob('*-denoised.png'))) == 8
    assert Image.open(tmp_path / 'o' / 'img003-compare.png').size == (2 * 66 + 2, 68)  # input, output


@pytest.mark.parametrize('source', ['uniform', 'data'])
def test_generate(tmp_path, capsys, trained, source):
    checkpoint, data = trained
    status, out, err = run(capsys, '--generate', 10, '--latent-source', source, '--data-dir', data.parent,
                           '--checkpoint', checkpoint, '--out', tmp_path)
    assert status == 0, err
    assert Image.open(tmp_path / 'generated.png').size == (8 * 66 + 2, 2 * 66 + 2)


def test_interpolate(tmp_path, capsys, trained):
    checkpoint, data = trained
    status, out, err = run(capsys, '--interpolate', data / 'img000.png', data / 'img001.png', '--steps', 4,
                           '--checkpoint', checkpoint, '--out', tmp_path)
    assert status == 0, err
    assert Image.open(tmp_path / 'interpolation.png').size == (6 * 66 + 2, 68)


def test_missing_or_incompatible_checkpoint_is_a_clear_error(tmp_path, capsys, trained):
    checkpoint, data = trained
    status, out, err = run(capsys, data / 'img000.png', '--checkpoint', tmp_path / 'nope.pt')
    assert status == 2 and 'no checkpoint there' in err
    state = load_checkpoint(checkpoint)
    state['args']['latent_size'] = 32  # weights of a 16-dimensional code under a 32-dimensional model
    torch.save(state, tmp_path / 'other.pt')
    status, out, err = run(capsys, data / 'img000.png', '--checkpoint', tmp_path / 'other.pt')
    assert status == 2 and 'not a checkpoint of this models.py' in err and 'Traceback' not in err


def test_exactly_one_mode_is_required(capsys, trained):
    status, out, err = run(capsys, '--checkpoint', trained[0])
    assert status == 2 and 'exactly one' in err
