"""The enumerated route's learning in spawned learners (checks/symbolic/clauses_process.py)."""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from deferral.checks.symbolic import clauses, clauses_process
from deferral.checks.symbolic.clauses_prove import Outcome
from deferral.checks.symbolic.infer import property_lemmas
from deferral.checks.symbolic.recipe import recipe
from deferral.model import REFERENCE, Bounds

SMALL = Bounds(2, 1, 1, 1)

#: One spawned learner's proof at SMALL, asked by a pristine process: its rows and families printed.
PRISTINE = """
import json, time
from deferral.checks.symbolic import clauses_process
from deferral.model import REFERENCE, Bounds
b = Bounds(2, 1, 1, 1)
out, where = clauses_process.prove_learned(REFERENCE, b, [(b, "exhaustive")], [b], deadline=time.monotonic() + 120,
                                           check_deadline=None, learners_asked=1)
untimed = lambda row: {k: v["dropped"] if k == "forward" else v for k, v in row.items() if k != "seconds"}
print(json.dumps({"status": out.status, "rows": [untimed(row) for row in out.rows],
                  "alive": sorted(lem.name for lem in out.alive), "where": where}))
"""


def _course(out: Outcome) -> dict[str, Any]:
    """What a course did, without its seconds (forward's included)."""
    rows = [{k: v["dropped"] if k == "forward" else v for k, v in row.items() if k != "seconds"} for row in out.rows]
    return {"status": out.status, "rows": rows, "alive": sorted(lem.name for lem in out.alive)}


def _ask(protocol: Any, at: Bounds, **kw: Any) -> tuple[Outcome, list[str]]:
    return clauses_process.prove_learned(protocol, at, [(at, "exhaustive")], [at], check_deadline=None,
                                         **{"deadline": time.monotonic() + 120, **kw})


def test_the_learning_takes_its_course_whatever_this_process_did_before(monkeypatch: pytest.MonkeyPatch) -> None:
    """A spawned learner's stages and proof are the same asked by a pristine process and by this one after
    it built unrelated Z3 terms and changed a constant of the learning (which only this process sees: the
    learning here then takes another course); its notes arrive here, its families come back as clauses."""
    import z3

    junk = [z3.Int(f"junk{n}") + n for n in range(5_000)]
    monkeypatch.setattr(clauses, "FIRST_LITERALS", 0)  # here: the first stage would start from nothing
    pristine = json.loads(subprocess.run([sys.executable, "-c", PRISTINE], capture_output=True, text=True,
                                         check=True).stdout)
    notes: list[str] = []
    out, where = _ask(REFERENCE, SMALL, note=notes.append, learners_asked=1)
    assert where == pristine.pop("where") == ["enumerated: the learning runs in a fresh process"]
    assert out.status == "proved" and _course(out) == pristine and junk
    assert any(n.startswith("clauses: sampled") for n in notes)
    musts = {lem.name for lem in property_lemmas(REFERENCE)}
    assert all(isinstance(lem, clauses.Clause) or lem.name in musts for lem in out.alive)
    assert musts <= {lem.name for lem in out.alive}
    here, where = _ask(REFERENCE, SMALL, learners_asked=0)  # the learning here: the changed constant counts
    assert where == ["enumerated: the learning runs in this process (--learners 0)"]
    assert _course(here) != pristine


def _alone(seed: int) -> dict[str, Any]:
    """Learner ``seed``'s course at SMALL, asked alone."""
    one = clauses_process.Spawned(REFERENCE, seed)
    assert one.start(recipe(REFERENCE)) is None  # type: ignore[arg-type]
    try:
        one.send(("prove", {"bounds": SMALL, "samples_at": [(SMALL, "exhaustive")], "stages": [SMALL],
                            "deadline": time.monotonic() + 120, "check_deadline": None, "given": {}}))
        what, body = one.receive()
        while what == "note":
            what, body = one.receive()
        assert what == "done"
        return _course(one.outcome(body))
    finally:
        one.close()


def test_learners_with_other_seeds_take_other_courses_and_the_first_proof_is_taken(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Learner k runs Z3 with seed k (seed 0: Z3's default): seeds 0 and 1 learn differently, each the same
    every time; two at once give the proof of the one that came first, and the log names both."""
    first, second = _alone(0), _alone(1)
    assert first != second and first["status"] == second["status"] == "proved" and _alone(1) == second
    out, where = _ask(REFERENCE, SMALL, learners_asked=2)
    assert _course(out) in (first, second)
    assert where[0].startswith("enumerated: the learning runs in 2 fresh processes at once (Z3 seeds 0, 1)")


def test_two_learners_send_each_other_their_first_stages_fixpoints() -> None:
    """A team's learners are linked (checks/symbolic/clauses_peers.py): with a first stage carried to a larger one,
    each learner sends its fixpoint to the other, and a learner's notes say so."""
    notes: list[str] = []
    larger = Bounds(3, 1, 1, 1)
    out, where = clauses_process.prove_learned(REFERENCE, larger, [(SMALL, "exhaustive")], [SMALL, larger],
                                               deadline=time.monotonic() + 120, check_deadline=None,
                                               note=notes.append, learners_asked=2)
    assert out.status == "proved", out.why
    shown = int(re.search(r"shown: seed (\d)'s outcome", where[0]).group(1))  # type: ignore[union-attr]
    for seed in (shown, 1 - shown):  # the other may have been stopped before it sent (seldom)
        sent = [n for n in notes if n.startswith(f"learner {seed}: clauses: {clauses.FIRST_TAG}: ")]
        assert sent or seed != shown
        for line in sent[:1]:
            assert re.fullmatch(rf"learner {seed}: clauses: {clauses.FIRST_TAG}: \d+ families sent to seed {1 - seed}",
                                line), line


def test_a_protocol_that_cannot_be_loaded_again_is_learned_in_this_process() -> None:
    made = REFERENCE.derive("my-change", replace_steps=[REFERENCE.steps[0]])
    out, where = _ask(made, SMALL, learners_asked=1)
    assert out.status == "proved"
    assert where == ["enumerated: the learning runs in this process (my-change is neither a published variant "
                     "nor a variant file's)"]


def test_an_error_there_is_raised_here_and_a_learner_that_dies_is_reported(monkeypatch: pytest.MonkeyPatch) -> None:
    """An exception of the learning reaches the caller as itself; a learner killed mid-way is LearnerGone
    (named by its signal), never an answer; where another learner answers, its outcome is taken."""
    with pytest.raises(TypeError):
        _ask(REFERENCE, SMALL, deadline="soon")
    real = clauses_process.Spawned.send

    def killed(self: clauses_process.Spawned, message: Any) -> None:
        real(self, message)
        if message[0] == "prove" and self.seed == 0:
            self._proc.send_signal(signal.SIGKILL)

    monkeypatch.setattr(clauses_process.Spawned, "send", killed)
    with pytest.raises(clauses_process.LearnerGone, match="killed by signal 9"):
        _ask(REFERENCE, SMALL, learners_asked=1)
    out, where = _ask(REFERENCE, SMALL, learners_asked=2)
    assert out.status == "proved" and where[0].endswith("shown: seed 1's outcome")
    assert any("seed 0's learner: LearnerGone: " in line and "killed by signal 9" in line for line in where)


def _learners_of(pid: int) -> list[int]:
    """The spawned learners whose parent is ``pid``."""
    out = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            cmd = (entry / "cmdline").read_bytes()
        except (OSError, IndexError, ValueError):
            continue
        if ppid == pid and b"child_main" in cmd:
            out.append(int(entry.name))
    return out


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads /proc")
def test_prove_learns_in_fresh_processes_and_ctrl_c_ends_them_too() -> None:
    """deferral prove without the shipped lemmas: its log says where the learning ran; Ctrl-C while it
    learns exits 130, and the learners' processes end with it."""
    cli = [sys.executable, "-m", "deferral.cli", "prove", "--no-shipped-lemmas", "--json"]
    done = subprocess.run(cli + ["--timeout", "120"], capture_output=True, text=True)
    doc = json.loads(done.stdout)
    assert done.returncode == 0 and doc["route"] == "enumerated+houdini+induction"
    assert any(line.startswith("enumerated: the learning runs in ") and "fresh process" in line for line in doc["log"])
    child = subprocess.Popen(cli + ["--vcpus", "4", "--pages", "3", "--frames", "3", "--spaces", "2"],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                             preexec_fn=lambda: signal.signal(signal.SIGINT, signal.default_int_handler))
    assert child.stderr is not None
    for line in child.stderr:
        if "clauses:" in line:  # the learners at work (notes are shown every few seconds)
            break
    learners = _learners_of(child.pid)
    assert len(learners) == clauses_process.learners()
    child.send_signal(signal.SIGINT)
    try:
        child.communicate(timeout=30)
    except subprocess.TimeoutExpired:
        child.kill()
        raise AssertionError("Ctrl-C did not end prove within 30 s")
    assert child.returncode == 130
    end = time.monotonic() + 5
    while any(Path(f"/proc/{pid}").exists() for pid in learners) and time.monotonic() < end:
        time.sleep(0.1)
    assert not any(Path(f"/proc/{pid}").exists() for pid in learners)


def test_learners_still_at_work_at_the_time_limit_are_stopped() -> None:
    """Past the time limit (the check's deadline, plus LATE_S) prove does not wait for a learner still learning:
    LearnerGone, which prove reports as the route's unknown."""
    at = Bounds(3, 2, 2, 1)  # its exhaustive sample alone takes longer than the limit below
    began = time.monotonic()
    with pytest.raises(clauses_process.LearnerGone, match="stopped at the time limit"):
        clauses_process.prove_learned(REFERENCE, at, [(at, "exhaustive")], [at], deadline=time.monotonic() + 120,
                                      check_deadline=time.monotonic() + 2, learners_asked=2)
    assert time.monotonic() - began < 2 + clauses_process.LATE_S + 3


def test_a_learner_stopped_at_the_time_limit_says_where_it_was() -> None:
    """The unknown of a learner stopped at the time limit quotes its last note (the stage and round it was at)."""
    from multiprocessing import Pipe

    class Running:
        def poll(self) -> None:
            return None

    ours, theirs = Pipe()
    one = clauses_process.Spawned(REFERENCE, 0, conn=ours)
    one._proc = Running()
    team = object.__new__(clauses_process.Team)
    team.members, team._pending, team._ended, team._won = [one], {ours: one}, {}, None
    theirs.send(("note", "clauses: round 4 at N=3,V=1,F=1,Q=3,S=2: Houdini kept 341 of 380"))
    seen: list[str] = []
    with pytest.raises(clauses_process.LearnerGone, match="still learning") as gone:
        team.collect(until=time.monotonic() + 0.5, decode=lambda who, body: body, won=lambda x: True,
                     note=seen.append, describe=str, label="enumerated")
    assert "its last note: clauses: round 4 at N=3,V=1,F=1,Q=3,S=2" in str(gone.value)
    assert seen == ["clauses: round 4 at N=3,V=1,F=1,Q=3,S=2: Houdini kept 341 of 380"]


@pytest.mark.skipif(not Path("/proc/self/environ").exists(), reason="reads the learner's environment from /proc")
def test_a_learner_runs_with_its_seed_as_its_string_hash_seed() -> None:
    """Learner k hashes strings with seed k (PYTHONHASHSEED), whatever the caller's: with the interpreter's random
    one, two runs of one learning parted in their first Houdini round (the order of a set of names)."""
    one = clauses_process.Spawned(REFERENCE, 1)
    assert one.start(recipe(REFERENCE)) is None  # type: ignore[arg-type]
    try:
        env = Path(f"/proc/{one._proc.pid}/environ").read_bytes().split(b"\0")
        assert b"PYTHONHASHSEED=1" in env
    finally:
        one.close()


class _Node:
    """An object in a reference cycle: only the cyclic collector frees it."""

    def __init__(self) -> None:
        self.me = self


def test_a_learners_notes_collect_the_garbage_at_the_same_points_every_run() -> None:
    """clauses_process.collecting: the collector's own runs are off (they come when the allocation counts say,
    which follows everything the process did before, and Z3's answers follow the ids of the terms Python frees);
    each note collects first, then sends: the young generations, and every FULL_COLLECT_EVERY-th note all of them."""
    import gc
    import weakref

    sent: list[str] = []
    was = gc.isenabled()
    try:
        note = clauses_process.collecting(sent.append)
        assert not gc.isenabled()
        old = _Node()
        gc.collect(1)  # "old" survives into the oldest generation
        gone_old = weakref.ref(old)
        del old
        for n in range(1, clauses_process.FULL_COLLECT_EVERY + 1):
            gone_young = weakref.ref(_Node())  # garbage at once, but only the collector frees it
            assert gone_young() is not None
            note(f"round {n}")
            assert gone_young() is None  # collected before the note went
            assert (gone_old() is None) == (n == clauses_process.FULL_COLLECT_EVERY)
        assert sent == [f"round {n}" for n in range(1, clauses_process.FULL_COLLECT_EVERY + 1)]
    finally:
        if was:
            gc.enable()
