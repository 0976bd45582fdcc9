"""Judging answers outside the learner's kernel: the grader's defence against tampering.

A learner's code runs in the same kernel as the check cells, so it can redefine
``ex.q1.check``, patch :class:`~tlcourse.exercises.Question`, replace modules in
``sys.modules`` or install an IPython input transformer that rewrites every later cell.
No verdict computed in that kernel can be trusted. So under grading a check cell does
two things (the first is a hidden test, invisible in the student release)::

    ### BEGIN HIDDEN TESTS
    from tlcourse.grading.answers import record as _tlcourse_record
    _tlcourse_record("getting_started.q1", n_params)      # same arguments as the check
    ### END HIDDEN TESTS
    ex.q1.check(n_params)                                   # what the learner sees

:func:`record` turns the answer into **plain data** and emits it as a display output
of MIME type :data:`MIME`. After the kernel is gone, the grading process (which never
runs learner code) reads that output, decodes it with :func:`decode` (JSON only; plain
values, NumPy arrays of numbers, DataFrames) and runs the question's own checker on it
(:func:`judge`). A cell scores only if nbgrader saw it pass *and* this independent
verdict is "correct".

Whatever a tampered kernel emits is, at worst, some answer: the grader judges it like
any other, so forging the record gains nothing that typing that answer would not.

A function answer cannot travel as data; :func:`record` runs the question's checker in
the kernel with the function wrapped, and records each call's arguments and result.
The grader then runs the checker again with a *replay* function that returns the
recorded result for exactly the arguments the grader's checker passes, call by call;
any other argument is judged incorrect. The grader's inputs come from the grader's
checker, so a forged record still has to hold the right outputs for them.

A live model cannot travel either. A question whose answer is one splits its checker
(:meth:`~tlcourse.exercises.Question.observe` / ``_judge``): :func:`record` runs
``observe`` in the kernel — the learner's code acting on the checker's own inputs — and
records the plain data it returns (which weights train, the loaded weights…); the grader
runs ``_judge`` on that data. This is the one place where the grader relies on something
the kernel computed: a record forged to hold a correct observation would pass. Writing
such a record takes more skill than the exercise it fakes, and the observation is still
judged by the grader's own rules.
"""

from __future__ import annotations

import base64
import json
import math
import sys
from collections.abc import Callable
from typing import Any

#: MIME type of the output a hidden test emits; no notebook front end renders it.
MIME = "application/vnd.tlcourse.answer+json"
#: Largest encoded answer the grader reads (bytes).
MAX_BYTES = 4_000_000
_MAX_DEPTH = 40
_NUMERIC_KINDS = "biufc"


class Unreadable(Exception):
    """The answer cannot be turned into plain data (or back)."""


# ------------------------------------------------------------------ encoding (kernel)
def encode(value: Any, *, _depth: int = 0, _functions: dict | None = None) -> Any:
    """Plain JSON for an answer: values, containers, arrays, DataFrames; else ``__unsupported__``.

    Subclasses become their base type (a ``dict`` subclass is encoded as its items), so no
    behaviour of the learner's classes survives the trip.
    """
    if _depth > _MAX_DEPTH:
        raise Unreadable("nested too deeply")
    nxt = _depth + 1
    from tlcourse.exercises.core import ____

    if value is None or type(value) is bool:
        return value
    if value is ____:
        return {"__placeholder__": True}
    if isinstance(value, str):
        return str.__str__(value)
    if isinstance(value, int):
        return int.__index__(value)
    if isinstance(value, float):
        f = float.__float__(value)
        return f if math.isfinite(f) else {"__float__": repr(f)}
    if isinstance(value, complex):
        return {"__complex__": [repr(complex.__complex__(value).real), repr(complex.__complex__(value).imag)]}
    np = _numpy()
    if np is not None:
        if isinstance(value, np.ndarray):
            arr = np.asarray(value)
            if arr.dtype.kind not in _NUMERIC_KINDS or arr.dtype.hasobject:
                return {"__unsupported__": f"array of dtype {arr.dtype}"}
            arr = np.ascontiguousarray(arr)
            return {"__ndarray__": {"dtype": arr.dtype.str, "shape": list(arr.shape),
                                    "data": base64.b64encode(arr.tobytes()).decode()}}
        if isinstance(value, np.generic):
            if value.dtype.kind not in _NUMERIC_KINDS:
                return {"__unsupported__": f"NumPy scalar of dtype {value.dtype}"}
            return {"__npscalar__": {"dtype": value.dtype.str,
                                     "data": base64.b64encode(np.asarray(value).tobytes()).decode()}}
    torch = sys.modules.get("torch")  # frameworks only if the notebook imported one
    if torch is not None and isinstance(value, torch.Tensor):
        return {"__torch__": encode(value.detach().cpu().numpy(), _depth=nxt)}
    tf = sys.modules.get("tensorflow")
    if tf is not None and isinstance(value, (tf.Tensor, tf.Variable)):
        return {"__tf__": encode(value.numpy(), _depth=nxt)}
    pd = _pandas()
    if pd is not None:
        if isinstance(value, pd.DataFrame):
            cols = [encode(c, _depth=nxt) for c in value.columns]
            data = [encode(value[c].to_numpy(), _depth=nxt) if value[c].dtype.kind in _NUMERIC_KINDS
                    else [encode(v, _depth=nxt) for v in value[c].tolist()] for c in value.columns]
            return {"__dataframe__": {"columns": cols, "data": data}}
        if isinstance(value, pd.Series):
            return {"__series__": encode(value.tolist(), _depth=nxt)}
    if isinstance(value, list):
        return [encode(v, _depth=nxt, _functions=_functions) for v in list.__iter__(value)]
    if isinstance(value, tuple):
        return {"__tuple__": [encode(v, _depth=nxt, _functions=_functions) for v in tuple.__iter__(value)]}
    if isinstance(value, (set, frozenset)):
        items = [encode(v, _depth=nxt) for v in (set.__iter__(value) if isinstance(value, set)
                                                 else frozenset.__iter__(value))]
        items.sort(key=lambda x: json.dumps(x, sort_keys=True))  # the same order in every process
        return {"__frozenset__" if isinstance(value, frozenset) else "__set__": items}
    if isinstance(value, dict):
        return {"__dict__": [[encode(k, _depth=nxt), encode(dict.__getitem__(value, k), _depth=nxt,
                                                             _functions=_functions)]
                             for k in dict.__iter__(value)]}
    if callable(value) and _functions is not None and id(value) in _functions:
        return {"__function__": _functions[id(value)]}
    return {"__unsupported__": type(value).__name__}


def _numpy():
    try:
        import numpy

        return numpy
    except ImportError:  # pragma: no cover - numpy is a dependency
        return None


def _pandas():
    return sys.modules.get("pandas")  # only if the notebook uses it; never imported here


def question(question_id: str):
    """The question object, importing only its own topic module when it can."""
    import importlib

    from tlcourse.exercises import Question, get

    topic = question_id.split(".", 1)[0]
    try:
        module = importlib.import_module(f"tlcourse.exercises.{topic}")
    except ImportError:
        return get(question_id)
    for value in vars(module).values():
        if isinstance(value, Question) and value.id == question_id:
            return value
    return get(question_id)


# ------------------------------------------------------------------ recording (kernel)
class _Recorder:
    """Wraps a learner's function: records every call's arguments and result."""

    def __init__(self, fn: Callable):
        self.fn = fn
        self.calls: list[dict] = []

    def __call__(self, *args, **kwargs):
        entry = {"args": encode(args), "kwargs": encode(kwargs)}
        self.calls.append(entry)
        try:
            result = self.fn(*args, **kwargs)
        except Exception as err:
            entry["raised"] = {"type": type(err).__name__, "message": str(err)[:500]}
            raise
        entry["result"] = encode(result)
        return result


def record(question_id: str, *answer: Any, **context: Any) -> None:
    """Emit the answer to ``question_id`` as plain data for the grader (never raises)."""
    try:
        payload = _payload(question_id, answer, context)
    except Exception as err:  # noqa: BLE001 - an unreadable answer is judged, not raised
        payload = {"question": question_id, "unreadable": f"{type(err).__name__}: {err}"[:500]}
    from IPython.display import publish_display_data

    publish_display_data({MIME: payload})


def _payload(question_id: str, answer: tuple, context: dict) -> dict:
    from tlcourse.exercises.core import CORRECT, is_placeholder

    q = question(question_id)
    if q.observes() and answer and not any(is_placeholder(a) for a in answer):
        seen: list = []
        outcome = q.outcome_of(lambda: seen.append(q.observe(*answer, **context)))
        if outcome.status != CORRECT:  # observing failed: that is the verdict
            return {"question": question_id, "failed": {"status": outcome.status, "message": outcome.message}}
        return _sized({"question": question_id, "observed": encode(seen[0])})
    recorders: dict[int, _Recorder] = {}

    def wrap(v):
        if callable(v) and not isinstance(v, type) and not _is_data(v):
            rec = _Recorder(v)
            recorders[id(rec)] = rec
            return rec
        return v

    wrapped = tuple(wrap(a) for a in answer)
    wrapped_ctx = {k: wrap(v) for k, v in context.items()}
    if recorders:  # run the checker so that the learner's functions see the grader's inputs
        question(question_id).evaluate(*wrapped, **wrapped_ctx)
    functions = {i: {"calls": r.calls} for i, r in recorders.items()}
    return _sized({"question": question_id,
                   "args": encode(wrapped, _functions=functions),
                   "kwargs": encode(wrapped_ctx, _functions=functions)})


def _sized(out: dict) -> dict:
    if len(json.dumps(out)) > MAX_BYTES:
        return {"question": out["question"], "unreadable": f"the answer is larger than {MAX_BYTES} bytes"}
    return out


def _is_data(v) -> bool:
    np = _numpy()
    return np is not None and isinstance(v, (np.ndarray, np.generic))


# ------------------------------------------------------------------ decoding (grader)
class _Unsupported:
    def __init__(self, what: str):
        self.what = what

    def __repr__(self) -> str:
        return f"<{self.what}>"


def decode(obj: Any, *, _depth: int = 0) -> Any:
    """Plain Python values (and NumPy arrays, DataFrames) from :func:`encode`'s JSON."""
    if _depth > _MAX_DEPTH + 5:
        raise Unreadable("nested too deeply")
    nxt = _depth + 1
    if obj is None or type(obj) in (bool, float):
        return obj
    if type(obj) is int:  # JSON integers only come from hand-made payloads
        return obj
    if type(obj) is str:
        return obj
    if type(obj) is list:
        return [decode(v, _depth=nxt) for v in obj]
    if type(obj) is not dict or len(obj) != 1:
        raise Unreadable(f"unexpected {type(obj).__name__} in the record")
    (tag, v), = obj.items()
    if tag == "__float__":
        return float(_typed(v, str))
    if tag == "__complex__":
        re_, im = _typed(v, list)
        return complex(float(re_), float(im))
    if tag == "__placeholder__":
        from tlcourse.exercises import ____

        return ____
    if tag == "__tuple__":
        return tuple(decode(x, _depth=nxt) for x in _typed(v, list))
    if tag in ("__set__", "__frozenset__"):
        items = [decode(x, _depth=nxt) for x in _typed(v, list)]
        try:
            return set(items) if tag == "__set__" else frozenset(items)
        except TypeError as err:
            raise Unreadable(f"a set of unhashable values: {err}") from err
    if tag == "__dict__":
        out = {}
        for pair in _typed(v, list):
            k, val = _typed(pair, list)
            key = decode(k, _depth=nxt)
            try:
                out[key] = decode(val, _depth=nxt)
            except TypeError as err:
                raise Unreadable(f"an unhashable dict key: {err}") from err
        return out
    if tag == "__ndarray__":
        return _array(_typed(v, dict))
    if tag == "__npscalar__":
        d = _typed(v, dict)
        return _array({"dtype": d["dtype"], "shape": [], "data": d["data"]})[()]
    if tag == "__dataframe__":
        import pandas as pd

        d = _typed(v, dict)
        cols = [decode(c, _depth=nxt) for c in _typed(d["columns"], list)]
        data = [decode(c, _depth=nxt) for c in _typed(d["data"], list)]
        if len(cols) != len(data):
            raise Unreadable("DataFrame columns and data disagree")
        return pd.DataFrame(dict(zip(cols, data)))
    if tag == "__series__":
        import pandas as pd

        return pd.Series(decode(v, _depth=nxt))
    if tag == "__torch__":
        import torch

        return torch.from_numpy(_numeric(decode(v, _depth=nxt)))
    if tag == "__tf__":
        import tensorflow as tf

        return tf.constant(_numeric(decode(v, _depth=nxt)))
    if tag == "__function__":
        return _Replay(_typed(_typed(v, dict)["calls"], list))
    if tag == "__unsupported__":
        return _Unsupported(str(v)[:200])
    raise Unreadable(f"unknown tag {tag!r}")


def _numeric(x):
    import numpy as np

    if not isinstance(x, np.ndarray):
        raise Unreadable("a tensor record without an array")
    return x


def _typed(v, t):
    if type(v) is not t:
        raise Unreadable(f"expected {t.__name__}, got {type(v).__name__}")
    return v


def _array(d: dict):
    import numpy as np

    dtype = np.dtype(_typed(d["dtype"], str))
    if dtype.kind not in _NUMERIC_KINDS or dtype.hasobject or dtype.itemsize > 32:
        raise Unreadable(f"array dtype {dtype} is not allowed")
    shape = tuple(_typed(n, int) for n in _typed(d["shape"], list))
    if any(n < 0 for n in shape):
        raise Unreadable("negative array dimension")
    raw = base64.b64decode(_typed(d["data"], str), validate=True)
    if len(raw) != dtype.itemsize * math.prod(shape):
        raise Unreadable("array data does not match its shape")
    return np.frombuffer(raw, dtype=dtype).reshape(shape).copy()


class _Replay:
    """Stands in for a learner's function: returns its recorded results, call by call."""

    def __init__(self, calls: list):
        self.calls = calls
        self.n = 0

    def __call__(self, *args, **kwargs):
        from tlcourse.exercises import Incorrect

        if self.n >= len(self.calls):
            raise Incorrect("your function was not evaluated on all of the grader's inputs")
        call = _typed(self.calls[self.n], dict)
        self.n += 1
        if call.get("args") != encode(args) or call.get("kwargs") != encode(kwargs):
            raise Incorrect("your function was not evaluated on the grader's inputs")
        if "raised" in call:
            info = _typed(call["raised"], dict)
            name = str(info.get("type", "Exception"))
            message = str(info.get("message", ""))
            if name == "NotImplementedError":
                raise NotImplementedError(message)
            cls = type(name if name.isidentifier() else "Error", (Exception,), {})
            raise cls(message)
        if "result" not in call:
            raise Incorrect("your function did not return")
        return decode(call["result"])


def _unsupported_in(value, depth=0) -> str | None:
    if depth > _MAX_DEPTH + 5:
        return None
    if isinstance(value, _Unsupported):
        return value.what
    if isinstance(value, (list, tuple, set, frozenset)):
        for v in value:
            found = _unsupported_in(v, depth + 1)
            if found:
                return found
    if isinstance(value, dict):
        for v in list(value.keys()) + list(value.values()):
            found = _unsupported_in(v, depth + 1)
            if found:
                return found
    return None


# ------------------------------------------------------------------ judging (grader)
def judge(question_id: str, payload: Any):
    """The verdict (:class:`~tlcourse.exercises.Outcome`) on a recorded answer.

    Runs in the grading process with a freshly imported checker; ``payload`` is the
    JSON a hidden test emitted. Never raises: an unreadable record is "incorrect".
    """
    from tlcourse.exercises import INCORRECT, NOT_ATTEMPTED, Outcome

    def bad(why: str) -> Outcome:
        return Outcome(INCORRECT, why, question_id)

    try:
        if len(json.dumps(payload)) > MAX_BYTES + 1000:
            return bad("the recorded answer is too large")
        payload = json.loads(json.dumps(payload))  # plain dicts and lists (not NotebookNode)
        if type(payload) is not dict or payload.get("question") != question_id:
            return bad("the grader found no answer recorded for this question")
        if "unreadable" in payload:
            return bad(f"the grader could not read your answer ({str(payload['unreadable'])[:300]}); "
                       "use plain Python values, lists, dicts or NumPy arrays")
        q = question(question_id)
        if q.observes() and "failed" in payload:
            failed = _typed(payload["failed"], dict)
            status = failed.get("status")
            if status not in (INCORRECT, NOT_ATTEMPTED):
                return bad("the recorded answer is malformed")
            return Outcome(status, str(failed.get("message", ""))[:1000], question_id)
        if q.observes() and "observed" in payload:
            observation = decode(payload["observed"])
            what = _unsupported_in(observation)
            if what:
                return bad(f"the observation of your answer holds a {what} object, which the grader cannot read")
            from tlcourse.exercises.core import Observed

            return q.evaluate(Observed(observation))
        args = decode(payload.get("args"))
        kwargs = decode(payload.get("kwargs"))
        if type(args) is not tuple or type(kwargs) is not dict or not all(type(k) is str for k in kwargs):
            return bad("the recorded answer is malformed")
        what = _unsupported_in(args) or _unsupported_in(kwargs)
        if what:
            return bad(f"your answer holds a {what} object, which the grader cannot read; "
                       "use plain Python values, lists, dicts or NumPy arrays")
        return question(question_id).evaluate(*args, **kwargs)
    except Exception as err:  # noqa: BLE001 - never let a record break grading
        return bad(f"the grader could not read your answer ({type(err).__name__}: {str(err)[:200]})")


def payloads(cell) -> list:
    """The answer records among a cell's outputs."""
    out = []
    for o in cell.get("outputs", []) or []:
        data = o.get("data") if isinstance(o, dict) else None
        if isinstance(data, dict) and MIME in data:
            out.append(data[MIME])
    return out
