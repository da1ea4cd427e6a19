"""The state of a training run and the files that hold it: TrainingState (models, optimisers,
iteration, history, noise generator), the one checkpoint format that saves and restores it and that
every reader goes through (resume, denoise.py, experiments, tests), the loss file and validation table.
"""
import argparse
import math
import os
from dataclasses import dataclass, field
from typing import NamedTuple

import numpy as np
import torch

import cli
import models
from cli import UsageError
from files import atomic_write, write_text_atomic

CHECKPOINT_NAME = 'checkpoint.pt'
VALIDATION_NAME = 'validation.csv'
# a resumed run must agree with its checkpoint on these, or it would not be the same run
RESUME_MUST_MATCH = ('image_size', 'latent_size', 'batch_size', 'seed', 'noise_level', 'model', 'loss', 'val_split',
                     'lr_schedule', 'augment')
# what a resumed run never takes from its checkpoint: how to resume, and the machine it runs on
NOT_RESUMED = ('resume', 'overwrite', 'device', 'compile')
GRID_PREFIXES = ('sample-', 'novel-')


class Validation(NamedTuple):
    """One measurement at a save: the held-out images and their same-sized twin among the training images
    (the train_ fields are NaN in checkpoints written before they were measured)."""
    iteration: int
    l1: float
    psnr: float
    noisy_psnr: float
    train_l1: float = math.nan
    train_psnr: float = math.nan
    train_noisy_psnr: float = math.nan


@dataclass
class History:
    """What a run has measured so far: every training loss, and the held-out measurements of each save."""
    losses: list = field(default_factory=list)
    validation: list = field(default_factory=list)  # of Validation


class TrainingState:
    """Everything that changes while a run trains; a run restored from its state_dict goes on bit for bit."""

    def __init__(self, model, optimizers, noise_generator, iteration=0, history=None):
        self.model, self.optimizers, self.noise_generator = model, optimizers, noise_generator
        self.iteration = iteration  # the last one done
        self.history = history or History()

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
        self.history = History(list(state['losses']), [Validation(*row) for row in state.get('validation', [])])


# ----------------------------------------------------------------------------- the checkpoint file

def save_checkpoint(path, state, settings, num_images):
    """The state, the run's settings (a plain dict of its flags) and the dataset size, atomically."""
    checkpoint = {**state.state_dict(), 'num_images': num_images, 'args': dict(settings)}
    atomic_write(path, lambda tmp: torch.save(checkpoint, tmp))


def load_checkpoint(path, flag='--resume'):
    """Open a checkpoint on the CPU whatever device wrote it; the caller moves what it needs."""
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise UsageError(f'{flag} {path}: no checkpoint there (a run writes one to OUTPUT_DIR/{CHECKPOINT_NAME})')
    try:
        checkpoint = torch.load(path, map_location='cpu', weights_only=True)
    except Exception:  # a damaged or foreign file: pickle, zip and torch each raise their own kind, and
        # torch's text suggests weights_only=False, which would run whatever code the file holds: never that
        raise UsageError(f'{flag} {path}: not a checkpoint written by asgn6.py (it cannot be read as one)') from None
    if not isinstance(checkpoint, dict) or not isinstance(checkpoint.get('args'), dict):
        raise UsageError(f'{flag} {path}: not a checkpoint written by asgn6.py')
    checkpoint['args'].setdefault('memory_format', 'contiguous')  # the only format before the flag existed
    return checkpoint


def check_trainable(checkpoint, path):
    if checkpoint.get('weights_only'):
        raise UsageError(f'--resume {path}: holds a model\'s weights only, with no optimiser state to train on '
                         'from; resume from the OUTPUT_DIR/checkpoint.pt of a run')


def check_resumable(checkpoint, settings, num_images):
    """A resumed run must be the same run: same defining settings, same number of images."""
    saved = checkpoint['args']
    for key in RESUME_MUST_MATCH:
        if saved.get(key, settings[key]) != settings[key]:
            flag = '--' + key.replace('_', '-')
            raise UsageError(f'--resume: the checkpoint was trained with {flag} {saved[key]}, not {settings[key]}')
    if checkpoint['num_images'] != num_images:
        raise UsageError(f'--resume: the checkpoint was trained on {checkpoint["num_images"]} images, '
                         f'--data-dir {settings["data_dir"]} has {num_images}')


def resume_settings(saved, settings, given):
    """The settings of a resumed run: what the user gave, else what the checkpoint's run used.
    Returns (settings, {name: value} of those taken from the checkpoint that differ from the defaults)."""
    merged, taken = dict(settings), {}
    for key, value in saved.items():
        if key in settings and key not in given and key not in NOT_RESUMED and value != settings[key]:
            merged[key] = taken[key] = value
    return merged, taken


def run_outputs(output_dir):
    """The files a run leaves in its output folder: checkpoint, validation table, grids."""
    if not os.path.isdir(output_dir):
        return []
    return sorted(os.path.join(output_dir, name) for name in os.listdir(output_dir)
                  if name in (CHECKPOINT_NAME, VALIDATION_NAME)
                  or (name.startswith(GRID_PREFIXES) and name.endswith('.png')))


def refuse_to_replace(output_dir, loss_file):
    """A fresh run must not silently replace another run's outputs or losses."""
    ways = 'continue it with --resume, write this run elsewhere (a new --output-dir / --loss-file), or --overwrite'
    outputs = run_outputs(output_dir)
    if outputs:
        raise UsageError(f'--output-dir {output_dir} holds another run ({len(outputs)} files, e.g. '
                         f'{os.path.basename(outputs[0])}): {ways}')
    if os.path.isfile(loss_file) and os.path.getsize(loss_file) > 0:
        raise UsageError(f'--loss-file {loss_file} holds another run\'s losses: {ways}')


def load_model(path, device, flag='--checkpoint'):
    """(the trained model in eval mode on `device`, the run's settings), from a checkpoint of any device."""
    return model_of(load_checkpoint(path, flag), device, path, flag)


def model_of(checkpoint, device, path, flag='--checkpoint'):
    """load_model for a checkpoint (or shipped weights) already read by load_checkpoint."""
    try:
        settings = checkpoint['args']
        model = models.build(settings.get('model', 'spec'), settings['latent_size'], settings['image_size'])
        model.encoder.load_state_dict(checkpoint['encoder'])
        model.decoder.load_state_dict(checkpoint['decoder'])
    except (KeyError, TypeError, ValueError, RuntimeError) as error:
        first_line = str(error).strip().splitlines()[0]
        raise UsageError(f'{flag} {path}: not a checkpoint of this models.py ({first_line})')
    return model.to(device).eval(), settings


def save_weights(path, checkpoint, command):
    """The trained model alone, in half precision (a quarter of a checkpoint): what denoise.py needs.
    load_model reads it like a checkpoint; --resume refuses it."""
    def half(weights):
        return {key: value.half() if value.is_floating_point() else value for key, value in weights.items()}
    shipped = {'encoder': half(checkpoint['encoder']), 'decoder': half(checkpoint['decoder']),
               'args': dict(checkpoint['args']), 'num_images': checkpoint['num_images'],
               'iteration': checkpoint['iteration'], 'command': command, 'weights_only': True}
    atomic_write(path, lambda tmp: torch.save(shipped, tmp))


# ----------------------------------------------------------------------------- text files

def save_losses(path, losses):
    write_text_atomic(path, ''.join(f'{loss!r}\n' for loss in losses))


def save_validation(path, rows):
    header = 'iteration,held_out_l1,held_out_psnr_db,noisy_psnr_db,train_l1,train_psnr_db,train_noisy_psnr_db\n'
    write_text_atomic(path, header + ''.join(
        f'{row.iteration},{row.l1:.6f},{row.psnr:.4f},{row.noisy_psnr:.4f},'
        f'{row.train_l1:.6f},{row.train_psnr:.4f},{row.train_noisy_psnr:.4f}\n' for row in rows))


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


def read_losses(path):
    """One float per line, as asgn6.py writes them."""
    try:
        with open(path) as f:
            losses = np.array([float(line) for line in f if line.strip()])
    except OSError as error:
        raise UsageError(f'{path}: {error.strerror}')
    except (ValueError, UnicodeDecodeError) as error:
        raise UsageError(f'{path}: not one number per line ({error})')
    if losses.size == 0:
        raise UsageError(f'{path}: no losses in it')
    return losses


def moving_average(values, window):
    """Trailing mean over `window` values; the first points average what there is so far."""
    window = max(1, min(window, values.size))
    sums = np.cumsum(np.insert(values, 0, 0.0))
    counts = np.minimum(np.arange(1, values.size + 1), window)
    return (sums[1:] - sums[np.maximum(np.arange(1, values.size + 1) - window, 0)]) / counts


def centred_average(values, window):
    """Mean over `window` values centred on each point (fewer at the ends): unlike a trailing mean it does
    not lag behind a falling curve, so the smooth line runs through the raw points, not above them."""
    window = max(1, min(window, values.size))
    sums = np.cumsum(np.insert(values, 0, 0.0))
    index = np.arange(values.size)
    lo, hi = np.maximum(index - window // 2, 0), np.minimum(index + (window - 1) // 2 + 1, values.size)
    return (sums[hi] - sums[lo]) / (hi - lo)


def convergence_stats(losses, window):
    smooth = moving_average(losses, window)
    at = {share: smooth[max(int(round(share * losses.size)) - 1, 0)] for share in (0.5, 0.9, 1.0)}
    return {
        'iterations': losses.size, 'final': losses[-1], 'minimum': losses.min(),
        'minimum_at': int(losses.argmin()) + 1, 'smoothed_50': at[0.5], 'smoothed_90': at[0.9],
        'smoothed_final': at[1.0], 'last_10pct_change': (at[1.0] - at[0.9]) / at[0.9],
    }


MEMORY_FORMATS = {'contiguous': torch.contiguous_format, 'channels_last': torch.channels_last}


def build_parser(description=None):
    """asgn6.py's flags: what a training run is, shared with the experiments that launch runs."""
    p = argparse.ArgumentParser(prog='asgn6.py', description=description, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('--data-dir', default='data', help='folder of training images, searched with its sub-folders; the '
                   "course's ImageFolder layout (data/pokemon/*.png) and a flat folder both work. Transparent pixels "
                   'become white; images are resized on the short side and centre-cropped (default: data)')
    p.add_argument('--image-size', type=cli.positive_int(), default=64, help="side of the square training images; "
                   "the assignment's decoder always outputs 64, so only 64 is accepted (default: 64)")
    p.add_argument('--latent-size', type=cli.positive_int(), default=128, help='size z_dim of the latent code (default: 128)')
    p.add_argument('--batch-size', type=cli.positive_int(2), default=32, help='images per iteration. The last batch of '
                   'an epoch holds the remainder; a remainder of one image is skipped that epoch (BatchNorm needs two), '
                   'and a batch size above the dataset size means the whole dataset per batch (default: 32)')
    p.add_argument('--epochs', type=cli.positive_int(), default=500, help='passes through the data (default: 500)')
    p.add_argument('--log-interval', type=cli.positive_int(), default=10, help='iterations between progress lines (default: 10)')
    p.add_argument('--save-interval', type=cli.positive_int(), default=100, help='iterations between sample grids, '
                   'loss file and checkpoint; all are also written at the end, the last two on Ctrl-C (default: 100)')
    p.add_argument('--output-dir', default='samples', help='folder for grids and checkpoint (default: samples)')
    p.add_argument('--loss-file', default='loss.txt', help='every iteration\'s loss, one per line; the starter '
                   'writes it in the working directory (default: loss.txt)')
    p.add_argument('--seed', type=int, default=4680, help='seeds weights, data order and noise (default: 4680)')
    p.add_argument('--noise-level', type=cli.positive_float, default=1.0, help='noise is uniform in [-L, L] before '
                   'clamping to [-1, 1]; 1 is the assignment\'s (default: 1.0)')
    p.add_argument('--model', default='spec', choices=models.MODEL_NAMES, help="spec: the assignment's "
                   'auto-encoder; conv-encoder: a convolutional encoder in place of the MLP; unet: a small '
                   'U-Net with skip connections and no bottleneck; residual-unet: a wider U-Net on a half-resolution '
                   'view that predicts the noise, the stronger denoiser (Q3f experiments) (default: spec)')
    p.add_argument('--loss', default='l1', choices=['l1', 'mse'], help="training loss; l1 is the assignment's "
                   '(default: l1)')
    p.add_argument('--lr-schedule', default='constant', choices=['constant', 'cosine'], help="constant: the "
                   "starter's rates throughout; cosine: they fall along half a cosine to nearly 0 at the last "
                   'iteration of --epochs (default: constant)')
    p.add_argument('--augment', action='store_true', help='train on each image as one of its eight mirror images '
                   'and quarter turns, drawn at random for every batch; the assignment trains on the images as they '
                   'are (default: off)')
    p.add_argument('--val-split', type=cli.fraction, default=0.0, help='fraction of the images held out from '
                   'training, chosen by --seed; at every save the PSNR on them, and on as many training images, '
                   f'each in eval mode with one fixed noise draw, is added to OUTPUT_DIR/{VALIDATION_NAME}. 0 trains '
                   'on all, as the assignment does (default: 0)')
    cli.add_device_flag(p)
    p.add_argument('--precision', default='fp32', choices=['fp32', 'bf16'], help='fp32 is exact and faithful; '
                   'bf16 autocast pays off only with bf16 arithmetic in hardware: measured 1.43x faster (with '
                   'channels_last) on a 2-core AMD EPYC with AVX512-BF16, 8-11x slower on one with AVX2 only; see the '
                   "README's Performance section (default: fp32)")
    p.add_argument('--memory-format', default='channels_last', choices=list(MEMORY_FORMATS), help='layout of the '
                   'model and batches in memory. channels_last was no slower than contiguous (NCHW) on any CPU we '
                   'measured (the README has the numbers); the two give different floats, so a run repeats '
                   'exactly only with the same format (default: channels_last)')
    p.add_argument('--compile', action='store_true', help='torch.compile the model; needs a C++ compiler on a CPU '
                   '(default: off)')
    p.add_argument('--resume', nargs='?', const='auto', default=None, metavar='CHECKPOINT', help='continue a run '
                   f'from CHECKPOINT, or from OUTPUT_DIR/{CHECKPOINT_NAME} when no path is given; flags not given '
                   "are the checkpoint's run's, and --output-dir is the checkpoint's folder (default: off)")
    p.add_argument('--overwrite', action='store_true', help='start afresh in an --output-dir or --loss-file that '
                   "holds another run, deleting that run's checkpoint and grids; without it such a run is refused "
                   '(default: off)')
    return p


def parse_args(argv, description=None):
    """(the flags with their defaults, the names of those given on the command line)."""
    parser = build_parser(description)
    args = parser.parse_args(argv)
    if args.image_size != 64:
        parser.error("argument --image-size: the assignment's decoder outputs 64x64 images, so it must be 64")
    parser.set_defaults(**{name: None for name in vars(args)})  # now only the flags given have a value
    return args, {name for name, value in vars(parser.parse_args(argv)).items() if value is not None}
