"""A user's variant file with ENGINE: the change in the model and in the engine, judged together."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from deferral.cli.main import main
from deferral.engine.bugs import Bugs
from deferral.engine.conform import Stepper, conform_depth
from deferral.engine.runner import RunConfig, run
from deferral.engine.user import load_engine_file
from deferral.model import Bounds
from deferral.model.concrete import Model
from deferral.traces.replay import replay

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "drain_zaps.py"


def test_the_example_engine_conforms_to_the_example_variant_and_the_stock_engine_does_not() -> None:
    protocol, engine = load_engine_file(EXAMPLE)
    model = Model(protocol, Bounds(2, 1, 1, 1))
    report = conform_depth(model, engine, 4)
    assert report.mismatch is None and report.complete and report.steps > 100
    stock = conform_depth(model, Bugs(), 4)  # the unchanged hypervisor resyncs where the variant zaps
    assert stock.mismatch is not None and stock.mismatch.kind == "state"
    assert all(key.startswith("shadow") for key in stock.mismatch.expected)


def test_a_threaded_run_of_the_users_engine_replays_against_the_users_variant() -> None:
    protocol, engine = load_engine_file(EXAMPLE)
    result = run(RunConfig(Bounds(2, 1, 1, 1), protocol.name, seconds=1.0, seed=2, snapshots=True,
                           max_steps=500, protocol=protocol, engine=engine))
    s = result.summary
    assert s["engine"] == "ZappingHypervisor" and s["variant"] == "drain-zaps"
    assert s["divergence"]["steps"] == 0 and s["violations"]["steps"] == 0 and not s["errors"]
    assert result.trace is not None and result.trace.variant_source == str(EXAMPLE)
    report = replay(result.trace, protocol)
    assert report.ok and report.steps_replayed == s["steps"]


def test_engine_run_and_conform_take_the_variant_file(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    out = tmp_path / "run.json"
    code = main(["engine", "run", "--variant-file", str(EXAMPLE), "--seconds", "1", "--max-steps", "300",
                 "--snapshots", "--trace-out", str(out), "--json"])
    summary = json.loads(capsys.readouterr().out)
    assert code == 0 and summary["engine"] == "ZappingHypervisor" and summary["steps"] >= 300
    assert main(["replay", str(out), "--variant-file", str(EXAMPLE)]) == 0  # traces never load code themselves
    capsys.readouterr()
    assert main(["conform", "--variant-file", str(EXAMPLE), "--depth", "3"]) == 0
    assert "conforms" in capsys.readouterr().out
    # the same change without it in the engine (the stock hypervisor): a divergence, exit 4 as replay's
    stock = tmp_path / "stock.py"
    stock.write_text(EXAMPLE.read_text().replace("ENGINE = ZappingHypervisor", "ENGINE = Hypervisor"))
    assert main(["conform", "--variant-file", str(stock), "--depth", "4"]) == 4
    assert "MISMATCH (state)" in capsys.readouterr().out


@pytest.mark.parametrize("command", [["engine", "run"], ["conform", "--depth", "2"]])
def test_a_variant_file_without_engine_is_one_line_of_bad_input(command: list[str], tmp_path: Path,
                                                               capsys: pytest.CaptureFixture[str]) -> None:
    plain = tmp_path / "plain.py"
    plain.write_text("from deferral.model import REFERENCE\nVARIANT = REFERENCE.derive('plain')\n")
    wrong = tmp_path / "wrong.py"
    wrong.write_text("from deferral.model import REFERENCE\nVARIANT = REFERENCE.derive('wrong')\nENGINE = 3\n")
    for path, words in ((plain, "no ENGINE"), (wrong, "not a subclass of deferral.engine.Hypervisor")):
        assert main([*command, "--variant-file", str(path)]) == 2
        err = capsys.readouterr().err.strip()
        assert words in err and "\n" not in err and "Traceback" not in err
    assert main(["check", "--variant-file", str(plain)]) == 0  # the model's commands need no ENGINE


def test_help_says_what_the_variant_file_needs(capsys: pytest.CaptureFixture[str]) -> None:
    for command in (["engine", "run"], ["conform"]):
        assert main([*command, "--help"]) == 0
        assert "ENGINE" in capsys.readouterr().out


RAISING = '''from deferral.engine import Hypervisor
from deferral.model import REFERENCE
VARIANT = REFERENCE.derive("raising")
class Raising(Hypervisor):
    def post_ipis(self, i, root, page):
        raise KeyError("oops")
ENGINE = Raising
'''


@pytest.mark.parametrize("command", [["engine", "run", "--seconds", "1", "--max-steps", "400"],
                                     ["conform", "--depth", "3"]])
def test_an_engine_that_raises_is_bad_input_named_by_file_and_line(command: list[str], tmp_path: Path,
                                                                  capsys: pytest.CaptureFixture[str]) -> None:
    # before 5 Dec, night: engine run said exit 3 ("a VCPU thread failed") and conform exit 4 (a
    # divergence), neither naming the user's file, where the model's commands say 2 for the same crash
    path = tmp_path / "raising.py"
    path.write_text(RAISING)
    assert main([*command, "--variant-file", str(path)]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "Traceback" not in err
    assert f"{path} line 6 (in post_ipis) raised KeyError: 'oops' (ENGINE" in err


def test_an_engine_that_refuses_a_step_the_model_takes_is_still_a_divergence(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "refusing.py"  # a refusal (NotEnabled) raised through the user's own step method
    path.write_text("from deferral.engine import Hypervisor\nfrom deferral.model import REFERENCE\n"
                    "VARIANT = REFERENCE.derive('refusing')\n"
                    "class Refusing(Hypervisor):\n"
                    "    def invlpg(self, i, p):\n"
                    "        self._require('never')\n"
                    "ENGINE = Refusing\n")
    assert main(["conform", "--variant-file", str(path), "--depth", "2"]) == 4
    assert "MISMATCH (engine-error)" in capsys.readouterr().out


def test_an_override_that_cannot_take_the_hooks_arguments_is_refused_when_it_loads(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "short.py"
    path.write_text("from deferral.engine import Hypervisor\nfrom deferral.model import REFERENCE\n"
                    "VARIANT = REFERENCE.derive('short')\n"
                    "class Short(Hypervisor):\n"
                    "    def resync(self, drainer):\n"
                    "        pass\n"
                    "ENGINE = Short\n")
    for command in (["engine", "run", "--seconds", "1", "--max-steps", "200"], ["conform", "--depth", "3"]):
        assert main([*command, "--variant-file", str(path)]) == 2
        err = capsys.readouterr().err.strip()
        assert "ENGINE's resync(self, drainer) cannot take the arguments of " \
               "Hypervisor.resync(self, drainer, table, page)" in err and "\n" not in err
    assert load_engine_file(EXAMPLE)[1].__name__ == "ZappingHypervisor"  # a matching override loads


def test_replay_names_the_judge_when_it_is_not_the_traces_variant(tmp_path: Path,
                                                                  capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "run.json"
    assert main(["engine", "run", "--variant-file", str(EXAMPLE), "--seconds", "1", "--max-steps", "300",
                 "--snapshots", "--trace-out", str(out)]) == 0
    capsys.readouterr()
    assert main(["replay", str(out), "--variant-file", str(EXAMPLE)]) == 0
    assert "drain-zaps at N=2,V=1,F=1,Q=1: " in capsys.readouterr().out
    main(["replay", str(out), "--variant", "reference"])  # another protocol judges it: say which
    assert "drain-zaps at N=2,V=1,F=1,Q=1, judged by reference: " in capsys.readouterr().out


INVLPG_NO_DRAIN = '''from deferral.engine import Hypervisor
from deferral.model import PC, REFERENCE
VARIANT = REFERENCE.derive("invlpg-no-drain", replace_steps=[
    REFERENCE.step("finish_invlpg").with_guard(lambda s, i: s.pc[i] == PC.Inv)])
class NoDrain(Hypervisor):
    def invlpg_drains(self, i):
        return False
ENGINE = NoDrain
'''


def test_an_invlpg_that_does_not_drain_is_a_hook_the_threaded_run_follows(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # before 5 Dec, night, the runner drained before every finish_invlpg whatever the ENGINE said:
    # a user's invlpg-without-drain (refuted in 5 steps) ran clean in `engine run`, exit 0
    path = tmp_path / "invlpg_no_drain.py"
    path.write_text(INVLPG_NO_DRAIN)
    protocol, engine = load_engine_file(path)
    report = conform_depth(Model(protocol, Bounds(2, 1, 1, 1)), engine, 5)
    assert report.mismatch is None and report.complete
    # one VCPU: one thread, so the seeded run is the same every time
    code = main(["engine", "run", "--variant-file", str(path), "--vcpus", "1", "--max-steps", "2000",
                 "--seed", "0", "--seconds", "5"])
    out = capsys.readouterr().out
    assert code == 1 and "no_stale_translation VIOLATED after " in out and " of 2,001 steps; first at step " in out
    assert "finish_invlpg(0)" in out


SLOW = '''import time
from deferral.engine import Hypervisor
from deferral.model import REFERENCE
VARIANT = REFERENCE.derive("slow")
class Slow(Hypervisor):
    def post_ipis(self, i, root, page):
        end = time.monotonic() + 12  # "never" returns within the test's limits (and ends, not to spin on)
        while time.monotonic() < end:
            time.sleep(0.01)
        return super().post_ipis(i, root, page)
ENGINE = Slow
'''


@pytest.mark.parametrize("command", [["engine", "run", "--seconds", "0.3", "--grace", "0.2"],
                                     ["conform", "--depth", "3", "--time-limit", "1"]])
def test_a_step_of_the_users_engine_that_does_not_return_ends_with_its_line(
        command: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # before 5 Dec, night: engine run waited for the step lock for ever ("the run never hangs")
    # and conform's --time-limit, checked between steps only, did not end it
    path = tmp_path / "slow.py"
    path.write_text(SLOW)
    start = time.monotonic()
    assert main([*command, "--variant-file", str(path)]) == 3
    assert time.monotonic() - start < 9
    err = capsys.readouterr().err.strip()
    assert (f"{path} line 8 (in post_ipis)" in err or f"{path} line 9 (in post_ipis)" in err)  # the loop
    assert "\n" not in err and "(verdict unknown)" in err


def test_an_engine_that_calls_sys_exit_in_a_vcpu_thread_is_bad_input_not_a_clean_run(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # before 5 Dec, night: SystemExit ended the VCPU threads silently and engine run said exit 0,
    # "every shootdown completed" with 0 of 2 completed
    path = tmp_path / "quits.py"
    path.write_text(RAISING.replace('raise KeyError("oops")', "raise SystemExit(0)"))
    assert main(["engine", "run", "--variant-file", str(path), "--seconds", "1", "--max-steps", "400"]) == 2
    err = capsys.readouterr().err.strip()
    assert f"{path} line 6 (in post_ipis) called sys.exit(0) (ENGINE, VCPU" in err and "\n" not in err


def test_the_summary_does_not_say_every_shootdown_completed_when_one_did_not() -> None:
    # before 5 Dec, night, a VCPU thread that failed in Sd (not SdWait) left "every shootdown completed"
    from deferral.cli.engine import _human

    protocol, engine = load_engine_file(EXAMPLE)
    s = run(RunConfig(Bounds(2, 1, 1, 1), protocol.name, seconds=1.0, seed=2, max_steps=200,
                      protocol=protocol, engine=engine)).summary
    assert "every shootdown completed" in _human(s)
    s["shootdowns"] = {"started": 2, "completed": 0}
    text = _human(s)
    assert "every shootdown completed" not in text and "0 of 2 shootdowns completed" in text


LOST_IPI = '''
"""A lost IPI (qa5): the model adds a step lose_ipi(k, i); the ENGINE implements it as a method of that name."""
from deferral.engine import Hypervisor
from deferral.engine.hypervisor import NotEnabled
from deferral.model import REFERENCE, VCPU, step


@step(("k", VCPU), ("i", VCPU), guard=lambda s, k, i: s.ipi[k][i])
def lose_ipi(s, k, i):
    """i's IPI to k is lost: the pending bit clears, the handler never runs."""
    s.ipi[k][i] = False


VARIANT = REFERENCE.derive("ipi-lost", add_steps=[lose_ipi])


class LosingHypervisor(Hypervisor):
    def lose_ipi(self, k, i):
        with self.lock:
            if self.vcpus[k].mailbox[i] is None:
                raise NotEnabled("no IPI from %d pending at %d" % (i, k))
            self.vcpus[k].mailbox[i] = None
            self._emit("lose_ipi", {"k": k, "i": i})


ENGINE = LosingHypervisor
'''


def test_a_step_the_variant_adds_runs_on_the_users_engine_that_implements_it(tmp_path: Path) -> None:
    """README: a step your variant adds is exercised by conform (an ENGINE without it: "no step ..."). An ENGINE
    that has it, a method named like the step taking the step's parameters, was refused all the same ("no step
    'lose_ipi'", a mismatch, exit 4): the engine knew only the reference's steps (qa5)."""
    path = tmp_path / "ipi_lost.py"
    path.write_text(LOST_IPI)
    protocol, engine = load_engine_file(path)
    report = conform_depth(Model(protocol, Bounds(2, 1, 1, 1)), engine, 4)
    assert report.mismatch is None and report.complete, report.mismatch
    # and the stock hypervisor, which has no such step, is still a divergence naming it
    stock = conform_depth(Model(protocol, Bounds(2, 1, 1, 1)), Bugs(), 4)
    assert stock.mismatch is not None and "no step 'lose_ipi'" in stock.mismatch.reason


def test_a_public_helper_method_of_the_users_engine_is_not_a_step(tmp_path: Path) -> None:
    """Only a method named like one of the model's steps is a step: a helper an ENGINE adds without a leading
    underscore (here one a copy of the engine can always run) is not judged as a step the model lacks."""
    path = tmp_path / "ipi_lost_helper.py"
    path.write_text(LOST_IPI.replace("ENGINE = LosingHypervisor", """
class HelpingHypervisor(LosingHypervisor):
    def pending_count(self, k):
        return sum(1 for x in self.vcpus[k].mailbox if x is not None)


ENGINE = HelpingHypervisor"""))
    protocol, engine = load_engine_file(path)
    stepper = Stepper.fresh(Model(protocol, Bounds(2, 1, 1, 1)), engine)
    assert "pending_count" in stepper.hv.steps()  # a public method the subclass adds...
    taken = {name for name, _ in stepper.engine_steps()}
    assert "write" in taken and taken <= {step.name for step in protocol.steps}  # ...is not a step
    report = conform_depth(Model(protocol, Bounds(2, 1, 1, 1)), engine, 4)
    assert report.mismatch is None and report.complete, report.mismatch


LAST_PAGE = '''
"""A variable the variant adds (qa5): lastpg, the page of the last shootdown whose IPIs were sent; the ENGINE
keeps it in a field of its own and shows it through added_state()."""
from deferral.engine import Hypervisor
from deferral.model import PAGE, REFERENCE, VCPU, Var


def post_ipis_noting(s, i):
    s.lastpg = s.pg[i]
    for k in s.each(VCPU):
        if k != i:
            s.ipi[k][i] = True
            s.waiting[i][k] = True


VARIANT = REFERENCE.derive("last-page", add_variables=[Var("lastpg", PAGE, (), "page of the last IPIs sent")],
                           procedures={"post_ipis": post_ipis_noting})


class NotingHypervisor(Hypervisor):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.lastpg = 0

    def post_ipis(self, i, root, page):
        self.lastpg = page
        return super().post_ipis(i, root, page)

    def added_state(self):
        return {"lastpg": self.lastpg}


ENGINE = NotingHypervisor
'''


def test_a_variable_the_variant_adds_is_shown_by_the_users_engine(tmp_path: Path) -> None:
    """An ENGINE could not show a variable its variant adds: the engine's state was a fixed snapshot ("lastpg:
    model 0, engine null", exit 4), and a copy (conform's search) lost a subclass's own fields (qa5)."""
    path = tmp_path / "last_page.py"
    path.write_text(LAST_PAGE)
    protocol, engine = load_engine_file(path)
    report = conform_depth(Model(protocol, Bounds(2, 2, 1, 1)), engine, 3)
    assert report.mismatch is None and report.complete, report.mismatch
