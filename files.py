"""Writing files so that nothing is ever half-written: every artefact of the repository (grids, loss
file, validation table, checkpoint, figures, results, report, dataset) goes through atomic_write,
a temp file beside the target and then a rename.
"""
import os
import shutil
import tempfile

from cli import UsageError

LOCK_NAME = '.asgn6.lock'


def atomic_write(path, write):
    """Call write(tmp) on a temp file beside `path`, then rename: a crash never leaves `path` half-written."""
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    # the temp name ends in the target's extension, for writers that choose a format by it (pandoc)
    fd, tmp = tempfile.mkstemp(dir=folder, prefix='.' + os.path.basename(path) + '.',
                               suffix='.tmp' + os.path.splitext(path)[1])
    os.close(fd)
    try:
        write(tmp)
        os.chmod(tmp, plain_open_mode(path))  # mkstemp makes 0600; others may read what we write
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


def copy_atomic(source, target):
    atomic_write(target, lambda tmp: shutil.copyfile(source, tmp))


def save_figure(figure, path, dpi=150):
    """A matplotlib figure, atomically; the format follows the extension of `path`."""
    extension = os.path.splitext(path)[1].lstrip('.').lower()
    atomic_write(path, lambda tmp: figure.savefig(tmp, dpi=dpi, format=extension or None))


def plain_open_mode(path):
    """The mode open(path, 'w') would leave: an existing file keeps its own, a new one gets 0666 less the umask."""
    try:
        return os.stat(path).st_mode & 0o7777
    except FileNotFoundError:
        umask = os.umask(0)
        os.umask(umask)
        return 0o666 & ~umask


def check_can_create(path, what, is_folder=False):
    """A UsageError, naming `what` and `path`, unless `path` could be written (creating its missing folders);
    creates nothing, so that a run refused later leaves nothing behind."""
    path = os.path.abspath(os.fspath(path))
    target = path if is_folder else os.path.dirname(path)
    existing = target
    while not os.path.exists(existing):
        existing = os.path.dirname(existing)
    if not os.path.isdir(existing):
        raise UsageError(f'{what} {path}: cannot write there ({existing} is a file, not a folder)')
    if os.path.isdir(path) and not is_folder:
        raise UsageError(f'{what} {path}: is a folder, not a file')
    if not os.access(existing, os.W_OK | os.X_OK) or (os.path.exists(path) and not os.access(path, os.W_OK)):
        raise UsageError(f'{what} {path}: cannot write there (permission denied)')


def make_folder(folder, what):
    try:
        os.makedirs(folder, exist_ok=True)
    except OSError as error:
        raise UsageError(f'{what} {folder}: cannot create it ({error.strerror or error})')


class FolderLock:
    """One run at a time in a folder: a lock file holding the owner's process id, created atomically.
    A lock whose process is gone (a kill -9, a crash) is taken over, with a note."""

    def __init__(self, folder, what='--output-dir'):
        self.path, self.what = os.path.join(folder, LOCK_NAME), what

    def __enter__(self):
        for _ in range(2):
            try:
                fd = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
            except FileExistsError:
                owner = self.owner()
                if owner is not None and process_alive(owner):
                    raise UsageError(f'{self.what} {os.path.dirname(self.path)}: another run (process {owner}) is '
                                     'writing there; wait for it, or choose another --output-dir')
                print(f'note: taking over the lock of process {owner}, which is gone: {self.path}')
                os.unlink(self.path)
                continue
            with os.fdopen(fd, 'w') as f:
                f.write(f'{os.getpid()}\n')
            return self
        raise UsageError(f'{self.what}: could not take the lock {self.path}')

    def owner(self):
        try:
            with open(self.path) as f:
                return int(f.read().strip())
        except (OSError, ValueError):
            return None

    def __exit__(self, *exc):
        if self.owner() == os.getpid():
            os.unlink(self.path)


def process_alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process: alive
        return True
    return True
