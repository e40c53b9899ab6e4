"""``python -m purebpf``: the same as the ``purebpf`` command."""

import sys

from purebpf.cli import main

sys.exit(main())
