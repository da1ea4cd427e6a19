"""Command-line conventions shared by every script: flag types, the device choice, stopping cleanly on a
signal, and one mapping from what went wrong to a one-line message and an exit status (2 bad input,
1 failure during the work, 128 + N on signal N), so that no script prints a traceback.
"""
import argparse
import os
import platform
import re
import shlex
import signal
import sys

EXIT_USAGE, EXIT_FAILURE, EXIT_INTERRUPTED = 2, 1, 128 + 2  # 128 + SIGINT


class UsageError(Exception):
    """A problem with what the user gave us: one line, exit status 2."""


class Failure(Exception):
    """The work itself went wrong (for example the loss diverged): one line, exit status 1."""


def positive_int(minimum=1):
    """An argparse type: an integer of at least `minimum`."""
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


def add_device_flag(parser):
    parser.add_argument('--device', default='auto', choices=['auto', 'cpu', 'cuda', 'mps'],
                        help='auto picks cuda, then mps, then cpu (default: auto)')


def choose_device(name):
    """cuda, then mps, then cpu for 'auto'; an explicit choice that is not available is an error."""
    import torch  # here, so that scripts without a model (plot_loss.py) start fast
    available = {'cpu': True, 'cuda': torch.cuda.is_available(),
                 'mps': getattr(torch.backends, 'mps', None) is not None and torch.backends.mps.is_available()}
    if name == 'auto':
        name = next(kind for kind in ('cuda', 'mps', 'cpu') if available[kind])
    if not available[name]:
        raise UsageError(f'--device {name}: not available on this machine (try --device auto)')
    return torch.device(name)


def shell_command(script, argv):
    """The command line that repeats `script argv`, quoted so that it pastes into a shell for any path."""
    return shlex.join(['python', script, *argv])


class StopRequest:
    """Turns SIGINT / SIGTERM into a flag that a loop checks between steps; a second Ctrl-C stops at once."""

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


def report_errors(prog, work, interrupted='stopped'):
    """Run work() and turn what can go wrong into one line on stderr and the exit status of the
    convention: 2 for bad input, 1 for a failure during the work (a diverged loss, a full disk, too
    little memory), 130 for Ctrl-C, where `interrupted` says what was kept."""
    try:
        return work()
    except UsageError as error:
        print(f'{prog}: error: {error}', file=sys.stderr)
        return EXIT_USAGE
    except Failure as error:
        print(f'{prog}: error: {error}', file=sys.stderr)
        return EXIT_FAILURE
    except KeyboardInterrupt:
        print(f'\n{prog}: {interrupted}', file=sys.stderr)
        return EXIT_INTERRUPTED
    except OSError as error:  # the machine, not the input: a full disk, a folder removed under us
        where = f'{error.filename}: ' if error.filename else ''
        print(f'{prog}: error: {where}{error.strerror or error}', file=sys.stderr)
        return EXIT_FAILURE
    except MemoryError:
        print(f'{prog}: error: out of memory', file=sys.stderr)
        return EXIT_FAILURE


def machine_name():
    """The CPU with its vector class (floats and speed-ups differ between AVX2 and AVX-512 machines), the core
    count and torch: what a timing or a float depends on."""
    import torch
    cpu = platform.processor() or platform.machine()
    try:
        with open('/proc/cpuinfo') as f:
            text = f.read()
        cpu = re.search(r'model name\s*: (.*)', text).group(1)
        flags = re.search(r'flags\s*: (.*)', text).group(1).split()
        cpu += ', AVX-512' + (' with AVX512-BF16' if 'avx512_bf16' in flags else '') if 'avx512f' in flags else \
            ', AVX2 only' if 'avx2' in flags else ''
    except (OSError, AttributeError):
        pass
    return f'{cpu}, {os.cpu_count()} cores, torch {torch.__version__}'
