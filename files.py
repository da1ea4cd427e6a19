"""Writing files so that nothing is ever half-written: every artefact of the repository (grids, loss
file, validation table, checkpoint, figures, results, report, dataset) goes through atomic_write,
a temp file beside the target and then a rename.
"""
import os
import shutil
import tempfile

from cli import UsageError


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


def check_writable(folder, what):
    """Create `folder` if needed and prove that a file can be made in it; `what` names the flag in the error."""
    try:
        os.makedirs(folder, exist_ok=True)
        with tempfile.TemporaryFile(dir=folder):
            pass
    except OSError as error:
        raise UsageError(f'{what} {folder}: cannot write there ({error.strerror or error})')
