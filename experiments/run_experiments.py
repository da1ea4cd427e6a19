"""Q3(f): the assignment's model, its variants and classical denoisers, on held-out Pokemon, with error bars.

    pip install -r experiments/requirements.txt   # scikit-image and bm3d, for the classical baselines
    python -m experiments.run_experiments          # every variant x 4 seeds (the README says how long)

Every variant is trained by asgn6.py once per seed with --val-split 0.1: each seed holds out its own 10%
of the embedded images, and within a seed every variant has the same split, batch size and epochs.
At every save asgn6.py measures the model in eval mode on the held-out images and on as many training
images, each with one fixed noise draw; a run is scored by the mean of its last saves that do not follow
a short last batch, and a variant by the mean and standard deviation of its seeds.  Seed 4680 is the
development seed, on whose runs every choice was made; the tables report the other seeds.  The classical
filters (classical.py) denoise each seed's held-out images, plain and followed by an intensity correction
for the clamped noise's bias, with the parameter and correction fitted on that seed's training images,
so no choice is made on the test images.  Only non-local means, total variation (scikit-image) and BM3D
need experiments/requirements.txt; without them those filters are left out.  An interrupted call
resumes: runs already complete are kept.
Writes to experiments/results/: results.json (a row per run and seed), results.md (the table at noise 1;
results-noise-0.5.md for the other level) and denoised.png (clean / noisy / spec / best variant / best
corrected filter, on a test seed's split whose checkpoints are there).
"""
import dataclasses
import hashlib
import json
import math
import os
import subprocess
import sys
import time

import numpy as np
import torch
from PIL import Image

from dae import cli, training, variants
from dae.checkpoint import load_checkpoint
from dae.run_folder import CHECKPOINT_NAME, VALIDATION_NAME
from dae.config import RunConfig, total_iterations
from dae.denoising import SelfEnsemble, load_model
from dae.files import atomic_write, write_text_atomic
from dae.images import load_dataset, psnr, save_grid
from dae.logs import read_losses, read_validation
from dae.machine import machine_name
from experiments.summary import follows_short_batch, results_name, spread, timing_machines
from models import AutoEncoder
from experiments.classical import (JOINT_BINS, IntensityMap, JointIntensityMap, apply_filter, best_classical,
                                  choose, classical_filters)

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)

VAL_SPLIT = 0.1
SEEDS = (4680, 4681, 4682, 4683)  # each seed draws its own split, weights, order and noise
DEVELOPMENT_SEEDS = (4680,)  # every choice was made on this seed's runs; the tables report the others
CHECKPOINT_SCORES = ('last_save_psnr', 'self_ensemble_psnr', 'checkerboard_db')  # need the run's checkpoint
LAST_SAVES = 3  # a run is scored by the mean of its last saves that do not follow a short batch (below)
VARIANTS = {  # each changes these of the common settings (RunConfig's fields)
    'spec': {},  # the assignment's model at the common 15 epochs: a quick first run of this script
    'spec-noise-0.5': {'noise_level': 0.5},
    # Q3(f): the assignment's model and its encoder, decoder, code size and loss changed one at a time, at a
    # budget where held-out scores have levelled off (the assignment's model's by about epoch 50)
    'spec-60ep': {'epochs': 60},
    'latent-32-60ep': {'latent_size': 32, 'epochs': 60},
    'latent-512-60ep': {'latent_size': 512, 'epochs': 60},
    'conv-encoder-60ep': {'model': 'conv-encoder', 'epochs': 60},
    'resize-decoder-60ep': {'model': 'resize-decoder', 'epochs': 60},
    'mse-loss-60ep': {'loss': 'mse', 'epochs': 60},
    # the coda: no bottleneck.  A U-Net and a residual U-Net at the common budget; the final denoiser (the residual
    # U-Net with a cosine schedule, MSE and the eight symmetries of every training image, each step chosen on the
    # development seed), and the U-Net with the same recipe in the same wall time: it trains 151.7 / 67.4 times
    # slower (benchmarks/README.md), so 160 epochs of the residual U-Net's time are 71 of its own
    'unet': {'model': 'unet'},
    'residual-unet': {'model': 'residual-unet'},
    'residual-unet+cosine+mse+augment-160ep': {'model': 'residual-unet', 'lr_schedule': 'cosine', 'loss': 'mse',
                                               'augment': True, 'epochs': 160, 'save_interval': 50},
    'unet+cosine+mse+augment-71ep': {'model': 'unet', 'lr_schedule': 'cosine', 'loss': 'mse', 'augment': True,
                                     'epochs': 71, 'save_interval': 50},
}


Q3F_VARIANTS = ('spec-60ep', 'latent-32-60ep', 'latent-512-60ep', 'conv-encoder-60ep', 'resize-decoder-60ep',
                'mse-loss-60ep')  # the rows of variants.png


def split_of_run(config, data_dir):
    """(the Split on the CPU, number of images) of a run, from its config and the folder it trained on."""
    images, paths = load_dataset(data_dir, config.image_size)
    return training.split_dataset(images, paths, config, torch.device('cpu')), len(paths)


def run_dir(out, name, seed):
    return os.path.join(out, 'runs', name, f'seed-{seed}')


SAVE_INTERVAL = 30  # iterations between held-out measurements, unless a variant sets its own


def run_config(name, seed, epochs):
    """The RunConfig of one variant and seed; a variant may set its own epochs."""
    settings = {'val_split': VAL_SPLIT, 'epochs': epochs, 'seed': seed, **VARIANTS[name]}
    settings.pop('save_interval', None)
    return RunConfig(**settings)


def run_flags(name, config, data_dir, folder):
    """asgn6.py's flags for a variant's config (every field, so that none depends on asgn6.py's defaults)."""
    flags = [f'--{key.replace("_", "-")}' if value is True else f'--{key.replace("_", "-")}={value}'
             for key, value in dataclasses.asdict(config).items() if value is not False]
    save_interval = VARIANTS[name].get('save_interval', SAVE_INTERVAL)
    return ['--data-dir', str(data_dir), '--output-dir', folder, '--loss-file', os.path.join(folder, 'loss.txt'),
            '--device', 'cpu', '--log-interval=50', f'--save-interval={save_interval}', *flags]


def run_status(folder, config, split, num_images):
    """From a run's own files (loss.txt, validation.csv: committed, unlike its checkpoint): 'complete';
    'unfinished'; or 'stale', finished on other images or noise than today's code draws for its seed (made before
    a change of the streams: validation.csv keeps the noisy PSNR of its held-out and probe images)."""
    try:
        losses = read_losses(os.path.join(folder, 'loss.txt'))
        saves = read_validation(os.path.join(folder, VALIDATION_NAME))
    except cli.UsageError:
        return 'unfinished'
    total = total_iterations(config, num_images)
    if not (len(losses) == total and saves and saves[-1].iteration == total):
        return 'unfinished'
    recorded = (saves[-1].noisy_psnr, saves[-1].train_noisy_psnr)
    todays = (split.held_out.noisy_psnr, split.probe.noisy_psnr)
    return 'complete' if all(format(a, '.4f') == format(b, '.4f') for a, b in zip(recorded, todays)) else 'stale'


SCORES_NAME = 'scores.json'  # what needs the checkpoint, measured as the run finishes
OUTPUTS_NAME = 'first-outputs.png'  # the run's outputs on its first held-out images, for the figures
FIGURE_IMAGES = 8


@torch.no_grad()
def record_last_save(folder, held_out):
    """Measure what needs a finished run's checkpoint and keep it beside the run's files: the checkpoint is not
    committed, and the session that evaluates the run may not be the one that trained it."""
    path = os.path.join(folder, CHECKPOINT_NAME)
    write_text_atomic(os.path.join(folder, SCORES_NAME), json.dumps(last_save_scores(path, held_out), indent=1) + '\n')
    model, _ = load_model(path, torch.device('cpu'))
    with training.evaluating(model):
        outputs = model(held_out.noisy[:FIGURE_IMAGES]).float()
    strip = ((outputs.clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)  # N x 3 x H x W
    count, _, height, width = strip.shape
    pixels = strip.permute(2, 0, 3, 1).reshape(height, count * width, 3).numpy()
    atomic_write(os.path.join(folder, OUTPUTS_NAME), lambda tmp: Image.fromarray(pixels).save(tmp, format='png'))


def recorded_outputs(folder, height, width):
    """The outputs record_last_save kept, as a batch in [-1, 1]."""
    with Image.open(os.path.join(folder, OUTPUTS_NAME)) as strip:
        pixels = torch.from_numpy(np.array(strip.convert('RGB'))).reshape(height, -1, width, 3)
    return pixels.permute(1, 3, 0, 2).float() / 127.5 - 1


def has_outputs(folder):
    return any(os.path.exists(os.path.join(folder, name)) for name in (CHECKPOINT_NAME, OUTPUTS_NAME))


def train_variant(name, *, seed, data_dir, epochs, out):
    """Train one variant and seed with asgn6.py in its own process, or finish an interrupted run of it;
    returns (the seconds spent training: 0 for a run that was already complete, whether it went on from a save)."""
    folder = run_dir(out, name, seed)
    os.makedirs(folder, exist_ok=True)
    checkpoint = os.path.join(folder, CHECKPOINT_NAME)
    config = run_config(name, seed, epochs)
    split, num_images = split_of_run(config, data_dir)
    status = run_status(folder, config, split, num_images)
    if status == 'complete' and (os.path.exists(os.path.join(folder, SCORES_NAME)) or os.path.exists(checkpoint)):
        print(f'--- {name}, seed {seed}: already complete (its loss.txt and {VALIDATION_NAME} say so)', flush=True)
        return 0.0, True
    if status == 'stale':  # made by an earlier version of the code: its files and records go
        print(f'--- {name}, seed {seed}: its files were made on other images or noise than today\'s code draws; '
              'training it again', flush=True)
        for stale in (checkpoint, os.path.join(folder, SCORES_NAME), os.path.join(folder, OUTPUTS_NAME)):
            if os.path.exists(stale):
                os.remove(stale)
    done_before = load_checkpoint(checkpoint)['iteration'] if os.path.exists(checkpoint) else 0
    command = [sys.executable, os.path.join(ROOT, 'asgn6.py'), *run_flags(name, config, data_dir, folder),
               *(['--resume', checkpoint] if done_before else ['--overwrite'])]
    print(f'--- {name}, seed {seed}: {" ".join(command[1:])}', flush=True)
    start = time.perf_counter()
    with open(os.path.join(folder, 'train.log'), 'a' if done_before else 'w') as log:
        exit_status = subprocess.run(command, stdout=log, stderr=subprocess.STDOUT).returncode
    if exit_status != 0:
        raise cli.Failure(f'{name}, seed {seed}: asgn6.py stopped with status {exit_status}; its output is in '
                          f'{os.path.join(folder, "train.log")}, and a new call resumes the run')
    record_last_save(folder, split.held_out)
    trained = load_checkpoint(checkpoint)['iteration'] > done_before
    return (time.perf_counter() - start if trained else 0.0), bool(done_before)


def split_digest(held_out):
    """A short name for a set of held-out images, to show that two results used the same ones."""
    names = '\n'.join(os.path.basename(path) for path in held_out.paths)
    return hashlib.sha1(names.encode()).hexdigest()[:12]


def evaluate_run(name, folder, timing, config, split, previous=None):
    """A network run's scores from its own files: the mean of its last saves' measurements, which asgn6.py took
    in eval mode on the held-out images and on as many training images, each with one fixed noise draw; and
    its last save's with and without the self-ensemble, from `previous` (the last results.json's row of the
    same run) or else from its checkpoint, where that is kept."""
    model = variants.build(config.model, config.latent_size, config.image_size)
    seed, held_out, train_images = config.seed, split.held_out, split.train.size(0)
    saves = [row for row in read_validation(os.path.join(folder, VALIDATION_NAME))
             if not follows_short_batch(row.iteration, train_images, config.batch_size)][-LAST_SAVES:]
    mean = lambda field: float(np.mean([getattr(row, field) for row in saves]))  # noqa: E731
    row = {'name': name, 'seed': seed, 'kind': 'network', 'noise_level': config.noise_level,
            'model': config.model, 'latent_size': config.latent_size if isinstance(model, AutoEncoder) else None,
            'loss': config.loss, 'parameters': sum(p.numel() for p in model.parameters()),
            'iterations': len(read_losses(os.path.join(folder, 'loss.txt'))),
            'saves_averaged': [row.iteration for row in saves],
            'wall_seconds': round(timing['seconds'], 1), 'machine': timing['machine'],
            'train_l1': mean('train_l1'), 'train_psnr': mean('train_psnr'),
            'held_out_l1': mean('l1'), 'held_out_psnr': mean('psnr'), 'noisy_psnr': saves[-1].noisy_psnr,
            'held_out_images': held_out.clean.size(0), 'train_images': train_images,
            'held_out_set': split_digest(held_out)}
    return {**row, **checkpoint_scores(folder, held_out, kept_scores(previous, row))}


def kept_scores(previous, row):
    """The checkpoint scores of `previous` that it has, if it is the same finished run (same iterations, held-out
    images and noise): they need the checkpoint, which is not committed."""
    same = previous and all(previous.get(key) == row[key] for key in ('iterations', 'held_out_set', 'noisy_psnr'))
    return {key: previous[key] for key in CHECKPOINT_SCORES if key in previous} if same else {}


def checkpoint_scores(folder, held_out, kept):
    """`kept`, completed from what the run recorded as it finished, or else from its checkpoint if still there."""
    path, recorded = os.path.join(folder, CHECKPOINT_NAME), os.path.join(folder, SCORES_NAME)
    if set(kept) == set(CHECKPOINT_SCORES):
        return kept
    if os.path.exists(recorded):
        return read_json(recorded)
    return last_save_scores(path, held_out) if os.path.exists(path) else kept


def checkerboard_db(images, clean):
    """How much of a checkerboard the images carry: their power at the highest spatial frequencies (period 2
    across, down, or both: the pattern of a stride-2 transposed convolution) against the clean images', in dB.
    0 dB: as much as the clean images have; above, a pattern the images lack."""
    def nyquist_power(batch):
        spectrum = torch.fft.fft2(batch.double())
        half_h, half_w = batch.size(-2) // 2, batch.size(-1) // 2
        return sum(spectrum[..., i, j].abs().pow(2).sum() for i, j in ((half_h, 0), (0, half_w), (half_h, half_w)))
    return 10 * math.log10(nyquist_power(images) / nyquist_power(clean))


@torch.no_grad()
def last_save_scores(path, held_out):
    """Held-out scores of a finished run's last save (its checkpoint): PSNR as trained and averaged over the
    eight symmetries of each input (SelfEnsemble), and the checkerboard measure of its outputs."""
    model, _ = load_model(path, torch.device('cpu'))
    with training.evaluating(model):
        outputs = torch.cat([model(batch) for batch in held_out.noisy.split(64)]).float()
    return {'last_save_psnr': psnr(outputs, held_out.clean),
            'self_ensemble_psnr': training.evaluate(SelfEnsemble(model), held_out)[1],
            'checkerboard_db': checkerboard_db(outputs, held_out.clean)}


def run_baselines(held_out, probe, noise_level, filters):
    """Every classical filter on one split's held-out images, plain and with the intensity correction, each
    with the parameter (and correction) that scored best on the split's training probe: chosen on images the
    test never sees, as a network's weights are.  The noisy input itself is scored plain and corrected too."""
    common = {'kind': 'classical', 'noise_level': noise_level, 'held_out_set': split_digest(held_out)}
    identity = IntensityMap.fit(probe.noisy, probe.clean)
    rows = [baseline_row('noisy input', held_out.noisy, held_out, common, parameter=None, corrected=False,
                         probe_psnr=psnr(probe.noisy, probe.clean)),
            baseline_row('noisy input + correction', identity(held_out.noisy), held_out, common, parameter=None,
                         corrected=True, probe_psnr=psnr(identity(probe.noisy), probe.clean),
                         correction=correction_table(identity))]
    for name, filter_ in filters.items():
        choice = choose(filter_, probe, psnr)
        outputs = {value: apply_filter(filter_.apply, held_out.noisy, value)
                   for value in {choice.plain, choice.corrected, choice.joint}}
        fields = {'grid': list(choice.tried)}
        rows += [baseline_row(name, outputs[choice.plain], held_out, common, parameter=choice.plain, corrected=False,
                              probe_psnr=choice.plain_probe_psnr, **fields),
                 baseline_row(f'{name} + correction', choice.correction(outputs[choice.corrected]), held_out, common,
                              parameter=choice.corrected, corrected=True, probe_psnr=choice.corrected_probe_psnr,
                              correction=correction_table(choice.correction), **fields),
                 baseline_row(f'{name} + 2-D correction',
                              choice.joint_correction(outputs[choice.joint], held_out.noisy), held_out, common,
                              parameter=choice.joint, corrected=True, probe_psnr=choice.joint_probe_psnr,
                              correction=joint_table(choice.joint_correction), **fields)]
        print(f'{name}: ' + ', '.join(f'{row["held_out_psnr"]:.2f} dB {label} ({row["parameter"]})' for row, label
                                      in zip(rows[-3:], ('plain', 'corrected', '2-D corrected')))
              + f'; parameters chosen on training images from {list(choice.tried)}', flush=True)
    return rows


def baseline_row(name, denoised, held_out, common, **fields):
    return {'name': name, **common, **fields, 'held_out_l1': (denoised - held_out.clean).abs().mean().item(),
            'held_out_psnr': psnr(denoised, held_out.clean)}


def correction_table(correction):
    """An intensity correction as results.json keeps it: its filtered values and the clean means behind them."""
    return {'filtered': [round(float(v), 6) for v in correction.filtered],
            'clean': [round(float(v), 6) for v in correction.clean]}


def joint_table(correction):
    """A joint correction as results.json keeps it: its 1-D correction and its departures, by (filtered, noisy) bin."""
    return {**correction_table(correction.base), 'departure': np.round(correction.residual, 5).tolist()}


def stored_correction(table):
    """The correction a results.json row keeps, as a function of (filtered, noisy)."""
    base = IntensityMap(np.array(table['filtered']), np.array(table['clean']))
    if 'departure' in table:
        return JointIntensityMap(base, np.array(table['departure']))
    return lambda filtered, noisy: base(filtered)


def grouped(rows):
    """{(name, noise level): [its rows, one per seed]}, in the order the names first appear."""
    groups = {}
    for row in rows:
        groups.setdefault((row['name'], row['noise_level']), []).append(row)
    return groups


def mean_std(rows, key, digits=2):
    return spread([row[key] for row in rows], digits)


def markdown_table(networks, classical, epochs):
    """The table of one noise level's rows (the caller filters them), with a line that says how they were made."""
    first = networks[0]
    common = RunConfig(epochs=epochs, val_split=VAL_SPLIT)
    iterations = total_iterations(common, first['train_images'] + first['held_out_images'])
    seeds = sorted({row['seed'] for row in networks})
    over = (f'the mean ± standard deviation over {len(seeds)} seeds ({", ".join(map(str, seeds))}), each'
            if len(seeds) > 1 else f'one seed ({seeds[0]})')
    lines = [f'Noise half-width {first["noise_level"]:g}. Each row is {over} with its own 90/10 split of the images '
             f'({first["train_images"]} training, {first["held_out_images"]} held out). Networks: {epochs} epochs, '
             f'batch {common.batch_size} ({iterations:,} iterations) unless the iterations column says otherwise, '
             f'scored by the mean of their last {LAST_SAVES} saves that do not follow a short last batch; train PSNR '
             f'is measured in the same way on {first["held_out_images"]} training images. Filters: plain, followed '
             f'by the intensity correction (+ correction) or by the 2-D correction that also reads the noisy value '
             f'(+ 2-D correction, its {JOINT_BINS[0]} × {JOINT_BINS[1]} bins chosen at noise 1 on seed '
             f'{DEVELOPMENT_SEEDS[0]}); parameter and correction fitted on those training images, per seed. '
             f'PSNR in dB. Wall times (the mean of the seeds) measured on: {timing_machines(networks)}.', '',
             '| method | parameters | iterations | train PSNR | held-out PSNR | held-out L1 | wall time |',
             '|--------------------------|----------|----------|------------|------------|---------------|--------|']
    for (name, _), rows in grouped(networks).items():
        name += f' ({len(rows)} seed{"s" if len(rows) > 1 else ""})' if len(rows) < len(seeds) else ''
        lines.append(f'| {name} | {rows[0]["parameters"]:,} | {rows[0]["iterations"]:,} | '
                     f'{mean_std(rows, "train_psnr")} | {mean_std(rows, "held_out_psnr")} | '
                     f'{mean_std(rows, "held_out_l1", 4)} | '
                     f'{np.mean([r["wall_seconds"] for r in rows]) / 60:.1f} min |')
    for (name, _), rows in grouped(classical).items():
        chosen = sorted({row['parameter'] for row in rows}, key=str)
        parameter = '' if chosen == [None] else f' ({", ".join(f"{value:g}" for value in chosen)})'
        lines.append(f'| {name}{parameter} | - | - | - | {mean_std(rows, "held_out_psnr")} | '
                     f'{mean_std(rows, "held_out_l1", 4)} | - |')
    return '\n'.join(lines) + '\n'


@torch.no_grad()
def comparison_figure(path, held_out, network_folders, classical, count=8):
    """The first held-out images: clean, noisy, each network's output (eval mode), and `classical(noisy)` if given."""
    count = min(count, held_out.clean.size(0))
    rows = [held_out.clean[:count], held_out.noisy[:count]]
    for folder in network_folders:
        if os.path.exists(os.path.join(folder, OUTPUTS_NAME)):
            rows.append(recorded_outputs(folder, *held_out.clean.shape[-2:])[:count])
            continue
        model, _ = load_model(os.path.join(folder, CHECKPOINT_NAME), torch.device('cpu'))
        with training.evaluating(model):
            rows.append(model(held_out.noisy[:count]))
    if classical is not None:
        rows.append(classical(held_out.noisy[:count]))
    save_grid(path, torch.cat(rows), images_per_row=count)


def add_timing(timing, seconds):
    """A run's wall.json entry after `seconds` more of training on this machine: a run resumed on another
    machine names both."""
    timing = timing or {'seconds': 0.0, 'machine': machine_name()}
    machines = list(dict.fromkeys([*timing['machine'].split(' + '), machine_name()]))
    return {'seconds': timing['seconds'] + seconds, 'machine': ' + '.join(machines)}


def read_json(path, default=None):
    if default is not None and not os.path.exists(path):
        return default
    with open(path) as f:
        return json.load(f)


def reported(rows):
    """The rows of the test seeds, where there are any: the development seeds' runs made the choices."""
    tested = [row for row in rows if row.get('seed') not in DEVELOPMENT_SEEDS]
    return tested or rows


def write_table(out, results):
    """results.md (the assignment's noise) and results-noise-0.5.md etc. (other levels) from results.json, over
    the test seeds; returns the tables.  One table per level keeps each short enough for a page."""
    tables = []
    for level in sorted({row['noise_level'] for row in results['networks']}, reverse=True):
        rows = {kind: reported([row for row in results[kind] if row['noise_level'] == level])
                for kind in ('networks', 'classical')}
        table = markdown_table(rows['networks'], rows['classical'], results['epochs'])
        name = results_name(level)
        write_text_atomic(os.path.join(out, name), table)
        tables.append(table)
    return '\n'.join(tables)


def evaluate_all(out, walls, filter_names, previous, data_dir, epochs):
    """Rows for every complete run in `out`, from its own files (its checkpoint may be gone: it is not committed);
    classical rows on each seed's split, reused from the previous results when they were made on the same images."""
    networks = []
    for name in VARIANTS:
        for seed in sorted(seeds_in(out, name)):
            folder = run_dir(out, name, seed)
            config = run_config(name, seed, epochs)
            split, num_images = split_of_run(config, data_dir)
            status = run_status(folder, config, split, num_images)
            if status == 'complete':
                timing = walls.get(f'{name}/seed-{seed}', {'seconds': float('nan'), 'machine': 'unknown'})
                kept = previous['networks'].get((name, seed))
                networks.append(evaluate_run(name, folder, timing, config, split, kept))
            elif status == 'stale':
                print(f'{name}, seed {seed}: made on other images or noise than today\'s code draws, so not in the '
                      'table; a new call trains it again')
            else:
                print(f'{name}, seed {seed}: not complete, so not in the table; a new call resumes it')
    classical, figure_inputs = [], []
    for level, seed in sorted({(row['noise_level'], row['seed']) for row in networks}, key=lambda k: (-k[0], k[1])):
        split, _ = split_of_run(RunConfig(seed=seed, noise_level=level, val_split=VAL_SPLIT), data_dir)
        held_out, probe = split.held_out, split.probe
        digest, filters = split_digest(held_out), classical_filters(filter_names, level)
        kept = previous['classical'].get((level, seed, digest), [])
        suffixes = ('', ' + correction', ' + 2-D correction')
        wanted = {'noisy input', 'noisy input + correction', *(name + end for name in filters for end in suffixes)}
        if {row['name'] for row in kept} >= wanted:
            rows = [row for row in kept if row['name'] in wanted]
        else:
            print(f'classical filters, noise {level}, split of seed {seed}:', flush=True)
            rows = run_baselines(held_out, probe, level, filters)
            for row in rows:
                row['seed'] = seed
        classical += rows
        if level == 1.0:
            figure_inputs.append((seed, rows, held_out))
    figure_inputs.sort(key=lambda inputs: inputs[0] in DEVELOPMENT_SEEDS)  # a test seed's split, where one can
    return networks, classical, figure_inputs


def seeds_in(out, name):
    folder = os.path.join(out, 'runs', name)
    names = os.listdir(folder) if os.path.isdir(folder) else []
    return {int(entry[5:]) for entry in names if entry.startswith('seed-') and entry[5:].isdigit()}


def previous_results(out):
    """The last results.json's classical rows, indexed by (noise, seed, held-out set): filters are slow to rerun;
    and its network rows by (name, seed), for the scores that need a checkpoint."""
    results = read_json(os.path.join(out, 'results.json'), default={'networks': [], 'classical': []})
    classical = {}
    for row in results['classical']:
        if 'seed' in row:
            classical.setdefault((row['noise_level'], row['seed'], row['held_out_set']), []).append(row)
    return {'classical': classical, 'networks': {(row['name'], row['seed']): row for row in results['networks']}}


def report(out, epochs, networks, classical, figure_inputs, filters):
    results = {'epochs': epochs, 'development_seeds': list(DEVELOPMENT_SEEDS), 'networks': networks,
               'classical': classical}
    write_text_atomic(os.path.join(out, 'results.json'), json.dumps(results, indent=1))
    print(write_table(out, results))
    variants_figure(out, figure_inputs)
    candidates = [figure_candidate(out, networks, *inputs) for inputs in figure_inputs]
    ready = [candidate for candidate in candidates if candidate['ready']]
    if not ready:  # a figure with fewer rows would replace a fuller one
        if candidates:
            first = candidates[0]
            print(f'denoised.png kept as it is: it needs a classical filter and the checkpoints of seed '
                  f'{first["seed"]}\'s {" and ".join(first["shown"]) or "runs"}'
                  + (f' ({", ".join(first["missing"])} missing)' if first['missing'] else ''))
        return
    seed, shown, best_filter, held_out = (ready[0][key] for key in ('seed', 'shown', 'best_filter', 'held_out'))
    plain_name = best_filter['name'].split(' + ')[0]
    correction = stored_correction(best_filter['correction'])

    def best_corrected(noisy):
        return correction(apply_filter(filters[plain_name].apply, noisy, best_filter['parameter']), noisy)
    comparison_figure(os.path.join(out, 'denoised.png'), held_out, [run_dir(out, name, seed) for name in shown],
                      best_corrected)
    print(f'figure (split of seed {seed}) rows: clean, noisy, {", ".join(shown)}, {best_filter["name"]}')


def variants_figure(out, figure_inputs):
    """variants.png: the first held-out images of the first test seed whose Q3(f) checkpoints are all there; rows:
    clean, noisy, then each variant's output.  Left as it is where no seed has them all."""
    for seed, _, held_out in figure_inputs:
        folders = [run_dir(out, name, seed) for name in Q3F_VARIANTS]
        if seed not in DEVELOPMENT_SEEDS and all(has_outputs(folder) for folder in folders):
            comparison_figure(os.path.join(out, 'variants.png'), held_out, folders, classical=None)
            print(f'variants.png (split of seed {seed}) rows: clean, noisy, {", ".join(Q3F_VARIANTS)}')
            return


def figure_candidate(out, networks, seed, rows, held_out):
    """What the comparison figure would show on one seed's split: spec, that seed's best network and its
    best corrected filter; ready if every network's checkpoint (not committed) is there."""
    here = [row for row in networks if row['noise_level'] == 1.0 and row['seed'] == seed]
    best_network = max(here, key=lambda row: row['held_out_psnr'], default={'name': None})['name']
    shown = list(dict.fromkeys(name for name in ('spec', best_network) if any(r['name'] == name for r in here)))
    missing = [name for name in shown if not has_outputs(run_dir(out, name, seed))]
    best_filter = best_classical(rows)
    return {'seed': seed, 'shown': shown, 'missing': missing, 'best_filter': best_filter, 'held_out': held_out,
            'ready': bool(shown) and not missing and best_filter is not None}


JOINT_BIN_CANDIDATES = ((32, 8), (64, 8), (64, 16), (128, 16), (32, 32), (64, 32))


def choose_joint_bins(out, data_dir, filters):
    """The joint correction's bins, chosen on the development seed's held-out images: that seed's best corrected
    filter at the parameter chosen on its training images, followed by joint corrections of several sizes, each
    fitted on the training probe; writes joint-bins.md and returns its table."""
    seed = DEVELOPMENT_SEEDS[0]
    rows = [row for row in read_json(os.path.join(out, 'results.json'))['classical']
            if row.get('seed') == seed and row['noise_level'] == 1.0 and row['name'].endswith(' + correction')]
    best = best_classical(rows)
    name = best['name'].removesuffix(' + correction')
    split, _ = split_of_run(RunConfig(seed=seed, val_split=VAL_SPLIT), data_dir)
    probe, held_out = split.probe, split.held_out
    filtered = {kind: apply_filter(filters[name].apply, images.noisy, best['parameter'])
                for kind, images in (('probe', probe), ('held_out', held_out))}
    lines = [f'{name} ({best["parameter"]:g}) on the split of the development seed {seed}, noise 1, followed by a '
             f'joint correction of (filtered, noisy) bins fitted on its {probe.clean.size(0)} training images. PSNR in '
             f'dB; the 1-D correction ({best["name"]}) scores {best["held_out_psnr"]:.2f} dB held out.', '',
             '| bins | training images | held-out images |', '|---|---|---|']
    held_out_scores = {}
    for bins in JOINT_BIN_CANDIDATES:
        joint = JointIntensityMap.fit(filtered['probe'], probe.noisy, probe.clean, bins)
        scores = [psnr(joint(filtered[kind], images.noisy), images.clean)
                  for kind, images in (('probe', probe), ('held_out', held_out))]
        lines.append(f'| {bins[0]} x {bins[1]} | {scores[0]:.2f} | {scores[1]:.2f} |')
        held_out_scores[bins] = scores[1]
    chosen = max(held_out_scores, key=held_out_scores.get)
    lines += ['', f'Best held out: {chosen[0]} x {chosen[1]} '
                  f'(classical.JOINT_BINS is {JOINT_BINS[0]} x {JOINT_BINS[1]}).']
    table = '\n'.join(lines) + '\n'
    write_text_atomic(os.path.join(out, 'joint-bins.md'), table)
    return table


def main(argv=None):
    parser = cli.ArgumentParser('run_experiments.py', __doc__)
    parser.add_argument('--data-dir', default=os.path.join(ROOT, 'data'), help='images (default: data)')
    parser.add_argument('--epochs', type=cli.positive_int(), default=15, help='epochs per network, unless a variant '
                        'sets its own; 15 is 330 iterations on the embedded images (default: 15)')
    parser.add_argument('--seeds', type=cli.positive_int(minimum=0), nargs='+', default=list(SEEDS),
                        help=f'one run of every variant per seed (default: {" ".join(map(str, SEEDS))})')
    parser.add_argument('--out', default=os.path.join(HERE, 'results'), help='folder for the runs and results '
                        '(default: experiments/results)')
    parser.add_argument('--only', nargs='+', choices=list(VARIANTS), metavar='NAME', help='train only these '
                        f'(of {", ".join(VARIANTS)}); the table holds every run made so far (default: all)')
    parser.add_argument('--filters', nargs='+', help='classical filters to compare, by name (default: all that '
                        'are installed)')
    parser.add_argument('--skip-training', action='store_true', help='evaluate the runs already in --out '
                        '(default: train first; a run already there is resumed, or left as it is if complete)')
    parser.add_argument('--train-only', action='store_true', help='train (or resume) and stop: no evaluation, no '
                        'filters, results.json left as it is (default: evaluate every run after training)')
    parser.add_argument('--choose-joint-bins', action='store_true', help='only score joint corrections of several '
                        'sizes on the development seed, into joint-bins.md (default: off)')
    parser.add_argument('--table-only', action='store_true', help='only rewrite results.md from results.json '
                        '(default: off)')
    args = parser.parse_args(argv)
    return cli.report_errors('run_experiments.py', lambda: run(args))


def run(args):
    if args.choose_joint_bins:
        print(choose_joint_bins(args.out, args.data_dir, classical_filters(args.filters)))
        return 0
    if args.table_only:
        results = read_json(os.path.join(args.out, 'results.json'))
        write_table(args.out, results)
        levels = sorted({row['noise_level'] for row in results['networks']}, reverse=True)
        names = [results_name(level) for level in levels]
        print(f'wrote {", ".join(os.path.join(args.out, name) for name in names)} from results.json')
        return 0
    torch.set_num_threads(os.cpu_count())
    names = args.only or list(VARIANTS)
    walls_path = os.path.join(args.out, 'wall.json')
    walls = read_json(walls_path, default={})
    for seed in args.seeds:
        for name in names:
            if args.skip_training:
                continue
            seconds, resumed = train_variant(name, seed=seed, data_dir=args.data_dir, epochs=args.epochs, out=args.out)
            if seconds:
                key = f'{name}/seed-{seed}'
                walls[key] = add_timing(walls.get(key) if resumed else None, seconds)
                write_text_atomic(walls_path, json.dumps(walls, indent=1))
    if args.train_only:
        return 0
    filters = classical_filters(args.filters)
    networks, classical, figure_inputs = evaluate_all(args.out, walls, args.filters, previous_results(args.out),
                                                      args.data_dir, args.epochs)
    report(args.out, args.epochs, networks, classical, figure_inputs, filters)
    return 0


if __name__ == '__main__':
    sys.exit(main())
