# COMP4680/8650 Assignment 6 -- Name: ____________________  Student ID: ____________
"""Size checker for models.py (Assignment 6: Q2 asks for it, Q3(a) runs it): does every layer produce the tensor size
the spec asks for?

    python check_models.py        # prints 'Ran 4 tests in ...s' and 'OK' when all sizes are right

Passing says the sizes are right, not that the model is: a wrong activation has the right size too.
"""
import sys
import unittest

import torch

from models import Decoder, Encoder

BATCH_SIZE = 32
IMAGE_SIZE = 64
LATENT_SIZE = 128


def uniform_batch(*size):
    """Inputs uniform in [-1, 1], the range of the normalised images."""
    return 2 * torch.rand(*size) - 1


class SizeTestCase(unittest.TestCase):
    def assertLayerSize(self, name, tensor, expected):
        self.assertEqual(tuple(tensor.shape), expected,
                         f'{name} gives {tuple(tensor.shape)}, expected {expected}')


class TestEncoder(SizeTestCase):
    def setUp(self):
        torch.manual_seed(4680)
        self.model = Encoder(LATENT_SIZE, IMAGE_SIZE)
        self.images = uniform_batch(BATCH_SIZE, 3, IMAGE_SIZE, IMAGE_SIZE)

    def test_size(self):
        """The Encoder maps a batch of images to one latent vector each."""
        self.assertLayerSize('Encoder', self.model(self.images), (BATCH_SIZE, LATENT_SIZE))

    def test_layers(self):
        """Each layer of the Encoder produces the right size output."""
        x = self.images.reshape(BATCH_SIZE, -1)
        for name in ('hidden_layer', 'output_layer'):
            x = getattr(self.model, name)(x)
            self.assertLayerSize(f'Encoder.{name}', x, (BATCH_SIZE, LATENT_SIZE))


class TestDecoder(SizeTestCase):
    EXPECTED = {
        'layer1': (BATCH_SIZE, 128, 7, 7),
        'layer2': (BATCH_SIZE, 64, 15, 15),
        'layer3': (BATCH_SIZE, 64, 31, 31),
        'layer4': (BATCH_SIZE, 32, 63, 63),
        'layer5': (BATCH_SIZE, 3, IMAGE_SIZE, IMAGE_SIZE),
    }

    def setUp(self):
        torch.manual_seed(4680)
        self.model = Decoder(LATENT_SIZE, IMAGE_SIZE)
        self.latents = uniform_batch(BATCH_SIZE, LATENT_SIZE)

    def test_size(self):
        """The Decoder maps latent vectors to 3 x 64 x 64 images."""
        self.assertLayerSize('Decoder', self.model(self.latents), (BATCH_SIZE, 3, IMAGE_SIZE, IMAGE_SIZE))

    def test_layers(self):
        """Each layer of the Decoder produces the right size output."""
        x = self.latents.reshape(BATCH_SIZE, LATENT_SIZE, 1, 1)
        for name, expected in self.EXPECTED.items():
            x = getattr(self.model, name)(x)
            self.assertLayerSize(f'Decoder.{name}', x, expected)


if __name__ == '__main__':
    if {'-h', '--help'} & set(sys.argv[1:]):  # unittest's own help would list its options, not what this checks
        print(__doc__.strip() + "\n\nAny other arguments go to unittest (for example -v: one line per test).")
        sys.exit(0)
    unittest.main()
