"""denoise.py with a checkpoint from a tiny CPU training run."""
import dataclasses
import re

import numpy as np
import pytest
import torch
from PIL import Image

import asgn6
import denoise
from dae import variants
from dae.checkpoint import load_checkpoint
from dae.denoising import load_model
from report.make_figures import save_weights
from dae.denoising import BandedNoise, TiledDenoiser, read_image, to_tensor, to_uint8
from dae.images import add_noise, psnr
from dae.latents import fitted_gaussian, noisy_codes, user_draws
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


def test_the_self_ensemble_changes_the_output_of_the_same_noisy_input_and_only_denoises(tmp_path, capsys, trained):
    checkpoint, data = trained
    psnrs = {}
    for name, extra in (('plain', []), ('ensemble', ['--self-ensemble'])):
        status, out, err = run(capsys, data / 'img000.png', '--checkpoint', checkpoint, '--out', tmp_path / name,
                               '--add-noise', *extra)
        assert status == 0, err
        psnrs[name] = [float(value) for value in re.findall(r'([0-9.]+) dB', out)]
    assert psnrs['plain'][0] == psnrs['ensemble'][0]  # the same noisy input
    outputs = [np.asarray(Image.open(tmp_path / name / 'img000-denoised.png'), dtype=int) for name in psnrs]
    assert np.abs(outputs[0] - outputs[1]).max() > 0  # averaged over eight views, not one
    status, _, err = run(capsys, '--generate', 4, '--self-ensemble', '--checkpoint', checkpoint,
                         '--out', tmp_path / 'g')
    assert status == 2 and '--self-ensemble is for denoising' in err and not (tmp_path / 'g').exists()


def test_a_folder_gives_its_images_and_a_bad_file_is_reported(tmp_path, capsys, trained):
    checkpoint, data = trained
    (tmp_path / 'broken.png').write_text('not an image')
    status, out, err = run(capsys, data, tmp_path / 'broken.png', '--checkpoint', checkpoint, '--out', tmp_path / 'o')
    assert status == 2  # bad input, after the good images are done
    assert 'warning: skipping ' in err and 'broken.png: cannot decode' in err  # as training words it
    assert err.splitlines()[-1] == 'denoise.py: error: skipped 1 of 9 images that could not be read (named above)'
    assert len(list((tmp_path / 'o').glob('*-denoised.png'))) == 8
    assert Image.open(tmp_path / 'o' / 'img003-compare.png').size == (2 * 66 + 2, 68)  # input, output


@pytest.mark.parametrize('source', ['uniform', 'data'])
def test_generate(tmp_path, capsys, trained, source):
    checkpoint, data = trained
    data_dir = ['--data-dir', data.parent] if source == 'data' else []
    status, out, err = run(capsys, '--generate', 10, '--latent-source', source, *data_dir,
                           '--checkpoint', checkpoint, '--out', tmp_path)
    assert status == 0, err
    assert Image.open(tmp_path / 'generated.png').size == (8 * 66 + 2, 2 * 66 + 2)


def test_latent_source_data_fits_the_codes_the_decoder_was_trained_on(trained):
    from dae.images import load_dataset, to_unit_range
    checkpoint, data = trained
    model, settings = load_model(checkpoint, torch.device('cpu'))
    images, _ = load_dataset(data.parent, 64)
    with torch.no_grad():
        clean = model.encode(to_unit_range(images)).double()
    noisy = noisy_codes(model, images, 1.0, user_draws(1))
    assert not torch.allclose(noisy, clean, atol=1e-3)  # codes of noisy images, not of clean ones
    assert torch.allclose(noisy_codes(model, images, 0.0, user_draws(1)), clean)  # the same encoder path
    assert torch.allclose(noisy, noisy_codes(model, images, 1.0, user_draws(1)))  # one seeded noise draw
    assert torch.allclose(fitted_gaussian(noisy).loc, noisy.mean(0))


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
    config = state['config']  # weights of a 16-dimensional code under a 32-dimensional model
    other = dataclasses.replace(config, latent_size=32)
    state['config'] = dataclasses.asdict(other)
    torch.save(state, tmp_path / 'other.pt')
    status, out, err = run(capsys, data / 'img000.png', '--checkpoint', tmp_path / 'other.pt')
    assert status == 2 and 'not a checkpoint of this models.py' in err and 'Traceback' not in err


def test_exactly_one_mode_is_required(capsys, trained):
    status, out, err = run(capsys, '--checkpoint', trained[0])
    assert status == 2 and 'exactly one' in err


def test_a_file_that_is_not_a_checkpoint_is_one_line_with_no_unsafe_advice(tmp_path, capsys, trained):
    checkpoint, data = trained
    status, out, err = run(capsys, data / 'img000.png', '--checkpoint', data / 'img001.png', '--out', tmp_path / 'd')
    assert status == 2 and len(err.strip().splitlines()) == 1
    assert 'not a checkpoint written by asgn6.py' in err and 'weights_only' not in err
    assert not (tmp_path / 'd').exists()


def test_an_unreadable_or_oversized_image_leaves_no_output_folder(tmp_path, capsys, trained, monkeypatch):
    checkpoint, data = trained
    (tmp_path / 'junk.png').write_text('not an image')
    status, out, err = run(capsys, tmp_path / 'junk.png', '--checkpoint', checkpoint, '--out', tmp_path / 'd')
    assert status == 2 and 'junk.png: cannot decode' in err and 'Traceback' not in err
    assert not (tmp_path / 'd').exists()
    monkeypatch.setattr(Image, 'MAX_IMAGE_PIXELS', 1000)  # the same decode path and message as training
    status, out, err = run(capsys, data / 'img000.png', '--checkpoint', checkpoint, '--out', tmp_path / 'd')
    assert status == 2 and len(err.strip().splitlines()) == 1
    assert f'{data / "img000.png"}: too large (0 megapixels, over the limit of 0 megapixels' in err
    assert not (tmp_path / 'd').exists()


class RecordingUNet(torch.nn.Module):
    """An untrained U-Net in eval mode that records the size of every input it is given."""

    def __init__(self, name):
        super().__init__()
        torch.manual_seed(0)
        self.unet, self.sizes = variants.build(name, 128, 64).eval(), []
        self.tile_context = self.unet.tile_context
        for module in self.unet.modules():  # running statistics that are not the identity, as after training
            if isinstance(module, torch.nn.BatchNorm2d):
                module.running_mean.uniform_(-0.2, 0.2)
                module.running_var.uniform_(0.5, 1.5)

    def forward(self, x):
        self.sizes.append(tuple(x.shape[-2:]))
        return self.unet(x)


@pytest.mark.parametrize('name', ['unet', 'residual-unet'])
def test_tiled_denoising_equals_the_whole_image_and_bounds_the_tile_size(capsys, name):
    model = RecordingUNet(name)
    pixels = np.random.default_rng(0).integers(0, 256, (150, 203, 3), dtype=np.uint8)
    whole = model(torch.from_numpy(pixels).permute(2, 0, 1).float().unsqueeze(0) / 255 * 2 - 1)
    model.sizes.clear()
    margin = model.unet.tile_context
    denoiser = TiledDenoiser(model, pixels, device=torch.device('cpu'))
    denoiser.tile = 48
    denoiser.progress = denoise.tile_progress('x.png', denoiser.tiles(), every=0)  # a line for every tile
    tiled = np.concatenate([rows for rows, _ in denoiser.bands()])
    assert len(model.sizes) == 4 * 5 and max(h * w for h, w in model.sizes) <= (48 + 2 * margin) ** 2
    whole = to_uint8(whole[0]).permute(1, 2, 0).numpy()
    # a margin short of the receptive field changes pixels near every seam (at 24 px, 4 values here for the
    # residual U-Net); float rounding may flip a value or two by 1
    assert np.abs(tiled.astype(int) - whole).max() <= 1 and (tiled != whole).sum() <= 2
    assert 'x.png: 1/20 tiles' in capsys.readouterr().out  # the progress line of a slow image


def test_tiled_noise_is_the_same_whichever_tile_draws_it():
    noise = BandedNoise(1.0, lambda band: torch.Generator().manual_seed(band), width=203)
    clean = torch.zeros(3, 150, 203)
    whole = noise(clean, 0, 0)
    part = noise(clean[:, 70:140, 30:100], 70, 30)
    assert torch.equal(part, whole[:, 70:140, 30:100])
    assert -1 <= whole.min() < -0.99 and 0.99 < whole.max() <= 1 and 0.45 < whole.abs().mean() < 0.55  # uniform


@pytest.mark.slow
def test_a_unet_denoises_a_large_image_with_added_noise_in_tiles(tmp_path, capsys, monkeypatch):
    root = tmp_path / 'unet'
    write_images(root / 'data' / 'x', 8)
    assert asgn6.main(train_args(root, root / 'data', '--epochs', 1, '--batch-size', 4, '--model', 'unet')) == 0
    capsys.readouterr()
    write_images(tmp_path / 'big', 1, size=(700, 530))
    monkeypatch.setattr(denoise, 'COMPARE_LIMIT', 100_000)  # this image counts as large: no compare image
    status, out, err = run(capsys, tmp_path / 'big' / 'img000.png', '--checkpoint', root / 'out' / 'checkpoint.pt',
                           '--out', tmp_path / 'd', '--add-noise')
    assert status == 0, err
    assert Image.open(tmp_path / 'd' / 'img000-denoised.png').size == (700, 530)
    assert not (tmp_path / 'd' / 'img000-compare.png').exists() and 'no img000-compare.png' in out
    assert 'PSNR noisy' in out
    monkeypatch.setattr(denoise, 'COMPARE_LIMIT', 10 ** 9)  # the same image held whole: the same output
    status, again, err = run(capsys, tmp_path / 'big' / 'img000.png', '--checkpoint', root / 'out' / 'checkpoint.pt',
                             '--out', tmp_path / 'e', '--add-noise')
    assert status == 0 and again.strip().split('|')[1:] == out.strip().splitlines()[-1].split('|')[1:]  # same PSNRs
    assert np.array_equal(np.asarray(Image.open(tmp_path / 'd' / 'img000-denoised.png')),
                          np.asarray(Image.open(tmp_path / 'e' / 'img000-denoised.png')))
    assert Image.open(tmp_path / 'e' / 'img000-compare.png').size == (3 * 702 + 2, 534)


def test_shipped_weights_are_half_size_give_the_same_images_and_are_used_before_any_training(
        tmp_path, capsys, trained, monkeypatch):
    checkpoint_path, data = trained
    checkpoint = load_checkpoint(checkpoint_path)
    weights = tmp_path / 'weights' / 'spec.pt'
    weights.parent.mkdir()
    save_weights(weights, checkpoint, command='python asgn6.py --epochs 2')
    full, _ = load_model(checkpoint_path, torch.device('cpu'))
    half, config = load_model(weights, torch.device('cpu'))
    assert config.latent_size == 16 and weights.stat().st_size < 0.3 * checkpoint_path.stat().st_size
    clean = to_tensor(read_image(data / 'img000.png', 64)).unsqueeze(0)
    noisy = add_noise(clean, 1.0, torch.Generator().manual_seed(0))
    with torch.no_grad():
        assert abs(psnr(half(noisy), clean) - psnr(full(noisy), clean)) < 0.01
    # a fresh clone: no samples/checkpoint.pt, so denoise.py takes the shipped weights and says so
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(denoise, 'SHIPPED_SPEC', str(weights))
    status, out, err = run(capsys, '--generate', 4, '--out', tmp_path / 'd')
    assert status == 0, err
    assert f'model: {weights} (spec after 4 iterations, trained by `python asgn6.py --epochs 2`)' in out
    assert (tmp_path / 'd' / 'generated.png').exists()
    # a run of your own comes first
    (tmp_path / 'samples').mkdir()
    (tmp_path / 'samples' / 'checkpoint.pt').write_bytes(checkpoint_path.read_bytes())
    status, out, err = run(capsys, '--generate', 4, '--out', tmp_path / 'g')
    assert status == 0 and 'model: samples/checkpoint.pt (spec after 4 iterations)' in out
    # and with neither, one line says how to get a model
    monkeypatch.setattr(denoise, 'SHIPPED_SPEC', str(tmp_path / 'nothing.pt'))
    (tmp_path / 'samples' / 'checkpoint.pt').unlink()
    status, out, err = run(capsys, '--generate', 4, '--out', tmp_path / 'h')
    assert status == 2 and 'no model: train one with `python asgn6.py`' in err and len(err.splitlines()) == 1


def test_your_images_are_denoised_by_the_shipped_denoiser_and_novel_images_come_from_your_run(
        tmp_path, capsys, trained, monkeypatch):
    checkpoint_path, data = trained
    assert asgn6.main(train_args(tmp_path / 'r', data.parent, '--epochs', 1, '--batch-size', 4,
                                 '--model', 'residual-unet')) == 0
    denoiser = tmp_path / 'residual-unet.pt'
    save_weights(denoiser, load_checkpoint(tmp_path / 'r' / 'out' / 'checkpoint.pt'), command='python asgn6.py')
    capsys.readouterr()
    monkeypatch.setattr(denoise, 'SHIPPED_DENOISER', str(denoiser))
    monkeypatch.chdir(tmp_path)
    (tmp_path / 'samples').mkdir()
    (tmp_path / 'samples' / 'checkpoint.pt').write_bytes(checkpoint_path.read_bytes())  # a finished run of yours
    status, out, err = run(capsys, data / 'img000.png', '--out', tmp_path / 'd')
    assert status == 0, err
    first = out.splitlines()[0]
    assert first.startswith(f'model: {denoiser} (residual-unet after 2 iterations') and 'images it never saw' in first
    status, out, err = run(capsys, '--generate', 4, '--out', tmp_path / 'd')
    assert status == 0 and out.startswith('model: samples/checkpoint.pt (spec after 4 iterations)')


def test_a_second_generate_keeps_the_first_picture(tmp_path, capsys, trained):
    for _ in range(2):
        status, out, err = run(capsys, '--generate', 4, '--checkpoint', trained[0], '--out', tmp_path)
        assert status == 0, err
    assert sorted(path.name for path in tmp_path.iterdir()) == ['generated-2.png', 'generated.png']
    assert out.strip().endswith(str(tmp_path / 'generated-2.png'))


def test_shipped_weights_cannot_be_resumed(tmp_path, capsys, trained):
    checkpoint_path, data = trained
    save_weights(tmp_path / 'w.pt', load_checkpoint(checkpoint_path), command='python asgn6.py')
    status, out, err = call_main(asgn6.main, train_args(tmp_path, data.parent, '--resume', tmp_path / 'w.pt'), capsys)
    assert status == 2 and 'holds a model\'s weights only' in err and len(err.strip().splitlines()) == 1


def test_an_unfinished_run_is_not_the_default_model(tmp_path, capsys, trained, monkeypatch):
    checkpoint_path, data = trained
    weights = tmp_path / 'spec.pt'
    save_weights(weights, load_checkpoint(checkpoint_path), command='python asgn6.py')
    monkeypatch.setattr(denoise, 'SHIPPED_SPEC', str(weights))
    monkeypatch.chdir(tmp_path)
    (tmp_path / 'samples').mkdir()
    unfinished = torch.load(checkpoint_path, weights_only=True)
    unfinished['config']['epochs'] = 5  # stopped at iteration 4 of 10, as by Ctrl-C
    torch.save(unfinished, tmp_path / 'samples' / 'checkpoint.pt')
    status, out, err = run(capsys, '--generate', 4, '--out', tmp_path / 'd')
    assert status == 0, err
    assert 'samples/checkpoint.pt is an unfinished run (4 of 10 iterations)' in out and f'model: {weights}' in out
    status, out, err = run(capsys, '--generate', 4, '--checkpoint', 'samples/checkpoint.pt', '--out', tmp_path / 'e')
    assert status == 0 and 'model: samples/checkpoint.pt' in out  # asked for by name, it is used


def test_a_folder_without_images_is_a_one_line_error(tmp_path, capsys, trained):
    (tmp_path / 'empty').mkdir()
    (tmp_path / 'empty' / 'notes.txt').write_text('no images here')
    status, out, err = run(capsys, tmp_path / 'empty', '--checkpoint', trained[0], '--out', tmp_path / 'd')
    assert status == 2 and len(err.strip().splitlines()) == 1 and 'no images to denoise' in err
    assert not (tmp_path / 'd').exists()


def test_images_of_one_name_get_outputs_of_their_own_and_outputs_are_not_denoised_again(tmp_path, capsys, trained):
    checkpoint, data = trained
    coll = tmp_path / 'coll'
    for folder, name in (('a', 'x.png'), ('b', 'x.png'), ('.', 'x.jpg'), ('.', 'x.png')):
        (coll / folder).mkdir(parents=True, exist_ok=True)
        Image.open(data / 'img000.png').save(coll / folder / name)
    status, out, err = run(capsys, coll, '--checkpoint', checkpoint, '--out', coll)
    assert status == 0, err
    made = sorted(str(path.relative_to(coll)) for path in coll.rglob('*-denoised.png'))
    assert made == ['a/x-denoised.png', 'b/x-denoised.png', 'x.jpg-denoised.png', 'x.png-denoised.png']
    status, out, err = run(capsys, coll, '--checkpoint', checkpoint, '--out', coll)  # the same again
    again = sorted(str(path.relative_to(coll)) for path in coll.rglob('*-denoised.png'))
    assert status == 0 and len(again) == 8  # its own outputs are not inputs, and none is overwritten
    assert sorted(set(again) - set(made)) == ['a/x-2-denoised.png', 'b/x-2-denoised.png', 'x.jpg-2-denoised.png',
                                              'x.png-2-denoised.png']


@pytest.mark.parametrize('flags, needs', [(['--noise-level', 0.5], '--add-noise'),
                                          (['--latent-source', 'data'], '--generate'),
                                          (['--steps', 4], '--interpolate')])
def test_a_flag_that_would_do_nothing_is_refused(tmp_path, capsys, trained, flags, needs):
    status, out, err = run(capsys, trained[1] / 'img000.png', *flags, '--checkpoint', trained[0], '--out', tmp_path)
    assert status == 2 and f'does nothing without {needs}' in err


def test_a_run_folder_stands_for_its_checkpoint(tmp_path, capsys, trained):
    status, out, err = run(capsys, '--generate', 4, '--checkpoint', trained[0].parent, '--out', tmp_path)
    assert status == 0, err
    assert out.startswith(f'model: {trained[0].parent} (spec after 4 iterations)')


def test_a_second_denoising_keeps_the_first_outputs(tmp_path, capsys, trained):
    checkpoint, data = trained
    for _ in range(2):
        status, out, err = run(capsys, data / 'img000.png', '--checkpoint', checkpoint, '--out', tmp_path)
        assert status == 0, err
    assert sorted(path.name for path in tmp_path.iterdir()) == ['img000-2-compare.png', 'img000-2-denoised.png',
                                                                'img000-compare.png', 'img000-denoised.png']


def test_a_grey_image_comes_back_grey_and_lost_transparency_is_said(tmp_path, capsys, trained):
    checkpoint, data = trained
    Image.open(data / 'img001.png').convert('L').save(tmp_path / 'grey.png')
    Image.open(data / 'img002.png').convert('RGBA').save(tmp_path / 'clear.png')
    status, out, err = run(capsys, tmp_path / 'grey.png', tmp_path / 'clear.png', '--checkpoint', checkpoint,
                           '--out', tmp_path / 'out', '--add-noise')
    assert status == 0, err
    grey = np.asarray(Image.open(tmp_path / 'out' / 'grey-denoised.png').convert('RGB')).astype(int)
    assert np.abs(grey - grey[..., :1]).max() <= 1  # the three channels equal, up to rounding
    colour = np.asarray(Image.open(tmp_path / 'out' / 'clear-denoised.png').convert('RGB')).astype(int)
    assert np.abs(colour - colour[..., :1]).max() > 1
    assert 'clear.png: transparent areas are denoised as white, and the output has no transparency' in out
    assert 'grey.png: transparent' not in out


def test_an_image_without_noise_gets_a_note_and_a_noisy_one_none(tmp_path, capsys, trained):
    checkpoint, data = trained
    noisy = np.asarray(Image.open(data / 'img000.png').convert('RGB')).astype(int)
    noisy = np.clip(noisy + np.random.default_rng(0).integers(-128, 128, noisy.shape), 0, 255).astype(np.uint8)
    Image.fromarray(noisy).save(tmp_path / 'noisy.png')
    status, out, err = run(capsys, data / 'img000.png', tmp_path / 'noisy.png', '--checkpoint', checkpoint,
                           '--out', tmp_path / 'out')
    assert status == 0, err
    assert 'img000.png: looks free of noise; the model expects the training noise' in out
    assert 'noisy.png: looks free' not in out
