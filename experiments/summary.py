"""How the experiments' numbers are summarised, for run_experiments.py's tables and the report's alike."""
import numpy as np

from dae.config import batches_per_epoch


def spread(values, digits=2, sign=False):
    """'mean ± sample std' of a few seeds' values (the std needs two), or the one value alone."""
    form = f'{"+" if sign else ""}.{digits}f'
    if len(values) == 1:
        return format(values[0], form)
    return f'{format(np.mean(values), form)} ± {np.std(values, ddof=1):.{digits}f}'


def follows_short_batch(iteration, train_images, batch_size):
    """Whether a save comes right after an epoch's last batch when that batch is trained (2 images or more)
    but under a quarter of a batch (674 images at 32 leave 2): BatchNorm's running averages move towards
    two images' statistics, so such a save scores low in eval mode, and a run's score leaves it out."""
    short = train_images % batch_size
    return 2 <= short < batch_size // 4 and iteration % batches_per_epoch(train_images, batch_size) == 0


def results_name(noise_level):
    """The table file of one noise level: results.md for the assignment's, results-noise-L.md for others."""
    return 'results.md' if noise_level == 1.0 else f'results-noise-{noise_level:g}.md'


def seed_list(seeds):
    """'4680–4683' for three or more consecutive seeds, else '4680, 4682'."""
    seeds = sorted(seeds)
    if len(seeds) > 2 and seeds[-1] - seeds[0] == len(seeds) - 1:
        return f'{seeds[0]}–{seeds[-1]}'
    return ', '.join(map(str, seeds))


def timing_machines(rows, always_name_seeds=False):
    """Where the wall times were measured: 'M' for one machine, else 'M1 (seeds a, b); M2 (seed c)'."""
    seeds = {}
    for row in rows:
        seeds.setdefault(row.get('machine', 'unknown'), set()).add(row['seed'])
    if len(seeds) == 1 and not always_name_seeds:
        return next(iter(seeds))
    return '; '.join(f'{machine} (seed{"s" if len(found) > 1 else ""} {seed_list(found)})'
                     for machine, found in seeds.items())
