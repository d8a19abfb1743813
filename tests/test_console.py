"""The Reporter prints messages as plain text: user text in them is never rich markup."""

import pytest

from prodcat.console import Reporter

USER_TEXT = "[sale] Shirts in data[new].csv, column [title], [/bold] :thumbs_up:"


@pytest.mark.parametrize("quiet", [False, True])
def test_every_message_is_printed_as_written(quiet, capsys):
    say = Reporter(quiet)
    say.note(f"note {USER_TEXT}")
    say.warn(f"warn {USER_TEXT}")
    with say.step(f"step {USER_TEXT}"):
        pass
    bar, task = say.progress(f"bar {USER_TEXT}", total=1)
    with bar:
        bar.advance(task)
    err = capsys.readouterr().err
    if quiet:
        assert err == ""  # and the "[/bold]" in them raised nothing
        return
    lines = err.splitlines()
    assert f"note {USER_TEXT}" in lines
    assert f"warning: warn {USER_TEXT}" in lines
    assert any(line.startswith(f"✓ step {USER_TEXT} (") for line in lines)
    assert f"bar {USER_TEXT}" in err


@pytest.mark.parametrize("quiet, warnings, shown", [(True, True, True), (False, False, False), (True, None, False)])
def test_warnings_can_be_shown_or_kept_apart_from_quiet(quiet, warnings, shown, capsys):
    say = Reporter(quiet, warnings=warnings)
    say.note("a note")
    say.warn("a finding")
    err = capsys.readouterr().err
    assert ("warning: a finding" in err) is shown
    assert ("a note" in err) is (not quiet)
