# COMP4680/8650 Assignment 6 -- Name: ____________________  Student ID: ____________
"""Train the de-noising auto-encoder of models.py on a folder of images (Assignment 6, Q3b).

Every iteration adds uniform noise in [-1, 1] to a batch of clean images (pixels in [-1, 1]),
encodes and decodes the noisy batch, and takes one Adam step on the L1 distance to the clean batch.
Writes, as the course's starter does: every iteration's loss to loss.txt, and every
--save-interval iterations sample-NNNNNN.png (clean / noisy / denoised rows) and novel-NNNNNN.png
(decoded random latent vectors) under --output-dir; beyond it, a checkpoint.pt that --resume
continues from.  Ctrl-C stops cleanly after the current iteration.

    python asgn6.py                      # 500 epochs on data/pokemon (the README says how long)
    python asgn6.py --resume             # carry on an interrupted run
"""
import signal
import sys

if __name__ == '__main__':  # Ctrl-C while torch loads: status 130, no traceback (report_errors restores Ctrl-C)
    signal.signal(signal.SIGINT, lambda signum, frame: sys.exit(128 + signum))

import argparse
import contextlib
import dataclasses
import os
from dataclasses import dataclass

import torch

from dae import cli, training, variants
from dae.run import (CHECKPOINT_NAME, VALIDATION_NAME, RunConfig, TrainingState, Validation, as_flag,
                     load_checkpoint, resumed_config, save_checkpoint, save_losses, save_validation,
                     total_iterations)
from dae.images import add_noise, load_dataset, save_grid, to_unit_range
from dae.files import check_can_create, make_folder
from dae.run_folder import FolderLock, refuse_to_replace, run_outputs
from dae.training import MEMORY_FORMATS, Streams


@dataclass(frozen=True)
class Invocation:
    """Where and how this call trains: folders, device, intervals, resuming.  Never stored, and none of it
    changes a number: a checkpoint holds the RunConfig alone, so that it names no folder of the machine
    that wrote it."""
    data_dir: str = 'data'
    output_dir: str = 'samples'
    loss_file: str = 'loss.txt'
    log_interval: int = 10
    save_interval: int = 100
    device: str = 'auto'
    compile: bool = False
    comparable_grids: bool = False
    resume: str = None
    overwrite: bool = False


def build_parser():
    """The flags, each with no argparse default (SUPPRESS), so that the namespace holds the flags typed: the
    defaults are RunConfig's and Invocation's, which the help quotes."""
    run, call = RunConfig, Invocation
    p = cli.ArgumentParser('asgn6.py', __doc__, argument_default=argparse.SUPPRESS)
    p.add_argument('--data-dir', help='folder of training images, sub-folders included (the course\'s '
                   'data/pokemon/*.png, or a flat folder); resized and centre-cropped (default: '
                   f'{call.data_dir}, here or beside asgn6.py)')
    p.add_argument('--image-size', type=cli.positive_int(), help='side of the training images; the assignment\'s '
                   f'decoder makes 64x64 images, so only 64 is accepted (default: {run.image_size})')
    p.add_argument('--latent-size', type=cli.positive_int(),
                   help=f'size z_dim of the latent code (default: {run.latent_size})')
    p.add_argument('--batch-size', type=cli.positive_int(2), help='images per iteration; an epoch\'s last batch '
                   f'holds the rest, skipped if it is one image (BatchNorm needs two) (default: {run.batch_size})')
    p.add_argument('--epochs', type=cli.positive_int(), help=f'passes through the data (default: {run.epochs})')
    p.add_argument('--log-interval', type=cli.positive_int(),
                   help=f'iterations between progress lines (default: {call.log_interval})')
    p.add_argument('--save-interval', type=cli.positive_int(), help='iterations between grids, loss file and '
                   f'checkpoint; also written at the end, the last two on Ctrl-C (default: {call.save_interval})')
    p.add_argument('--output-dir', help=f'folder for grids and checkpoint (default: {call.output_dir})')
    p.add_argument('--loss-file', help=f"every iteration's loss, one per line (default: {call.loss_file})")
    p.add_argument('--seed', type=int, help=f'seeds weights, data order and noise (default: {run.seed})')
    p.add_argument('--noise-level', type=cli.positive_float, help='noise is uniform in [-L, L], then clamped to '
                   f"[-1, 1]; 1 is the assignment's (default: {run.noise_level})")
    p.add_argument('--model', choices=variants.MODEL_NAMES, help="spec: the assignment's; conv-encoder: a "
                   'convolutional encoder; resize-decoder: a decoder that doubles by resizing, then convolves; '
                   f'unet: no bottleneck; residual-unet: the stronger denoiser (default: {run.model})')
    p.add_argument('--loss', choices=['l1', 'mse'], help=f"l1 is the assignment's (default: {run.loss})")
    p.add_argument('--lr-schedule', choices=['constant', 'cosine'], help="the starter's rates throughout, or "
                   f'falling along half a cosine to nearly 0 at the last iteration (default: {run.lr_schedule})')
    p.add_argument('--augment', action='store_true', help='each image as one of its eight mirror images and quarter '
                   'turns, drawn anew for every batch (default: off)')
    p.add_argument('--val-split', type=cli.fraction, help='fraction of the images held out, chosen by --seed; every '
                   f'save adds their PSNR to OUTPUT_DIR/{VALIDATION_NAME} (default: {run.val_split:g})')
    cli.add_device_flag(p)  # its default, auto, is Invocation's too
    p.add_argument('--precision', choices=['fp32', 'bf16'], help='bf16 autocast is faster only with bf16 '
                   f'arithmetic in hardware (benchmarks/README.md) (default: {run.precision})')
    p.add_argument('--memory-format', choices=list(MEMORY_FORMATS), help='layout of model and batches; a run '
                   f'repeats exactly only in the same format (default: {run.memory_format})')
    p.add_argument('--compile', action='store_true', help='torch.compile the model (default: off)')
    p.add_argument('--comparable-grids', action='store_true', help='grids that compare across saves: the fixed '
                   'range [-1, 1], and novel images decoded in eval mode from one batch of latents for the whole '
                   "run (default: the starter's grids, each rescaled to its own range, and a fresh novel batch "
                   'decoded in training mode at every save)')
    p.add_argument('--resume', nargs='?', const='auto', metavar='CHECKPOINT', help='continue the run of '
                   f'CHECKPOINT (default when given alone: OUTPUT_DIR/{CHECKPOINT_NAME}); flags not given are its '
                   "run's (default: off)")
    p.add_argument('--overwrite', action='store_true', help="start afresh over another run's files (default: off)")
    return p


def parse_args(argv):
    """(RunConfig, Invocation, {setting: value} of the flags typed on the command line)."""
    parser = build_parser()
    given = vars(parser.parse_args(argv))
    if given.get('image_size', RunConfig.image_size) != 64:
        parser.error("argument --image-size: the assignment's decoder outputs 64x64 images, so it must be 64")
    config = RunConfig(**{key: value for key, value in given.items() if key in RunConfig.__dataclass_fields__})
    where = Invocation(**{key: value for key, value in given.items() if key in Invocation.__dataclass_fields__})
    return config, where, given


def resumed(where, given):
    """(config, where, checkpoint) of a resumed run: what was not given comes from the checkpoint, and the
    output folder and loss file are found from the checkpoint's own place."""
    path = os.path.join(where.output_dir, CHECKPOINT_NAME) if where.resume == 'auto' else where.resume
    if os.path.isdir(path):  # a run's folder stands for its checkpoint
        path = os.path.join(path, CHECKPOINT_NAME)
    with cli.about('--resume'):
        checkpoint = load_checkpoint(path)
    if checkpoint.get('weights_only'):
        raise cli.UsageError(f'--resume {path}: holds a model\'s weights only, with no optimiser state to train on '
                             'from; resume from the OUTPUT_DIR/checkpoint.pt of a run')
    config, taken = resumed_config(checkpoint['config'], given)
    if taken:
        print('from the checkpoint: ' + ' '.join(as_flag(key, value) for key, value in taken.items()))
    folder, places = os.path.dirname(path) or '.', {}
    if 'output_dir' not in given:
        places['output_dir'] = folder
    if 'loss_file' not in given and 'loss_file' in checkpoint:
        places['loss_file'] = os.path.normpath(os.path.join(folder, checkpoint['loss_file']))
    where = dataclasses.replace(where, **places)
    print(f'resuming {path}: grids and checkpoint to {where.output_dir}, losses to {where.loss_file}')
    return config, where, checkpoint


def load_data(config, where, device):
    """(the run's Split, with its training images on the device; the number of images found), checked."""
    inside = os.path.realpath(where.output_dir).startswith(os.path.realpath(where.data_dir) + os.sep)
    if inside:
        print(f'note: --output-dir {where.output_dir} is inside --data-dir {where.data_dir}: its images are left out')
    with cli.about('--data-dir'):
        images, paths = load_dataset(where.data_dir, config.image_size, skip=[where.output_dir] if inside else [],
                                     on_progress=cli.decode_progress())
    split = training.split_dataset(images, paths, config, device)
    if split.train.size(0) < 2:
        raise cli.UsageError(f'--val-split {config.val_split}: leaves {split.train.size(0)} training image(s); need 2')
    if split.held_out is not None:
        count = split.held_out.clean.size(0)
        print(f'holding out {count} of {images.size(0)} images (chosen by --seed {config.seed}); at every save '
              f'they are measured with {count} of the training images')
    if config.batch_size > split.train.size(0):
        print(f'note: --batch-size {config.batch_size} is more than the {split.train.size(0)} training images: '
              'one batch per epoch')
    return split, len(paths)


def start_state(config, checkpoint, device, num_images):
    """The model and optimisers, freshly seeded, or as the checkpoint left them."""
    streams = Streams(config.seed)
    streams.seed_weights()
    try:
        model, optimizers = training.build(config, device)
    except RuntimeError as error:  # torch's way of saying that a tensor does not fit
        if 'allocate' not in str(error):
            raise
        raise cli.UsageError(f'--latent-size {config.latent_size}: the {config.model} model does not fit '
                             f'in memory ({str(error).splitlines()[0]})') from None
    state = TrainingState(model, optimizers, streams.training_noise(device))
    if checkpoint is not None:
        if checkpoint['num_images'] != num_images:
            raise cli.UsageError(f'--resume: the checkpoint was trained on {checkpoint["num_images"]} images, '
                                 f'--data-dir has {num_images}')
        state.load_state_dict(checkpoint, reseed_noise=lambda iteration: streams.training_noise(device, iteration))
    return state


@dataclass(frozen=True)
class Run:
    """A run as this call trains it: what it is, where it writes, and its length."""
    config: RunConfig
    where: Invocation
    num_images: int

    @property
    def total(self):
        return total_iterations(self.config, self.num_images)

    @property
    def per_epoch(self):
        return self.total // self.config.epochs


def train(state, split, run, stop):
    """Iterations after state.iteration up to run.total (numbered across epochs from 1, as in the starter)."""
    config, streams, device = run.config, Streams(run.config.seed), split.train.device
    latents = training.novel_latents(config.batch_size, config.latent_size, streams, device)
    progress, losses = cli.Progress(run.total, done=state.iteration), training.LossBuffer()
    for iteration, indices in training.batch_order(split.train.size(0), config.batch_size, streams,
                                                   state.iteration + 1, run.total, device):
        clean = to_unit_range(split.train[indices])
        if config.augment:
            clean = training.symmetries(clean, streams.augmentation(iteration))
        clean = clean.contiguous(memory_format=MEMORY_FORMATS[config.memory_format])
        noisy = add_noise(clean, config.noise_level, state.noise_generator)
        training.set_learning_rates(state.optimizers, training.rate_factor(config, iteration, run.total))
        loss, denoised = training.train_step(state.model, state.optimizers, clean, noisy, config)
        state.iteration = iteration
        losses.add(iteration, loss)

        # a signal is read once: one landing later in this iteration waits for the next
        stopping, last = stop.signum is not None, iteration == run.total
        log = iteration % run.where.log_interval == 0 or last or stopping
        save = iteration % run.where.save_interval == 0 or last or stopping
        if log or save:
            state.history.losses += losses.flush()
        if log:
            seconds, left = progress.update(iteration)
            print(f'Epoch [{(iteration - 1) // run.per_epoch + 1:4d}/{config.epochs}] Iteration [{iteration:6d}/'
                  f'{run.total:6d}] | loss: {state.history.losses[-1]:6.4f} | {seconds:.3f} s/it | ETA {left}',
                  flush=True)
        if save:
            if split.held_out is not None:
                measure(state, split)
            save_run(state, run)
            # grids keep to the save interval and the last iteration; a stop by signal draws none
            if iteration % run.where.save_interval == 0 or last:
                save_grids(state, run, (clean, noisy, denoised), latents if run.where.comparable_grids else
                           training.starter_latents(config, streams, iteration, device))
        if stopping:
            break


def measure(state, split):
    """Held-out and training PSNR, taken the same way (eval mode, fixed noise, same number of images)."""
    l1, psnr_db = training.evaluate(state.model, split.held_out)
    train_l1, train_psnr = training.evaluate(state.model, split.probe)
    row = Validation(state.iteration, l1, psnr_db, split.held_out.noisy_psnr, train_l1, train_psnr,
                     split.probe.noisy_psnr)
    state.history.validation.append(row)
    print(f'held out: L1 {row.l1:.4f} | PSNR {row.psnr:.2f} dB (noisy input {row.noisy_psnr:.2f} dB) | '
          f'training images: PSNR {row.train_psnr:.2f} dB (noisy {row.train_noisy_psnr:.2f} dB)', flush=True)


def save_grids(state, run, rows, latents):
    """sample-NNNNNN.png (clean / noisy / denoised rows) and novel-NNNNNN.png (latents decoded): the starter's
    way (each grid rescaled to its own range, training mode), or with --comparable-grids in a fixed range."""
    folder, iteration, comparable = run.where.output_dir, state.iteration, run.where.comparable_grids
    value_range = (-1, 1) if comparable else None
    save_grid(os.path.join(folder, f'sample-{iteration:06d}.png'), torch.cat(rows), images_per_row=rows[0].size(0),
              value_range=value_range)
    if state.model.has_latent:
        decode = training.decode_novel if comparable else training.decode_as_starter
        save_grid(os.path.join(folder, f'novel-{iteration:06d}.png'), decode(state.model, latents), images_per_row=8,
                  value_range=value_range)


def save_run(state, run):
    """Checkpoint, loss file and validation table: all a resumed run needs. The checkpoint goes first and holds
    every loss and measurement too, so a file that cannot be written after it loses nothing."""
    checkpoint = os.path.join(run.where.output_dir, CHECKPOINT_NAME)
    save_checkpoint(checkpoint, state, run.config, run.num_images, run.where.loss_file)
    try:
        save_losses(run.where.loss_file, state.history.losses)
        if state.history.validation:
            save_validation(os.path.join(run.where.output_dir, VALIDATION_NAME), state.history.validation)
    except OSError as error:
        raise cli.Failure(f'cannot write the losses ({error.strerror or error}); {checkpoint} was saved at iteration '
                          f'{state.iteration} and holds every loss so far') from None


@contextlib.contextmanager
def output_claimed(where):
    """The output folders made and locked for this run; --overwrite clears another run's files first."""
    with cli.about('--output-dir'):
        make_folder(where.output_dir)
    with cli.about('--loss-file'):
        make_folder(os.path.dirname(os.path.abspath(where.loss_file)))
    with FolderLock(where.output_dir):
        if not where.resume:  # checked again under the lock: a run started at the same time may have written since
            if where.overwrite:
                removed = run_outputs(where.output_dir)
                for path in removed:
                    os.unlink(path)
                print(f'--overwrite: removed {len(removed)} files of an earlier run from {where.output_dir}')
            else:
                refuse_to_replace(where.output_dir, where.loss_file)
        yield


@contextlib.contextmanager
def last_good_save_kept(loss_file):
    """A diverged run stops with the iteration named; what it saved before that stands."""
    try:
        yield
    except cli.Diverged as error:
        raise cli.Failure(f'{error}; training stopped. {loss_file} and the checkpoint hold the last good save')


EMBEDDED_DATA = os.path.join(os.path.dirname(os.path.abspath(__file__)), 'data')


def run(config, where, given, argv):
    device = cli.choose_device(where.device)
    if 'data_dir' not in given and not os.path.isdir(where.data_dir) and os.path.isdir(EMBEDDED_DATA):
        print(f'note: no folder {where.data_dir} here; training on the embedded images in {EMBEDDED_DATA}')
        where = dataclasses.replace(where, data_dir=EMBEDDED_DATA)
    checkpoint = None
    if where.resume:
        config, where, checkpoint = resumed(where, given)
    with cli.about('--output-dir'):
        check_can_create(where.output_dir, is_folder=True)
    with cli.about('--loss-file'):
        check_can_create(where.loss_file)
    if not where.resume and not where.overwrite:
        refuse_to_replace(where.output_dir, where.loss_file)
    settings = {**dataclasses.asdict(config), **dataclasses.asdict(where)}
    print(' '.join(f'{key}={value}' for key, value in settings.items()), f'| device={device}', flush=True)
    split, num_images = load_data(config, where, device)
    state = start_state(config, checkpoint, device, num_images)
    if where.compile:
        state.model.compile()
    run_ = Run(config, where, num_images)
    if state.iteration >= run_.total:
        print(f'asgn6.py: the run is already complete at iteration {state.iteration} of {run_.total} (--epochs '
              f'{config.epochs}); to train on, resume with a larger --epochs')
        return 0
    print(f'{split.train.size(0)} images from {where.data_dir}, {run_.per_epoch} '
          f'iteration{"s" if run_.per_epoch > 1 else ""} per epoch, '
          f'starting at iteration {state.iteration + 1}', flush=True)

    with cli.StopRequest() as stop, output_claimed(where), last_good_save_kept(where.loss_file):
        train(state, split, run_, stop)
    if stop.signum is not None:
        resume = argv if where.resume else argv + ['--resume']
        print(f'stopped at iteration {state.iteration}/{run_.total}; {where.loss_file} and checkpoint saved. To '
              f'continue:\n  {cli.shell_command(os.path.relpath(__file__), [a for a in resume if a != "--overwrite"])}',
              flush=True)
        return 128 + stop.signum
    print(f'done: {run_.total} iterations; losses in {where.loss_file}, grids and {CHECKPOINT_NAME} in '
          f'{where.output_dir}')
    return 0


def main(argv=None):
    argv = sys.argv[1:] if argv is None else [str(arg) for arg in argv]
    config, where, given = parse_args(argv)

    def interrupted():  # by a second Ctrl-C, or one before training began
        if where.resume or os.path.exists(os.path.join(where.output_dir, CHECKPOINT_NAME)):
            return f'stopped at once; {where.loss_file} and the checkpoint hold the last save'
        return 'stopped before the first save; nothing was saved'
    return cli.report_errors('asgn6.py', lambda: run(config, where, given, argv), interrupted)


if __name__ == '__main__':
    sys.exit(main())
