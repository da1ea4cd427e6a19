"""The Q3(f) machinery: held-out split and logging, model variants, denoise.py on a U-Net, the experiments script."""
import csv
import hashlib
import importlib.util
import json
import os

import numpy as np
import pytest
import torch
from PIL import Image

import asgn6
import denoise
import models
from images import find_images
from training import Streams, held_out_split
from conftest import ROOT, call_main, train_args, write_images


def test_held_out_split_is_seeded_disjoint_and_complete():
    train, held_out = held_out_split(50, 0.1, Streams(4680))
    assert held_out.numel() == 5 and train.numel() == 45
    assert set(train.tolist()).isdisjoint(held_out.tolist())
    assert sorted(train.tolist() + held_out.tolist()) == list(range(50))
    again_train, again_held_out = held_out_split(50, 0.1, Streams(4680))
    assert torch.equal(held_out, again_held_out) and torch.equal(train, again_train)
    assert not torch.equal(held_out, held_out_split(50, 0.1, Streams(1))[1])
    assert held_out_split(50, 0.0, Streams(4680))[1].numel() == 0


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


def load_experiments():
    spec = importlib.util.spec_from_file_location('run_experiments', os.path.join(ROOT, 'experiments',
                                                                                  'run_experiments.py'))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_experiments_smoke_run_networks_and_filters_share_the_held_out_images(tmp_path, capsys):
    data = write_images(tmp_path / 'data' / 'x', 20)
    experiments = load_experiments()
    status, out, err = call_main(experiments.main, ['--data-dir', tmp_path / 'data', '--epochs', 1, '--out',
                                                    tmp_path / 'results', '--only', 'spec', '--filters', 'median 3x3'],
                                 capsys)
    assert status == 0, err
    with open(tmp_path / 'results' / 'results.json') as f:
        results = json.load(f)
    assert set(results) == {'machine', 'epochs', 'networks', 'classical'}
    [network] = results['networks']
    assert network['name'] == 'spec' and network['held_out_images'] == 2 and network['train_images'] == 18
    assert network['iterations'] == 1  # 18 images at batch 32: one batch per epoch
    for key in ('train_l1', 'train_psnr', 'held_out_l1', 'held_out_psnr', 'noisy_psnr', 'parameters', 'wall_seconds'):
        assert isinstance(network[key], (int, float)), key
    assert [row['name'] for row in results['classical']] == ['noisy input', 'median 3x3']
    assert all(row['held_out_set'] == network['held_out_set'] for row in results['classical'])
    assert results['classical'][0]['held_out_psnr'] == pytest.approx(network['noisy_psnr'])  # the same noisy draw
    # and that set is asgn6.py's own split of this folder with its seed
    paths = find_images(tmp_path / 'data')
    expected = [os.path.basename(paths[i]) for i in held_out_split(len(paths), 0.1, Streams(4680))[1].tolist()]
    assert network['held_out_set'] == hashlib.sha1('\n'.join(expected).encode()).hexdigest()[:12]
    assert (tmp_path / 'results' / 'results.md').read_text().count('\n| ') == 4  # header, spec, noisy input, median
    assert Image.open(tmp_path / 'results' / 'denoised.png').size[1] == 4 * 66 + 2  # clean, noisy, spec, filter


def test_numpy_filters_match_scipy():
    ndimage = pytest.importorskip('scipy.ndimage')
    experiments = load_experiments()
    image = np.random.default_rng(0).random((13, 17, 3))
    for sigma in (0.5, 1.0, 2.0):
        np.testing.assert_allclose(experiments.gaussian_blur(image, sigma),
                                   ndimage.gaussian_filter(image, sigma=(sigma, sigma, 0)), atol=1e-12)
    for size in (3, 5):
        np.testing.assert_array_equal(experiments.median_filter(image, size),
                                      ndimage.median_filter(image, size=(size, size, 1)))
