"""What asgn6.py shares with the experiments, the report and the benchmarks: the named random streams of a
run, its held-out split, the batch order, augmentation and evaluation.  The loop itself is asgn6.py's."""
import contextlib
import zlib
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
import torch

from dae.config import batches_per_epoch, held_out_count
from dae.errors import Failure
from dae.images import add_noise, psnr, to_unit_range


def stream_seed(seed, name, index=0):
    """A 64-bit seed for one stream of a run, mixed from (the run's seed, the stream's name, an index such as the
    epoch) by numpy's SeedSequence: no two streams of any two seeds start alike, as seed + k would make them."""
    key = (zlib.crc32(name.encode()), index)
    return int(np.random.SeedSequence(seed, spawn_key=key).generate_state(1, np.uint64)[0])


def seeded(name, seed, index=0, device='cpu'):
    return torch.Generator(device=device).manual_seed(stream_seed(seed, name, index))


@dataclass(frozen=True)
class Streams:
    """Every random stream of a run, each seeded from (the run's seed, its name) here and nowhere else: holding
    images out does not change the training noise, and a resumed run restores each stream on its own.  Any
    change here changes every run's numbers (tests/test_reproducible.py pins them)."""
    seed: int

    @contextlib.contextmanager
    def initialising_weights(self):
        """nn.Module initialisation draws from torch's global generator: seeded inside, restored after."""
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(stream_seed(self.seed, 'weights'))
            yield

    def order_generator(self, epoch):
        return seeded('order', self.seed, epoch)

    def noise_generator(self, device, iteration=0):
        # iteration > 0: a resume whose saved generator belongs to another kind of device
        return seeded('noise', self.seed, iteration, device)

    def novel_latent_generator(self):
        return seeded('novel latents', self.seed)

    def save_latent_generator(self, iteration):
        # the starter's fresh novel batch at each save, drawn apart from every training stream
        return seeded('save latents', self.seed, iteration)

    def split_generator(self):
        return seeded('split', self.seed)

    def held_out_noise_generator(self, device):
        return seeded('held-out noise', self.seed, device=device)

    def probe_noise_generator(self, device):
        return seeded('probe noise', self.seed, device=device)

    def probe_generator(self):
        return seeded('probe', self.seed)

    def augmentation_generator(self, iteration):
        return seeded('augmentation', self.seed, iteration)


class MeasuredSet(NamedTuple):
    """Images with the one fixed noise draw they are always measured on: the held-out images, or as many
    training images (the probe), so that the two PSNRs differ only in whether the model saw the images."""
    clean: torch.Tensor
    noisy: torch.Tensor
    paths: list

    @property
    def noisy_psnr(self):
        return psnr(self.noisy, self.clean)

class Split(NamedTuple):
    """A run's images: those it trains on (stored as bytes), and held-out and probe sets (None without --val-split)."""
    train: torch.Tensor
    held_out: MeasuredSet
    probe: MeasuredSet

def held_out_split(num_images, fraction, streams):
    """(training, held-out) image indices: a seeded choice, disjoint, each sorted; none held out for 0."""
    count = held_out_count(num_images, fraction)
    order = torch.randperm(num_images, generator=streams.split_generator())
    return order[count:].sort().values, order[:count].sort().values

def measured_set(images, paths, config, generator, device):
    clean = to_unit_range(images).to(device)
    return MeasuredSet(clean, add_noise(clean, config.noise_level, generator), paths)

def split_dataset(images, paths, config, device):
    """The split every user of a run shares: the same for asgn6.py, the experiments and the report."""
    streams = Streams(config.seed)
    train_indices, held_out_indices = held_out_split(images.size(0), config.val_split, streams)
    train, train_paths = images[train_indices].to(device), [paths[i] for i in train_indices.tolist()]
    if not held_out_indices.numel():
        return Split(train, None, None)
    held_out = measured_set(images[held_out_indices], [paths[i] for i in held_out_indices],
                            config, streams.held_out_noise_generator(device), device)
    chosen = torch.randperm(train.size(0), generator=streams.probe_generator())[:held_out_indices.numel()].sort().values
    probe = measured_set(train[chosen.to(device)], [train_paths[i] for i in chosen.tolist()], config,
                         streams.probe_noise_generator(device), device)
    return Split(train, held_out, probe)

def batch_order(num_images, batch_size, streams, first, last, device):
    """(iteration, indices of its images) for iterations first..last, numbered across epochs from 1."""
    batch_size, per_epoch = min(batch_size, num_images), batches_per_epoch(num_images, batch_size)
    order = None
    for iteration in range(first, last + 1):
        epoch, index = divmod(iteration - 1, per_epoch)
        if order is None or index == 0:
            order = torch.randperm(num_images, generator=streams.order_generator(epoch)).to(device)
        yield iteration, order[index * batch_size:(index + 1) * batch_size]

def symmetries(batch, generator):
    """Each square image as one of its eight mirror images and quarter turns, drawn at random."""
    if batch.size(-1) != batch.size(-2):
        raise Failure(f'augmentation needs square images, not {batch.size(-2)}x{batch.size(-1)}')
    mirror, flip, turn = torch.rand(3, batch.size(0), 1, 1, 1, generator=generator).lt(0.5).to(batch.device)
    batch = torch.where(mirror, batch.flip(-1), batch)
    batch = torch.where(flip, batch.flip(-2), batch)
    return torch.where(turn, batch.transpose(-1, -2), batch)

def uniform_latents(count, size, generator):
    """Latent vectors uniform in [-1, 1], as the starter draws its novel batch."""
    return 2 * torch.rand(count, size, generator=generator) - 1

@contextlib.contextmanager
def evaluating(model):
    """Eval mode (BatchNorm's running statistics) inside, then the mode the model was in."""
    was_training = model.training
    model.eval()
    try:
        yield model
    finally:
        model.train(was_training)

@torch.no_grad()
def evaluate(model, measured):
    """(L1, PSNR) of the model's output on a MeasuredSet, in eval mode, in batches."""
    with evaluating(model):
        denoised = torch.cat([model(batch) for batch in measured.noisy.split(64)]).float()
    return (measured.clean - denoised).abs().mean().item(), psnr(denoised, measured.clean)
