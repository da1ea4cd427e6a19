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
import argparse
import dataclasses
import math
import os
import sys
from dataclasses import dataclass

from dae import cli
from dae.config import FIELDS, MODEL_NAMES, RunConfig, as_flag, resumed_config, total_iterations
from dae.run_folder import CHECKPOINT_NAME, VALIDATION_NAME, RunLock, refuse_to_replace, run_outputs


@dataclass(frozen=True)
class Invocation:
    """Where and how this call trains.  None of it changes a number, and none of it is stored: a checkpoint holds
    the RunConfig alone, so that it names no folder of the machine that wrote it."""
    data_dir: str = 'data'
    output_dir: str = 'samples'
    loss_file: str = 'loss.txt'
    log_interval: int = 10
    save_interval: int = 100
    device: str = 'auto'
    comparable_grids: bool = False
    resume: str = None
    overwrite: bool = False


def build_parser():
    """The flags, with no argparse defaults (SUPPRESS): the namespace holds the flags typed, and the defaults are
    RunConfig's and Invocation's, which the help quotes."""
    run, call = RunConfig, Invocation
    p = cli.ArgumentParser('asgn6.py', __doc__, argument_default=argparse.SUPPRESS)
    p.add_argument('--data-dir', help="training images, sub-folders included (the course's data/pokemon/*.png, or a "
                   f'flat folder); resized and centre-cropped (default: {call.data_dir}, here or beside asgn6.py)')
    p.add_argument('--image-size', type=cli.positive_int(), help="side of the training images; the assignment's "
                   f'decoder makes 64x64 images, so only 64 is accepted (default: {run.image_size})')
    p.add_argument('--latent-size', type=cli.positive_int(), help=f'z_dim, the size of the code (default: '
                   f'{run.latent_size})')
    p.add_argument('--batch-size', type=cli.positive_int(2), help="images per iteration; an epoch's last batch holds "
                   f'the rest, skipped if it is one image (BatchNorm needs two) (default: {run.batch_size})')
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
    p.add_argument('--model', choices=MODEL_NAMES,
                   help="spec: the assignment's; conv-encoder: a convolutional encoder; resize-decoder: a decoder "
                   'that doubles by resizing, then convolves; unet: no bottleneck; residual-unet: the stronger '
                   f'denoiser (default: {run.model})')
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
    p.add_argument('--comparable-grids', action='store_true', help='grids that compare across saves: the range '
                   '[-1, 1], and one batch of latents for the run, decoded in eval mode (default: the starter\'s: '
                   'each grid rescaled to its own range, a fresh novel batch decoded in training mode at every save)')
    p.add_argument('--resume', nargs='?', const='auto', metavar='CHECKPOINT', help='continue the run of CHECKPOINT '
                   f'or of the run folder it names (given alone: OUTPUT_DIR/{CHECKPOINT_NAME}); flags not given are '
                   "its run's (default: off)")
    p.add_argument('--overwrite', action='store_true', help="start afresh over another run's files (default: off)")
    return p


def parse_args(argv):
    """(RunConfig, Invocation, {setting: value} of the flags typed on the command line)."""
    parser = build_parser()
    given = vars(parser.parse_args(argv))
    if given.get('image_size', RunConfig.image_size) != 64:
        parser.error("argument --image-size: the assignment's decoder outputs 64x64 images, so it must be 64")
    places = [field.name for field in dataclasses.fields(Invocation)]
    return (RunConfig(**{key: value for key, value in given.items() if key in FIELDS}),
            Invocation(**{key: value for key, value in given.items() if key in places}), given)


if __name__ == '__main__':  # before torch loads, which takes seconds: --help and a mistyped flag answer at once,
    parse_args(sys.argv[1:])  # and a Ctrl-C meanwhile stops in one line
    cli.exit_on_ctrl_c('asgn6.py: stopped while loading; nothing was saved')

import torch  # after the flags: see above (pyproject.toml allows these late imports here)
import torch.nn.functional as F

import models
from dae import training, variants
from dae.checkpoint import FORMAT, load_checkpoint
from dae.files import atomic_write, check_can_create, make_folder
from dae.images import add_noise, load_dataset, save_grid, to_unit_range
from dae.logs import Validation, holds_losses_of, save_losses, save_validation
from dae.training import Streams

LEARNING_RATES = (1e-3, 2e-3)  # the starter's: encoder, decoder
LOSSES = {'l1': F.l1_loss, 'mse': F.mse_loss}
EMBEDDED_DATA = os.path.join(os.path.dirname(os.path.abspath(__file__)), 'data')


def get_data(config, invocation, device):
    """(the run's Split, its training images on the device as bytes; the number of images found), checked."""
    inside = os.path.realpath(invocation.output_dir).startswith(os.path.realpath(invocation.data_dir) + os.sep)
    if inside:
        print(f'note: --output-dir {invocation.output_dir} is inside --data-dir: its images are left out')
    with cli.about('--data-dir'):
        images, paths = load_dataset(invocation.data_dir, config.image_size,
                                     skip=[invocation.output_dir] if inside else [], on_progress=cli.decode_progress())
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


def create_models(config, device):
    """E and D of models.py joined as one auto-encoder (or a Q3(f) variant) on the device, in channels_last (the
    faster layout on CPUs), and the starter's two Adams: the encoder's and the decoder's (a U-Net's two paths)."""
    try:
        with Streams(config.seed).initialising_weights():
            model = variants.build(config.model, config.latent_size, config.image_size)
        model = model.to(device, memory_format=torch.channels_last)
    except RuntimeError as error:  # torch's way of saying that a tensor does not fit
        if 'allocate' not in str(error):
            raise
        raise cli.UsageError(f'--latent-size {config.latent_size}: the {config.model} model does not fit '
                             f'in memory ({str(error).splitlines()[0]})') from None
    print(f'{config.model} model on {device}: {sum(p.numel() for p in model.parameters()):,} parameters')
    fused = {'fused': True} if device.type == 'cuda' else {}
    optimizers = [torch.optim.Adam(getattr(model, part).parameters(), lr=rate, betas=(0.5, 0.999), **fused)
                  for part, rate in zip(variants.part_names(config.model), LEARNING_RATES)]
    return model, optimizers


@dataclass
class TrainingState:
    """Everything that changes while a run trains; one restored from its state_dict goes on bit for bit."""
    model: torch.nn.Module
    optimizers: list
    noise: torch.Generator  # the training noise's stream
    iteration: int = 0  # the last one done
    losses: list = dataclasses.field(default_factory=list)
    validation: list = dataclasses.field(default_factory=list)  # of Validation

    def state_dict(self):
        return {'model': self.model.state_dict(), 'optimizers': [opt.state_dict() for opt in self.optimizers],
                'iteration': self.iteration, 'losses': list(self.losses), 'validation': [list(row) for row in
                self.validation], 'noise_rng': self.noise.get_state(), 'noise_rng_device': self.noise.device.type,
                'torch_rng': torch.get_rng_state()}

    def load_state_dict(self, state, streams):
        self.model.load_state_dict(state['model'])
        for optimizer, saved in zip(self.optimizers, state['optimizers']):
            optimizer.load_state_dict(saved)
        torch.set_rng_state(state['torch_rng'])
        if state['noise_rng_device'] == self.noise.device.type:
            self.noise.set_state(state['noise_rng'])
        else:  # another kind of device has another kind of generator: the run goes on, not bit for bit
            print(f"note: checkpoint written on {state['noise_rng_device']}; the noise will not repeat exactly",
                  file=sys.stderr)
            self.noise = streams.noise_generator(self.noise.device, state['iteration'])
        self.iteration, self.losses = state['iteration'], list(state['losses'])
        self.validation = [Validation(*row) for row in state['validation']]


def rate_factor(config, iteration, total):
    """1 throughout, or half a cosine from 1 at the first iteration to nearly 0 at the last (SGDR without restarts),
    so that a run of fixed length ends in small, careful steps."""
    return 1.0 if config.lr_schedule == 'constant' else 0.5 * (1 + math.cos(math.pi * (iteration - 1) / total))


def train_models(state, split, config, invocation, num_images, stop):
    """The iterations after state.iteration, numbered across epochs from 1 as in the starter, up to the run's
    total; a stop request ends them after the iteration it lands in, saved."""
    model, (E_optimizer, D_optimizer) = state.model, state.optimizers
    total = total_iterations(config, num_images)
    streams, device, per_epoch = Streams(config.seed), split.train.device, total // config.epochs
    progress, pending = cli.Progress(total, done=state.iteration), []  # pending: losses not yet read back
    for iteration, indices in training.batch_order(split.train.size(0), config.batch_size, streams,
                                                   state.iteration + 1, total, device):
        clean = to_unit_range(split.train[indices])
        if config.augment:
            clean = training.symmetries(clean, streams.augmentation_generator(iteration))
        clean = clean.contiguous(memory_format=torch.channels_last)
        noisy = add_noise(clean, config.noise_level, state.noise)  # clamp(clean + U[-L, L], -1, 1)
        for optimizer, rate in zip(state.optimizers, LEARNING_RATES):
            for group in optimizer.param_groups:
                group['lr'] = rate * rate_factor(config, iteration, total)

        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=config.precision == 'bf16'):
            denoised = model(noisy)  # D(E(noisy))
        loss = LOSSES[config.loss](denoised.float(), clean)
        E_optimizer.zero_grad(set_to_none=True)
        D_optimizer.zero_grad(set_to_none=True)
        loss.backward()
        E_optimizer.step()
        D_optimizer.step()

        state.iteration = iteration
        pending.append(loss.detach())
        stopping, last = stop.signum is not None, iteration == total  # a signal is read once, here
        log = iteration % invocation.log_interval == 0 or last or stopping
        save = iteration % invocation.save_interval == 0 or last or stopping
        if log or save:
            state.losses += read_back(pending, iteration)
        if log:
            seconds, left = progress.update(iteration)
            print(f'Epoch [{(iteration - 1) // per_epoch + 1:4d}/{config.epochs}] Iteration [{iteration:6d}/'
                  f'{total:6d}] | loss: {state.losses[-1]:6.4f} | {seconds:.3f} s/it | ETA {left}', flush=True)
        if save:
            if split.held_out is not None:
                measure(state, split)
            save_progress(state, config, invocation, num_images)
            if iteration % invocation.save_interval == 0 or last:  # a stop by signal draws no grids
                save_grids(state, config, invocation, (clean, noisy, denoised.detach()))
        if stopping:
            break


def read_back(pending, iteration):
    """The pending losses as floats, read back together (one device sync); a non-finite one stops the run."""
    values = torch.stack(pending).tolist()
    pending.clear()
    for offset, value in enumerate(values):
        if not math.isfinite(value):
            raise cli.Failure(f'loss is {value} at iteration {iteration - len(values) + 1 + offset}; training '
                              'stopped, and the loss file and the checkpoint hold the last good save')
    return values


def measure(state, split):
    """Held-out and training PSNR, taken the same way (eval mode, fixed noise, as many images)."""
    l1, psnr_db = training.evaluate(state.model, split.held_out)
    train_l1, train_psnr = training.evaluate(state.model, split.probe)
    row = Validation(state.iteration, l1, psnr_db, split.held_out.noisy_psnr, train_l1, train_psnr,
                     split.probe.noisy_psnr)
    state.validation.append(row)
    print(f'held out: L1 {row.l1:.4f} | PSNR {row.psnr:.2f} dB (noisy input {row.noisy_psnr:.2f} dB) | '
          f'training images: PSNR {row.train_psnr:.2f} dB (noisy {row.train_noisy_psnr:.2f} dB)', flush=True)


@torch.no_grad()
def decode_novel(model, config, iteration, comparable):
    """The starter's novel batch: fresh at every save (from a stream of its own), decoded in training mode, so
    BatchNorm uses the batch's own statistics; the running statistics are put back after, so that the pictures
    change nothing eval mode reads.  --comparable-grids: one batch for the whole run, in eval mode."""
    streams, device = Streams(config.seed), next(model.parameters()).device
    generator = streams.novel_latent_generator() if comparable else streams.save_latent_generator(iteration)
    latents = training.uniform_latents(config.batch_size, config.latent_size, generator).to(device)
    if comparable:
        with training.evaluating(model):
            return model.decode(latents)
    saved = [buffer.clone() for buffer in model.decoder.buffers()]
    images = model.decode(latents)
    for buffer, value in zip(model.decoder.buffers(), saved):
        buffer.copy_(value)
    return images


def save_grids(state, config, invocation, rows):
    """sample-NNNNNN.png (clean / noisy / denoised rows) and novel-NNNNNN.png, each rescaled to its own range as
    the starter's are, or with --comparable-grids in the fixed range [-1, 1]."""
    folder, iteration, comparable = invocation.output_dir, state.iteration, invocation.comparable_grids
    value_range = (-1, 1) if comparable else None
    save_grid(os.path.join(folder, f'sample-{iteration:06d}.png'), torch.cat(rows), images_per_row=rows[0].size(0),
              value_range=value_range)
    if isinstance(state.model, models.AutoEncoder):  # a U-Net has no code to decode
        save_grid(os.path.join(folder, f'novel-{iteration:06d}.png'),
                  decode_novel(state.model, config, iteration, comparable), images_per_row=8, value_range=value_range)


def save_progress(state, config, invocation, num_images):
    """Checkpoint, loss file and validation table: all a resumed run needs.  The checkpoint goes first and holds
    every loss and measurement too, so a file that cannot be written after it loses nothing."""
    path = os.path.join(invocation.output_dir, CHECKPOINT_NAME)
    checkpoint = {**state.state_dict(), 'format': FORMAT, 'config': dataclasses.asdict(config),
                  'num_images': num_images, 'loss_file': os.path.relpath(invocation.loss_file, invocation.output_dir)}
    atomic_write(path, lambda tmp: torch.save(checkpoint, tmp))
    try:
        save_losses(invocation.loss_file, state.losses)
        if state.validation:
            save_validation(os.path.join(invocation.output_dir, VALIDATION_NAME), state.validation)
    except OSError as error:
        raise cli.Failure(f'cannot write the losses ({error.strerror or error}); {path} was saved at iteration '
                          f'{state.iteration} and holds every loss so far') from None


def resumed(invocation, given):
    """(config, invocation, checkpoint) of a resumed run: what was not given comes from the checkpoint, and the
    output folder and loss file are found from the checkpoint's own place."""
    path = invocation.output_dir if invocation.resume == 'auto' else invocation.resume
    path = os.path.join(path, CHECKPOINT_NAME) if os.path.isdir(path) or invocation.resume == 'auto' else path
    with cli.about('--resume'):
        checkpoint = load_checkpoint(path)
    if checkpoint.get('weights_only'):
        raise cli.UsageError(f"--resume {path}: holds a model's weights only, with no optimiser state to train on "
                             'from; resume from the OUTPUT_DIR/checkpoint.pt of a run')
    config, taken = resumed_config(checkpoint['config'], given)
    if taken:
        print('from the checkpoint: ' + ' '.join(as_flag(key, value) for key, value in taken.items()))
    folder, places = os.path.dirname(path) or '.', {}
    if 'output_dir' not in given:
        places['output_dir'] = folder
    if 'loss_file' not in given and 'loss_file' in checkpoint:
        places['loss_file'] = os.path.normpath(os.path.join(folder, checkpoint['loss_file']))
    invocation = dataclasses.replace(invocation, **places)
    if os.path.isfile(invocation.loss_file) and not holds_losses_of(invocation.loss_file, checkpoint['losses']):
        raise cli.UsageError(f"--loss-file {invocation.loss_file}: holds losses that are not this checkpoint's "
                             '(another run wrote it); give this run its own --loss-file')
    print(f'resuming {path}: grids and checkpoint to {invocation.output_dir}, losses to {invocation.loss_file}')
    return config, invocation, checkpoint


def claim_output(invocation, lock):
    """The output folders made and locked for this run; --overwrite clears another run's files first."""
    with cli.about('--output-dir'):
        make_folder(invocation.output_dir)
    with cli.about('--loss-file'):
        make_folder(os.path.dirname(os.path.abspath(invocation.loss_file)))
    lock.acquire()  # the locks of folders made just now
    if not invocation.resume:  # checked again under the lock: a run started at the same time may have written
        if invocation.overwrite:
            removed = run_outputs(invocation.output_dir)
            for path in removed:
                os.unlink(path)
            print(f'--overwrite: removed {len(removed)} files of an earlier run from {invocation.output_dir}')
        else:
            refuse_to_replace(invocation.output_dir, invocation.loss_file)


def train(config, invocation, given, argv):
    """What main() does once the flags are read: check the paths, load, train, and say how it ended."""
    device = cli.choose_device(invocation.device)
    if 'data_dir' not in given and not os.path.isdir(invocation.data_dir) and os.path.isdir(EMBEDDED_DATA):
        print(f'note: no folder {invocation.data_dir} here; training on the embedded images in {EMBEDDED_DATA}')
        invocation = dataclasses.replace(invocation, data_dir=EMBEDDED_DATA)
    config, invocation, checkpoint = resumed(invocation, given) if invocation.resume else (config, invocation, None)
    with cli.about('--output-dir'):
        check_can_create(invocation.output_dir, is_folder=True)
    with cli.about('--loss-file'):
        check_can_create(invocation.loss_file)
    with RunLock(invocation.output_dir, invocation.loss_file) as lock:  # a busy run is refused before any work
        if not invocation.resume and not invocation.overwrite:
            refuse_to_replace(invocation.output_dir, invocation.loss_file)
        print('run: ' + ' '.join(f'{key}={value}' for key, value in dataclasses.asdict(config).items()), flush=True)
        print(f'device {device}; grids and checkpoint to {invocation.output_dir}, losses to {invocation.loss_file}; a '
              f'line every {invocation.log_interval} iterations, a save every {invocation.save_interval}', flush=True)
        split, num_images = get_data(config, invocation, device)
        state = start_state(config, checkpoint, device, num_images)
        total = total_iterations(config, num_images)
        if state.iteration >= total:
            print(f'asgn6.py: the run is already complete at iteration {state.iteration} of {total} (--epochs '
                  f'{config.epochs}); to train on, resume with a larger --epochs')
            return 0
        per_epoch = total // config.epochs
        print(f'{split.train.size(0)} images from {invocation.data_dir}, {per_epoch} iteration'
              f'{"s" if per_epoch > 1 else ""} per epoch, starting at iteration {state.iteration + 1}', flush=True)
        claim_output(invocation, lock)
        with cli.StopRequest() as stop:
            train_models(state, split, config, invocation, num_images, stop)
    return say_how_it_ended(stop, state.iteration, total, invocation, argv)


def say_how_it_ended(stop, iteration, total, invocation, argv):
    """The last line, and the exit status: 0 done, or 128 + N when signal N stopped the run."""
    if stop.signum is None:
        print(f'done: {total} iterations; losses in {invocation.loss_file}, grids and {CHECKPOINT_NAME} in '
              f'{invocation.output_dir}')
        return 0
    print(f'stopped at iteration {iteration}/{total}; {invocation.loss_file} and checkpoint saved. To continue:\n'
          f'  {resume_command(argv, invocation)}', flush=True)
    return 128 + stop.signum


def start_state(config, checkpoint, device, num_images):
    """The models and optimisers, freshly seeded, or as the checkpoint left them."""
    model, optimizers = create_models(config, device)
    streams = Streams(config.seed)
    state = TrainingState(model, optimizers, streams.noise_generator(device))
    if checkpoint is not None:
        if checkpoint['num_images'] != num_images:
            raise cli.UsageError(f'--resume: the checkpoint was trained on {checkpoint["num_images"]} images, '
                                 f'--data-dir has {num_images}')
        state.load_state_dict(checkpoint, streams)
    return state


def resume_command(argv, invocation):
    """The command that continues this run, to paste into a shell."""
    resume = [arg for arg in argv if arg != '--overwrite'] + ([] if invocation.resume else ['--resume'])
    return cli.shell_command(os.path.relpath(__file__), resume)


def main(argv=None):
    argv = sys.argv[1:] if argv is None else [str(arg) for arg in argv]
    config, invocation, given = parse_args(argv)

    def interrupted():  # by a second Ctrl-C, or one before training began
        if invocation.resume or os.path.exists(os.path.join(invocation.output_dir, CHECKPOINT_NAME)):
            return (f'stopped at once; {invocation.loss_file} and the checkpoint hold the last save. To continue:\n  '
                    + resume_command(argv, invocation))
        return 'stopped before the first save; nothing was saved'
    return cli.report_errors('asgn6.py', lambda: train(config, invocation, given, argv), interrupted)


if __name__ == '__main__':
    sys.exit(main())
