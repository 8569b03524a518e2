"""The learning in freshly spawned processes, two at once where there are two CPUs, each with its own Z3 seed;
the first proof wins: the enumerated route's (:func:`clauses_prove.prove_learned`) and ``prove --parametric``'s
(:func:`parametric_learning.learn`, :data:`JOBS`).

Why a process of its own: the learning is greedy (each round learns from the counterexamples to
induction Z3 returns), and which counterexample Z3 returns depends on everything the process did
before: the terms the routes before it built (a bounded model check that got further under less
load builds more), when Python freed others, where they lie in memory. One command then proved a
variant on one run and gave up on the next (lazy_tlb_ipi at 4,3,3,3,S=2: its first stage in 3, 8 or 9
rounds; PROVE.md, 6 Dec). Own Z3 contexts in the same process were not enough; a process that runs
the same code from the same inputs, with the same string hash seed (:class:`Spawned`) and its cyclic garbage
collected at the same points of its course (:func:`collecting`), repeats its course (what is cut by time
aside: an unsat core within 2 s, a stage's share of the deadline). So each learner is a
new interpreter (``python -c``: nothing of this process's memory, and the caller's main script is not run
again as multiprocessing's spawn would), given its inputs alone: the protocol (loaded again from where it
came from, :mod:`deferral.checks.symbolic.recipe`), the samples, the bounds, the deadlines.

Why two: a course is a draw. With another Z3 seed (and hash seed) the same learning takes another one
(drain_zaps at 4,3,3,3,S=2: unknown with one seed, proved in 35 s with the next), and while it learns this
process only waits, so on two CPUs a second learner costs no wall-clock time. Each learner's course is its
own (seed 0 is Z3's default); the verdict is "proved" when either proves within the deadline; which
proof is shown, where both do, is the one that came first. The learners also hand each other their first
stages' fixpoints and their draws' (:mod:`~deferral.checks.symbolic.clauses_peers`, over a socket between every
two, made here): a learner whose next stage does not settle from its own fixpoint takes the others' before it
draws one again itself (4,3,3,3,S=2 without the shipped lemmas, 60 s: 9 and 6 of 12 in two grids, 5 before;
the seven hardest at 120 s: 6 proved, 3 before; the parametric route gained nothing; PROVE.md, 7 Dec).

Where the protocol cannot be loaded again identically (one built in a test, a variant file changed
since) or no learner is asked for (``prove --learners 0``), the learning runs in this process, as
before; the log says where.
"""

from __future__ import annotations

import gc
import json
import os
import pickle
import signal
import socket
import subprocess
import sys
import tempfile
import time
import traceback
from dataclasses import dataclass, field
from multiprocessing.connection import Connection, wait
from typing import Any, Callable, Mapping, Sequence

from deferral.checks.explicit.limits import usable_cpus
from deferral.checks.symbolic import clauses, clauses_prove
from deferral.checks.symbolic.clauses import Peers
from deferral.checks.symbolic.clauses_peers import PeerLinks
from deferral.checks.symbolic.clauses_prove import Outcome
from deferral.checks.symbolic.recipe import Recipe, load, recipe
from deferral.model.bounds import Bounds
from deferral.model.protocol import Protocol

#: Learners at once by default, at most (one per CPU this process may use, at most this many); learner k
#: uses Z3 seed k.
LEARNERS = 2
#: Seconds a spawned learner may take to start and load its protocol.
START_S = 60.0
#: Seconds past the time limit (the Houdini and induction's deadline) the learners are waited for, at most: a
#: learner overran its stage's deadline by seconds and prove waited for the slower one (63.9 s wall for
#: --timeout 60 at 6,3,3,3,S=2; PROVE.md, 6 Dec).
LATE_S = 1.0


def learners(requested: int | None = None) -> int:
    """How many learners to spawn: ``requested`` (0: none, the learning in the caller's process), else
    :data:`LEARNERS`, at most one per CPU this process may run on."""
    if requested is not None:
        return max(0, requested)
    return max(1, min(LEARNERS, usable_cpus()))


def prove_learned(protocol: Protocol, bounds: Bounds, samples_at: Sequence[tuple[Bounds, str]],
                  stages: Sequence[Bounds], *, deadline: float | None, check_deadline: float | None,
                  given: Mapping[Bounds, Any] | None = None, note: Callable[[str], None] | None = None,
                  enc: Any = None, learners_asked: int | None = None) -> tuple[Outcome, list[str]]:
    """:func:`clauses_prove.prove_learned` in spawned learners (``learners_asked``, else :func:`learners`)
    where the protocol can be loaded again, else here; with log lines saying where, and (several
    learners) which one's outcome this is."""
    kw = {"bounds": bounds, "samples_at": list(samples_at), "stages": list(stages), "deadline": deadline,
          "check_deadline": check_deadline, "given": dict(given or {})}
    with Team(protocol, learners_asked) as team:
        if not team.members:
            out = clauses_prove.prove_learned(protocol, note=note, enc=enc, **kw)
            return out, [f"enumerated: the learning runs in this process{team.why_here}"]
        return team.race("prove", kw, until=None if check_deadline is None else check_deadline + LATE_S,
                         decode=Spawned.outcome, won=lambda out: out.status == "proved", note=note,
                         describe=_said, label="enumerated")


def _said(out: Outcome) -> str:
    return out.status + (f" ({out.why[-1][1]})" if out.why else "")


class Team:
    """Learners in processes of their own (a context: they are stopped at its end), each with its own Z3 seed;
    none (``members`` empty, ``why_here`` says why) where the protocol cannot be loaded again, no learner is
    asked for, or the first one does not start."""

    def __init__(self, protocol: Protocol, learners_asked: int | None = None) -> None:
        self.protocol, self.members, self.why_here = protocol, [], ""
        # what was asked last (:meth:`ask`): the learners still at it, the answers so far, the seed of the one that won
        self._pending: dict[Connection, Spawned] = {}
        self._ended: dict[int, Any] = {}
        self._won: int | None = None
        count = learners(learners_asked)
        rec = recipe(protocol) if count else None
        if not count:
            self.why_here = " (--learners 0)"
        elif rec is None:
            self.why_here = f" ({protocol.name} is neither a published variant nor a variant file's)"
        seeds = list(range(count if rec is not None else 0))
        # a socket between every two learners, for their fixpoints (checks/symbolic/clauses_peers.py): each end
        # goes to its learner's process, and this one keeps neither (an end whose learner did not start closes)
        links: dict[int, dict[int, socket.socket]] = {seed: {} for seed in seeds}
        for a in seeds:
            for b in seeds[a + 1:]:
                links[a][b], links[b][a] = socket.socketpair()
        try:
            for seed in seeds:
                one = Spawned(protocol, seed)
                failed = one.start(rec, links[seed])  # type: ignore[arg-type]
                if failed is None:
                    self.members.append(one)
                elif not self.members:
                    self.why_here = f" ({failed})"
                    break
        except BaseException:
            self.close()
            raise
        finally:
            for ends in links.values():
                for end in ends.values():
                    end.close()

    def __enter__(self) -> "Team":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def close(self) -> None:
        """Stop every learner: one still at what it was asked is killed at once (its answer is not wanted; asked,
        a learner busy in Z3 was waited for a full second, after each proof and, per learner, at the time limit);
        the others are asked to stop."""
        for one in self.members:
            one.close(at_work=one.conn in self._pending)

    def race(self, kind: str, kw: dict[str, Any], *, until: float | None, decode: Callable[["Spawned", Any], Any],
             won: Callable[[Any], bool], note: Callable[[str], None] | None, describe: Callable[[Any], str],
             label: str) -> tuple[Any, list[str]]:
        """Every learner asked to do ``kind`` (a job of :data:`JOBS`) with ``kw``; the first answer that ``won``
        (each ``decode``d by its learner), else the first learner's (those still at work at ``until`` are
        stopped: LearnerGone); with log lines (``label``: the route) saying where it ran and what the others
        ended with (``describe``)."""
        self.ask(kind, kw)
        return self.collect(until=until, decode=decode, won=won, note=note, describe=describe, label=label)

    def ask(self, kind: str, kw: dict[str, Any]) -> None:
        """Every learner asked to do ``kind`` with ``kw``; :meth:`collect` takes the answers (the caller may do
        other work meanwhile: the learners' notes wait in their pipes)."""
        self._pending, self._ended, self._won = {one.conn: one for one in self.members}, {}, None
        for one in self.members:
            one.send((kind, kw))

    def collect(self, *, until: float | None, decode: Callable[["Spawned", Any], Any], won: Callable[[Any], bool],
                note: Callable[[str], None] | None, describe: Callable[[Any], str], label: str) -> tuple[Any, list[str]]:
        """The answers to what :meth:`ask` asked, as :meth:`race` says."""
        team, ended, pending = self.members, self._ended, self._pending
        while self._won is None and pending:
            if until is not None and time.monotonic() > until:
                for one in pending.values():  # where it was: its last note ("round 4 at N=3,V=1,...")
                    ended[one.seed] = LearnerGone("stopped at the time limit, still learning"
                                                  + (f" (its last note: {one.last_note[:200]})" if one.last_note else ""))
                break
            step = 1.0 if until is None else max(0.0, min(1.0, until - time.monotonic()))
            for conn in wait(list(pending), timeout=step):
                self._take(conn, decode, won, note)
                if self._won is not None:
                    break
            for conn, one in list(pending.items()):
                if self._won is None and not one.alive() and not conn.poll(0):
                    ended[one.seed] = LearnerGone(one.ended())
                    del pending[conn]
        if self._won is not None:
            return ended[self._won], _where(team, ended, self._won, describe, label)
        first = ended[team[0].seed]
        if not isinstance(first, BaseException):
            return first, _where(team, ended, team[0].seed, describe, label)
        other = next((x for x in ended.values() if not isinstance(x, BaseException)), None)
        if other is not None and isinstance(first, LearnerGone):
            seed = next(k for k, x in ended.items() if x is other)
            return other, _where(team, ended, seed, describe, label)
        raise first

    def _take(self, conn: Connection, decode: Callable[["Spawned", Any], Any], won: Callable[[Any], bool],
              note: Callable[[str], None] | None) -> None:
        """One message from a learner: a note passed on, or its answer (or its end) kept; an answer that ``won``
        marks the race as won."""
        one = self._pending[conn]
        try:
            what, body = one.receive()
        except LearnerGone as exc:
            self._ended[one.seed] = exc
            del self._pending[conn]
            return
        if what == "note":
            one.last_note = str(body)
            if note:
                note(f"learner {one.seed}: {body}" if len(self.members) > 1 else body)
            return
        del self._pending[conn]
        got = decode(one, body) if what == "done" else (
            body if what == "raised" else RuntimeError(f"learner {one.seed} failed:\n{body}"))
        self._ended[one.seed] = got
        if not isinstance(got, BaseException) and won(got):
            self._won = one.seed


def _where(team: list["Spawned"], ended: dict[int, Any], shown: int, describe: Callable[[Any], str],
           label: str) -> list[str]:
    """Log lines: where the learning ran, whose outcome is shown, and what the others ended with."""
    if len(team) == 1:
        return [f"{label}: the learning runs in a fresh process"]
    seeds = ", ".join(str(one.seed) for one in team)
    lines = [f"{label}: the learning runs in {len(team)} fresh processes at once (Z3 seeds {seeds}); "
             f"shown: seed {shown}'s outcome"]
    for seed, x in ended.items():
        if seed == shown:
            continue
        said = f"{type(x).__name__}: {x}" if isinstance(x, BaseException) else describe(x)
        lines.append(f"{label}: seed {seed}'s learner: {said[:300]}")
    stopped = [str(one.seed) for one in team if one.seed not in ended]
    if stopped:
        lines.append(f"{label}: seed {', '.join(stopped)}'s learner stopped (another proved it first)")
    return lines


# ---- the spawned process -------------------------------------------------------------------------------------


def _outcome_data(out: Outcome) -> dict[str, Any]:
    """``out`` as data: its families as :func:`clauses.entry` documents (a property by its name)."""
    alive = []
    for lem in out.alive:
        if isinstance(lem, clauses.Clause):
            alive.append(clauses.entry(lem))
        else:
            alive.append({"property": lem.name})
    return {**{k: v for k, v in vars(out).items() if k != "alive"}, "alive": alive}


def _prove_job(protocol: Protocol, note: Callable[[str], None], kw: dict[str, Any], peers: Peers | None
               ) -> dict[str, Any]:
    return _outcome_data(clauses_prove.prove_learned(protocol, note=note, peers=peers, **kw))


def _for_every_job(protocol: Protocol, note: Callable[[str], None], kw: dict[str, Any], peers: Peers | None
                   ) -> dict[str, Any]:
    from deferral.checks.symbolic import parametric_learning

    return parametric_learning.learn(protocol, note=note, peers=peers, **kw).to_data()


#: What a learner does when asked, by name: (the protocol, a note function, the keyword arguments, the links to
#: the other learners or None) -> the answer as data. "prove": the enumerated route
#: (checks/symbolic/clauses_prove.py); "for_every": --parametric's learning (checks/symbolic/parametric_learning.py).
JOBS: dict[str, Callable[[Protocol, Callable[[str], None], dict[str, Any], Peers | None], dict[str, Any]]] = {
    "prove": _prove_job, "for_every": _for_every_job}


def _serve(conn: Any, rec: Recipe, seed: int, peer_fds: Mapping[int, int]) -> None:
    """The spawned process: load the protocol, then prove as asked, sending notes as they come (and fixpoints to
    the other learners, ``peer_fds``: a socket's descriptor per peer seed)."""
    try:
        protocol = load(rec)
    except Exception as exc:  # noqa: BLE001 - any failure to load means: learn in the caller's process
        conn.send(("unfit", f"{type(exc).__name__}: {exc}"))
        return
    if seed:
        import z3

        z3.set_param("smt.random_seed", seed)
        z3.set_param("sat.random_seed", seed)
    links = PeerLinks(protocol, {p: Connection(fd) for p, fd in peer_fds.items()}, seed) if peer_fds else None
    conn.send(("ready", None))
    gc.freeze()  # what is loaded stays: out of the collector's sight, as the CLI does (deferral.cli)
    note = collecting(lambda text: conn.send(("note", text)))

    jobs = 0
    while True:
        try:
            kind, kw = conn.recv()
        except EOFError:
            return
        if kind == "stop":
            return
        jobs += 1
        if links is not None:
            links.begin(jobs)
        try:
            answer: tuple[str, Any] = ("done", JOBS[kind](protocol, note, kw, links))
        except Exception as exc:  # noqa: BLE001 - sent to the caller, raised there
            try:
                pickle.loads(pickle.dumps(exc))  # it must load there too
                answer = ("raised", exc)
            except Exception:  # noqa: BLE001 - an exception that does not travel: its text
                answer = ("failed", "".join(traceback.format_exception(exc)))
        if links is not None:
            links.end()  # no peer waits for this one's fixpoints any longer
        conn.send(answer)


#: :func:`collecting`: every this many notes the collection is a full one (the others: the young generations).
FULL_COLLECT_EVERY = 10


def collecting(send: Callable[[str], None]) -> Callable[[str], None]:
    """A learner's note function: ``send`` after a collection of the cyclic garbage, with the collector's own
    runs switched off. Z3 reuses the ids of the terms Python frees, and its answers follow those ids, so when the
    garbage is collected shapes the course; left to the collector, that is when the allocation counts say, which
    depends on everything the process did before (a compiled kernel built or found in the cache: mask_before_send's
    first stage at 2,1,1,1,S=2 took one course in 12 runs of 12 with the kernels cached and another with an empty
    kernel cache; with collections here, the same course both ways; PROVE.md, 7 Dec). A note comes at the same
    points of a learning every run (each round, each stage), and costs 0.2-0.4 s of collections in a first stage."""
    gc.disable()
    count = 0

    def note(text: str) -> None:
        nonlocal count
        count += 1
        gc.collect(2 if count % FULL_COLLECT_EVERY == 0 else 1)
        send(text)

    return note


def child_main(fd: int) -> None:
    """The spawned process's entry (``python -c`` :data:`BOOT`): the recipe and seed first, then :func:`_serve`."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the caller's: it ends this process
    _end_with_parent()
    conn = Connection(fd)
    try:
        rec, seed, peer_fds = conn.recv()
        _serve(conn, rec, seed, peer_fds)
    except (EOFError, BrokenPipeError):  # the caller has gone
        pass


def _end_with_parent() -> None:
    """Linux: this process is killed when the one that spawned it dies (a kill -9 of the CLI leaves
    no learner running on)."""
    try:
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


#: What the spawned process runs: the caller's import path, then :func:`child_main` on the socket it was given.
BOOT = ("import sys, json; sys.path[:] = json.loads(sys.argv[2]); "
        "from deferral.checks.symbolic.clauses_process import child_main; child_main(int(sys.argv[1]))")


# ---- the caller's side of one learner --------------------------------------------------------------------------


class LearnerGone(RuntimeError):
    """A spawned learner ended without an answer (killed, out of memory)."""


@dataclass
class Spawned:
    """One learner in a process of its own (see the module docstring), with Z3 seed ``seed`` and the same string
    hash seed (PYTHONHASHSEED): the order of a set of names, and with it the order the learning builds its Z3 terms
    in, followed the interpreter's random hash seed, and so did Z3's answers (the reference's learning at
    1,1,1,1,S=2, asked twice at once of fresh learners, parted in its first Houdini round, 198 and 194 of 233
    families kept, and was proved in 45.0 s and in 205.0 s; with the hash seed fixed, twice the same course)."""

    protocol: Protocol
    seed: int = 0
    conn: Any = None
    _proc: Any = None
    _errors: Any = None
    _vocab: dict[Any, Any] = field(default_factory=dict)
    last_note: str = ""  # what it said last (where a learner stopped at the time limit was)

    def start(self, rec: Recipe, peers: Mapping[int, socket.socket] | None = None) -> str | None:
        """Start the process (``peers``: its ends of the sockets to the other learners, by their seeds, handed to
        it); None when it is ready, else why it cannot learn (it has ended)."""
        mine, theirs = socket.socketpair()
        self._errors = tempfile.TemporaryFile()  # its stderr: the end of it says why, where it dies
        peer_fds = {p: end.fileno() for p, end in (peers or {}).items()}
        try:
            self._proc = subprocess.Popen(
                [sys.executable, "-c", BOOT, str(theirs.fileno()), json.dumps(sys.path)],
                pass_fds=[theirs.fileno(), *peer_fds.values()],
                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=self._errors,
                env={**os.environ, "PYTHONHASHSEED": str(self.seed)})
        except OSError as exc:
            mine.close()
            return f"cannot start a process ({exc})"
        finally:
            theirs.close()
        self.conn = Connection(mine.detach())
        try:
            self.send((rec, self.seed, peer_fds))
            end = time.monotonic() + START_S
            while not self.conn.poll(min(1.0, max(0.0, end - time.monotonic()))):
                if not self.alive() or time.monotonic() >= end:
                    raise LearnerGone(self.ended() if not self.alive() else
                                      f"the learner's process did not start in {START_S:.0f} s")
            kind, what = self.receive()
        except (LearnerGone, OSError) as exc:
            self.close()
            return str(exc)
        if kind != "ready":
            self.close()
            return str(what)
        return None

    def send(self, message: Any) -> None:
        self.conn.send(message)

    def receive(self) -> tuple[str, Any]:
        """The next message (LearnerGone where the process has ended instead)."""
        try:
            return self.conn.recv()
        except (EOFError, OSError):
            raise LearnerGone(self.ended()) from None

    def alive(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def ended(self) -> str:
        """Why the process gave no answer: how it ended, and the last line it wrote to stderr."""
        try:
            code = self._proc.wait(1.0)
        except subprocess.TimeoutExpired:
            code = None
        how = "is still running" if code is None else (
            f"was killed by signal {-code}" if code < 0 else f"exited with code {code}")
        self._errors.seek(0)
        last = [x for x in self._errors.read()[-2000:].decode("utf-8", "replace").splitlines() if x.strip()]
        return f"the learner's process ended without an answer (it {how}" + (f": {last[-1][:200]})" if last else ")")

    def outcome(self, body: dict[str, Any]) -> Outcome:
        """An outcome sent back, its families rebuilt here (at the bounds the first sample was drawn at,
        where they were made)."""
        at = body["sampled"][0][0] if body["sampled"] else body["rows"][0]["bounds"]
        props = {lem.name: lem for lem in _property_lemmas(self.protocol)}
        clause_docs = [d for d in body["alive"] if "property" not in d]
        rebuilt = iter(clauses.from_entries(clause_docs, self.protocol, at, self._vocab))
        alive = [props[d["property"]] if "property" in d else next(rebuilt) for d in body["alive"]]
        return Outcome(**{**body, "alive": alive})

    def close(self, at_work: bool = False) -> None:
        """Stop the process: asked first (killed if it does not stop within a second), or, ``at_work`` (busy with
        a job whose answer is not wanted), killed at once."""
        if self._proc is None:
            return
        try:
            if not at_work:
                self.conn.send(("stop", None))
        except (OSError, ValueError):
            pass
        try:
            self._proc.wait(0.0 if at_work else 1.0)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            self._proc.wait()
        self.conn.close()
        self._errors.close()
        self._proc = None


def _property_lemmas(protocol: Protocol) -> list[Any]:
    from deferral.checks.symbolic.infer import property_lemmas

    return property_lemmas(protocol)
