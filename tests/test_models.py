"""The spec'd models: sizes (the course's checker, run under pytest too), the architecture we read, and Q1."""
import os
import re

import pytest
import torch
from torch import nn

from check_models import TestDecoder, TestEncoder  # noqa: F401  (pytest collects the course-style size tests)
from dae import variants
from dae.denoising import SelfEnsemble
from models import AutoEncoder, Decoder, Encoder
from conftest import ROOT


def report_answer(part):
    """The answer report.md gives to Q1 (a)-(d), in bold after its derivation."""
    text = open(os.path.join(ROOT, 'report', 'report.md')).read()
    paragraph = text.split(f'**({part})**', 1)[1].split('\n\n', 1)[0]
    return re.findall(r'\*\*([^*]+)\*\*', paragraph)[0]


@pytest.mark.parametrize('part, layer, input_shape', [
    ('a', nn.Conv2d(3, 16, kernel_size=3, stride=1, padding=1), (32, 3, 64, 64)),
    ('b', nn.ConvTranspose2d(128, 128, kernel_size=3, stride=1, padding=0), (32, 128, 1, 1)),
    ('c', nn.ConvTranspose2d(64, 32, kernel_size=5, stride=2, padding=0), (32, 64, 31, 31))])
def test_the_reports_q1_output_sizes_are_what_the_layers_give(part, layer, input_shape):
    assert report_answer(part) == str(tuple(layer(torch.zeros(input_shape)).shape))


def count_parameters(module):
    return sum(parameter.numel() for parameter in module.parameters())


def test_the_reports_q1_parameter_count_is_what_the_layer_has():
    assert report_answer('d') == str(count_parameters(nn.Conv2d(3, 16, kernel_size=3)))


def test_q1d_conv2d_parameter_count():
    assert count_parameters(nn.Conv2d(3, 16, kernel_size=3)) == 3 * 3 * 3 * 16 + 16 == 448


def test_encoder_is_the_specified_perceptron():
    encoder = Encoder(128, 64)
    assert [type(m) for m in encoder.hidden_layer] == [nn.Linear, nn.BatchNorm1d, nn.ReLU]
    assert [type(m) for m in encoder.output_layer] == [nn.Linear, nn.Tanh]
    assert encoder.hidden_layer[0].in_features == 3 * 64 * 64


def test_decoder_follows_the_table():
    decoder = Decoder(128, 64)
    table = [(128, 7, 1, 128, 3, 1), (64, 3, 2, 64, 3, 1), (64, 3, 2, 64, 3, 1), (32, 3, 2, 32, 3, 1),
             (32, 2, 1, 3, 1, 0)]
    for index, (up, up_kernel, stride, out, kernel, padding) in enumerate(table, 1):
        layer = getattr(decoder, f'layer{index}')
        transposed, conv = layer[0], layer[3]
        assert isinstance(transposed, nn.ConvTranspose2d) and isinstance(conv, nn.Conv2d)
        assert (transposed.out_channels, transposed.kernel_size[0], transposed.stride[0]) == (up, up_kernel, stride)
        assert transposed.padding == (0, 0)
        assert (conv.out_channels, conv.kernel_size[0], conv.stride[0], conv.padding[0]) == (out, kernel, 1, padding)
    assert isinstance(decoder.layer5[-1], nn.Tanh)


def test_outputs_lie_in_the_image_range_for_any_batch_size():
    model = AutoEncoder(Encoder(16, 64), Decoder(16, 64)).eval()
    out = model(torch.randn(3, 3, 64, 64) * 5)
    assert out.shape == (3, 3, 64, 64)
    assert out.abs().max() <= 1


def test_decoder_accepts_flat_latents():
    decoder = Decoder(16, 64).eval()
    assert decoder(torch.zeros(2, 16)).shape == decoder(torch.zeros(2, 16, 1, 1)).shape == (2, 3, 64, 64)


def test_the_self_ensemble_commutes_with_every_flip_and_turn_and_is_not_the_plain_model():
    torch.manual_seed(0)
    model = variants.UNet(width=4).eval()  # random weights: its output depends on which way up the input is
    ensemble = SelfEnsemble(model)
    x = torch.rand(2, 3, 12, 12) * 2 - 1
    out = ensemble(x)
    turns = [lambda t: t, lambda t: t.flip(-1), lambda t: t.flip(-2), lambda t: t.flip(-2, -1),
             lambda t: t.transpose(-1, -2), lambda t: t.transpose(-1, -2).flip(-1),
             lambda t: t.transpose(-1, -2).flip(-2), lambda t: t.transpose(-1, -2).flip(-2, -1)]
    for turn in turns:  # an average over all eight views gives the same answer from any of them
        assert torch.allclose(ensemble(turn(x)), turn(out), atol=1e-5)
    assert not torch.allclose(model(x), out, atol=1e-3)
    assert ensemble(torch.zeros(1, 3, 12, 20)).shape == (1, 3, 12, 20)  # a non-square image keeps its shape


def test_the_starters_calls_run_against_models_py():
    """What the course's asgn6.py does with models.py, as the assignment and the starter's interface describe it:
    positional constructors, D.forward(E.forward(noisy)) in training mode, and novel images from a
    (batch, latent, 1, 1) uniform batch. It cannot show that the course's own file runs: that file is not here."""
    torch.manual_seed(4680)
    latent_size, image_size, batch = 128, 64, 32
    E, D = Encoder(latent_size, image_size), Decoder(latent_size, image_size)
    noisy = (torch.rand(batch, 3, image_size, image_size) * 2 - 1).clamp(-1, 1)
    out = D.forward(E.forward(noisy))
    loss = (noisy - out).abs().mean()
    loss.backward()  # both models train from the one loss
    assert out.shape == (batch, 3, image_size, image_size) and E.hidden_layer[0].weight.grad is not None
    novel = D.forward(torch.rand(batch, latent_size, 1, 1) * 2 - 1)
    assert novel.shape == (batch, 3, image_size, image_size) and novel.abs().max() <= 1


def test_the_resize_decoder_makes_the_same_images_without_transposed_strides():
    decoder = variants.ResizeDecoder(16, 64).eval()
    assert decoder(torch.zeros(2, 16)).shape == (2, 3, 64, 64)
    strided = [m for m in decoder.modules() if isinstance(m, nn.ConvTranspose2d) and m.stride != (1, 1)]
    assert strided == [] and any(isinstance(m, nn.Upsample) for m in decoder.modules())
