"""Reading a run's checkpoint, or shipped weights, in any format asgn6.py has written: asgn6.py writes it (its
save_progress), and `upgrade` is the one place that knows older formats."""
import os

import torch

from dae import variants
from dae.config import FIELDS, RunConfig
from dae.errors import UsageError
from dae.run_folder import CHECKPOINT_NAME

FORMAT = 4  # 1 held the command line as 'args'; 2 nested the model's settings; 3 the two parts' weights apart


def upgrade(checkpoint):
    """A checkpoint in today's format.  Format 1 stored the command line as 'args'; 2 nested the model's
    settings; 1 to 3 kept the model's two parts (and their optimisers) under two keys each.  Settings that
    are no longer a setting (memory_format) are dropped; runs from before a setting had its default."""
    if 'args' in checkpoint:
        args = checkpoint['config'] = checkpoint.pop('args')
        if 'loss_file' in args and 'output_dir' in args:
            checkpoint['loss_file'] = os.path.relpath(args['loss_file'], args['output_dir'])
    saved = dict(checkpoint['config'])
    if isinstance(saved.get('model'), dict):
        model = saved.pop('model')
        saved.update(model=model['name'], latent_size=model['latent_size'], image_size=model['image_size'])
    checkpoint['config'] = {key: saved[key] for key in FIELDS if key in saved}
    if 'encoder' in checkpoint:
        parts = variants.part_names(checkpoint['config'].get('model', 'spec'))
        checkpoint['model'] = {f'{part}.{key}': value for part, old in zip(parts, ('encoder', 'decoder'))
                               for key, value in checkpoint.pop(old).items()}
    if 'encoder_optimizer' in checkpoint:
        checkpoint['optimizers'] = [checkpoint.pop('encoder_optimizer'), checkpoint.pop('decoder_optimizer')]
    checkpoint['format'] = FORMAT
    return checkpoint


def load_checkpoint(path):
    """A checkpoint (or shipped weights) on the CPU, whatever device wrote it; its 'config' a RunConfig.
    A run's folder stands for the checkpoint in it."""
    path = os.fspath(path)
    if os.path.isdir(path):
        path = os.path.join(path, CHECKPOINT_NAME)
    if not os.path.isfile(path):
        raise UsageError(f'{path}: no checkpoint there (a run writes one to OUTPUT_DIR/{CHECKPOINT_NAME})')
    try:
        checkpoint = torch.load(path, map_location='cpu', weights_only=True)
    except Exception:  # damaged or foreign: pickle, zip and torch each raise their own kind, and torch's
        # message suggests weights_only=False, which would run whatever code the file holds: never that
        raise UsageError(f'{path}: not a checkpoint written by asgn6.py (it cannot be read as one)') from None
    if not isinstance(checkpoint, dict) or not isinstance(checkpoint.get('config', checkpoint.get('args')), dict):
        raise UsageError(f'{path}: not a checkpoint written by asgn6.py')
    try:
        checkpoint = upgrade(checkpoint)
        checkpoint['config'] = RunConfig(**checkpoint['config'])
    except (KeyError, TypeError) as error:
        raise UsageError(f'{path}: not a checkpoint of this asgn6.py ({error})')
    return checkpoint
