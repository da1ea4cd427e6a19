"""Write your name and student ID into every place the assignment asks for them ("both on your report and
in your code"): the header line of each script, the notebook's title cell and the report's title; then
rebuild report.pdf where pandoc and pdflatex are installed.  Run it again to change them.

    python -m report.sign --name "Ada Lovelace" --student-id u1234567
"""
import json
import os
import re
import shutil
import subprocess
import sys

from dae import cli
from dae.files import write_text_atomic

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SCRIPTS = ('models.py', 'check_models.py', 'asgn6.py', 'plot_loss.py', 'denoise.py')
NOTEBOOK = 'asgn6.ipynb'
REPORT = os.path.join('report', 'report.md')
HEADER = re.compile(r'^# COMP4680/8650 Assignment 6 -- Name: .*?  Student ID: .*$', re.M)
NOTEBOOK_LINE = re.compile(r'^\*\*Name:\*\* .*?  \*\*Student ID:\*\* .*$', re.M)
AUTHOR = re.compile(r'^author: .*$', re.M)


def signed(text, pattern, line, where):
    """`text` with the one line `pattern` finds replaced by `line`."""
    new, count = pattern.subn(lambda _: line, text, count=1)
    if count != 1:
        raise cli.Failure(f'{where}: no name and student ID line to fill in (was it edited by hand?)')
    return new


def sign(root, name, student_id):
    """The changed files' paths, relative to root."""
    for script in SCRIPTS:
        path = os.path.join(root, script)
        with open(path) as f:
            text = f.read()
        line = f'# COMP4680/8650 Assignment 6 -- Name: {name}  Student ID: {student_id}'
        write_text_atomic(path, signed(text, HEADER, line, script))
    path = os.path.join(root, NOTEBOOK)
    with open(path) as f:
        notebook = json.load(f)
    title = ''.join(notebook['cells'][0]['source'])
    title = signed(title, NOTEBOOK_LINE, f'**Name:** {name}  **Student ID:** {student_id}', NOTEBOOK)
    notebook['cells'][0]['source'] = title.splitlines(keepends=True)
    write_text_atomic(path, json.dumps(notebook, indent=1, ensure_ascii=False) + '\n')
    path = os.path.join(root, REPORT)
    with open(path) as f:
        text = f.read()
    author = f'author: "Name: {name} `\\\\quad`{{=latex}} Student ID: {student_id}"'
    write_text_atomic(path, signed(text, AUTHOR, author, REPORT))
    return [*SCRIPTS, NOTEBOOK, REPORT]


def checked_name(text):
    """A name of letters, spaces, hyphens, apostrophes and full stops: nothing the report's LaTeX would
    read as a command."""
    text = ' '.join(text.split())
    if not re.fullmatch(r"[^\W\d_](?:[^\W\d_]|[ .'-])*", text):
        raise cli.UsageError(f'--name {text!r}: use letters, spaces, hyphens, apostrophes and full stops')
    return text


def main(argv=None):
    parser = cli.ArgumentParser('sign.py', __doc__)
    parser.add_argument('--name', required=True, help='your name as it should appear (no default)')
    parser.add_argument('--student-id', required=True, help='your student ID, letters and digits (no default)')
    parser.add_argument('--no-build', action='store_true', help='only fill in the files; leave report.pdf as it '
                        'is (default: rebuild it where pandoc and pdflatex are installed)')
    args = parser.parse_args(argv)

    def run():
        name = checked_name(args.name)
        if not re.fullmatch(r'[A-Za-z0-9]+', args.student_id):
            raise cli.UsageError(f'--student-id {args.student_id!r}: use letters and digits only')
        for path in sign(ROOT, name, args.student_id):
            print(f'signed {path}')
        if args.no_build:
            return 0
        if not (shutil.which('pandoc') and shutil.which('pdflatex')):
            print('warning: report/report.pdf is NOT signed: it still carries no name, because pandoc or pdflatex is '
                  'not installed. Install them (apt-get install pandoc texlive-latex-base texlive-latex-recommended '
                  'texlive-fonts-recommended lmodern), then run report/build; report.md and the scripts are signed',
                  file=sys.stderr)
            return 0
        if subprocess.run(['bash', os.path.join(ROOT, 'report', 'build')]).returncode:
            raise cli.Failure('report/build failed (its output is above); the files are signed')
        return 0
    return cli.report_errors('sign.py', run)


if __name__ == '__main__':
    sys.exit(main())
