"""The two text files a run leaves, written and read here alone: the loss file (one float per line, as the
starter's loss.txt) and the validation table (validation.csv).  No torch, so that plot_loss.py starts at once."""
import csv
import io
from typing import NamedTuple

import numpy as np

from dae.errors import UsageError
from dae.files import write_text_atomic


def save_losses(path, losses):
    write_text_atomic(path, ''.join(f'{loss!r}\n' for loss in losses))


def holds_losses_of(path, losses):
    """Whether the loss file holds these losses, or their beginning (an earlier save): not another run's."""
    with open(path) as f:
        lines = f.read().split()
    return lines == [repr(loss) for loss in losses[:len(lines)]]


def read_losses(path):
    """One float per line, as save_losses writes them; a non-finite one is named."""
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


class Validation(NamedTuple):
    """One measurement at a save: the held-out images and as many training images, measured alike."""
    iteration: int
    l1: float
    psnr: float
    noisy_psnr: float
    train_l1: float
    train_psnr: float
    train_noisy_psnr: float


# the table's columns: (Validation field, header, format)
COLUMNS = (('iteration', 'iteration', 'd'), ('l1', 'held_out_l1', '.6f'), ('psnr', 'held_out_psnr_db', '.4f'),
           ('noisy_psnr', 'noisy_psnr_db', '.4f'), ('train_l1', 'train_l1', '.6f'),
           ('train_psnr', 'train_psnr_db', '.4f'), ('train_noisy_psnr', 'train_noisy_psnr_db', '.4f'))


def save_validation(path, rows):
    text = io.StringIO()
    writer = csv.DictWriter(text, [header for _, header, _ in COLUMNS], lineterminator='\n')
    writer.writeheader()
    writer.writerows({header: format(getattr(row, name), form) for name, header, form in COLUMNS} for row in rows)
    write_text_atomic(path, text.getvalue())


def read_validation(path):
    """The rows of a validation.csv as Validation tuples, each column found by its header."""
    try:
        with open(path, newline='') as f:
            return [Validation(*(int(row[header]) if form == 'd' else float(row[header])
                                 for _, header, form in COLUMNS)) for row in csv.DictReader(f)]
    except OSError as error:
        raise UsageError(f'{path}: {error.strerror}')
    except (KeyError, ValueError, TypeError) as error:
        raise UsageError(f'{path}: not a validation table written by asgn6.py ({error})')
