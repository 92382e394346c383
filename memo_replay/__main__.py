"""``python -m memo_replay`` is the ``memo-replay`` command."""

from memo_replay.cli import main

raise SystemExit(main())
