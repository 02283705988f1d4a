"""``python -m emollama`` is the ``emollama`` command."""

from emollama.cli import main

main()
