"""The Q3(f) machinery: held-out split and logging, model variants, denoise.py on a U-Net, the experiments script."""
import csv
import hashlib
import json
import os
import shutil

import numpy as np
import pytest
import torch
from PIL import Image

import asgn6
from dae import cli
import denoise
from dae import training, variants
from dae.denoising import load_model
from dae.checkpoint import load_checkpoint
from dae.images import find_images, load_dataset, psnr, to_unit_range
from dae.machine import machine_name
from dae.config import MODEL_NAMES, RunConfig
from dae.training import MeasuredSet, Streams, held_out_split, split_dataset
from conftest import call_main, train_args, write_images

from experiments import classical, run_experiments
from experiments.classical import Filter, IntensityMap, JointIntensityMap, choose


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
    assert all(float(row['held_out_psnr_db']) > 0 and float(row['train_psnr_db']) > 0 for row in rows)
    assert len(set(row['noisy_psnr_db'] for row in rows)) == 1  # one fixed noise draw
    assert len(set(row['train_noisy_psnr_db'] for row in rows)) == 1  # and one for the training images
    assert rows[0]['train_psnr_db'] != rows[0]['held_out_psnr_db']


def test_the_training_probe_is_as_many_fixed_training_images_as_are_held_out(tmp_path):
    write_images(tmp_path / "data" / "x", 30)
    images, paths = load_dataset(tmp_path / 'data', 64)
    cpu = torch.device('cpu')

    def probe_of(seed):
        split = split_dataset(images, paths, RunConfig(seed=seed, val_split=0.2), cpu)
        return split.held_out, split.probe

    held_out, probe = probe_of(4680)
    assert len(probe.paths) == len(held_out.paths) == 6
    assert set(probe.paths).isdisjoint(held_out.paths) and set(probe.paths) <= set(paths)
    assert torch.equal(probe.clean, to_unit_range(images[[paths.index(p) for p in probe.paths]]))
    again = probe_of(4680)[1]
    assert again.paths == probe.paths and torch.equal(again.noisy, probe.noisy)
    assert probe_of(1)[1].paths != probe.paths


@pytest.mark.parametrize('value', ['1', '-0.1', 'half'])
def test_val_split_outside_0_to_1_is_an_argparse_error(tmp_path, capsys, image_folder, value):
    status, out, err = call_main(asgn6.main, train_args(tmp_path, image_folder, '--val-split', value), capsys)
    assert status == 2 and '--val-split' in err


def test_val_split_that_leaves_too_few_training_images(tmp_path, capsys, image_folder):
    status, out, err = call_main(asgn6.main, train_args(tmp_path, image_folder, '--val-split', 0.95), capsys)
    assert status == 2 and 'need 2' in err


def test_variants_build_and_keep_the_image_size():
    for name in MODEL_NAMES:
        model = variants.build(name, 16, 64).eval()
        assert model(torch.zeros(2, 3, 64, 64)).shape == (2, 3, 64, 64)
    assert variants.UNet().eval()(torch.zeros(1, 3, 37, 91)).shape == (1, 3, 37, 91)
    assert variants.ResidualUNet().eval()(torch.zeros(1, 3, 37, 91)).shape == (1, 3, 37, 91)
    with pytest.raises(ValueError):
        variants.build('resnet', 16, 64)


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


def test_the_cosine_schedule_falls_from_the_starters_rates_to_nearly_zero():
    values = [asgn6.rate_factor(RunConfig(lr_schedule='cosine'), i, 100) for i in range(1, 101)]
    assert values[0] == 1 and values[49] == pytest.approx(0.5, abs=0.02) and 0 < values[-1] < 0.001
    assert all(a > b for a, b in zip(values, values[1:]))


@pytest.mark.parametrize('schedule', ['constant', 'cosine'])
def test_the_residual_unet_trains_with_either_schedule_and_the_rates_follow_it(tmp_path, capsys, image_folder,
                                                                               schedule):
    status, out, err = call_main(asgn6.main, train_args(tmp_path, image_folder, '--epochs', 2, '--batch-size', 4,
                                                        '--model', 'residual-unet', '--lr-schedule', schedule), capsys)
    assert status == 0, err
    checkpoint = load_checkpoint(tmp_path / 'out' / 'checkpoint.pt')
    assert checkpoint['iteration'] == 6 and checkpoint['config'].lr_schedule == schedule
    factor = asgn6.rate_factor(checkpoint['config'], 6, 6)
    for saved, rate in zip(checkpoint['optimizers'], (1e-3, 2e-3)):
        assert saved['param_groups'][0]['lr'] == pytest.approx(rate * factor, rel=1e-12)
    # the schedule is part of the run: resuming with the other one is refused
    other = 'constant' if schedule == 'cosine' else 'cosine'
    status, out, err = call_main(asgn6.main, train_args(tmp_path, image_folder, '--epochs', 3, '--resume',
                                                        '--lr-schedule', other), capsys)
    assert status == 2 and f'has --lr-schedule {schedule}; this one has --lr-schedule {other}' in err


SMOKE = ('--epochs', 1, '--only', 'spec', '--filters', 'median', '--seeds', 4681, 4682)


@pytest.fixture(scope='module')
def smoke(tmp_path_factory):
    """(data folder, results folder, results.json, printed output) of one small call: the spec model for one
    epoch on two test seeds of 20 images, and the median filter."""
    root = tmp_path_factory.mktemp('smoke')
    write_images(root / 'data' / 'x', 20)
    argv = ['--data-dir', root / 'data', '--out', root / 'results', *SMOKE]
    status = run_experiments.main([str(arg) for arg in argv])
    assert status == 0
    return root / 'data', root / 'results', json.loads((root / 'results' / 'results.json').read_text())


@pytest.mark.slow
def test_networks_and_filters_are_scored_on_each_seeds_own_held_out_images(smoke):
    data, _, results = smoke
    assert set(results) == {'epochs', 'development_seeds', 'networks', 'classical'}
    networks = results['networks']
    assert [(row['name'], row['seed']) for row in networks] == [('spec', 4681), ('spec', 4682)]
    paths = find_images(data)
    for network in networks:
        assert network['held_out_images'] == 2 and network['train_images'] == 18
        assert network['iterations'] == 1 and network['saves_averaged'] == [1]  # 18 images at batch 32: one batch
        # the checkpoint's own measurement is the one asgn6.py wrote at that save (csv: 4 places)
        assert network['last_save_psnr'] == pytest.approx(network['held_out_psnr'], abs=1e-3)
        # measured, near the plain score: a one-iteration model's outputs barely move under the symmetries (the
        # self-ensemble's own test, in test_denoise.py, shows that it changes them)
        assert abs(network['self_ensemble_psnr'] - network['last_save_psnr']) < 0.5
        classical = [row for row in results['classical'] if row['seed'] == network['seed']]
        assert [row['name'] for row in classical] == ['noisy input', 'noisy input + correction', 'median',
                                                      'median + correction', 'median + 2-D correction']
        assert [row['corrected'] for row in classical] == [False, True, False, True, True]
        assert all(row['held_out_set'] == network['held_out_set'] for row in classical)
        assert classical[0]['held_out_psnr'] == pytest.approx(network['noisy_psnr'], abs=1e-4)  # the same draw
        assert classical[1]['held_out_psnr'] > classical[0]['held_out_psnr']  # the clamped noise's bias, undone
        # and that set is asgn6.py's own split of this folder with this seed
        held = held_out_split(len(paths), 0.1, Streams(network['seed']))[1].tolist()
        names = '\n'.join(os.path.basename(paths[i]) for i in held)
        assert network['held_out_set'] == hashlib.sha1(names.encode()).hexdigest()[:12]
    assert len({network['held_out_set'] for network in networks}) == 2


@pytest.mark.slow
def test_the_table_reports_the_test_seeds_only_and_names_the_machine(smoke):
    _, results, _ = smoke
    table = (results / 'results.md').read_text()
    assert 'over 2 seeds (4681, 4682)' in table.splitlines()[0]
    rows = [line for line in table.splitlines() if line.startswith('| ')]
    assert len(rows) == 7  # header, spec, the noisy input plain and corrected, the median plain and both corrected
    assert [row.count(' ± ') for row in rows] == [0, 3, 2, 2, 2, 2, 2]  # train, held-out PSNR and L1 over 2 seeds
    assert f'Wall times (the mean of the seeds) measured on: {machine_name()}.' in table.splitlines()[0]
    assert Image.open(results / 'denoised.png').size[1] == 4 * 66 + 2  # clean, noisy, spec, filter


@pytest.mark.slow
def test_a_run_without_its_checkpoint_is_scored_from_its_files_and_keeps_its_row(smoke, tmp_path, capsys):
    shutil.copytree(smoke[1], tmp_path / 'copy')
    (tmp_path / 'copy' / 'runs' / 'spec' / 'seed-4681' / 'checkpoint.pt').unlink()
    status, out, err = call_main(run_experiments.main, ['--data-dir', smoke[0], '--out', tmp_path / 'copy', *SMOKE,
                                                           '--skip-training'], capsys)
    assert status == 0, err
    assert json.loads((tmp_path / 'copy' / 'results.json').read_text()) == smoke[2]  # last-save scores kept
    assert 'classical filters' not in out  # the filters' rows kept too
    assert (tmp_path / 'copy' / 'wall.json').read_text() == (smoke[1] / 'wall.json').read_text()
    # the outputs each run recorded as it finished draw the figure: the checkpoints are not needed
    assert 'figure (split of seed 4681)' in out
    assert (tmp_path / 'copy' / 'denoised.png').read_bytes() == (smoke[1] / 'denoised.png').read_bytes()
    for seed in (4681, 4682):  # with neither, the figure is kept as it is, not redrawn with fewer rows
        for name in ('checkpoint.pt', 'first-outputs.png'):
            (tmp_path / 'copy' / 'runs' / 'spec' / f'seed-{seed}' / name).unlink(missing_ok=True)
    status, out, err = call_main(run_experiments.main, ['--data-dir', smoke[0], '--out', tmp_path / 'copy', *SMOKE,
                                                           '--skip-training'], capsys)
    assert status == 0 and "denoised.png kept as it is: it needs a classical filter and the checkpoints of seed " \
        "4681's spec (spec missing)" in out
    assert (tmp_path / 'copy' / 'denoised.png').read_bytes() == (smoke[1] / 'denoised.png').read_bytes()


@pytest.mark.slow
def test_a_finished_run_keeps_what_needs_its_checkpoint_beside_its_files(smoke):
    for seed in (4681, 4682):
        folder = smoke[1] / 'runs' / 'spec' / f'seed-{seed}'
        row = next(row for row in smoke[2]['networks'] if row['seed'] == seed)
        recorded = json.loads((folder / 'scores.json').read_text())
        assert recorded == {key: row[key] for key in run_experiments.CHECKPOINT_SCORES}
        outputs = run_experiments.recorded_outputs(folder, 64, 64)
        assert outputs.shape == (2, 3, 64, 64)  # the first held-out images (2 of 20 held out)
        model, config = load_model(folder / 'checkpoint.pt', torch.device('cpu'))
        held_out = run_experiments.split_of_run(config, smoke[0])[0].held_out
        with training.evaluating(model), torch.no_grad():
            exact = model(held_out.noisy[:2])
        assert (outputs - exact).abs().max() <= 1 / 255 + 1e-6  # 8 bits, as the figure shows them


@pytest.mark.slow
def test_a_finished_run_made_on_other_images_or_noise_is_trained_again(smoke, tmp_path, capsys):
    """A run made before a change of the streams: its validation.csv records other held-out noise."""
    shutil.copytree(smoke[1], tmp_path / 'copy')
    folder = tmp_path / 'copy' / 'runs' / 'spec' / 'seed-4681'
    table = (folder / 'validation.csv').read_text().splitlines()
    fields = table[-1].split(',')
    fields[3] = f'{float(fields[3]) + 0.01:.4f}'  # noisy_psnr_db
    (folder / 'validation.csv').write_text('\n'.join([*table[:-1], ','.join(fields)]) + '\n')
    argv = ['--data-dir', smoke[0], '--out', tmp_path / 'copy', *SMOKE]
    status, out, err = call_main(run_experiments.main, [*argv, '--skip-training'], capsys)
    assert status == 0 and "spec, seed 4681: made on other images or noise than today's code draws" in out
    assert [row['seed'] for row in json.loads((tmp_path / 'copy' / 'results.json').read_text())['networks']] == [4682]
    status, out, err = call_main(run_experiments.main, [*argv, '--train-only'], capsys)
    assert status == 0 and 'spec, seed 4681: its files were made on other images or noise' in out
    assert 'spec, seed 4682: already complete' in out
    original = smoke[1] / 'runs' / 'spec' / 'seed-4681'
    assert (folder / 'validation.csv').read_text() == (original / 'validation.csv').read_text()  # made again


@pytest.mark.slow
def test_a_run_whose_files_say_it_stopped_early_is_left_out_and_named(smoke, tmp_path, capsys):
    shutil.copytree(smoke[1], tmp_path / 'copy')
    (tmp_path / 'copy' / 'runs' / 'spec' / 'seed-4681' / 'loss.txt').write_text('')
    argv = ['--data-dir', smoke[0], '--out', tmp_path / 'copy', *SMOKE, '--skip-training']
    status, out, err = call_main(run_experiments.main, argv, capsys)
    assert status == 0, err
    assert 'spec, seed 4681: not complete, so not in the table' in out
    assert [row['seed'] for row in json.loads((tmp_path / 'copy' / 'results.json').read_text())['networks']] == \
        [4682]


def test_the_tables_leave_out_the_development_seed_where_test_seeds_are_there():
    experiments = run_experiments
    rows = [{'seed': 4680, 'name': 'a'}, {'seed': 4681, 'name': 'a'}, {'seed': 4682, 'name': 'a'}]
    assert [row['seed'] for row in experiments.reported(rows)] == [4681, 4682]
    assert experiments.reported(rows[:1]) == rows[:1]  # a development run alone is shown rather than nothing


def test_a_save_right_after_a_two_image_batch_is_left_out_of_the_score():
    from experiments.summary import follows_short_batch
    # 674 training images at batch 32: 22 batches an epoch, the last of 2 images
    assert [i for i in range(1, 100) if follows_short_batch(i, 674, 32)] == [22, 44, 66, 88]
    assert not any(follows_short_batch(i, 749, 32) for i in range(1, 100))  # a last batch of 13
    assert not any(follows_short_batch(i, 640, 32) for i in range(1, 100))  # no short batch
    assert not any(follows_short_batch(i, 673, 32) for i in range(1, 100))  # a last image alone is skipped, not trained


def test_wall_times_name_the_machines_they_were_measured_on(monkeypatch):
    experiments = run_experiments
    monkeypatch.setattr(experiments, 'machine_name', lambda: 'B')
    assert experiments.add_timing(None, 10.0) == {'seconds': 10.0, 'machine': 'B'}
    assert experiments.add_timing({'seconds': 5.0, 'machine': 'A'}, 10.0) == {'seconds': 15.0, 'machine': 'A + B'}
    rows = [{'seed': 1, 'machine': 'A'}, {'seed': 2, 'machine': 'B'}, {'seed': 3, 'machine': 'B'}]
    assert experiments.timing_machines(rows) == 'A (seed 1); B (seeds 2, 3)'
    assert experiments.timing_machines(rows[1:]) == 'B'


@pytest.mark.slow
def test_a_run_that_fails_is_one_line_naming_its_log(tmp_path, capsys):
    write_images(tmp_path / 'data' / 'x', 2)  # one held out leaves one to train on: asgn6.py refuses
    status, out, err = call_main(run_experiments.main, ['--data-dir', tmp_path / 'data', '--out', tmp_path / 'r',
                                                           '--only', 'spec', '--seeds', 1], capsys)
    log = tmp_path / 'r' / 'runs' / 'spec' / 'seed-1' / 'train.log'
    assert status == 1 and len(err.strip().splitlines()) == 1
    assert f'spec, seed 1: asgn6.py stopped with status 2; its output is in {log}' in err
    assert 'need 2' in log.read_text()


def shift_back(image, value):
    """A 'filter' that undoes a shift of `value` (on the [-1, 1] scale) exactly; module-level, as a worker needs."""
    return image - value / 2


def test_a_filters_parameter_is_chosen_on_the_training_images_not_on_the_test():
    experiments = run_experiments
    clean = torch.zeros(2, 3, 8, 8)
    sets = {offset: MeasuredSet(clean, clean + offset, ['a', 'b']) for offset in (0.2, 0.6)}
    shift = {'shift': Filter(shift_back, (0.2, 0.6, 1.0), step=0.4, lowest=0.2)}
    rows = experiments.run_baselines(sets[0.6], sets[0.2], 1.0, shift)  # test shifted 0.6, probe 0.2
    plain = next(row for row in rows if row['name'] == 'shift')
    assert plain['parameter'] == 0.2  # best on the probe, though 0.6 would score perfectly on the test
    assert plain['held_out_psnr'] == pytest.approx(psnr(clean + 0.4, clean), abs=1e-4)
    assert plain['grid'] == [0.2, 0.6, 1.0]  # 0.2 is the lowest value there is, so the grid stays


def test_the_parameter_grid_grows_until_the_choice_lies_inside_it():
    clean = torch.zeros(2, 3, 8, 8)
    probe = MeasuredSet(clean, clean + 0.9, ['a', 'b'])
    choice = choose(Filter(shift_back, (0.1, 0.2, 0.3), step=0.2, lowest=0.1), probe, psnr)
    assert choice.plain == pytest.approx(0.9) and choice.tried[-1] > choice.plain  # 0.5, 0.7, 0.9, 1.1 added
    assert choice.tried[0] < choice.plain
    geometric = Filter(shift_back, (0.8, 1.0), factor=2.0)
    assert geometric.beyond(0.8, up=False) == 0.4 and geometric.beyond(1.0, up=True) == 2.0


def test_the_intensity_correction_undoes_the_clamped_noise_bias_on_white():
    from dae.images import add_noise
    white = torch.ones(4, 3, 16, 16)
    noisy = add_noise(white, 1.0, torch.Generator().manual_seed(0))
    assert noisy.mean().item() == pytest.approx(0.75, abs=0.02)  # uniform in [0, 2] below 1, clamped to 1
    correction = IntensityMap.fit(noisy, white)
    assert torch.allclose(correction(noisy), white)  # every level behind which only white lay maps back to white
    ramp = torch.linspace(-1, 1, 256).reshape(1, 1, 16, 16).expand(1, 3, 16, 16)
    identity = IntensityMap.fit(ramp, ramp)
    inside = ramp.abs() < 0.99  # beyond the outermost levels' means the map holds their value
    assert torch.allclose(identity(ramp)[inside], ramp[inside], atol=1e-6)  # an unbiased input is left as it is


def test_the_joint_correction_reads_what_a_clamped_noisy_value_says_of_its_clean_value():
    from dae.images import add_noise
    generator = torch.Generator().manual_seed(0)
    clean = torch.where(torch.rand(8, 3, 16, 16, generator=generator) < 0.5, 1.0, 0.6)
    noisy = add_noise(clean, 1.0, generator)
    filtered = torch.full_like(clean, 0.5)  # a filter that lost everything: only the noisy value is left
    assert torch.allclose(IntensityMap.fit(filtered, clean)(filtered), torch.full_like(clean, 0.8), atol=1e-2)
    joint = JointIntensityMap.fit(filtered, noisy, clean, bins=(4, 8))
    corrected = joint(filtered, noisy)
    # noise of half-width 1 takes 1.0 no lower than 0.0, but 0.6 down to -0.4
    assert torch.allclose(corrected[noisy < 0], torch.tensor(0.6))  # only 0.6 lies behind a negative noisy value
    assert psnr(corrected, clean) > psnr(IntensityMap.fit(filtered, clean)(filtered), clean) + 0.3
    empty = JointIntensityMap.fit(filtered, noisy, clean, bins=(4, 8)).residual[0]  # filtered value never near -1
    assert np.all(empty == 0)  # an empty bin adds nothing to the 1-D correction


def test_the_checkerboard_measure_finds_a_period_2_pattern_and_not_a_smooth_image():
    blur = lambda images: torch.nn.functional.avg_pool2d(images, 3, stride=1, padding=1)  # noqa: E731
    smooth = blur(torch.rand(2, 3, 32, 32, generator=torch.Generator().manual_seed(0)) * 2 - 1)
    sign = torch.tensor([1.0, -1.0]).repeat(16)
    checkered = smooth + 0.1 * sign[:, None] * sign[None, :]  # a stride-2 transposed convolution's pattern
    assert run_experiments.checkerboard_db(smooth, smooth) == pytest.approx(0.0)
    assert run_experiments.checkerboard_db(checkered, smooth) > 10
    assert run_experiments.checkerboard_db(blur(smooth), smooth) < -5  # blurring takes the finest detail away


def test_numpy_filters_match_scipy():
    ndimage = pytest.importorskip('scipy.ndimage')
    image = np.random.default_rng(0).random((13, 17, 3))
    for sigma in (0.5, 1.0, 2.0):
        np.testing.assert_allclose(classical.gaussian_blur(image, sigma),
                                   ndimage.gaussian_filter(image, sigma=(sigma, sigma, 0)), atol=1e-12)
    for size in (3, 5):
        np.testing.assert_array_equal(classical.median_filter(image, size),
                                      ndimage.median_filter(image, size=(size, size, 1)))


def test_augmentation_shows_each_image_as_one_of_its_eight_symmetries_drawn_anew_for_every_iteration():
    from dae.training import symmetries
    torch.manual_seed(0)
    batch = torch.rand(64, 3, 5, 5)
    streams = Streams(4680)
    first = symmetries(batch, streams.augmentation_generator(1))
    assert torch.equal(first, symmetries(batch, streams.augmentation_generator(1)))  # a function of seed and iteration
    kinds = []
    for image, seen in zip(batch, first):
        turns = [image.rot90(k, (1, 2)) for k in range(4)]
        matches = [i for i, candidate in enumerate(turns + [t.flip(-1) for t in turns]) if torch.equal(candidate, seen)]
        assert len(matches) == 1  # exactly one of the eight, pixels unchanged
        kinds.append(matches[0])
    assert len(set(kinds)) == 8  # all eight occur among 64 images
    assert not torch.equal(first, symmetries(batch, streams.augmentation_generator(2)))
    with pytest.raises(cli.Failure, match='square'):
        symmetries(torch.rand(2, 3, 4, 6), streams.augmentation_generator(1))


@pytest.mark.slow
def test_an_augmented_run_resumes_exactly_and_only_as_an_augmented_run(tmp_path, capsys, image_folder):
    run = ('--epochs', 3, '--batch-size', 4, '--model', 'unet', '--augment')
    assert call_main(asgn6.main, train_args(tmp_path / 'whole', image_folder, *run), capsys)[0] == 0
    assert call_main(asgn6.main, train_args(tmp_path / 'split', image_folder, *run[:1], 2, *run[2:]), capsys)[0] == 0
    status, out, err = call_main(asgn6.main, train_args(tmp_path / 'split', image_folder, *run, '--resume'), capsys)
    assert status == 0, err
    whole = (tmp_path / 'whole' / 'out' / 'loss.txt').read_bytes()
    assert (tmp_path / 'split' / 'out' / 'loss.txt').read_bytes() == whole and len(whole.splitlines()) == 9
    plain = ('--epochs', 3, '--batch-size', 4, '--model', 'unet')
    assert call_main(asgn6.main, train_args(tmp_path / 'plain', image_folder, *plain), capsys)[0] == 0
    assert (tmp_path / 'plain' / 'out' / 'loss.txt').read_bytes() != whole  # the augmentation is used
    status, out, err = call_main(asgn6.main, train_args(tmp_path / 'plain', image_folder, '--epochs', 4,
                                                        '--batch-size', 4, '--model', 'unet', '--augment', '--resume'),
                                 capsys)
    assert status == 2 and "the checkpoint's run has no --augment; this one has --augment" in err


@pytest.mark.slow
def test_table_only_says_what_it_wrote(smoke, tmp_path, capsys):
    shutil.copytree(smoke[1], tmp_path / 'copy')
    status, out, err = call_main(run_experiments.main, ['--out', tmp_path / 'copy', '--table-only'], capsys)
    assert status == 0 and out.strip() == f'wrote {tmp_path / "copy" / "results.md"} from results.json'


@pytest.mark.slow
def test_the_regeneration_counts_a_run_done_only_when_todays_code_made_it(tmp_path, monkeypatch, capsys):
    from experiments import regenerate
    write_images(tmp_path / 'data' / 'x', 20)
    monkeypatch.setattr(regenerate, 'ROOT', str(tmp_path))
    monkeypatch.setattr(regenerate, 'HERE', str(tmp_path / 'experiments'))
    assert regenerate.runs_left(['spec-noise-0.5'], ['4681']) == '1 of 1 runs'
    argv = ['--data-dir', tmp_path / 'data', '--out', tmp_path / 'experiments' / 'results', '--only', 'spec-noise-0.5',
            '--seeds', 4681, '--train-only']
    status, out, err = call_main(run_experiments.main, argv, capsys)
    assert status == 0, err
    assert regenerate.runs_left(['spec-noise-0.5'], ['4681']) == ''
    assert not (tmp_path / 'experiments' / 'results' / 'results.json').exists()  # --train-only: no evaluation
    table = tmp_path / 'experiments' / 'results' / 'runs' / 'spec-noise-0.5' / 'seed-4681' / 'validation.csv'
    lines = table.read_text().splitlines()
    fields = lines[-1].split(',')
    fields[6] = f'{float(fields[6]) - 0.01:.4f}'  # train_noisy_psnr_db: the probe drawn by other code
    table.write_text('\n'.join([*lines[:-1], ','.join(fields)]) + '\n')
    assert regenerate.runs_left(['spec-noise-0.5'], ['4681']) == '1 of 1 runs'


def test_the_tables_caption_gives_the_common_budgets_iterations_whatever_row_comes_first():
    def network(name, seed, iterations):
        return {'name': name, 'seed': seed, 'noise_level': 1.0, 'parameters': 10, 'iterations': iterations,
                'train_psnr': 20.0, 'held_out_psnr': 19.0, 'held_out_l1': 0.1, 'wall_seconds': 60.0,
                'train_images': 674, 'held_out_images': 75, 'machine': 'a test machine'}
    rows = [network('long', seed, 1320) for seed in (4681, 4682)] + [network('spec', 4681, 330)]
    caption = run_experiments.markdown_table(rows, [], epochs=15).splitlines()[0]
    # 674 training images at batch 32 are 22 batches an epoch: 15 epochs are 330 iterations, not the first row's
    assert 'Networks: 15 epochs, batch 32 (330 iterations) unless the iterations column says otherwise' in caption
    assert 'over 2 seeds (4681, 4682)' in caption
