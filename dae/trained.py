"""What a finished run leaves, read back: its trained model (for denoise.py, the experiments and the
report), the half-precision weights shipped in weights/, its validation table and its split.
"""
import dataclasses

import torch

import models
from dae.checkpoint import FORMAT, Validation, load_checkpoint
from dae.cli import UsageError
from dae.files import atomic_write
from dae.images import load_dataset
from dae.training import split_dataset


def model_of(checkpoint, device, path):
    """The trained model of a loaded checkpoint, in eval mode on `device`."""
    try:
        model = models.build(*dataclasses.astuple(checkpoint['config'].model)).to(device)
        model.encoder.load_state_dict(checkpoint['encoder'])
        model.decoder.load_state_dict(checkpoint['decoder'])
    except (KeyError, TypeError, ValueError, RuntimeError) as error:
        first_line = str(error).strip().splitlines()[0]
        raise UsageError(f'{path}: not a checkpoint of this models.py ({first_line})')
    return model.eval()


def load_model(path, device):
    """(the trained model in eval mode on `device`, its run's RunConfig), from a checkpoint of any device."""
    checkpoint = load_checkpoint(path)
    return model_of(checkpoint, device, path), checkpoint['config']


def save_weights(path, checkpoint, command):
    """The trained model alone, in half precision (a quarter of a checkpoint): what denoise.py needs.
    load_model reads it like a checkpoint; --resume refuses it."""
    def half(weights):
        return {key: value.half() if value.is_floating_point() else value for key, value in weights.items()}
    shipped = {'format': FORMAT, 'encoder': half(checkpoint['encoder']), 'decoder': half(checkpoint['decoder']),
               'config': dataclasses.asdict(checkpoint['config']), 'num_images': checkpoint['num_images'],
               'iteration': checkpoint['iteration'], 'command': command, 'weights_only': True}
    atomic_write(path, lambda tmp: torch.save(shipped, tmp))


def read_validation(path):
    """The rows of a validation.csv, as Validation tuples."""
    try:
        with open(path) as f:
            lines = f.read().splitlines()[1:]
        return [Validation(int(line.split(',')[0]), *map(float, line.split(',')[1:])) for line in lines if line]
    except OSError as error:
        raise UsageError(f'{path}: {error.strerror}')
    except (ValueError, TypeError) as error:
        raise UsageError(f'{path}: not a validation table written by asgn6.py ({error})')


def split_of_run(config, data_dir):
    """(the Split on the CPU, number of images) of a run, from its config and the folder it trained on."""
    images, paths = load_dataset(data_dir, config.model.image_size)
    return split_dataset(images, paths, config, torch.device('cpu')), len(paths)
