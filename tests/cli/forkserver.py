"""A pre-warmed launcher of ``pgtrigger`` (and ``alembic``) commands for the tests.

Started once per test session as ``python tests/cli/forkserver.py``: it imports what every
command imports (SQLAlchemy, psycopg, ``pgtrigger.sqla``, the CLI) but no user model, then
reads one JSON request per line on stdin and forks a child per request. The child is what
``python -m pgtrigger.cli ARGS`` would be, minus interpreter start-up and those imports
(~0.4 s a command): it changes to the request's directory (``sys.path[0]``, as ``-m`` does),
takes the request's environment, sends fd 1 and 2 to the request's files, runs
``pgtrigger.cli.app.main`` and exits with its code. Each child has its own trigger registry
(nothing is registered in the server), so commands never see each other's models.

The Alembic tests run ``alembic`` the same way (``"program": "alembic"``: Alembic's own
command line, ~1 s a command saved): each command still reads models.py and registers its
triggers afresh.

Protocol: request ``{"program": "pgtrigger" | "alembic", "argv": [...], "cwd": ..., "env":
{...}, "stdout": path, "stderr": path}``; replies ``pid <pid>`` when the child started, ``exit <code>`` when it ended.
The server runs no threads and opens no connections, so forking it is safe.
"""

from __future__ import annotations

import json
import os
import sys
import traceback
import warnings

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    import alembic.autogenerate
    import alembic.command
    import alembic.config
    import alembic.operations
    import psycopg  # noqa: F401
    import sqlalchemy.orm  # noqa: F401

    import pgtrigger.cli.app
    import pgtrigger.sqla  # (pgtrigger.cli.app imports it lazily: warm it here)


def _child(request: dict[str, object]) -> None:
    code = 1
    try:
        os.chdir(str(request["cwd"]))
        sys.path[0] = str(request["cwd"])
        os.environ.clear()
        os.environ.update(dict(request["env"]))  # type: ignore[call-overload]
        # What a fresh interpreter reads at start-up (stale .pyc of a models.py rewritten
        # within the same second would otherwise be possible).
        sys.dont_write_bytecode = bool(os.environ.get("PYTHONDONTWRITEBYTECODE"))
        for fd, name in ((1, "stdout"), (2, "stderr")):
            target = os.open(str(request[name]), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            os.dup2(target, fd)
            os.close(target)
        argv = [str(a) for a in request["argv"]]  # type: ignore[attr-defined]
        program = str(request.get("program", "pgtrigger"))
        sys.argv = [program, *argv]
        try:
            if program == "alembic":
                alembic.config.main(argv=argv, prog="alembic")
                code = 0
            else:
                code = pgtrigger.cli.app.main(argv)
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
        except BaseException:
            traceback.print_exc()  # what the interpreter would print for an uncaught error
            code = 1
    finally:
        try:
            sys.stdout.flush()
            sys.stderr.flush()
        finally:
            os._exit(code)


def serve() -> None:
    sys.stdout.write("ready\n")
    sys.stdout.flush()
    for line in sys.stdin:
        request = json.loads(line)
        sys.stdout.flush()
        sys.stderr.flush()
        pid = os.fork()
        if pid == 0:
            sys.stdin.close()
            _child(request)
        sys.stdout.write(f"pid {pid}\n")
        sys.stdout.flush()
        _, status = os.waitpid(pid, 0)
        sys.stdout.write(f"exit {os.waitstatus_to_exitcode(status)}\n")
        sys.stdout.flush()


if __name__ == "__main__":
    serve()
