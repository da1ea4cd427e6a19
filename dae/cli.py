"""What every script shares on the command line: flag types, the device, stopping on a signal, progress lines,
and one mapping from an error to a one-line message and an exit status (2 bad input, 1 failure during the
work, 128 + N on signal N).  ASGN6_DEBUG=1 re-raises instead, with the traceback.  No torch at import."""
import argparse
import contextlib
import logging
import math
import os
import shlex
import signal
import sys
import threading
import time

from dae.errors import Diverged, Failure, UsageError  # noqa: F401  (the scripts raise them through here)

EXIT_USAGE, EXIT_FAILURE, EXIT_INTERRUPTED = 2, 1, 128 + 2  # 128 + SIGINT


class ArgumentParser(argparse.ArgumentParser):
    """argparse with no abbreviated flags, the docstring shown as written, and a bad flag answered in one line."""

    def __init__(self, prog, description, **options):
        super().__init__(prog=prog, description=description, allow_abbrev=False,
                         formatter_class=argparse.RawDescriptionHelpFormatter, **options)

    def error(self, message):
        self.exit(EXIT_USAGE, f'{self.prog}: error: {message} (see {self.prog} --help)\n')


def number_type(kind, accept, requirement):
    """An argparse type: a finite `kind` for which accept(value) holds."""
    def parse(text):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f'expected {"an integer" if kind is int else "a number"}, got {text!r}')
        if not math.isfinite(value) or not accept(value):
            raise argparse.ArgumentTypeError(f'{requirement}, got {text}')
        return value
    return parse


def positive_int(minimum=1):
    return number_type(int, lambda value: value >= minimum, f'must be at least {minimum}')


positive_float = number_type(float, lambda value: value > 0, 'must be positive')
fraction = number_type(float, lambda value: 0 <= value < 1, 'must be at least 0 and below 1')


def add_device_flag(parser):
    parser.add_argument('--device', default='auto', choices=['auto', 'cpu', 'cuda', 'mps'],
                        help='auto picks cuda, then mps, then cpu (default: auto)')


def choose_device(name):
    """cuda, then mps, then cpu for 'auto'; an explicit choice that is not available is an error."""
    import torch  # here: plot_loss.py and asgn6.py's flags use this module before torch, or without it
    available = {'cpu': True, 'cuda': torch.cuda.is_available(),
                 'mps': getattr(torch.backends, 'mps', None) is not None and torch.backends.mps.is_available()}
    if name == 'auto':
        name = next(kind for kind in ('cuda', 'mps', 'cpu') if available[kind])
    if not available[name]:
        raise UsageError(f'--device {name}: not available on this machine (try --device auto)')
    return torch.device(name)


def shell_command(script, argv):
    """The command line that repeats `script argv`, quoted to paste into a shell."""
    return shlex.join(['python', script, *argv])


class StopRequest:
    """SIGINT / SIGTERM become a flag that a loop reads between steps; a second Ctrl-C stops at once."""

    def __init__(self):
        self.signum, self.previous = None, {}

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


def exit_on_ctrl_c(message):
    """Until report_errors takes over (while torch loads, say): a Ctrl-C prints `message` and exits 130."""
    def stop(signum, frame):
        print(f'\n{message}', file=sys.stderr)
        sys.exit(128 + signum)
    signal.signal(signal.SIGINT, stop)


def report_errors(prog, work, interrupted=lambda: 'stopped'):
    """Run work(); what goes wrong becomes one line on stderr and the exit status of the convention, and
    interrupted() says what a Ctrl-C kept.  An OSError or MemoryError is the machine's (a full disk)."""
    logger = logging.getLogger('dae')  # the library's notes and warnings, one line each on stderr
    logger.handlers, logger.propagate = [CurrentStderr()], False
    if threading.current_thread() is threading.main_thread():  # a script may have quieted Ctrl-C while loading
        signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        return work()
    except KeyboardInterrupt:
        if os.environ.get('ASGN6_DEBUG'):
            raise
        print(f'\n{prog}: {interrupted()}', file=sys.stderr)
        return EXIT_INTERRUPTED
    except (UsageError, Failure, OSError, MemoryError) as error:
        if os.environ.get('ASGN6_DEBUG'):
            raise
        print(f'{prog}: error: {describe(error)}', file=sys.stderr)
        return EXIT_USAGE if isinstance(error, UsageError) else EXIT_FAILURE


class CurrentStderr(logging.Handler):
    """Each message as one line on the stderr of the moment (a test's capture, say), worded as logged."""

    def emit(self, record):
        print(record.getMessage(), file=sys.stderr)


def describe(error):
    if isinstance(error, MemoryError):
        return 'out of memory'
    if isinstance(error, OSError) and error.strerror:
        return f'{error.filename}: {error.strerror}' if error.filename else error.strerror
    return str(error)


@contextlib.contextmanager
def about(flag):
    """The library's errors inside, worded for the user: prefixed with the flag whose value caused them."""
    try:
        yield
    except UsageError as error:
        raise UsageError(f'{flag} {error}') from None


class Progress:
    """Items done against a total: the smoothed seconds an item and the time left, for every progress line;
    due() says when `every` seconds have passed.  startup: the first interval holds start-up work, so its
    time left is 'estimating' rather than a guess."""

    def __init__(self, total, done=0, every=0.0, startup=True):
        self.total, self.every, self.startup = total, every, startup
        self.last_time, self.last_done, self.per_item = time.perf_counter(), done, None
        self.next_line = self.last_time + every

    def due(self, done):
        return time.perf_counter() >= self.next_line and done < self.total

    def update(self, done):
        """(seconds an item, time left as H:MM:SS), following the recent speed, smoothed."""
        now = time.perf_counter()
        recent = (now - self.last_time) / max(done - self.last_done, 1)
        first = self.per_item is None
        self.per_item = recent if first else 0.7 * self.per_item + 0.3 * recent
        self.last_time, self.last_done, self.next_line = now, done, now + self.every
        if first and self.startup and done < self.total:
            return self.per_item, 'estimating'
        left = int(round(self.per_item * max(self.total - done, 0)))
        return self.per_item, f'{left // 3600}:{left % 3600 // 60:02d}:{left % 60:02d}'


def decode_progress(every=2.0):
    """A load_dataset callback: a line (count, images a second, time left) every `every` seconds of decoding."""
    progress = []

    def report(done, total):
        progress[:] = progress or [Progress(total, every=every, startup=False)]
        if progress[0].due(done):
            per_image, left = progress[0].update(done)
            print(f'decoded {done:,}/{total:,} images | {1 / per_image:.0f} images/s | ETA {left}', flush=True)
    return report
