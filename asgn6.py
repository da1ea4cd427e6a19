"""Train the de-noising auto-encoder of models.py on a folder of images (Assignment 6, Q3b).

Every iteration adds uniform noise in [-1, 1] to a batch of clean images (pixels in [-1, 1]),
encodes and decodes the noisy batch, and takes one Adam step on the L1 distance to the clean batch.
Writes, as the course's starter does: every iteration's loss to loss.txt, and every
--save-interval iterations sample-NNNNNN.png (clean / noisy / denoised rows) and novel-NNNNNN.png
(decoded random latent vectors) under --output-dir; beyond it, a checkpoint.pt that --resume
continues from.  Ctrl-C stops cleanly after the current iteration.

    python asgn6.py                      # 500 epochs on data/pokemon: about 1.5 hours on 2 CPU cores (see README)
    python asgn6.py --resume             # carry on an interrupted run
"""
import argparse
import contextlib
import os
import sys
import time
from dataclasses import dataclass

import torch

import cli
import models
import training
from files import FolderLock, check_can_create, make_folder
from images import load_dataset, save_grid
from run_state import (CHECKPOINT_NAME, VALIDATION_NAME, TrainingState, Validation, check_resumable, check_trainable,
                       load_checkpoint, refuse_to_replace, resume_settings, run_outputs, save_checkpoint, save_losses,
                       save_validation)


MEMORY_FORMATS = {'contiguous': torch.contiguous_format, 'channels_last': torch.channels_last}


def build_parser():
    p = argparse.ArgumentParser(prog='asgn6.py', description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
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


def parse_args(argv):
    """(the flags with their defaults, the names of those given on the command line)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.image_size != 64:
        parser.error("argument --image-size: the assignment's decoder outputs 64x64 images, so it must be 64")
    parser.set_defaults(**{name: None for name in vars(args)})  # now only the flags given have a value
    return args, {name for name, value in vars(parser.parse_args(argv)).items() if value is not None}


class Progress:
    """The progress line: the starter's 'Iteration [ i/ n] | loss: x', plus epoch, seconds per iteration and ETA."""

    def __init__(self, first_iteration, total, per_epoch):
        self.total, self.per_epoch = total, per_epoch
        self.last_time, self.last_iteration = time.perf_counter(), first_iteration - 1
        self.seconds_per_iteration = None

    def report(self, iteration, loss):
        now = time.perf_counter()
        recent = (now - self.last_time) / max(iteration - self.last_iteration, 1)
        # the first interval includes start-up; after it, follow the recent speed with some smoothing
        self.seconds_per_iteration = recent if self.seconds_per_iteration is None else \
            0.7 * self.seconds_per_iteration + 0.3 * recent
        self.last_time, self.last_iteration = now, iteration
        epoch = (iteration - 1) // self.per_epoch + 1
        left = int(round(self.seconds_per_iteration * (self.total - iteration)))
        print(f'Epoch [{epoch:4d}/{self.total // self.per_epoch}] Iteration [{iteration:6d}/{self.total:6d}] '
              f'| loss: {loss:6.4f} | {self.seconds_per_iteration:.3f} s/it '
              f'| ETA {left // 3600}:{left % 3600 // 60:02d}:{left % 60:02d}', flush=True)


@dataclass(frozen=True)
class Due:
    """What one iteration writes. A stop by signal saves losses and checkpoint but draws no grid, so that
    grids keep to the save interval (and the final iteration)."""
    flush_losses: bool
    log: bool
    save: bool
    grids: bool

    @classmethod
    def at(cls, iteration, total, stopping, log_interval, save_interval):
        on_log, on_save, last = iteration % log_interval == 0, iteration % save_interval == 0, iteration == total
        return cls(flush_losses=on_log or on_save or last or stopping, log=on_log or last or stopping,
                   save=on_save or last or stopping, grids=on_save or last)


@dataclass(frozen=True)
class RunFiles:
    """Where a run writes, and what its checkpoint records beside the state."""
    output_dir: str
    loss_file: str
    settings: dict
    num_images: int

    def save(self, state, grids=None):
        if grids is not None:
            step, latents = grids
            save_grid(os.path.join(self.output_dir, f'sample-{step.iteration:06d}.png'),
                      torch.cat([step.clean, step.noisy, step.denoised]), images_per_row=step.clean.size(0))
            if state.model.has_latent:
                save_grid(os.path.join(self.output_dir, f'novel-{step.iteration:06d}.png'),
                          training.decode_novel(state.model, latents), images_per_row=8)
        save_losses(self.loss_file, state.history.losses)
        if state.history.validation:
            save_validation(os.path.join(self.output_dir, VALIDATION_NAME), state.history.validation)
        save_checkpoint(os.path.join(self.output_dir, CHECKPOINT_NAME), state, self.settings, self.num_images)


def measure(state, measured):
    """Held-out and training PSNR, taken the same way (eval mode, fixed noise, same number of images)."""
    held_out, probe = measured
    l1, psnr_db = training.evaluate(state.model, held_out.clean, held_out.noisy)
    train_l1, train_psnr = training.evaluate(state.model, probe.clean, probe.noisy)
    row = Validation(state.iteration, l1, psnr_db, held_out.noisy_psnr, train_l1, train_psnr, probe.noisy_psnr)
    state.history.validation.append(row)
    print(f'held out: L1 {row.l1:.4f} | PSNR {row.psnr:.2f} dB (noisy input {row.noisy_psnr:.2f} dB) | '
          f'training images: PSNR {row.train_psnr:.2f} dB (noisy {row.train_noisy_psnr:.2f} dB)', flush=True)


def train(state, images, measured, *, files, step_options, latents, total, per_epoch, log_interval, save_interval,
          stop):
    """Iterations after state.iteration up to `total` (numbered across epochs from 1, as in the starter)."""
    progress, losses = Progress(state.iteration + 1, total, per_epoch), training.LossBuffer()
    for step in training.steps(state, images, total, **step_options):
        losses.add(step)
        stopping = stop.signum is not None  # read once: a signal landing later in this iteration waits for the next
        due = Due.at(step.iteration, total, stopping, log_interval, save_interval)
        if due.flush_losses:
            state.history.losses += losses.flush()
        if due.log:
            progress.report(step.iteration, state.history.losses[-1])
        if due.save:
            if measured is not None:
                measure(state, measured)
            files.save(state, grids=(step, latents) if due.grids else None)
        if stopping:
            break


@contextlib.contextmanager
def last_good_save_kept(loss_file):
    """A diverged run stops with the iteration named; what it saved before that stands."""
    try:
        yield
    except cli.Failure as error:
        raise cli.Failure(f'{error}; training stopped. {loss_file} and the checkpoint hold the last good save')


def settings_of_run(args, given):
    """The run's settings and, with --resume, its checkpoint; a resumed run takes what was not given from it."""
    settings, checkpoint = dict(vars(args)), None
    if args.resume:
        path = os.path.join(args.output_dir, CHECKPOINT_NAME) if args.resume == 'auto' else args.resume
        checkpoint = load_checkpoint(path)
        check_trainable(checkpoint, path)
        settings, taken = resume_settings(checkpoint['args'], settings, given)
        if 'output_dir' not in given:
            settings['output_dir'] = os.path.dirname(path) or '.'
        if taken:
            print('from the checkpoint: ' + ' '.join(f'--{key.replace("_", "-")} {value}' for key, value in taken.items()))
    check_can_create(settings['output_dir'], '--output-dir', is_folder=True)
    check_can_create(settings['loss_file'], '--loss-file')
    if not args.resume and not args.overwrite:
        refuse_to_replace(settings['output_dir'], settings['loss_file'])
    vars(args).update(settings)
    return args, checkpoint


def load_data(args, streams, device):
    """(training images on the device, (held-out, training probe) or None, number of images), checked."""
    images, paths = load_dataset(args.data_dir, args.image_size, device)
    train_images, train_paths, held_out = training.split_dataset(images, paths, val_split=args.val_split,
                                                       noise_level=args.noise_level, streams=streams, device=device)
    if train_images.size(0) < 2:
        raise cli.UsageError(f'--val-split {args.val_split}: leaves {train_images.size(0)} training image(s); need 2')
    measured = None
    if held_out is not None:
        count = held_out.clean.size(0)
        print(f'holding out {count} of {images.size(0)} images (chosen by --seed {args.seed}); at every save '
              f'they are measured with {count} of the training images')
        measured = held_out, training.training_probe(train_images, train_paths, count, noise_level=args.noise_level,
                                                     streams=streams, device=device)
    if args.batch_size > train_images.size(0):
        print(f'note: --batch-size {args.batch_size} is more than the {train_images.size(0)} training images: '
              'one batch per epoch')
    return train_images, measured, images.size(0)


def start_state(args, checkpoint, streams, device, num_images):
    streams.seed_weights()
    model, optimizers = training.build(args.model, args.latent_size, args.image_size, device,
                                       memory_format=MEMORY_FORMATS[args.memory_format])
    state = TrainingState(model, optimizers, streams.training_noise(device))
    if checkpoint is not None:
        check_resumable(checkpoint, vars(args), num_images)
        state.load_state_dict(checkpoint, reseed_noise=lambda iteration: streams.training_noise(device, iteration))
    if args.compile:
        model.compile()
    return state


@contextlib.contextmanager
def output_claimed(args):
    """The output folders made and locked for this run; --overwrite clears another run's files first."""
    make_folder(args.output_dir, '--output-dir')
    make_folder(os.path.dirname(os.path.abspath(args.loss_file)), '--loss-file')
    with FolderLock(args.output_dir):
        if not args.resume:  # checked again under the lock: a run started at the same time may have written since
            if args.overwrite:
                removed = run_outputs(args.output_dir)
                for path in removed:
                    os.unlink(path)
                print(f'--overwrite: removed {len(removed)} files of an earlier run from {args.output_dir}')
            else:
                refuse_to_replace(args.output_dir, args.loss_file)
        yield


def run(args, given, argv):
    device = cli.choose_device(args.device)
    args, checkpoint = settings_of_run(args, given)
    print(' '.join(f'{key}={value}' for key, value in vars(args).items()), f'| device={device}', flush=True)
    streams = training.Streams(args.seed)
    train_images, measured, num_images = load_data(args, streams, device)
    state = start_state(args, checkpoint, streams, device, num_images)
    per_epoch = training.batches_per_epoch(train_images.size(0), args.batch_size)
    total = args.epochs * per_epoch
    if state.iteration >= total:
        print(f'asgn6.py: the run is already complete at iteration {state.iteration} of {total} (--epochs '
              f'{args.epochs}); to train on, resume with a larger --epochs')
        return 0
    print(f'{train_images.size(0)} images from {args.data_dir}, {per_epoch} iterations per epoch, '
          f'starting at iteration {state.iteration + 1}', flush=True)

    with cli.StopRequest() as stop, output_claimed(args), last_good_save_kept(args.loss_file):
        train(state, train_images, measured, files=RunFiles(args.output_dir, args.loss_file, vars(args), num_images),
              step_options=dict(batch_size=args.batch_size, noise_level=args.noise_level, precision=args.precision,
                                loss_kind=args.loss, streams=streams,
                                memory_format=MEMORY_FORMATS[args.memory_format],
                                schedule=training.cosine_schedule(total) if args.lr_schedule == 'cosine' else None),
              latents=training.novel_latents(args.batch_size, args.latent_size, streams, device),
              total=total, per_epoch=per_epoch, log_interval=args.log_interval, save_interval=args.save_interval,
              stop=stop)
    if stop.signum is not None:
        resume = argv if args.resume else argv + ['--resume']
        print(f'stopped at iteration {state.iteration}/{total}; {args.loss_file} and checkpoint saved. To continue:\n'
              f'  {cli.shell_command(os.path.relpath(__file__), [arg for arg in resume if arg != "--overwrite"])}', flush=True)
        return 128 + stop.signum
    print(f'done: {total} iterations; losses in {args.loss_file}, grids and {CHECKPOINT_NAME} in {args.output_dir}')
    return 0


def main(argv=None):
    argv = sys.argv[1:] if argv is None else [str(arg) for arg in argv]
    args, given = parse_args(argv)
    # a second Ctrl-C stops at once; the last periodic save stands
    return cli.report_errors('asgn6.py', lambda: run(args, given, argv),
                             interrupted=f'stopped at once; {args.loss_file} and the checkpoint hold the last save')


if __name__ == '__main__':
    sys.exit(main())
