# COMP4680/8650 Assignment 6 -- Name: ____________________  Student ID: ____________
"""Encoder and decoder of the de-noising auto-encoder (COMP4680/8650 Assignment 6, Q2).

The names, constructor signatures and layer attributes are those of the course's starter
`models.py`, so the course's own size checker and training script run against this file unchanged.

The assignment's figure of the decoder is missing from our copy of the text; we read it as:
every decoder layer is ConvTranspose2d -> BatchNorm2d -> ReLU -> Conv2d -> BatchNorm2d -> ReLU,
except layer 5, whose 1x1 Conv2d (3 filters, no padding) is followed by Tanh so that outputs lie
in [-1, 1] like the normalised inputs.  "Padding Y" in the table is padding 1 for the 3x3
convolutions (size-preserving); the transposed convolutions use padding 0.
"""
import torch
from torch import nn


class Encoder(nn.Module):
    """Two-layer perceptron: Linear -> BatchNorm1d -> ReLU, then Linear -> Tanh.

    The defaults (z_dim 64) are the starter's signature; its training script, like ours, always passes
    --latent-size, whose default is 128.
    """

    def __init__(self, z_dim=64, img_size=64):
        super().__init__()
        in_features = 3 * img_size * img_size
        self.hidden_layer = nn.Sequential(
            nn.Linear(in_features, z_dim),
            nn.BatchNorm1d(z_dim),
            nn.ReLU(inplace=True),
        )
        self.output_layer = nn.Sequential(
            nn.Linear(z_dim, z_dim),
            nn.Tanh(),
        )

    def forward(self, x):
        x = x.flatten(1)  # N x 3*img_size*img_size; works for any memory layout
        return self.output_layer(self.hidden_layer(x))


def up_block(in_channels, up_channels, up_kernel, up_stride, out_channels, kernel, padding, last=False):
    """One decoder layer: an up-sampling transposed convolution, then a smoothing convolution.

    Output side = (input side - 1) * up_stride + up_kernel; the convolution keeps the size
    (3x3 with padding 1, or 1x1 with padding 0).  The last layer ends in Tanh instead of BN + ReLU.
    """
    layers = [
        nn.ConvTranspose2d(in_channels, up_channels, up_kernel, stride=up_stride, padding=0),
        nn.BatchNorm2d(up_channels),
        nn.ReLU(inplace=True),
        nn.Conv2d(up_channels, out_channels, kernel, stride=1, padding=padding),
    ]
    layers += [nn.Tanh()] if last else [nn.BatchNorm2d(out_channels), nn.ReLU(inplace=True)]
    return nn.Sequential(*layers)


class Decoder(nn.Module):
    """Five up-sampling layers from z_dim x 1 x 1 to 3 x 64 x 64 (the assignment's table).

    img_size is in the starter's signature only: the table fixes the output at 64 x 64.
    """

    def __init__(self, z_dim=64, img_size=64):
        super().__init__()
        self.z_dim = z_dim
        #                       in     up  k  s  out  k  pad
        self.layer1 = up_block(z_dim, 128, 7, 1, 128, 3, 1)        # 128 x  7 x  7
        self.layer2 = up_block(128, 64, 3, 2, 64, 3, 1)            #  64 x 15 x 15
        self.layer3 = up_block(64, 64, 3, 2, 64, 3, 1)             #  64 x 31 x 31
        self.layer4 = up_block(64, 32, 3, 2, 32, 3, 1)             #  32 x 63 x 63
        self.layer5 = up_block(32, 32, 2, 1, 3, 1, 0, last=True)   #   3 x 64 x 64

    def forward(self, x):
        x = x.reshape(x.size(0), self.z_dim, 1, 1)
        for layer in (self.layer1, self.layer2, self.layer3, self.layer4, self.layer5):
            x = layer(x)
        return x


class AutoEncoder(nn.Module):
    """Encoder and decoder together, with the encode / decode / forward trio of an auto-encoder."""
    has_latent = True  # decode() turns any z_dim vector into an image, so novel images make sense

    def __init__(self, z_dim=128, img_size=64, conv_encoder=False):
        super().__init__()
        self.encoder = ConvEncoder(z_dim, img_size) if conv_encoder else Encoder(z_dim, img_size)
        self.decoder = Decoder(z_dim, img_size)

    def encode(self, x):
        return self.encoder(x)

    def decode(self, z):
        return self.decoder(z)

    def forward(self, x):
        return self.decode(self.encode(x))


# ----------------------------------------------------------------------------- variants for Q3(f)
# The classes above are the assignment's; these live beside them for the experiments.

def conv_block(in_channels, out_channels, stride=1):
    return nn.Sequential(nn.Conv2d(in_channels, out_channels, 3, stride=stride, padding=1),
                         nn.BatchNorm2d(out_channels), nn.ReLU(inplace=True))


class ConvEncoder(nn.Module):
    """A convolutional encoder in place of the MLP: four stride-2 convolutions, then Linear -> Tanh to z_dim."""

    def __init__(self, z_dim=64, img_size=64):
        super().__init__()
        widths = [3, 32, 64, 128, 128]
        self.features = nn.Sequential(*[conv_block(a, b, stride=2) for a, b in zip(widths, widths[1:])])
        self.output_layer = nn.Sequential(nn.Flatten(), nn.Linear(128 * (img_size // 16) ** 2, z_dim), nn.Tanh())

    def forward(self, x):
        return self.output_layer(self.features(x))  # 128 x 4 x 4 -> z_dim


class UNetEncoder(nn.Module):
    """The contracting path: two convolutions at each scale, halving the size between scales; every scale
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


class UNetDecoder(nn.Module):
    """The expanding path: up-sample, concatenate the skip of the same scale, convolve."""

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
    has_latent = False
    tile_context = 32  # pixels a tile of a large image is read with on each side: the output reaches ~15

    def __init__(self, width=32):
        super().__init__()
        self.encoder = UNetEncoder((width, 2 * width, 4 * width))
        self.decoder = UNetDecoder((width, 2 * width, 4 * width))

    def forward(self, x):
        height, width = x.shape[-2:]
        return self.decoder(self.encoder(pad_to_multiple(x, 4)))[..., :height, :width]


class ResidualUNet(nn.Module):
    """The stronger denoiser: a U-Net that works on a half-resolution view of the image (each 2x2 block of
    pixels becomes 12 channels, as in FFDNet) and predicts the noise to take away, not the image.  Half
    the resolution costs a quarter of the arithmetic per layer, which buys width and a wider view."""
    has_latent = False
    tile_context = 48  # as UNet's: the output reaches ~32 pixels

    def __init__(self, widths=(48, 96, 192)):
        super().__init__()
        self.encoder = UNetEncoder(widths, in_channels=12)
        self.decoder = UNetDecoder(widths, out_channels=12, tanh=False)

    def forward(self, x):
        height, width = x.shape[-2:]
        half = nn.functional.pixel_unshuffle(pad_to_multiple(x, 8), 2)  # 8: one unshuffle, then two halvings
        noise = nn.functional.pixel_shuffle(self.decoder(self.encoder(half)), 2)[..., :height, :width]
        return (x - noise).clamp(-1, 1)


class SelfEnsemble(nn.Module):
    """A trained denoiser averaged over the eight mirror images and quarter turns of its input, each output
    turned back: the eight views make different errors, so their mean is nearer the clean image, for eight
    times the arithmetic (the 'geometric self-ensemble' of EDSR).  Needs square inputs for a model of fixed
    size (the assignment's); a fully convolutional one takes any."""

    def __init__(self, model):
        super().__init__()
        self.model = model
        self.has_latent = model.has_latent
        self.tile_context = getattr(model, 'tile_context', 0)

    def forward(self, x):
        total = torch.zeros_like(x)
        for transpose in (False, True):
            for dims in ((), (-1,), (-2,), (-2, -1)):
                view = x.transpose(-1, -2) if transpose else x
                output = self.model(view.flip(dims)).flip(dims)
                total += output.transpose(-1, -2) if transpose else output
        return total / 8


MODEL_NAMES = ('spec', 'conv-encoder', 'unet', 'residual-unet')


def build(name='spec', z_dim=128, img_size=64):
    """The assignment's auto-encoder ('spec') or one of the Q3(f) variants, by name."""
    if name == 'unet':
        return UNet()
    if name == 'residual-unet':
        return ResidualUNet()
    if name not in MODEL_NAMES:
        raise ValueError(f'unknown model {name!r}; one of {", ".join(MODEL_NAMES)}')
    return AutoEncoder(z_dim, img_size, conv_encoder=name == 'conv-encoder')


def count_parameters(module):
    return sum(p.numel() for p in module.parameters() if p.requires_grad)


if __name__ == '__main__':
    model = AutoEncoder()
    print(model)
    print(f'parameters: encoder {count_parameters(model.encoder):,}, decoder {count_parameters(model.decoder):,}')
    print('output', tuple(model.eval()(torch.zeros(2, 3, 64, 64)).shape))
