"""Training the auto-encoder: the named random streams of a run, the held-out
split, the model with its optimisers, one training step, the batch order and evaluation.  The loop
that strings them together is asgn6.py's `train`.
"""
import contextlib
import math
from dataclasses import dataclass
from typing import NamedTuple

import torch

from dae import variants
from dae.errors import Diverged, Failure
from dae.images import add_noise, load_dataset, psnr, to_unit_range
from dae.run import batches_per_epoch, held_out_count

LEARNING_RATES = (1e-3, 2e-3)  # the starter's: encoder, decoder
MEMORY_FORMATS = {'contiguous': torch.contiguous_format, 'channels_last': torch.channels_last}


@dataclass(frozen=True)
class Streams:
    """Every random stream of a run, each seeded from the run's seed here and nowhere else.

    Separate streams keep each draw independent of the others: holding images out does not change the
    training noise, and a resumed run restores each stream on its own.  Frozen: any change here changes
    every run's numbers (tests/test_train.py pins the first losses of a tiny run).
    """
    seed: int

    def seed_weights(self):
        torch.manual_seed(self.seed)  # nn.Module initialisation draws from torch's global generator

    def epoch_order(self, epoch):
        return torch.Generator().manual_seed(self.seed * 100_003 + epoch)  # a function of (seed, epoch) alone

    def training_noise(self, device, iteration=0):
        # iteration > 0: a resume whose saved generator belongs to another kind of device
        return torch.Generator(device=device).manual_seed(self.seed + iteration)

    def novel_latents(self):
        return torch.Generator().manual_seed(self.seed + 1)

    def save_latents(self, iteration):
        # the starter's fresh novel batch at each save, drawn apart from every training stream
        return torch.Generator().manual_seed(self.seed * 1_000_037 + iteration)  # of (seed, iteration) alone

    def held_out_split(self):
        return torch.Generator().manual_seed(self.seed + 2)

    def held_out_noise(self, device):
        return torch.Generator(device=device).manual_seed(self.seed + 3)

    def training_subset_noise(self, device):
        return torch.Generator(device=device).manual_seed(self.seed + 4)

    def training_subset(self):
        return torch.Generator().manual_seed(self.seed + 5)

    def augmentation(self, iteration):
        return torch.Generator().manual_seed(self.seed * 1_000_033 + iteration)  # of (seed, iteration) alone


# ----------------------------------------------------------------------------- data

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
    order = torch.randperm(num_images, generator=streams.held_out_split())
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
                            config, streams.held_out_noise(device), device)
    chosen = torch.randperm(train.size(0), generator=streams.training_subset())[:held_out_indices.numel()].sort().values
    probe = measured_set(train[chosen.to(device)], [train_paths[i] for i in chosen.tolist()], config,
                         streams.training_subset_noise(device), device)
    return Split(train, held_out, probe)


def split_of_run(config, data_dir):
    """(the Split on the CPU, number of images) of a run, from its config and the folder it trained on."""
    images, paths = load_dataset(data_dir, config.image_size)
    return split_dataset(images, paths, config, torch.device('cpu')), len(paths)


# ----------------------------------------------------------------------------- model and step

def build(config, device):
    """The model on `device` in the run's memory format, and its two Adams with the starter's rates and betas."""
    model = variants.build(*config.model_args())
    model = model.to(device, memory_format=MEMORY_FORMATS[config.memory_format])
    fused = {'fused': True} if device.type == 'cuda' else {}
    optimizers = [torch.optim.Adam(part.parameters(), lr=rate, betas=(0.5, 0.999), **fused)
                  for part, rate in zip((model.encoder, model.decoder), LEARNING_RATES)]
    return model, optimizers


def rate_factor(config, iteration, total):
    """The factor of the starter's rates: 1 throughout, or half a cosine from 1 at the first iteration to nearly
    0 at the last (as SGDR without restarts), so that a run of fixed length ends in small, careful steps."""
    return 1.0 if config.lr_schedule == 'constant' else 0.5 * (1 + math.cos(math.pi * (iteration - 1) / total))


def set_learning_rates(optimizers, factor):
    for optimizer, rate in zip(optimizers, LEARNING_RATES):
        for group in optimizer.param_groups:
            group['lr'] = rate * factor


def train_step(model, optimizers, clean, noisy, config):
    """One Adam step on the L1 (or squared) distance between the clean batch and the denoised noisy batch."""
    with torch.autocast(clean.device.type, dtype=torch.bfloat16, enabled=config.precision == 'bf16'):
        denoised = model(noisy)
    error = clean - denoised.float()
    loss = error.abs().mean() if config.loss == 'l1' else (error ** 2).mean()
    for optimizer in optimizers:
        optimizer.zero_grad(set_to_none=True)
    loss.backward()
    for optimizer in optimizers:
        optimizer.step()
    return loss.detach(), denoised.detach()


def follows_short_batch(iteration, train_images, batch_size):
    """Whether a save comes right after an epoch's last batch when that batch is trained (2 images or more)
    but under a quarter of a batch (674 images at 32 leave 2): BatchNorm's running averages move towards
    two images' statistics, so such a save scores low in eval mode, and a run's score leaves it out."""
    short = train_images % batch_size
    return 2 <= short < batch_size // 4 and iteration % batches_per_epoch(train_images, batch_size) == 0


def batch_order(num_images, batch_size, streams, first, last, device):
    """(iteration, indices of its images) for iterations first..last, numbered across epochs from 1."""
    batch_size, per_epoch = min(batch_size, num_images), batches_per_epoch(num_images, batch_size)
    order = None
    for iteration in range(first, last + 1):
        epoch, index = divmod(iteration - 1, per_epoch)
        if order is None or index == 0:
            order = torch.randperm(num_images, generator=streams.epoch_order(epoch)).to(device)
        yield iteration, order[index * batch_size:(index + 1) * batch_size]


def symmetries(batch, generator):
    """Each square image as one of its eight mirror images and quarter turns, drawn at random."""
    if batch.size(-1) != batch.size(-2):
        raise Failure(f'augmentation needs square images, not {batch.size(-2)}x{batch.size(-1)}')
    mirror, flip, turn = torch.rand(3, batch.size(0), 1, 1, 1, generator=generator).lt(0.5).to(batch.device)
    batch = torch.where(mirror, batch.flip(-1), batch)
    batch = torch.where(flip, batch.flip(-2), batch)
    return torch.where(turn, batch.transpose(-1, -2), batch)


class LossBuffer:
    """The loss tensors of recent iterations, read back to the host together: one device sync per flush."""

    def __init__(self):
        self.pending, self.first = [], None

    def add(self, iteration, loss):
        if not self.pending:
            self.first = iteration
        self.pending.append(loss)

    def flush(self):
        """The buffered losses as floats; a non-finite one is a Failure naming its iteration."""
        if not self.pending:
            return []
        values, self.pending = torch.stack(self.pending).tolist(), []
        for offset, value in enumerate(values):
            if not math.isfinite(value):
                raise Diverged(f'loss is {value} at iteration {self.first + offset}')
        return values


# ----------------------------------------------------------------------------- evaluation

def uniform_latents(count, size, generator):
    """Latent vectors uniform in [-1, 1], as the starter draws its novel batch."""
    return 2 * torch.rand(count, size, generator=generator) - 1


def novel_latents(count, size, streams, device):
    """With --comparable-grids: one batch of uniform latent vectors for every novel grid of a run."""
    return uniform_latents(count, size, streams.novel_latents()).to(device)


def starter_latents(config, streams, iteration, device):
    """The starter's novel batch: fresh at every save, uniform in [-1, 1], as many as a training batch."""
    return uniform_latents(config.batch_size, config.latent_size, streams.save_latents(iteration)).to(device)


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
def decode_as_starter(model, latents):
    """Decode in training mode, as the starter does: BatchNorm normalises with this batch's own statistics.
    The starter's decode also moves the running statistics; here they are put back, so that the pictures
    change nothing that eval mode reads (held-out scores, the saved model)."""
    buffers = [buffer.clone() for buffer in model.decoder.buffers()]
    images = model.decode(latents)
    for buffer, saved in zip(model.decoder.buffers(), buffers):
        buffer.copy_(saved)
    return images


@torch.no_grad()
def decode_novel(model, latents):
    """With --comparable-grids: decode fixed latent vectors in eval mode, so that grids compare over time."""
    with evaluating(model):
        return model.decode(latents)


@torch.no_grad()
def evaluate(model, measured):
    """(L1, PSNR) of the model's output on a MeasuredSet, in eval mode, in batches."""
    with evaluating(model):
        denoised = torch.cat([model(batch) for batch in measured.noisy.split(64)]).float()
    return (measured.clean - denoised).abs().mean().item(), psnr(denoised, measured.clean)
