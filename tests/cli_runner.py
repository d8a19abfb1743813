"""Run `prodcat` through its real entry point in tests, as a user's shell would."""

from __future__ import annotations

from prodcat.cli import main


def run(capsys, *argv) -> tuple[int, str, str]:
    """(exit code, stdout, stderr) of `prodcat ARGV`."""
    try:
        main([str(a) for a in argv])
        code = 0
    except SystemExit as exc:
        code = exc.code or 0
    out, err = capsys.readouterr()
    return code, out, err


def run_ok(*argv) -> None:
    """`prodcat ARGV`, failing the test unless it exits 0."""
    try:
        main([str(a) for a in argv])
    except SystemExit as exc:
        assert not exc.code, f"prodcat {' '.join(map(str, argv))} exited with {exc.code}"
