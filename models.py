# COMP4680/8650 Assignment 6 -- Name: ____________________  Student ID: ____________
"""Encoder and decoder of the de-noising auto-encoder (COMP4680/8650 Assignment 6, Q2).

The names, constructor signatures and layer attributes are those of the course's starter
`models.py`, so the course's own size checker and training script run against this file unchanged.
The networks the report's Q3(f) plays with live in dae/variants.py.

The assignment's figure of the decoder is missing from our copy of the text; we read it as:
every decoder layer is ConvTranspose2d -> BatchNorm2d -> ReLU -> Conv2d -> BatchNorm2d -> ReLU,
except layer 5, whose 1x1 Conv2d (3 filters, no padding) is followed by Tanh so that outputs lie
in [-1, 1] like the normalised inputs.  "Padding Y" in the table is padding 1 for the 3x3
convolutions (size-preserving); the transposed convolutions use padding 0.
"""
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


def up_block(in_channels, up_channels, up_kernel, up_stride, out_channels, kernel, padding, last=False):  # noqa: PLR0913 (the table's columns)
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
    """An encoder and a decoder joined, with the encode / decode / forward trio of an auto-encoder."""

    def __init__(self, encoder, decoder):
        super().__init__()
        self.encoder, self.decoder = encoder, decoder

    def encode(self, x):
        return self.encoder(x)

    def decode(self, z):
        return self.decoder(z)

    def forward(self, x):
        return self.decode(self.encode(x))

