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
import shlex
from dataclasses import dataclass

import torch

import models
from dae import cli, training
from dae.checkpoint import (CHECKPOINT_NAME, VALIDATION_NAME, TrainingState, Validation, load_checkpoint,
                            save_checkpoint, save_losses, save_validation)
from dae.images import add_noise, load_dataset, save_grid, to_unit_range
from dae.files import check_can_create, make_folder
from dae.run_folder import FolderLock, refuse_to_replace, run_outputs
from dae.training import MEMORY_FORMATS, RunConfig, Streams


def build_parser():
    p = argparse.ArgumentParser(prog='asgn6.py', description=__doc__, allow_abbrev=False,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('--data-dir', default='data', help='folder of training images, sub-folders included (the '
                   "course's data/pokemon/*.png, or a flat folder); resized and centre-cropped (default: data, here or "
                   'beside asgn6.py)')
    p.add_argument('--image-size', type=cli.positive_int(), default=64, help='side of the training images; the '
                   "assignment's decoder makes 64x64 images, so only 64 is accepted (default: 64)")
    p.add_argument('--latent-size', type=cli.positive_int(), default=128, help='size z_dim of the latent code (default: 128)')
    p.add_argument('--batch-size', type=cli.positive_int(2), default=32, help='images per iteration; an epoch\'s last '
                   'batch holds the rest, skipped if it is one image (BatchNorm needs two) (default: 32)')
    p.add_argument('--epochs', type=cli.positive_int(), default=500, help='passes through the data (default: 500)')
    p.add_argument('--log-interval', type=cli.positive_int(), default=10, help='iterations between progress lines (default: 10)')
    p.add_argument('--save-interval', type=cli.positive_int(), default=100, help='iterations between grids, loss file '
                   'and checkpoint; also written at the end, the last two on Ctrl-C (default: 100)')
    p.add_argument('--output-dir', default='samples', help='folder for grids and checkpoint (default: samples)')
    p.add_argument('--loss-file', default='loss.txt', help="every iteration's loss, one per line (default: loss.txt)")
    p.add_argument('--seed', type=int, default=4680, help='seeds weights, data order and noise (default: 4680)')
    p.add_argument('--noise-level', type=cli.positive_float, default=1.0, help='noise is uniform in [-L, L], then '
                   "clamped to [-1, 1]; 1 is the assignment's (default: 1.0)")
    p.add_argument('--model', default='spec', choices=models.MODEL_NAMES, help="spec: the assignment's; conv-encoder: "
                   'a convolutional encoder; unet: no bottleneck; residual-unet: the stronger denoiser (default: spec)')
    p.add_argument('--loss', default='l1', choices=['l1', 'mse'], help="l1 is the assignment's (default: l1)")
    p.add_argument('--lr-schedule', default='constant', choices=['constant', 'cosine'], help="the starter's rates "
                   'throughout, or falling along half a cosine to nearly 0 at the last iteration (default: constant)')
    p.add_argument('--augment', action='store_true', help='each image as one of its eight mirror images and quarter '
                   'turns, drawn anew for every batch (default: off)')
    p.add_argument('--val-split', type=cli.fraction, default=0.0, help='fraction of the images held out, chosen by '
                   f'--seed; every save adds their PSNR to OUTPUT_DIR/{VALIDATION_NAME} (default: 0)')
    cli.add_device_flag(p)
    p.add_argument('--precision', default='fp32', choices=['fp32', 'bf16'], help='bf16 autocast is faster only '
                   'with bf16 arithmetic in hardware (benchmarks/README.md) (default: fp32)')
    p.add_argument('--memory-format', default='channels_last', choices=list(MEMORY_FORMATS), help='layout of model '
                   'and batches; a run repeats exactly only in the same format (default: channels_last)')
    p.add_argument('--compile', action='store_true', help='torch.compile the model (default: off)')
    p.add_argument('--comparable-grids', action='store_true', help="grids that compare across saves: the fixed "
                   'range [-1, 1], and novel images decoded in eval mode from one batch of latents for the whole '
                   "run (default: the starter's grids, each rescaled to its own range, and a fresh novel batch "
                   'decoded in training mode at every save)')
    p.add_argument('--resume', nargs='?', const='auto', default=None, metavar='CHECKPOINT', help='continue the run '
                   f'of CHECKPOINT (default when given alone: OUTPUT_DIR/{CHECKPOINT_NAME}); flags not given are its '
                   "run's (default: off)")
    p.add_argument('--overwrite', action='store_true', help="start afresh over another run's files (default: off)")
    return p


@dataclass(frozen=True)
class Invocation:
    """Where and how this call trains: folders, device, resuming.  Never stored: a checkpoint holds the
    RunConfig alone, so that it names no folder of the machine that wrote it."""
    data_dir: str
    output_dir: str
    loss_file: str
    device: str
    compile: bool
    comparable_grids: bool
    resume: str
    overwrite: bool


def parse_args(argv):
    """(RunConfig, Invocation, the names of the flags given on the command line)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.image_size != 64:
        parser.error("argument --image-size: the assignment's decoder outputs 64x64 images, so it must be 64")
    values = vars(args)
    parser.set_defaults(**{name: None for name in values})  # now only the flags given have a value
    given = {name for name, value in vars(parser.parse_args(argv)).items() if value is not None}
    return (RunConfig.from_flat(values), Invocation(**{key: values[key] for key in Invocation.__dataclass_fields__}),
            given)


def as_flag(key, value):
    """A setting as its flag on the command line: '--augment', 'no --augment', '--data-dir my\\ folder'."""
    name = '--' + key.replace('_', '-')
    return name if value is True else f'no {name}' if value is False else f'{name} {shlex.quote(str(value))}'


def resumed(config, where, given):
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
    saved, mine = checkpoint['config'].flat(), config.flat()
    for key in checkpoint['config'].must_match():
        if key in given and mine[key] != saved[key]:
            raise cli.UsageError(f'--resume: the checkpoint\'s run has {as_flag(key, saved[key])}; this one has '
                                 f'{as_flag(key, mine[key])}')
    taken = {key: value for key, value in saved.items() if key not in given and value != mine[key]}
    if taken:
        print('from the checkpoint: ' + ' '.join(as_flag(key, value) for key, value in taken.items()))
    folder, places = os.path.dirname(path) or '.', {}
    if 'output_dir' not in given:
        places['output_dir'] = folder
    if 'loss_file' not in given and 'loss_file' in checkpoint:
        places['loss_file'] = os.path.normpath(os.path.join(folder, checkpoint['loss_file']))
    config, where = RunConfig.from_flat({**saved, **{key: mine[key] for key in given if key in mine}}), \
        dataclasses.replace(where, **places)
    print(f'resuming {path}: grids and checkpoint to {where.output_dir}, losses to {where.loss_file}')
    return config, where, checkpoint


def load_data(config, where, device):
    """(the run's Split, with its training images on the device; the number of images found), checked."""
    inside = os.path.realpath(where.output_dir).startswith(os.path.realpath(where.data_dir) + os.sep)
    if inside:
        print(f'note: --output-dir {where.output_dir} is inside --data-dir {where.data_dir}: its images are left out')
    with cli.about('--data-dir'):
        images, paths = load_dataset(where.data_dir, config.model.image_size, skip=[where.output_dir] if inside else [])
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
        raise cli.UsageError(f'--latent-size {config.model.latent_size}: the {config.model.name} model does not fit '
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
    per_epoch: int

    @property
    def total(self):
        return self.config.epochs * self.per_epoch


def train(state, split, run, stop):
    """Iterations after state.iteration up to run.total (numbered across epochs from 1, as in the starter)."""
    config, streams, device = run.config, Streams(run.config.seed), split.train.device
    latents = training.novel_latents(config.batch_size, config.model.latent_size, streams, device)
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
        log = iteration % config.log_interval == 0 or last or stopping
        save = iteration % config.save_interval == 0 or last or stopping
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
            # grids keep to the save interval and the last iteration; a stop by signal draws none
            if iteration % config.save_interval == 0 or last:
                save_grids(state, run, (clean, noisy, denoised), latents if run.where.comparable_grids else
                           training.starter_latents(config, streams, iteration, device))
            save_run(state, run)
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
    """Loss file, validation table and checkpoint: all a resumed run needs."""
    save_losses(run.where.loss_file, state.history.losses)
    if state.history.validation:
        save_validation(os.path.join(run.where.output_dir, VALIDATION_NAME), state.history.validation)
    save_checkpoint(os.path.join(run.where.output_dir, CHECKPOINT_NAME), state, run.config, run.num_images,
                    run.where.loss_file)


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
    except cli.Failure as error:
        raise cli.Failure(f'{error}; training stopped. {loss_file} and the checkpoint hold the last good save')


EMBEDDED_DATA = os.path.join(os.path.dirname(os.path.abspath(__file__)), 'data')


def run(config, where, given, argv):
    device = cli.choose_device(where.device)
    if 'data_dir' not in given and not os.path.isdir(where.data_dir) and os.path.isdir(EMBEDDED_DATA):
        print(f'note: no folder {where.data_dir} here; training on the embedded images in {EMBEDDED_DATA}')
        where = dataclasses.replace(where, data_dir=EMBEDDED_DATA)
    checkpoint = None
    if where.resume:
        config, where, checkpoint = resumed(config, where, given)
    with cli.about('--output-dir'):
        check_can_create(where.output_dir, is_folder=True)
    with cli.about('--loss-file'):
        check_can_create(where.loss_file)
    if not where.resume and not where.overwrite:
        refuse_to_replace(where.output_dir, where.loss_file)
    print(' '.join(f'{key}={value}' for key, value in {**config.flat(), **dataclasses.asdict(where)}.items()),
          f'| device={device}', flush=True)
    split, num_images = load_data(config, where, device)
    state = start_state(config, checkpoint, device, num_images)
    if where.compile:
        state.model.compile()
    run_ = Run(config, where, num_images, training.batches_per_epoch(split.train.size(0), config.batch_size))
    if state.iteration >= run_.total:
        print(f'asgn6.py: the run is already complete at iteration {state.iteration} of {run_.total} (--epochs '
              f'{config.epochs}); to train on, resume with a larger --epochs')
        return 0
    print(f'{split.train.size(0)} images from {where.data_dir}, {run_.per_epoch} iterations per epoch, '
          f'starting at iteration {state.iteration + 1}', flush=True)

    with cli.StopRequest() as stop, output_claimed(where), last_good_save_kept(where.loss_file):
        train(state, split, run_, stop)
    if stop.signum is not None:
        resume = argv if where.resume else argv + ['--resume']
        print(f'stopped at iteration {state.iteration}/{run_.total}; {where.loss_file} and checkpoint saved. To '
              f'continue:\n  {cli.shell_command(os.path.relpath(__file__), [a for a in resume if a != "--overwrite"])}',
              flush=True)
        return 128 + stop.signum
    print(f'done: {run_.total} iterations; losses in {where.loss_file}, grids and {CHECKPOINT_NAME} in {where.output_dir}')
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
