"""The random streams of a run, pinned on every CPU class.

Floats of a training step differ between CPU classes (AVX2 only, AVX-512) from the second iteration on,
so a loss curve pinned on one class fails on the other. What the streams produce does not depend on the
kernels: the initial weights, the clean and noisy batches (batch order, augmentation, noise) and the
measured sets (split, probe, their noise) are the same bytes on any CPU. They are pinned exactly, as
digests of what the training step and the evaluation are handed; the first loss (one forward pass) to a
tolerance far below what a changed input moves it by; later losses only to 2%, which catches a changed
step (loss, optimiser, model) but not a changed stream: the digests catch those, as the second test shows.
"""
import hashlib
import itertools

import numpy as np
import pytest
import torch

import asgn6
from conftest import train_args
from dae import training, variants

pytestmark = pytest.mark.reproducibility  # .ci/run runs these again under AVX2 kernels on an AVX-512 machine

PINNED = {'weights': '1ff648da48e85c00', 'clean': '155fba9a62fd8bea', 'noisy': 'd1360358eb8c6cff',
          'measured': 'e88bb193c848e0aa'}
FIRST_LOSS = 0.8734964728355408
LATER_LOSSES = [0.8203, 0.7840, 0.7260, 0.6828, 0.5937]  # AVX-512; AVX2 lies within 0.05% of these
STREAMS = ['initialising_weights', 'order_generator', 'noise_generator', 'augmentation_generator', 'split_generator',
           'held_out_noise_generator', 'probe_generator', 'probe_noise_generator']


def fingerprint(tmp_path, image_folder, monkeypatch):
    """(digests of what the run's streams fed the step and the evaluation, its losses) for a tiny run that
    uses every stream: held-out images, augmentation, three epochs of 2 batches, a save every 2 iterations."""
    digests = {kind: hashlib.sha256() for kind in PINNED}

    def add(kind, *tensors):
        for tensor in tensors:
            digests[kind].update(tensor.detach().cpu().contiguous().numpy().tobytes())

    real_create, real_noise, real_evaluate = asgn6.create_models, asgn6.add_noise, training.evaluate

    def create_models(*args):  # the weights as initialised
        model, optimizers = real_create(*args)
        add('weights', *model.state_dict().values())
        return model, optimizers

    def noise(clean, *args):  # the clean and noisy batches that the step is handed
        noisy = real_noise(clean, *args)
        add('clean', clean)
        add('noisy', noisy)
        return noisy

    def evaluate(model, measured):
        add('measured', measured.clean, measured.noisy)
        return real_evaluate(model, measured)

    monkeypatch.setattr(asgn6, 'create_models', create_models)
    monkeypatch.setattr(asgn6, 'add_noise', noise)
    monkeypatch.setattr(training, 'evaluate', evaluate)
    args = train_args(tmp_path, image_folder, '--epochs', 3, '--batch-size', 4, '--latent-size', 16,
                      '--val-split', 0.25, '--augment', '--save-interval', 2)
    assert asgn6.main(args) == 0
    losses = [float(line) for line in (tmp_path / 'out' / 'loss.txt').read_text().split()]
    return {kind: digest.hexdigest()[:16] for kind, digest in digests.items()}, losses


def test_a_tiny_seeded_run_is_pinned_on_every_cpu_class(tmp_path, image_folder, monkeypatch):
    digests, losses = fingerprint(tmp_path, image_folder, monkeypatch)
    assert digests == PINNED
    assert losses[0] == pytest.approx(FIRST_LOSS, rel=1e-5)
    assert losses[1:] == pytest.approx(LATER_LOSSES, rel=2e-2)


@pytest.mark.slow
@pytest.mark.parametrize('stream', STREAMS)
def test_the_pin_catches_a_changed_stream(stream, tmp_path, image_folder, monkeypatch):
    """Each stream drawn from another seed, the others as they were: the pinned digests no longer match."""
    original = getattr(training.Streams, stream)
    monkeypatch.setattr(training.Streams, stream,
                        lambda self, *args: original(training.Streams(self.seed + 7), *args))
    digests, _ = fingerprint(tmp_path, image_folder, monkeypatch)
    assert digests != PINNED


def first_draws(streams, index):
    """The first values each stream gives (at epoch or iteration `index` where it takes one), as bytes."""
    generators = {'order': streams.order_generator(index), 'noise': streams.noise_generator('cpu', index),
                  'save latents': streams.save_latent_generator(index),
                  'augmentation': streams.augmentation_generator(index),
                  'novel latents': streams.novel_latent_generator(), 'split': streams.split_generator(),
                  'held-out noise': streams.held_out_noise_generator('cpu'),
                  'probe noise': streams.probe_noise_generator('cpu'), 'probe': streams.probe_generator()}
    draws = {name: torch.rand(4, generator=generator) for name, generator in generators.items()}
    with streams.initialising_weights():
        draws['weights'] = torch.rand(4)
    return {name: draw.numpy().tobytes() for name, draw in draws.items()}


def test_no_two_streams_of_seeds_0_to_99_start_alike():
    """With every stream seeded seed + k, seed 4680's probe noise was seed 4681's held-out noise."""
    owners = {}
    for seed, index in itertools.product(range(100), (0, 1)):
        for name, draw in first_draws(training.Streams(seed), index).items():
            owners.setdefault(draw, set()).add((seed, name, index))
    shared = {draw: who for draw, who in owners.items() if len(who) > 1
              and {(seed, name) for seed, name, _ in who} != {next(iter(who))[:2]}}
    assert not shared, f'streams that start alike: {list(shared.values())[:5]}'


def test_the_first_noise_batch_is_not_the_initial_weights():
    """Seeded alike, the first 393,216 noise values of a run were its first layer's weights over their bound."""
    for seed in (0, 4680, 4681):
        streams = training.Streams(seed)
        with streams.initialising_weights():
            model = variants.build('spec', 128, 64)
        noise = torch.rand((32, 3, 64, 64), generator=streams.noise_generator('cpu')).flatten()
        weights = next(model.parameters()).detach().flatten()[:noise.numel()]  # drawn first, before the bias
        r = np.corrcoef(weights.numpy(), noise.numpy())[0, 1]
        assert abs(r) < 0.01, f'seed {seed}: r = {r:.3f}'


def test_building_a_model_leaves_the_global_generator_as_it_was():
    before = torch.get_rng_state()
    with training.Streams(4680).initialising_weights():
        variants.build('spec', 16, 64)
    assert torch.equal(torch.get_rng_state(), before)
