"""The networks of the report's Q3(f), beside the assignment's own (models.py), each built by name with
build(): a convolutional encoder, a decoder that resizes then convolves, and two fully convolutional
denoisers without a bottleneck (a U-Net, and the stronger residual U-Net)."""
import torch
from torch import nn

import models
from dae.config import MODEL_NAMES


def conv_block(in_channels, out_channels, stride=1):
    return nn.Sequential(nn.Conv2d(in_channels, out_channels, 3, stride=stride, padding=1),
                         nn.BatchNorm2d(out_channels), nn.ReLU(inplace=True))


class ConvEncoder(nn.Module):
    """A convolutional encoder in place of the MLP: four stride-2 convolutions, then Linear -> Tanh to z_dim."""

    def __init__(self, z_dim, img_size):
        super().__init__()
        widths = [3, 32, 64, 128, 128]
        self.features = nn.Sequential(*[conv_block(a, b, stride=2) for a, b in zip(widths, widths[1:])])
        self.output_layer = nn.Sequential(nn.Flatten(), nn.Linear(128 * (img_size // 16) ** 2, z_dim), nn.Tanh())

    def forward(self, x):
        return self.output_layer(self.features(x))  # 128 x 4 x 4 -> z_dim


class ResizeDecoder(models.Decoder):
    """The assignment's decoder with one change: in layers 2 to 4 the stride-2 transposed convolution becomes a
    nearest-neighbour resize to the same size (15, 31, 63), then a 3x3 convolution with the same channels (and
    as many weights).  Overlapping stride-2 kernels give alternate output pixels one or two taps, a checkerboard;
    a resize gives every pixel the same."""

    def __init__(self, z_dim, img_size):
        super().__init__(z_dim, img_size)
        side = 7
        for layer in (self.layer2, self.layer3, self.layer4):
            side = 2 * side + 1
            up = layer[0]
            layer[0] = nn.Sequential(nn.Upsample(size=(side, side), mode='nearest'),
                                     nn.Conv2d(up.in_channels, up.out_channels, 3, padding=1))


class Contracting(nn.Module):
    """A U-Net's contracting path: two convolutions at each scale, halving the size between scales; every scale
    is kept for the skips."""

    def __init__(self, widths=(32, 64, 128), in_channels=3):
        super().__init__()
        stages, previous = [], in_channels
        for index, width in enumerate(widths):
            stages.append(nn.Sequential(conv_block(previous, width, 1 if index == 0 else 2), conv_block(width, width)))
            previous = width
        self.stages = nn.ModuleList(stages)

    def forward(self, x):
        features = []
        for stage in self.stages:
            x = stage(x)
            features.append(x)
        return features


class Expanding(nn.Module):
    """A U-Net's expanding path: up-sample, concatenate the skip of the same scale, convolve."""

    def __init__(self, widths=(32, 64, 128), out_channels=3, tanh=True):
        super().__init__()
        pairs = list(zip(widths, widths[1:]))[::-1]  # (finer, coarser), coarsest first
        self.up = nn.ModuleList([nn.ConvTranspose2d(coarse, fine, 2, stride=2) for fine, coarse in pairs])
        self.merge = nn.ModuleList([conv_block(2 * fine, fine) for fine, _ in pairs])
        self.output_layer = nn.Sequential(nn.Conv2d(widths[0], out_channels, 1), *([nn.Tanh()] if tanh else []))

    def forward(self, features):
        x = features[-1]
        for up, merge, skip in zip(self.up, self.merge, reversed(features[:-1])):
            x = merge(torch.cat([up(x), skip], dim=1))
        return self.output_layer(x)


def pad_to_multiple(x, multiple):
    """Replicate-pad the bottom and right edges up to a multiple of `multiple`: the halvings need it."""
    height, width = x.shape[-2:]
    return nn.functional.pad(x, (0, -width % multiple, 0, -height % multiple), mode='replicate')


class UNet(nn.Module):
    """A small fully convolutional denoiser with skip connections and no bottleneck, at three scales
    (64, 32 and 16 pixels for a 64-pixel image): any image size."""
    tile_context = 32  # pixels a tile of a large image is read with on each side: the output reaches ~15

    def __init__(self, width=32):
        super().__init__()
        self.contracting = Contracting((width, 2 * width, 4 * width))
        self.expanding = Expanding((width, 2 * width, 4 * width))

    def forward(self, x):
        height, width = x.shape[-2:]
        return self.expanding(self.contracting(pad_to_multiple(x, 4)))[..., :height, :width]


class ResidualUNet(nn.Module):
    """The stronger denoiser: a U-Net that works on a half-resolution view of the image (each 2x2 block of
    pixels becomes 12 channels, as in FFDNet) and predicts the noise to take away, not the image.  Half
    the resolution costs a quarter of the arithmetic per layer, which buys width and a wider view."""
    tile_context = 48  # as UNet's: the output reaches ~32 pixels

    def __init__(self, widths=(48, 96, 192)):
        super().__init__()
        self.contracting = Contracting(widths, in_channels=12)
        self.expanding = Expanding(widths, out_channels=12, tanh=False)

    def forward(self, x):
        height, width = x.shape[-2:]
        half = nn.functional.pixel_unshuffle(pad_to_multiple(x, 8), 2)  # 8: one unshuffle, then two halvings
        noise = nn.functional.pixel_shuffle(self.expanding(self.contracting(half)), 2)[..., :height, :width]
        return (x - noise).clamp(-1, 1)


def part_names(name):
    """The model's two parts, which the starter's two Adams train: encoder and decoder, or a U-Net's paths."""
    return ('contracting', 'expanding') if name in ('unet', 'residual-unet') else ('encoder', 'decoder')


def build(name, latent_size, image_size):
    """The assignment's auto-encoder ('spec'), one with another encoder or decoder, or a U-Net, by name."""
    if name == 'unet':
        return UNet()
    if name == 'residual-unet':
        return ResidualUNet()
    if name not in MODEL_NAMES:
        raise ValueError(f'unknown model {name!r}; one of {", ".join(MODEL_NAMES)}')
    encoder = (ConvEncoder if name == 'conv-encoder' else models.Encoder)(latent_size, image_size)
    decoder = (ResizeDecoder if name == 'resize-decoder' else models.Decoder)(latent_size, image_size)
    return models.AutoEncoder(encoder, decoder)
