#!/usr/bin/env python3
"""tests/cli/readme_examples.py — the README's C++ examples are the programs the test suite
compiles: for every tests/unit/test_readme_*_example.cpp, the text between its
"// ---- BEGIN README" and "// ---- END README" markers must appear verbatim in README.md.

  readme_examples.py README TEST_DIR
"""
import glob
import os
import sys


def main():
    readme_path, test_dir = sys.argv[1], sys.argv[2]
    readme = open(readme_path, encoding='utf-8').read()
    files = sorted(glob.glob(os.path.join(test_dir, 'test_readme_*_example.cpp')))
    if not files:
        raise SystemExit('no test_readme_*_example.cpp in %s' % test_dir)
    for path in files:
        lines = open(path, encoding='utf-8').read().split('\n')
        begin = [i for i, l in enumerate(lines) if l.startswith('// ---- BEGIN README')]
        end = [i for i, l in enumerate(lines) if l.startswith('// ---- END README')]
        if len(begin) != 1 or len(end) != 1 or end[0] <= begin[0]:
            raise SystemExit('%s: expected one BEGIN/END README marker pair' % path)
        snippet = '\n'.join(lines[begin[0] + 1:end[0]]).strip('\n')
        if snippet not in readme:
            raise SystemExit('%s: its example is not in %s verbatim' % (path, readme_path))
        print('%s: in the README verbatim (%d lines)' % (os.path.basename(path), snippet.count('\n') + 1))


if __name__ == '__main__':
    main()
