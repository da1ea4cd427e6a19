"""Training the auto-encoder: the typed configs of a run, its named random streams, the held-out
split, the model with its optimisers, one training step, the batch order and evaluation.  The loop
that strings them together is asgn6.py's `train`.
"""
import math
from dataclasses import dataclass, field
from typing import NamedTuple

import torch

import models
from dae.cli import Failure
from dae.images import add_noise, psnr, to_unit_range

LEARNING_RATES = (1e-3, 2e-3)  # the starter's: encoder, decoder
MEMORY_FORMATS = {'contiguous': torch.contiguous_format, 'channels_last': torch.channels_last}


@dataclass(frozen=True)
class ModelConfig:
    """What builds the network: a checkpoint's weights load into models.build(*astuple(this))."""
    name: str = 'spec'
    latent_size: int = 128
    image_size: int = 64


@dataclass(frozen=True)
class RunConfig:
    """Everything that defines a training run, and nothing about where or how this call runs it."""
    model: ModelConfig = field(default_factory=ModelConfig)
    batch_size: int = 32
    epochs: int = 500
    seed: int = 4680
    noise_level: float = 1.0
    loss: str = 'l1'
    lr_schedule: str = 'constant'
    augment: bool = False
    val_split: float = 0.0
    precision: str = 'fp32'
    memory_format: str = 'channels_last'
    log_interval: int = 10
    save_interval: int = 100

    # a resumed run that changed one of these would not be the same run (epochs too, under a cosine
    # schedule, whose length it sets)
    MUST_MATCH = ('model', 'latent_size', 'image_size', 'batch_size', 'seed', 'noise_level', 'loss', 'lr_schedule',
                  'augment', 'val_split')

    def flat(self):
        """{flag name: value}, the model's fields among them as asgn6.py's flags name them."""
        values = {key: getattr(self, key) for key in self.__dataclass_fields__ if key != 'model'}
        return {'model': self.model.name, 'latent_size': self.model.latent_size,
                'image_size': self.model.image_size, **values}

    @classmethod
    def from_flat(cls, values):
        model = ModelConfig(values['model'], values['latent_size'], values['image_size'])
        return cls(model, **{key: values[key] for key in cls.__dataclass_fields__ if key != 'model' and key in values})

    def must_match(self):
        return self.MUST_MATCH + (('epochs',) if self.lr_schedule == 'cosine' else ())


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
    train_paths: list
    held_out: MeasuredSet
    probe: MeasuredSet


def held_out_count(num_images, fraction):
    return 0 if fraction == 0 else max(1, round(num_images * fraction))


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
        return Split(train, train_paths, None, None)
    held_out = measured_set(images[held_out_indices], [paths[i] for i in held_out_indices],
                            config, streams.held_out_noise(device), device)
    chosen = torch.randperm(train.size(0), generator=streams.training_subset())[:held_out_indices.numel()].sort().values
    probe = measured_set(train[chosen.to(device)], [train_paths[i] for i in chosen.tolist()], config,
                         streams.training_subset_noise(device), device)
    return Split(train, train_paths, held_out, probe)


# ----------------------------------------------------------------------------- model and step

def build(config, device):
    """The model on `device` in the run's memory format, and its two Adams with the starter's rates and betas."""
    model = models.build(config.model.name, config.model.latent_size, config.model.image_size)
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


def batches_per_epoch(num_images, batch_size):
    """Full batches plus the remainder, unless the remainder is one image (BatchNorm cannot train on one)."""
    batch_size = min(batch_size, num_images)
    full, rest = divmod(num_images, batch_size)
    return full + (rest >= 2)


def follows_short_batch(iteration, train_images, batch_size):
    """Whether a save comes right after an epoch's last batch when that batch is trained (2 images or more)
    but under a quarter of a batch (674 images at 32 leave 2): BatchNorm's running averages move towards
    two images' statistics, so such a save scores low in eval mode, and a run's score leaves it out."""
    short = train_images % batch_size
    return 2 <= short < batch_size // 4 and iteration % batches_per_epoch(train_images, batch_size) == 0


def total_iterations(config, num_images):
    """The iterations a run of `config` on `num_images` images trains for, held-out images left out."""
    return config.epochs * batches_per_epoch(num_images - held_out_count(num_images, config.val_split),
                                             config.batch_size)


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
                raise Failure(f'loss is {value} at iteration {self.first + offset}')
        return values


# ----------------------------------------------------------------------------- evaluation

def novel_latents(count, size, streams, device):
    """One batch of uniform latent vectors for every novel grid of a run, so grids are comparable over time."""
    return (2 * torch.rand(count, size, generator=streams.novel_latents()) - 1).to(device)


def starter_latents(config, streams, iteration, device):
    """The starter's novel batch: fresh at every save, uniform in [-1, 1], as many as a training batch."""
    latents = 2 * torch.rand(config.batch_size, config.model.latent_size, generator=streams.save_latents(iteration)) - 1
    return latents.to(device)


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
    """Decode fixed latent vectors in eval mode (BatchNorm running statistics), then back to training."""
    model.eval()
    images = model.decode(latents)
    model.train()
    return images


@torch.no_grad()
def evaluate(model, measured):
    """(L1, PSNR) of the model's output on a MeasuredSet, in eval mode, in batches."""
    was_training = model.training
    model.eval()
    denoised = torch.cat([model(batch) for batch in measured.noisy.split(64)]).float()
    model.train(was_training)
    return (measured.clean - denoised).abs().mean().item(), psnr(denoised, measured.clean)
