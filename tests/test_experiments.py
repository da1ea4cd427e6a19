"""The Q3(f) machinery: held-out split and logging, model variants, denoise.py on a U-Net (issue 6)."""
import csv

import pytest
import torch
from PIL import Image

import asgn6
import denoise
import models
from conftest import call_main, train_args, write_images


def test_held_out_split_is_seeded_disjoint_and_complete():
    train, held_out = asgn6.held_out_split(50, 0.1, seed=4680)
    assert held_out.numel() == 5 and train.numel() == 45
    assert set(train.tolist()).isdisjoint(held_out.tolist())
    assert sorted(train.tolist() + held_out.tolist()) == list(range(50))
    again_train, again_held_out = asgn6.held_out_split(50, 0.1, seed=4680)
    assert torch.equal(held_out, again_held_out) and torch.equal(train, again_train)
    assert not torch.equal(held_out, asgn6.held_out_split(50, 0.1, seed=1)[1])
    assert asgn6.held_out_split(50, 0.0, seed=4680)[1].numel() == 0


def test_val_split_logs_held_out_psnr_at_every_save(tmp_path, capsys):
    data = write_images(tmp_path / 'data' / 'x', 20)
    status, out, err = call_main(asgn6.main, train_args(tmp_path, data, '--epochs', 3, '--batch-size', 8,
                                                        '--latent-size', 16, '--val-split', 0.2,
                                                        '--save-interval', 2), capsys)
    assert status == 0, err
    assert 'holding out 4 of 20 images' in out
    rows = list(csv.DictReader(open(tmp_path / 'out' / 'validation.csv')))
    assert [int(row['iteration']) for row in rows] == [2, 4, 6]  # 16 training images, batch 8: 2 per epoch
    assert all(float(row['held_out_psnr_db']) > 0 for row in rows)
    assert len(set(row['noisy_psnr_db'] for row in rows)) == 1  # one fixed noise draw


@pytest.mark.parametrize('value', ['1', '-0.1', 'half'])
def test_val_split_outside_0_to_1_is_an_argparse_error(tmp_path, capsys, image_folder, value):
    status, out, err = call_main(asgn6.main, train_args(tmp_path, image_folder, '--val-split', value), capsys)
    assert status == 2 and '--val-split' in err


def test_val_split_that_leaves_too_few_training_images(tmp_path, capsys, image_folder):
    status, out, err = call_main(asgn6.main, train_args(tmp_path, image_folder, '--val-split', 0.95), capsys)
    assert status == 2 and 'need 2' in err


def test_variants_build_and_keep_the_image_size():
    for name in models.MODEL_NAMES:
        model = models.build(name, 16, 64).eval()
        assert model(torch.zeros(2, 3, 64, 64)).shape == (2, 3, 64, 64)
    assert models.UNet().eval()(torch.zeros(1, 3, 37, 91)).shape == (1, 3, 37, 91)
    with pytest.raises(ValueError):
        models.build('resnet')


def test_unet_with_mse_trains_and_denoises_images_at_their_own_size(tmp_path, capsys, image_folder):
    status, out, err = call_main(asgn6.main, train_args(tmp_path, image_folder, '--epochs', 1, '--batch-size', 4,
                                                        '--model', 'unet', '--loss', 'mse'), capsys)
    assert status == 0, err
    assert list((tmp_path / 'out').glob('novel-*.png')) == []  # no latent code, no novel images
    checkpoint = tmp_path / 'out' / 'checkpoint.pt'
    write_images(tmp_path / 'odd', 1, size=(37, 91))
    status, out, err = call_main(denoise.main, [tmp_path / 'odd' / 'img000.png', '--checkpoint', checkpoint,
                                                '--out', tmp_path / 'den'], capsys)
    assert status == 0, err
    assert Image.open(tmp_path / 'den' / 'img000-denoised.png').size == (37, 91)
    status, out, err = call_main(denoise.main, ['--generate', 4, '--checkpoint', checkpoint,
                                                '--out', tmp_path / 'gen'], capsys)
    assert status == 2 and 'no latent code' in err
    assert not (tmp_path / 'gen').exists()  # a refused run leaves no empty output folder behind
