"""The report links only figures that exist, and its generated layer table matches models.py."""
import os
import re
import sys

import pytest

from conftest import ROOT

REPORT = os.path.join(ROOT, 'report', 'report.md')
sys.path.insert(0, os.path.join(ROOT, 'report'))


def linked_images(markdown_path):
    text = open(markdown_path).read()
    return re.findall(r'!\[[^\]]*\]\(([^)\s]+)\)', text) + re.findall(r'<img src="([^"]+)"', text)


def test_every_figure_the_report_and_readme_link_exists():
    for document in (REPORT, os.path.join(ROOT, 'README.md')):
        links = linked_images(document)
        assert links, document
        for link in links:
            assert os.path.isfile(os.path.join(os.path.dirname(document), link)), (document, link)


def test_the_layer_table_in_the_report_is_the_one_models_py_gives():
    import make_figures
    assert make_figures.layer_table() in open(REPORT).read()


def numbers(text):
    return [float(value) for value in re.findall(r'-?\d+\.\d+|\d+', text)]


def test_the_reports_latent_statistics_are_what_the_shipped_weights_give(tmp_path, monkeypatch):
    import make_figures
    monkeypatch.setattr(make_figures, 'FIGURES', str(tmp_path))
    fresh = make_figures.latent_section()
    shown = re.search(r'<!-- BEGIN latents -->\n(.*?)<!-- END latents -->', open(REPORT).read(), re.S).group(1)
    labels = lambda text: [line.split('|')[1] for line in text.splitlines() if line.startswith('|')]  # noqa: E731
    assert labels(fresh) == labels(shown) and len(labels(shown)) == 7  # header, rule, five statistics
    # the same figures, up to the last digit (another CPU class rounds the encoder's floats differently)
    for mine, theirs in zip(numbers(fresh), numbers(shown)):
        assert abs(mine - theirs) <= 0.02 * abs(theirs) + 0.1
    assert (tmp_path / 'latent-histogram.png').exists()


def test_saves_after_an_epochs_last_batch_are_told_apart_from_the_others():
    import make_figures
    from run_state import Validation
    # 5 iterations per epoch, a save every 2: the saves at 10 and 20 follow an epoch's last batch
    psnrs = {2: 10.0, 4: 11.0, 6: 12.0, 8: 13.0, 10: 11.0, 12: 14.0, 14: 15.0, 16: 16.0, 18: 17.0, 20: 16.0}
    rows = [Validation(i, 0.1, p, 9.0, 0.1, p + 1, 9.0) for i, p in psnrs.items()]
    assert make_figures.epoch_end_dips(rows, 5) == (
        "Change from the save before, for the 2 saves that follow an epoch's last batch: -1.50 dB held out, "
        "-1.50 dB training images; for the other 7 saves: +1.29 and +1.29 dB.")


def test_each_step_to_the_stronger_denoiser_is_compared_on_the_seeds_both_runs_have(tmp_path):
    import json
    import make_figures

    def network(name, seed, psnr, iterations=330):
        return {'name': name, 'seed': seed, 'noise_level': 1.0, 'held_out_psnr': psnr, 'train_psnr': psnr + 1,
                'iterations': iterations, 'wall_seconds': 60.0 * iterations / 330}

    def classical(name, seed, psnr):
        return {'name': name, 'seed': seed, 'noise_level': 1.0, 'held_out_psnr': psnr}
    results = {'networks': [network('unet', 1, 20.0), network('unet', 2, 21.0), network('unet', 3, 22.0),
                            network('residual-unet', 1, 23.0), network('residual-unet', 2, 25.0),
                            {**network(make_figures.DENOISER, 1, 30.0, 3300), 'last_save_psnr': 29.8, 'self_ensemble_psnr': 30.5},
                            network(make_figures.DENOISER, 2, 31.0, 3300),
                            {**network('residual-unet', 1, 9.0), 'noise_level': 0.5}],  # another noise: not used
               'classical': [classical('noisy input', 1, 40.0), classical('BM3D', 1, 18.0), classical('median', 1, 19.0),
                             classical('BM3D', 2, 20.0), classical('median', 2, 17.0)]}
    path = tmp_path / 'results.json'
    path.write_text(json.dumps(results))
    lines = make_figures.denoiser_section(str(path)).splitlines()
    rows = {line.split('|')[2].strip().split(' (')[0]: line for line in lines if line.startswith('| ')}
    assert rows['unet'] == '| 1 | unet (3 seeds) | 330 | 22.00 ± 1.00 | 21.00 ± 1.00 | - | 1.0 min |'
    # 23 - 20 and 25 - 21, on seeds 1 and 2 only
    assert rows['residual-unet'] == '| 2 | residual-unet (2 seeds) | 330 | 25.00 ± 1.41 | 24.00 ± 1.41 | +3.50 ± 0.71 vs 1 | 1.0 min |'
    assert 'unet+cosine' not in rows  # no runs: no row
    assert rows[make_figures.DENOISER].endswith('| 3,300 | 31.50 ± 0.71 | 30.50 ± 0.71 | - | 10.0 min |')  # its reference never ran
    # the best filter of each seed, never the noisy input: 30 - 19 and 31 - 20
    assert lines[-3].endswith('seed 1: +11.00 dB over median; seed 2: +11.00 dB over BM3D (mean +11.00 ± 0.00 dB '
                              'over 2 seeds).')
    # the self-ensemble's margin only where it was measured (seed 2's checkpoint was gone): 30.5 - 19
    assert 'averaged over the eight symmetries' in lines[-1] and lines[-1].endswith(
        'seed 1: 29.80 → 30.50 dB, +11.50 dB over median (one seed so far).')


def test_the_main_experiments_table_leaves_the_denoisers_intermediate_steps_to_their_own_table(tmp_path, monkeypatch):
    import make_figures
    monkeypatch.setattr(make_figures, 'FIGURES', str(tmp_path))
    names = [line.split('|')[1].strip().split(' (')[0] for line in make_figures.experiments_section().splitlines()
             if line.startswith('| ') and not line.startswith('| method')]
    assert {'spec', 'unet', 'BM3D', make_figures.DENOISER} <= set(names)
    assert not {'unet+cosine', 'residual-unet', 'residual-unet+cosine-150ep'} & set(names)


def test_the_self_ensemble_table_is_what_the_shipped_denoiser_gives():
    import make_figures
    fresh = make_figures.self_ensemble_section()
    shown = re.search(r'<!-- BEGIN self-ensemble -->\n(.*?)<!-- END self-ensemble -->', open(REPORT).read(), re.S).group(1)
    rows = lambda text: [line.split('|')[1].strip() for line in text.splitlines() if line.startswith('|')]  # noqa: E731
    assert rows(fresh) == rows(shown) and len(rows(shown)) == 4  # header, rule, as trained, averaged
    # the split is rebuilt from the weights' own settings, in this clone's data/: the same PSNRs to the
    # last digit or two (another CPU class rounds the network's floats differently)
    for mine, theirs in zip(numbers(fresh), numbers(shown)):
        assert abs(mine - theirs) <= 0.02
    row = lambda label: numbers(next(line for line in fresh.splitlines() if line.startswith(f'| {label}')))  # noqa: E731
    (plain, plain_margin), (averaged, averaged_margin) = row('as trained'), row('averaged')
    assert averaged > plain and averaged_margin - plain_margin == pytest.approx(averaged - plain, abs=0.011)
