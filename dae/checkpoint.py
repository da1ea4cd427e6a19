"""A run's state and the files that hold it: TrainingState (models, optimisers, iteration, history,
noise generator), the checkpoint that saves and restores it and that every reader goes through
(resume; dae.trained for denoise.py, the experiments and the report), the loss file and the
validation table.  `upgrade` is the one place that knows older checkpoint formats.
"""
import dataclasses
import os
from dataclasses import dataclass, field
from typing import NamedTuple

import torch

from dae.cli import UsageError
from dae.files import atomic_write, write_text_atomic
from dae.training import ModelConfig, RunConfig

CHECKPOINT_NAME = 'checkpoint.pt'
VALIDATION_NAME = 'validation.csv'
FORMAT = 2


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
        self.model.encoder.load_state_dict(state['encoder'])
        self.model.decoder.load_state_dict(state['decoder'])
        for optimizer, key in zip(self.optimizers, ('encoder_optimizer', 'decoder_optimizer')):
            optimizer.load_state_dict(state[key])
        torch.set_rng_state(state['torch_rng'])
        if state['noise_rng_device'] == self.noise_generator.device.type:
            self.noise_generator.set_state(state['noise_rng'])
        else:  # another kind of device has another kind of generator: the run goes on, not bit for bit
            print(f'note: checkpoint written on {state["noise_rng_device"]}; the noise will not repeat exactly')
            self.noise_generator = reseed_noise(state['iteration'])
        self.iteration = state['iteration']
        self.history = History(list(state['losses']), [Validation(*row) for row in state['validation']])


def save_checkpoint(path, state, config, num_images, loss_file):
    """The state, the run's config, its dataset size and where its loss file is, relative to `path`'s folder
    (so that a checkpoint names no folder of the machine that wrote it)."""
    checkpoint = {**state.state_dict(), 'format': FORMAT, 'config': dataclasses.asdict(config),
                  'num_images': num_images, 'loss_file': os.path.relpath(loss_file, os.path.dirname(path) or '.')}
    atomic_write(path, lambda tmp: torch.save(checkpoint, tmp))


def upgrade(checkpoint):
    """A checkpoint or weights file in today's format, from any format asgn6.py has written.  Format 1 stored
    the whole command line (paths, --resume, --device ...) as 'args'; runs from before --lr-schedule and
    --augment (weights/spec.pt) had constant rates and no augmentation, the defaults."""
    if 'args' in checkpoint:
        args = checkpoint.pop('args')
        values = {**RunConfig().flat(), **args}
        checkpoint['config'] = dataclasses.asdict(RunConfig.from_flat(values))
        if 'loss_file' in args and 'output_dir' in args:
            checkpoint['loss_file'] = os.path.relpath(args['loss_file'], args['output_dir'])
        checkpoint['format'] = FORMAT
    return checkpoint


def config_of(saved):
    return RunConfig(ModelConfig(**saved['model']), **{key: value for key, value in saved.items() if key != 'model'})


def load_checkpoint(path):
    """A checkpoint (or shipped weights), on the CPU whatever device wrote it, its 'config' a RunConfig."""
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
    checkpoint = upgrade(checkpoint)
    try:
        checkpoint['config'] = config_of(checkpoint['config'])
    except (KeyError, TypeError) as error:
        raise UsageError(f'{path}: not a checkpoint of this asgn6.py ({error})')
    return checkpoint


def save_losses(path, losses):
    write_text_atomic(path, ''.join(f'{loss!r}\n' for loss in losses))


def save_validation(path, rows):
    header = 'iteration,held_out_l1,held_out_psnr_db,noisy_psnr_db,train_l1,train_psnr_db,train_noisy_psnr_db\n'
    write_text_atomic(path, header + ''.join(
        f'{row.iteration},{row.l1:.6f},{row.psnr:.4f},{row.noisy_psnr:.4f},'
        f'{row.train_l1:.6f},{row.train_psnr:.4f},{row.train_noisy_psnr:.4f}\n' for row in rows))
