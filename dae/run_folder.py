"""One run per output folder and per loss file, and no run's files replaced by accident: the run's locks (OS
locks through filelock, freed by the OS when their process dies, kill -9 included) and the refusal to start
afresh over another run's files."""
import os

import filelock

from dae.errors import UsageError

CHECKPOINT_NAME, VALIDATION_NAME = 'checkpoint.pt', 'validation.csv'  # the files a run leaves in its folder
LOCK_NAME = '.asgn6.lock'
GRID_PREFIXES = ('sample-', 'novel-')


class RunLock:
    """Held while a run writes its output folder and its loss file: a second run naming either is refused at once.
    acquire() takes the locks whose folders exist, so that a busy run is refused before any work; a folder made
    later is locked by calling it again."""

    def __init__(self, output_dir, loss_file):
        loss_folder, loss_name = os.path.split(os.path.abspath(loss_file))
        self.held, self.locks = {}, {
            os.path.join(output_dir, LOCK_NAME): f'--output-dir {output_dir}: another run is writing there',
            os.path.join(loss_folder, f'.{loss_name}.lock'): f'--loss-file {loss_file}: another run is writing it'}
        self.this_run = f'this run: --output-dir {output_dir} --loss-file {loss_file}'

    def acquire(self):
        for path, busy in self.locks.items():
            if path not in self.held and os.path.isdir(os.path.dirname(path)):
                lock = filelock.FileLock(path)
                try:
                    lock.acquire(timeout=0)
                except filelock.Timeout:
                    raise UsageError(f'{busy}; wait for it, or choose another ({self.this_run})') from None
                self.held[path] = lock

    def __enter__(self):
        self.acquire()
        return self

    def __exit__(self, *exc):
        for lock in self.held.values():
            lock.release()


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
