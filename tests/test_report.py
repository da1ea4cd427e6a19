"""The report links only figures that exist, and its generated layer table matches models.py."""
import os
import re
import sys

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
    assert [line.split('|')[1] for line in fresh.splitlines()[:8]] == [line.split('|')[1] for line in shown.splitlines()[:8]]
    # the same figures, up to the last digit (another CPU class rounds the encoder's floats differently)
    for mine, theirs in zip(numbers(fresh), numbers(shown)):
        assert abs(mine - theirs) <= 0.02 * abs(theirs) + 0.1
    assert (tmp_path / 'latent-histogram.png').exists()
