# COMP4680/8650 Assignment 6 -- Name: ____________________  Student ID: ____________
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
import contextlib
import os
import sys
import time
from dataclasses import dataclass

import torch

import cli
import training
from files import FolderLock, check_can_create, make_folder
from images import load_dataset, save_grid
from run_state import (CHECKPOINT_NAME, MEMORY_FORMATS, VALIDATION_NAME, TrainingState, Validation, check_resumable, check_trainable,
                       load_checkpoint, refuse_to_replace, resume_settings, run_outputs, save_checkpoint, save_losses,
                       parse_args, save_validation)


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
                                schedule=training.cosine_schedule(total) if args.lr_schedule == 'cosine' else None,
                                augment=args.augment),
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
    args, given = parse_args(argv, __doc__)
    # a second Ctrl-C stops at once; the last periodic save stands
    return cli.report_errors('asgn6.py', lambda: run(args, given, argv),
                             interrupted=f'stopped at once; {args.loss_file} and the checkpoint hold the last save')


if __name__ == '__main__':
    sys.exit(main())
