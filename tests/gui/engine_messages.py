"""Every message the engine can send to the window, read from the engine's source.

The engine builds its messages as f-strings (sometimes in a variable, with a helper's
phrase inside); each place that hands a message to an event (``Notice``, ``Failed``,
``Paused``, ``Retrying``), an error (``OssError``, ``UploadError``...) or a walk problem is
found here with ``ast`` and rendered as a sample: every value filled in becomes ``'x'``, and
each branch of a conditional expression gives its own sample. A message added to the
engine is found the same way, so a test over these samples fails until the window can say
it in Chinese.
"""

from __future__ import annotations

import ast
import itertools
import re
from dataclasses import dataclass
from pathlib import Path

import ossdesk

PACKAGE = Path(ossdesk.__file__).parent
SOURCES = (*sorted((PACKAGE / "core").glob("*.py")), PACKAGE / "ui" / "engine_adapter.py",
           PACKAGE / "ui" / "engine_process.py",
           PACKAGE / "credentials.py")  # a row's credentials are read as it starts
VALUE = "'x'"
"""What each value put into a message becomes in a sample."""

# Callable name -> (position of the message argument, keyword names holding a message).
_SINKS: dict[str, tuple[int | None, tuple[str, ...]]] = {
    "Notice": (None, ("message",)),
    "Failed": (None, ("message",)),
    "Paused": (None, ("message",)),
    "Retrying": (None, ("reason",)),
    "WalkProblem": (1, ("message",)),
    "OssError": (2, ("message", "reason")),
    "UploadError": (0, ("message", "reason")),
    "SourceChanged": (0, ()),
    "StoreError": (0, ()),
    "StoreBusy": (0, ()),
    "EngineUnavailable": (0, ()),
    "_ended": (0, ()),
    "FileTooLarge": (0, ()),
    "KeyringUnavailable": (0, ()),
    "SecretMissing": (0, ()),
    "ProfileNotFound": (0, ()),
    "_pause": (2, ()),
    "_record_paused": (2, ()),
    "_start_over": (1, ("why",)),
}
# Helpers whose return values are phrases of the engine's messages.
_PHRASES = {"check_key", "failure_reason", "_trust_hint", "_credential_hints", "_usable_backend"}


@dataclass(frozen=True)
class _Text:
    text: str
    branches: frozenset[tuple[str, bool]] = frozenset()

    def taking(self, test: str, branch: bool) -> _Text:
        return _Text(self.text, self.branches | {(test, branch)})


def _joined(pieces: list[list[_Text]]) -> list[_Text]:
    """Each way of putting one text of each piece together, the branches agreeing."""
    out = []
    for combo in itertools.product(*pieces):
        branches = frozenset().union(*(t.branches for t in combo))
        if len({test for test, _ in branches}) == len(branches):
            out.append(_Text("".join(t.text for t in combo), branches))
    return out


@dataclass(frozen=True)
class Sample:
    where: str  # file:line
    text: str


def _name(func: ast.expr) -> str | None:
    if isinstance(func, ast.Name):
        return func.id
    if isinstance(func, ast.Attribute):
        return func.attr
    return None


class _Module:
    def __init__(self, path: Path) -> None:
        self.path = path
        self.tree = ast.parse(path.read_text(encoding="utf-8"))
        self.functions = [n for n in ast.walk(self.tree) if isinstance(n, ast.FunctionDef)]
        self.defined = {f.name: f for f in self.functions}

    def scopes(self, line: int) -> list[ast.AST]:
        around = [f for f in self.functions if f.lineno <= line <= (f.end_lineno or 0)]
        return [*sorted(around, key=lambda f: -f.lineno), self.tree]

    def render(self, node: ast.expr, line: int, depth: int = 0,
               hiding: frozenset[str] = frozenset()) -> list[_Text]:
        """Every text ``node`` can be (values as :data:`VALUE`), each with the branches
        of the conditions it took: one condition takes one branch in one message."""
        if depth > 8:
            return [_Text(VALUE)]

        def again(child: ast.expr, hide: frozenset[str] = hiding) -> list[_Text]:
            return self.render(child, line, depth + 1, hide)

        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            return [_Text(node.value)]
        if isinstance(node, ast.JoinedStr):
            return _joined([again(v.value) if isinstance(v, ast.FormattedValue)
                            else [_Text(str(v.value))] if isinstance(v, ast.Constant)
                            else [_Text(VALUE)] for v in node.values])
        if isinstance(node, ast.IfExp):
            test = ast.dump(node.test)
            return ([t.taking(test, True) for t in again(node.body)]
                    + [t.taking(test, False) for t in again(node.orelse)])
        if isinstance(node, ast.BoolOp):  # `endpoint or "the OSS endpoint"`
            return [text for value in node.values for text in again(value)]
        if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
            return _joined([again(node.left), again(node.right)])
        if isinstance(node, ast.Tuple):
            return [text for item in node.elts for text in again(item)]
        if isinstance(node, ast.Name) and node.id not in hiding:
            return self._variable(node.id, line, depth, hiding)
        if isinstance(node, ast.Call):
            func = node.func
            if isinstance(func, ast.Attribute) and func.attr == "format":
                return [_Text(re.sub(r"\{[^{}]*\}", VALUE, t.text), t.branches)
                        for t in again(func.value)]
            name = _name(func)
            if name in _PHRASES and name in self.defined:
                return self.returns(self.defined[name])
        return [_Text(VALUE)]

    def _variable(self, name: str, line: int, depth: int,
                  hiding: frozenset[str]) -> list[_Text]:
        """The texts a local variable or module constant holds at ``line``: each plain
        assignment before it, and each of those with what ``+=`` adds after it."""
        for scope in self.scopes(line):
            body = scope.body if isinstance(scope, ast.FunctionDef | ast.Module) else []
            steps = sorted(
                (n for stmt in body for n in ast.walk(stmt)
                 if isinstance(n, ast.Assign | ast.AugAssign) and n.lineno < line
                 and any(isinstance(t, ast.Name) and t.id == name
                         for t in (n.targets if isinstance(n, ast.Assign) else [n.target]))),
                key=lambda n: n.lineno)
            if isinstance(scope, ast.Module):
                steps = [s for s in steps if s in scope.body]
            if not steps:
                continue
            texts: list[_Text] = []
            last: list[_Text] = []
            for step in steps:
                rendered = self.render(step.value, step.lineno, depth + 1, hiding | {name})
                if isinstance(step, ast.Assign):
                    last = rendered
                elif [t.text for t in last] != [VALUE]:  # not a count
                    last = _joined([last, rendered])
                texts += last
            return texts
        return [_Text(VALUE)]

    def returns(self, function: ast.FunctionDef) -> list[_Text]:
        return [text for node in ast.walk(function)
                if isinstance(node, ast.Return) and node.value is not None
                for text in self.render(node.value, node.lineno, 1)]

    def samples(self) -> list[Sample]:
        found: list[Sample] = []
        where = self.path.relative_to(PACKAGE.parent).as_posix()
        for call in ast.walk(self.tree):
            if not isinstance(call, ast.Call):
                continue
            args: list[ast.expr] = []
            sink = _SINKS.get(_name(call.func) or "")
            if sink is not None:
                index, keywords = sink
                if index is not None and len(call.args) > index:
                    args.append(call.args[index])
                args += [k.value for k in call.keywords if k.arg in keywords]
            elif (isinstance(call.func, ast.Attribute) and call.func.attr == "append"
                  and isinstance(call.func.value, ast.Name)
                  and call.func.value.id == "notices"):
                args += call.args
            for arg in args:
                found += [Sample(f"{where}:{call.lineno}", t.text)
                          for t in self.render(arg, call.lineno)]
        for function in self.functions:
            if function.name in _PHRASES:
                found += [Sample(f"{where}:{function.lineno}", t.text)
                          for t in self.returns(function)]
        return found


def engine_messages() -> list[Sample]:
    """Each distinct message (as a sample) the engine's source can send to the window."""
    seen: set[str] = set()
    samples = []
    for path in SOURCES:
        for sample in _Module(path).samples():
            if sample.text.strip() and sample.text != VALUE and sample.text not in seen:
                seen.add(sample.text)
                samples.append(sample)
    return samples


if __name__ == "__main__":
    for sample in engine_messages():
        print(f"{sample.where} | {sample.text}")
