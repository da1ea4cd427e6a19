"""Every run that the report, the README and the notebook read, made again by today's code, in one command.

    pip install -r experiments/requirements.txt   # scikit-image and bm3d, for the classical baselines
    python -m experiments.regenerate --plan        # the steps, each one's hours, and which are done
    python -m experiments.regenerate               # every step not yet done, in order

A step is done when the files it commits say so: a finished run whose images and noise are the ones today's
code draws.  So a call that stops (Ctrl-C, a full disk, the end of a working session) is simply called again: it
skips what is done and resumes the run it was in, from that run's checkpoint if it is still there.  Commit each
step's files as it finishes (`git status` shows them): a run's checkpoint is not committed, so what needs it (a
run's last-save scores, its outputs for the figures, the shipped weights) is written before its step ends.
The report's two 500-epoch runs are made with AVX2 kernels (the class of the report's machine; on an AVX-512 CPU
PyTorch, oneDNN and MKL are asked for them), so that they repeat on an AVX2-only machine byte for byte.
"""
import json
import os
import subprocess
import sys
from dataclasses import dataclass
from typing import Callable

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, ROOT)

from dae import cli  # noqa: E402 (after the path: run as a script too)
from dae.logs import read_losses, read_validation  # noqa: E402

AVX2 = {'ATEN_CPU_CAPABILITY': 'avx2', 'ONEDNN_MAX_CPU_ISA': 'AVX2', 'MKL_ENABLE_INSTRUCTIONS': 'AVX2'}
REFERENCE = os.path.join(ROOT, 'docs', 'reference', 'loss-5-epochs-channels-last-avx2.txt')
WORK = os.path.join(ROOT, 'samples')  # where the two long runs keep their checkpoints (not committed)
TEST_SEEDS = ('4681', '4682', '4683')
ALL_SEEDS = ('4680', *TEST_SEEDS)
Q3F = ('spec-60ep', 'latent-32-60ep', 'latent-512-60ep', 'conv-encoder-60ep', 'resize-decoder-60ep',
       'mse-loss-60ep')
NOISE = ('spec-noise-0.5',)
CODA = ('unet', 'residual-unet', 'residual-unet+cosine+mse+augment-160ep', 'unet+cosine+mse+augment-71ep')


@dataclass(frozen=True)
class Step:
    name: str
    hours: float  # alone on a 2-core AMD EPYC (AVX-512), from the wall times of the runs it makes
    what: str
    done: Callable[[], str]  # '' when done, else what is left
    run: Callable[[], None]


def call(argv, env=None):
    """Run one command from the repository's top folder, as a user would type it; stop on a failure."""
    print('$ ' + ' '.join(f'{key}={value}' for key, value in (env or {}).items()) + (' ' if env else '')
          + ' '.join(argv), flush=True)
    status = subprocess.run([sys.executable, *argv], cwd=ROOT, env={**os.environ, **(env or {})}).returncode
    if status != 0:
        raise cli.Failure(f'{" ".join(argv)} stopped with status {status}; call regenerate again to resume')


def long_run(folder, flags, iterations):
    """One of the report's 500-epoch runs, in samples/FOLDER under AVX2 kernels, resumed where it stopped; what
    asgn6.py prints is kept there as train.log (the report quotes its timings)."""
    out = os.path.join(WORK, folder)
    loss_file = os.path.join(out, 'loss.txt')
    if os.path.exists(loss_file) and len(read_losses(loss_file)) == iterations:
        return
    resuming = os.path.exists(os.path.join(out, 'checkpoint.pt'))
    relative = os.path.relpath(out, ROOT)
    argv = ['asgn6.py', *flags, '--output-dir', relative, '--loss-file', os.path.join(relative, 'loss.txt'),
            *(['--resume', relative] if resuming else ['--overwrite'])]
    os.makedirs(out, exist_ok=True)
    log = os.path.join(out, 'train.log')
    print(f'$ {" ".join(f"{k}={v}" for k, v in AVX2.items())} {" ".join(argv)} >> {os.path.relpath(log, ROOT)}',
          flush=True)
    with open(log, 'a' if resuming else 'w') as console:
        status = subprocess.run([sys.executable, *argv], cwd=ROOT, env={**os.environ, **AVX2}, stdout=console,
                                stderr=subprocess.STDOUT).returncode
    if status != 0:
        raise cli.Failure(f'asgn6.py stopped with status {status} (its output: {log}); call regenerate again')


def report_run_left():
    path = os.path.join(ROOT, 'report', 'run', 'loss.txt')
    if not os.path.exists(path):
        return 'not started'
    with open(path) as f, open(REFERENCE) as reference:
        lines = f.read().splitlines()
        if lines[:120] != reference.read().splitlines():
            return 'made by other code (its first 120 losses are not docs/reference\'s)'
    return '' if len(lines) == 12000 else f'{len(lines):,} of 12,000 iterations'


def report_run():
    long_run('report', [], 12000)
    call(['-m', 'report.make_figures', '--collect', 'samples/report', '--loss-file', 'samples/report/loss.txt',
          '--log', 'samples/report/train.log'])


def held_out_left():
    from dae.config import RunConfig
    from experiments.run_experiments import split_of_run
    path = os.path.join(ROOT, 'report', 'heldout', 'validation.csv')
    if not os.path.exists(path):
        return 'not started'
    saves = read_validation(path)
    held_out = split_of_run(RunConfig(val_split=0.1), os.path.join(ROOT, 'data'))[0].held_out
    if format(saves[-1].noisy_psnr, '.4f') != format(held_out.noisy_psnr, '.4f'):
        return 'made by other code (its held-out images or noise are not today\'s)'
    return '' if saves[-1].iteration == 11000 else f'{saves[-1].iteration:,} of 11,000 iterations'


def held_out_run():
    long_run('heldout', ['--val-split', '0.1'], 11000)
    call(['-m', 'report.make_figures', '--collect-held-out', 'samples/heldout'])


def runs_left(names, seeds):
    """What is left of training these experiments: runs missing, unfinished or made by other code."""
    from experiments import run_experiments as experiments
    left = []
    for name in names:
        for seed in seeds:
            config = experiments.run_config(name, int(seed), 15)
            folder = experiments.run_dir(os.path.join(HERE, 'results'), name, seed)
            split, count = experiments.split_of_run(config, os.path.join(ROOT, 'data'))
            status = experiments.run_status(folder, config, split, count)
            if status != 'complete' or not os.path.exists(os.path.join(folder, experiments.SCORES_NAME)):
                left.append(f'{name}/{seed}')
    return f'{len(left)} of {len(names) * len(seeds)} runs' if left else ''


def train(names, seeds):
    call(['-m', 'experiments.run_experiments', '--only', *names, '--seeds', *seeds, '--train-only'])


def best_coda_run():
    """(name, model) of the coda's network with the best mean held-out PSNR over the test seeds in results.json."""
    with open(os.path.join(HERE, 'results', 'results.json')) as f:
        rows = [row for row in json.load(f)['networks'] if row['name'] in CODA and str(row['seed']) in TEST_SEEDS]
    if not rows:
        raise cli.Failure('results.json has no coda runs yet: run the coda and evaluate steps first')
    means = {name: sum(r['held_out_psnr'] for r in rows if r['name'] == name) / sum(r['name'] == name for r in rows)
             for name in {row['name'] for row in rows}}
    best = max(means, key=means.get)
    return best, next(row['model'] for row in rows if row['name'] == best)


def ship_left():
    name, model = best_coda_run()
    path = os.path.join(ROOT, 'weights', f'{model}.txt')
    shipped = os.path.exists(path) and f'--only {name}`' in open(path).read()
    return '' if shipped and not runs_left([name], TEST_SEEDS[-1:]) else f'{name} (seed {TEST_SEEDS[-1]}) not shipped'


def ship():
    """The coda's best denoiser as trained on the last test seed (its images held out), as weights/MODEL.pt."""
    name, _ = best_coda_run()
    folder = os.path.join(HERE, 'results', 'runs', name, f'seed-{TEST_SEEDS[-1]}')
    checkpoint = os.path.join(folder, 'checkpoint.pt')
    if not os.path.exists(checkpoint):
        raise cli.Failure(f'{checkpoint} is gone (checkpoints are not committed): delete {folder}/loss.txt and call '
                          'again to train it anew; on the same CPU class it comes out the same')
    call(['-m', 'report.make_figures', '--ship-denoiser', os.path.relpath(checkpoint, ROOT), '--run-name', name])


def execute_notebook():
    """asgn6.ipynb run top to bottom on the report's finished 500-epoch run (its training cell resumes it and finds
    it complete), so that the notebook's outputs are that run's: the same seed, code and pictures."""
    import nbformat
    from nbclient import NotebookClient
    if not os.path.exists(os.path.join(WORK, 'report', 'checkpoint.pt')):
        raise cli.Failure('samples/report/checkpoint.pt is gone (it is not committed), and the notebook would train '
                          '500 epochs anew: run the report-run step again (delete report/run/loss.txt first)')
    path = os.path.join(ROOT, 'asgn6.ipynb')
    notebook = nbformat.read(path, as_version=4)
    os.environ['ASGN6_OUTPUT_DIR'] = os.path.join('samples', 'report')
    NotebookClient(notebook, timeout=3600, kernel_name='python3', resources={'metadata': {'path': ROOT}}).execute()
    nbformat.write(notebook, path)
    print(f'executed {path} on samples/report', flush=True)


def report():
    call(['-m', 'report.make_figures'])  # the answers into the notebook first: it is executed as committed
    execute_notebook()
    print(f'$ PYTHON={sys.executable} bash report/build', flush=True)  # its figures need this venv's packages
    status = subprocess.run(['bash', os.path.join('report', 'build')], cwd=ROOT,
                            env={**os.environ, 'PYTHON': sys.executable}).returncode
    if status != 0:
        raise cli.Failure(f'report/build stopped with status {status}; call regenerate --only report again')


def steps():
    test, every = TEST_SEEDS, ALL_SEEDS
    return [
        Step('report-run', 1.1, "Q3(b)-(e): python asgn6.py (500 epochs, seed 4680) -> report/run/, weights/spec.pt, "
             "the README's demos", report_run_left, report_run),
        Step('held-out-run', 1.2, 'Q3(f), Table 7: the same with 10% held out -> report/heldout/',
             held_out_left, held_out_run),
        Step('variants', 2.5, 'Q3(f), Table 4, Figure 5: six variants x seeds 4680-4683, 60 epochs',
             lambda: runs_left(Q3F, every), lambda: train(Q3F, every)),
        Step('noise-0.5', 0.1, 'the appendix\'s noise 0.5: the assignment\'s model, 15 epochs, seeds 4680-4683',
             lambda: runs_left(NOISE, every), lambda: train(NOISE, every)),
        Step('coda', 1.6, 'the coda: U-Net, residual U-Net (15 epochs), the final denoiser (160 epochs) and a U-Net '
             'in its wall time, test seeds 4681-4683', lambda: runs_left(CODA, test), lambda: train(CODA, test)),
        Step('evaluate', 0.5, 'every run scored; the classical filters and corrections on each seed\'s split; the '
             '2-D correction\'s bins chosen on seed 4680', lambda: 'runs every time (minutes once the filters ran)',
             lambda: (call(['-m', 'experiments.run_experiments', '--skip-training']),
                      call(['-m', 'experiments.run_experiments', '--choose-joint-bins']))),
        Step('ship', 0.0, "the coda's best denoiser, trained on test seed 4683 -> weights/", ship_left, ship),
        Step('report', 0.1, 'tables and figures from the runs; the notebook executed on the report\'s run; '
             'report.pdf (needs pandoc)', lambda: 'runs every time', report),
    ]


def show_plan(plan):
    print(f'{"step":14} {"hours":>5}  status')
    for step in plan:
        left = step.done()
        print(f'{step.name:14} {step.hours:5.1f}  {"done" if not left else "to do: " + left}\n{"":22}{step.what}')
    print(f'{"total":14} {sum(step.hours for step in plan):5.1f}  hours alone on a 2-core AMD EPYC')


def main(argv=None):
    parser = cli.ArgumentParser('regenerate.py', __doc__)
    parser.add_argument('--plan', action='store_true', help='only print the steps, their hours and what is left '
                        '(default: print it, then run every step not done)')
    parser.add_argument('--only', nargs='+', choices=[step.name for step in steps()], metavar='STEP',
                        help='run only these steps, in plan order (default: all)')
    args = parser.parse_args(argv)
    return cli.report_errors('regenerate.py', lambda: run(args))


def run(args):
    plan = steps()
    show_plan(plan)
    if args.plan:
        return 0
    for step in plan:
        if args.only and step.name not in args.only:
            continue
        left = step.done()
        if not left:
            print(f'=== {step.name}: done', flush=True)
            continue
        print(f'=== {step.name} ({left}): {step.what}', flush=True)
        step.run()
    return 0


if __name__ == '__main__':
    sys.exit(main())
