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
import os
import signal
import sys
import tempfile
import time
from dataclasses import dataclass, field

import numpy as np
import torch
from PIL import Image, ImageOps
from torchvision.transforms import functional as TF
from torchvision.utils import save_image

import models

IMAGE_EXTENSIONS = ('.png', '.jpg', '.jpeg', '.bmp', '.gif', '.webp', '.tif', '.tiff', '.ppm', '.pgm')
CHECKPOINT_NAME = 'checkpoint.pt'
# a resumed run must agree with its checkpoint on these, or it would not be the same run
RESUME_MUST_MATCH = ('image_size', 'latent_size', 'batch_size', 'seed', 'noise_level', 'model', 'loss', 'val_split')
VALIDATION_NAME = 'validation.csv'


class UsageError(Exception):
    """A problem with what the user gave us: reported in one line, exit status 2, no traceback."""


class TrainingDiverged(Exception):
    """The loss became NaN or infinite."""


# ----------------------------------------------------------------------------- command line

def positive_int(minimum=1):
    def parse(text):
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f'expected an integer, got {text!r}')
        if value < minimum:
            raise argparse.ArgumentTypeError(f'must be at least {minimum}, got {value}')
        return value
    return parse


def bounded_float(accept, requirement):
    """An argparse type: a float for which accept(value) holds, else an error that states the requirement."""
    def parse(text):
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f'expected a number, got {text!r}')
        if not accept(value):
            raise argparse.ArgumentTypeError(f'{requirement}, got {text}')
        return value
    return parse


positive_float = bounded_float(lambda value: value > 0, 'must be positive')
fraction = bounded_float(lambda value: 0 <= value < 1, 'must be at least 0 and below 1')


def build_parser():
    p = argparse.ArgumentParser(prog='asgn6.py', description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('--data-dir', default='data', help='folder of training images, searched with its sub-folders; the '
                   "course's ImageFolder layout (data/pokemon/*.png) and a flat folder both work. Transparent pixels "
                   'become white; images are resized on the short side and centre-cropped (default: data)')
    p.add_argument('--image-size', type=positive_int(), default=64, help="side of the square training images; "
                   "the assignment's decoder always outputs 64, so only 64 is accepted (default: 64)")
    p.add_argument('--latent-size', type=positive_int(), default=128, help='size z_dim of the latent code (default: 128)')
    p.add_argument('--batch-size', type=positive_int(2), default=32, help='images per iteration. The last batch of an '
                   'epoch holds the remainder; a remainder of one image is skipped that epoch (BatchNorm needs two), '
                   'and a batch size above the dataset size means the whole dataset per batch (default: 32)')
    p.add_argument('--epochs', type=positive_int(), default=500, help='passes through the data (default: 500)')
    p.add_argument('--log-interval', type=positive_int(), default=10, help='iterations between progress lines (default: 10)')
    p.add_argument('--save-interval', type=positive_int(), default=100, help='iterations between sample grids, '
                   'loss file and checkpoint; all are also written at the end, the last two on Ctrl-C (default: 100)')
    p.add_argument('--output-dir', default='samples', help='folder for grids and checkpoint (default: samples)')
    p.add_argument('--loss-file', default='loss.txt', help='every iteration\'s loss, one per line; the starter '
                   'writes it in the working directory (default: loss.txt)')
    p.add_argument('--seed', type=int, default=4680, help='seeds weights, data order and noise (default: 4680)')
    p.add_argument('--noise-level', type=positive_float, default=1.0, help='noise is uniform in [-L, L] before '
                   'clamping to [-1, 1]; 1 is the assignment\'s (default: 1.0)')
    p.add_argument('--model', default='spec', choices=models.MODEL_NAMES, help="spec: the assignment's "
                   'auto-encoder; conv-encoder: a convolutional encoder in place of the MLP; unet: a small '
                   'U-Net with skip connections and no bottleneck (Q3f experiments) (default: spec)')
    p.add_argument('--loss', default='l1', choices=['l1', 'mse'], help="training loss; l1 is the assignment's "
                   '(default: l1)')
    p.add_argument('--val-split', type=fraction, default=0.0, help='fraction of the images held out from '
                   'training, chosen by --seed; at every save the PSNR on them (with one fixed noise draw) is '
                   f'added to OUTPUT_DIR/{VALIDATION_NAME}. 0 trains on all, as the assignment does (default: 0)')
    p.add_argument('--device', default='auto', choices=['auto', 'cpu', 'cuda', 'mps'],
                   help='auto picks cuda, then mps, then cpu (default: auto)')
    p.add_argument('--precision', default='fp32', choices=['fp32', 'bf16'], help='fp32 is exact and faithful; bf16 '
                   'autocast pays off only on hardware with bf16 units (recent GPUs, CPUs with AMX or AVX512-BF16) '
                   'and is slower on other CPUs (default: fp32)')
    p.add_argument('--compile', action='store_true', help='torch.compile the model: no gain measured on a '
                   '2-core CPU, not yet measured on a GPU; needs a C++ compiler on CPU (default: off)')
    p.add_argument('--resume', nargs='?', const='auto', default=None, metavar='CHECKPOINT', help='continue a run '
                   f'from CHECKPOINT, or from OUTPUT_DIR/{CHECKPOINT_NAME} when no path is given (default: off)')
    return p


def parse_args(argv=None):
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.image_size != 64:
        parser.error("argument --image-size: the assignment's decoder outputs 64x64 images, so it must be 64")
    return args


def choose_device(name):
    """cuda, then mps, then cpu for 'auto'; an explicit choice that is not available is an error."""
    available = {'cpu': True, 'cuda': torch.cuda.is_available(),
                 'mps': getattr(torch.backends, 'mps', None) is not None and torch.backends.mps.is_available()}
    if name == 'auto':
        name = next(kind for kind in ('cuda', 'mps', 'cpu') if available[kind])
    if not available[name]:
        raise UsageError(f'--device {name}: not available on this machine (try --device auto)')
    return torch.device(name)


def set_seed(seed):
    """The one place that seeds the global generators (weight initialisation draws from torch's)."""
    np.random.seed(seed)
    torch.manual_seed(seed)


# ----------------------------------------------------------------------------- data

def to_rgb_on_white(image):
    """Any PIL mode -> RGB, with transparent pixels on white as in the course's images."""
    if image.mode in ('I', 'I;16', 'I;16B', 'I;16L', 'I;16N'):
        # 16-bit grey: PIL's convert('L') clips to 255 instead of scaling
        grey = np.asarray(image, dtype=np.float64) / 257.0
        image = Image.fromarray(np.clip(np.round(grey), 0, 255).astype(np.uint8), 'L')
    if image.mode in ('RGBA', 'LA', 'PA', 'P') or 'transparency' in image.info:
        image = image.convert('RGBA')
        white = Image.new('RGBA', image.size, (255, 255, 255, 255))
        image = Image.alpha_composite(white, image)
    return image.convert('RGB')


def load_image(path, image_size=None):
    """Decode one image file to RGB, square of side image_size unless None; raises OSError or ValueError."""
    with Image.open(path) as image:
        image.load()  # decode now, so a truncated file fails here and not later
        image = to_rgb_on_white(ImageOps.exif_transpose(image))
    if image_size is None:
        return image
    image = TF.resize(image, image_size, interpolation=TF.InterpolationMode.BILINEAR)  # short side
    return TF.center_crop(image, image_size)


def to_tensor(image):
    """PIL RGB -> 3 x H x W float in [-1, 1], the starter's ToTensor + Normalize(0.5, 0.5)."""
    return TF.to_tensor(image) * 2 - 1


def find_images(folder, what='--data-dir'):
    if not os.path.exists(folder):
        raise UsageError(f'{what} {folder}: no such folder; expected a folder of images such as data/pokemon/*.png')
    if not os.path.isdir(folder):
        raise UsageError(f'{what} {folder}: is a file, not a folder of images such as data/pokemon/*.png')
    paths = [os.path.join(root, name) for root, dirs, names in os.walk(folder, followlinks=True)
             for name in names if name.lower().endswith(IMAGE_EXTENSIONS)]
    return sorted(paths)


def load_dataset(folder, image_size):
    """Every readable image under `folder` as one N x 3 x S x S tensor; unreadable files are skipped with a warning."""
    tensors, skipped = [], 0
    for path in find_images(folder):
        try:
            tensors.append(to_tensor(load_image(path, image_size)))
        except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as error:
            print(f'warning: skipping {path}: cannot decode it as an image ({error})', file=sys.stderr)
            skipped += 1
    if len(tensors) < 2:
        found = f'{len(tensors)} readable image(s)' + (f' ({skipped} unreadable)' if skipped else '')
        raise UsageError(f'--data-dir {folder}: found {found}; need at least 2 images ({", ".join(IMAGE_EXTENSIONS)}) '
                         'in it or its sub-folders, e.g. data/pokemon/*.png')
    return torch.stack(tensors)


def batches_per_epoch(num_images, batch_size):
    """Full batches plus the remainder, unless the remainder is one image (BatchNorm cannot train on one)."""
    batch_size = min(batch_size, num_images)
    full, rest = divmod(num_images, batch_size)
    return full + (rest >= 2)


def epoch_order(num_images, seed, epoch):
    """The shuffled order of one epoch: a function of (seed, epoch) alone, so a resumed run sees the same order."""
    generator = torch.Generator().manual_seed(seed * 100_003 + epoch)
    return torch.randperm(num_images, generator=generator)


def held_out_split(num_images, fraction, seed):
    """(training, held-out) image indices: a seeded choice, disjoint, each sorted; none held out for 0."""
    count = 0 if fraction == 0 else max(1, round(num_images * fraction))
    order = torch.randperm(num_images, generator=torch.Generator().manual_seed(seed + 2))
    return order[count:].sort().values, order[:count].sort().values


# ----------------------------------------------------------------------------- outputs (each write is atomic)

def atomic_write(path, write):
    """Call write(tmp) on a temp file beside `path`, then rename: a crash never leaves `path` half-written."""
    folder = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(dir=folder, prefix='.' + os.path.basename(path) + '.', suffix='.tmp')
    os.close(fd)
    try:
        write(tmp)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def write_text_atomic(path, text):
    def write(tmp):
        with open(tmp, 'w') as f:  # closed, so flushed, before the rename
            f.write(text)
    atomic_write(path, write)


def save_grid(path, images, images_per_row):
    """A PNG grid of images in [-1, 1], with that fixed range (no per-grid rescaling that would shift colours)."""
    images = images.detach().float().cpu()
    atomic_write(path, lambda tmp: save_image(images, tmp, nrow=images_per_row, normalize=True,
                                              value_range=(-1, 1), format='png'))


def save_losses(path, losses):
    write_text_atomic(path, ''.join(f'{loss!r}\n' for loss in losses))


def save_validation(path, rows):
    header = 'iteration,held_out_l1,held_out_psnr_db,noisy_psnr_db\n'
    write_text_atomic(path, header + ''.join(
        f'{iteration},{l1:.6f},{psnr_db:.4f},{noisy_db:.4f}\n' for iteration, l1, psnr_db, noisy_db in rows))


def save_checkpoint(path, state):
    atomic_write(path, lambda tmp: torch.save(state, tmp))


def check_writable(folder, what):
    try:
        os.makedirs(folder, exist_ok=True)
        with tempfile.TemporaryFile(dir=folder):
            pass
    except OSError as error:
        raise UsageError(f'{what} {folder}: cannot write there ({error.strerror or error})')


# ----------------------------------------------------------------------------- model and training

def build_model(args, device):
    model = models.build(args.model, args.latent_size, args.image_size).to(device)
    fused = {'fused': True} if device.type == 'cuda' else {}
    optimizers = [torch.optim.Adam(model.encoder.parameters(), lr=1e-3, betas=(0.5, 0.999), **fused),
                  torch.optim.Adam(model.decoder.parameters(), lr=2e-3, betas=(0.5, 0.999), **fused)]
    return model, optimizers


def add_noise(clean, noise_level, generator):
    """Uniform noise in [-level, level], drawn on the batch's device, then clamped to the image range."""
    noise = torch.rand(clean.shape, generator=generator, device=clean.device, dtype=clean.dtype)
    return (clean + noise_level * (2 * noise - 1)).clamp(-1, 1)


def reconstruction_loss(denoised, clean, kind='l1'):
    error = clean - denoised.float()
    return error.abs().mean() if kind == 'l1' else (error ** 2).mean()


def train_step(model, optimizers, clean, noisy, precision, loss_kind='l1'):
    """One Adam step on the L1 (or squared) distance between the clean batch and the denoised noisy batch."""
    with torch.autocast(clean.device.type, dtype=torch.bfloat16, enabled=precision == 'bf16'):
        denoised = model(noisy)
    loss = reconstruction_loss(denoised, clean, loss_kind)
    for optimizer in optimizers:
        optimizer.zero_grad(set_to_none=True)
    loss.backward()
    for optimizer in optimizers:
        optimizer.step()
    return loss.detach(), denoised.detach()


@torch.no_grad()
def decode_novel(model, latents):
    """Decode fixed latent vectors in eval mode (BatchNorm running statistics), then back to training."""
    model.eval()
    images = model.decode(latents)
    model.train()
    return images


@torch.no_grad()
def evaluate(model, clean, noisy):
    """(L1, PSNR) of the model's output on held-out images, in eval mode, in batches."""
    model.eval()
    denoised = torch.cat([model(batch) for batch in noisy.split(64)]).float()
    model.train()
    return (clean - denoised).abs().mean().item(), psnr(denoised, clean)


def psnr(images, reference):
    """Mean over the batch of the peak signal-to-noise ratio in dB, for pixels in [-1, 1] (peak-to-peak 2)."""
    mse = ((images.float() - reference.float()) ** 2).flatten(1).mean(1)
    return (10 * torch.log10(4 / mse)).mean().item()


def fixed_latents(count, size, seed, device):
    """One batch of uniform latent vectors for every novel grid of a run, so grids are comparable over time."""
    generator = torch.Generator().manual_seed(seed + 1)
    return (2 * torch.rand(count, size, generator=generator) - 1).to(device)


# ----------------------------------------------------------------------------- checkpoints

@dataclass
class History:
    """What a run has measured so far: every training loss, and the held-out rows of each save."""
    losses: list = field(default_factory=list)
    validation: list = field(default_factory=list)  # [iteration, L1, PSNR, PSNR of the noisy input]


def checkpoint_state(model, optimizers, iteration, history, noise_generator, args, num_images):
    return {
        'encoder': model.encoder.state_dict(), 'decoder': model.decoder.state_dict(),
        'encoder_optimizer': optimizers[0].state_dict(), 'decoder_optimizer': optimizers[1].state_dict(),
        'iteration': iteration, 'losses': list(history.losses), 'validation': list(history.validation),
        'num_images': num_images,
        'noise_rng': noise_generator.get_state(), 'noise_rng_device': noise_generator.device.type,
        'torch_rng': torch.get_rng_state(), 'args': dict(vars(args)),
    }


def load_checkpoint(path, flag='--resume'):
    """Open a checkpoint on the CPU whatever device wrote it; the caller moves what it needs."""
    if not os.path.isfile(path):
        raise UsageError(f'{flag} {path}: no checkpoint there (a run writes one to OUTPUT_DIR/{CHECKPOINT_NAME})')
    try:
        return torch.load(path, map_location='cpu', weights_only=True)
    except Exception as error:  # a damaged or foreign file: pickle, zip and torch each raise their own kind
        raise UsageError(f'{flag} {path}: not a readable checkpoint ({error})')


def restore(checkpoint, args, model, optimizers, noise_generator, num_images):
    """Put a run back exactly where the checkpoint left it; returns (next iteration, its History)."""
    saved = checkpoint['args']
    for key in RESUME_MUST_MATCH:
        if saved.get(key, getattr(args, key)) != getattr(args, key):
            flag = '--' + key.replace('_', '-')
            raise UsageError(f'--resume: the checkpoint was trained with {flag} {saved[key]}, not {getattr(args, key)}')
    if checkpoint['num_images'] != num_images:
        raise UsageError(f'--resume: the checkpoint was trained on {checkpoint["num_images"]} images, '
                         f'--data-dir {args.data_dir} has {num_images}')
    model.encoder.load_state_dict(checkpoint['encoder'])
    model.decoder.load_state_dict(checkpoint['decoder'])
    optimizers[0].load_state_dict(checkpoint['encoder_optimizer'])
    optimizers[1].load_state_dict(checkpoint['decoder_optimizer'])
    torch.set_rng_state(checkpoint['torch_rng'])
    if checkpoint['noise_rng_device'] == noise_generator.device.type:
        noise_generator.set_state(checkpoint['noise_rng'])
    else:  # another kind of device has another kind of generator: the run goes on, not bit for bit
        print(f'note: checkpoint written on {checkpoint["noise_rng_device"]}; the noise will not repeat exactly')
        noise_generator.manual_seed(args.seed + checkpoint['iteration'])
    return checkpoint['iteration'] + 1, History(list(checkpoint['losses']), list(checkpoint.get('validation', [])))


# ----------------------------------------------------------------------------- the run

class StopRequest:
    """Turns SIGINT / SIGTERM into a flag checked between iterations; a second Ctrl-C stops at once."""

    def __init__(self):
        self.signum = None
        self.previous = {}

    def __enter__(self):
        for signum in (signal.SIGINT, signal.SIGTERM):
            self.previous[signum] = signal.signal(signum, self.handle)
        return self

    def handle(self, signum, frame):
        if self.signum is not None:
            raise KeyboardInterrupt
        self.signum = signum
        print(f'\n{signal.Signals(signum).name}: stopping after this iteration (again to stop at once)', flush=True)

    def __exit__(self, *exc):
        for signum, handler in self.previous.items():
            signal.signal(signum, handler)


def format_duration(seconds):
    seconds = int(round(seconds))
    return f'{seconds // 3600}:{seconds % 3600 // 60:02d}:{seconds % 60:02d}'


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
        eta = format_duration(self.seconds_per_iteration * (self.total - iteration))
        print(f'Epoch [{epoch:4d}/{self.total // self.per_epoch}] Iteration [{iteration:6d}/{self.total:6d}] '
              f'| loss: {loss:6.4f} | {self.seconds_per_iteration:.3f} s/it | ETA {eta}', flush=True)


def flush_losses(pending, losses, first_iteration):
    """Move this interval's loss tensors to `losses` (one device sync), failing on the first non-finite one."""
    if not pending:
        return
    values = torch.stack(pending).tolist()
    pending.clear()
    for offset, value in enumerate(values):
        if not np.isfinite(value):
            raise TrainingDiverged(f'loss is {value} at iteration {first_iteration + offset}')
    losses.extend(values)


def save_everything(args, iteration, model, optimizers, history, noise_generator, num_images, grids=None):
    if grids is not None:
        clean, noisy, denoised, latents = grids
        save_grid(os.path.join(args.output_dir, f'sample-{iteration:06d}.png'),
                  torch.cat([clean, noisy, denoised]), images_per_row=clean.size(0))
        if model.has_latent:
            save_grid(os.path.join(args.output_dir, f'novel-{iteration:06d}.png'), decode_novel(model, latents), 8)
    save_losses(args.loss_file, history.losses)
    if history.validation:
        save_validation(os.path.join(args.output_dir, VALIDATION_NAME), history.validation)
    save_checkpoint(os.path.join(args.output_dir, CHECKPOINT_NAME),
                    checkpoint_state(model, optimizers, iteration, history, noise_generator, args, num_images))


def train(args, data, model, optimizers, noise_generator, start, history, stop):
    """Iterations start..total (numbered across epochs from 1, as in the starter); returns the last one done."""
    images, held_out = data['train'], data['held_out']
    num_images, device = images.size(0), images.device
    batch_size, per_epoch = min(args.batch_size, num_images), batches_per_epoch(num_images, args.batch_size)
    total = args.epochs * per_epoch
    latents = fixed_latents(args.batch_size, args.latent_size, args.seed, device)
    progress, pending, order = Progress(start, total, per_epoch), [], None
    iteration = start - 1
    for iteration in range(start, total + 1):
        epoch, index = divmod(iteration - 1, per_epoch)
        if order is None or index == 0:
            order = epoch_order(num_images, args.seed, epoch).to(device)
        clean = images[order[index * batch_size:(index + 1) * batch_size]]
        noisy = add_noise(clean, args.noise_level, noise_generator)
        loss, denoised = train_step(model, optimizers, clean, noisy, args.precision, args.loss)
        pending.append(loss)
        stopping = stop.signum is not None  # read once: a signal landing later in this iteration waits for the next
        last = iteration == total or stopping
        if iteration % args.log_interval == 0 or iteration % args.save_interval == 0 or last:
            flush_losses(pending, history.losses, iteration - len(pending) + 1)
            if iteration % args.log_interval == 0 or last:
                progress.report(iteration, history.losses[-1])
        if iteration % args.save_interval == 0 or last:
            if held_out is not None:
                history.validation.append([iteration, *evaluate(model, *held_out), data['noisy_psnr']])
                print(f'held out: L1 {history.validation[-1][1]:.4f} | PSNR {history.validation[-1][2]:.2f} dB '
                      f'(noisy input {data["noisy_psnr"]:.2f} dB)', flush=True)
            grids = (clean, noisy, denoised, latents) if iteration % args.save_interval == 0 or iteration == total else None
            save_everything(args, iteration, model, optimizers, history, noise_generator, data['count'], grids)
        if stopping:
            break
    return iteration, total


def prepare_data(args, device):
    """The training images on the device, and the held-out images with their one fixed noise draw."""
    images = load_dataset(args.data_dir, args.image_size)
    train_indices, held_out_indices = held_out_split(images.size(0), args.val_split, args.seed)
    if train_indices.numel() < 2:
        raise UsageError(f'--val-split {args.val_split}: leaves {train_indices.numel()} training image(s); need 2')
    data = {'count': images.size(0), 'train': images[train_indices].to(device), 'held_out': None}
    if held_out_indices.numel():
        clean = images[held_out_indices].to(device)
        noisy = add_noise(clean, args.noise_level, torch.Generator(device=device).manual_seed(args.seed + 3))
        data.update(held_out=(clean, noisy), noisy_psnr=psnr(noisy, clean))
        print(f'holding out {clean.size(0)} of {images.size(0)} images (chosen by --seed {args.seed})')
    if args.batch_size > data['train'].size(0):
        print(f'note: --batch-size {args.batch_size} is more than the {data["train"].size(0)} training images: '
              'one batch per epoch')
    return data


def run(args):
    device = choose_device(args.device)
    check_writable(args.output_dir, '--output-dir')
    check_writable(os.path.dirname(os.path.abspath(args.loss_file)), '--loss-file')
    checkpoint = load_checkpoint(os.path.join(args.output_dir, CHECKPOINT_NAME) if args.resume == 'auto'
                                 else args.resume) if args.resume else None
    print(' '.join(f'{key}={value}' for key, value in vars(args).items()), f'| device={device}', flush=True)
    set_seed(args.seed)
    data = prepare_data(args, device)
    model, optimizers = build_model(args, device)
    noise_generator = torch.Generator(device=device).manual_seed(args.seed)
    start, history = 1, History()
    if checkpoint is not None:
        start, history = restore(checkpoint, args, model, optimizers, noise_generator, data['count'])
    if args.compile:
        model.compile()
    print(f'{data["train"].size(0)} images from {args.data_dir}, '
          f'{batches_per_epoch(data["train"].size(0), args.batch_size)} iterations per epoch, '
          f'starting at iteration {start}', flush=True)
    with StopRequest() as stop:
        iteration, total = train(args, data, model, optimizers, noise_generator, start, history, stop)
    if stop.signum is not None:
        command = ' '.join(['python'] + sys.argv + ([] if args.resume else ['--resume']))
        print(f'stopped at iteration {iteration}/{total}; {args.loss_file} and checkpoint saved. To continue:\n'
              f'  {command}', flush=True)
        return 128 + stop.signum
    print(f'done: {total} iterations; losses in {args.loss_file}, grids and {CHECKPOINT_NAME} in {args.output_dir}')
    return 0


def main(argv=None):
    args = parse_args(argv)
    try:
        return run(args)
    except UsageError as error:
        print(f'asgn6.py: error: {error}', file=sys.stderr)
        return 2
    except KeyboardInterrupt:  # a second Ctrl-C: stop now; the last periodic save stands
        print(f'\nstopped at once; {args.loss_file} and the checkpoint hold the last save', file=sys.stderr)
        return 130
    except TrainingDiverged as error:
        print(f'error: {error}; training stopped. The last checkpoint and {args.loss_file} '
              'hold the last good save.', file=sys.stderr)
        return 1


if __name__ == '__main__':
    sys.exit(main())
