"""The report links only figures that exist, and its generated layer table matches models.py."""
import json
import os
import re
import shutil
import subprocess
import sys

import pytest
from PIL import Image

from conftest import ROOT
from report import make_figures

REPORT = os.path.join(ROOT, 'report', 'report.md')


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
    assert make_figures.layer_table() in open(REPORT).read()


def numbers(text):
    return [float(value) for value in re.findall(r'-?\d+\.\d+|\d+', text)]


def test_the_reports_latent_statistics_are_what_the_shipped_weights_give(tmp_path, monkeypatch):
    monkeypatch.setattr(make_figures, 'FIGURES', str(tmp_path))
    fresh = make_figures.latent_section()
    shown = re.search(r'<!-- BEGIN latents -->\n(.*?)<!-- END latents -->', open(REPORT).read(), re.S).group(1)
    labels = lambda text: [line.split('|')[1] for line in text.splitlines() if line.startswith('|')]  # noqa: E731
    assert labels(fresh) == labels(shown) and len(labels(shown)) == 7  # header, rule, five statistics
    # the same figures, up to the last digit (another CPU class rounds the encoder's floats differently)
    for mine, theirs in zip(numbers(fresh), numbers(shown)):
        assert abs(mine - theirs) <= 0.02 * abs(theirs) + 0.1


def test_saves_after_an_epochs_last_batch_are_told_apart_from_the_others():
    from dae.logs import Validation
    # 5 iterations per epoch, a save every 2: the saves at 10 and 20 follow an epoch's last batch
    psnrs = {2: 10.0, 4: 11.0, 6: 12.0, 8: 13.0, 10: 11.0, 12: 14.0, 14: 15.0, 16: 16.0, 18: 17.0, 20: 16.0}
    rows = [Validation(i, 0.1, p, 9.0, 0.1, p + 1, 9.0) for i, p in psnrs.items()]
    assert make_figures.epoch_end_dips(rows, 5) == (
        "Change from the save before, for the 2 saves that follow an epoch's last batch: -1.50 dB held out, "
        "-1.50 dB training images; for the other 7 saves: +1.29 and +1.29 dB.")


def test_the_largest_fall_after_a_short_batch_is_read_from_the_runs_files(tmp_path):
    from dae.logs import Validation, save_validation
    # 674 training images at batch 32: 22 iterations an epoch, the 22nd of 2 images; saves every 11 iterations
    falls = {'a': {11: 15.0, 22: 13.5, 33: 15.2, 44: 14.9}, 'b': {11: 15.0, 22: 14.0, 33: 10.0, 44: 14.0}}
    for name, psnrs in falls.items():
        (tmp_path / name / 'seed-1').mkdir(parents=True)
        save_validation(tmp_path / name / 'seed-1' / 'validation.csv',
                        [Validation(i, 0.1, p, 9.0, 0.1, p + 1, 9.0) for i, p in psnrs.items()])
    runs = {name: {1: {'train_images': 674}} for name in falls}
    assert make_figures.short_batch_drop(runs, tmp_path) == pytest.approx(1.5)  # a's 22; b's fall at 33 is not one
    assert make_figures.short_batch_drop({'b': runs['b']}, tmp_path) == pytest.approx(1.0)


def test_the_coda_compares_each_denoiser_with_the_filter_each_seed_chose_on_its_training_images(tmp_path):
    def network(name, seed, psnr, iterations=330, **extra):
        return {'name': name, 'seed': seed, 'noise_level': 1.0, 'held_out_psnr': psnr, 'train_psnr': psnr + 1,
                'iterations': iterations, 'wall_seconds': 60.0 * iterations / 330, 'machine': 'M',
                'held_out_images': 75, 'train_images': 674, **extra}

    def classical(name, seed, psnr, probe, corrected=True):
        return {'name': name, 'seed': seed, 'noise_level': 1.0, 'held_out_psnr': psnr, 'probe_psnr': probe,
                'corrected': corrected, 'parameter': 0.25}
    final = make_figures.LONG_CODA[0][0]
    results = {'development_seeds': [1],
               'networks': [network('unet', 1, 20.0), network('unet', 2, 21.0), network('unet', 3, 22.0),
                            network('residual-unet', 1, 23.0), network('residual-unet', 2, 25.0),
                            network(final, 1, 30.0, 3520, self_ensemble_psnr=30.5),
                            network(final, 2, 31.0, 3520, self_ensemble_psnr=31.5),
                            network(final, 3, 32.0, 3520, self_ensemble_psnr=32.4),
                            {**network('residual-unet', 1, 9.0), 'noise_level': 0.5}],  # another noise: not used
               'classical': [classical('noisy input + correction', 2, 40.0, 40.0),  # never the baseline
                             classical('BM3D', 2, 35.0, 35.0, corrected=False),  # nor a plain filter
                             classical('BM3D + correction', 2, 20.0, 21.0),
                             classical('median + correction', 2, 22.0, 20.0),
                             classical('BM3D + correction', 3, 19.0, 19.5),
                             classical('median + correction', 3, 18.0, 19.0)]}
    path = tmp_path / 'results.json'
    path.write_text(json.dumps(results))
    # test seeds only, each against the corrected filter that scored best on its training probe (BM3D on seed 2,
    # though the median scored better on the test images), never a plain filter or the noisy input
    text = make_figures.coda_section(str(path), speed_ratio=None)
    coda = {line.split('|')[1].strip(): line for line in text.splitlines() if line.startswith('| ')}
    assert coda['U-Net'] == '| U-Net | 330 | 21.50 ± 0.71 | +2.00 ± 1.41 |'  # 21 - 20 on seed 2, 22 - 19 on seed 3
    assert coda['residual U-Net'] == '| residual U-Net | 330 | 25.00 | +5.00 |'  # seed 2 only
    label = f'{make_figures.LONG_CODA[0][1]} (160 epochs)'  # 3,520 iterations of 22 an epoch
    assert coda[label] == f'| {label} | 3,520 | 31.50 ± 0.71 | +12.00 ± 1.41 |'
    assert coda['the same, 8 symmetries averaged'].endswith('| 31.95 ± 0.64 | +12.45 ± 1.34 |')
    assert make_figures.LONG_CODA[1][1] not in text  # not run: no row
    assert ('Minutes a run, mean of the seeds (same CPU, alone): U-Net, 330 iterations: 1.0; residual U-Net, 330: '
            '1.0; residual U-Net, 3,520: 10.7.') in text  # 60 s for 330 iterations, 640 s for 3,520


def test_the_unet_at_equal_wall_time_is_its_own_run_stopped_where_the_time_runs_out(tmp_path):
    from dae.logs import Validation, save_validation
    folder = tmp_path / 'unet' / 'seed-2'
    folder.mkdir(parents=True)
    # 674 training images at batch 32: 22 iterations an epoch, so the save at 66 follows a short batch
    save_validation(str(folder / 'validation.csv'),
                    [Validation(i, 0.1, 10.0 + i / 30, 9.0, 0.1, 11.0, 9.0) for i in range(30, 331, 30)] +
                    [Validation(66, 0.1, 99.0, 9.0, 0.1, 11.0, 9.0)])
    results = {'development_seeds': [1], 'networks': [{'name': 'unet', 'seed': 2, 'noise_level': 1.0,
                                                       'iterations': 330, 'train_images': 674}]}
    scores = make_figures.equal_time_unet(results, 0.5, runs=str(tmp_path))  # 165 iterations: saves 90, 120, 150
    assert scores == {2: (pytest.approx(14.0), 150)}


def test_the_variants_table_compares_each_with_the_assignments_model_on_the_same_seeds(tmp_path, monkeypatch):
    monkeypatch.setattr(make_figures, 'FIGURES', str(tmp_path))

    def run(name, seed, held_out, train, **extra):
        return {'name': name, 'seed': seed, 'noise_level': 1.0, 'held_out_psnr': held_out, 'train_psnr': train,
                'iterations': 1320, 'parameters': 1000, **extra}
    names = list(make_figures.Q3F_VARIANTS)
    networks = [run(name, seed, 14.0 + seed + index, 17.0 + seed) for index, name in enumerate(names)
                for seed in (1, 2, 3)]
    networks[1]['checkerboard_db'] = 3.0  # the assignment's model measured on seed 2 alone
    for row in networks[12:15]:  # the fifth variant on every seed
        row['checkerboard_db'] = -2.0 + row['seed']
    from dae.logs import Validation, save_validation
    for index, row in enumerate(networks):  # 674 images at 32: 22 iterations an epoch, the 22nd of 2 images
        row['train_images'] = 674
        (tmp_path / 'runs' / row['name'] / f'seed-{row["seed"]}').mkdir(parents=True)
        save_validation(tmp_path / 'runs' / row['name'] / f'seed-{row["seed"]}' / 'validation.csv',
                        [Validation(11, 0.1, 15.0, 9.0, 0.1, 16.0, 9.0),  # then a fall of 0.1 dB per seed
                         Validation(22, 0.1, 15.0 - 0.1 * row['seed'], 9.0, 0.1, 16.0, 9.0),
                         Validation(1089, 0.1, 15.0, 9.0, 0.1, 16.0, 9.0),  # epoch 50: scored 15.0
                         Validation(1309, 0.1, 15.0 + 0.1 * (index // 3), 9.0, 0.1, 16.0, 9.0)])  # by epoch 60
    path = tmp_path / 'results.json'
    path.write_text(json.dumps({'development_seeds': [1], 'networks': networks, 'classical': []}))
    table = make_figures.variants_section(str(path), tmp_path / 'runs', tmp_path / 'no-held-out-run')
    assert 'in these runs it falls by up to 0.3 dB held out from the save before.' in table  # test seeds 2 and 3
    # the last 10 epochs (from iteration 1,100): the mean of saves 11, 1089 and 1309 against that of 11 and 1089
    labels = make_figures.VARIANT_LABELS  # the first variant moved least, the sixth most: 0.5 / 3
    assert (f"the variants' scores moved by +0.00 ({labels[names[0]]}) to +0.17 dB ({labels[names[5]]}; "
            in table)
    assert (tmp_path / 'heldout-curves.png').exists()
    rows = [line for line in table.splitlines() if line.startswith('| ')][1:]
    assert rows[0] == "| the assignment's model | 1,000 | 19.50 ± 0.71 | 16.50 ± 0.71 | - | 3.00 ± 0.00 | +3.0 (2) |"
    assert rows[1].split(' | ')[4] == '+1.00 ± 0.00'  # paired on the test seeds 2 and 3
    assert rows[4].endswith('| +0.5 ± 0.7 |')  # measured on both test seeds: no seeds named


def test_the_notebooks_answer_cells_get_the_reports_text_and_say_whose_numbers_they_quote(tmp_path):
    notebook = {'cells': [{'cell_type': 'markdown', 'metadata': {}, 'source': ['<!-- ANSWER c: old -->\n', 'stale']},
                          {'cell_type': 'code', 'metadata': {}, 'source': ['<!-- ANSWER c: not a cell to touch']}]}
    path = tmp_path / 'n.ipynb'
    path.write_text(json.dumps(notebook))
    report = 'intro\n<!-- ANSWER c -->\n**Not fully.** The loss falls.\n<!-- END ANSWER c -->\n' \
             '<!-- ANSWER d -->\nBlobs.\n<!-- END ANSWER d -->\n'
    assert make_figures.sync_notebook(report, str(path)) == ['d']  # no cell for d
    cells = json.loads(path.read_text())['cells']
    text = ''.join(cells[0]['source'])
    assert text.endswith('**Not fully.** The loss falls.') and 'the 500-epoch run of seed 4680' in text \
        and 'stale' not in text
    assert cells[1]['source'] == ['<!-- ANSWER c: not a cell to touch']
    with pytest.raises(ValueError, match="answer 'c'"):
        make_figures.sync_notebook('no answers', str(path))


def test_the_notebook_numbers_tables_and_figures_as_the_pdf_does(tmp_path):
    text = ('![a](figures/loss.png)\n<!-- BEGIN check -->\n```\nno caption\n```\n<!-- END check -->\n'
            '<!-- BEGIN loss -->\n| a |\n|---|\n| 1 |\n\n: The loss.\n<!-- END loss -->\n![b](run/demo3/walk.png)\n'
            '<!-- BEGIN coda -->\n| b |\n|---|\n| 2 |\n\n: Denoisers: a caption.\n<!-- END coda -->\n')
    assert make_figures.report_labels(text) == {'loss.png': 'Figure 1', 'loss': 'Table 1', 'walk.png': 'Figure 2',
                                                'coda': 'Table 2'}  # the code block has no caption: no number
    path = tmp_path / 'report.md'
    path.write_text(text)
    assert make_figures.report_table('coda', str(path)) == '**Table 2.** Denoisers: a caption.\n\n| b |\n|---|\n| 2 |'


def test_the_committed_notebook_holds_the_reports_written_answers(tmp_path):
    copy = tmp_path / 'asgn6.ipynb'
    shutil.copy(os.path.join(ROOT, 'asgn6.ipynb'), copy)
    assert make_figures.sync_notebook(open(REPORT).read(), str(copy)) == []  # every answer has its cell
    assert copy.read_text() == open(os.path.join(ROOT, 'asgn6.ipynb')).read()  # and holds it already


def shipped_denoiser():
    """(weights file, experiment name) of the shipped denoiser: the name is in the .txt written beside it."""
    import denoise
    with open(denoise.SHIPPED_DENOISER.replace('.pt', '.txt')) as f:
        return denoise.SHIPPED_DENOISER, re.search(r'--only (\S+)`', f.read()).group(1)


@pytest.mark.slow
def test_the_shipped_denoiser_scores_what_its_run_recorded():
    import torch
    from dae import training
    from dae.denoising import load_model
    from dae.denoising import SelfEnsemble
    from experiments.run_experiments import split_digest, split_of_run
    path, name = shipped_denoiser()
    model, config = load_model(path, torch.device('cpu'))
    split, _ = split_of_run(config, os.path.join(ROOT, 'data'))
    with open(os.path.join(ROOT, 'experiments', 'results', 'results.json')) as f:
        row = next(row for row in json.load(f)['networks'] if row['name'] == name and row['seed'] == config.seed)
    assert row['held_out_set'] == split_digest(split.held_out)  # its results are of the images it never saw
    # half-precision weights, and another CPU class rounds the network's floats differently: a hundredth of a dB
    for net, key in ((model, 'last_save_psnr'), (SelfEnsemble(model), 'self_ensemble_psnr')):
        assert training.evaluate(net, split.held_out)[1] == pytest.approx(row[key], abs=0.02)


def test_the_image_the_readme_and_notebook_say_the_shipped_denoiser_never_saw_was_held_out_of_its_training():
    import torch
    from dae.denoising import load_model
    from experiments.run_experiments import split_of_run
    config = load_model(shipped_denoiser()[0], torch.device('cpu'))[1]
    split, _ = split_of_run(config, os.path.join(ROOT, 'data'))
    held_out = {os.path.basename(path) for path in split.held_out.paths}
    with open(os.path.join(ROOT, 'README.md')) as readme, open(os.path.join(ROOT, 'asgn6.ipynb')) as notebook:
        readme = re.findall(r'`(\d{4}\.png)`,\s+one of the 75 it never saw', readme.read())
        notebook = re.findall(r"denoise\.main\(\['data/pokemon/(\d{4}\.png)'", notebook.read())
    assert readme and notebook
    assert set(readme + notebook) <= held_out


@pytest.mark.parametrize('name', ['spec.pt', os.path.basename(shipped_denoiser()[0])])
def test_the_shipped_weights_name_no_folder_of_the_machine_that_trained_them(name):
    with open(os.path.join(ROOT, 'weights', name), 'rb') as f:
        content = f.read()
    for prefix in (b'/home/', b'/root/', b'/tmp/', b'/work/', b'/Users/', b'experiments/results/runs'):
        assert prefix not in content, prefix


@pytest.mark.slow
def test_one_command_signs_every_place_and_signs_again(tmp_path):
    """In a copy of what it touches and needs (the scripts, the notebook, report/, dae/), as a user's clone."""
    clone = tmp_path / 'clone'
    clone.mkdir()
    for name in ('models.py', 'check_models.py', 'asgn6.py', 'plot_loss.py', 'denoise.py', 'asgn6.ipynb'):
        shutil.copy(os.path.join(ROOT, name), clone / name)
    for folder in ('dae', 'report'):
        shutil.copytree(os.path.join(ROOT, folder), clone / folder, ignore=shutil.ignore_patterns('*.pdf', '*.png'))

    def sign(*argv):
        return subprocess.run([sys.executable, '-m', 'report.sign', *argv, '--no-build'], cwd=clone,
                              capture_output=True, text=True)
    for name, student_id in (('Ada Lovelace', 'u1234567'), ("Mary O'Neil-Smith", 'u7654321')):
        result = sign('--name', name, '--student-id', student_id)
        assert result.returncode == 0, result.stderr
        for script in ('models.py', 'check_models.py', 'asgn6.py', 'plot_loss.py', 'denoise.py'):
            first = (clone / script).read_text().splitlines()[0]
            assert first == f'# COMP4680/8650 Assignment 6 -- Name: {name}  Student ID: {student_id}'
        title = ''.join(json.loads((clone / 'asgn6.ipynb').read_text())['cells'][0]['source'])
        assert f'**Name:** {name}  **Student ID:** {student_id}' in title
        assert f'author: "Name: {name} `\\\\quad`{{=latex}} Student ID: {student_id}"' in \
            (clone / 'report' / 'report.md').read_text()
    result = sign('--name', r'\input{x}', '--student-id', 'u1')
    assert result.returncode == 2 and result.stderr.startswith('sign.py: error: --name')
    no_pandoc = {**os.environ, 'PATH': os.path.dirname(sys.executable)}  # python, and no pandoc or pdflatex
    result = subprocess.run([sys.executable, '-m', 'report.sign', '--name', 'Ada', '--student-id', 'u1'], cwd=clone,
                            capture_output=True, text=True, env=no_pandoc)
    assert result.returncode == 0 and 'report/report.pdf is NOT signed' in result.stderr
    assert 'apt-get install pandoc' in result.stderr


def test_the_pdf_check_names_a_lost_paragraph_a_lost_caption_and_an_overflowing_page():
    from report.check_pdf import problems
    markdown = ('---\ntitle: "t"\n---\n\nFirst paragraph here, all of it.\n\n![A figure of blobs](f.png)\n\n'
                '**Second** paragraph, with `code`.\n\n| a |\n|---|\n| 1 |\n\n: A table of ones\n')
    whole = ('First paragraph here, all of it.\nFigure 1: A ﬁgure of blobs\nSecond para-\ngraph, with code.\n'
             'A table of ones')
    assert problems(markdown, whole, 'nothing to see') == []  # ligatures, hyphens and markup do not count
    assert problems(markdown, whole.replace('Second para-\ngraph', 'Another'), '') == \
        ["paragraph not in the PDF after the one before it: 'Second paragraph, with code.'"]
    assert problems(markdown, 'Second paragraph, with code. First paragraph here, all of it.', '')[0] == \
        "caption not in the PDF: 'A figure of blobs'"
    assert problems(markdown, whole, 'Overfull \\vbox (30pt too high) has occurred while \\output is active') == \
        ['LaTeX: Overfull \\vbox (30pt too high) has occurred while \\output is active']


def test_the_pdf_check_holds_the_body_to_six_pages_and_the_whole_to_seven():
    from report.check_pdf import too_long
    page = 'Some text.\n1\n'
    body = [page] * 6
    assert too_long('\f'.join(body + ['Appendix\nTables.\n7\n']) + '\f') == []
    assert too_long('\f'.join(body + ['The end of Q3.\nAppendix\nTables.\n7\n'])) == \
        ['the body ends on page 7: at most 6']
    assert too_long('\f'.join(body + ['Appendix\n7\n', page])) == ['8 pages: at most 7']
    assert too_long('\f'.join([page] * 7)) == ['the body ends on page 7: at most 6']  # no appendix: all body


@pytest.mark.skipif(not (shutil.which('pandoc') and shutil.which('pdflatex') and shutil.which('pdftotext')),
                    reason='needs pandoc, pdflatex and pdftotext')
def test_the_pdf_check_builds_with_the_reports_settings_and_finds_every_passage(tmp_path):
    from report.check_pdf import build, letters, problems
    for name in ('header.tex', 'keep-tables-whole.lua'):
        shutil.copy(os.path.join(ROOT, 'report', name), tmp_path / name)
    Image.new('RGB', (200, 50), 'white').save(tmp_path / 'wide.png')
    markdown = '---\ntitle: "t"\n---\n\nA short paragraph.\n\n![A wide picture](wide.png)\n\nThe end of it.\n'
    (tmp_path / 'r.md').write_text(markdown)
    text, log = build(str(tmp_path / 'r.md'), str(tmp_path))
    assert letters('Figure 1: A wide picture') in letters(text) and problems(markdown, text, log) == []
    assert problems(markdown.replace('The end of it.', 'A paragraph the PDF lost.'), text, log) == \
        ["paragraph not in the PDF after the one before it: 'A paragraph the PDF lost.'"]


@pytest.mark.skipif(not (shutil.which('pandoc') and shutil.which('pdflatex') and shutil.which('pdftotext')),
                    reason='needs pandoc, pdflatex and pdftotext')
def test_the_report_pdf_loses_nothing(tmp_path):
    from report.check_pdf import build, problems
    with open(REPORT) as f:
        markdown = f.read()
    assert problems(markdown, *build(REPORT, str(tmp_path))) == []
