"""One call's way through ``@recorded``, in three parts.

- :mod:`~memo_replay.call.plan` — the decision table: mode × what the store has → what to do
  (pure, no I/O);
- :mod:`~memo_replay.call.replayer` — finds the call's recording and tells what it found
  (absent, found, expired, written by another serializer version, corrupt), decoded;
- :mod:`~memo_replay.call.recorder` — around the real call: serializes, redacts, scans for
  secrets and hands the recording to the store.

:class:`~memo_replay.decorator.Memo` composes them; see docs/decisions.md for the picture.
"""
