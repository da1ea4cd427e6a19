"""A run, in one place: what defines it (RunConfig), how long it is and whether it has finished, the state
a checkpoint holds (TrainingState), and every file it leaves: the checkpoint, the loss file, the
validation table and the shipped weights.  `upgrade` is the one place that knows older formats.  torch
is imported by the functions that touch a checkpoint, so that plot_loss.py, which reads loss files
only, starts without it.
"""
import csv
import dataclasses
import io
import logging
import os
import shlex
from dataclasses import dataclass, field
from typing import NamedTuple

import numpy as np

from dae.errors import UsageError
from dae.files import atomic_write, write_text_atomic

log = logging.getLogger(__name__)
CHECKPOINT_NAME = 'checkpoint.pt'
VALIDATION_NAME = 'validation.csv'
FORMAT = 3  # 1 held the command line as 'args'; 2 a nested model config and the log and save intervals


@dataclass(frozen=True)
class RunConfig:
    """Everything that defines a training run, and nothing about where or how this call runs it."""
    model: str = 'spec'
    latent_size: int = 128
    image_size: int = 64
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

    def model_args(self):
        """What builds the network: variants.build(*config.model_args())."""
        return self.model, self.latent_size, self.image_size

    def must_match(self):
        """What a resumed run may not change, or it would not be the same run (epochs too, under a cosine
        schedule, whose length it sets)."""
        same = ('model', 'latent_size', 'image_size', 'batch_size', 'seed', 'noise_level', 'loss', 'lr_schedule',
                'augment', 'val_split')
        return same + (('epochs',) if self.lr_schedule == 'cosine' else ())


def as_flag(key, value):
    """A setting as its flag on the command line: '--augment', 'no --augment', '--data-dir my\\ folder'."""
    name = '--' + key.replace('_', '-')
    return name if value is True else f'no {name}' if value is False else f'{name} {shlex.quote(str(value))}'


def resumed_config(saved, given):
    """(the RunConfig a resumed run goes on with, {setting: value} taken from the checkpoint where it is not
    the default): `given` holds the settings typed on the command line, which may change what does not
    define the run; the rest come from `saved`."""
    for key in saved.must_match():
        if key in given and given[key] != getattr(saved, key):
            raise UsageError(f"--resume: the checkpoint's run has {as_flag(key, getattr(saved, key))}; this one has "
                             f'{as_flag(key, given[key])}')
    fields, defaults = RunConfig.__dataclass_fields__, RunConfig()
    taken = {key: getattr(saved, key) for key in fields
             if key not in given and getattr(saved, key) != getattr(defaults, key)}
    return dataclasses.replace(saved, **{key: value for key, value in given.items() if key in fields}), taken


# ----------------------------------------------------------------------------- how long a run is

def batches_per_epoch(num_images, batch_size):
    """Full batches plus the remainder, unless the remainder is one image (BatchNorm cannot train on one)."""
    batch_size = min(batch_size, num_images)
    full, rest = divmod(num_images, batch_size)
    return full + (rest >= 2)


def held_out_count(num_images, fraction):
    return 0 if fraction == 0 else max(1, round(num_images * fraction))


def total_iterations(config, num_images):
    """The iterations a run of `config` on `num_images` images trains for, held-out images left out."""
    return config.epochs * batches_per_epoch(num_images - held_out_count(num_images, config.val_split),
                                             config.batch_size)


def is_finished(iterations, config, num_images):
    return iterations >= total_iterations(config, num_images)


# ----------------------------------------------------------------------------- the state a checkpoint holds

class Validation(NamedTuple):
    """One measurement at a save: the held-out images and their same-sized twin among the training images."""
    iteration: int
    l1: float
    psnr: float
    noisy_psnr: float
    train_l1: float
    train_psnr: float
    train_noisy_psnr: float


@dataclass
class History:
    """What a run has measured so far: every training loss, and the held-out measurements of each save."""
    losses: list = field(default_factory=list)
    validation: list = field(default_factory=list)  # of Validation


class TrainingState:
    """Everything that changes while a run trains; a run restored from its state_dict goes on bit for bit."""

    def __init__(self, model, optimizers, noise_generator):
        self.model, self.optimizers, self.noise_generator = model, optimizers, noise_generator
        self.iteration, self.history = 0, History()  # iteration: the last one done

    def state_dict(self):
        import torch
        encoder_optimizer, decoder_optimizer = self.optimizers
        return {
            'encoder': self.model.encoder.state_dict(), 'decoder': self.model.decoder.state_dict(),
            'encoder_optimizer': encoder_optimizer.state_dict(), 'decoder_optimizer': decoder_optimizer.state_dict(),
            'iteration': self.iteration, 'losses': list(self.history.losses),
            'validation': [list(row) for row in self.history.validation],
            'noise_rng': self.noise_generator.get_state(), 'noise_rng_device': self.noise_generator.device.type,
            'torch_rng': torch.get_rng_state(),
        }

    def load_state_dict(self, state, reseed_noise):
        """Restore; reseed_noise(iteration) gives a fresh generator when the saved one is another device's."""
        import torch
        self.model.encoder.load_state_dict(state['encoder'])
        self.model.decoder.load_state_dict(state['decoder'])
        for optimizer, key in zip(self.optimizers, ('encoder_optimizer', 'decoder_optimizer')):
            optimizer.load_state_dict(state[key])
        torch.set_rng_state(state['torch_rng'])
        if state['noise_rng_device'] == self.noise_generator.device.type:
            self.noise_generator.set_state(state['noise_rng'])
        else:  # another kind of device has another kind of generator: the run goes on, not bit for bit
            log.warning('note: checkpoint written on %s; the noise will not repeat exactly', state['noise_rng_device'])
            self.noise_generator = reseed_noise(state['iteration'])
        self.iteration = state['iteration']
        self.history = History(list(state['losses']), [Validation(*row) for row in state['validation']])


# ----------------------------------------------------------------------------- the checkpoint and the weights

def save_checkpoint(path, state, config, num_images, loss_file):
    """The state, the run's config, its dataset size and where its loss file is, relative to `path`'s folder
    (so that a checkpoint names no folder of the machine that wrote it)."""
    import torch
    checkpoint = {**state.state_dict(), 'format': FORMAT, 'config': dataclasses.asdict(config),
                  'num_images': num_images, 'loss_file': os.path.relpath(loss_file, os.path.dirname(path) or '.')}
    atomic_write(path, lambda tmp: torch.save(checkpoint, tmp))


def upgrade(checkpoint):
    """A checkpoint or weights file in today's format, from any format asgn6.py has written.  Format 1 stored
    the whole command line (paths, --resume, --device ...) as 'args'; format 2 nested the model's settings and
    kept the log and save intervals, which change no number.  Runs from before --lr-schedule and --augment
    (weights/spec.pt) had constant rates and no augmentation, the defaults."""
    if 'args' in checkpoint:
        args = checkpoint.pop('args')
        checkpoint['config'] = args
        if 'loss_file' in args and 'output_dir' in args:
            checkpoint['loss_file'] = os.path.relpath(args['loss_file'], args['output_dir'])
    saved = dict(checkpoint['config'])
    if isinstance(saved.get('model'), dict):
        model = saved.pop('model')
        saved.update(model=model['name'], latent_size=model['latent_size'], image_size=model['image_size'])
    checkpoint['config'] = {key: saved[key] for key in RunConfig.__dataclass_fields__ if key in saved}
    checkpoint['format'] = FORMAT
    return checkpoint


def load_checkpoint(path):
    """A checkpoint (or shipped weights), on the CPU whatever device wrote it, its 'config' a RunConfig."""
    import torch
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise UsageError(f'{path}: no checkpoint there (a run writes one to OUTPUT_DIR/{CHECKPOINT_NAME})')
    try:
        checkpoint = torch.load(path, map_location='cpu', weights_only=True)
    except Exception:  # a damaged or foreign file: pickle, zip and torch each raise their own kind, and
        # torch's text suggests weights_only=False, which would run whatever code the file holds: never that
        raise UsageError(f'{path}: not a checkpoint written by asgn6.py (it cannot be read as one)') from None
    if not isinstance(checkpoint, dict) or not isinstance(checkpoint.get('config', checkpoint.get('args')), dict):
        raise UsageError(f'{path}: not a checkpoint written by asgn6.py')
    try:
        checkpoint = upgrade(checkpoint)
        checkpoint['config'] = RunConfig(**checkpoint['config'])
    except (KeyError, TypeError) as error:
        raise UsageError(f'{path}: not a checkpoint of this asgn6.py ({error})')
    return checkpoint


def model_of(checkpoint, device, path):
    """The trained model of a loaded checkpoint, in eval mode on `device`."""
    from dae import variants
    try:
        model = variants.build(*checkpoint['config'].model_args()).to(device)
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
    import torch

    def half(weights):
        return {key: value.half() if value.is_floating_point() else value for key, value in weights.items()}
    shipped = {'format': FORMAT, 'encoder': half(checkpoint['encoder']), 'decoder': half(checkpoint['decoder']),
               'config': dataclasses.asdict(checkpoint['config']), 'num_images': checkpoint['num_images'],
               'iteration': checkpoint['iteration'], 'command': command, 'weights_only': True}
    atomic_write(path, lambda tmp: torch.save(shipped, tmp))


# ----------------------------------------------------------------------------- the loss file and validation table

def save_losses(path, losses):
    write_text_atomic(path, ''.join(f'{loss!r}\n' for loss in losses))


def read_losses(path):
    """One float per line, as save_losses writes them."""
    try:
        with open(path) as f:
            losses = np.array([float(line) for line in f if line.strip()])
    except OSError as error:
        raise UsageError(f'{path}: {error.strerror}')
    except (ValueError, UnicodeDecodeError) as error:
        raise UsageError(f'{path}: not one number per line ({error})')
    if losses.size == 0:
        raise UsageError(f'{path}: no losses in it')
    bad = np.flatnonzero(~np.isfinite(losses))
    if bad.size:
        raise UsageError(f'{path}: loss {bad[0] + 1} is {losses[bad[0]]} (a run that diverged?)')
    return losses


# the validation table's columns: (Validation field, header, format)
COLUMNS = (('iteration', 'iteration', 'd'), ('l1', 'held_out_l1', '.6f'), ('psnr', 'held_out_psnr_db', '.4f'),
           ('noisy_psnr', 'noisy_psnr_db', '.4f'), ('train_l1', 'train_l1', '.6f'),
           ('train_psnr', 'train_psnr_db', '.4f'), ('train_noisy_psnr', 'train_noisy_psnr_db', '.4f'))


def save_validation(path, rows):
    lines = [','.join(header for _, header, _ in COLUMNS)]
    lines += [','.join(format(getattr(row, name), form) for name, _, form in COLUMNS) for row in rows]
    write_text_atomic(path, '\n'.join(lines) + '\n')


def read_validation(path):
    """The rows of a validation.csv, as Validation tuples, each column found by its header."""
    try:
        with open(path) as f:
            table = list(csv.DictReader(io.StringIO(f.read())))
        return [Validation(*(int(row[header]) if form == 'd' else float(row[header]) for _, header, form in COLUMNS))
                for row in table]
    except OSError as error:
        raise UsageError(f'{path}: {error.strerror}')
    except (KeyError, ValueError, TypeError) as error:
        raise UsageError(f'{path}: not a validation table written by asgn6.py ({error})')
