"""Checkpoint/resume: real kills (SIGKILL) at level boundaries, during a checkpoint write and
after the last level (before the AG EF pass), then --resume: same figures and verdicts."""

from __future__ import annotations

import json

import os
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest

from deferral.checks.explicit import checkpoint
from deferral.checks.explicit.vectorized import explore_vectorized
from deferral.checks.results import SearchResult
from deferral.cli.main import main
from deferral.model.bounds import Bounds
from deferral.model.concrete import Model
from deferral.model.variants import PUBLISHED

#: The search in a child process, every level checkpointed; markers tell the test where it is.
#: np.savez is slowed so that a kill can land in the middle of a checkpoint write.
HARNESS = textwrap.dedent("""
    import sys, time
    from pathlib import Path
    import numpy as np
    from deferral.checks.explicit import checkpoint
    from deferral.checks.explicit.vectorized import explore_vectorized
    from deferral.model.bounds import Bounds
    from deferral.model.variants import PUBLISHED
    variant, bounds, folder, marks = sys.argv[1], sys.argv[2], sys.argv[3], Path(sys.argv[4])
    spilled = dict(work_dir=sys.argv[5], spill_above=1) if len(sys.argv) > 5 else {}
    real_savez, real_save = np.savez, checkpoint.save
    count = [0]
    def slow_savez(f, **arrays):
        (marks / f"writing-{count[0] + 1}").touch()
        items = list(arrays.items())
        real_savez(f, **dict(items[: len(items) // 2]))   # half of the archive, then a pause
        f.flush()
        time.sleep(0.3)
        f.seek(0); f.truncate()
        real_savez(f, **arrays)
    def marked_save(directory, header, arrays, files=None):
        size = real_save(directory, header, arrays, files)
        count[0] += 1
        front = files["frontier_keys"].count if files and "frontier_keys" in files else arrays["frontier_keys"].size
        last = front == 0
        (marks / ("saved-final" if last else f"saved-{count[0]}")).touch()
        if last:
            time.sleep(0.5)  # a kill lands before or during the AG EF pass
        return size
    np.savez = slow_savez
    checkpoint.np.savez = slow_savez
    checkpoint.save = marked_save
    b = Bounds(*map(int, bounds.split(",")))
    explore_vectorized(PUBLISHED[variant], b, workers=2, checkpoint_dir=folder, checkpoint_every=0.0, **spilled)
    (marks / "done").touch()
""")


def _summary(r: SearchResult) -> tuple:
    return (r.states, r.transitions, r.depth, r.complete,
            [(o.name, o.status, o.length, None if o.path is None else [s for _, s in o.path])
             for o in r.outcomes], r.coverage)


def _run_and_kill(tmp_path: Path, variant: str, bounds: str, mark: str, spilled: bool = False) -> Path:
    """The folder of the checkpoints a search wrote before it was killed at ``mark``;
    ``spilled``: the search spilled every level to a work folder (its checkpoints link it)."""
    folder, marks = tmp_path / "ck", tmp_path / "marks"
    marks.mkdir()
    work = [str(tmp_path / "work")] if spilled else []
    proc = subprocess.Popen([sys.executable, "-c", HARNESS, variant, bounds, str(folder), str(marks), *work])
    deadline = time.monotonic() + 120
    try:
        while not (marks / mark).exists():
            assert proc.poll() is None, f"the search ended before {mark}"
            assert time.monotonic() < deadline, f"no {mark} within 120 s"
            time.sleep(0.005)
        proc.send_signal(signal.SIGKILL)
        proc.wait(30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == -signal.SIGKILL
    assert not (marks / "done").exists()
    return folder


CASES = [
    ("reference", "2,1,2,2", "saved-3"),
    ("reference", "2,1,2,2", "writing-6"),  # killed in the middle of a checkpoint write
    ("reference", "2,1,2,2", "saved-final"),  # killed after the last level: AG EF still to do
    ("wait-irqs-off", "2,1,1,2", "writing-4"),  # liveness violated
    ("wait-irqs-off", "2,1,1,2", "saved-final"),
    ("drain-local-only", "2,1,1,2", "saved-5"),  # invariant violated: same shortest counterexample
]


#: the same with every level spilled to a work folder: the checkpoints hold its files by link
SPILLED_CASES = [
    ("reference", "2,1,2,2", "writing-6"),
    ("wait-irqs-off", "2,1,1,2", "saved-4"),
    ("wait-irqs-off", "2,1,1,2", "saved-final"),
]


@pytest.mark.parametrize("variant,bounds,mark,spilled", [(*case, False) for case in CASES]
                         + [(*case, True) for case in SPILLED_CASES])
def test_kill_then_resume_matches_an_uninterrupted_run(tmp_path: Path, variant: str, bounds: str,
                                                       mark: str, spilled: bool) -> None:
    b = Bounds(*map(int, bounds.split(",")))
    whole = explore_vectorized(PUBLISHED[variant], b, workers=1)
    folder = _run_and_kill(tmp_path, variant, bounds, mark, spilled)
    if spilled:  # the killed search's work folder is gone (a new machine, a cleaned /tmp)
        assert any((folder / checkpoint.LINKED).iterdir())
        shutil.rmtree(tmp_path / "work")
    leftovers = list(folder.glob(".checkpoint-*"))
    if mark.startswith("writing"):
        assert leftovers, "the kill was meant to land during a write"
    model = Model(PUBLISHED[variant], b)
    header, members = checkpoint.load(folder, checkpoint.protocol_identity(model, True))
    members.close()
    assert 1 < header["states"] <= whole.states
    seen: list[int] = []
    resumed = explore_vectorized(PUBLISHED[variant], b, workers=2, resume_dir=str(folder),
                                 progress=lambda p: seen.append(p.states))
    assert resumed.stats["resumed_from"] == str(folder)
    assert not seen or seen[0] >= header["states"]  # it went on from the checkpoint, not from the start
    if mark == "saved-final":
        assert header["states"] == whole.states and not seen  # only the AG EF pass was left
    assert _summary(resumed) == _summary(whole)
    # resuming again from the final checkpoint (liveness pass only) gives the same again
    again = explore_vectorized(PUBLISHED[variant], b, workers=1, resume_dir=str(folder))
    assert _summary(again) == _summary(whole)


def test_checkpoint_of_other_search_is_refused_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    folder = tmp_path / "ck"
    explore_vectorized(PUBLISHED["reference"], Bounds(2, 1, 1, 1), workers=1, checkpoint_dir=str(folder))
    assert (folder / checkpoint.FILE_NAME).is_file()
    small = ["--vcpus", "2", "--pages", "1", "--frames", "1", "--queue", "1"]
    assert main(["check", *small, "--resume", str(folder), "--json"]) == 0
    capsys.readouterr()
    for other in (["check", "--vcpus", "2", "--pages", "1", "--frames", "2", "--queue", "1"],  # bounds
                  ["check", *small, "--variant", "remote-no-drain"],  # protocol
                  ["check", *small, "--no-symmetry"]):  # symmetry
        assert main([*other, "--resume", str(folder)]) == 2
        err = capsys.readouterr().err
        assert "of another search" in err and "Traceback" not in err


def test_corrupt_or_missing_checkpoint_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    folder = tmp_path / "ck"
    explore_vectorized(PUBLISHED["reference"], Bounds(2, 1, 1, 1), workers=1, checkpoint_dir=str(folder))
    small = ["check", "--vcpus", "2", "--pages", "1", "--frames", "1", "--queue", "1"]
    path = folder / checkpoint.FILE_NAME
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])  # torn
    assert main([*small, "--resume", str(folder)]) == 2
    assert "corrupt" in capsys.readouterr().err
    flipped = bytearray(data)
    flipped[len(data) // 3] ^= 0xFF  # a flipped bit inside an array: the zip CRC catches it
    path.write_bytes(bytes(flipped))
    assert main([*small, "--resume", str(folder)]) == 2
    assert "corrupt" in capsys.readouterr().err
    assert main([*small, "--resume", str(tmp_path / "nothing")]) == 2
    assert "no checkpoint" in capsys.readouterr().err
    (tmp_path / "file").write_text("x")
    assert main([*small, "--checkpoint", str(tmp_path / "file")]) == 2
    assert "not a folder" in capsys.readouterr().err


def test_checkpoint_every_without_a_checkpoint_folder_is_bad_input(capsys: pytest.CaptureFixture[str]) -> None:
    """It was accepted and ignored: a user expecting saves every 5 s got none."""
    assert main(["check", "--checkpoint-every", "5", "--max-states", "10", "--json"]) == 2
    assert "--checkpoint-every needs --checkpoint" in json.loads(capsys.readouterr().out)["error"]["message"]


def test_checkpoint_file_has_normal_permissions(tmp_path: Path) -> None:
    folder = tmp_path / "ck"
    old = os.umask(0o022)
    try:
        explore_vectorized(PUBLISHED["reference"], Bounds(2, 1, 1, 1), workers=1, checkpoint_dir=str(folder))
    finally:
        os.umask(old)
    assert (folder / checkpoint.FILE_NAME).stat().st_mode & 0o777 == 0o644
    assert not list(folder.glob(".checkpoint-*"))
    with np.load(folder / checkpoint.FILE_NAME, allow_pickle=False) as archive:
        assert "header" in archive.files


def _linked_names(folder: Path) -> set[str]:
    return {p.name for p in (folder / checkpoint.LINKED).iterdir()}


def test_a_spilled_search_links_its_files_and_resumes_again_and_again(tmp_path: Path) -> None:
    """A search spilling every level: its checkpoints hold the runs, columns and frontier by
    hard link (the archive holds only what was in memory), keep no link the latest archive does
    not use, and a chain of resumes, each cut short and checkpointing into the same folder,
    ends with the uninterrupted run's results."""
    b = Bounds(2, 1, 2, 2)
    whole = explore_vectorized(PUBLISHED["reference"], b, workers=1)
    folder = tmp_path / "ck"
    spill = {"spill_above": 1, "checkpoint_every": 0.0}
    first = explore_vectorized(PUBLISHED["reference"], b, workers=2, max_states=whole.states // 3,
                               checkpoint_dir=str(folder), work_dir=str(tmp_path / "w1"), **spill)
    assert first.stats["checkpoint_linked_bytes"] > first.stats["checkpoint_bytes"] > 0
    names = _linked_names(folder)
    header, members = checkpoint.load(folder, checkpoint.protocol_identity(Model(PUBLISHED["reference"], b), True))
    members.close()
    assert {entry["file"] for entry in header["linked"].values()} == names
    assert {"parent", "via", "frontier_keys", "disk_keys_0", "disk_ids_0"} <= set(header["linked"])
    second = explore_vectorized(PUBLISHED["reference"], b, workers=2, max_states=2 * whole.states // 3,
                                resume_dir=str(folder), work_dir=str(tmp_path / "w2"), **spill)
    assert second.stopped_by == "max-states" and second.states > first.states
    after = _linked_names(folder)
    assert after and not (names & after)  # the second search's own files; the first's dropped
    resumed = explore_vectorized(PUBLISHED["reference"], b, workers=2, resume_dir=str(folder),
                                 work_dir=str(tmp_path / "w3"), spill_above=1)
    assert _summary(resumed) == _summary(whole)
    in_memory = explore_vectorized(PUBLISHED["reference"], b, workers=1, resume_dir=str(folder))
    assert _summary(in_memory) == _summary(whole)


def test_a_resume_into_its_own_folder_links_the_columns_it_appends_to(tmp_path: Path,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    """Resumed into the checkpoint's own folder, the parent, action and edge columns are the
    checkpoint's files linked (no copy), cut first to the checkpoint's length (a killed search
    appended past it); resumed into another folder, they are copies. Both end with the
    uninterrupted run's results, and the first checkpoint still resumes after the second."""
    b = Bounds(2, 1, 2, 2)
    ref = PUBLISHED["reference"]
    whole = explore_vectorized(ref, b, workers=1)
    folder = tmp_path / "ck"
    explore_vectorized(ref, b, workers=1, max_states=whole.states // 3, checkpoint_dir=str(folder),
                       work_dir=str(tmp_path / "w1"), spill_above=1, checkpoint_every=0.0)
    header, members = checkpoint.load(folder, checkpoint.protocol_identity(Model(ref, b), True))
    members.close()
    parent = folder / checkpoint.LINKED / header["linked"]["parent"]["file"]
    length = header["linked"]["parent"]["count"] * np.dtype(header["linked"]["parent"]["dtype"]).itemsize
    with open(parent, "ab") as tail:  # what a search killed after this checkpoint appends (more of)
        tail.write(b"\xff" * 4096)
    grown = parent.stat().st_size
    assert grown > length + 4096  # the first search went on past its last checkpoint, too
    seen: dict[str, tuple[bool, int]] = {}
    real_copy = checkpoint.Members.copy_to

    def spy(self, name, path, *args, **kw):  # type: ignore[no-untyped-def]
        real_copy(self, name, path, *args, **kw)
        if name == "parent":
            source = self.path.parent / checkpoint.LINKED / header["linked"]["parent"]["file"]
            seen[str(self.path.parent)] = (os.path.samefile(path, source), Path(path).stat().st_size)
    monkeypatch.setattr(checkpoint.Members, "copy_to", spy)
    elsewhere = explore_vectorized(ref, b, workers=1, resume_dir=str(folder), checkpoint_dir=str(tmp_path / "other"),
                                   work_dir=str(tmp_path / "w2"), spill_above=1)
    assert seen.pop(str(folder)) == (False, length)  # another folder: a copy of the checkpoint's part
    assert parent.stat().st_size == grown  # and the checkpoint's file as it was
    in_place = explore_vectorized(ref, b, workers=1, resume_dir=str(folder), work_dir=str(tmp_path / "w3"),
                                  spill_above=1)
    assert seen.pop(str(folder)) == (True, length)  # its own folder: the same file, cut to its length
    assert _summary(elsewhere) == _summary(in_place) == _summary(whole)


def test_where_no_link_can_be_made_the_files_go_into_the_archive(tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """A checkpoint folder on another file system than the work folder (no hard link): the
    spilled files are copied into the archive, and it resumes to the same results."""
    b = Bounds(2, 1, 1, 2)
    whole = explore_vectorized(PUBLISHED["wait-irqs-off"], b, workers=1)

    def no_link(src: object, dst: object) -> None:
        raise OSError(18, "Invalid cross-device link")
    monkeypatch.setattr(checkpoint.os, "link", no_link)
    folder = tmp_path / "ck"
    cut = explore_vectorized(PUBLISHED["wait-irqs-off"], b, workers=2, max_states=whole.states // 2,
                             checkpoint_dir=str(folder), checkpoint_every=0.0,
                             work_dir=str(tmp_path / "w1"), spill_above=1)
    assert cut.stats["spills"] >= 1 and cut.stats["checkpoint_linked_bytes"] == 0
    assert not (folder / checkpoint.LINKED).exists() or not any((folder / checkpoint.LINKED).iterdir())
    resumed = explore_vectorized(PUBLISHED["wait-irqs-off"], b, workers=2, resume_dir=str(folder),
                                 work_dir=str(tmp_path / "w2"), spill_above=1)
    assert _summary(resumed) == _summary(whole)


def test_a_missing_or_short_linked_file_is_refused_exit_2(tmp_path: Path,
                                                          capsys: pytest.CaptureFixture[str]) -> None:
    b = Bounds(2, 1, 1, 2)
    folder = tmp_path / "ck"
    explore_vectorized(PUBLISHED["reference"], b, workers=1, max_states=3000, checkpoint_dir=str(folder),
                       checkpoint_every=0.0, work_dir=str(tmp_path / "w"), spill_above=1)
    args = ["check", "--vcpus", "2", "--pages", "1", "--frames", "1", "--queue", "2",
            "--resume", str(folder), "--work-dir", str(tmp_path / "w2")]
    header, members = checkpoint.load(folder, checkpoint.protocol_identity(Model(PUBLISHED["reference"], b), True))
    members.close()
    victim = folder / checkpoint.LINKED / header["linked"]["parent"]["file"]
    os.truncate(victim, 4 * header["linked"]["parent"]["count"] - 4)  # uint32 parents: one short
    assert main(args) == 2
    err = capsys.readouterr().err
    assert "shorter than the checkpoint says" in err and "Traceback" not in err and len(err.strip().splitlines()) == 1
    victim.unlink()
    assert main(args) == 2
    err = capsys.readouterr().err
    assert "is missing" in err and "Traceback" not in err


#: The small search of the folder tests below (its first 3,000 states checkpointed).
SMALL = ["check", "--vcpus", "2", "--pages", "1", "--frames", "1", "--queue", "2"]


def _first_checkpoint(folder: Path, capsys: pytest.CaptureFixture[str]) -> bytes:
    """A checkpoint of SMALL's first 3,000 states in ``folder``: its bytes."""
    assert main([*SMALL, "--max-states", "3000", "--checkpoint", str(folder), "--checkpoint-every", "0.001",
                 "--json"]) == 3
    capsys.readouterr()
    return (folder / checkpoint.FILE_NAME).read_bytes()


def test_a_new_search_does_not_overwrite_a_checkpoint_exit_2(tmp_path: Path,
                                                             capsys: pytest.CaptureFixture[str]) -> None:
    """The same command run again after a crash (--checkpoint DIR, DIR holding its
    checkpoint) would start over and overwrite it at its first save: refused, with the way on."""
    folder = tmp_path / "ck"
    before = _first_checkpoint(folder, capsys)
    assert main([*SMALL, "--checkpoint", str(folder), "--json"]) == 2
    err = capsys.readouterr().err
    assert f"--resume {folder}" in err and "a checkpoint of reference at vcpus=2" in err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert (folder / checkpoint.FILE_NAME).read_bytes() == before
    # going on from it, checkpointing into the same folder, is what it asks for
    assert main([*SMALL, "--resume", str(folder), "--checkpoint", str(folder), "--json"]) == 0


def test_a_second_search_on_a_folder_in_use_is_refused_exit_2(tmp_path: Path,
                                                              capsys: pytest.CaptureFixture[str]) -> None:
    """A resume started twice (a script run again while the first run still goes): the second is
    refused at once, naming the process that holds the folder, and leaves its checkpoint as it is;
    once the first search ends (a kill included), the folder is free again."""
    folder = tmp_path / "ck"
    before = _first_checkpoint(folder, capsys)
    # another process holds the folder as a running search does (the lock dies with the process)
    holder = subprocess.Popen([sys.executable, "-c", textwrap.dedent(f"""
        import sys, time
        from deferral.checks.explicit import checkpoint
        with checkpoint.in_use({str(folder)!r}):
            print("held", flush=True)
            time.sleep(60)
        """)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        assert main([*SMALL, "--resume", str(folder), "--json"]) == 2
        err = capsys.readouterr().err
        assert f"checkpoint folder {folder} is in use by another search (process {holder.pid}, since " in err
        assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
        assert (folder / checkpoint.FILE_NAME).read_bytes() == before
    finally:
        holder.kill()
        holder.wait()
    assert main([*SMALL, "--resume", str(folder), "--json"]) == 0


def test_progress_says_where_the_last_checkpoint_is(tmp_path: Path) -> None:
    """A long search's progress lines name the last checkpoint (its depth and age)."""
    from deferral.cli.progress import progress_line
    seen: list = []
    explore_vectorized(PUBLISHED["reference"], Bounds(2, 1, 1, 2), workers=1, checkpoint_dir=str(tmp_path / "ck"),
                       checkpoint_every=0.0, progress=seen.append)
    assert seen[0].checkpoint == ""  # none yet at the first level
    later = [p for p in seen[1:] if p.checkpoint]
    assert later and all(p.checkpoint.startswith(f"depth {p.depth - 1}, ") for p in later if p.frontier)
    assert "[checkpoint: depth " in progress_line("reference", later[-1])


def test_a_linked_checkpoint_resumes_where_no_link_can_be_made(tmp_path: Path,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    """A checkpoint that holds its files by link, resumed into a work folder on another file
    system (no link possible there): the files are copied, the results are the same."""
    b = Bounds(2, 1, 1, 2)
    whole = explore_vectorized(PUBLISHED["wait-irqs-off"], b, workers=1)
    folder = tmp_path / "ck"
    explore_vectorized(PUBLISHED["wait-irqs-off"], b, workers=2, max_states=whole.states // 2,
                       checkpoint_dir=str(folder), checkpoint_every=0.0, work_dir=str(tmp_path / "w1"), spill_above=1)
    assert any((folder / checkpoint.LINKED).iterdir())

    def no_link(src: object, dst: object) -> None:
        raise OSError(18, "Invalid cross-device link")
    monkeypatch.setattr(checkpoint.os, "link", no_link)
    resumed = explore_vectorized(PUBLISHED["wait-irqs-off"], b, workers=2, resume_dir=str(folder),
                                 checkpoint_dir=str(tmp_path / "ck2"), work_dir=str(tmp_path / "w2"), spill_above=1)
    assert _summary(resumed) == _summary(whole)


def test_a_checkpoint_of_another_key_format_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Keys of another format (a change that gives states other keys) are never mixed with
    this version's: the resume is refused, naming the key format; a checkpoint written before
    the format was recorded reads as format 1."""
    model = Model(PUBLISHED["reference"], Bounds(2, 1, 1, 1))
    folder = tmp_path / "ck"
    explore_vectorized(PUBLISHED["reference"], Bounds(2, 1, 1, 1), workers=1, checkpoint_dir=str(folder))
    identity = checkpoint.protocol_identity(model, True)
    checkpoint.load(folder, identity)[1].close()
    with pytest.raises(checkpoint.CheckpointError, match="state key format"):
        checkpoint.load(folder, {**identity, "key_format": identity["key_format"] + 1})
    old = {k: v for k, v in identity.items() if k != "key_format"}
    header, members = checkpoint.load(folder, identity)
    arrays = {name: members[name] for name in members._archive.files if name != "header"}
    members.close()
    header = {k: v for k, v in header.items() if k not in ("format", "linked")}
    checkpoint.save(folder, {**header, "identity": old}, arrays)
    checkpoint.load(folder, {**identity, "key_format": 1})[1].close()


def test_a_search_stopped_by_a_limit_says_where_it_is_saved_and_how_to_go_on(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A checkpointed search stopped by its time limit: one line on stderr names the checkpoint
    (its depth and states) and the command that goes on (resuming is tested above)."""
    folder = tmp_path / "ck"
    code = main(["check", "--vcpus", "2", "--pages", "2", "--frames", "1", "--queue", "2", "--checkpoint",
                 str(folder), "--checkpoint-every", "0.001", "--time-limit", "1.5", "--json"])
    err = capsys.readouterr().err
    assert code == 3
    line = [x for x in err.splitlines() if x.startswith("deferral: stopped by time-limit")]
    assert len(line) == 1, err
    assert f"{folder} holds a checkpoint of reference at vcpus=2,pages=2,frames=1,queue=2 (" in line[0]
    assert line[0].endswith(f"go on with --resume {folder}")


def test_a_folder_whose_file_system_has_no_locks_is_still_used(tmp_path: Path,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    """flock refused by the file system (ENOLCK, as on some network ones): the search saves and
    resumes as before, unguarded, rather than failing."""
    def no_locks(fd: int, op: int) -> None:
        raise OSError(37, "No locks available")
    monkeypatch.setattr(checkpoint.fcntl, "flock", no_locks)
    b = Bounds(2, 1, 1, 1)
    whole = explore_vectorized(PUBLISHED["reference"], b, workers=1)
    cut = explore_vectorized(PUBLISHED["reference"], b, workers=1, max_states=whole.states // 2,
                             checkpoint_dir=str(tmp_path / "ck"), checkpoint_every=0.0)
    assert cut.stopped_by == "max-states" and (tmp_path / "ck" / checkpoint.FILE_NAME).is_file()
    assert _summary(explore_vectorized(PUBLISHED["reference"], b, workers=1, resume_dir=str(tmp_path / "ck"))) \
        == _summary(whole)


def test_a_save_cut_by_a_kill_leaves_no_temporary_file_behind_the_next_search(tmp_path: Path) -> None:
    """SIGKILL during a save leaves ``.checkpoint-*.tmp`` (as big as a checkpoint); the next search that
    holds the folder removes it, and a search in another folder leaves it alone."""
    from deferral.checks.explicit.checkpoint import in_use

    folder, other = tmp_path / "ck", tmp_path / "other"
    folder.mkdir()
    other.mkdir()
    (folder / ".checkpoint-abc123.tmp").write_bytes(b"x" * 1000)
    (other / ".checkpoint-def456.tmp").write_bytes(b"x")
    with in_use(folder):
        assert not list(folder.glob(".checkpoint-*.tmp"))
    assert list(other.glob(".checkpoint-*.tmp"))
