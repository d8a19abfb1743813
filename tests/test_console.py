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
