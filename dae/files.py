"""Writing files: none is ever half-written, for every artefact (grids, loss file, checkpoint, figures,
results, report) is written to a temp file beside its target, then renamed over it; and a path is
checked before any work starts, so that a run refused for it leaves nothing behind.
"""
import os
import secrets
import shutil
import tempfile

from dae.errors import UsageError


def atomic_write(path, write):
    """Call write(tmp) on a fresh path beside `path`, then rename: a crash never leaves `path` half-written.
    The writer creates the temp file itself, so it gets the mode any new file gets (the umask's)."""
    path = os.fspath(path)
    folder, name = os.path.split(os.path.abspath(path))
    # the temp name ends in the target's extension, for writers that choose a format by it
    tmp = os.path.join(folder, f'.{name}.{secrets.token_hex(4)}.tmp{os.path.splitext(name)[1]}')
    try:
        write(tmp)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def write_text_atomic(path, text):
    def write(tmp):
        with open(tmp, 'x') as f:  # closed, so flushed, before the rename
            f.write(text)
    atomic_write(path, write)


def copy_atomic(source, target):
    atomic_write(target, lambda tmp: shutil.copyfile(source, tmp))


def save_figure(figure, path, dpi=150):
    """A matplotlib figure; the format follows the extension of `path`."""
    extension = os.path.splitext(path)[1].lstrip('.').lower()
    atomic_write(path, lambda tmp: figure.savefig(tmp, dpi=dpi, format=extension or None))


def check_can_create(path, is_folder=False):
    """A UsageError naming `path` unless it could be written (creating its missing folders). The folder that
    exists is tried with a real file, deleted at once: permission bits do not tell (root passes them, and
    a read-only or virtual file system such as /sys refuses anyway). Leaves nothing behind."""
    path = os.path.abspath(os.fspath(path))
    existing = path if is_folder else os.path.dirname(path)
    while not os.path.exists(existing):
        existing = os.path.dirname(existing)
    if not os.path.isdir(existing):
        raise UsageError(f'{path}: cannot write there ({existing} is a file, not a folder)')
    if os.path.isdir(path) and not is_folder:
        raise UsageError(f'{path}: is a folder, not a file')
    try:
        handle, probe = tempfile.mkstemp(dir=existing, prefix='.write-test-')
    except OSError as error:
        raise UsageError(f'{path}: cannot write there ({error.strerror or error})') from None
    os.close(handle)
    os.unlink(probe)
    if os.path.exists(path) and not os.access(path, os.W_OK):
        raise UsageError(f'{path}: cannot write there (permission denied)')


def make_folder(folder):
    try:
        os.makedirs(folder, exist_ok=True)
    except OSError as error:
        raise UsageError(f'{folder}: cannot create it ({error.strerror or error})')
