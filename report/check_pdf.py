"""Check that the PDF of report.md loses nothing: LaTeX reports no float too large and no page that
overflows, and every figure and table caption and the first words of every paragraph of report.md are
in the PDF's text, the paragraphs in their order.  Builds report.md afresh in a temp folder with the
same pandoc settings as report.pdf (figures as committed), so it reads LaTeX's log too.

    python -m report.check_pdf        # one line per problem, status 1 if there is any
"""
import os
import re
import subprocess
import sys
import tempfile
import unicodedata

from dae import cli

HERE = os.path.dirname(os.path.abspath(__file__))
PANDOC_OPTIONS = ['--include-in-header', 'header.tex', '--lua-filter', 'keep-tables-whole.lua',
                  '--variable', 'colorlinks=true', '--variable', 'fontsize=10pt', '--resource-path', '.']
LOST_IN_LOG = re.compile(r'Float too large|Overfull \\vbox')
WORDS = 6  # of each paragraph and caption, looked for in the PDF's text
BODY_PAGES, PAGES = 6, 7  # the report's length: six pages, then at most one of appendix


def build(markdown, folder):
    """(the PDF's text, LaTeX's log) of `markdown` (a file in report/), built in `folder`."""
    tex = os.path.join(folder, 'report.tex')
    subprocess.run(['pandoc', os.path.basename(markdown), '--standalone', '--output', tex, *PANDOC_OPTIONS],
                   cwd=os.path.dirname(markdown), check=True)
    for _ in range(2):  # the second pass settles references
        subprocess.run(['pdflatex', '-interaction=nonstopmode', '-output-directory', folder, tex],
                       cwd=os.path.dirname(markdown), capture_output=True)
    with open(os.path.join(folder, 'report.log'), errors='replace') as f:
        log = f.read()
    text = subprocess.run(['pdftotext', os.path.join(folder, 'report.pdf'), '-'], capture_output=True,
                          text=True, check=True).stdout
    return text, log


def letters(text):
    """Lower-case letters and digits alone: what survives LaTeX's ligatures, hyphens and spacing."""
    return re.sub(r'[^a-z0-9]', '', unicodedata.normalize('NFKC', text).lower())


def passages(markdown_text):
    """(captions, paragraphs) of report.md as plain words: figure and table captions, and every paragraph
    of prose, each cut to its first WORDS words."""
    text = re.sub(r'<!--.*?-->', '', markdown_text.split('\n---\n', 1)[1], flags=re.S)
    text = re.sub(r'\]\([^)]*\)(\{[^}]*\})?', ']', text)  # link and image targets, image attributes
    captions, paragraphs = [], []
    for block in re.split(r'\n\s*\n', text):
        block = block.strip()
        if block.startswith('!['):
            captions.append(block[2:].rsplit(']', 1)[0])
        elif block.startswith(': '):
            captions.append(block[2:])
        elif block and block[0].isalpha() or block.startswith('**'):
            paragraphs.append(block)
    return [words for words in map(first_words, captions) if words], \
        [words for words in map(first_words, paragraphs) if words]


def first_words(passage):
    """The first WORDS words, up to any math or LaTeX, which the PDF spells otherwise."""
    plain = re.split(r'[$\\]', re.sub(r'[*`]', '', passage))[0]
    return ' '.join(plain.split()[:WORDS])


def problems(markdown_text, pdf_text, log):
    """What the PDF lost, one line each."""
    found = [f'LaTeX: {line.strip()}' for line in log.splitlines() if LOST_IN_LOG.search(line)]
    pdf = letters(pdf_text)
    captions, paragraphs = passages(markdown_text)
    found += [f'caption not in the PDF: {caption!r}' for caption in captions if letters(caption) not in pdf]
    found += too_long(pdf_text)
    position = 0
    for paragraph in paragraphs:
        at = pdf.find(letters(paragraph), position)
        if at < 0:
            found.append(f'paragraph not in the PDF after the one before it: {paragraph!r}')
        else:
            position = at
    return found


def too_long(pdf_text):
    """Whether the body runs past BODY_PAGES or the whole past PAGES (the appendix starts at its heading)."""
    pages = pdf_text.rstrip('\f').split('\f')
    found = [f'{len(pages)} pages: at most {PAGES}'] if len(pages) > PAGES else []
    for number, page in enumerate(pages, 1):
        lines = [line.strip() for line in page.splitlines() if line.strip()]
        if 'Appendix' in lines:
            body_end = number if lines.index('Appendix') > 0 else number - 1
            break
    else:
        body_end = len(pages)
    if body_end > BODY_PAGES:
        found.append(f'the body ends on page {body_end}: at most {BODY_PAGES}')
    return found


def main(argv=None):
    parser = cli.ArgumentParser('check_pdf.py', __doc__)
    parser.add_argument('--markdown', default=os.path.join(HERE, 'report.md'),
                        help='the Markdown to build and check (default: report/report.md)')
    args = parser.parse_args(argv)

    def run():
        with open(args.markdown) as f:
            markdown_text = f.read()
        with tempfile.TemporaryDirectory() as folder:
            found = problems(markdown_text, *build(os.path.abspath(args.markdown), folder))
        for line in found:
            print(line)
        print(f'{len(found)} problem(s): the PDF loses something' if found else 'nothing lost')
        return cli.EXIT_FAILURE if found else 0
    return cli.report_errors('check_pdf.py', run)


if __name__ == '__main__':
    sys.exit(main())
