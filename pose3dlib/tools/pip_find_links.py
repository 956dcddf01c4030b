"""pip's `find-links` locations, printed as arguments for `uv pip install` (used by `make setup`).

`make setup` installs the pinned packages with uv, which reads none of pip's settings. Where a host
keeps wheels in a local folder that pip is told about (`find-links` in a pip configuration file or
`PIP_FIND_LINKS`; the 2-core hosts keep their CPU build of torch so), the same locations are handed to
uv, so both installers take the same files. `make setup` runs this file by its path with the new
`.venv`'s Python before pose3dlib is installed, so it uses the standard library only.
"""
from __future__ import annotations

import ast
import subprocess
import sys


def find_links(config_list: str) -> list[str]:
    """The locations in the `find-links` entries of `pip config list` output, in order, each once.

    pip prints one `variant.name='value'` line per setting (`global.find-links`, `install.find-links`,
    `:env:.find-links` for `PIP_FIND_LINKS`, ...); a value may hold several locations separated by
    spaces or newlines. Lines for other settings are ignored.
    """
    found: list[str] = []
    for line in config_list.splitlines():
        key, sep, value = line.partition("=")
        if not sep or key.strip().rsplit(".", 1)[-1] != "find-links":
            continue
        try:
            text = ast.literal_eval(value.strip())
        except (ValueError, SyntaxError):  # a value printed without quotes
            text = value
        for location in str(text).split():
            if location not in found:
                found.append(location)
    return found


def main() -> int:
    result = subprocess.run([sys.executable, "-m", "pip", "config", "list"], check=False,
                            capture_output=True, text=True)
    if result.returncode != 0:
        print(f"error: `{sys.executable} -m pip config list` failed (exit {result.returncode}); "
              f"make setup reads pip's find-links from it:\n{result.stderr.strip()}", file=sys.stderr)
        return result.returncode
    print(" ".join(f"--find-links={location}" for location in find_links(result.stdout)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
