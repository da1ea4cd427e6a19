"""One run per output folder, and no run's files replaced by accident: the folder lock (an OS lock
through filelock, released by the OS when its process dies, kill -9 included) and the refusal to start
afresh over another run's files.
"""
import os

import filelock

from dae.run import CHECKPOINT_NAME, VALIDATION_NAME
from dae.errors import UsageError

LOCK_NAME = '.asgn6.lock'
GRID_PREFIXES = ('sample-', 'novel-')


class FolderLock:
    """Held while a run writes to `folder`; a second run there is refused at once."""

    def __init__(self, folder):
        self.folder, self.lock = folder, filelock.FileLock(os.path.join(folder, LOCK_NAME))

    def __enter__(self):
        try:
            self.lock.acquire(timeout=0)
        except filelock.Timeout:
            raise UsageError(f'--output-dir {self.folder}: another run is writing there; wait for it, or choose '
                             'another --output-dir') from None
        return self

    def __exit__(self, *exc):
        self.lock.release()


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
