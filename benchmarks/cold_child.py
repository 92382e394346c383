"""Child process of the cold-path cases (``benchmarks/cold.py``): one contender, one process.

    python cold_child.py CONTENDER N [--record] [--dir DIR] [--url URL]

``benchmarks/cold.py`` copies this file into the cold project (a fresh ``git clone`` of it each
round) and runs it there in a fresh interpreter, once per contender and round. It imports only
``time`` before the clock starts and only what its contender needs after it, so that the
parent's "process wall minus a bare ``python -c pass``" is that contender's cost of answering N
calls from a fresh process: imports, opening its store, N answers, exit.

Contenders (every one answers ``lookup(i)`` for i in 0..N-1 with ``{"i": i, "square": i*i}``):

``memo``         ``@recorded`` ``lookups.lookup`` (strict replay: the parent sets MEMO_MODE)
``floor-files``  the floor: ``json.loads`` of each entry file of ``fixtures_store/lookups.lookup``
``floor-onefile`` one JSON file holding every result (``results.json``, as a hand-written
                 recorder keeps them): one ``json.load``, then N dict lookups
``diskcache``    ``diskcache.Cache(DIR).get(i)`` on a cache a previous process filled
``joblib``       ``joblib.Memory(DIR).cache``'d ``lookup`` (``joblib_lookups.py``)
``vcrpy``        ``urllib.request.urlopen(URL/i)`` inside ``vcr.use_cassette(DIR,
                 record_mode="none")``: nothing reaches the network, a miss raises

With ``--record`` the contender records instead (memo: the parent sets MEMO_MODE=record;
floor-onefile writes ``results.json``; diskcache sets N keys; joblib and vcrpy call for real —
vcrpy against the local ``http.server`` at URL, ``record_mode="all"``).

The last line of stdout is a JSON report: ``work_s`` (script start to the last answer, in
process), ``first_s`` (the first answer, imports included) and ``rest_s`` (answers 2..N).
Results are checked after the clock stops; a wrong or missing result exits non-zero.
"""

from __future__ import annotations

import time

STARTED = time.perf_counter()

import os  # noqa: E402
import sys  # noqa: E402

FUNCTION_DIR = os.path.join("fixtures_store", "lookups.lookup")


def expected(i: int) -> dict[str, int]:
    return {"i": i, "square": i * i}


def answers(contender: str, n: int, directory: str, url: str, record: bool) -> tuple:
    """The function answering ``i`` for ``contender``, and what to run after the last call.

    (No ``typing`` import for annotations: the clock is running, and the floors import only
    ``json``.)"""
    if contender == "memo":
        from lookups import lookup

        return lookup, lambda: None
    if contender == "floor-files":
        import json

        names = iter(sorted(os.listdir(FUNCTION_DIR)))

        def read_entry(i: int) -> object:
            with open(os.path.join(FUNCTION_DIR, next(names)), "rb") as file:
                return json.loads(file.read())

        return read_entry, lambda: None
    if contender == "floor-onefile":
        import json

        if record:
            results: dict = {}

            def keep(i: int) -> object:
                results[str(i)] = expected(i)
                return results[str(i)]

            def save() -> None:
                with open("results.json", "w") as file:
                    json.dump(results, file)

            return keep, save
        with open("results.json", "rb") as file:
            loaded = json.loads(file.read())
        return lambda i: loaded[str(i)], lambda: None
    if contender == "diskcache":
        from diskcache import Cache

        cache = Cache(directory)
        if record:
            def put(i: int) -> object:
                cache.set(i, expected(i))
                return expected(i)

            return put, cache.close
        return cache.get, cache.close
    if contender == "joblib":
        import joblib_lookups

        def check() -> None:
            if not record and joblib_lookups.BODY_RAN:
                sys.exit(f"joblib ran the function {joblib_lookups.BODY_RAN} times: not hits")

        return joblib_lookups.lookup, check
    if contender == "vcrpy":
        import json
        import urllib.request

        import vcr

        context = vcr.use_cassette(directory, record_mode="all" if record else "none")
        context.__enter__()

        def fetch(i: int) -> object:
            with urllib.request.urlopen(f"{url}/{i}") as response:
                return json.loads(response.read())

        return fetch, lambda: context.__exit__(None, None, None)
    raise SystemExit(f"cold_child: unknown contender {contender!r}")


def main() -> int:
    args = sys.argv[1:]
    record = "--record" in args
    options = {args[k]: args[k + 1] for k in range(len(args) - 1)
               if args[k] in ("--dir", "--url")}
    contender, n = args[0], int(args[1])
    answer, finish = answers(contender, n, options.get("--dir", ""), options.get("--url", ""),
                             record)
    results = [answer(0)]
    first = time.perf_counter()
    results += [answer(i) for i in range(1, n)]
    done = time.perf_counter()
    finish()
    if contender == "floor-files":
        # Entry files hold more than the result; the floor only reads and decodes them all.
        if len(results) != n or not all(isinstance(r, dict) for r in results):
            sys.exit("floor-files: fewer entry files than calls")
    elif results != [expected(i) for i in range(n)]:
        wrong = next(i for i, r in enumerate(results) if r != expected(i))
        sys.exit(f"{contender}: answer {wrong} is {results[wrong]!r}, not {expected(wrong)!r}")
    import json

    print(json.dumps({"contender": contender, "n": n, "work_s": done - STARTED,
                      "first_s": first - STARTED, "rest_s": done - first}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
