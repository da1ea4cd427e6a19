"""Latent vectors drawn from a Gaussian fitted to the codes the decoder was trained on (denoise.py
--generate --latent-source data, the report's Q3(e)); uniform ones are dae.training.uniform_latents.
"""
import torch

from dae.images import add_noise, to_unit_range


def user_draws(seed, device='cpu'):
    """The generator of denoise.py's noise and latents (and of the report's figures that repeat them)."""
    return torch.Generator(device=device).manual_seed(seed)


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
    """Draws from `generator` (not the global RNG), so that a seed repeats them; clamped because the encoder's
    Tanh never leaves [-1, 1]."""
    unit = torch.empty(count, gaussian.loc.numel(), dtype=torch.float64).normal_(generator=generator)
    return (gaussian.loc + (gaussian.scale_tril @ unit.unsqueeze(-1)).squeeze(-1)).clamp(-1, 1)


def data_latents(model, images, noise_level, count, generator):
    """(the noisy codes, `count` draws from the Gaussian fitted to them): noise first, then latents, from
    `generator`, as denoise.py --latent-source data draws them."""
    codes = noisy_codes(model, images, noise_level, generator)
    return codes, sample_clamped(fitted_gaussian(codes), count, generator)
