"""Training the auto-encoder: the run's named random streams, the held-out split, the model with its
optimisers, the step and the batch order (the loop body that asgn6.py and the benchmark both run),
and held-out evaluation.
"""
import math
from typing import NamedTuple

import torch

import models
from cli import Failure
from images import add_noise, load_dataset, psnr, to_unit_range


class Streams:
    """Every random stream of a run, each seeded from --seed here and nowhere else.

    Separate streams keep each draw independent of the others: holding images out, say, does not
    change the training noise, and a resumed run can restore each stream on its own.
    """

    def __init__(self, seed):
        self.seed = seed

    def seed_weights(self):
        torch.manual_seed(self.seed)  # nn.Module initialisation draws from torch's global generator

    def epoch_order(self, epoch):
        return torch.Generator().manual_seed(self.seed * 100_003 + epoch)  # a function of (seed, epoch) alone

    def training_noise(self, device, iteration=0):
        # iteration > 0: a resume whose saved generator belongs to another kind of device
        return torch.Generator(device=device).manual_seed(self.seed + iteration)

    def user_draws(self, device='cpu'):
        return torch.Generator(device=device).manual_seed(self.seed)  # denoise.py's noise and latents

    def noise_band(self, band):
        return torch.Generator().manual_seed(self.seed * 1_000_003 + band)  # denoise.py's noise on a large image

    def novel_latents(self):
        return torch.Generator().manual_seed(self.seed + 1)

    def held_out_split(self):
        return torch.Generator().manual_seed(self.seed + 2)

    def held_out_noise(self, device):
        return torch.Generator(device=device).manual_seed(self.seed + 3)

    def training_subset_noise(self, device):
        return torch.Generator(device=device).manual_seed(self.seed + 4)

    def training_subset(self):
        return torch.Generator().manual_seed(self.seed + 5)

    def augmentation(self, iteration):
        return torch.Generator().manual_seed(self.seed * 1_000_033 + iteration)  # of (seed, iteration) alone: resumes exactly


# ----------------------------------------------------------------------------- data on the device

class MeasuredSet(NamedTuple):
    """Images with the one fixed noise draw they are always measured on: the held-out images, or the
    same number of training images, so that the two PSNRs differ only in whether the model saw the images."""
    clean: torch.Tensor
    noisy: torch.Tensor
    paths: list

    @property
    def noisy_psnr(self):
        return psnr(self.noisy, self.clean)


def held_out_split(num_images, fraction, streams):
    """(training, held-out) image indices: a seeded choice, disjoint, each sorted; none held out for 0."""
    count = 0 if fraction == 0 else max(1, round(num_images * fraction))
    order = torch.randperm(num_images, generator=streams.held_out_split())
    return order[count:].sort().values, order[:count].sort().values


def split_dataset(images, paths, *, val_split, noise_level, streams, device):
    """(training images on `device`, as stored, their paths, MeasuredSet or None): the split every user of a run shares."""
    train_indices, held_out_indices = held_out_split(images.size(0), val_split, streams)
    train_paths = [paths[i] for i in train_indices.tolist()]
    if not held_out_indices.numel():
        return images[train_indices].to(device), train_paths, None
    clean = to_unit_range(images[held_out_indices]).to(device)
    noisy = add_noise(clean, noise_level, streams.held_out_noise(device))
    return images[train_indices].to(device), train_paths, MeasuredSet(clean, noisy, [paths[i] for i in held_out_indices])


def training_probe(train_images, train_paths, count, *, noise_level, streams, device):
    """`count` training images chosen by the seed, with their own fixed noise draw: the held-out set's twin."""
    chosen = torch.randperm(train_images.size(0), generator=streams.training_subset())[:count].sort().values
    clean = to_unit_range(train_images[chosen.to(train_images.device)]).to(device)
    noisy = add_noise(clean, noise_level, streams.training_subset_noise(device))
    return MeasuredSet(clean, noisy, [train_paths[i] for i in chosen.tolist()])


def split_of_run(settings, data_dir=None):
    """(held-out MeasuredSet, training probe, number of images) of a finished run, on the CPU, from its settings
    alone: asgn6.py's own split and its twin among the training images.  `data_dir` stands in for the run's
    (shipped weights name a folder of the machine that trained them)."""
    images, paths = load_dataset(data_dir or settings['data_dir'], settings['image_size'])
    streams, cpu = Streams(settings['seed']), torch.device('cpu')
    train_images, train_paths, held_out = split_dataset(
        images, paths, val_split=settings['val_split'], noise_level=settings['noise_level'], streams=streams, device=cpu)
    probe = training_probe(train_images, train_paths, held_out.clean.size(0), noise_level=settings['noise_level'],
                           streams=streams, device=cpu)
    return held_out, probe, len(paths)


# ----------------------------------------------------------------------------- model and step

LEARNING_RATES = (1e-3, 2e-3)  # the starter's: encoder, decoder

def build(model_name, latent_size, image_size, device, memory_format=torch.contiguous_format):
    """The model on `device` and its two Adams, with the starter's rates and betas."""
    model = models.build(model_name, latent_size, image_size).to(device, memory_format=memory_format)
    fused = {'fused': True} if device.type == 'cuda' else {}
    optimizers = [torch.optim.Adam(part.parameters(), lr=rate, betas=(0.5, 0.999), **fused)
                  for part, rate in zip((model.encoder, model.decoder), LEARNING_RATES)]
    return model, optimizers


def cosine_schedule(total):
    """iteration -> factor of the learning rates: from 1 at the first iteration to nearly 0 at the last
    (half a cosine, as in SGDR without restarts), so a run of fixed length ends in small, careful steps."""
    return lambda iteration: 0.5 * (1 + math.cos(math.pi * (iteration - 1) / total))


def set_learning_rates(optimizers, factor):
    for optimizer, rate in zip(optimizers, LEARNING_RATES):
        for group in optimizer.param_groups:
            group['lr'] = rate * factor


def reconstruction_loss(denoised, clean, kind='l1'):
    error = clean - denoised.float()
    return error.abs().mean() if kind == 'l1' else (error ** 2).mean()


def train_step(model, optimizers, clean, noisy, precision, loss_kind='l1'):
    """One Adam step on the L1 (or squared) distance between the clean batch and the denoised noisy batch."""
    with torch.autocast(clean.device.type, dtype=torch.bfloat16, enabled=precision == 'bf16'):
        denoised = model(noisy)
    loss = reconstruction_loss(denoised, clean, loss_kind)
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
    """Whether a save comes right after an epoch's last batch when that batch is short (under a quarter of a
    batch: 674 images at 32 leave 2).  BatchNorm normalises that step with two images' statistics and moves
    its running averages towards them, so such a save scores low in eval mode; it is left out of a run's score."""
    short = train_images % batch_size
    return 0 < short < batch_size // 4 and iteration % batches_per_epoch(train_images, batch_size) == 0


def batch_order(num_images, batch_size, streams, first, last, device):
    """(iteration, indices of its images) for iterations first..last, numbered across epochs from 1."""
    batch_size, per_epoch = min(batch_size, num_images), batches_per_epoch(num_images, batch_size)
    order = None
    for iteration in range(first, last + 1):
        epoch, index = divmod(iteration - 1, per_epoch)
        if order is None or index == 0:
            order = torch.randperm(num_images, generator=streams.epoch_order(epoch)).to(device)
        yield iteration, order[index * batch_size:(index + 1) * batch_size]


class Step(NamedTuple):
    iteration: int
    clean: torch.Tensor
    noisy: torch.Tensor
    denoised: torch.Tensor
    loss: torch.Tensor  # still on the device: reading it back every iteration would stall a GPU


def steps(state, images, last, *, batch_size, noise_level, precision, loss_kind, streams,
          memory_format=torch.contiguous_format, schedule=None, augment=False, step_fn=None):
    """The body of the training loop, from the iteration after state.iteration to `last`, one Step each.
    `images` may be stored as bytes: each batch becomes [-1, 1] floats when it is taken.
    schedule(iteration) scales the learning rates; None keeps the starter's constant rates untouched.
    augment: each clean image is flipped or turned at random (see `symmetries`) before the noise is added.

    step_fn replaces train_step (same arguments), for the benchmark to time the step inside the real loop.
    """
    step_fn = step_fn or train_step
    for iteration, indices in batch_order(images.size(0), batch_size, streams, state.iteration + 1, last,
                                          images.device):
        clean = to_unit_range(images[indices])
        if augment:
            clean = symmetries(clean, streams.augmentation(iteration))
        clean = clean.contiguous(memory_format=memory_format)
        noisy = add_noise(clean, noise_level, state.noise_generator)
        if schedule is not None:
            set_learning_rates(state.optimizers, schedule(iteration))
        loss, denoised = step_fn(state.model, state.optimizers, clean, noisy, precision, loss_kind)
        state.iteration = iteration
        yield Step(iteration, clean, noisy, denoised, loss)


def symmetries(batch, generator):
    """Each square image as one of its eight mirror images and quarter turns, drawn at random: noise and
    a denoiser's local statistics do not care which way up a Pokemon is, and the 674 training images of a
    held-out run are too few for a wide network, which otherwise learns them and not the denoising."""
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

    def add(self, step):
        if not self.pending:
            self.first = step.iteration
        self.pending.append(step.loss)

    def flush(self):
        """The buffered losses as floats; a non-finite one is a Failure naming its iteration."""
        if not self.pending:
            return []
        values = torch.stack(self.pending).tolist()
        self.pending = []
        for offset, value in enumerate(values):
            if value != value or value in (float('inf'), float('-inf')):
                raise Failure(f'loss is {value} at iteration {self.first + offset}')
        return values


# ----------------------------------------------------------------------------- evaluation

@torch.no_grad()
def decode_novel(model, latents):
    """Decode fixed latent vectors in eval mode (BatchNorm running statistics), then back to training."""
    model.eval()
    images = model.decode(latents)
    model.train()
    return images


@torch.no_grad()
def evaluate(model, clean, noisy):
    """(L1, PSNR) of the model's output on held-out images, in eval mode, in batches."""
    was_training = model.training
    model.eval()
    denoised = torch.cat([model(batch) for batch in noisy.split(64)]).float()
    model.train(was_training)
    return (clean - denoised).abs().mean().item(), psnr(denoised, clean)


def novel_latents(count, size, streams, device):
    """One batch of uniform latent vectors for every novel grid of a run, so grids are comparable over time."""
    return (2 * torch.rand(count, size, generator=streams.novel_latents()) - 1).to(device)


@torch.no_grad()
def noisy_codes(model, images, noise_level, generator):
    """The encoder's codes of stored images under one draw of the training noise: the codes the decoder was
    trained on (it never saw a clean image's code)."""
    device = next(model.parameters()).device
    batches = [add_noise(to_unit_range(batch), noise_level, generator) for batch in images.split(256)]
    return torch.cat([model.encode(batch.to(device)).cpu() for batch in batches]).double()


def fitted_gaussian(codes):
    """A Gaussian with the codes' mean and covariance (a little ridge keeps it invertible)."""
    covariance = torch.cov(codes.T) + 1e-6 * torch.eye(codes.size(1), dtype=torch.float64)
    return torch.distributions.MultivariateNormal(codes.mean(0), covariance)


def sample_clamped(gaussian, count, generator):
    """Draws from `generator` (not the global RNG), so a seed repeats them; clamped because the encoder's
    Tanh never leaves [-1, 1]."""
    unit = torch.empty(count, gaussian.loc.numel(), dtype=torch.float64).normal_(generator=generator)
    return (gaussian.loc + (gaussian.scale_tril @ unit.unsqueeze(-1)).squeeze(-1)).clamp(-1, 1)
